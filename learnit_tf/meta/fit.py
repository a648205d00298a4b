"""Test-time fitting: optimize a network from an init on one new signal.

`Fitter` compiles a chunk of optimizer steps into one `tf.function` call (a
`tf.while_loop` that records the loss and the task's metrics before every step;
XLA with an accelerator, graph mode on CPU: see `learnit_tf.meta.compile`), so
fitting for thousands of steps costs one dispatch per chunk, not per step. Every
weight, constant (e.g. a Fourier matrix) and learned rate is an argument of the
compiled function, never a captured variable, so one `Fitter` serves every model of
the same architecture: `fit` keeps the fitters it built and reuses them.

What to fit with is an `InnerOptimizer` or a `FitRecipe`: phases of optimizers, e.g.
an init's meta-learned inner steps (with its learned Meta-SGD rates) followed by Adam
for the long run.
"""

import collections
import dataclasses
import json
import time
from typing import Optional

import numpy as np
import tensorflow as tf

from learnit_tf.meta.compile import resolve_jit_compile
from learnit_tf.meta.fit_recipe import FitPhase, FitRecipe  # noqa: F401 (re-exported)
from learnit_tf.meta.inner import InnerOptimizer
from learnit_tf.models.functional import BoundFunctionalModel
from learnit_tf.models.inner_rates import inner_rates_of, per_weight_rates


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


@dataclasses.dataclass
class FitState:
    """A fit in progress (`Fitter.start`): everything `Fitter.advance` needs to continue
    it, so a fit can stop at any step (to evaluate or keep its weights) and go on with
    the same optimizer state (Adam's moments are not restarted).

    Attributes:
        example: the example's tensors.
        weights: the current weight tensors.
        step: optimizer steps done.
        segment: (start, end, phase index) of the recipe segment whose optimizer state
            `optimizer_state` is (None before the first step).
        optimizer_state: that optimizer's state.
        non_trainable, rates: the model's constants and learned inner rates.
        losses, curves: the recorded chunks (loss, and metric name -> values, before
            every step).
        snapshots: step -> weights kept at that step.
        seconds: wall time spent in `start` and `advance`.
    """

    example: dict
    weights: list
    non_trainable: list
    rates: list
    step: int = 0
    segment: Optional[tuple] = None
    optimizer_state: object = None
    losses: list = dataclasses.field(default_factory=list)
    curves: dict = dataclasses.field(default_factory=dict)
    snapshots: dict = dataclasses.field(default_factory=dict)
    seconds: float = 0.0


