"""Inner-loop optimization as pure functions of weight lists.

`adapt` runs K optimizer steps from a weight list on one example's loss. Two modes:
- differentiable (MAML): the loop is unrolled in Python and every gradient is
  recorded by any enclosing tape, so the meta-gradient is exact (second order).
  With `remat=True` each step is rematerialized: the backward pass keeps only the
  weights between steps and recomputes a step's activations when it reaches it, so
  memory no longer grows with K by a whole step's activations per step.
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

    def describe(self):
        """E.g. "sgd 0.01" (progress lines and plot titles)."""
        return f"{self.name} {self.learning_rate:g}"

    def record(self):
        """JSON-ready record for metadata and reports."""
        return {"optimizer": self.name, "learning_rate": self.learning_rate}

    def init_state(self, weights):
        """Optimizer state for `weights` (a tuple of tensors; empty for SGD)."""
        if self.name == "sgd":
            return ()
        zeros = [tf.zeros_like(w) for w in weights]
        return (tf.constant(0.0), zeros, [tf.zeros_like(w) for w in weights])

    def apply(self, weights, grads, state, rates=None):
        """One step: returns (new_weights, new_state).

        `rates`: optional step size per weight tensor (a tensor broadcastable to it:
        Meta-SGD's learned rates, see `learnit_tf.models.inner_rates`), used instead
        of `learning_rate`; SGD only.
        """
        lr = self.learning_rate
        if rates is not None:
            if self.name != "sgd":
                raise ValueError("Learned inner learning rates (Meta-SGD) step with SGD; "
                                 f"the inner optimizer is {self.name!r}.")
            return [w - tf.cast(r, w.dtype) * g for w, r, g in zip(weights, rates, grads)], state
        if self.name == "sgd":
            return [w - lr * g for w, g in zip(weights, grads)], state
        t, m, v = state
        t = t + 1.0
        m = [self.beta_1 * mi + (1.0 - self.beta_1) * g for mi, g in zip(m, grads)]
        v = [self.beta_2 * vi + (1.0 - self.beta_2) * tf.square(g) for vi, g in zip(v, grads)]
        # Bias-corrected Adam as in optax.adam (eps outside the square root).
        c1 = 1.0 - tf.pow(self.beta_1, t)
        c2 = 1.0 - tf.pow(self.beta_2, t)
        # The step counter is float32; the weights may be float64 (gradient checks).
        new = [w - lr * (mi / tf.cast(c1, w.dtype)) / (tf.sqrt(vi / tf.cast(c2, w.dtype))
                                                        + self.epsilon)
               for w, mi, vi in zip(weights, m, v)]
        return new, (t, m, v)


def data_dependency(tensors):
    """A scalar 0 that depends on the values of all `tensors`.

    Added to the inputs of a recomputation so that it cannot run before the
    backward pass reaches it, and cannot be merged with the forward computation
    by common-subexpression elimination (XLA ignores control dependencies; `where`
    on x == x is not foldable because of NaN). Same trick as `tf.recompute_grad`.
    """
    # Every incoming gradient, not just the first: a gradient of an unused output
    # (the step's loss) is zeros_like(forward output) and arrives early.
    elem = tf.add_n([tf.cast(tf.reduce_sum(tf.reshape(t, [-1])[:1]), tf.float32)
                     for t in tensors])
    return tf.where(elem == elem, 0.0, float("nan"))


def rematerialized(fn):
    """Wraps `fn(*tensors) -> list of tensors` so its backward pass recomputes it.

    Unlike `tf.recompute_grad`, `fn` may itself use a `GradientTape` (an inner
    optimizer step does): `tf.recompute_grad` runs the forward pass with every tape
    stopped, which would silence the inner tape. Here the forward runs normally
    and the gradient function recomputes `fn` under a fresh tape, so the backward
    graph holds on to `fn`'s inputs only. In a `tf.function` (how `MetaTrainer`
    always runs) that is what frees the intermediates; an eager outer tape still
    records them, so eager calls are correct but do not save memory.
    """

    @tf.custom_gradient
    def wrapped(*args):
        result = list(fn(*args))

        def grad(*dresult, variables=None):
            dep = data_dependency([d for d in dresult if d is not None])
            inputs = [a + tf.cast(dep, a.dtype) for a in args]
            with tf.GradientTape() as tape:
                tape.watch(inputs)
                recomputed = list(fn(*inputs))
            grads = tape.gradient(recomputed, inputs, output_gradients=list(dresult),
                                  unconnected_gradients=tf.UnconnectedGradients.ZERO)
            if variables:
                # Only non-trainable constants (e.g. a Fourier matrix) are read as variables.
                return grads, [tf.zeros_like(v) for v in variables]
            return grads

        return result, grad

    return wrapped


def _grads(loss_fn, weights, step):
    with tf.GradientTape() as tape:
        tape.watch(weights)
        loss = loss_fn(weights, step)
    return loss, tape.gradient(loss, weights)


def _rematerialized_step(loss_fn, optimizer, k, weights, state, rates=None):
    """One differentiable optimizer step whose activations are recomputed on the way back.

    Learned `rates` are inputs of the rematerialized function, so they get gradients.
    """
    n = len(weights)
    m = 0 if rates is None else len(rates)
    flat_state = tf.nest.flatten(state)

    def step(*flat):
        ws = list(flat[:n])
        rs = list(flat[n:n + m]) if m else None
        st = tf.nest.pack_sequence_as(state, list(flat[n + m:]))
        loss, grads = _grads(loss_fn, ws, tf.constant(k, tf.int32))
        new_ws, new_st = optimizer.apply(ws, grads, st, rs)
        # Rates pass through unchanged (an output per input keeps the wrapper simple).
        return [loss] + list(new_ws) + (rs or []) + tf.nest.flatten(new_st)

    out = rematerialized(step)(*weights, *(rates or []), *flat_state)
    return out[0], list(out[1:1 + n]), tf.nest.pack_sequence_as(state, out[1 + n + m:])


def adapt(loss_fn, weights, steps, optimizer, differentiable=False, remat=False,
          first_step=None, rates=None, first_order=False):
    """Runs `steps` optimizer steps on `loss_fn(weights, step)`.

    Args:
        loss_fn: callable (list of weight tensors, int32 step tensor) -> scalar loss.
        weights: list of tensors to start from.
        steps: static number of steps (Python int).
        optimizer: an `InnerOptimizer`.
        differentiable: keep the whole trajectory differentiable (MAML).
        remat: with `differentiable`, rematerialize every step (see module docstring).
        first_step: optional (loss, gradients) of `loss_fn` at `weights` for step 0,
            already computed by the caller (a forward pass shared by a meta-batch).
        rates: optional learned step size per weight tensor (Meta-SGD; SGD only).
        first_order: with `differentiable`, stop the gradients of the inner gradients:
            the adapted weights then depend on `weights` as the identity and on `rates`
            through -sum_k g_k (first-order MAML with learned rates).

    Returns:
        (adapted weights, float32 tensor (steps,) of the loss before each step).
    """
    weights = list(weights)
    steps = int(steps)
    if steps < 0:
        raise ValueError(f"Number of inner steps must be >= 0, got {steps}.")
    if first_step is not None and steps == 0:
        raise ValueError("first_step was given for an adaptation of 0 steps.")
    state = optimizer.init_state(weights)
    start, first_losses = 0, []
    stop = tf.stop_gradient if first_order else (lambda t: t)
    if first_step is not None:
        loss0, grads0 = first_step
        weights, state = optimizer.apply(weights, [stop(g) for g in grads0], state, rates)
        start, first_losses = 1, [tf.cast(loss0, tf.float32)]
    if differentiable:
        losses = list(first_losses)
        for k in range(start, steps):
            if remat:
                loss, weights, state = _rematerialized_step(loss_fn, optimizer, k, weights, state,
                                                            rates)
            else:
                loss, grads = _grads(loss_fn, weights, tf.constant(k, tf.int32))
                weights, state = optimizer.apply(weights, [stop(g) for g in grads], state, rates)
            losses.append(tf.cast(loss, tf.float32))
        return weights, tf.stack(losses) if losses else tf.zeros((0,))
    if steps == 0:
        return weights, tf.zeros((0,))
    if first_step is not None:
        weights = [tf.stop_gradient(w) for w in weights]
        state = tf.nest.map_structure(tf.stop_gradient, state)

    if rates is not None:
        rates = [tf.stop_gradient(r) for r in rates]

    def body(k, ws, st, losses):
        loss, grads = _grads(loss_fn, ws, k)
        grads = [tf.stop_gradient(g) for g in grads]
        ws, st = optimizer.apply(ws, grads, st, rates)
        return k + 1, ws, st, losses.write(k, tf.cast(loss, tf.float32))

    losses = tf.TensorArray(tf.float32, size=steps)
    if first_losses:
        losses = losses.write(0, tf.stop_gradient(first_losses[0]))
    _, weights, _, losses = tf.while_loop(
        lambda k, *_: k < steps, body,
        (tf.constant(start, tf.int32), weights, state, losses))
    return [tf.stop_gradient(w) for w in weights], losses.stack()
