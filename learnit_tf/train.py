"""The meta-training loop: data → compiled meta step → checkpoints → exported init.

`meta_train` is the gin-configurable entry point behind `scripts/meta_train.py`.
It is resumable: the model, the outer optimizer, the step, the accumulated wall
time and (on one replica) the data iterator live in one `tf.train.Checkpoint`
managed by a `tf.train.CheckpointManager` (which writes atomically), so a restarted
run continues with exactly the batches and losses an uninterrupted run would have
produced. Checkpoints are written every `checkpoint_every` steps and on preemption
(SIGTERM or a `PreemptionCheckpointHandler` notice, see `learnit_tf.distribute`).

Under a multi-replica `tf.distribute` strategy the global meta-batch is split over
the replicas (`learnit_tf.distribute.distribute_meta_batches`); a distributed
iterator cannot be checkpointed, so a resumed replicated run re-positions its data
by skipping the batches already consumed (deterministic, same batches). All other
per-step randomness is stateless, derived from (seed, example index, step), so
there is no further RNG state to save. `model_dir` may be a gs:// path.
"""

import csv
import io
import math
import os
import sys
import tempfile
import time

import gin
import keras
import numpy as np
import tensorflow as tf

from learnit_tf import distribute, init_io
from learnit_tf.data.pipeline import meta_batches, take_examples
from learnit_tf.models.functional import FunctionalModel
from learnit_tf.meta import Fitter, InnerOptimizer, MetaConfig, MetaTrainer

LOG_FILE = "train_log.csv"
LOG_COLUMNS = ("step", "loss", "inner_loss_first", "seconds")


class NonFiniteLossError(RuntimeError):
    """Raised when meta-training produces a NaN or infinite loss."""


def _read_log(path, max_step):
    """Rows of a previous run's log up to `max_step` (a resumed run rewrites the rest)."""
    if not tf.io.gfile.exists(path):
        return []
    with tf.io.gfile.GFile(path) as f:
        return [row for row in csv.DictReader(f) if int(row["step"]) <= max_step]


