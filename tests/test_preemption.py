"""Preemption safety: SIGKILL / SIGTERM a meta-training job, restart it, same losses.

One uninterrupted reference run and one interrupted chain run as subprocesses of
`scripts/meta_train.py` (a tiny config: 32×32 text images, SIREN width 16 depth 3):

1. one device, a checkpoint every step, SIGKILL mid-run (likely mid-save);
2. restarted on 2 logical CPUs under MirroredStrategy (replica-split data positioned
   by skipping the consumed batches; PreemptionCheckpointHandler), SIGTERM mid-run →
   checkpoint at a step boundary and a clean exit;
3. restarted on one device from that iterator-less checkpoint, runs to the end.

The chain's per-step losses must equal the reference's from every restart step on
(to 1e-6: the 2-replica segment sums the meta-gradient in another order, so later
steps differ by ~1e-8; bit-identical up to the SIGKILL), the latest checkpoint must
always be complete, and each restart must resume from it. Bit-identical resumption
on one device is checked in-process at the end of this file.
"""

import csv
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from learnit_tf import testing

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "scripts" / "meta_train.py"
GIN_FILE = REPO / "gin" / "image" / "text_maml_cpu.gin"
NUM_STEPS = 40


def _bindings(data_dir):
    return [
        "text_images_examples.config='small'",
        f"text_images_examples.data_dir='{data_dir}'",
        "ImageTask.resolution=32",
        "Siren.width=16",
        "Siren.depth=3",
        # Reptile compiles fastest; preemption handling does not depend on the algorithm.
        "meta_train.algorithm='reptile'",
        "meta_train.inner_steps=2",
        "meta_train.meta_batch_size=2",
        "meta_train.outer_learning_rate=1e-3",
        f"meta_train.num_steps={NUM_STEPS}",
        "meta_train.checkpoint_every=1",
        "meta_train.eval_every=0",
        "meta_train.show_progress=False",
    ]


def _env():
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", PYTHONPATH=str(REPO),
               # PreemptionCheckpointHandler asks the GCE metadata server whether it runs
               # on Google Cloud; a closed local port answers "no" at once.
               GCE_METADATA_IP="127.0.0.1:9")
    return env


def _start(model_dir, data_dir, *flags):
    # --verbose: the checks below read the preemption handler's INFO lines.
    command = [sys.executable, str(SCRIPT), f"--gin_file={GIN_FILE}", f"--model_dir={model_dir}",
               *[f"--gin_bindings={b}" for b in _bindings(data_dir)], "--verbose", *flags]
    log = open(Path(model_dir).with_suffix(".out"), "a")
    return subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=_env(),
                            cwd=str(REPO))


def _output(model_dir):
    return Path(model_dir).with_suffix(".out").read_text()


def _wait_for_step(process, model_dir, step, timeout=300):
    testing.wait_for_logged_step(process, model_dir, step, timeout,
                                 output=lambda: _output(model_dir))


def _wait(process, model_dir, timeout=300):
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        pytest.fail(f"meta_train did not finish in {timeout} s:\n{_output(model_dir)[-3000:]}")


def test_killed_and_terminated_runs_resume_with_the_same_losses(tmp_path):
    data_dir = tmp_path / "tfds"
    reference_dir, chain_dir = tmp_path / "reference", tmp_path / "chain"
    # Generate the tiny TFDS dataset once, in the reference run, before the chain
    # starts (two processes must not generate the same dataset concurrently).
    reference = _start(reference_dir, data_dir)
    _wait_for_step(reference, reference_dir, 1)

    # 1. SIGKILL shortly after step 3 was logged: the process is saving checkpoint 3
    # or computing step 4. Whatever it was doing, the latest checkpoint is complete.
    run = _start(chain_dir, data_dir)
    _wait_for_step(run, chain_dir, 3)
    run.send_signal(signal.SIGKILL)
    _wait(run, chain_dir)
    killed_at = testing.latest_checkpoint_step(chain_dir)
    assert 1 <= killed_at < NUM_STEPS - 10, killed_at

    # 2. Restart on 2 replicas, then SIGTERM: the PreemptionCheckpointHandler saves at a
    # step boundary; the process exits 0.
    run = _start(chain_dir, data_dir, "--strategy=mirrored", "--cpu_devices=2")
    _wait_for_step(run, chain_dir, killed_at + 2)
    run.send_signal(signal.SIGTERM)
    _wait(run, chain_dir)
    output = _output(chain_dir)
    assert run.returncode == 0, output[-3000:]
    assert f"Resumed from {chain_dir}/checkpoints/ckpt-{killed_at} at step {killed_at}." in output
    assert "PreemptionCheckpointHandler initialized" in output
    terminated_at = testing.latest_checkpoint_step(chain_dir)
    assert f"Stopped at step {terminated_at}; checkpoint saved." in output
    assert killed_at < terminated_at < NUM_STEPS, (killed_at, terminated_at)
    assert int(testing.train_log_rows(chain_dir)[-1]["step"]) == terminated_at

    # 3. Restart on one device and finish.
    run = _start(chain_dir, data_dir)
    _wait(run, chain_dir)
    output = _output(chain_dir)
    assert run.returncode == 0, output[-3000:]
    assert (f"Resumed from {chain_dir}/checkpoints/ckpt-{terminated_at} at step "
            f"{terminated_at}.") in output
    assert (chain_dir / "init" / "config.json").exists()

    _wait(reference, reference_dir)
    assert reference.returncode == 0, _output(reference_dir)[-3000:]
    expected, actual = testing.train_log_rows(reference_dir), testing.train_log_rows(chain_dir)
    assert [int(r["step"]) for r in expected] == list(range(1, NUM_STEPS + 1))
    assert [int(r["step"]) for r in actual] == list(range(1, NUM_STEPS + 1))
    for step, (want, got) in enumerate(zip(expected, actual), start=1):
        for column in ("loss", "inner_loss_first"):
            if step <= killed_at:  # Uninterrupted so far, on one device.
                assert got[column] == want[column], (column, got, want)
            else:
                assert abs(float(got[column]) - float(want[column])) <= 1e-6, (column, got, want)


