"""Meta-gradients of MAML, first-order MAML and Reptile as pure functions.

Given the current init θ (a weight list) and a meta-batch of examples of one
signal class, each function adapts θ to every example with the inner optimizer and
returns the outer "gradient" that an outer optimizer (Adam in the paper) applies:

- MAML (Finn et al. 2017): ∇θ mean_i L_i(adapt_i(θ)), exact, through the unrolled
  inner loop (second order).
- First-order MAML: mean_i ∇L_i evaluated at adapt_i(θ), the inner trajectory
  treated as constant.
- Reptile (Nichol et al. 2018): θ − mean_i adapt_i(θ).

The meta-batch is a dict of tensors with a static leading dimension; the loop over
its examples is unrolled so the compiled step has static shapes everywhere.
"""

import dataclasses

import tensorflow as tf

from learnit_tf.meta.inner import InnerOptimizer, adapt

ALGORITHMS = ("maml", "fomaml", "reptile")


@dataclasses.dataclass(frozen=True)
class MetaConfig:
    """What to meta-learn with.

    Args:
        algorithm: "maml", "fomaml" or "reptile".
        inner_steps: K, the number of inner optimizer steps per example.
        inner_optimizer: the inner `InnerOptimizer` (paper images: SGD lr 1e-2).
    """

    algorithm: str = "maml"
    inner_steps: int = 2
    inner_optimizer: InnerOptimizer = InnerOptimizer("sgd", 1e-2)

    def __post_init__(self):
        if self.algorithm not in ALGORITHMS:
            raise ValueError(f"algorithm must be one of {ALGORITHMS}, got {self.algorithm!r}.")
        if int(self.inner_steps) < 1:
            raise ValueError(f"inner_steps must be >= 1, got {self.inner_steps}.")


def meta_batch_size(meta_batch):
    """Static leading dimension of a meta-batch dict."""
    sizes = {int(t.shape[0]) for t in tf.nest.flatten(meta_batch)}
    if len(sizes) != 1 or None in sizes:
        raise ValueError(f"Meta-batch entries need one static leading dimension, got {sizes}.")
    return sizes.pop()


def _example(meta_batch, i):
    return tf.nest.map_structure(lambda t: t[i], meta_batch)


def _adapt_example(config, task, fmodel, weights, example, differentiable):
    loss_fn = lambda ws, step: task.inner_loss(fmodel, ws, example, step)  # noqa: E731
    return adapt(loss_fn, weights, config.inner_steps, config.inner_optimizer, differentiable)


def meta_gradients(config, task, fmodel, weights, meta_batch):
    """Outer gradients for one meta-batch.

    Args:
        config: a `MetaConfig`.
        task: a `learnit_tf.tasks.Task`.
        fmodel: a `FunctionalModel`.
        weights: list of tensors, the current init θ.
        meta_batch: dict of tensors with a static leading meta-batch dimension.

    Returns:
        (gradients: list like `weights`, metrics: dict with "loss" (mean outer loss
        after adaptation) and "inner_loss_first" (mean step-0 inner loss)).
    """
    weights = [tf.convert_to_tensor(w) for w in weights]
    n = meta_batch_size(meta_batch)
    first_losses, outer_losses = [], []

    if config.algorithm == "maml":
        with tf.GradientTape() as tape:
            tape.watch(weights)
            for i in range(n):
                example = _example(meta_batch, i)
                adapted, losses = _adapt_example(config, task, fmodel, weights, example, True)
                outer_losses.append(task.outer_loss(fmodel, adapted, example))
                first_losses.append(losses[0])
            meta_loss = tf.add_n(outer_losses) / n
        grads = tape.gradient(meta_loss, weights)
    else:
        grads = [tf.zeros_like(w) for w in weights]
        for i in range(n):
            example = _example(meta_batch, i)
            adapted, losses = _adapt_example(config, task, fmodel, weights, example, False)
            first_losses.append(losses[0])
            if config.algorithm == "fomaml":
                with tf.GradientTape() as tape:
                    tape.watch(adapted)
                    outer = task.outer_loss(fmodel, adapted, example)
                example_grads = tape.gradient(outer, adapted)
            else:
                outer = task.outer_loss(fmodel, adapted, example)
                example_grads = [w - a for w, a in zip(weights, adapted)]
            outer_losses.append(outer)
            grads = [g + eg / n for g, eg in zip(grads, example_grads)]
        meta_loss = tf.add_n(outer_losses) / n
    metrics = {"loss": meta_loss, "inner_loss_first": tf.add_n(first_losses) / n}
    return grads, metrics
