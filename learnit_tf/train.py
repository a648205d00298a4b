"""The meta-training loop: data → compiled meta step → checkpoints → exported init.

`meta_train` is the gin-configurable entry point behind `scripts/meta_train.py`: it
checks its arguments (`RunConfig`) and hands them to a `MetaTrainRunner`, whose
phases — check data, build, restore, step, evaluate, checkpoint, export — are
methods that can be read (and overridden in a subclass) one by one.

It is resumable: the model, the outer optimizer, the step, the accumulated wall
time and (on one replica) the data iterator live in one `tf.train.Checkpoint`
managed by a `tf.train.CheckpointManager` (which writes atomically), so a restarted
run continues with exactly the batches and losses an uninterrupted run would have
produced. Checkpoints are written every `checkpoint_every` steps and on preemption
(SIGTERM or a `PreemptionCheckpointHandler` notice, see `learnit_tf.distribute`) or
Ctrl-C (SIGINT; a second Ctrl-C stops at once). A resumed run drops the rows of
`train_log.csv` and the TensorBoard events the previous run wrote after its last
checkpoint (rewriting the event files), so its curves continue without overlap.

One run per `model_dir`: a lock file (`meta_train.lock`, naming the holder's pid and
host), taken before the data is read, makes a second concurrent run fail at once; a
lock left by a process that is gone (same host, dead pid) is taken over. Non-finite
weights are never checkpointed or exported (`NonFiniteWeightsError`; the last good
checkpoint stays).

Under a multi-replica `tf.distribute` strategy the global meta-batch is split over
the replicas (`learnit_tf.distribute.distribute_meta_batches`); a distributed
iterator cannot be checkpointed, so a resumed replicated run re-positions its data
by skipping the batches already consumed (deterministic, same batches). All other
per-step randomness is stateless, derived from (seed, example index, step), so
there is no further RNG state to save. `model_dir` may be a gs:// path.
"""

import contextlib
import csv
import dataclasses
import datetime
import functools
import hashlib
import inspect
import io
import json
import math
import numbers
import os
import signal
import socket
import sys
import tempfile
import time
import uuid
from typing import Any, Callable, Optional

import gin
import keras
import numpy as np
import tensorflow as tf

from learnit_tf import distribute, init_io, kinds
from learnit_tf.data.pipeline import meta_batches, take_examples
from learnit_tf.metadata import (DatasetSpec, Hyperparameters, InitMetadata, TaskSpec,
                                 as_init_metadata)
from learnit_tf.models.arguments import MAX_SEED
from learnit_tf.models.functional import FunctionalModel
from learnit_tf.meta import FitPhase, FitRecipe, Fitter, InnerOptimizer, MetaConfig, MetaTrainer
from learnit_tf.meta.trainer import outer_schedule
from learnit_tf.models.inner_rates import inner_rates_of, normalize_spec

LOG_FILE = "train_log.csv"
WARM_START_FILE = "warm_start.json"  # The parent init of a warm-started run.
LOG_COLUMNS = ("step", "loss", "inner_loss_first", "seconds")
LOCK_FILE = "meta_train.lock"
TENSORBOARD_DIR = "tensorboard"


class NonFiniteLossError(RuntimeError):
    """Raised when meta-training produces a NaN or infinite loss."""


class NonFiniteWeightsError(RuntimeError):
    """Raised instead of checkpointing or exporting weights that hold NaN or infinity."""


class CheckpointWriteError(RuntimeError):
    """A checkpoint could not be written (e.g. the disk is full); the previous one is intact."""


class MetaTrainConfigError(ValueError):
    """A `meta_train` argument, or the data it names, is unusable (raised before building)."""


class ModelDirLockedError(RuntimeError):
    """Another `meta_train` run holds the model directory."""


def _read_log(path, max_step):
    """Rows of a previous run's log up to `max_step` (a resumed run rewrites the rest)."""
    if not tf.io.gfile.exists(path):
        return []
    with tf.io.gfile.GFile(path) as f:
        return [row for row in csv.DictReader(f) if int(row["step"]) <= max_step]


def _write_text_atomic(path, text):
    """Writes a (local or gs://) file through a temporary and a rename."""
    tmp = path + ".tmp"
    try:
        with tf.io.gfile.GFile(tmp, "w") as f:
            f.write(text)
        tf.io.gfile.rename(tmp, path, overwrite=True)
    except BaseException:  # E.g. a full disk: leave no temporary behind.
        if tf.io.gfile.exists(tmp):
            tf.io.gfile.remove(tmp)
        raise


def _rewrite_log(path, rows):
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=LOG_COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    _write_text_atomic(path, text.getvalue())


class _StepLog:
    """Appends per-step rows to the CSV log.

    Local logs are flushed every step (watchable while training). On remote file
    systems (gs://), where an append re-uploads the whole object, rows are flushed
    only before each checkpoint, which is all a resumed run keeps anyway.
    """

    def __init__(self, path):
        self._file = tf.io.gfile.GFile(path, "a")
        self._writer = csv.DictWriter(self._file, fieldnames=LOG_COLUMNS, lineterminator="\n")
        self._every_row = not distribute.is_remote_path(path)

    def write(self, row):
        self._writer.writerow(row)
        if self._every_row:
            self._file.flush()

    def flush(self):
        self._file.flush()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self._file.close()
        return False


def _has_iterator_state(checkpoint_path):
    """Whether a checkpoint holds a saved data iterator (one-replica runs save one)."""
    # NewCheckpointReader takes the checkpoint prefix as is (tf.train.list_variables
    # first asks whether the path is a directory, which prefix-matching file systems
    # answer with yes).
    reader = tf.compat.v1.train.NewCheckpointReader(checkpoint_path)
    return any(name.startswith("data/") for name in reader.get_variable_to_shape_map())


