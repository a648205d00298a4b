"""Meta-training across real processes: MultiWorkerMirroredStrategy on 127.0.0.1.

Two `scripts/meta_train.py` workers (each one replica, CPU) started by
`scripts/launch_workers.py`, against a one-process run of the same global meta-batch
(2 examples: one per worker) in a tiny config (32×32 text images, SIREN width 16
depth 3). Process start-up (importing TensorFlow) and tracing dominate, so every
check shares as few processes as it can:

- Reptile: one uninterrupted launched run; its per-step losses and exported init
  equal the one-process run's (the tolerances of the 2-replica MirroredStrategy test
  in test_distribute.py), only the chief (worker 0) leaves files in model_dir, which
  then holds exactly what a one-process run writes (no scratch directory of worker
  1), every process exits 0.
- MAML: one chain of three launched runs into one model_dir. (1) SIGKILL worker 1
  mid-run: worker 0 fails within the collective timeout with a one-paragraph message
  (no traceback). (2) Restart: it resumes from the chief's last checkpoint; SIGTERM
  to worker 1 (a preemption notice) makes both checkpoint the same step and exit 0.
  (3) Restart and finish: the chain's per-step losses and exported init equal the
  uninterrupted one-process run's, and model_dir holds a one-process run's files.
- The launcher's signal forwarding (SIGTERM or Ctrl-C to the launcher reaches every
  worker) with stand-in workers, which start in milliseconds.
- A collective that a live, stalled peer never joins fails after the collective
  timeout (two small processes, no training; slow: the killed worker above already
  shows a bounded, clear failure).

The one-process reference runs are in this process (no TensorFlow import to pay),
once per algorithm for the module. The TFDS dataset is prepared once, here too (the
workers could each prepare it, see test_procedural_builders.py; once is cheaper).
"""

import json
import os
import re
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import gin
import h5py
import numpy as np
import pytest

from learnit_tf import testing
from learnit_tf.training import gin_config
from learnit_tf.commands import launch_workers
from learnit_tf.kinds.image.text_images import text_images_examples
from learnit_tf.training import meta_train

REPO = Path(__file__).resolve().parents[1]
LAUNCHER = REPO / "scripts" / "launch_workers.py"
GIN_FILE = REPO / "gin" / "image" / "text_maml_cpu.gin"
TIMEOUT = 600  # seconds for one run on a loaded 2-core machine
COLLECTIVE_TIMEOUT = 60  # seconds (--collective_timeout of the MAML chain)


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    directory = tmp_path_factory.mktemp("tfds")
    text_images_examples("train", config="small", data_dir=str(directory))
    return directory


def _bindings(data_dir, algorithm, num_steps):
    return [
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
        "meta_train.checkpoint_every=1",
        "meta_train.eval_every=0",
        "meta_train.show_progress=False",
    ]


def _flags(model_dir, data_dir, algorithm, num_steps):
    return [f"--gin_file={GIN_FILE}", f"--model_dir={model_dir}",
            *[f"--gin_bindings={b}" for b in _bindings(data_dir, algorithm, num_steps)]]


@pytest.fixture(scope="module")
def one_process_run(data_dir, tmp_path_factory):
    """run(algorithm, num_steps) -> the model_dir of a one-process run (made once)."""
    runs = {}

    def run(algorithm, num_steps):
        if (algorithm, num_steps) not in runs:
            model_dir = tmp_path_factory.mktemp(f"one_process_{algorithm}")
            gin.clear_config()  # What scripts/meta_train.py does in a fresh process.
            try:
                gin_config.parse_config([str(GIN_FILE)],
                                        _bindings(data_dir, algorithm, num_steps))
                result = meta_train(str(model_dir))
            finally:
                gin.clear_config()
            assert result["step"] == num_steps and result["init_dir"], result
            runs[algorithm, num_steps] = model_dir
        return runs[algorithm, num_steps]

    return run


def _env():
    # PreemptionCheckpointHandler asks the GCE metadata server whether it runs on
    # Google Cloud; a closed local port answers "no" at once.
    return dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", PYTHONPATH=str(REPO),
                GCE_METADATA_IP="127.0.0.1:9")


