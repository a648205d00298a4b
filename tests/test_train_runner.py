"""The meta-training runner (learnit_tf.training): argument and data checks before building,
one run per model_dir, Ctrl-C, TensorBoard on resume, non-finite weights, metadata.

Tiny in-memory data (8×8 images, SIREN width 8) in graph mode, so each run takes seconds;
the signal tests run `meta_train` in a subprocess (a driver importing `tiny_kwargs`).
"""

import json
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import gin
import pytest
import tensorflow as tf

from learnit_tf import evaluation, testing
from learnit_tf.meta import init_io
from learnit_tf.kinds.image import ImageTask
from learnit_tf.core.metadata import SCHEMA_VERSION
from tiny_runs import IMAGES, never_build, tiny_kwargs
from learnit_tf.training import (LOCK_FILE, CheckpointWriteError, MetaTrainConfigError,
                                 ModelDirLock, ModelDirLockedError, NonFiniteWeightsError,
                                 meta_train, purge_events_after)

REPO = Path(__file__).resolve().parents[1]

# (argument overrides, message): each is refused before anything is built or written.
BAD_ARGUMENTS = [
    ({"num_steps": "abc"}, r"meta_train.num_steps must be an integer >= 1, got 'abc'"),
    ({"num_steps": -5}, r"meta_train.num_steps must be an integer >= 1, got -5"),
    ({"num_steps": 0}, r"meta_train.num_steps must be an integer >= 1, got 0"),
    ({"num_steps": 2.5}, r"meta_train.num_steps must be an integer >= 1, got 2.5"),
    ({"num_steps": True}, r"meta_train.num_steps must be an integer"),
    ({"checkpoint_every": 0}, r"meta_train.checkpoint_every must be an integer >= 1, got 0"),
    ({"eval_every": -1}, r"meta_train.eval_every must be an integer >= 0, got -1"),
    ({"meta_batch_size": 0}, r"meta_train.meta_batch_size must be an integer >= 1, got 0"),
    ({"inner_steps": 0}, r"meta_train.inner_steps must be an integer >= 1"),
    ({"num_eval_examples": -1}, r"meta_train.num_eval_examples must be an integer >= 0"),
    ({"max_checkpoints": 0}, r"meta_train.max_checkpoints must be an integer >= 1"),
    ({"stop_after_steps": 0}, r"meta_train.stop_after_steps must be an integer >= 1"),
    ({"inner_learning_rate": 0.0}, r"meta_train.inner_learning_rate must be a finite number > 0"),
    ({"outer_learning_rate": float("nan")}, r"meta_train.outer_learning_rate must be a finite"),
    ({"outer_learning_rate": "1e-3"}, r"meta_train.outer_learning_rate must be a finite"),
    ({"algorithm": "sgd"}, r"meta_train: .*'sgd'"),
    ({"inner_optimizer": "rmsprop"}, r"meta_train: Inner optimizer must be one of"),
    ({"remat": True}, r"meta_train: remat applies to algorithm 'maml' only"),
    ({"jit_compile": "yes"}, r"meta_train.jit_compile must be True, False or 'auto'"),
    ({"train_split": None}, r"meta_train.train_split must be a split name"),
    ({"dataset_fn": "tiny_images"}, r"meta_train.dataset_fn must be callable"),
    ({"warm_start": 3}, r"meta_train.warm_start must be a zoo name"),
]


@pytest.mark.parametrize("overrides,message", BAD_ARGUMENTS)
def test_bad_arguments_are_refused_before_building(tmp_path, overrides, message):
    model_dir = tmp_path / "run"
    with pytest.raises(MetaTrainConfigError, match=message):
        meta_train(str(model_dir), **tiny_kwargs(model_fn=never_build, **overrides))
    assert not model_dir.exists()  # Nothing written.


def test_dataset_that_does_not_fit_the_task_is_named(tmp_path):
    model_dir = tmp_path / "run"
    with pytest.raises(MetaTrainConfigError, match=r"tiny_images\(split='train'\) does not "
                       r"match ImageTask: .*images are 8×8, the task expects 16×16"):
        meta_train(str(model_dir), **tiny_kwargs(model_fn=never_build, task=ImageTask(16)))
    with pytest.raises(MetaTrainConfigError, match="images have 3 channels, the task expects 1"):
        meta_train(str(model_dir), **tiny_kwargs(model_fn=never_build,
                                                 task=ImageTask(8, channels=1)))
    assert not model_dir.exists()


