"""Meta-training across real processes: MultiWorkerMirroredStrategy on 127.0.0.1.

Two `scripts/meta_train.py` workers (each one replica, CPU) with their `TF_CONFIG`,
started by `scripts/launch_workers.py` or directly, against a one-process run of the
same global meta-batch (2 examples: one per worker), in a tiny config (32×32 text
images, SIREN width 16 depth 3):

- the per-step losses and the exported init equal the one-process run's (the
  tolerances of the 2-replica MirroredStrategy test in test_distribute.py); only
  the chief (worker 0) leaves files in model_dir, which then holds exactly what a
  one-process run writes; the other worker's scratch directory is gone; every
  process exits 0 (Reptile by default, MAML slow);
- a worker killed (SIGKILL) mid-run makes the other fail within seconds with a
  one-paragraph message (no traceback); restarting both resumes from the chief's
  last checkpoint; SIGTERM to a worker checkpoints on both and exits 0; the chain's
  losses equal an uninterrupted run's (slow);
- a collective that a live, stalled peer never joins fails after the collective
  timeout (slow).

The TFDS dataset is prepared once in this process: workers that prepare the same
dataset at the same time would race on its directory.
"""

import csv
import json
import os
import re
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import h5py
import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
META_TRAIN = REPO / "scripts" / "meta_train.py"
LAUNCHER = REPO / "scripts" / "launch_workers.py"
GIN_FILE = REPO / "gin" / "image" / "text_maml_cpu.gin"
TIMEOUT = 600  # seconds for one run on a loaded 2-core machine


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    from learnit_tf.kinds.image.text_images import text_images_examples  # pylint: disable=import-outside-toplevel
    directory = tmp_path_factory.mktemp("tfds")
    text_images_examples("train", config="small", data_dir=str(directory))
    return directory


def _flags(model_dir, data_dir, algorithm, num_steps, checkpoint_every):
    bindings = [
        "text_images_examples.config='small'",
        f"text_images_examples.data_dir='{data_dir}'",
        "ImageTask.resolution=32",
        "Siren.width=16",
        "Siren.depth=3",
        f"meta_train.algorithm='{algorithm}'",
        "meta_train.inner_steps=2",
        "meta_train.meta_batch_size=2",  # Global: one example per worker.
        "meta_train.outer_learning_rate=1e-3",
        f"meta_train.num_steps={num_steps}",
        f"meta_train.checkpoint_every={checkpoint_every}",
        "meta_train.eval_every=0",
        "meta_train.show_progress=False",
    ]
    return [f"--gin_file={GIN_FILE}", f"--model_dir={model_dir}",
            *[f"--gin_bindings={b}" for b in bindings]]


def _env():
    # PreemptionCheckpointHandler asks the GCE metadata server whether it runs on
    # Google Cloud; a closed local port answers "no" at once.
    return dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", PYTHONPATH=str(REPO),
                GCE_METADATA_IP="127.0.0.1:9")


def _start(command, log_path, env=None):
    log = open(log_path, "a")
    return subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env or _env(),
                            cwd=str(REPO))


def _wait(process, log_path, timeout=TIMEOUT):
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        pytest.fail(f"{process.args[:2]} did not finish in {timeout} s:\n"
                    f"{Path(log_path).read_text()[-3000:]}")
    return Path(log_path).read_text()


def _rows(model_dir):
    path = Path(model_dir) / "train_log.csv"
    if not path.exists():
        return []
    with open(path) as f:
        return [row for row in csv.DictReader(f) if row.get("seconds")]


def _wait_for_step(processes, model_dir, step, timeout=TIMEOUT):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        rows = _rows(model_dir)
        if rows and int(rows[-1]["step"]) >= step:
            return
        for process in processes:
            if process.poll() is not None:
                pytest.fail(f"a worker exited ({process.returncode}) before step {step}")
        time.sleep(0.05)
    pytest.fail(f"step {step} not reached in {timeout} s")