@pytest.fixture
def launch():
    """launch(log_path, *args) starts scripts/launch_workers.py; whatever of it still
    runs when the test ends (a failed check) is killed, workers first (each runs in a
    session of its own, so killing the launcher alone would leave them running)."""
    launched = []

    def start(log_path, *args):
        with open(log_path, "a") as log:  # The launcher holds its own copy.
            process = subprocess.Popen([sys.executable, str(LAUNCHER), *args], stdout=log,
                                       stderr=subprocess.STDOUT, env=_env(), cwd=str(REPO))
        launched.append((process, log_path))
        return process

    yield start
    for process, log_path in launched:
        # Running, or killed (by a timed-out wait) before it could wait for its workers.
        if process.poll() is None or process.returncode < 0:
            for pid in re.findall(r"^\[launcher\] worker \d: pid (\d+),",
                                  Path(log_path).read_text(), re.M):
                try:
                    os.kill(int(pid), signal.SIGKILL)
                except ProcessLookupError:
                    pass
            if process.poll() is None:
                process.kill()
                process.wait()


def _wait(process, log_path, timeout=TIMEOUT):
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        pytest.fail(f"{process.args[:3]} did not finish in {timeout} s:\n"
                    f"{Path(log_path).read_text()[-3000:]}")
    return Path(log_path).read_text()


