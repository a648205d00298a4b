"""learnit_tf.core.atomic: the one atomic writer (temporary file, then rename)."""

import os

import numpy as np
import pytest

from learnit_tf.core import atomic


def test_writers_write_what_they_are_given(tmp_path):
    assert atomic.write_bytes(str(tmp_path / "a.bin"), b"\x00\x01") == str(tmp_path / "a.bin")
    assert (tmp_path / "a.bin").read_bytes() == b"\x00\x01"
    atomic.write_text(str(tmp_path / "sub" / "b.txt"), "héllo\n")  # makes the folder
    assert (tmp_path / "sub" / "b.txt").read_text(encoding="utf-8") == "héllo\n"
    atomic.write_json(str(tmp_path / "c.json"), {"b": np.float32(1.5), "a": np.arange(2)})
    assert (tmp_path / "c.json").read_text() == '{\n  "a": [\n    0,\n    1\n  ],\n  "b": 1.5\n}\n'
    atomic.write_csv(str(tmp_path / "d.csv"), [{"x": 1, "y": 2, "z": 9}, {"x": 3}],
                     columns=("y", "x"))
    assert (tmp_path / "d.csv").read_text() == "y,x\n2,1\n,3\n"
    atomic.save_npy(str(tmp_path / "e.npy"), [[1.0, 2.0]])
    np.testing.assert_array_equal(np.load(tmp_path / "e.npy"), [[1.0, 2.0]])
    assert oct(os.stat(tmp_path / "e.npy").st_mode & 0o777) == oct(0o644)


def test_save_figure_writes_a_png_and_closes_the_figure(tmp_path):
    import matplotlib  # pylint: disable=import-outside-toplevel
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # pylint: disable=import-outside-toplevel
    fig = plt.figure()
    plt.plot([0, 1], [1, 0])
    atomic.save_figure(str(tmp_path / "f.png"), fig, dpi=20)
    assert (tmp_path / "f.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert fig.number not in plt.get_fignums()


def test_a_failing_write_leaves_the_old_file_and_no_temporary(tmp_path):
    path = tmp_path / "table.csv"
    atomic.write_text(str(path), "old\n")

    def fail(tmp):
        with open(tmp, "w") as f:
            f.write("half")
        raise RuntimeError("interrupted")
    with pytest.raises(RuntimeError, match="interrupted"):
        atomic.atomic_save(str(path), fail)
    assert path.read_text() == "old\n"
    assert sorted(os.listdir(tmp_path)) == ["table.csv"]


def test_wrong_types_are_refused_with_the_path():
    with pytest.raises(TypeError, match=r"write_bytes\('x.bin'\): expected bytes, got str"):
        atomic.write_bytes("x.bin", "text")
    with pytest.raises(TypeError, match=r"write_text\('x.txt'\): expected str, got bytes"):
        atomic.write_text("x.txt", b"bytes")
    with pytest.raises(ValueError, match="No rows to write to 'x.csv'"):
        atomic.write_csv("x.csv", [])


def test_the_old_names_are_the_same_functions():
    from learnit_tf import atomic as old  # pylint: disable=import-outside-toplevel
    assert old is atomic and atomic.write_json_atomic is atomic.write_json