def _dead_pid():
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def _write_lock(model_dir, pid, host):
    model_dir.mkdir(parents=True, exist_ok=True)
    (model_dir / LOCK_FILE).write_text(
        f'{{"pid": {pid}, "host": "{host}", "started": "2026-01-01T00:00:00+00:00"}}')


def test_lock_of_a_live_or_foreign_run_is_refused_and_a_stale_one_taken_over(tmp_path, capsys):
    model_dir = tmp_path / "run"
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    try:
        _write_lock(model_dir, sleeper.pid, socket.gethostname())
        with pytest.raises(ModelDirLockedError, match=rf"in use by another meta_train run "
                           rf"\(pid {sleeper.pid} on host {socket.gethostname()}"):
            meta_train(str(model_dir), **tiny_kwargs())
    finally:
        sleeper.kill()
        sleeper.wait()
    assert not (model_dir / "checkpoints").exists()
    _write_lock(model_dir, 12345, "another-host.example")
    with pytest.raises(ModelDirLockedError, match=rf"pid 12345 on host another-host.example.*"
                       rf"delete {model_dir / LOCK_FILE}"):
        meta_train(str(model_dir), **tiny_kwargs())
    # A lock left on this host by a process that is gone is taken over.
    dead = _dead_pid()
    _write_lock(model_dir, dead, socket.gethostname())
    result = meta_train(str(model_dir), **tiny_kwargs())
    assert result["init_dir"] and result["step"] == 4
    assert f"Taking over the stale lock of pid {dead}" in capsys.readouterr().out
    assert not (model_dir / LOCK_FILE).exists()  # Released at the end.
    assert sorted(p.name for p in model_dir.iterdir() if "lock" in p.name) == []


