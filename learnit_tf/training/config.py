"""`RunConfig`: the typed arguments of one meta-training run, gin-configurable as `meta_train`.

Each setting is written once, as a dataclass field: its type, its default, the check it
must pass and (in the class docstring) what it does. The dataclass itself is the gin
configurable named `meta_train`, so a binding such as `meta_train.num_steps = 2000` in a
`.gin` file or `--gin_bindings` sets the field `RunConfig.num_steps`, which the runner
reads as `config.num_steps`; a binding of a name that is not a field fails when the gin
config is parsed, naming it. Arguments passed in Python win over gin bindings.

Example:

>>> from learnit_tf.kinds.image import ImageTask
>>> config = RunConfig("/tmp/run", model_fn=print, task=ImageTask(8), dataset_fn=print,
...                    num_steps=20)
>>> (config.num_steps, config.checkpoint_every, config.algorithm)
(20, 100, 'maml')
>>> RunConfig("/tmp/run", model_fn=print, task=ImageTask(8), dataset_fn=print, num_steps=0)
Traceback (most recent call last):
...
learnit_tf.training.errors.MetaTrainConfigError: meta_train.num_steps must be an integer >= 1, ...
"""

import dataclasses
import functools
import math
import numbers
import os
from typing import Any, Callable, Optional, Tuple

import gin

from learnit_tf.meta import InnerOptimizer, MetaConfig
from learnit_tf.meta.trainer import outer_schedule
from learnit_tf.models.arguments import MAX_SEED
from learnit_tf.models.inner_rates import normalize_spec
from learnit_tf.training.errors import MetaTrainConfigError

#: The gin name of `RunConfig` (bindings read `meta_train.<field> = ...`).
GIN_NAME = "meta_train"


def _integer(minimum, optional=False):
    """Check: an integer >= minimum (or None when optional); bools are refused."""
    def check(name, value):
        if optional and value is None:
            return None
        if not isinstance(value, numbers.Integral) or isinstance(value, bool) or value < minimum:
            raise MetaTrainConfigError(f"{GIN_NAME}.{name} must be an integer >= {minimum}, "
                                       f"got {value!r}.")
        return int(value)
    return check


def _positive_number(optional=False):
    """Check: a finite real number > 0 (or None when optional)."""
    def check(name, value):
        if optional and value is None:
            return None
        if (not isinstance(value, numbers.Real) or isinstance(value, bool)
                or not math.isfinite(value) or value <= 0):
            raise MetaTrainConfigError(f"{GIN_NAME}.{name} must be a finite number > 0, got "
                                       f"{value!r}.")
        return float(value)
    return check


def _callable(name, value):
    if not callable(value):
        raise MetaTrainConfigError(f"{GIN_NAME}.{name} must be callable, got {value!r}.")
    return value


def _split_name(name, value):
    if not isinstance(value, str):
        raise MetaTrainConfigError(f"{GIN_NAME}.{name} must be a split name (string), got "
                                   f"{value!r}.")
    return value


def _one_of(*choices):
    def check(name, value):
        if value not in choices:
            raise MetaTrainConfigError(
                f"{GIN_NAME}.{name} must be {', '.join(map(repr, choices[:-1]))} or "
                f"{choices[-1]!r}, got {value!r}.")
        return value
    return check


def _warm_start_source(name, value):
    if value is not None and (not isinstance(value, (str, os.PathLike)) or not str(value)):
        raise MetaTrainConfigError(f"{GIN_NAME}.{name} must be a zoo name ('name' or "
                                   f"'name@version') or an init directory, got {value!r}.")
    return value


def _field(default=dataclasses.MISSING, check=None):
    """A field with its check (run in `__post_init__`, which stores the checked value)."""
    return dataclasses.field(default=default, metadata={"check": check} if check else {})