def _latest_checkpoint(model_dir):
    directory = Path(model_dir) / "checkpoints"
    state = (directory / "checkpoint").read_text()
    latest = re.search(r'^model_checkpoint_path: "(.+)"$', state, re.M).group(1)
    prefix = directory / latest
    assert prefix.with_name(prefix.name + ".index").exists(), state
    assert list(directory.glob(prefix.name + ".data-*")), state
    return int(re.fullmatch(r"ckpt-(\d+)", Path(latest).name).group(1))


def _weights(init_dir):
    arrays = {}
    with h5py.File(Path(init_dir) / "model.weights.h5", "r") as f:
        f.visititems(lambda name, obj: arrays.__setitem__(name, obj[()])
                     if isinstance(obj, h5py.Dataset) else None)
    return arrays


def _files(model_dir):
    """Relative paths under model_dir, event file names reduced to their directory."""
    paths = set()
    for path in Path(model_dir).rglob("*"):
        relative = path.relative_to(model_dir)
        paths.add(str(relative.parent / "EVENTS") if "tfevents" in path.name else str(relative))
    return paths


def _assert_same_losses(actual, expected, steps):
    assert [int(r["step"]) for r in expected] == list(range(1, steps + 1))
    assert [int(r["step"]) for r in actual] == list(range(1, steps + 1))
    for want, got in zip(expected, actual):
        for column in ("loss", "inner_loss_first"):
            assert abs(float(got[column]) - float(want[column])) <= 1e-6, (column, got, want)


def _worker_command(flags, *extra):
    return [sys.executable, str(META_TRAIN), *flags, "--strategy=multi_worker_mirrored", *extra]


def _start_workers(command, log_prefix):
    from learnit_tf.commands import launch_workers  # pylint: disable=import-outside-toplevel
    configs = launch_workers.tf_configs(
        [f"127.0.0.1:{port}" for port in launch_workers.free_ports(2)])
    logs = [f"{log_prefix}.w{i}.out" for i in range(2)]
    workers = [_start(command, log, dict(_env(), TF_CONFIG=config))
               for config, log in zip(configs, logs)]
    return workers, logs


@pytest.mark.parametrize("algorithm", ["reptile", pytest.param("maml", marks=pytest.mark.slow)])
def test_launched_workers_match_one_process(tmp_path, data_dir, algorithm):
    num_steps = 3
    one_dir, multi_dir = tmp_path / "one", tmp_path / "multi"
    one = _start([sys.executable, str(META_TRAIN),
                  *_flags(one_dir, data_dir, algorithm, num_steps, checkpoint_every=2)],
                 tmp_path / "one.out")
    launcher = _start([sys.executable, str(LAUNCHER), "--num_workers=2", "--",
                       *_flags(multi_dir, data_dir, algorithm, num_steps, checkpoint_every=2)],
                      tmp_path / "multi.out")
    output = _wait(launcher, tmp_path / "multi.out")
    one_output = _wait(one, tmp_path / "one.out")
    assert one.returncode == 0, one_output[-3000:]
    assert launcher.returncode == 0, output[-5000:]
    assert "[launcher] worker 0: exit code 0" in output, output[-3000:]
    assert "[launcher] worker 1: exit code 0" in output, output[-3000:]
    pids = [int(p) for p in re.findall(r"^\[launcher\] worker \d: pid (\d+),", output, re.M)]
    assert len(pids) == 2, output[:2000]
    # Every line of a worker's output carries its prefix; only the chief exports.
    assert f"[worker 0] Exported init to {multi_dir}/init" in output, output[-3000:]
    assert "[worker 1] Exported" not in output

    # Same losses and init as one process with the same global meta-batch.
    _assert_same_losses(_rows(multi_dir), _rows(one_dir), num_steps)
    one_weights, multi_weights = _weights(one_dir / "init"), _weights(multi_dir / "init")
    assert sorted(one_weights) == sorted(multi_weights) and len(one_weights) == 6
    for name, want in one_weights.items():
        np.testing.assert_allclose(multi_weights[name], want, atol=1e-5, rtol=0, err_msg=name)
    metadata = json.loads((multi_dir / "init" / "metadata.json").read_text())
    assert metadata["num_replicas"] == 2

    # The chief wrote what a one-process run writes (checkpoints 2 and 3, the log, one
    # TensorBoard event file, config.gin, the init) and nothing else: no scratch
    # directory of worker 1, no lock left behind.
    assert _files(multi_dir) == _files(one_dir), (_files(multi_dir), _files(one_dir))
    assert {"checkpoints/ckpt-2.index", "checkpoints/ckpt-3.index", "train_log.csv",
            "tensorboard/EVENTS", "config.gin", "init/config.json"} <= _files(multi_dir)
    events = list((multi_dir / "tensorboard").iterdir())
    assert len(events) == 1 and events[0].name.split(".")[-3] == str(pids[0]), events


