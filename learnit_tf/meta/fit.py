"""Test-time fitting: optimize a network from an init on one new signal.

`Fitter` compiles a chunk of optimizer steps into one `tf.function` call (a
`tf.while_loop` that records the loss and the task's metrics before every step;
XLA with an accelerator, graph mode on CPU: see `learnit_tf.meta.compile`), so
fitting for thousands of steps costs one dispatch per chunk, not per step.
"""

import dataclasses
import time

import numpy as np
import tensorflow as tf

from learnit_tf.meta.compile import resolve_jit_compile
from learnit_tf.meta.inner import InnerOptimizer
from learnit_tf.models.functional import FunctionalModel


@dataclasses.dataclass
class FitResult:
    """Outcome of `fit`.

    Attributes:
        weights: list of fitted weight tensors.
        losses: np.ndarray (steps + 1,), the training loss at steps 0..steps.
        metrics: dict name -> np.ndarray (steps + 1,), the task metrics at steps 0..steps
            (e.g. "psnr").
        seconds: wall time of the fit (compilation included on first use).
        snapshots: dict step -> weights at that step, for the steps asked for.
    """

    weights: list
    losses: np.ndarray
    metrics: dict
    seconds: float
    snapshots: dict = dataclasses.field(default_factory=dict)

    @property
    def psnr(self):
        return self.metrics["psnr"]


class Fitter:
    """Fits examples of one task from given weights with a functional optimizer.

    Args:
        model: a built Keras coordinate network (its architecture; weights are
            passed explicitly to `fit`).
        task: a `learnit_tf.tasks.Task`.
        optimizer: an `InnerOptimizer` (paper: SGD 1e-2 from the meta init, Adam 1e-4
            from a standard init).
        steps_per_call: steps compiled into one call.
        jit_compile: compile with XLA (True), graph mode (False) or "auto" (XLA only
            with an accelerator; see `learnit_tf.meta.compile`).
    """

    def __init__(self, model, task, optimizer=InnerOptimizer("sgd", 1e-2), steps_per_call=100,
                 jit_compile="auto"):
        self.fmodel = FunctionalModel(model)
        self.task = task
        self.optimizer = optimizer
        self.steps_per_call = int(steps_per_call)
        jit_compile = resolve_jit_compile(jit_compile)
        self._chunk = tf.function(self._run_chunk, jit_compile=jit_compile,
                                  reduce_retracing=True)
        self._metrics = tf.function(self._final_metrics, jit_compile=jit_compile,
                                    reduce_retracing=True)

    def _final_metrics(self, weights, example):
        return self.task.metrics(self.fmodel, weights, example)

    def _run_chunk(self, weights, state, example, start, num_steps):
        names = sorted(self.task.metrics(self.fmodel, weights, example).keys())

        def body(k, ws, st, losses, mets):
            with tf.GradientTape() as tape:
                tape.watch(ws)
                loss = self.task.inner_loss(self.fmodel, ws, example, start + k)
            grads = tape.gradient(loss, ws)
            # Reuse the training loss when it already is the metric's MSE (saves a forward).
            m = self.task.metrics_from_inner_loss(loss) or self.task.metrics(
                self.fmodel, ws, example)
            mets = [ta.write(k, tf.cast(m[n], tf.float32)) for ta, n in zip(mets, names)]
            ws, st = self.optimizer.apply(ws, grads, st)
            return k + 1, ws, st, losses.write(k, tf.cast(loss, tf.float32)), mets

        _, weights, state, losses, mets = tf.while_loop(
            lambda k, *_: k < num_steps, body,
            (tf.constant(0, tf.int32), list(weights), state,
             tf.TensorArray(tf.float32, size=num_steps),
             [tf.TensorArray(tf.float32, size=num_steps) for _ in names]))
        return weights, state, losses.stack(), {n: ta.stack() for n, ta in zip(names, mets)}

    def fit(self, example, steps, weights=None, progress=None, snapshot_steps=()):
        """Fits `example` for `steps` steps.

        Args:
            example: dict of tensors for one signal (as the task expects).
            steps: number of optimizer steps (>= 0).
            weights: starting weights (default: the model's current weights).
            progress: optional callable(step_done, total_steps) for progress display.
            snapshot_steps: steps at which to keep a copy of the weights (e.g. for
                reconstruction grids); exact, since chunks end at those steps.

        Returns:
            A `FitResult` with curves of length `steps + 1`.
        """
        steps = int(steps)
        if steps < 0:
            raise ValueError(f"steps must be >= 0, got {steps}.")
        self.task.validate_example(example)
        example = tf.nest.map_structure(tf.convert_to_tensor, example)
        start_time = time.perf_counter()
        weights = [tf.convert_to_tensor(w) for w in (
            weights if weights is not None else self.fmodel.initial_weights())]
        state = self.optimizer.init_state(weights)
        losses, curves = [], {}
        snapshot_steps = sorted({int(k) for k in snapshot_steps if 0 <= int(k) <= steps})
        snapshots = {0: weights} if 0 in snapshot_steps else {}
        done = 0
        while done < steps:
            n = min([self.steps_per_call, steps - done] +
                    [k - done for k in snapshot_steps if k > done])
            weights, state, chunk_losses, chunk_metrics = self._chunk(
                weights, state, example, tf.constant(done, tf.int32), tf.constant(n, tf.int32))
            losses.append(chunk_losses.numpy())
            for name, values in chunk_metrics.items():
                curves.setdefault(name, []).append(values.numpy())
            done += n
            if done in snapshot_steps:
                snapshots[done] = weights
            if progress is not None:
                progress(done, steps)
        final = {k: float(v) for k, v in self._metrics(weights, example).items()}
        metrics = {name: np.concatenate(curves.get(name, []) + [np.array([value], np.float32)])
                   for name, value in final.items()}
        all_losses = np.concatenate(losses + [np.array([final.get("loss", np.nan)], np.float32)])
        return FitResult(weights=weights, losses=all_losses, metrics=metrics,
                         seconds=time.perf_counter() - start_time, snapshots=snapshots)


def fit(model, task, example, steps, optimizer=InnerOptimizer("sgd", 1e-2), weights=None,
        jit_compile="auto"):
    """Fits one example from `model`'s weights (or `weights`). See `Fitter.fit`.

    Example:

    >>> from learnit_tf.models import Siren
    >>> from learnit_tf.kinds.image import ImageTask
    >>> result = fit(Siren(width=16, depth=3, seed=0), ImageTask(8),
    ...              {"image": tf.fill((8, 8, 3), 0.25)}, steps=2)
    >>> result.psnr.shape
    (3,)
    """
    return Fitter(model, task, optimizer, jit_compile=jit_compile).fit(example, steps, weights)
