"""Inner-loop optimization as pure functions of weight lists.

`adapt` runs K optimizer steps from a weight list on one example's loss. Two modes:
- differentiable (MAML): the loop is unrolled in Python and every gradient is
  recorded by any enclosing tape, so the meta-gradient is exact (second order).
- non-differentiable (first-order MAML, Reptile, test-time fit): a `tf.while_loop`
  whose memory does not grow with K.
"""

import dataclasses

import tensorflow as tf

INNER_OPTIMIZERS = ("sgd", "adam")


@dataclasses.dataclass(frozen=True)
class InnerOptimizer:
    """A functional optimizer for inner loops and test-time fitting.

    Args:
        name: "sgd" (the paper's inner optimizer) or "adam" (the paper's choice for
            standard inits at test time).
        learning_rate: step size.
        beta_1, beta_2, epsilon: Adam constants (Keras defaults, except epsilon,
            which follows optax/the authors' 1e-8).
    """

    name: str = "sgd"
    learning_rate: float = 1e-2
    beta_1: float = 0.9
    beta_2: float = 0.999
    epsilon: float = 1e-8

    def __post_init__(self):
        if self.name not in INNER_OPTIMIZERS:
            raise ValueError(f"Inner optimizer must be one of {INNER_OPTIMIZERS}, got {self.name!r}.")
        if not self.learning_rate > 0:
            raise ValueError(f"Inner learning_rate must be > 0, got {self.learning_rate}.")

    def init_state(self, weights):
        """Optimizer state for `weights` (a tuple of tensors; empty for SGD)."""
        if self.name == "sgd":
            return ()
        zeros = [tf.zeros_like(w) for w in weights]
        return (tf.constant(0.0), zeros, [tf.zeros_like(w) for w in weights])

    def apply(self, weights, grads, state):
        """One step: returns (new_weights, new_state)."""
        lr = self.learning_rate
        if self.name == "sgd":
            return [w - lr * g for w, g in zip(weights, grads)], state
        t, m, v = state
        t = t + 1.0
        m = [self.beta_1 * mi + (1.0 - self.beta_1) * g for mi, g in zip(m, grads)]
        v = [self.beta_2 * vi + (1.0 - self.beta_2) * tf.square(g) for vi, g in zip(v, grads)]
        # Bias-corrected Adam as in optax.adam (eps outside the square root).
        c1 = 1.0 - tf.pow(self.beta_1, t)
        c2 = 1.0 - tf.pow(self.beta_2, t)
        new = [w - lr * (mi / c1) / (tf.sqrt(vi / c2) + self.epsilon)
               for w, mi, vi in zip(weights, m, v)]
        return new, (t, m, v)


def _grads(loss_fn, weights, step):
    with tf.GradientTape() as tape:
        tape.watch(weights)
        loss = loss_fn(weights, step)
    return loss, tape.gradient(loss, weights)


def adapt(loss_fn, weights, steps, optimizer, differentiable=False):
    """Runs `steps` optimizer steps on `loss_fn(weights, step)`.

    Args:
        loss_fn: callable (list of weight tensors, int32 step tensor) -> scalar loss.
        weights: list of tensors to start from.
        steps: static number of steps (Python int).
        optimizer: an `InnerOptimizer`.
        differentiable: keep the whole trajectory differentiable (MAML).

    Returns:
        (adapted weights, float32 tensor (steps,) of the loss before each step).
    """
    weights = list(weights)
    steps = int(steps)
    if steps < 0:
        raise ValueError(f"Number of inner steps must be >= 0, got {steps}.")
    state = optimizer.init_state(weights)
    if differentiable:
        losses = []
        for k in range(steps):
            loss, grads = _grads(loss_fn, weights, tf.constant(k, tf.int32))
            weights, state = optimizer.apply(weights, grads, state)
            losses.append(tf.cast(loss, tf.float32))
        return weights, tf.stack(losses) if losses else tf.zeros((0,))
    if steps == 0:
        return weights, tf.zeros((0,))

    def body(k, ws, st, losses):
        loss, grads = _grads(loss_fn, ws, k)
        grads = [tf.stop_gradient(g) for g in grads]
        ws, st = optimizer.apply(ws, grads, st)
        return k + 1, ws, st, losses.write(k, tf.cast(loss, tf.float32))

    _, weights, _, losses = tf.while_loop(
        lambda k, *_: k < steps, body,
        (tf.constant(0, tf.int32), weights, state, tf.TensorArray(tf.float32, size=steps)))
    return [tf.stop_gradient(w) for w in weights], losses.stack()