class Fitter:
    """Fits examples of one task from given weights with a functional optimizer.

    Args:
        model: a built Keras coordinate network (its architecture; by default its
            weights, constants and learned rates are what `fit` starts from).
        task: a `learnit_tf.tasks.Task`.
        optimizer: an `InnerOptimizer` (paper: SGD 1e-2 from the meta init, Adam 1e-4
            from a standard init) or a `FitRecipe` (phases; a phase with
            `learned_rates` needs a model built with `inner_rates`); default
            `default_optimizer(model)`.
        steps_per_call: steps compiled into one call.
        jit_compile: compile with XLA (True), graph mode (False) or "auto" (XLA only
            with an accelerator; see `learnit_tf.meta.compile`).
        record_metrics: record the task's metrics before every step (the curves of
            `FitResult.metrics`). False records only the loss: for tasks whose metric
            is measured apart from the fit, at the steps a fit stops at (NeRF renders
            held-out views), where a metric every step would cost more than the fit.

    `fit` runs a whole fit; `start`, `advance` and `finish` run it in stages, stopping
    at any step with the optimizer state carried over (`fit(..., stop_at=, on_stop=)`
    does both).
    """

    def __init__(self, model, task, optimizer=None, steps_per_call=100, jit_compile="auto",
                 record_metrics=True):
        if not model.built:
            raise ValueError(f"Model {model.name!r} must be built before fitting.")
        self.model = model
        self.task = task
        if optimizer is None:
            optimizer = default_optimizer(model)
        self.recipe = FitRecipe.of(optimizer)
        self.optimizer = optimizer
        if (any(p.learned_rates for p in self.recipe.phases)
                and inner_rates_of(model) is None):
            raise ValueError(f"The fit recipe {self.recipe.name!r} steps with learned inner "
                             f"rates, but model {model.name!r} has none (it was not built "
                             "with inner_rates).")
        self.steps_per_call = int(steps_per_call)
        if self.steps_per_call < 1:
            raise ValueError(f"steps_per_call must be >= 1, got {steps_per_call!r}.")
        self.record_metrics = bool(record_metrics)
        self.trace_count = 0  # Python-side traces of the compiled chunk (tests count them).
        jit_compile = resolve_jit_compile(jit_compile)
        self.jit_compile = jit_compile
        self._chunks = [tf.function(self._chunk_for(phase), jit_compile=jit_compile,
                                    reduce_retracing=True) for phase in self.recipe.phases]
        self._metrics = tf.function(self._final_metrics, jit_compile=jit_compile,
                                    reduce_retracing=True)

    @property
    def fmodel(self):
        """The model as a function of its weights (constants read from the model)."""
        return BoundFunctionalModel(self.model)

    def _final_metrics(self, weights, non_trainable, example):
        return self.task.metrics(BoundFunctionalModel(self.model, non_trainable), weights,
                                 example)

    def _chunk_for(self, phase):
        def chunk(weights, state, example, start, num_steps, non_trainable, rates,
                  phase_step):
            return self._run_chunk(phase, weights, state, example, start, num_steps,
                                   non_trainable, rates, phase_step)
        return chunk

    @staticmethod
    def _phase_state(phase, weights):
        """A phase's state at its start: its optimizer's, plus a zero momentum buffer
        per weight when the phase has momentum."""
        state = phase.optimizer.init_state(weights)
        if phase.momentum:
            return (state, [tf.zeros_like(w) for w in weights])
        return state

    @staticmethod
    def _phase_step(phase, ws, grads, st, rates, k):
        """One step of `phase` (its optimizer, then its rate scale, momentum (restarted
        when the gradient disagrees with it) and warm-up if it has them);
        `k`: steps the phase has done before this one."""
        if not (phase.momentum or phase.warmup_steps or phase.rate_scale != 1.0):
            return phase.optimizer.apply(ws, grads, st, rates)
        opt_state, buffers = st if phase.momentum else (st, None)
        new, opt_state = phase.optimizer.apply(ws, grads, opt_state, rates)
        updates = [w - n for w, n in zip(ws, new)]
        if phase.rate_scale != 1.0:
            updates = [tf.cast(phase.rate_scale, u.dtype) * u for u in updates]
        if phase.momentum_restart:
            # The buffer steps downhill only while the gradient agrees with it.
            agree = tf.add_n([tf.reduce_sum(tf.cast(g * b, tf.float32))
                              for g, b in zip(grads, buffers)]) >= 0.0
            buffers = [b * tf.cast(agree, b.dtype) for b in buffers]
        if phase.momentum:
            buffers = [phase.momentum * b + u for b, u in zip(buffers, updates)]
            updates = buffers
        if phase.warmup_steps:
            scale = tf.minimum(1.0, tf.cast(k + 1, tf.float32) / float(phase.warmup_steps))
            updates = [tf.cast(scale, u.dtype) * u for u in updates]
        ws = [w - u for w, u in zip(ws, updates)]
        return ws, ((opt_state, buffers) if phase.momentum else opt_state)

    def _run_chunk(self, phase, weights, state, example, start, num_steps, non_trainable,
                   rates, phase_step):
        self.trace_count += 1
        fmodel = BoundFunctionalModel(self.model, non_trainable)
        names = (sorted(self.task.metrics(fmodel, weights, example).keys())
                 if self.record_metrics else [])
        rates = list(rates) if phase.learned_rates else None

        def body(k, ws, st, losses, mets):
            with tf.GradientTape() as tape:
                tape.watch(ws)
                loss = self.task.inner_loss(fmodel, ws, example, start + k)
            grads = tape.gradient(loss, ws)
            if names:
                # Reuse the training loss when it already is the metric's MSE (saves a
                # forward).
                m = (self.task.metrics_from_inner_loss(loss)
                     or self.task.metrics(fmodel, ws, example))
                mets = [ta.write(k, tf.cast(m[n], tf.float32)) for ta, n in zip(mets, names)]
            ws, st = self._phase_step(phase, ws, grads, st, rates, phase_step + k)
            return k + 1, ws, st, losses.write(k, tf.cast(loss, tf.float32)), mets

        _, weights, state, losses, mets = tf.while_loop(
            lambda k, *_: k < num_steps, body,
            (tf.constant(0, tf.int32), list(weights), state,
             tf.TensorArray(tf.float32, size=num_steps),
             [tf.TensorArray(tf.float32, size=num_steps) for _ in names]))
        return weights, state, losses.stack(), {n: ta.stack() for n, ta in zip(names, mets)}

    def _model_state(self, model):
        """(non-trainable tensors, per-weight learned rates or []) of `model`."""
        non_trainable = [tf.convert_to_tensor(v) for v in model.non_trainable_variables]
        rates = [tf.convert_to_tensor(r) for r in per_weight_rates(model) or []]
        if any(p.learned_rates for p in self.recipe.phases) and not rates:
            raise ValueError(f"The fit recipe {self.recipe.name!r} steps with learned inner "
                             f"rates, but model {model.name!r} has none.")
        return non_trainable, rates

    def start(self, example, weights=None, model=None):
        """A `FitState` at step 0: `example` to be fitted from `weights` (default: the
        model's current weights), with the constants and learned rates of `model`
        (default: the Fitter's own; same architecture)."""
        start_time = time.perf_counter()
        self.task.validate_example(example)
        example = self.task.prepare_example(
            tf.nest.map_structure(tf.convert_to_tensor, example))
        model = self.model if model is None else model
        non_trainable, rates = self._model_state(model)
        weights = [tf.convert_to_tensor(w) for w in (
            weights if weights is not None else model.trainable_variables)]
        return FitState(example=example, weights=weights, non_trainable=non_trainable,
                        rates=rates, seconds=time.perf_counter() - start_time)

    def advance(self, state, to_step, progress=None, total=None):
        """Continues the fit `state` until `to_step` steps are done (in place; returns it).

        The optimizer state is carried over from the previous call: stopping at any
        steps gives the same weights as one uninterrupted fit. A recipe's new phase
        starts its optimizer afresh (e.g. Adam after the inner steps), and its momentum
        buffer and warm-up (`FitPhase`).

        Args:
            state: a `FitState` from `start`.
            to_step: steps done when this returns (>= `state.step`).
            progress: optional callable(steps done, `total`) after every chunk.
            total: the fit's total steps, for `progress` (default `to_step`).
        """
        to_step = int(to_step)
        if to_step < state.step:
            raise ValueError(f"The fit is at step {state.step}; it cannot advance to "
                             f"step {to_step}.")
        start_time = time.perf_counter()
        while state.step < to_step:
            segment = self.recipe.segment_at(state.step)
            index = segment[2]
            if segment != state.segment:
                state.segment = segment
                state.optimizer_state = self._phase_state(self.recipe.phases[index],
                                                          state.weights)
            end = to_step if segment[1] is None else min(to_step, segment[1])
            n = min(self.steps_per_call, end - state.step)
            state.weights, state.optimizer_state, chunk_losses, chunk_metrics = (
                self._chunks[index](state.weights, state.optimizer_state, state.example,
                                    tf.constant(state.step, tf.int32), tf.constant(n, tf.int32),
                                    state.non_trainable, state.rates,
                                    tf.constant(state.step - segment[0], tf.int32)))
            state.losses.append(chunk_losses.numpy())
            for name, values in chunk_metrics.items():
                state.curves.setdefault(name, []).append(values.numpy())
            state.step += n
            if progress is not None:
                progress(state.step, to_step if total is None else total)
        state.seconds += time.perf_counter() - start_time
        return state

    def finish(self, state):
        """The `FitResult` of the fit `state` as it stands (curves of `state.step + 1`
        points: the metrics before every step and after the last)."""
        start_time = time.perf_counter()
        final = {}
        if self.record_metrics:
            final = {k: float(v) for k, v in self._metrics(
                state.weights, state.non_trainable, state.example).items()}
        metrics = {name: np.concatenate(state.curves.get(name, []) +
                                        [np.array([value], np.float32)])
                   for name, value in final.items()}
        losses = np.concatenate(state.losses +
                                [np.array([final.get("loss", np.nan)], np.float32)])
        return FitResult(weights=state.weights, losses=losses, metrics=metrics,
                         seconds=state.seconds + time.perf_counter() - start_time,
                         snapshots=dict(state.snapshots))

    def fit(self, example, steps, weights=None, progress=None, snapshot_steps=(), model=None,
            stop_at=(), on_stop=None):
        """Fits `example` for `steps` steps.

        Args:
            example: dict of tensors for one signal (as the task expects).
            steps: number of optimizer steps (>= 0).
            weights: starting weights (default: the model's current weights).
            progress: optional callable(step_done, total_steps) for progress display.
            snapshot_steps: steps at which to keep a copy of the weights (e.g. for
                reconstruction grids); exact, since chunks end at those steps.
            model: take the starting weights, constants and learned rates from this
                model (same architecture as the Fitter's) instead of the Fitter's own.
            stop_at: steps (0..steps) at which to call `on_stop`; the fit goes on from
                there with its optimizer state.
            on_stop: callable(step, weights) at each of `stop_at` (e.g. measuring a
                metric apart from the fit).

        Returns:
            A `FitResult` with curves of length `steps + 1`.

        Example (stopping at step 2 changes nothing about the fit):

        >>> from learnit_tf.models import Siren
        >>> from learnit_tf.kinds.image import ImageTask
        >>> fitter = Fitter(Siren(width=16, depth=3, seed=0), ImageTask(8),
        ...                 InnerOptimizer("adam", 1e-3))
        >>> example = {"image": tf.fill((8, 8, 3), 0.25)}
        >>> seen = []
        >>> result = fitter.fit(example, 4, stop_at=[2], on_stop=lambda k, w: seen.append(k))
        >>> seen, bool(np.allclose(result.psnr, fitter.fit(example, 4).psnr))
        ([2], True)
        """
        steps = int(steps)
        if steps < 0:
            raise ValueError(f"steps must be >= 0, got {steps}.")
        stops = sorted({int(k) for k in stop_at})
        if stops and (stops[0] < 0 or stops[-1] > steps):
            raise ValueError(f"stop_at must be steps in 0..{steps}, got {list(stop_at)}.")
        snapshot_steps = sorted({int(k) for k in snapshot_steps if 0 <= int(k) <= steps})
        state = self.start(example, weights, model)
        for target in sorted(set(snapshot_steps) | set(stops) | {steps}):
            self.advance(state, target, progress, total=steps)
            if target in snapshot_steps:
                state.snapshots[target] = state.weights
            if target in stops and on_stop is not None:
                on_stop(target, state.weights)
        return self.finish(state)