@gin.configurable(GIN_NAME, denylist=["model_dir"])
@dataclasses.dataclass(frozen=True)
class RunConfig:
    """The arguments of one meta-training run, checked on construction.

    Built by `meta_train(model_dir, **overrides)` from its arguments and the gin bindings
    `meta_train.<field> = ...`; `MetaTrainRunner(config).run()` trains with it.

    Attributes:
        model_dir: where checkpoints, logs, TensorBoard events, the gin config and the
            exported init go. Re-running with the same directory resumes; one run at a
            time (a lock file names the holder). Not a gin binding (a flag/argument).
        model_fn: callable(seed=...) -> built Keras coordinate network (e.g. `@Siren`).
        task: a `Task` instance (e.g. `@ImageTask()`); the first training example is
            checked against it (`Task.validate_example`).
        dataset_fn: callable(split=...) -> unbatched tf.data.Dataset of examples (called
            with `split` as a keyword, so a folder reader's `directory` can be bound in gin).
        algorithm: "maml", "fomaml" or "reptile".
        inner_steps: inner optimizer steps per example (>= 1).
        inner_optimizer: "sgd" or "adam".
        inner_learning_rate: inner step size (> 0).
        outer_learning_rate: Adam learning rate of the outer loop (> 0).
        meta_batch_size: global meta-batch size (>= 1).
        num_steps: total outer steps (>= 1).
        checkpoint_every: steps between checkpoints (>= 1).
        eval_every: steps between held-out evaluations (0 disables).
        num_eval_examples: held-out examples in each evaluation.
        eval_split, train_split: dataset splits.
        max_checkpoints: checkpoints kept.
        seed: seed of the init, the data order and per-example randomness.
        jit_compile: True (XLA), False (graph) or "auto" (XLA with an accelerator).
        remat: MAML only: rematerialize the inner loop (memory bounded in inner_steps,
            ~1.5x slower per step; see `MetaConfig`).
        share_first_forward: one forward pass for every example's first inner step where
            the task allows it (same results, faster; see `MetaConfig`).
        mixed_precision: bfloat16 matmuls with float32 weights in the meta step (SIREN):
            False (default), True, or "auto" (where the hardware has bfloat16 matrix
            units: AVX512-BF16/AMX CPUs, GPUs >= 8.0, TPUs). Off by default (shipped
            gin files keep training as they did): the step is 1.80x faster on an
            AVX512-BF16 CPU at 64x64 and 178x178 (goal 1.8x, met narrowly), with a
            held-out 2-step PSNR gap of -0.02 dB (mean of 17 seeds, 95% interval -0.12
            to +0.08 dB; benchmarks/precision.py, docs/benchmarks.md).
            The choice and the sine used are recorded in the init's metadata
            ("precision").
        signal_class: name recorded in the init's metadata (default: dataset_fn's name).
        strategy: optional `tf.distribute.Strategy` (see
            `learnit_tf.training.distribute.get_distribution_strategy`); `meta_batch_size`
            must be a multiple of its replica count.
        show_progress: print a progress bar with ETA.
        stop_after_steps: stop (with a checkpoint) after this many steps in this run, as
            if preempted; for tests and time-sliced jobs.
        inner_rates: Meta-SGD: learn the inner learning rates with the init, per
            "parameter", "tensor" or "layer" (starting at inner_learning_rate; MAML or
            first-order MAML with inner SGD), or a full spec dict. They are saved in the
            init's weights and used by fit and evaluate. Stored normalized (a dict).
        inner_rate_bounds: [low, high] the learned rates are clipped to.
        outer_warmup_steps: linear warm-up of the outer learning rate from 0.
        outer_decay: "constant" or "cosine" (to outer_final_fraction * the rate at the
            end of the schedule).
        outer_final_fraction: see outer_decay.
        outer_decay_steps: the step the schedule ends at (default num_steps); e.g. a run
            stopped early and exported (num_steps=its step) keeps the schedule it ran with.
        clip_global_norm: clip the outer gradients' global norm (None: no clipping).
        max_skipped_steps: one replica: skip up to this many steps whose meta-gradient is
            not finite (weights unchanged) before stopping; 0 stops at the first.
        warm_start: start from an existing init instead of model_fn's random weights: a
            zoo name ("text_siren@2"; verified) or an init directory, of the same
            architecture. Its learned inner rates come too. Used at step 0 only (a resumed
            run continues from its checkpoint); recorded in the metadata's
            hyperparameters.warm_start with the parent's steps, wall time and command.
            Choose another `seed` than the parent's to see the data in a new order.

    Raises:
        MetaTrainConfigError: an argument has the wrong type or range (the message names
            the `meta_train.<field>` gin binding).
    """

    model_dir: str
    model_fn: Callable[..., Any] = _field(gin.REQUIRED, _callable)
    task: Any = gin.REQUIRED
    dataset_fn: Callable[..., Any] = _field(gin.REQUIRED, _callable)
    algorithm: str = "maml"
    inner_steps: int = _field(2, _integer(1))
    inner_optimizer: str = "sgd"
    inner_learning_rate: float = _field(1e-2, _positive_number())
    outer_learning_rate: float = _field(1e-5, _positive_number())
    meta_batch_size: int = _field(3, _integer(1))
    num_steps: int = _field(1000, _integer(1))
    checkpoint_every: int = _field(100, _integer(1))
    eval_every: int = _field(250, _integer(0))
    num_eval_examples: int = _field(8, _integer(0))
    eval_split: str = _field("validation", _split_name)
    train_split: str = _field("train", _split_name)
    max_checkpoints: int = _field(3, _integer(1))
    seed: int = _field(0, _integer(0))
    jit_compile: Any = _field("auto", _one_of(True, False, "auto"))
    remat: bool = False
    share_first_forward: bool = True
    mixed_precision: Any = _field(False, _one_of(True, False, "auto"))
    signal_class: Optional[str] = None
    strategy: Any = None
    show_progress: bool = True
    stop_after_steps: Optional[int] = _field(None, _integer(1, optional=True))
    inner_rates: Any = None
    inner_rate_bounds: Tuple[float, float] = (0.0, 1.0)
    outer_warmup_steps: int = _field(0, _integer(0))
    outer_decay: str = "constant"
    outer_final_fraction: float = 0.1
    outer_decay_steps: Optional[int] = _field(None, _integer(1, optional=True))
    clip_global_norm: Optional[float] = _field(None, _positive_number(optional=True))
    max_skipped_steps: int = _field(0, _integer(0))
    warm_start: Optional[str] = _field(None, _warm_start_source)

    def __post_init__(self):
        if not isinstance(self.model_dir, (str, os.PathLike)) or not str(self.model_dir):
            raise MetaTrainConfigError(f"model_dir must be a non-empty path, got "
                                       f"{self.model_dir!r}.")
        self._set("model_dir", os.fspath(self.model_dir))
        for field in dataclasses.fields(self):
            check = field.metadata.get("check")
            if check is not None:
                self._set(field.name, check(field.name, getattr(self, field.name)))
        if self.seed > MAX_SEED - 1:  # seed and seed + 1 become int32 tensors.
            raise MetaTrainConfigError(f"{GIN_NAME}.seed must be an integer in [0, "
                                       f"{MAX_SEED - 1}], got {self.seed}.")
        try:
            self._set("inner_rates", self.inner_rates_spec)
            self.outer_learning_rate_schedule  # pylint: disable=pointless-statement
        except ValueError as e:
            raise MetaTrainConfigError(f"{GIN_NAME}: {e}") from e
        self.meta_config  # pylint: disable=pointless-statement  (checks the algorithm settings)

    def _set(self, name, value):
        object.__setattr__(self, name, value)  # Frozen: only __post_init__ stores checked values.

    @classmethod
    def field_names(cls):
        """The gin parameters of `meta_train` (every field but model_dir)."""
        return tuple(f.name for f in dataclasses.fields(cls) if f.name != "model_dir")

    @property
    def meta_config(self):
        """The algorithm settings as a `MetaConfig`."""
        try:
            return MetaConfig(self.algorithm, self.inner_steps,
                              InnerOptimizer(self.inner_optimizer, self.inner_learning_rate),
                              share_first_forward=bool(self.share_first_forward),
                              remat=bool(self.remat),
                              mixed_precision=self.mixed_precision)
        except (ValueError, TypeError) as e:
            raise MetaTrainConfigError(f"{GIN_NAME}: {e}") from e

    @property
    def inner_rates_spec(self):
        """The model's inner-rates spec (Meta-SGD) or None; rates start at the inner lr."""
        if self.inner_rates is None:
            return None
        spec = self.inner_rates
        if isinstance(spec, str):
            spec = {"granularity": spec, "initial": self.inner_learning_rate,
                    "bounds": list(self.inner_rate_bounds)}
        return normalize_spec(spec, name=f"{GIN_NAME}.inner_rates")

    @property
    def schedule_steps(self):
        """The step the outer schedule ends at (outer_decay_steps, default num_steps)."""
        return self.num_steps if self.outer_decay_steps is None else self.outer_decay_steps

    @property
    def outer_learning_rate_schedule(self):
        return outer_schedule(self.outer_learning_rate, self.schedule_steps,
                              warmup_steps=self.outer_warmup_steps, decay=self.outer_decay,
                              final_fraction=self.outer_final_fraction)

    @property
    def dataset_name(self):
        fn = self.dataset_fn
        while isinstance(fn, functools.partial):  # Name the function, not a partial's repr.
            fn = fn.func
        return getattr(fn, "__name__", str(fn))
