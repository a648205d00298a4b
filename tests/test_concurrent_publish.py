"""Several real processes publishing into one zoo at the same moment lose nothing (issue 26).

Each worker is its own Python process: it imports learnit_tf, loads its inits once (so
TensorFlow's start-up is behind it), says it is ready, waits for one shared gate file and
then publishes. The index is read back afterwards: every published version must be there
with the hashes of its files; of two publishers of the same version, exactly one wins and
the other is refused with the immutability message.
"""

import hashlib
import json
import os
import subprocess
import sys
import textwrap
import time

import pytest

from learnit_tf import zoo
from learnit_tf.zoo import publishing
from learnit_tf.meta import init_io
from learnit_tf.core import locks
from learnit_tf.models import Siren

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), os.pardir))
METADATA = {"signal_class": "text", "kind": "image", "algorithm": "maml",
            "task": {"class_name": "ImageTask", "config": {"resolution": 8}}}

# argv: gate ready_file mode args...; mode "api": NAME:VERSION:INIT triples published
# in turn through zoo.publish (results printed as JSON); mode "command": learnit-publish
# flags, run through the command's entry point.
WORKER = textwrap.dedent("""
    import json, os, sys, time
    gate, ready, mode, *args = sys.argv[1:]
    from learnit_tf import zoo
    from learnit_tf.meta import init_io
    from learnit_tf.commands import publish
    jobs = [a.split(":", 2) for a in args] if mode == "api" else []
    for _, _, init in jobs:
        init_io.load_init(init)  # Warm: the publishes themselves then start together.
    if mode == "command":
        init_io.load_init([a.split("=", 1)[1] for a in args if a.startswith("--init=")][0])
    open(ready, "w").close()
    while not os.path.exists(gate):
        time.sleep(0.002)
    if mode == "command":
        sys.argv = ["learnit-publish", *args]
        publish.run()
    results = []
    for name, version, init in jobs:
        try:
            zoo.publish(init, name, version, destination=os.environ["ZOO"])
            results.append([name, version, "ok"])
        except zoo.VersionExistsError as e:
            results.append([name, version, "exists: " + str(e)])
    print("RESULTS " + json.dumps(results))
""")