def evaluate_init(fitter, examples, steps, weights=None):
    """Mean and std of the task metrics after 0..steps test-time steps on `examples`.

    Args:
        fitter: a `learnit_tf.meta.Fitter` (its model's current weights are the init
            unless `weights` is given).
        examples: list of example dicts.
        steps: test-time steps.
        weights: optional starting weights.

    Returns:
        dict name -> (mean (steps+1,), std (steps+1,)) numpy arrays.
    """
    curves = {}
    for example in examples:
        result = fitter.fit(example, steps, weights=weights)
        for name, values in result.metrics.items():
            curves.setdefault(name, []).append(values)
    return {name: (np.mean(v, axis=0), np.std(v, axis=0)) for name, v in curves.items()}


# ------------------------------------------------------------------- run configuration


def _integer(name, value, minimum, optional=False):
    if optional and value is None:
        return None
    if not isinstance(value, numbers.Integral) or isinstance(value, bool) or value < minimum:
        raise MetaTrainConfigError(f"meta_train.{name} must be an integer >= {minimum}, got "
                                   f"{value!r}.")
    return int(value)


def _positive_number(name, value):
    if (not isinstance(value, numbers.Real) or isinstance(value, bool)
            or not math.isfinite(value) or value <= 0):
        raise MetaTrainConfigError(f"meta_train.{name} must be a finite number > 0, got "
                                   f"{value!r}.")
    return float(value)


@dataclasses.dataclass(frozen=True)
class RunConfig:
    """The arguments of one `meta_train` run, checked on construction (see `meta_train`).

    Raises:
        MetaTrainConfigError: an argument has the wrong type or range (the message names
            the `meta_train.<parameter>` gin binding).
    """

    model_dir: str
    model_fn: Callable[..., Any]
    task: Any
    dataset_fn: Callable[..., Any]
    algorithm: str = "maml"
    inner_steps: int = 2
    inner_optimizer: str = "sgd"
    inner_learning_rate: float = 1e-2
    outer_learning_rate: float = 1e-5
    meta_batch_size: int = 3
    num_steps: int = 1000
    checkpoint_every: int = 100
    eval_every: int = 250
    num_eval_examples: int = 8
    eval_split: str = "validation"
    train_split: str = "train"
    max_checkpoints: int = 3
    seed: int = 0
    jit_compile: Any = "auto"
    remat: bool = False
    share_first_forward: bool = True
    signal_class: Optional[str] = None
    strategy: Any = None
    show_progress: bool = True
    stop_after_steps: Optional[int] = None
    inner_rates: Any = None
    inner_rate_bounds: Any = (0.0, 1.0)
    outer_warmup_steps: int = 0
    outer_decay: str = "constant"
    outer_final_fraction: float = 0.1
    outer_decay_steps: Optional[int] = None
    clip_global_norm: Optional[float] = None
    max_skipped_steps: int = 0
    warm_start: Optional[str] = None

    def __post_init__(self):
        if not isinstance(self.model_dir, (str, os.PathLike)) or not str(self.model_dir):
            raise MetaTrainConfigError(f"model_dir must be a non-empty path, got "
                                       f"{self.model_dir!r}.")
        for name in ("model_fn", "dataset_fn"):
            if not callable(getattr(self, name)):
                raise MetaTrainConfigError(f"meta_train.{name} must be callable, got "
                                           f"{getattr(self, name)!r}.")
        for name, minimum in (("num_steps", 1), ("inner_steps", 1), ("meta_batch_size", 1),
                              ("checkpoint_every", 1), ("eval_every", 0),
                              ("num_eval_examples", 0), ("max_checkpoints", 1), ("seed", 0),
                              ("outer_warmup_steps", 0), ("max_skipped_steps", 0)):
            object.__setattr__(self, name, _integer(name, getattr(self, name), minimum))
        if self.seed > MAX_SEED - 1:  # seed and seed + 1 become int32 tensors.
            raise MetaTrainConfigError(f"meta_train.seed must be an integer in [0, "
                                       f"{MAX_SEED - 1}], got {self.seed}.")
        object.__setattr__(self, "stop_after_steps",
                           _integer("stop_after_steps", self.stop_after_steps, 1, optional=True))
        object.__setattr__(self, "outer_decay_steps",
                           _integer("outer_decay_steps", self.outer_decay_steps, 1, optional=True))
        for name in ("inner_learning_rate", "outer_learning_rate"):
            object.__setattr__(self, name, _positive_number(name, getattr(self, name)))
        if self.clip_global_norm is not None:
            object.__setattr__(self, "clip_global_norm",
                               _positive_number("clip_global_norm", self.clip_global_norm))
        try:
            object.__setattr__(self, "inner_rates", self.inner_rates_spec)
            self.outer_learning_rate_schedule  # pylint: disable=pointless-statement
        except ValueError as e:
            raise MetaTrainConfigError(f"meta_train: {e}") from e
        for name in ("train_split", "eval_split"):
            if not isinstance(getattr(self, name), str):
                raise MetaTrainConfigError(f"meta_train.{name} must be a split name (string), "
                                           f"got {getattr(self, name)!r}.")
        if self.warm_start is not None and (not isinstance(self.warm_start, (str, os.PathLike))
                                            or not str(self.warm_start)):
            raise MetaTrainConfigError(f"meta_train.warm_start must be a zoo name "
                                       f"('name' or 'name@version') or an init directory, "
                                       f"got {self.warm_start!r}.")
        if self.jit_compile not in (True, False, "auto"):
            raise MetaTrainConfigError(f"meta_train.jit_compile must be True, False or 'auto', "
                                       f"got {self.jit_compile!r}.")
        object.__setattr__(self, "model_dir", os.fspath(self.model_dir))
        self.meta_config  # pylint: disable=pointless-statement  (checks the algorithm settings)

    @property
    def meta_config(self):
        try:
            return MetaConfig(self.algorithm, self.inner_steps,
                              InnerOptimizer(self.inner_optimizer, self.inner_learning_rate),
                              share_first_forward=bool(self.share_first_forward),
                              remat=bool(self.remat))
        except (ValueError, TypeError) as e:
            raise MetaTrainConfigError(f"meta_train: {e}") from e

    @property
    def inner_rates_spec(self):
        """The model's inner-rates spec (Meta-SGD) or None; rates start at the inner lr."""
        if self.inner_rates is None:
            return None
        spec = self.inner_rates
        if isinstance(spec, str):
            spec = {"granularity": spec, "initial": self.inner_learning_rate,
                    "bounds": list(self.inner_rate_bounds)}
        return normalize_spec(spec, name="meta_train.inner_rates")

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


