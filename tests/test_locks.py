"""Locked read-merge-replace of shared JSON files (`learnit_tf.locks`), with real processes.

Four processes add 25 keys each to one JSON file at the same moment: all 100 are there
afterwards (a plain read-change-write loses most of them), and a change that refuses
(raises) writes nothing.
"""

import json
import os
import subprocess
import sys
import textwrap
import time

import pytest

from learnit_tf.core import locks

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), os.pardir))

WORKER = textwrap.dedent("""
    import os, sys, time
    path, gate, worker = sys.argv[1:4]
    from learnit_tf.core import locks
    while not os.path.exists(gate):
        time.sleep(0.001)
    for i in range(25):
        key = f"{worker}-{i}"
        locks.update_json(path, lambda data: {**data, key: i}, default={})
""")


def _race(tmp_path):
    path = tmp_path / "shared.json"
    path.write_text("{}")
    gate = tmp_path / "gate"
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [REPO, os.environ.get(
        "PYTHONPATH")])))
    processes = [subprocess.Popen([sys.executable, "-c", WORKER, str(path), str(gate), str(w)],
                                  env=env, cwd=str(tmp_path))
                 for w in range(4)]
    time.sleep(3)  # Let the four import learnit_tf.
    gate.touch()
    assert [p.wait(timeout=600) for p in processes] == [0, 0, 0, 0]
    with open(path) as f:
        return json.load(f)


def test_four_processes_updating_one_file_keep_every_key(tmp_path):
    data = _race(tmp_path)
    assert sorted(data) == sorted(f"{w}-{i}" for w in range(4) for i in range(25))


def test_a_refused_change_writes_nothing(tmp_path):
    path = tmp_path / "shared.json"
    path.write_text('{"a": 1}')

    def refuse(data):
        raise ValueError(f"refused {data}")
    with pytest.raises(ValueError, match=r"refused \{'a': 1\}"):
        locks.update_json(str(path), refuse)
    assert json.loads(path.read_text()) == {"a": 1}
    assert sorted(os.listdir(tmp_path)) == [".shared.json.lock", "shared.json"]
