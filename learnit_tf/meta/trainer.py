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
from learnit_tf.meta.algorithms import MetaConfig, meta_gradients
from learnit_tf.models.functional import FunctionalModel


class _BoundFunctionalModel(FunctionalModel):
    """A `FunctionalModel` whose non-trainable weights are given tensors, not variables."""

    def __init__(self, model, non_trainable):
        super().__init__(model)
        self._non_trainable = list(non_trainable)

    def __call__(self, weights, inputs):
        if len(weights) != self.num_weights:
            raise ValueError(
                f"Expected {self.num_weights} weight tensors for model {self.model.name!r}, "
                f"got {len(weights)}.")
        outputs, _ = self.model.stateless_call(list(weights), self._non_trainable, inputs)
        return outputs


class MetaTrainer:
    """Meta-trains the weights of `model` as an init for `task`.

    Args:
        model: a built Keras coordinate network; its variables are the init θ.
        task: a `learnit_tf.tasks.Task`.
        config: a `MetaConfig` (algorithm, inner steps, inner optimizer).
        outer_learning_rate: Adam learning rate of the outer loop (paper images: 1e-5).
        jit_compile: True (XLA), False (graph mode) or "auto" (default: XLA with an
            accelerator, graph mode on CPU, where it is faster; see `learnit_tf.meta.compile`).
        strategy: optional `tf.distribute.Strategy`; the model must have been built
            under its scope.

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
                 jit_compile="auto", strategy=None):
        self.model = model
        self.task = task
        self.config = config
        self.fmodel = FunctionalModel(model)
        self.strategy = strategy or tf.distribute.get_strategy()
        with self.strategy.scope():
            self.optimizer = keras.optimizers.Adam(learning_rate=outer_learning_rate)
            self.optimizer.build(model.trainable_variables)
        self.jit_compile = resolve_jit_compile(jit_compile)
        self._step = tf.function(self._replica_step_and_apply, jit_compile=self.jit_compile,
                                 reduce_retracing=True)
        self._distributed_step = None
        self._replica_grads_fn = None

    @property
    def variables(self):
        return self.model.trainable_variables

    def meta_gradients(self, meta_batch):
        """(gradients, metrics) at the current init, without applying them."""
        weights = [tf.convert_to_tensor(v) for v in self.variables]
        return meta_gradients(self.config, self.task, self.fmodel, weights, meta_batch)

    def _replica_step_and_apply(self, meta_batch):
        grads, metrics = self.meta_gradients(meta_batch)
        self.optimizer.apply(grads, self.variables)
        return metrics

    def _replica_grads(self, weights, non_trainable, meta_batch):
        """(gradients, metrics) of one replica's share, as means over that share.

        Weights come in as tensors read in replica context rather than captured
        variables: an XLA cluster runs on one device, and a captured mirrored
        variable would be read from another replica's device.
        """
        fmodel = _BoundFunctionalModel(self.model, non_trainable)
        return meta_gradients(self.config, self.task, fmodel, weights, meta_batch)

    def _replica_update(self, meta_batch):
        """One replica's part of a distributed step (runs in replica context)."""
        weights = [tf.convert_to_tensor(v) for v in self.variables]
        non_trainable = [tf.convert_to_tensor(v) for v in self.model.non_trainable_variables]
        grads, metrics = self._replica_grads_fn(weights, non_trainable, meta_batch)
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
        self.optimizer.apply([g * scale for g in grads], self.variables)
        ctx = tf.distribute.get_replica_context()
        return ctx.all_reduce(tf.distribute.ReduceOp.MEAN, metrics)

    def _distributed_apply(self, per_replica_batch):
        metrics = self.strategy.run(self._replica_update, args=(per_replica_batch,))
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