_FITTERS = collections.OrderedDict()  # Fitters built by `fit`, most recently used last.
_MAX_FITTERS = 8


def _fitter_key(model, task, optimizer, jit_compile):
    """What a compiled fit step depends on: architecture, task, recipe, compilation."""
    # Name and seed change no compiled computation (weights and constants are arguments).
    config = {k: v for k, v in model.get_config().items() if k not in ("name", "seed")}
    try:
        task_config = json.dumps(task.get_config(), sort_keys=True, default=repr)
    except (AttributeError, TypeError, NotImplementedError):
        return None  # A task without a config cannot be matched: no reuse.
    return (type(model).__name__, json.dumps(config, sort_keys=True, default=repr),
            type(task).__name__, task_config, repr(FitRecipe.of(optimizer)),
            resolve_jit_compile(jit_compile))


def default_optimizer(model):
    """How to fit from `model` when no optimizer is given: its init's fit recipe
    (`model.fit_recipe`, set by `learnit_tf.zoo.load` / `init_io.load_init` from the
    metadata), else SGD 1e-2 (the paper's inner optimizer for images) stepping with its
    learned Meta-SGD rates if it has them."""
    recipe = getattr(model, "fit_recipe", None)
    if recipe is not None:
        return recipe
    if inner_rates_of(model) is not None:
        return FitRecipe((FitPhase(InnerOptimizer("sgd", 1e-2), learned_rates=True),))
    return InnerOptimizer("sgd", 1e-2)