@pytest.mark.slow
def test_killed_worker_fails_the_cluster_and_restart_resumes(tmp_path, data_dir):
    num_steps = 12
    reference_dir, chain_dir = tmp_path / "reference", tmp_path / "chain"
    reference = _start([sys.executable, str(META_TRAIN),
                        *_flags(reference_dir, data_dir, "reptile", num_steps, 1)],
                       tmp_path / "reference.out")
    command = _worker_command(_flags(chain_dir, data_dir, "reptile", num_steps, 1),
                              "--collective_timeout=300")

    # 1. SIGKILL worker 1 after step 3: worker 0 fails within seconds (the coordination
    # service misses worker 1's heartbeats) with a clear message, not a traceback.
    workers, logs = _start_workers(command, tmp_path / "run1")
    _wait_for_step(workers, chain_dir, 3)
    workers[1].send_signal(signal.SIGKILL)
    killed = time.monotonic()
    chief_output = _wait(workers[0], logs[0], timeout=120)
    assert time.monotonic() - killed < 60
    _wait(workers[1], logs[1])
    assert workers[0].returncode == 1, chief_output[-3000:]
    assert "meta_train: error: worker 0 of 2: the cluster failed (UnavailableError" in \
        chief_output, chief_output[-3000:]
    assert "Restart all workers with the same command to resume from the chief's last " \
        f"checkpoint in {chain_dir}/checkpoints." in chief_output
    assert "Traceback" not in chief_output, chief_output[-3000:]
    killed_at = _latest_checkpoint(chain_dir)
    assert 3 <= killed_at < num_steps - 4, killed_at

    # 2. Restart both; SIGTERM to worker 1 (a preemption notice): both workers
    # checkpoint the same step and exit 0.
    workers, logs = _start_workers(command, tmp_path / "run2")
    _wait_for_step(workers, chain_dir, killed_at + 2)
    workers[1].send_signal(signal.SIGTERM)
    outputs = [_wait(w, log, timeout=120) for w, log in zip(workers, logs)]
    terminated_at = _latest_checkpoint(chain_dir)
    for worker, output in zip(workers, outputs):
        assert worker.returncode == 0, output[-3000:]
        assert (f"Resumed from {chain_dir}/checkpoints/ckpt-{killed_at} at step "
                f"{killed_at}.") in output
        assert f"Stopped at step {terminated_at}; checkpoint saved." in output
    assert killed_at < terminated_at < num_steps
    assert int(_rows(chain_dir)[-1]["step"]) == terminated_at

    # 3. Restart both and finish: same losses as the uninterrupted one-process run.
    workers, logs = _start_workers(command, tmp_path / "run3")
    outputs = [_wait(w, log) for w, log in zip(workers, logs)]
    for worker, output in zip(workers, outputs):
        assert worker.returncode == 0, output[-3000:]
    assert f"Resumed from {chain_dir}/checkpoints/ckpt-{terminated_at}" in outputs[1]
    _wait(reference, tmp_path / "reference.out")
    assert reference.returncode == 0
    _assert_same_losses(_rows(chain_dir), _rows(reference_dir), num_steps)
    assert not [p for p in chain_dir.iterdir() if p.name.startswith(".scratch")]
    assert (chain_dir / "init" / "config.json").exists()


