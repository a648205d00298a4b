"""The outer loop: one compiled call per meta-batch, Keras Adam on the init.

`MetaTrainer` owns the Keras model whose variables hold the init θ and a Keras
optimizer. `train_step(meta_batch)` is a single `tf.function(jit_compile=True)`
call that adapts every example of the meta-batch, forms the meta-gradient and
applies it. Under a `tf.distribute` strategy each replica handles its share of the
global meta-batch and the gradients are averaged over the *global* meta-batch.
"""

import keras
import tensorflow as tf

from learnit_tf.meta.algorithms import MetaConfig, meta_gradients
from learnit_tf.models.functional import FunctionalModel


class MetaTrainer:
    """Meta-trains the weights of `model` as an init for `task`.

    Args:
        model: a built Keras coordinate network; its variables are the init θ.
        task: a `learnit_tf.tasks.Task`.
        config: a `MetaConfig` (algorithm, inner steps, inner optimizer).
        outer_learning_rate: Adam learning rate of the outer loop (paper images: 1e-5).
        jit_compile: compile the step with XLA (default; set False to debug).
        strategy: optional `tf.distribute.Strategy`; the model must have been built
            under its scope.

    Example:

    >>> from learnit_tf.models import Siren
    >>> from learnit_tf.tasks import ImageTask
    >>> trainer = MetaTrainer(Siren(width=16, depth=3, seed=0), ImageTask(8),
    ...                       MetaConfig("maml", 2), outer_learning_rate=1e-4)
    >>> metrics = trainer.train_step({"image": tf.zeros((2, 8, 8, 3))})
    >>> sorted(metrics)
    ['inner_loss_first', 'loss']
    """

    def __init__(self, model, task, config=MetaConfig(), outer_learning_rate=1e-5,
                 jit_compile=True, strategy=None):
        self.model = model
        self.task = task
        self.config = config
        self.fmodel = FunctionalModel(model)
        self.strategy = strategy or tf.distribute.get_strategy()
        with self.strategy.scope():
            self.optimizer = keras.optimizers.Adam(learning_rate=outer_learning_rate)
            self.optimizer.build(model.trainable_variables)
        self.jit_compile = jit_compile
        self._step = tf.function(self._replica_step_and_apply, jit_compile=jit_compile,
                                 reduce_retracing=True)
        self._distributed_step = None

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

    def _replica_grads(self, meta_batch):
        grads, metrics = self.meta_gradients(meta_batch)
        ctx = tf.distribute.get_replica_context()
        # Mean over the global meta-batch: every replica holds an equal share.
        grads = ctx.all_reduce(tf.distribute.ReduceOp.MEAN, grads)
        metrics = ctx.all_reduce(tf.distribute.ReduceOp.MEAN, metrics)
        return grads, metrics

    def _distributed_apply(self, per_replica_batch):
        grads, metrics = self.strategy.run(
            tf.function(self._replica_grads, jit_compile=self.jit_compile),
            args=(per_replica_batch,))
        grads = [self.strategy.experimental_local_results(g)[0] for g in grads]
        metrics = {k: self.strategy.experimental_local_results(v)[0] for k, v in metrics.items()}
        self.optimizer.apply(grads, self.variables)
        return metrics

    def train_step(self, meta_batch):
        """One outer step on a meta-batch; returns the metrics as scalar tensors.

        With a multi-replica strategy, `meta_batch` is a per-replica value from
        `strategy.distribute_datasets_from_function` / `experimental_distribute_dataset`.
        """
        if self.strategy.num_replicas_in_sync == 1 and not isinstance(
                meta_batch, tf.distribute.DistributedValues):
            return self._step(meta_batch)
        if self._distributed_step is None:
            self._distributed_step = tf.function(self._distributed_apply)
        return self._distributed_step(meta_batch)