def _worker_pids(log_path, count=2, timeout=60):
    """The worker pids the launcher printed (it prints them as it starts them)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        pids = re.findall(r"^\[launcher\] worker \d: pid (\d+),", Path(log_path).read_text(),
                          re.M)
        if len(pids) == count:
            return [int(p) for p in pids]
        time.sleep(0.02)
    pytest.fail(f"The launcher did not start {count} workers:\n{Path(log_path).read_text()}")


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


def _event_file_pids(model_dir):
    # Event files are named events.out.tfevents.<time>.<host>.<pid>.<n>.v2.
    return {int(p.name.split(".")[-3]) for p in (Path(model_dir) / "tensorboard").iterdir()}


def _assert_same_run(model_dir, one_process_dir, num_steps):
    """Same per-step losses and exported init as the one-process run, and the same
    files: the chief wrote what one process writes (checkpoints, log, TensorBoard
    events, config.gin, the init) and nothing else: no scratch directory of worker 1,
    no lock left behind."""
    expected, actual = testing.train_log_rows(one_process_dir), testing.train_log_rows(model_dir)
    assert [int(r["step"]) for r in expected] == list(range(1, num_steps + 1))
    assert [int(r["step"]) for r in actual] == list(range(1, num_steps + 1))
    for want, got in zip(expected, actual):
        for column in ("loss", "inner_loss_first"):
            assert abs(float(got[column]) - float(want[column])) <= 1e-6, (column, got, want)
    one_weights, multi_weights = _weights(one_process_dir / "init"), _weights(model_dir / "init")
    assert sorted(one_weights) == sorted(multi_weights) and len(one_weights) == 6
    for name, want in one_weights.items():
        np.testing.assert_allclose(multi_weights[name], want, atol=1e-5, rtol=0, err_msg=name)
    assert json.loads((model_dir / "init" / "metadata.json").read_text())["num_replicas"] == 2
    assert _files(model_dir) == _files(one_process_dir), (_files(model_dir),
                                                          _files(one_process_dir))
    assert {f"checkpoints/ckpt-{num_steps}.index", "train_log.csv", "tensorboard/EVENTS",
            "config.gin", "init/config.json"} <= _files(model_dir)


def test_launched_reptile_workers_match_one_process(tmp_path, launch, one_process_run,
                                                    data_dir):
    num_steps = 3
    model_dir, log = tmp_path / "multi", tmp_path / "multi.out"
    launcher = launch(log, "--num_workers=2", "--",
                      *_flags(model_dir, data_dir, "reptile", num_steps))
    one_process_dir = one_process_run("reptile", num_steps)  # Meanwhile, in this process.
    output = _wait(launcher, log)
    assert launcher.returncode == 0, output[-5000:]
    assert "[launcher] worker 0: exit code 0" in output, output[-3000:]
    assert "[launcher] worker 1: exit code 0" in output, output[-3000:]
    # Every line of a worker's output carries its prefix; only the chief exports.
    assert f"[worker 0] Exported init to {model_dir}/init" in output, output[-3000:]
    assert "[worker 1] Exported" not in output
    _assert_same_run(model_dir, one_process_dir, num_steps)
    assert _event_file_pids(model_dir) == {_worker_pids(log)[0]}


def test_maml_workers_survive_a_killed_and_a_preempted_worker(tmp_path, launch,
                                                              one_process_run, data_dir):
    num_steps = 12
    chain_dir = tmp_path / "chain"
    args = ["--num_workers=2", f"--grace_seconds={2 * COLLECTIVE_TIMEOUT}", "--",
            *_flags(chain_dir, data_dir, "maml", num_steps),
            f"--collective_timeout={COLLECTIVE_TIMEOUT}"]

    # 1. SIGKILL worker 1 once step 2 is logged (the row is written just before checkpoint 2
    # is saved, so the kill may land mid-save): worker 0 fails within the collective
    # timeout (in practice within seconds: the coordination service misses worker 1's
    # heartbeats) with a clear message, not a traceback; the latest checkpoint is complete.
    log = tmp_path / "run1.out"
    launcher = launch(log, *args)
    chief_pids = [_worker_pids(log)[0]]
    testing.wait_for_logged_step(launcher, chain_dir, 2, TIMEOUT, output=log.read_text)
    os.kill(_worker_pids(log)[1], signal.SIGKILL)
    killed = time.monotonic()
    output = _wait(launcher, log, timeout=3 * COLLECTIVE_TIMEOUT)
    seconds = time.monotonic() - killed
    print(f"worker 0 failed {seconds:.1f} s after worker 1 was killed")
    assert seconds < COLLECTIVE_TIMEOUT, output[-3000:]
    assert launcher.returncode == 1, output[-3000:]
    assert "[launcher] worker 0: exit code 1" in output, output[-3000:]
    assert "[launcher] worker 1: killed by SIGKILL" in output, output[-3000:]
    assert "[worker 0] meta_train: error: worker 0 of 2: the cluster failed (UnavailableError" \
        in output, output[-3000:]
    assert "Restart all workers with the same command to resume from the chief's last " \
        f"checkpoint in {chain_dir}/checkpoints." in output
    assert "Traceback" not in output, output[-3000:]
    killed_at = testing.latest_checkpoint_step(chain_dir)
    assert 1 <= killed_at < num_steps - 5, killed_at

    # 2. Restart; SIGTERM to worker 1 only (a preemption notice reaches one host): both
    # workers checkpoint the same step and exit 0.
    log = tmp_path / "run2.out"
    launcher = launch(log, *args)
    chief_pids.append(_worker_pids(log)[0])
    testing.wait_for_logged_step(launcher, chain_dir, killed_at + 1, TIMEOUT,
                                 output=log.read_text)
    os.kill(_worker_pids(log)[1], signal.SIGTERM)
    output = _wait(launcher, log)
    assert launcher.returncode == 0, output[-3000:]
    terminated_at = testing.latest_checkpoint_step(chain_dir)
    for index in range(2):
        assert (f"[worker {index}] Resumed from {chain_dir}/checkpoints/ckpt-{killed_at} at "
                f"step {killed_at}.") in output, output[-3000:]
        assert f"[worker {index}] Stopped at step {terminated_at}; checkpoint saved." in output
        assert f"[launcher] worker {index}: exit code 0" in output
    assert killed_at < terminated_at < num_steps
    assert int(testing.train_log_rows(chain_dir)[-1]["step"]) == terminated_at

    # 3. Restart and finish: the losses and init of an uninterrupted one-process run.
    log = tmp_path / "run3.out"
    launcher = launch(log, *args)
    chief_pids.append(_worker_pids(log)[0])
    one_process_dir = one_process_run("maml", num_steps)  # Meanwhile, in this process.
    output = _wait(launcher, log)
    assert launcher.returncode == 0, output[-3000:]
    assert (f"[worker 1] Resumed from {chain_dir}/checkpoints/ckpt-{terminated_at} at step "
            f"{terminated_at}.") in output, output[-3000:]
    _assert_same_run(chain_dir, one_process_dir, num_steps)
    # Each run's chief wrote one event file; worker 1 none.
    assert _event_file_pids(chain_dir) == set(chief_pids)


# Stands in for meta_train: says it is ready, then on SIGTERM "checkpoints" and exits 0.
_STAND_IN_WORKER = textwrap.dedent("""
    import signal, sys, time
    def stop(signum, frame):
        print(f"{signal.Signals(signum).name}: checkpoint saved", flush=True)
        sys.exit(0)
    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the launcher's to pass on.
    print("ready", flush=True)
    time.sleep(300)
    sys.exit(1)
