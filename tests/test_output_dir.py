"""Output folders are never silently replaced, are locked, and are checked first (issue 26).

`OutputDir` directly, then `learnit-fit` as a real process: a non-empty --output_dir is
refused without --overwrite; --overwrite replaces only the fit's own files (a user's
file in the folder or in fitted/ survives); two fits into one folder never end mixed;
an unwritable folder fails before any work.
"""

import csv
import os
import subprocess
import sys
import time

import numpy as np
import pytest
from PIL import Image

from learnit_tf.meta import init_io
from learnit_tf.models import Siren
from learnit_tf.core.output_dir import (LOCK_FILE, OutputDir, OutputDirError, OutputDirExistsError,
                                   OutputDirLockedError, OutputDirNotWritableError)

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), os.pardir))
METADATA = {"signal_class": "text", "kind": "image", "algorithm": "maml",
            "task": {"class_name": "ImageTask", "config": {"resolution": 8}},
            "hyperparameters": {"inner_optimizer": "sgd", "inner_learning_rate": 1e-2}}


def _write(path, text):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write(text)


def _read(path):
    with open(path) as f:
        return f.read()


def _files(root):
    return sorted(os.path.relpath(os.path.join(d, n), root)
                  for d, _, names in os.walk(root) for n in names)


def _stage(out, files):
    staging = out.staging()
    for name, text in files.items():
        _write(os.path.join(staging, name), text)
    return out.commit(staging)


def _unwritable(tmp_path):
    """A folder this process cannot create files in (skips if there is none: root)."""
    locked = tmp_path / "read_only"
    locked.mkdir()
    locked.chmod(0o555)
    try:
        open(locked / "probe", "w").close()
    except OSError:
        return str(locked / "out")
    os.remove(locked / "probe")
    if os.path.isdir("/sys"):  # Root ignores permissions, but not a read-only file system.
        try:
            os.mkdir("/sys/learnit_probe")
        except OSError:
            return "/sys/learnit_out"
        os.rmdir("/sys/learnit_probe")
    pytest.skip("no unwritable folder on this machine")


# ------------------------------------------------------------------------- OutputDir


def test_new_folder_is_written_and_a_second_run_is_refused(tmp_path):
    out = OutputDir(str(tmp_path / "run"))
    with out.open():
        assert _stage(out, {"table.csv": "1", "sub/plot.png": "2"}) == ["sub", "table.csv"]
    assert _files(tmp_path / "run") == [LOCK_FILE, "sub/plot.png", "table.csv"]
    with pytest.raises(OutputDirExistsError, match=r"--output_dir='.*run' already holds sub, "
                                                   r"table.csv; pass --overwrite"):
        OutputDir(str(tmp_path / "run")).open()
    assert _read(tmp_path / "run" / "table.csv") == "1"


def test_overwrite_replaces_only_the_commands_files(tmp_path):
    root = tmp_path / "run"
    _write(root / "table.csv", "old")
    _write(root / "plot.png", "old plot")          # owned, not written again: removed
    _write(root / "notes.txt", "mine")            # the user's: kept
    _write(root / "fitted" / "notes.txt", "mine too")
    _write(root / "fitted" / "config.json", "old config")
    out = OutputDir(str(root), overwrite=True, owned=("table.csv", "plot.png",
                                                       "fitted/config.json"))
    with out.open():
        _stage(out, {"table.csv": "new", "fitted/config.json": "new config"})
    assert _files(root) == [LOCK_FILE, "fitted/config.json", "fitted/notes.txt", "notes.txt",
                            "table.csv"]
    assert _read(root / "table.csv") == "new"
    assert _read(root / "fitted" / "config.json") == "new config"
    assert _read(root / "notes.txt") == "mine"
    assert _read(root / "fitted" / "notes.txt") == "mine too"


def test_a_failed_run_leaves_the_folder_as_it_was(tmp_path):
    with pytest.raises(RuntimeError):
        with OutputDir(str(tmp_path / "new")).open() as out:
            _write(os.path.join(out.staging(), "half.csv"), "x")
            raise RuntimeError("the run failed")
    assert not (tmp_path / "new").exists()  # Created by the run, so removed again.
    _write(tmp_path / "old" / "keep.txt", "mine")
    with pytest.raises(RuntimeError):
        with OutputDir(str(tmp_path / "old"), overwrite=True).open() as out:
            _write(os.path.join(out.staging(), "keep.txt"), "replaced?")
            raise RuntimeError("the run failed")
    assert _files(tmp_path / "old") == [LOCK_FILE, "keep.txt"]
    assert _read(tmp_path / "old" / "keep.txt") == "mine"


def test_a_file_or_an_unwritable_folder_fails_at_once(tmp_path):
    _write(tmp_path / "a_file", "x")
    with pytest.raises(OutputDirError, match=r"a_file' exists and is not a directory"):
        OutputDir(str(tmp_path / "a_file")).open()
    with pytest.raises(OutputDirError, match=r"is inside .*a_file', not a directory"):
        OutputDir(str(tmp_path / "a_file" / "sub")).open()
    target = _unwritable(tmp_path)
    with pytest.raises(OutputDirNotWritableError, match=rf"--output_dir='{target}' cannot be "
                                                        r"created \(.*\); choose a folder"):
        OutputDir(target).open()