def _write_text_atomic(path, text):
    """Writes a (local or gs://) file through a temporary and a rename."""
    tmp = path + ".tmp"
    with tf.io.gfile.GFile(tmp, "w") as f:
        f.write(text)
    tf.io.gfile.rename(tmp, path, overwrite=True)


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
               stop_after_steps=None):
    """Meta-trains an init and exports it to `model_dir/init/`.

    Args:
        model_dir: where checkpoints, logs, TensorBoard events, the gin config and the
            exported init go. Re-running with the same directory resumes.
        model_fn: callable(seed=...) -> built Keras coordinate network (e.g. `@Siren`).
        task: a `learnit_tf.tasks.Task` instance (e.g. `@ImageTask()`).
        dataset_fn: callable(split=...) -> unbatched tf.data.Dataset of examples (called
            with `split` as a keyword, so a folder reader's `directory` can be bound in gin).
        algorithm: "maml", "fomaml" or "reptile".
        inner_steps: inner optimizer steps per example.
        inner_optimizer: "sgd" or "adam".
        inner_learning_rate: inner step size.
        outer_learning_rate: Adam learning rate of the outer loop.
        meta_batch_size: global meta-batch size.
        num_steps: total outer steps.
        checkpoint_every: steps between checkpoints.
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

    Returns:
        dict with "init_dir" (None if stopped early), "step", "log" (path) and the last metrics.
    """
    tf.io.gfile.makedirs(model_dir)
    strategy = strategy or tf.distribute.get_strategy()
    replicas = strategy.num_replicas_in_sync
    distribute.per_replica_batch_size(strategy, meta_batch_size)  # Fail before building.
    meta_config = MetaConfig(algorithm, int(inner_steps),
                             InnerOptimizer(inner_optimizer, float(inner_learning_rate)),
                             share_first_forward=bool(share_first_forward), remat=bool(remat))
    keras.utils.set_random_seed(seed)
    with strategy.scope():
        model = model_fn(seed=seed)
        trainer = MetaTrainer(model, task, meta_config, outer_learning_rate,
                              jit_compile=jit_compile, strategy=strategy)
        step_var = tf.Variable(0, dtype=tf.int64, trainable=False, name="global_step")
        seconds_var = tf.Variable(0.0, dtype=tf.float64, trainable=False, name="train_seconds")

    def make_batches():
        return meta_batches(dataset_fn(split=train_split), meta_batch_size, seed=seed)

    # All workers resume from the chief's checkpoints; non-chief workers of a
    # multi-worker run write to a scratch directory (see distribute.worker_dir).
    latest = tf.train.latest_checkpoint(os.path.join(model_dir, "checkpoints"))
    out_dir = distribute.worker_dir(strategy, model_dir)
    state = {"model": model, "optimizer": trainer.optimizer, "step": step_var,
             "seconds": seconds_var}
    # One replica: the input iterator is saved with the model (O(1) resume). Several
    # replicas (or a checkpoint saved without an iterator): skip consumed batches.
    iterator = None
    if replicas == 1 and (latest is None or _has_iterator_state(latest)):
        iterator = iter(make_batches())
        state["data"] = iterator
    checkpoint = tf.train.Checkpoint(**state)
    manager = tf.train.CheckpointManager(checkpoint, os.path.join(out_dir, "checkpoints"),
                                         max_to_keep=max_checkpoints)
    if latest:
        status = checkpoint.restore(latest)
        # Every object of this run must be restored; the checkpoint may hold more (an
        # iterator from a one-replica run, the preemption handler's counter).
        status.assert_existing_objects_matched()
        status.expect_partial()
        print(f"Resumed from {latest} at step {int(step_var.numpy())}.")
    start_step = int(step_var.numpy())
    if iterator is None and replicas == 1:
        iterator = iter(make_batches().skip(start_step))
    elif iterator is None:
        iterator = iter(distribute.distribute_meta_batches(strategy, make_batches,
                                                           meta_batch_size, skip=start_step))

    _write_gin_config(out_dir)
    log_path = os.path.join(out_dir, LOG_FILE)
    log_rows = _read_log(log_path, start_step)
    _rewrite_log(log_path, log_rows)
    writer = tf.summary.create_file_writer(os.path.join(out_dir, "tensorboard"))

    if start_step == 0:
        # Refuse inits that cannot learn (e.g. a NeRF whose ReLU density is zero
        # everywhere has zero gradients) before spending hours on them.
        problem = task.check_init(FunctionalModel(model), [tf.convert_to_tensor(v) for v in
                                                           model.trainable_variables],
                                  take_examples(dataset_fn(split=train_split), 1, seed=seed)[0])
        if problem:
            raise ValueError(f"The initial weights (seed={seed}) cannot be meta-trained: "
                             f"{problem} Choose another meta_train.seed.")

    eval_examples = None
    if eval_every and num_eval_examples:
        eval_examples = take_examples(dataset_fn(split=eval_split), num_eval_examples, seed=seed + 1)
        eval_fitter = Fitter(model, task, meta_config.inner_optimizer,
                             steps_per_call=meta_config.inner_steps, jit_compile=jit_compile)

    progbar = keras.utils.Progbar(num_steps, stateful_metrics=["loss", "inner_loss_first"],
                                  verbose=1 if show_progress else 0)
    if start_step:
        progbar.update(start_step)
    metrics = {}
    step = start_step
    run_start = time.perf_counter()
    seconds_at_start = float(seconds_var.numpy())
    stopped_early = False
    with _StepLog(log_path) as step_log, distribute.PreemptionWatcher(
            strategy, manager, before_save=step_log.flush) as watcher:
        while step < num_steps:
            batch = next(iterator)
            metrics = {k: float(v) for k, v in trainer.train_step(batch).items()}
            if not all(math.isfinite(v) for v in metrics.values()):
                raise NonFiniteLossError(
                    f"Non-finite meta-training metrics {metrics} at step {step + 1}; stopping. "
                    f"The last good checkpoint ({manager.latest_checkpoint}) is intact; lower the "
                    "learning rates or check the data for NaNs.")
            step += 1
            step_var.assign(step)
            elapsed = seconds_at_start + time.perf_counter() - run_start
            seconds_var.assign(elapsed)
            step_log.write({"step": step, "loss": repr(metrics["loss"]),
                            "inner_loss_first": repr(metrics["inner_loss_first"]),
                            "seconds": f"{elapsed:.3f}"})
            with writer.as_default(step=step):
                for name, value in metrics.items():
                    tf.summary.scalar(f"train/{name}", value)
            progbar.update(step, values=list(metrics.items()))
            if eval_examples and step % eval_every == 0:
                _evaluate_and_log(eval_fitter, eval_examples, meta_config.inner_steps, writer,
                                  step)
            if watcher.save_if_preempted(step):  # Saved checkpoint `step`: stop now.
                stopped_early = step < num_steps
                break
            stop_now = stop_after_steps is not None and step - start_step >= stop_after_steps
            if step % checkpoint_every == 0 or step == num_steps or stop_now:
                step_log.flush()  # Rows first: a resumed run drops rows past its checkpoint.
                manager.save(checkpoint_number=step)
            if stop_now:
                stopped_early = step < num_steps
                break
    writer.flush()
    result = {"step": step, "log": log_path, "metrics": metrics, "init_dir": None}
    if stopped_early:
        print(f"\nStopped at step {step}; checkpoint saved. Re-run the same command to resume.")
        return result
    if out_dir != model_dir:  # A non-chief worker: its files were scratch.
        tf.io.gfile.rmtree(out_dir)
        return result
    init_dir = os.path.join(model_dir, "init")
    metadata = {
        "signal_class": signal_class or getattr(dataset_fn, "__name__", str(dataset_fn)),
        "task": {"class_name": type(task).__name__, "config": task.get_config()},
        "dataset": {"function": getattr(dataset_fn, "__name__", str(dataset_fn)),
                    "train_split": train_split, "eval_split": eval_split,
                    "gin_bindings": _dataset_bindings(dataset_fn)},
        "algorithm": algorithm,
        "hyperparameters": {
            "inner_steps": int(inner_steps), "inner_optimizer": inner_optimizer,
            "inner_learning_rate": float(inner_learning_rate),
            "outer_optimizer": "adam", "outer_learning_rate": float(outer_learning_rate),
            "meta_batch_size": int(meta_batch_size), "seed": int(seed),
            "remat": bool(remat), "share_first_forward": bool(share_first_forward),
        },
        "steps": int(step),
        "wall_time_seconds": round(float(seconds_var.numpy()), 1),
        "num_replicas": strategy.num_replicas_in_sync,
        "command": " ".join([os.path.basename(sys.executable)] + sys.argv),
        "final_train_metrics": metrics,
    }
    _export_init(model, init_dir, metadata)
    print(f"\nExported init to {init_dir}")
    result["init_dir"] = init_dir
    return result


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
    """The gin bindings of the dataset function (e.g. its builder config), if any."""
    name = getattr(dataset_fn, "__name__", None)
    if not name:
        return {}
    bindings = {}
    for (scope, selector), values in gin.config._CONFIG.items():  # pylint: disable=protected-access
        if selector.split(".")[-1] == name and not scope:
            bindings.update({k: v for k, v in values.items()
                             if isinstance(v, (str, int, float, bool, type(None)))})
    return bindings


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