""")

# The launcher with the stand-in as its worker program.
_LAUNCH_STAND_INS = textwrap.dedent("""
    import importlib.util, sys
    spec = importlib.util.spec_from_file_location("launch_workers", sys.argv[1])
    launch_workers = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(launch_workers)
    launch_workers.meta_train_command = lambda args: [sys.executable, "-c", sys.argv[2]]
    sys.exit(launch_workers.launch(["--model_dir=unused"], num_workers=2, grace_seconds=30))
""")


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_a_signal_to_the_launcher_reaches_every_worker(tmp_path, signum):
    log = tmp_path / "launcher.out"
    launcher = subprocess.Popen(
        [sys.executable, "-c", _LAUNCH_STAND_INS, launch_workers.__file__, _STAND_IN_WORKER],
        stdout=open(log, "w"), stderr=subprocess.STDOUT, env=_env())
    deadline = time.monotonic() + 60
    while log.read_text().count("] ready") < 2:
        assert launcher.poll() is None and time.monotonic() < deadline, log.read_text()
        time.sleep(0.02)
    launcher.send_signal(signum)
    output = _wait(launcher, log, timeout=60)
    assert launcher.returncode == 0, output
    assert (f"[launcher] {signum.name}: asking every worker to checkpoint and stop "
            "(SIGTERM).") in output, output
    for index in range(2):
        assert f"[worker {index}] SIGTERM: checkpoint saved" in output, output
        assert f"[launcher] worker {index}: exit code 0" in output, output
    assert "still running" not in output, output


_STALLED_PEER = textwrap.dedent("""
    import sys, time
    import tensorflow as tf
    from learnit_tf.training import distribute
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


@pytest.mark.slow  # Two more TensorFlow processes (~20 s of CPU) for a failure mode of
# TensorFlow's collectives rather than of this package: it checks that
# --collective_timeout reaches them and that the message names the timeout.
def test_collective_timeout_bounds_a_stalled_peer(tmp_path):
    configs = launch_workers.tf_configs(
        [f"127.0.0.1:{port}" for port in launch_workers.free_ports(2)])
    logs = [tmp_path / f"stall.w{i}.out" for i in range(2)]
    workers = [subprocess.Popen([sys.executable, "-c", _STALLED_PEER, "5"],
                                stdout=open(log, "w"), stderr=subprocess.STDOUT,
                                env=dict(_env(), TF_CONFIG=config))
               for config, log in zip(configs, logs)]
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
    ports = launch_workers.free_ports(3)
    assert len(set(ports)) == 3
    configs = [json.loads(c) for c in launch_workers.tf_configs(["a:1", "b:2", "c:3"])]
    assert [c["task"] for c in configs] == [{"type": "worker", "index": i} for i in range(3)]
    assert all(c["cluster"] == {"worker": ["a:1", "b:2", "c:3"]} for c in configs)
    with pytest.raises(ValueError, match="'b' is not of the form host:port"):
        launch_workers.tf_configs(["a:1", "b"])
    command = launch_workers.meta_train_command(["--model_dir=/tmp/x"])
    assert command[-1] == "--strategy=multi_worker_mirrored"
    assert command[1] == str(REPO / "scripts" / "meta_train.py")
    with pytest.raises(ValueError, match="runs --strategy=multi_worker_mirrored; got "
                                         r"\['--strategy=mirrored'\]"):
        launch_workers.meta_train_command(["--model_dir=/tmp/x", "--strategy=mirrored"])
    with pytest.raises(ValueError, match="at least --model_dir"):
        launch_workers.meta_train_command(["--gin_file=a.gin"])


def test_worker_group_prefixes_output_and_stops_the_others_after_a_failure(capsys):
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