# ---------------------------------------------------------------- one run per model_dir


_HELD_LOCKS = set()  # Lock files held by this process.


def _pid_alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # Another user's live process.
        return True
    return True


def _parse_json(path):
    """A lock file's record: None if absent, {} if unreadable (held by an unknown run)."""
    try:
        with tf.io.gfile.GFile(path) as f:
            record = json.loads(f.read())
    except (tf.errors.NotFoundError, FileNotFoundError):
        return None
    except (ValueError, tf.errors.OpError):
        return {}
    return record if isinstance(record, dict) else {}


class ModelDirLock:
    """An exclusive lock file in a model directory, naming its holder (pid, host, start).

    Local directories use an atomic hard link of a complete file, so two runs cannot
    both take the lock; on object stores (gs://) the check and the write are separate
    (best effort). A lock whose holder ran on this host and whose pid is gone is stale
    and taken over; a lock from another host is refused (its liveness cannot be
    checked) with the path to delete if that run is known to be gone.
    """

    def __init__(self, directory):
        self.path = os.path.join(directory, LOCK_FILE)
        self.record = {"pid": os.getpid(), "host": socket.gethostname(),
                       "started": datetime.datetime.now(datetime.timezone.utc).isoformat(
                           timespec="seconds"),
                       "command": " ".join(sys.argv), "token": uuid.uuid4().hex}

    def _holder(self):
        """The lock's record; None if there is no lock, {} if it cannot be read."""
        return _parse_json(self.path)

    def _is_stale(self, holder):
        if not isinstance(holder.get("pid"), int) or holder.get("host") != socket.gethostname():
            return False
        if holder["pid"] == os.getpid():
            return self.path not in _HELD_LOCKS  # Our pid, but not our lock: a reused pid.
        return not _pid_alive(holder["pid"])

    def _try_create(self):
        text = json.dumps(self.record)
        if distribute.is_remote_path(self.path):
            if tf.io.gfile.exists(self.path):
                return False
            with tf.io.gfile.GFile(self.path, "w") as f:
                f.write(text)
            return True
        tmp = f"{self.path}.{self.record['token']}.tmp"
        with open(tmp, "w") as f:
            f.write(text)
        try:
            os.link(tmp, self.path)  # Atomic, and the lock is complete once visible.
            return True
        except FileExistsError:
            return False
        except OSError:  # A file system without hard links: exclusive create instead.
            try:
                fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                return False
            with os.fdopen(fd, "w") as f:
                f.write(text)
            return True
        finally:
            os.remove(tmp)

    def _remove_stale(self, holder):
        """Removes the lock if it is still `holder`'s (of two runs taking over, one wins)."""
        moved = f"{self.path}.stale-{self.record['token']}"
        try:
            tf.io.gfile.rename(self.path, moved)
        except (tf.errors.NotFoundError, FileNotFoundError):
            return
        if _parse_json(moved) != holder:  # Another run took the lock meanwhile: put it back.
            try:
                tf.io.gfile.rename(moved, self.path, overwrite=False)
                return
            except (tf.errors.AlreadyExistsError, FileExistsError):
                pass
        tf.io.gfile.remove(moved)

    def acquire(self):
        for _ in range(3):
            if self._try_create():
                _HELD_LOCKS.add(self.path)
                return self
            holder = self._holder()
            if holder is None:
                continue  # Released meanwhile: try again.
            if not self._is_stale(holder):
                raise ModelDirLockedError(
                    f"{os.path.dirname(self.path)} is in use by another meta_train run (pid "
                    f"{holder.get('pid', '?')} on host {holder.get('host', '?')}, started "
                    f"{holder.get('started', '?')}). Wait for it to finish or use another "
                    f"model_dir; if that run is gone, delete {self.path}.")
            print(f"Taking over the stale lock of pid {holder['pid']} on {holder['host']} "
                  f"(no such process): {self.path}")
            self._remove_stale(holder)
        raise ModelDirLockedError(f"Could not take the lock {self.path} (contended).")

    def release(self):
        _HELD_LOCKS.discard(self.path)
        holder = self._holder()
        if holder and holder.get("token") == self.record["token"]:
            tf.io.gfile.remove(self.path)

    def __enter__(self):
        return self.acquire()

    def __exit__(self, *exc):
        self.release()
        return False


class _InterruptFlag:
    """SIGINT (Ctrl-C) sets a flag checked at step boundaries, like SIGTERM; a second one
    raises KeyboardInterrupt at once. The previous handler is restored on exit."""

    def __init__(self):
        self.requested = False
        self._previous = None

    def _on_sigint(self, signum, frame):
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True
        print("\nCtrl-C: checkpointing at the end of this step (again to stop at once).",
              flush=True)

    def __enter__(self):
        try:
            self._previous = signal.signal(signal.SIGINT, self._on_sigint)
        except ValueError:  # Not in the main thread: Ctrl-C is not ours to handle.
            self._previous = None
        return self

    def __exit__(self, *exc):
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)
        return False


def purge_events_after(directory, step):
    """Drops TensorBoard events with a step > `step` from the event files in `directory`.

    A resumed run calls this with its restored step, so the events an interrupted run
    wrote after its last checkpoint do not overlap the resumed curves. Each file is
    rewritten through a temporary and a rename; a record truncated by a kill ends the
    file. Returns the number of events dropped.
    """
    if not tf.io.gfile.isdir(directory):
        return 0
    dropped = 0
    for name in sorted(tf.io.gfile.listdir(directory)):
        path = os.path.join(directory, name)
        if "tfevents" not in name or name.endswith(".tmp") or tf.io.gfile.isdir(path):
            continue
        kept, changed = [], False
        try:
            for record in tf.data.TFRecordDataset(path).as_numpy_iterator():
                if tf.compat.v1.Event.FromString(record).step > step:
                    dropped += 1
                    changed = True
                else:
                    kept.append(record)
        except tf.errors.DataLossError:
            changed = True  # A truncated last record (the writer was killed).
        if changed:
            with tf.io.TFRecordWriter(path + ".tmp") as writer:
                for record in kept:
                    writer.write(record)
            tf.io.gfile.rename(path + ".tmp", path, overwrite=True)
    return dropped


