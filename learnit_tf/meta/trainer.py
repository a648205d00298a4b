"""The outer loop: one compiled call per meta-batch, Keras Adam on the init.

`MetaTrainer` owns the Keras model whose variables hold the init θ and a Keras
optimizer. `train_step(meta_batch)` is a single `tf.function` call (XLA-compiled
with an accelerator; graph mode on CPU, where it measured faster: see
`learnit_tf.meta.compile`) that adapts every example of the meta-batch, forms the meta-gradient and
applies it. Under a `tf.distribute` strategy each replica handles its share of the
global meta-batch and the gradients are averaged over the *global* meta-batch.
"""

import keras
import tensorflow as tf

from learnit_tf.meta.compile import resolve_jit_compile
from learnit_tf.meta.algorithms import MetaConfig, check_learned_rates, meta_gradients
from learnit_tf.models.functional import BoundFunctionalModel, FunctionalModel
from learnit_tf.models.inner_rates import inner_rates_of




class MetaTrainer:
    """Meta-trains the weights of `model` as an init for `task`.

    Args:
        model: a built Keras coordinate network; its variables are the init θ.
        task: a `learnit_tf.tasks.Task`.
        config: a `MetaConfig` (algorithm, inner steps, inner optimizer).
        outer_learning_rate: Adam learning rate of the outer loop (paper images: 1e-5),
            a float or a `keras.optimizers.schedules.LearningRateSchedule` (warm-up and
            decay: `learnit_tf.meta.outer_schedule`).
        jit_compile: True (XLA), False (graph mode) or "auto" (default: XLA with an
            accelerator, graph mode on CPU, where it is faster; see `learnit_tf.meta.compile`).
        strategy: optional `tf.distribute.Strategy`; the model must have been built
            under its scope.
        clip_global_norm: optional clip of the outer gradients' global norm (Keras
            `global_clipnorm`).
        skip_nonfinite: one replica: a step whose meta-gradient or loss is not finite
            changes nothing (weights, rates and Adam state stay) and reports
            metrics["skipped"] = 1; the caller decides when to stop.

    A model built with `inner_rates` (Meta-SGD) has its inner learning rates learned
    beside its weights: the inner SGD steps with them, the outer Adam updates them and
    they are clipped to their bounds after every step.

    Example:

    >>> from learnit_tf.models import Siren
    >>> from learnit_tf.kinds.image import ImageTask
    >>> trainer = MetaTrainer(Siren(width=16, depth=3, seed=0), ImageTask(8),
    ...                       MetaConfig("maml", 2), outer_learning_rate=1e-4)
    >>> metrics = trainer.train_step({"image": tf.zeros((2, 8, 8, 3))})
    >>> sorted(metrics)
    ['inner_loss_first', 'loss']
    """

    def __init__(self, model, task, config=MetaConfig(), outer_learning_rate=1e-5,
                 jit_compile="auto", strategy=None, clip_global_norm=None,
                 skip_nonfinite=False):
        self.model = model
        self.task = task
        self.config = config
        self.fmodel = FunctionalModel(model)
        self.strategy = strategy or tf.distribute.get_strategy()
        self.rates_layer = inner_rates_of(model)
        if self.rates_layer is not None:
            check_learned_rates(config)
        self.skip_nonfinite = bool(skip_nonfinite)
        if self.skip_nonfinite and self.strategy.num_replicas_in_sync > 1:
            raise ValueError("skip_nonfinite is implemented for one replica; with "
                             f"{self.strategy.num_replicas_in_sync} replicas a non-finite "
                             "step stops the run instead.")
        with self.strategy.scope():
            self.optimizer = keras.optimizers.Adam(learning_rate=outer_learning_rate,
                                                   global_clipnorm=clip_global_norm)
            self.optimizer.build(self.params)
        self.jit_compile = resolve_jit_compile(jit_compile)
        self._step = tf.function(self._replica_step_and_apply, jit_compile=self.jit_compile,
                                 reduce_retracing=True)
        self._distributed_step = None
        self._replica_grads_fn = None

    @property
    def variables(self):
        """The init's trainable weights."""
        return self.model.trainable_variables

    @property
    def params(self):
        """What the outer optimizer updates: the weights, then any learned inner rates."""
        rates = self.rates_layer.rates if self.rates_layer is not None else []
        return list(self.model.trainable_variables) + list(rates)

    def _rate_arguments(self):
        if self.rates_layer is None:
            return None, None
        return ([tf.convert_to_tensor(r) for r in self.rates_layer.rates],
                self.rates_layer.rate_index)

    def meta_gradients(self, meta_batch):
        """(gradients, metrics) at the current init, without applying them (one
        gradient per entry of `params`)."""
        weights = [tf.convert_to_tensor(v) for v in self.variables]
        rates, index = self._rate_arguments()
        return meta_gradients(self.config, self.task, self.fmodel, weights, meta_batch,
                              rates, index)

    def _apply(self, grads):
        self.optimizer.apply(grads, self.params)
        if self.rates_layer is not None:
            self.rates_layer.clip()

    def _replica_step_and_apply(self, meta_batch):
        grads, metrics = self.meta_gradients(meta_batch)
        if not self.skip_nonfinite:
            self._apply(grads)
            return metrics
        finite = tf.reduce_all([tf.reduce_all(tf.math.is_finite(t))
                                for t in list(grads) + list(metrics.values())])

        def apply():
            self._apply(grads)
            return tf.constant(0.0)

        metrics = dict(metrics)
        metrics["skipped"] = tf.cond(finite, apply, lambda: tf.constant(1.0))
        return metrics

    def _replica_grads(self, weights, non_trainable, meta_batch, rates=None):
        """(gradients, metrics) of one replica's share, as means over that share.

        Weights (and rates) come in as tensors read in replica context rather than
        captured variables: an XLA cluster runs on one device, and a captured mirrored
        variable would be read from another replica's device.
        """
        fmodel = BoundFunctionalModel(self.model, non_trainable)
        index = None if rates is None else self.rates_layer.rate_index
        return meta_gradients(self.config, self.task, fmodel, weights, meta_batch, rates, index)

    def _replica_update(self, meta_batch):
        """One replica's part of a distributed step (runs in replica context)."""
        weights = [tf.convert_to_tensor(v) for v in self.variables]
        non_trainable = [tf.convert_to_tensor(v) for v in self.model.non_trainable_variables]
        rates, _ = self._rate_arguments()
        grads, metrics = self._replica_grads_fn(weights, non_trainable, meta_batch, rates)
        replicas = self.strategy.num_replicas_in_sync
        # Keras 3's TensorFlow optimizers SUM-all-reduce the gradients given to `apply`
        # in replica context (the contract `model.fit` relies on when it scales
        # losses by 1/replicas). Every replica holds an equal share of the global
        # meta-batch, so the sum of (share mean / replicas) is the global mean; the
        # reduction and the update run in the same program (one XLA program per step
        # on TPU) and every replica applies the same update. (Applying pre-averaged
        # gradients in cross-replica context instead fails inside a strategy scope on
        # CPU and TPU: Keras then calls merge_call without a replica context.)
        # tests/test_distribute.py checks the result, Adam moments included, against
        # one device.
        scale = tf.constant(1.0 / replicas, grads[0].dtype)
        self.optimizer.apply([g * scale for g in grads], self.params)
        ctx = tf.distribute.get_replica_context()
        return ctx.all_reduce(tf.distribute.ReduceOp.MEAN, metrics)

    def _distributed_apply(self, per_replica_batch):
        metrics = self.strategy.run(self._replica_update, args=(per_replica_batch,))
        if self.rates_layer is not None:  # Cross-replica context: one clip for all copies.
            self.rates_layer.clip()
        # All-reduced metrics are identical on every replica: report the first.
        return {k: self.strategy.experimental_local_results(v)[0] for k, v in metrics.items()}

    def train_step(self, meta_batch):
        """One outer step on a meta-batch; returns the metrics as scalar tensors.

        With a multi-replica strategy, `meta_batch` is a per-replica value from
        `strategy.distribute_datasets_from_function` / `experimental_distribute_dataset`
        (`learnit_tf.distribute.distribute_meta_batches`): each replica adapts its
        share of the global meta-batch, the meta-gradients are averaged over the
        global meta-batch and every replica applies the same Adam update, all inside
        one `tf.function` call (per-replica XLA; one TPU program on TPU).
        """
        if self.strategy.num_replicas_in_sync == 1 and not isinstance(
                meta_batch, tf.distribute.DistributedValues):
            return self._step(meta_batch)
        if self._distributed_step is None:
            self._replica_grads_fn = tf.function(self._replica_grads, jit_compile=self.jit_compile)
            self._distributed_step = tf.function(self._distributed_apply)
        return self._distributed_step(meta_batch)


