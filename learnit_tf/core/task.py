"""The task interface: how a coordinate network is measured and scored for one signal kind.

A task turns explicit network weights into predicted observations of one signal
(an *example*: a dict of tensors with static shapes) and a scalar loss. Meta-learners
and the test-time fitter only talk to tasks through this interface, so a new signal
kind (images, CT projections, rendered rays) is one new subclass.
"""

import abc

import tensorflow as tf


def mse_to_psnr(mse, max_value=1.0):
    """PSNR in dB of a mean squared error for signals in [0, max_value]."""
    mse = tf.convert_to_tensor(mse)
    return 10.0 * tf.math.log(max_value**2 / mse) / tf.math.log(tf.constant(10.0, mse.dtype))


class Task(abc.ABC):
    """Measurement operator + loss for one signal kind.

    Subclasses implement `inner_loss` (what the inner loop / test-time fit
    minimizes at step `step`; may subsample pixels or rays from `example["seed"]`),
    `outer_loss` (the MAML query loss) and `metrics` (what evaluation reports,
    e.g. PSNR on held-out measurements).
    """

    #: Name of the metric that evaluation tables report (higher is better).
    primary_metric = "psnr"

    @abc.abstractmethod
    def inner_loss(self, fmodel, weights, example, step):
        """Scalar loss minimized by the inner loop at step `step` (an int32 tensor)."""

    def outer_loss(self, fmodel, weights, example):
        """Scalar loss after adaptation (MAML's query loss). Defaults to the step-0 inner loss."""
        return self.inner_loss(fmodel, weights, example, tf.constant(0, tf.int32))

    @abc.abstractmethod
    def metrics(self, fmodel, weights, example):
        """Dict of scalar metrics of `weights` on `example` (must include `primary_metric`)."""

    def metrics_from_inner_loss(self, loss):
        """Metrics derivable from the step's inner loss alone, or None (the default).

        Tasks whose inner loss is exactly their metric's loss (e.g. full-image MSE)
        return the metrics here so that fitting skips a second forward pass.
        """
        del loss
        return None

    def prepare_example(self, example):
        """`example` with what its losses derive from the signal alone computed once.

        The fitter calls this once per fit and the meta-learners once per example of a
        meta-batch, before any loss: a task whose losses would otherwise recompute a
        weight-independent quantity at every inner step (CT: the observed projections
        of the true image) adds it to the example here. The result must describe the
        same signal (every loss and metric unchanged up to round-off); its tensors keep
        static shapes. Default: the example itself (the meta-learners then leave the
        meta-batch untouched).
        """
        return example

    def has_shared_prediction(self):
        """Whether `shared_prediction` is implemented (see there). Default: False."""
        return False

    def shared_prediction(self, fmodel, weights):
        """The network output every example's step-0 inner loss is computed from.

        Tasks whose first inner step evaluates the network on the same inputs for
        every example (a fixed pixel grid) implement this and
        `inner_loss_from_prediction`, and return True from `has_shared_prediction`;
        meta-learners then run that forward pass once per meta-batch.
        """
        raise NotImplementedError(f"{type(self).__name__} has no shared prediction.")

    def inner_loss_from_prediction(self, prediction, example, step):
        """`inner_loss` given `shared_prediction`'s output (equal up to round-off)."""
        raise NotImplementedError(f"{type(self).__name__} has no shared prediction.")

    def for_fitting(self):
        """The task a test-time fit of one held-out or user signal uses (default: this one).

        A task whose training losses are not what a user's fit should minimise overrides
        this; e.g. `PixelSubsetImageTask` trains on random pixel subsets but is fitted on
        every pixel. Everything that rebuilds an init's task to fit or evaluate it
        (`evaluation.task_from_metadata`, `learnit-fit`) goes through here, so the
        difference is handled once, by the task that has it.
        """
        return self

    def check_init(self, fmodel, weights, example):
        """A message if `weights` cannot be trained on this task (None if fine)."""
        del fmodel, weights, example
        return None

    def validate_example(self, example, name="example"):
        """Raises ValueError if `example` does not fit this task. Default: no check."""
        del example, name

    def get_config(self):
        """Constructor arguments, JSON-serializable, so `type(task)(**config)` rebuilds it."""
        return {}
