"""The meta-training runner: data → compiled meta step → checkpoints → exported init.

`MetaTrainRunner(config).run()` runs one meta-training run (a `RunConfig`) in phases
that can be read, and overridden in a subclass, one by one (TF Model Garden style):
check data, build, restore, train (step, log, evaluate, checkpoint), export.
`meta_train(model_dir, **overrides)` is the entry point behind `scripts/meta_train.py`:
it builds the `RunConfig` (arguments over gin bindings `meta_train.<field>`) and runs it.

It is resumable: the model, the outer optimizer, the step, the accumulated wall time
and (on one replica) the data iterator live in one `tf.train.Checkpoint` managed by a
`tf.train.CheckpointManager` (which writes atomically), so a restarted run continues
with exactly the batches and losses an uninterrupted run would have produced.
Checkpoints are written every `checkpoint_every` steps and on preemption (SIGTERM or a
`PreemptionCheckpointHandler` notice, see `learnit_tf.training.distribute`) or Ctrl-C
(SIGINT; a second Ctrl-C stops at once). Logs are cut back to the restored step
(`learnit_tf.training.logs`).

One run per `model_dir` (`learnit_tf.training.lock`). Non-finite weights are never
checkpointed or exported (`NonFiniteWeightsError`; the last good checkpoint stays).

Under a multi-replica `tf.distribute` strategy the global meta-batch is split over the
replicas (`distribute.distribute_meta_batches`); a distributed iterator cannot be
checkpointed, so a resumed replicated run re-positions its data by skipping the batches
already consumed (deterministic, same batches). All other per-step randomness is
stateless, derived from (seed, example index, step), so there is no further RNG state
to save. `model_dir` may be a gs:// path.
"""

import contextlib
import inspect
import math
import os
import sys
import time

import keras
import numpy as np
import tensorflow as tf

from learnit_tf.data.pipeline import meta_batches, take_examples
from learnit_tf.core.metadata import DatasetSpec, Hyperparameters, InitMetadata, TaskSpec
from learnit_tf.meta import FitPhase, FitRecipe, Fitter, MetaTrainer
from learnit_tf.meta.algorithms import precision_metadata
from learnit_tf.models.functional import FunctionalModel
from learnit_tf.training import distribute, export, held_out, logs
from learnit_tf.training.config import RunConfig
from learnit_tf.training.errors import (CheckpointWriteError, MetaTrainConfigError,
                                        NonFiniteLossError, NonFiniteWeightsError)
from learnit_tf.training.interrupt import InterruptFlag
from learnit_tf.training.lock import ModelDirLock
from learnit_tf.training.warm_start import (copy_parent_weights, load_parent, record_parent,
                                            recorded_parent, warm_start_record)


def _has_iterator_state(checkpoint_path):
    """Whether a checkpoint holds a saved data iterator (one-replica runs save one)."""
    # NewCheckpointReader takes the checkpoint prefix as is (tf.train.list_variables
    # first asks whether the path is a directory, which prefix-matching file systems
    # answer with yes).
    reader = tf.compat.v1.train.NewCheckpointReader(checkpoint_path)
    return any(name.startswith("data/") for name in reader.get_variable_to_shape_map())


def _all_finite(variables):
    return all(bool(np.all(np.isfinite(v.numpy()))) for v in variables)


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
                self.warm_start_record = recorded_parent(self.out_dir, config.warm_start)
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
        source, parent, parent_metadata = load_parent(os.fspath(self.config.warm_start))
        self.warm_start_record = warm_start_record(source, parent, parent_metadata)
        copy_parent_weights(self.model, self.trainer.rates_layer, parent, source)
        record_parent(self.out_dir, self.warm_start_record)
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
        self.log_path, self.writer = logs.open_run_logs(self.out_dir, self.start_step)

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
        with logs.StepLog(self.log_path) as self.step_log, distribute.PreemptionWatcher(
                self.strategy, self.manager, before_save=self._before_save) as watcher, \
                InterruptFlag() as interrupt:
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
        held_out.evaluate_and_log(self.eval_fitter, self.eval_examples,
                                  self.meta_config.inner_steps, self.writer, self.step,
                                  metric=self.primary_metric)

    @property
    def primary_metric(self):
        """The task's kind's primary metric, printed by the periodic evaluation."""
        return export.primary_metric(self.config.task)

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
        export.export_init(self.model, init_dir, self.init_metadata())
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
                 "skipped_steps": int(self.skipped_var.numpy()),
                 "precision": precision_metadata(self.meta_config, self.model)}
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
        return InitMetadata(
            signal_class=config.signal_class or config.dataset_name,
            kind=export.kind_of_task(config.task),
            task=TaskSpec(task_name, config.task.get_config()),
            dataset=DatasetSpec(config.dataset_name, config.train_split, config.eval_split,
                                export.dataset_bindings(config.dataset_fn),
                                extra=export.dataset_source(config.dataset_fn)),
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


def meta_train(model_dir, **overrides):
    """Meta-trains an init and exports it to `model_dir/init/` (a `MetaTrainRunner` run).

    Args:
        model_dir: where checkpoints, logs, TensorBoard events, the gin config and the
            exported init go. Re-running with the same directory resumes; one run at a
            time (a lock file names the holder).
        **overrides: `RunConfig` fields (model_fn, task, dataset_fn, num_steps, ...: see
            `RunConfig` for each one's meaning and default). They win over the gin
            bindings `meta_train.<field> = ...`; unset fields take the bound value or the
            field's default.

    Returns:
        dict with "init_dir" (None if stopped early), "step", "log" (path) and the last metrics.

    Raises:
        MetaTrainConfigError: a bad argument, or data that does not fit the task (before
            anything is built or written).
        TypeError: an argument that is not a `RunConfig` field (named).
        ModelDirLockedError: another run holds `model_dir`.
        NonFiniteLossError, NonFiniteWeightsError: training diverged (the last good
            checkpoint is kept; nothing is exported).
    """
    unknown = sorted(set(overrides) - set(RunConfig.field_names()))
    if unknown:
        raise TypeError(f"meta_train got unknown argument(s) {unknown}; RunConfig's fields "
                        f"are {list(RunConfig.field_names())}.")
    return MetaTrainRunner(RunConfig(model_dir, **overrides)).run()


# help(meta_train) and IDEs show RunConfig's fields and defaults as its parameters.
meta_train.__signature__ = inspect.Signature(
    [p.replace(kind=inspect.Parameter.POSITIONAL_OR_KEYWORD if p.name == "model_dir"
               else inspect.Parameter.KEYWORD_ONLY)
     for p in inspect.signature(RunConfig).parameters.values()])