def fit(model, task, example, steps, optimizer=None, weights=None, jit_compile="auto"):
    """Fits one example from `model`'s weights (or `weights`). See `Fitter.fit`.

    `optimizer`: an `InnerOptimizer` or `FitRecipe`; default `default_optimizer(model)`
    (a zoo init's own fit recipe, or SGD 1e-2).

    The compiled step is reused across calls with the same architecture, task and
    optimizer (the last 8 such fitters are kept), so fitting a folder of signals one
    call at a time traces once.

    Example:

    >>> from learnit_tf.models import Siren
    >>> from learnit_tf.kinds.image import ImageTask
    >>> result = fit(Siren(width=16, depth=3, seed=0), ImageTask(8),
    ...              {"image": tf.fill((8, 8, 3), 0.25)}, steps=2)
    >>> result.psnr.shape
    (3,)
    """
    if optimizer is None:
        optimizer = default_optimizer(model)
    key = _fitter_key(model, task, optimizer, jit_compile)
    fitter = _FITTERS.get(key) if key is not None else None
    if fitter is None:
        fitter = Fitter(model, task, optimizer, jit_compile=jit_compile)
        if key is not None:
            _FITTERS[key] = fitter
            while len(_FITTERS) > _MAX_FITTERS:
                _FITTERS.popitem(last=False)
    else:
        _FITTERS.move_to_end(key)
    return fitter.fit(example, steps, weights, model=model)
