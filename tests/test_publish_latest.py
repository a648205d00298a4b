"""Which version a bare name loads after a publish: `make_latest` / `--make_latest` (issue 24).

Publishing used to reset an entry's `latest` to its highest version on every publish,
which silently changed what `zoo.load("emoji_siren")` loads when a version for another
resolution was published. The publisher now chooses: unset keeps that rule, True makes
the new version the latest, False keeps the entry's latest as the index has it when the
version is merged in (re-read under the index's lock).
"""

import json
import os
import subprocess
import sys

import pytest

from learnit_tf import zoo
from learnit_tf.meta import init_io
from learnit_tf.models import Siren
from learnit_tf.zoo import index as zoo_index
from learnit_tf.zoo import publishing, transport

from test_concurrent_publish import _start_workers

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), os.pardir))
METADATA = {"signal_class": "text", "kind": "image", "algorithm": "maml",
            "task": {"class_name": "ImageTask", "config": {"resolution": 8}}}


def _init(tmp_path, seed):
    return init_io.save_init(Siren(width=8, depth=2, seed=seed), str(tmp_path / f"init{seed}"),
                             METADATA)


def _latest(zoo_dir, name="tiny"):
    with open(os.path.join(zoo_dir, "index.json")) as f:
        return json.load(f)["entries"][name]["latest"]


@pytest.fixture(name="inits")
def _inits(tmp_path):
    return [_init(tmp_path, seed) for seed in range(4)]


def test_unset_keeps_the_highest_version_rule(tmp_path, inits):
    zoo_dir = str(tmp_path / "zoo")
    zoo.publish(inits[0], "tiny", "1", zoo_dir)
    assert _latest(zoo_dir) == "1"
    zoo.publish(inits[1], "tiny", "3", zoo_dir)
    assert _latest(zoo_dir) == "3"
    zoo.publish(inits[2], "tiny", "2", zoo_dir)  # Lower than the latest: the highest stays.
    assert _latest(zoo_dir) == "3"


def test_false_keeps_latest_and_true_moves_it(tmp_path, inits):
    zoo_dir = str(tmp_path / "zoo")
    # An entry's first version is its latest even with make_latest=False.
    zoo.publish(inits[0], "tiny", "1", zoo_dir, make_latest=False)
    assert _latest(zoo_dir) == "1"
    zoo.publish(inits[1], "tiny", "2", zoo_dir, make_latest=False)
    assert _latest(zoo_dir) == "1"
    the_zoo = zoo.Zoo(zoo_dir, cache_dir=str(tmp_path / "cache"))
    assert the_zoo.resolve_version("tiny") == "1"
    loaded = the_zoo.load("tiny")
    reference = init_io.load_init(inits[0])
    for a, b in zip(loaded.get_weights(), reference.get_weights()):
        assert (a == b).all()
    # True: the new version, also when it is not the highest.
    zoo.publish(inits[2], "tiny", "10", zoo_dir, make_latest=False)
    zoo.publish(inits[3], "tiny", "4", zoo_dir, make_latest=True)
    assert _latest(zoo_dir) == "4"
    with open(os.path.join(zoo_dir, "index.json")) as f:
        assert sorted(json.load(f)["entries"]["tiny"]["versions"], key=int) == ["1", "2", "4",
                                                                             "10"]


def test_merge_keeps_the_latest_the_index_has_at_commit(tmp_path, inits, monkeypatch):
    """The index is re-read before the version is merged in: a latest another writer set
    meanwhile (here between the copy and the commit) is kept, not the one read first."""
    zoo_dir = str(tmp_path / "zoo")
    index_path = os.path.join(zoo_dir, "index.json")
    zoo.publish(inits[0], "tiny", "1", zoo_dir)
    zoo.publish(inits[1], "tiny", "2", zoo_dir, make_latest=False)
    assert _latest(zoo_dir) == "1"
    real_mismatch = transport.mismatch
    calls = []

    def other_writer(*args):
        if not calls:  # Once, during the copy of version 3 (the lock is held by then).
            index = zoo_index.read_index_file(index_path)
            index["entries"]["tiny"]["latest"] = "2"
            zoo_index.replace_index_file(index_path, index)
        calls.append(args)
        return real_mismatch(*args)

    monkeypatch.setattr(publishing.transport, "mismatch", other_writer)
    zoo.publish(inits[2], "tiny", "3", zoo_dir, make_latest=False)
    assert calls
    assert _latest(zoo_dir) == "2"


def test_processes_publishing_at_once_with_nomake_latest_keep_it(tmp_path, inits):
    """Three processes publish versions 2-4 of one entry at the same moment through the
    command with --nomake_latest: every version is merged in and latest stays "1"."""
    zoo_dir = tmp_path / "zoo"
    zoo.publish(inits[0], "shared", "1", str(zoo_dir))
    argvs = [["command", f"--init={inits[v - 1]}", "--name=shared", f"--version={v}",
              f"--destination={zoo_dir}", "--nomake_latest"] for v in (2, 3, 4)]
    outcomes = _start_workers(tmp_path, zoo_dir, argvs)
    for code, out, err in outcomes:
        assert code == 0, err[-3000:]
        assert "Latest of shared (what a bare 'shared' loads): 1" in out
    with open(zoo_dir / "index.json") as f:
        entry = json.load(f)["entries"]["shared"]
    assert sorted(entry["versions"], key=int) == ["1", "2", "3", "4"]
    assert entry["latest"] == "1"


def test_command_flag(tmp_path, inits):
    zoo_dir = str(tmp_path / "zoo")
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3",
               PYTHONPATH=os.pathsep.join(filter(None, [REPO, os.environ.get("PYTHONPATH")])))

    def publish(version, init, *flags):
        return subprocess.run(
            [sys.executable, os.path.join(REPO, "scripts", "publish.py"), f"--init={init}",
             "--name=tiny", f"--version={version}", f"--destination={zoo_dir}", *flags],
            env=env, capture_output=True, text=True, check=True, cwd=str(tmp_path))

    publish("1", inits[0])
    out = publish("2", inits[1], "--nomake_latest").stdout
    assert "Latest of tiny (what a bare 'tiny' loads): 1" in out
    assert _latest(zoo_dir) == "1"
    publish("3", inits[2])  # Unset: the highest version.
    assert _latest(zoo_dir) == "3"
    out = publish("2.5", inits[3], "--make_latest").stdout
    assert "Latest of tiny (what a bare 'tiny' loads): 2.5" in out
    assert _latest(zoo_dir) == "2.5"