@pytest.fixture
def main_thread_only():
    import threading  # pylint: disable=import-outside-toplevel
    if threading.current_thread() is not threading.main_thread():
        pytest.skip("Signal handlers can only be installed from the main thread.")


def _manager(directory):
    import tensorflow as tf  # pylint: disable=import-outside-toplevel
    checkpoint = tf.train.Checkpoint(value=tf.Variable(1.0))
    return checkpoint, tf.train.CheckpointManager(checkpoint, str(directory), max_to_keep=3)


def test_sigterm_flag_checkpoints_at_the_next_step(tmp_path, main_thread_only):
    import tensorflow as tf  # pylint: disable=import-outside-toplevel
    from learnit_tf.training.distribute import PreemptionWatcher  # pylint: disable=import-outside-toplevel
    _, manager = _manager(tmp_path)
    flushed = []
    previous = signal.getsignal(signal.SIGTERM)
    with PreemptionWatcher(tf.distribute.get_strategy(), manager,
                           before_save=lambda: flushed.append(True)) as watcher:
        assert watcher.handler is None  # The default strategy uses the plain SIGTERM flag.
        assert signal.getsignal(signal.SIGTERM) is not previous
        assert not watcher.save_if_preempted(1)
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(0.05)  # Python runs the handler in the main thread between bytecodes.
        assert watcher.save_if_preempted(2)
    assert signal.getsignal(signal.SIGTERM) is previous
    assert manager.latest_checkpoint.endswith("ckpt-2")
    assert flushed == [True]


def test_preemption_checkpoint_handler_path(tmp_path, main_thread_only, monkeypatch):
    import tensorflow as tf  # pylint: disable=import-outside-toplevel
    from learnit_tf.training.distribute import PreemptionWatcher  # pylint: disable=import-outside-toplevel
    monkeypatch.setenv("GCE_METADATA_IP", "127.0.0.1:9")  # "Not on GCP", without a 5 s wait.
    checkpoint, manager = _manager(tmp_path)
    strategy = tf.distribute.OneDeviceStrategy("/cpu:0")
    flushed = []
    previous = signal.getsignal(signal.SIGTERM)
    with PreemptionWatcher(strategy, manager, before_save=lambda: flushed.append(True)) as watcher:
        assert watcher.handler is not None
        assert signal.getsignal(signal.SIGTERM) is not previous  # The handler's own.
        assert not watcher.save_if_preempted(1)
        assert not watcher.save_if_preempted(2)
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(0.05)
        stopped = next(step for step in range(3, 10) if watcher.save_if_preempted(step))
    assert signal.getsignal(signal.SIGTERM) is previous
    # The handler checkpoints after finishing the step it was in when notified (3) and
    # one more (its agreed "current step + 1" for all workers).
    assert stopped == 4
    assert manager.latest_checkpoint.endswith(f"ckpt-{stopped}")
    assert flushed == [True]
    # The handler adds a counter to the checkpoint; restoring the training state into
    # objects without it works (what a restarted meta_train does before the handler exists).
    fresh = tf.train.Checkpoint(value=tf.Variable(0.0))
    fresh.restore(manager.latest_checkpoint).assert_existing_objects_matched()
    assert float(fresh.value.numpy()) == float(checkpoint.value.numpy()) == 1.0


def test_object_store_model_dir_resumes(tmp_path):
    """A model_dir on a non-local file system (TF's in-memory ram://, standing in for gs://)."""
    import numpy as np  # pylint: disable=import-outside-toplevel
    import tensorflow as tf  # pylint: disable=import-outside-toplevel
    from learnit_tf.models import Siren  # pylint: disable=import-outside-toplevel
    from learnit_tf.kinds.image import ImageTask  # pylint: disable=import-outside-toplevel
    from learnit_tf.training import meta_train  # pylint: disable=import-outside-toplevel

    images = np.random.RandomState(0).rand(6, 8, 8, 3).astype(np.float32)
    kwargs = dict(model_fn=lambda seed: Siren(out_features=3, width=8, depth=2, seed=seed),
                  task=ImageTask(8),
                  dataset_fn=lambda split: tf.data.Dataset.from_tensor_slices({"image": images}),
                  algorithm="reptile", inner_steps=1, meta_batch_size=2, num_steps=4,
                  outer_learning_rate=1e-3, checkpoint_every=1, eval_every=0,
                  jit_compile=False, show_progress=False)
    root = f"ram://learnit-{os.getpid()}-{tmp_path.name}"
    meta_train(f"{root}/whole", **kwargs)
    stopped = meta_train(f"{root}/resumed", stop_after_steps=2, **kwargs)
    assert stopped["step"] == 2 and stopped["init_dir"] is None
    done = meta_train(f"{root}/resumed", **kwargs)
    assert done["init_dir"] == f"{root}/resumed/init"
    assert sorted(tf.io.gfile.listdir(done["init_dir"])) == [
        "config.json", "metadata.json", "model.weights.h5"]

    def losses(run):
        with tf.io.gfile.GFile(f"{root}/{run}/train_log.csv") as f:
            return [(row["step"], row["loss"]) for row in csv.DictReader(f)]

    assert len(losses("whole")) == 4
    assert losses("resumed") == losses("whole")