def _all_finite(variables):
    return all(bool(np.all(np.isfinite(v.numpy()))) for v in variables)


# ------------------------------------------------------------------------------ runner


class MetaTrainRunner:
    """One meta-training run in phases (TF Model Garden style); `run()` calls them in order.

    (lock model_dir) → check_data → build → restore → check_init → open_logs →
    build_evaluation → train (step, log_step, evaluate, checkpoint per step) → export.

    Args:
        config: a `RunConfig`.
    """

    def __init__(self, config):
        self.config = config
        self.strategy = config.strategy or tf.distribute.get_strategy()
        try:
            distribute.per_replica_batch_size(self.strategy, config.meta_batch_size)
        except ValueError as e:
            raise MetaTrainConfigError(f"meta_train: {e}") from e
        self.replicas = self.strategy.num_replicas_in_sync
        self.meta_config = config.meta_config
        self.out_dir = None
        self.step = 0
        self.metrics = {}
        self.first_example = None
        self.eval_examples = None

    def run(self):
        """Trains (or resumes) and exports; returns dict with "init_dir" (None if stopped
        early), "step", "log" (path) and the last "metrics"."""
        with self._locked_out_dir():
            self.first_example = self.check_data()
            self.build()
            self.restore()
            if self.start_step == 0:
                self.check_init(self.first_example)
            self.open_logs()
            self.build_evaluation()
            stopped_early = self.train()
            self.writer.flush()
            return self.finish(stopped_early)

    @contextlib.contextmanager
    def _locked_out_dir(self):
        """Creates the output directory and holds its lock; a run refused for its
        arguments or data removes the directories it created (if still empty)."""
        # All workers resume from the chief's checkpoints; non-chief workers of a
        # multi-worker run write to a scratch directory (see distribute.worker_dir).
        self.out_dir = distribute.worker_dir(self.strategy, self.config.model_dir)
        created = [d for d in (self.config.model_dir, self.out_dir)
                   if not tf.io.gfile.exists(d)]
        tf.io.gfile.makedirs(self.out_dir)
        try:
            with ModelDirLock(self.out_dir):
                yield
        except MetaTrainConfigError:
            for directory in reversed(created):
                if tf.io.gfile.isdir(directory) and not tf.io.gfile.listdir(directory):
                    tf.io.gfile.rmtree(directory)
            raise

    # -- phases -----------------------------------------------------------------------

    def check_data(self):
        """The first training example, checked against the task before anything is built."""
        config = self.config
        split = config.train_split
        try:
            example = take_examples(config.dataset_fn(split=split), 1, seed=config.seed)[0]
        except ValueError as e:
            raise MetaTrainConfigError(f"meta_train.dataset_fn {config.dataset_name}"
                                       f"(split={split!r}): {e}") from e
        try:
            config.task.validate_example(example, name=f"the first {split!r} example")
        except ValueError as e:
            raise MetaTrainConfigError(
                f"The dataset does not fit the task: {config.dataset_name}(split={split!r}) "
                f"does not match {type(config.task).__name__}: {e}") from e
        if config.eval_every and config.num_eval_examples:  # Read now: before any build.
            self.eval_examples = self._read_eval_examples()
        return example

    def _read_eval_examples(self):
        """The held-out examples of the periodic evaluation, each checked against the task;
        a bad split is a MetaTrainConfigError naming it (and the file, from the reader)."""
        config, split = self.config, self.config.eval_split
        where = (f"meta_train.eval_split={split!r} of {config.dataset_name} (the "
                 f"{config.num_eval_examples} held-out examples evaluated every "
                 f"{config.eval_every} steps)")
        hint = " Fix that split, or set meta_train.eval_every=0 to train without it."
        try:
            examples = take_examples(config.dataset_fn(split=split), config.num_eval_examples,
                                     seed=config.seed + 1)
            for i, example in enumerate(examples):
                config.task.validate_example(example, name=f"held-out example {i}")
        except (ValueError, OSError, tf.errors.OpError) as e:
            raise MetaTrainConfigError(f"{where}: {e}{hint}") from e
        return examples

    def build(self):
        """The model, the meta-trainer and the step/time counters (in the strategy scope)."""
        config = self.config
        keras.utils.set_random_seed(config.seed)
        with self.strategy.scope():
            self.model = self.build_model()
            self._check_model_dtype()
            try:
                self.trainer = MetaTrainer(
                    self.model, config.task, self.meta_config,
                    config.outer_learning_rate_schedule, jit_compile=config.jit_compile,
                    strategy=self.strategy, clip_global_norm=config.clip_global_norm,
                    skip_nonfinite=config.max_skipped_steps > 0)
            except ValueError as e:
                raise MetaTrainConfigError(f"meta_train: {e}") from e
            self.step_var = tf.Variable(0, dtype=tf.int64, trainable=False, name="global_step")
            self.skipped_var = tf.Variable(0, dtype=tf.int64, trainable=False,
                                           name="skipped_steps")
            self.seconds_var = tf.Variable(0.0, dtype=tf.float64, trainable=False,
                                           name="train_seconds")

    def _check_model_dtype(self):
        """Refuses a model whose dtype policy (e.g. `Siren.dtype = 'float16'` in gin) is not
        the data's float dtype: it would fail in the first step with a raw dtype error."""
        policy = self.model.dtype_policy
        data = sorted({v.dtype.name for v in (self.first_example or {}).values()
                       if v.dtype.is_floating})
        if data and (policy.compute_dtype, policy.variable_dtype) != (data[0], data[0]):
            raise MetaTrainConfigError(
                f"meta_train.model_fn builds a {type(self.model).__name__} with dtype "
                f"{policy.name!r} (its 'dtype' argument, e.g. a gin binding), but the data is "
                f"{data[0]}; supported: {data[0]!r}. For bfloat16 hidden layers use "
                "Siren(mixed_precision=True).")

    def build_model(self):
        """model_fn(seed=...), with inner_rates=... when Meta-SGD rates are learned."""
        config = self.config
        if config.inner_rates is None:
            return config.model_fn(seed=config.seed)
        try:
            return config.model_fn(seed=config.seed, inner_rates=config.inner_rates)
        except TypeError as e:
            if "inner_rates" not in str(e):
                raise
            raise MetaTrainConfigError(
                f"meta_train.inner_rates is set, but meta_train.model_fn "
                f"{getattr(config.model_fn, '__name__', config.model_fn)!r} takes no "
                "inner_rates argument (learnit_tf's Siren, FourierFeatureMLP and NerfMLP "
                "do).") from e

    def make_batches(self):
        return meta_batches(self.config.dataset_fn(split=self.config.train_split),
                            self.config.meta_batch_size, seed=self.config.seed)

    def restore(self):
        """The checkpoint manager, the latest checkpoint restored, the data iterator positioned."""
        config = self.config
        latest = tf.train.latest_checkpoint(os.path.join(config.model_dir, "checkpoints"))
        state = {"model": self.model, "optimizer": self.trainer.optimizer,
                 "step": self.step_var, "seconds": self.seconds_var}
        if config.max_skipped_steps:  # Only then: older checkpoints still restore.
            state["skipped"] = self.skipped_var
        # One replica: the input iterator is saved with the model (O(1) resume). Several
        # replicas (or a checkpoint saved without an iterator): skip consumed batches.
        self.iterator = None
        if self.replicas == 1 and (latest is None or _has_iterator_state(latest)):
            self.iterator = iter(self.make_batches())
            state["data"] = self.iterator
        self.checkpoint_state = tf.train.Checkpoint(**state)
        self.manager = tf.train.CheckpointManager(
            self.checkpoint_state, os.path.join(self.out_dir, "checkpoints"),
            max_to_keep=config.max_checkpoints)
        if latest:
            status = self.checkpoint_state.restore(latest)
            # Every object of this run must be restored; the checkpoint may hold more (an
            # iterator from a one-replica run, the preemption handler's counter).
            status.assert_existing_objects_matched()
            status.expect_partial()
            print(f"Resumed from {latest} at step {int(self.step_var.numpy())}.")
            if config.warm_start is not None:  # The parent as recorded at step 0.
                self.warm_start_record = _parse_json(
                    os.path.join(self.out_dir, WARM_START_FILE))
                if not self.warm_start_record:
                    raise MetaTrainConfigError(
                        f"meta_train.warm_start={config.warm_start!r} is set, but the run "
                        f"in {config.model_dir} was not warm-started (no {WARM_START_FILE}); "
                        "its checkpoint would win. Drop warm_start or use a new model_dir.")
        elif config.warm_start is not None:
            self.warm_start()
        self.start_step = self.step = int(self.step_var.numpy())
        if self.iterator is None and self.replicas == 1:
            self.iterator = iter(self.make_batches().skip(self.start_step))
        elif self.iterator is None:
            self.iterator = iter(distribute.distribute_meta_batches(
                self.strategy, self.make_batches, config.meta_batch_size, skip=self.start_step))

    def warm_start(self):
        """Step 0 only: the model starts from an existing init's weights (and learned
        inner rates) instead of model_fn's random ones, e.g. to train a published init
        further with a new outer schedule. The init is verified (a zoo entry's digests)
        and must have this run's architecture; a parent without learned rates gives a
        Meta-SGD run rates starting at inner_learning_rate."""
        from learnit_tf import zoo  # pylint: disable=import-outside-toplevel  (zoo imports train's kin)

        source = os.fspath(self.config.warm_start)
        try:
            if os.path.isdir(source):
                parent = init_io.load_init(source)
                parent_metadata = init_io.read_init_metadata(source)
            else:  # A zoo entry: its latest version unless named; recorded as name@version.
                entries = zoo.Zoo()
                name, version = zoo.split_name(source)
                version = entries.resolve_version(name, version)
                source = f"{name}@{version}"
                parent = entries.load(name, version)
                parent_metadata = as_init_metadata(entries.describe(name, version), source)
        except (ValueError, OSError, KeyError, zoo.ZooError) as e:
            raise MetaTrainConfigError(f"meta_train.warm_start={source!r}: {e}") from e
        self.warm_start_record = _warm_start_record(source, parent, parent_metadata)

        def architecture(model):
            return {k: v for k, v in model.get_config().items()
                    if k not in ("name", "seed", "inner_rates")}

        if (type(parent) is not type(self.model)
                or architecture(parent) != architecture(self.model)):
            raise MetaTrainConfigError(
                f"meta_train.warm_start={source!r} is a {type(parent).__name__} "
                f"{architecture(parent)}, but meta_train.model_fn builds a "
                f"{type(self.model).__name__} {architecture(self.model)}; they must match.")
        mine, theirs = self.trainer.rates_layer, inner_rates_of(parent)
        # Every weight but the learned rates: the trainable ones and the fixed ones (a
        # Fourier-feature matrix B drawn from the seed belongs to the parent's function).
        # Matched by order: variable paths carry per-process unique model names.
        rate_ids = {id(v) for layer in (mine, theirs) if layer is not None for v in layer.rates}

        def weights(model):
            return [v for v in model.trainable_variables + model.non_trainable_variables
                    if id(v) not in rate_ids]

        targets, values = weights(self.model), weights(parent)
        if [tuple(v.shape) for v in targets] != [tuple(v.shape) for v in values]:
            raise MetaTrainConfigError(
                f"meta_train.warm_start={source!r}: its weights "
                f"{[tuple(v.shape) for v in values]} do not match this architecture's "
                f"{[tuple(v.shape) for v in targets]}.")
        for target, value in zip(targets, values):
            target.assign(value)
        if theirs is not None:
            if mine is None or mine.granularity != theirs.granularity:
                raise MetaTrainConfigError(
                    f"meta_train.warm_start={source!r} carries learned inner rates per "
                    f"{theirs.granularity!r}; set meta_train.inner_rates="
                    f"{theirs.granularity!r} to keep training them (got "
                    f"{None if mine is None else mine.granularity!r}).")
            for target, value in zip(mine.rates, theirs.rates):
                target.assign(value)
            mine.clip()  # Into this run's bounds.
        _write_text_atomic(os.path.join(self.out_dir, WARM_START_FILE),
                           json.dumps(self.warm_start_record, indent=2))
        print(f"Warm start from {source} ({self.warm_start_record.get('steps')} steps).")

    def check_init(self, example):
        """Refuses inits that cannot learn (e.g. a NeRF whose ReLU density is zero
        everywhere has zero gradients) before spending hours on them."""
        weights = [tf.convert_to_tensor(v) for v in self.model.trainable_variables]
        problem = self.config.task.check_init(FunctionalModel(self.model), weights, example)
        if problem:
            raise ValueError(f"The initial weights (seed={self.config.seed}) cannot be "
                             f"meta-trained: {problem} Choose another meta_train.seed.")

    def open_logs(self):
        """config.gin, the CSV log and TensorBoard, cut back to the restored step."""
        _write_gin_config(self.out_dir)
        self.log_path = os.path.join(self.out_dir, LOG_FILE)
        _rewrite_log(self.log_path, _read_log(self.log_path, self.start_step))
        tensorboard = os.path.join(self.out_dir, TENSORBOARD_DIR)
        if purge_events_after(tensorboard, self.start_step):
            print(f"Dropped the TensorBoard events past step {self.start_step} of the "
                  "interrupted run.")
        self.writer = tf.summary.create_file_writer(tensorboard)

    def build_evaluation(self):
        """Held-out examples and a fitter for the periodic evaluation (if enabled)."""
        config = self.config
        if config.eval_every and config.num_eval_examples:
            if self.eval_examples is None:
                self.eval_examples = self._read_eval_examples()
            optimizer = self.meta_config.inner_optimizer
            if self.trainer.rates_layer is not None:  # Held-out fits step as training does.
                optimizer = FitRecipe((FitPhase(optimizer, learned_rates=True),))
            self.eval_fitter = Fitter(self.model, config.task, optimizer,
                                      steps_per_call=self.meta_config.inner_steps,
                                      jit_compile=config.jit_compile)

    def train(self):
        """Steps until num_steps, a stop request or stop_after_steps; True if stopped early."""
        config = self.config
        self.progbar = keras.utils.Progbar(config.num_steps,
                                           stateful_metrics=["loss", "inner_loss_first"],
                                           verbose=1 if config.show_progress else 0)
        if self.start_step:
            self.progbar.update(self.start_step)
        self._run_start = time.perf_counter()
        self._seconds_at_start = float(self.seconds_var.numpy())
        with _StepLog(self.log_path) as self.step_log, distribute.PreemptionWatcher(
                self.strategy, self.manager, before_save=self._before_save) as watcher, \
                _InterruptFlag() as interrupt:
            while self.step < config.num_steps:
                self.metrics = self.train_step(next(self.iterator))
                self.log_step(self.metrics)
                if self.eval_examples and self.step % config.eval_every == 0:
                    self.evaluate()
                if watcher.save_if_preempted(self.step):  # Saved checkpoint `step`: stop.
                    return self.step < config.num_steps
                if interrupt.requested:
                    self.checkpoint()
                    return self.step < config.num_steps
                stop_now = (config.stop_after_steps is not None
                            and self.step - self.start_step >= config.stop_after_steps)
                if (self.step % config.checkpoint_every == 0 or self.step == config.num_steps
                        or stop_now):
                    self.checkpoint()
                if stop_now:
                    return self.step < config.num_steps
        return False

    def train_step(self, batch):
        """One outer step; the metrics as floats (NonFiniteLossError if any is not finite,
        unless the step was skipped and fewer than max_skipped_steps were)."""
        metrics = {k: float(v) for k, v in self.trainer.train_step(batch).items()}
        if metrics.pop("skipped", 0.0):
            self.skipped_var.assign_add(1)
            skipped = int(self.skipped_var.numpy())
            print(f"\nStep {self.step + 1}: non-finite meta-gradient, skipped (weights "
                  f"unchanged; {skipped} of at most {self.config.max_skipped_steps} skipped).")
            if skipped > self.config.max_skipped_steps:
                raise NonFiniteLossError(
                    f"{skipped} non-finite steps (more than meta_train.max_skipped_steps="
                    f"{self.config.max_skipped_steps}) at step {self.step + 1}; stopping. The "
                    f"last good checkpoint ({self.manager.latest_checkpoint}) is intact; "
                    "lower the learning rates.")
        elif not all(math.isfinite(v) for v in metrics.values()):
            raise NonFiniteLossError(
                f"Non-finite meta-training metrics {metrics} at step {self.step + 1}; stopping. "
                f"The last good checkpoint ({self.manager.latest_checkpoint}) is intact; lower "
                "the learning rates or check the data for NaNs.")
        self.step += 1
        self.step_var.assign(self.step)
        return metrics

    def log_step(self, metrics):
        """The step's row in train_log.csv, TensorBoard scalars and the progress bar."""
        elapsed = self._seconds_at_start + time.perf_counter() - self._run_start
        self.seconds_var.assign(elapsed)
        self.step_log.write({"step": self.step, "loss": repr(metrics["loss"]),
                             "inner_loss_first": repr(metrics["inner_loss_first"]),
                             "seconds": f"{elapsed:.3f}"})
        with self.writer.as_default(step=self.step):
            for name, value in metrics.items():
                tf.summary.scalar(f"train/{name}", value)
        self.progbar.update(self.step, values=list(metrics.items()))

    def evaluate(self):
        """Held-out fits from the current init, logged to TensorBoard and printed."""
        _evaluate_and_log(self.eval_fitter, self.eval_examples, self.meta_config.inner_steps,
                          self.writer, self.step)

    def _before_save(self):
        self.step_log.flush()  # Rows first: a resumed run drops rows past its checkpoint.
        self.check_weights_finite("checkpoint")

    def checkpoint(self):
        """Saves checkpoint `step` (refusing non-finite weights; a failed write leaves no
        partial files and raises CheckpointWriteError)."""
        self._before_save()
        try:
            self.manager.save(checkpoint_number=self.step)
        except (tf.errors.ResourceExhaustedError, tf.errors.UnknownError, OSError) as e:
            directory = self.manager.directory
            prefix = f"ckpt-{self.step}"
            for name in tf.io.gfile.listdir(directory):  # The saver's temporaries.
                if name.startswith(prefix + "_temp") or name.startswith(prefix + "."):
                    path = os.path.join(directory, name)
                    (tf.io.gfile.rmtree if tf.io.gfile.isdir(path) else tf.io.gfile.remove)(path)
            raise CheckpointWriteError(
                f"Could not write checkpoint {self.step} to {directory} ({type(e).__name__}: "
                f"{getattr(e, 'message', e)}). The last good checkpoint "
                f"({self.manager.latest_checkpoint}) is intact; free space and re-run the same "
                "command to resume.") from e

    def check_weights_finite(self, what):
        if not _all_finite(self.model.weights):
            raise NonFiniteWeightsError(
                f"The weights after step {self.step} hold NaN or infinite values; not writing "
                f"them as a {what}. The last good checkpoint "
                f"({self.manager.latest_checkpoint}) is intact; lower the learning rates.")

    def finish(self, stopped_early):
        result = {"step": self.step, "log": self.log_path, "metrics": self.metrics,
                  "init_dir": None}
        if stopped_early:
            print(f"\nStopped at step {self.step}; checkpoint saved. Re-run the same command "
                  "to resume.")
            return result
        if self.out_dir != self.config.model_dir:  # A non-chief worker: its files were scratch.
            tf.io.gfile.rmtree(self.out_dir)
            return result
        result["init_dir"] = self.export()
        return result

    def export(self):
        """Writes model_dir/init/ (config.json, metadata.json, model.weights.h5)."""
        self.check_weights_finite("exported init")
        init_dir = os.path.join(self.config.model_dir, "init")
        _export_init(self.model, init_dir, self.init_metadata())
        print(f"\nExported init to {init_dir}")
        return init_dir

    def recipe_metadata(self):
        """The training recipe beyond the classic hyperparameters (JSON-ready)."""
        config = self.config
        extra = {"outer_schedule": {"warmup_steps": config.outer_warmup_steps,
                                    "decay": config.outer_decay,
                                    "final_fraction": config.outer_final_fraction,
                                    "decay_steps": config.schedule_steps},
                 "clip_global_norm": config.clip_global_norm,
                 "max_skipped_steps": config.max_skipped_steps,
                 "skipped_steps": int(self.skipped_var.numpy())}
        layer = self.trainer.rates_layer
        if layer is not None:
            extra["inner_rates"] = dict(layer.spec, learned=layer.summary_stats())
        if config.warm_start is not None:
            extra["warm_start"] = self.warm_start_record
        return extra

    def init_metadata(self):
        """The exported init's `InitMetadata`."""
        config = self.config
        task_name = type(config.task).__name__
        try:
            kind = kinds.kind_of_task(task_name).name
        except ValueError:  # A task class that no registered kind owns (e.g. in a test).
            kind = None
        return InitMetadata(
            signal_class=config.signal_class or config.dataset_name, kind=kind,
            task=TaskSpec(task_name, config.task.get_config()),
            dataset=DatasetSpec(config.dataset_name, config.train_split, config.eval_split,
                                _dataset_bindings(config.dataset_fn),
                                extra=_dataset_source(config.dataset_fn)),
            algorithm=config.algorithm,
            hyperparameters=Hyperparameters(
                inner_steps=config.inner_steps, inner_optimizer=config.inner_optimizer,
                inner_learning_rate=config.inner_learning_rate, outer_optimizer="adam",
                outer_learning_rate=config.outer_learning_rate,
                meta_batch_size=config.meta_batch_size, seed=config.seed,
                remat=bool(config.remat), share_first_forward=bool(config.share_first_forward),
                extra=self.recipe_metadata()),
            steps=int(self.step), wall_time_seconds=round(float(self.seconds_var.numpy()), 1),
            num_replicas=self.replicas,
            command=" ".join([os.path.basename(sys.executable)] + sys.argv),
            final_train_metrics=dict(self.metrics))