def _sha256(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def _start_workers(tmp_path, zoo_dir, argvs, timeout=600):
    """Starts one process per argv, opens the gate once all are ready; (code, out, err)s."""
    gate = tmp_path / "gate"
    env = dict(os.environ, ZOO=str(zoo_dir), TF_CPP_MIN_LOG_LEVEL="3",
               PYTHONPATH=os.pathsep.join(filter(None, [REPO, os.environ.get("PYTHONPATH")])))
    processes, ready_files = [], []
    for i, argv in enumerate(argvs):
        ready = tmp_path / f"ready-{i}"
        ready_files.append(ready)
        processes.append(subprocess.Popen(
            [sys.executable, "-c", WORKER, str(gate), str(ready), *argv], env=env,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=str(tmp_path)))
    deadline = time.monotonic() + timeout
    while not all(r.exists() for r in ready_files):
        if any(p.poll() is not None for p in processes) or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    gate.touch()
    outcomes = []
    for process in processes:
        out, err = process.communicate(timeout=max(1, deadline - time.monotonic()))
        outcomes.append((process.returncode, out, err))
    return outcomes


def _init(tmp_path, seed):
    return init_io.save_init(Siren(width=8, depth=2, seed=seed), str(tmp_path / f"init{seed}"),
                             METADATA)


def test_four_processes_publishing_at_once_keep_every_entry(tmp_path):
    zoo_dir = tmp_path / "zoo"
    inits = {seed: _init(tmp_path, seed) for seed in range(8)}
    # Four processes, two publishes each: distinct names, and several versions of one name
    # (entry "shared" gets versions 1-4 from four different processes).
    argvs = [["api", f"entry{p}:1:{inits[2 * p]}", f"shared:{p + 1}:{inits[2 * p + 1]}"]
             for p in range(4)]
    outcomes = _start_workers(tmp_path, zoo_dir, argvs)
    for code, out, err in outcomes:
        assert code == 0, err[-3000:]
        results = json.loads(out.split("RESULTS ", 1)[1])
        assert all(r[2] == "ok" for r in results), results

    with open(zoo_dir / "index.json") as f:
        index = json.load(f)
    entries = index["entries"]
    assert sorted(entries) == sorted([f"entry{p}" for p in range(4)] + ["shared"])
    assert sorted(entries["shared"]["versions"], key=int) == [str(v) for v in range(1, 5)]
    assert entries["shared"]["latest"] == "4"
    for p in range(4):
        for name, version, seed in ((f"entry{p}", "1", 2 * p), ("shared", str(p + 1), 2 * p + 1)):
            record = entries[name]["versions"][version]
            weights = os.path.join(inits[seed], init_io.WEIGHTS_FILE)
            assert record["files"][init_io.WEIGHTS_FILE]["sha256"] == _sha256(weights)
            assert _sha256(zoo_dir / name / version / init_io.WEIGHTS_FILE) == _sha256(weights)
    # Every entry loads, verified against the index.
    the_zoo = zoo.Zoo(str(zoo_dir), cache_dir=str(tmp_path / "cache"))
    assert len(the_zoo.list()) == 8
    assert the_zoo.verify("shared", "4")["parameters"] > 0
    # No staging folder or temporary index left behind.
    left = [os.path.join(d, n) for d, dirs, names in os.walk(zoo_dir) for n in dirs + names
            if ".tmp" in n]
    assert left == []


def test_same_version_published_by_two_processes_at_once_one_wins(tmp_path):
    zoo_dir = tmp_path / "zoo"
    first, second = _init(tmp_path, 1), _init(tmp_path, 2)
    argvs = [["command", f"--init={init}", "--name=tiny", "--version=1",
              f"--destination={zoo_dir}"] for init in (first, second)]
    outcomes = _start_workers(tmp_path, zoo_dir, argvs)
    codes = sorted(code for code, _, _ in outcomes)
    assert codes == [0, 1], [(c, e[-2000:]) for c, _, e in outcomes]
    loser_err = next(err for code, _, err in outcomes if code == 1)
    assert "'tiny' version '1' is already published" in loser_err
    assert "published versions are immutable" in loser_err
    assert "Traceback" not in loser_err
    winner = first if outcomes[0][0] == 0 else second
    with open(zoo_dir / "index.json") as f:
        record = json.load(f)["entries"]["tiny"]["versions"]["1"]
    weights = _sha256(os.path.join(winner, init_io.WEIGHTS_FILE))
    assert record["files"][init_io.WEIGHTS_FILE]["sha256"] == weights
    assert _sha256(zoo_dir / "tiny" / "1" / init_io.WEIGHTS_FILE) == weights  # Not mixed.
    assert sorted(os.listdir(zoo_dir / "tiny")) == ["1"]  # The loser left no staging folder.


def test_publish_waits_for_the_index_lock_then_gives_up_clearly(tmp_path):
    zoo_dir = tmp_path / "zoo"
    zoo_dir.mkdir()
    init = _init(tmp_path, 3)
    index = str(zoo_dir / "index.json")
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time, filelock\n"
         "lock = filelock.FileLock(sys.argv[1]); lock.acquire(); print('held', flush=True)\n"
         "time.sleep(60)", locks.lock_path(index)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        previous = publishing._PUBLISH_LOCK_TIMEOUT_SECONDS  # pylint: disable=protected-access
        publishing._PUBLISH_LOCK_TIMEOUT_SECONDS = 0.5  # pylint: disable=protected-access
        try:
            with pytest.raises(locks.SharedFileBusyError, match=r"zoo index .*index.json.* "
                               r"is being changed by another process"):
                zoo.publish(init, "tiny", "1", str(zoo_dir))
        finally:
            publishing._PUBLISH_LOCK_TIMEOUT_SECONDS = previous  # pylint: disable=protected-access
        assert sorted(os.listdir(zoo_dir)) == [".index.json.lock"]  # Nothing else written.
    finally:
        holder.kill()
        holder.wait()
    zoo.publish(init, "tiny", "1", str(zoo_dir))  # Once the holder is gone: published.
    assert zoo.Zoo(str(zoo_dir)).names() == ["tiny"]


def test_publish_to_a_destination_that_is_a_file_names_it(tmp_path):
    init = _init(tmp_path, 4)
    target = tmp_path / "zoo.json"
    target.write_text("{}")
    with pytest.raises(ValueError, match=r"Cannot publish to --destination=.*zoo.json': it is a "
                                         r"file, not a zoo directory"):
        zoo.publish(init, "tiny", "1", str(target))
    assert target.read_text() == "{}"
    with pytest.raises(ValueError, match=r"is inside .*zoo.json', which is a file"):
        zoo.publish(init, "tiny", "1", str(target / "sub"))