def outer_schedule(learning_rate, num_steps, warmup_steps=0, decay="constant",
                   final_fraction=0.1):
    """The outer learning rate: a float, or a Keras schedule with linear warm-up from 0
    over `warmup_steps` and then either constant or cosine decay to
    `final_fraction * learning_rate` at `num_steps`.

    Example:

    >>> schedule = outer_schedule(1e-4, 1000, warmup_steps=100, decay="cosine")
    >>> [round(float(schedule(s)) / 1e-4, 3) for s in (0, 50, 100, 1000)]
    [0.0, 0.5, 1.0, 0.1]
    """
    if decay not in ("constant", "cosine"):
        raise ValueError(f"decay must be 'constant' or 'cosine', got {decay!r}.")
    warmup_steps, num_steps = int(warmup_steps), int(num_steps)
    if warmup_steps < 0 or warmup_steps >= max(num_steps, 1):
        raise ValueError(f"warmup_steps must be in [0, num_steps={num_steps}), got "
                         f"{warmup_steps}.")
    if not 0.0 <= float(final_fraction) <= 1.0:
        raise ValueError(f"final_fraction must be in [0, 1], got {final_fraction}.")
    if warmup_steps == 0 and decay == "constant":
        return float(learning_rate)
    return keras.optimizers.schedules.CosineDecay(
        initial_learning_rate=0.0 if warmup_steps else float(learning_rate),
        decay_steps=max(num_steps - warmup_steps, 1),
        alpha=1.0 if decay == "constant" else float(final_fraction),
        warmup_target=float(learning_rate) if warmup_steps else None,
        warmup_steps=warmup_steps)