@gin.configurable(denylist=["model_dir"])
def meta_train(model_dir,
               model_fn=gin.REQUIRED,
               task=gin.REQUIRED,
               dataset_fn=gin.REQUIRED,
               algorithm="maml",
               inner_steps=2,
               inner_optimizer="sgd",
               inner_learning_rate=1e-2,
               outer_learning_rate=1e-5,
               meta_batch_size=3,
               num_steps=1000,
               checkpoint_every=100,
               eval_every=250,
               num_eval_examples=8,
               eval_split="validation",
               train_split="train",
               max_checkpoints=3,
               seed=0,
               jit_compile="auto",
               remat=False,
               share_first_forward=True,
               signal_class=None,
               strategy=None,
               show_progress=True,
               stop_after_steps=None,
               inner_rates=None,
               inner_rate_bounds=(0.0, 1.0),
               outer_warmup_steps=0,
               outer_decay="constant",
               outer_final_fraction=0.1,
               outer_decay_steps=None,
               clip_global_norm=None,
               max_skipped_steps=0,
               warm_start=None):
    """Meta-trains an init and exports it to `model_dir/init/` (a `MetaTrainRunner` run).

    Args:
        model_dir: where checkpoints, logs, TensorBoard events, the gin config and the
            exported init go. Re-running with the same directory resumes; one run at a
            time (a lock file names the holder).
        model_fn: callable(seed=...) -> built Keras coordinate network (e.g. `@Siren`).
        task: a `learnit_tf.tasks.Task` instance (e.g. `@ImageTask()`); the first
            training example is checked against it (`Task.validate_example`).
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
        eval_split / train_split: dataset splits.
        max_checkpoints: checkpoints kept.
        seed: seed of the init, the data order and per-example randomness.
        jit_compile: True (XLA), False (graph) or "auto" (XLA with an accelerator).
        remat: MAML only: rematerialize the inner loop (memory bounded in
            inner_steps, ~1.5x slower per step; see `MetaConfig`).
        share_first_forward: one forward pass for every example's first inner step
            where the task allows it (same results, faster; see `MetaConfig`).
        signal_class: name recorded in the init's metadata (default: dataset_fn's name).
        strategy: optional `tf.distribute.Strategy` (see
            `learnit_tf.distribute.get_distribution_strategy`); `meta_batch_size` must
            be a multiple of its replica count.
        show_progress: print a progress bar with ETA.
        stop_after_steps: stop (with a checkpoint) after this many steps in this run,
            as if preempted; for tests and time-sliced jobs.
        inner_rates: Meta-SGD: learn the inner learning rates with the init, per
            "parameter", "tensor" or "layer" (starting at inner_learning_rate; MAML or
            first-order MAML with inner SGD). They are saved in the init's weights and
            used by fit and evaluate.
        inner_rate_bounds: [low, high] the learned rates are clipped to.
        outer_warmup_steps: linear warm-up of the outer learning rate from 0.
        outer_decay: "constant" or "cosine" (to outer_final_fraction * the rate at
            num_steps).
        outer_final_fraction: see outer_decay.
        outer_decay_steps: the step the schedule ends at (default num_steps); e.g. a run
            stopped early and exported (num_steps=its step) keeps the schedule it ran with.
        clip_global_norm: clip the outer gradients' global norm (None: no clipping).
        max_skipped_steps: one replica: skip up to this many steps whose meta-gradient
            is not finite (weights unchanged) before stopping; 0 stops at the first.
        warm_start: start from an existing init instead of model_fn's random weights: a
            zoo name ("text_siren@2"; verified) or an init directory, of the same
            architecture. Its learned inner rates come too. Used at step 0 only (a resumed
            run continues from its checkpoint); recorded in the metadata's
            hyperparameters.warm_start with the parent's steps, wall time and command.
            Choose another `seed` than the parent's to see the data in a new order.

    Returns:
        dict with "init_dir" (None if stopped early), "step", "log" (path) and the last metrics.

    Raises:
        MetaTrainConfigError: a bad argument, or data that does not fit the task (before
            anything is built or written).
        ModelDirLockedError: another run holds `model_dir`.
        NonFiniteLossError, NonFiniteWeightsError: training diverged (the last good
            checkpoint is kept; nothing is exported).
    """
    config = RunConfig(**{name: value for name, value in locals().items()})
    return MetaTrainRunner(config).run()