_STALLED_PEER = textwrap.dedent("""
    import sys, time
    import tensorflow as tf
    from learnit_tf import distribute
    strategy = distribute.get_distribution_strategy("multi_worker_mirrored",
                                                    collective_timeout=float(sys.argv[1]))
    if strategy.cluster_resolver.task_id == 1:
        time.sleep(120)  # Alive (heartbeats go on) but never joins the all-reduce.
        sys.exit(0)
    all_reduce = tf.function(lambda: strategy.run(
        lambda: tf.distribute.get_replica_context().all_reduce(
            tf.distribute.ReduceOp.SUM, tf.constant(1.0))))
    start = time.monotonic()
    try:
        all_reduce()
    except Exception as e:
        print(f"failed after {time.monotonic() - start:.1f} s: {type(e).__name__}: {e}")
        print(distribute.cluster_failure_message(e, strategy, "MODEL_DIR"))
        sys.exit(3)
    print("no failure")
""")


@pytest.mark.slow
def test_collective_timeout_bounds_a_stalled_peer(tmp_path):
    workers, logs = _start_workers([sys.executable, "-c", _STALLED_PEER, "5"], tmp_path / "stall")
    try:
        output = _wait(workers[0], logs[0], timeout=180)
    finally:
        workers[1].kill()
    assert workers[0].returncode == 3, output[-3000:]
    seconds = float(re.search(r"failed after ([\d.]+) s", output).group(1))
    assert 4.0 <= seconds < 30.0, output[-2000:]
    assert "worker 0 of 2: the cluster failed (DeadlineExceededError" in output, output[-2000:]


# ------------------------------------------------------------ the launcher's own logic


def test_tf_configs_describe_one_cluster_with_the_chief_first():
    from learnit_tf.commands import launch_workers  # pylint: disable=import-outside-toplevel
    ports = launch_workers.free_ports(3)
    assert len(set(ports)) == 3
    configs = [json.loads(c) for c in launch_workers.tf_configs(["a:1", "b:2", "c:3"])]
    assert [c["task"] for c in configs] == [{"type": "worker", "index": i} for i in range(3)]
    assert all(c["cluster"] == {"worker": ["a:1", "b:2", "c:3"]} for c in configs)
    with pytest.raises(ValueError, match="'b' is not of the form host:port"):
        launch_workers.tf_configs(["a:1", "b"])
    command = launch_workers.meta_train_command(["--model_dir=/tmp/x"])
    assert command[-1] == "--strategy=multi_worker_mirrored"
    assert command[1] == str(META_TRAIN)
    with pytest.raises(ValueError, match="runs --strategy=multi_worker_mirrored; got "
                                         r"\['--strategy=mirrored'\]"):
        launch_workers.meta_train_command(["--model_dir=/tmp/x", "--strategy=mirrored"])
    with pytest.raises(ValueError, match="at least --model_dir"):
        launch_workers.meta_train_command(["--gin_file=a.gin"])


def test_worker_group_prefixes_output_and_stops_the_others_after_a_failure(capsys):
    from learnit_tf.commands import launch_workers  # pylint: disable=import-outside-toplevel
    # Worker 0 prints its task index and exits 1; worker 1 would run for 5 minutes.
    program = ("import json, os, sys, time; index = json.loads(os.environ['TF_CONFIG'])"
               "['task']['index']; print('task', index, flush=True); "
               "sys.exit(1) if index == 0 else time.sleep(300)")
    group = launch_workers.WorkerGroup([sys.executable, "-c", program],
                                       launch_workers.tf_configs(["h:1", "h:2"])).start()
    start = time.monotonic()
    codes = group.wait(grace_seconds=1.0, poll=0.05)
    assert time.monotonic() - start < 30
    assert codes == [1, -signal.SIGKILL]
    out = capsys.readouterr().out
    assert "[worker 0] task 0\n" in out and "[worker 1] task 1\n" in out, out
    assert "[launcher] worker 1 still running 1 s after a failure: killing it." in out