def test_script_reports_bad_settings_and_a_locked_model_dir_without_a_traceback(tmp_path):
    script, gin_file = REPO / "scripts" / "meta_train.py", REPO / "gin/image/text_maml_cpu.gin"
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", PYTHONPATH=str(REPO))
    bad_dir, locked_dir = tmp_path / "bad", tmp_path / "locked"
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(300)"])
    try:
        _write_lock(locked_dir, sleeper.pid, socket.gethostname())
        lock_text = (locked_dir / LOCK_FILE).read_text()
        runs = {name: subprocess.Popen(
            [sys.executable, str(script), f"--gin_file={gin_file}", f"--model_dir={directory}",
             *flags], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
            for name, directory, flags in (
                ("bad", bad_dir, ["--gin_bindings=meta_train.num_steps=-5"]),
                ("locked", locked_dir, []))}
        outputs = {name: run.communicate(timeout=300)[0] for name, run in runs.items()}
    finally:
        sleeper.kill()
        sleeper.wait()
    for name, run in runs.items():
        assert run.returncode == 1, outputs[name]
        assert "Traceback" not in outputs[name], outputs[name]
    assert "meta_train.num_steps must be an integer >= 1, got -5" in outputs["bad"]
    assert not bad_dir.exists()
    assert f"in use by another meta_train run (pid {sleeper.pid} on host" in outputs["locked"]
    assert (locked_dir / LOCK_FILE).read_text() == lock_text  # The holder's lock is untouched.
    assert sorted(p.name for p in locked_dir.iterdir()) == [LOCK_FILE]


def test_of_two_runs_taking_over_a_stale_lock_one_wins(tmp_path):
    stale = {"pid": _dead_pid(), "host": socket.gethostname(), "started": "2026-01-01"}
    (tmp_path / LOCK_FILE).write_text(json.dumps(stale))
    first, second = ModelDirLock(str(tmp_path)), ModelDirLock(str(tmp_path))
    first.acquire()  # Took over the stale lock.
    second._remove_stale(stale)  # pylint: disable=protected-access  (decided before `first` won)
    assert json.loads((tmp_path / LOCK_FILE).read_text())["token"] == first.record["token"]
    with pytest.raises(ModelDirLockedError, match=f"pid {os.getpid()} on host"):
        second.acquire()
    first.release()
    assert list(tmp_path.iterdir()) == []


DRIVER = """
import sys
sys.path.insert(0, {tests!r})
from tiny_runs import tiny_kwargs
from learnit_tf.training import meta_train
result = meta_train(sys.argv[1], **tiny_kwargs(num_steps=100000, checkpoint_every=3))
sys.exit(0 if result["init_dir"] or result["step"] else 1)
"""


def _start_driver(tmp_path, model_dir):
    driver = tmp_path / "driver.py"
    driver.write_text(DRIVER.format(tests=str(REPO / "tests")))
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", PYTHONPATH=str(REPO))
    return subprocess.Popen([sys.executable, "-u", str(driver), str(model_dir)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def test_second_run_is_refused_and_ctrl_c_checkpoints_then_resumes(tmp_path, capsys):
    model_dir = tmp_path / "run"
    run = _start_driver(tmp_path, model_dir)
    try:
        testing.wait_for_logged_step(run, model_dir, 4, timeout=120,
                                     output=run.stdout.read)
        with pytest.raises(ModelDirLockedError, match=rf"\(pid {run.pid} on host "
                           rf"{socket.gethostname()}, started "):
            meta_train(str(model_dir), **tiny_kwargs(num_steps=100000, stop_after_steps=1))
        run.send_signal(signal.SIGINT)
        output, _ = run.communicate(timeout=60)
    finally:
        if run.poll() is None:
            run.kill()
            run.wait()
    assert run.returncode == 0, output
    stopped = int(testing.train_log_rows(model_dir)[-1]["step"])
    assert f"Stopped at step {stopped}; checkpoint saved." in output, output
    assert "Traceback" not in output and "KeyboardInterrupt" not in output
    assert tf.train.latest_checkpoint(str(model_dir / "checkpoints")).endswith(f"ckpt-{stopped}")
    assert not (model_dir / LOCK_FILE).exists()
    capsys.readouterr()
    result = meta_train(str(model_dir), **tiny_kwargs(num_steps=100000, stop_after_steps=2))
    assert (f"Resumed from {model_dir}/checkpoints/ckpt-{stopped} at step {stopped}."
            in capsys.readouterr().out)
    assert result["step"] == stopped + 2
    steps = [int(r["step"]) for r in testing.train_log_rows(model_dir)]
    assert steps == list(range(1, stopped + 3))


def _event_file_order(path):
    # events.out.tfevents.<time>.<host>.<pid>.<n>.v2: by creation second, then by the
    # writer counter, as numbers (two runs in one second: ...9.v2 before ...10.v2).
    fields = path.name.split(".")
    return int(fields[3]), int(fields[-2])


def _scalar_steps(tensorboard_dir, tag="train/loss"):
    """The `tag` events' steps, the event files read in the order they were created."""
    steps = []
    for path in sorted(Path(tensorboard_dir).glob("events.out.tfevents.*"),
                       key=_event_file_order):
        for record in tf.data.TFRecordDataset(str(path)).as_numpy_iterator():
            event = tf.compat.v1.Event.FromString(record)
            steps += [event.step for value in event.summary.value if value.tag == tag]
    return steps


def test_resumed_run_drops_the_interrupted_runs_events_past_the_checkpoint(tmp_path, capsys):
    model_dir = tmp_path / "run"
    checkpoints = str(model_dir / "checkpoints")
    meta_train(str(model_dir), **tiny_kwargs(num_steps=9, checkpoint_every=3,
                                             stop_after_steps=6))
    assert _scalar_steps(model_dir / "tensorboard") == [1, 2, 3, 4, 5, 6]
    # As if killed after step 6 was logged but before checkpoint 6 was complete.
    tf.compat.v1.train.update_checkpoint_state(checkpoints, os.path.join(checkpoints, "ckpt-3"))
    for path in Path(checkpoints).glob("ckpt-6.*"):
        path.unlink()
    capsys.readouterr()
    meta_train(str(model_dir), **tiny_kwargs(num_steps=9, checkpoint_every=3))
    out = capsys.readouterr().out
    assert "Resumed from" in out and "at step 3." in out
    assert "Dropped the TensorBoard events past step 3" in out
    assert _scalar_steps(model_dir / "tensorboard") == list(range(1, 10))  # Each step once.


def test_purge_events_after_handles_a_truncated_file(tmp_path):
    writer = tf.summary.create_file_writer(str(tmp_path))
    with writer.as_default():
        for step in range(1, 6):
            tf.summary.scalar("train/loss", float(step), step=step)
    writer.close()
    (path,) = tmp_path.glob("events.out.tfevents.*")
    with open(path, "ab") as f:
        f.write(b"\x12\x34\x56")  # A record cut short by a kill.
    assert purge_events_after(str(tmp_path), 3) == 2
    assert _scalar_steps(tmp_path) == [1, 2, 3]
    assert purge_events_after(str(tmp_path), 3) == 0
    assert [p.name for p in tmp_path.iterdir()] == [path.name]


@tf.custom_gradient
def _nan_gradient(x):
    return tf.identity(x), lambda dy: dy * float("nan")


class NanGradientTask(ImageTask):
    """An ImageTask whose outer loss has finite values but NaN gradients."""

    def outer_loss(self, fmodel, weights, example):
        return _nan_gradient(super().outer_loss(fmodel, weights, example))


def test_non_finite_weights_are_never_checkpointed_or_exported(tmp_path):
    model_dir = tmp_path / "run"
    checkpoints = str(model_dir / "checkpoints")
    meta_train(str(model_dir), **tiny_kwargs(algorithm="maml", checkpoint_every=1,
                                             stop_after_steps=2))
    good = tf.train.latest_checkpoint(checkpoints)
    assert good.endswith("ckpt-2")
    with pytest.raises(NonFiniteWeightsError, match=r"after step 3 hold NaN or infinite values; "
                       r"not writing them as a checkpoint. The last good checkpoint "
                       rf"\({good}\) is intact"):
        meta_train(str(model_dir), **tiny_kwargs(algorithm="maml", checkpoint_every=1,
                                                 task=NanGradientTask(8)))
    assert tf.train.latest_checkpoint(checkpoints) == good
    assert not (model_dir / "init").exists()
    assert not (model_dir / LOCK_FILE).exists()


def test_a_full_disk_while_checkpointing_is_named_and_leaves_no_partial_files(tmp_path,
                                                                             monkeypatch):
    model_dir = tmp_path / "run"
    checkpoints = model_dir / "checkpoints"
    save = tf.train.CheckpointManager.save

    def save_until_full(manager, checkpoint_number=None, **kwargs):
        if checkpoint_number == 4:
            (checkpoints / "ckpt-4_temp").mkdir()  # What TensorFlow's saver leaves.
            (checkpoints / "ckpt-4_temp" / "part-00000-of-00001.data-00000-of-00001").write_bytes(
                b"partial")
            raise tf.errors.ResourceExhaustedError(None, None, "No space left on device")
        return save(manager, checkpoint_number=checkpoint_number, **kwargs)

    monkeypatch.setattr(tf.train.CheckpointManager, "save", save_until_full)
    with pytest.raises(CheckpointWriteError, match=r"Could not write checkpoint 4 to .*"
                       r"ResourceExhaustedError: No space left on device.*The last good "
                       r"checkpoint \(.*ckpt-2\) is intact"):
        meta_train(str(model_dir), **tiny_kwargs())
    assert sorted(p.name for p in checkpoints.iterdir() if "ckpt-4" in p.name) == []
    assert tf.train.latest_checkpoint(str(checkpoints)).endswith("ckpt-2")
    assert not (model_dir / "init").exists() and not (model_dir / LOCK_FILE).exists()
    assert [p.name for p in model_dir.iterdir() if p.name.endswith(".tmp")] == []


@gin.configurable
def scaled_tiny_images(split, scale=1.0, config="a"):
    del split, config
    return tf.data.Dataset.from_tensor_slices({"image": IMAGES * scale})


def test_exported_metadata_records_kind_schema_and_gin_bindings(tmp_path):
    gin.parse_config("scaled_tiny_images.scale = 0.5\nscaled_tiny_images.config = 'b'")
    try:
        result = meta_train(str(tmp_path / "run"), **tiny_kwargs(dataset_fn=scaled_tiny_images))
    finally:
        gin.clear_config()
    meta = init_io.read_init_metadata(result["init_dir"])
    assert meta.schema_version == SCHEMA_VERSION and meta.kind == "image"
    assert meta.signal_class == "scaled_tiny_images"
    assert (meta.dataset.function, meta.dataset.bindings) == ("scaled_tiny_images",
                                                              {"scale": 0.5, "config": "b"})
    assert (meta.task.class_name, meta.task.config["resolution"]) == ("ImageTask", [8, 8])
    assert meta.algorithm == "reptile" and meta.steps == 4 and meta.num_replicas == 1
    assert meta.hyperparameters.meta_batch_size == 2
    assert meta.hyperparameters.outer_learning_rate == 1e-3
    assert set(meta.final_train_metrics) == {"loss", "inner_loss_first"}
    # The readers of evaluation rebuild what was trained.
    task = evaluation.task_from_metadata(meta)
    assert type(task) is ImageTask and (task.height, task.width, task.channels) == (8, 8, 3)
    optimizer = evaluation.meta_optimizer_from_metadata(meta)
    assert (optimizer.name, optimizer.learning_rate) == ("sgd", 1e-2)
    raw = init_io.read_metadata(result["init_dir"])
    assert raw["schema_version"] == SCHEMA_VERSION and raw["kind"] == "image"
    assert raw["dataset"]["bindings"] == {"scale": 0.5, "config": "b"}