def _warm_start_record(source, parent, metadata):
    """What the metadata records of a warm start's parent init (JSON-ready): where it
    came from, the digest of its weights (trainable, then non-trainable: fixed features
    and learned rates), and its own steps, wall time and command, so the total training
    is known."""
    digest = hashlib.sha256()
    for variable in list(parent.trainable_variables) + list(parent.non_trainable_variables):
        digest.update(np.ascontiguousarray(keras.ops.convert_to_numpy(variable)).tobytes())
    return {"init": source, "weights_sha256": digest.hexdigest(),
            "steps": metadata.steps, "wall_time_seconds": metadata.wall_time_seconds,
            "command": metadata.command}


def _export_init(model, init_dir, metadata):
    """`init_io.save_init`, through a local temporary directory for gs:// model dirs."""
    if not distribute.is_remote_path(init_dir):
        init_io.save_init(model, init_dir, metadata, overwrite=True)
        return
    with tempfile.TemporaryDirectory() as tmp:
        local = os.path.join(tmp, "init")
        init_io.save_init(model, local, metadata, overwrite=True)
        tf.io.gfile.makedirs(init_dir)
        # Object stores have no atomic directory rename: config.json, which marks a
        # complete init directory, is copied last.
        names = sorted(os.listdir(local), key=lambda n: n == init_io.CONFIG_FILE)
        for name in names:
            tf.io.gfile.copy(os.path.join(local, name), os.path.join(init_dir, name),
                             overwrite=True)