def test_a_folder_locked_by_another_process_is_refused(tmp_path):
    root = tmp_path / "run"
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time\nfrom learnit_tf.output_dir import OutputDir\n"
         "out = OutputDir(sys.argv[1]).open(); print('held', flush=True); time.sleep(60)",
         str(root)], stdout=subprocess.PIPE, text=True, cwd=REPO)
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(OutputDirLockedError, match=r"'.*run' is being written by another "
                                                       r"learnit command right now"):
            OutputDir(str(root), overwrite=True).open()
    finally:
        holder.kill()
        holder.wait()
    OutputDir(str(root)).open().close()  # Its holder died: the OS released the lock.


# ------------------------------------------------------------------------ learnit-fit


@pytest.fixture(scope="module")
def fit_inputs(tmp_path_factory):
    root = tmp_path_factory.mktemp("fit_inputs")
    init = init_io.save_init(Siren(width=8, depth=2, seed=1), str(root / "init"), METADATA)
    png = str(root / "photo.png")
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (8, 8, 3), np.uint8)).save(png)
    return init, png


def _fit_command(init, png, out, *flags):
    return [sys.executable, os.path.join(REPO, "scripts", "fit.py"), f"--init={init}",
            f"--input={png}", "--resolution=8", f"--output_dir={out}", *flags]


def _run(args):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    return subprocess.run(args, capture_output=True, text=True, cwd=REPO, env=env, timeout=600)


def _fit_steps(out):
    """(steps in fitted/metadata.json, rows of curve.csv - 1, reconstruction.npy shape)."""
    steps = init_io.read_metadata(os.path.join(out, "fitted"))["fitted"]["steps"]
    with open(os.path.join(out, "curve.csv")) as f:
        rows = len(list(csv.DictReader(f)))
    return steps, rows - 1


def test_fit_into_a_folder_with_files_is_refused_then_overwrite_keeps_the_users_files(
        tmp_path, fit_inputs):
    init, png = fit_inputs
    out = tmp_path / "out"
    _write(out / "notes.txt", "mine")
    _write(out / "fitted" / "notes.txt", "mine too")
    _write(out / "curve.csv", "an old curve")
    refused = _run(_fit_command(init, png, out, "--steps=2"))
    assert refused.returncode == 2, refused.stderr[-2000:]
    assert f"--output_dir='{out}' already holds curve.csv, fitted, notes.txt; pass " \
           "--overwrite" in refused.stderr
    assert "Traceback" not in refused.stderr and "Fitting" not in refused.stdout
    assert _files(out) == [LOCK_FILE, "curve.csv", "fitted/notes.txt", "notes.txt"]
    assert _read(out / "curve.csv") == "an old curve"

    done = _run(_fit_command(init, png, out, "--steps=2", "--overwrite"))
    assert done.returncode == 0, done.stderr[-2000:]
    assert _read(out / "notes.txt") == "mine"
    assert _read(out / "fitted" / "notes.txt") == "mine too"  # fitted/ was not replaced whole.
    assert _fit_steps(out) == (2, 2)
    assert sorted(os.listdir(out / "fitted")) == ["config.json", "metadata.json",
                                                   "model.weights.h5", "notes.txt"]
    assert init_io.load_init(str(out / "fitted")).count_params() > 0


def test_unwritable_output_dir_fails_before_the_fit(tmp_path, fit_inputs):
    init, png = fit_inputs
    target = _unwritable(tmp_path)
    start = time.monotonic()
    result = _run(_fit_command(init, png, target, "--steps=2000"))
    assert result.returncode == 2, result.stderr[-2000:]
    assert f"--output_dir='{target}' cannot be created" in result.stderr
    assert "Fitting" not in result.stdout and "Traceback" not in result.stderr
    assert time.monotonic() - start < 120


def test_two_fits_into_one_folder_at_once_do_not_mix(tmp_path, fit_inputs):
    init, png = fit_inputs
    out = tmp_path / "out"
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    processes = [subprocess.Popen(_fit_command(init, png, out, f"--steps={steps}"),
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                  cwd=REPO, env=env) for steps in (150, 151)]
    results = [(p.wait(timeout=600), p.stdout.read(), p.stderr.read()) for p in processes]
    codes = sorted(code for code, _, _ in results)
    assert codes == [0, 2], [(c, e[-1500:]) for c, _, e in results]
    loser = next(err for code, _, err in results if code == 2)
    # Refused while the other runs (lock), or after it finished (a folder with files).
    assert ("is being written by another learnit command" in loser
            or "already holds" in loser), loser[-1500:]
    assert "Traceback" not in loser
    winner_steps = 150 if results[0][0] == 0 else 151
    assert _fit_steps(out) == (winner_steps, winner_steps)  # One fit's files, not a mix.
    assert [n for n in os.listdir(out) if n.startswith(".") and n != LOCK_FILE] == []