def _dataset_bindings(dataset_fn):
    """The gin bindings of the dataset function (e.g. its builder config), if any.

    Through gin's public `gin.get_bindings`; a function gin does not know has none.
    Only JSON scalars are kept (they are recorded in the init's metadata).
    """
    try:
        bindings = gin.get_bindings(dataset_fn)
    except (ValueError, TypeError):  # Not a gin configurable (a lambda, a partial).
        return {}
    return {k: v for k, v in bindings.items()
            if isinstance(v, (str, int, float, bool, type(None)))}


def _dataset_source(dataset_fn):
    """{"source": ...} when the dataset function says where its files come from (its
    `source_metadata(**bindings)`, e.g. a Debian package's name, version and licence),
    recorded with the init; else {}."""
    describe = getattr(inspect.unwrap(dataset_fn), "source_metadata", None)
    if describe is None:
        return {}
    return {"source": describe(**_dataset_bindings(dataset_fn))}


def _write_gin_config(model_dir):
    """Saves the gin config this run was started with (Model Garden style)."""
    config = gin.config_str()
    if config.strip():
        _write_text_atomic(os.path.join(model_dir, "config.gin"), config)


def _evaluate_and_log(fitter, examples, steps, writer, step):
    curves = evaluate_init(fitter, examples, steps)
    with writer.as_default(step=step):
        for name, (mean, _) in curves.items():
            tf.summary.scalar(f"eval/{name}_step0", float(mean[0]))
            tf.summary.scalar(f"eval/{name}_step{steps}", float(mean[-1]))
        render = getattr(fitter.task, "render", None)
        if render is not None:
            image = render(fitter.fmodel, fitter.fmodel.initial_weights())
            if image.shape.rank == 3 and image.shape[-1] in (1, 3):
                tf.summary.image("eval/init_output", tf.clip_by_value(image, 0.0, 1.0)[None])
    psnr = curves.get("psnr")
    if psnr is not None:
        print(f"\n[eval step {step}] held-out PSNR: step 0 {psnr[0][0]:.2f} dB, "
              f"step {steps} {psnr[0][-1]:.2f} dB")
