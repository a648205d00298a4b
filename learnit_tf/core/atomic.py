"""The one atomic writer: write a temporary file beside the target, then rename.

Every file learnit_tf writes (inits, CSV tables, plots, renders, zoo files) goes
through `atomic_save` or one of the writers built on it (`write_bytes`, `write_text`,
`write_json`, `write_csv`, `save_npy`, `save_figure`; all take the destination path
first), so an interrupted write never leaves a half-written file under the final
name. Local files only (object stores such as gs:// have no rename; see
`learnit_tf.training` for its logs there).

>>> import os, tempfile
>>> path = os.path.join(tempfile.mkdtemp(), "table.csv")
>>> _ = write_csv(path, [{"step": 0, "psnr": 12.5}, {"step": 2, "psnr": 20.25}])
>>> print(open(path).read(), end="")
step,psnr
0,12.5
2,20.25
"""

import csv
import json
import os
import tempfile

import numpy as np


def atomic_save(path, save_fn, suffix=""):
    """Calls `save_fn(temporary_path)`, then renames the result to `path`.

    Args:
        path: destination file; its directory is created if needed.
        save_fn: callable writing the whole file to the path it is given.
        suffix: suffix of the temporary file (some writers infer the format from it).

    Returns:
        `path`.
    """
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=suffix, dir=directory)
    os.close(fd)
    try:
        save_fn(tmp)
        os.chmod(tmp, 0o644)  # mkstemp creates 0600; outputs are meant to be shared.
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise
    return path


def current_umask():
    """The process umask (read by setting it and putting it back at once)."""
    umask = os.umask(0)
    os.umask(umask)
    return umask


def share_directory(path):
    """Gives a directory made by `tempfile.mkdtemp` (mode 0700) the usual mode for outputs.

    Outputs renamed into place from a temporary directory (an exported or fitted
    `init/`, `fitted/`) should look like `os.makedirs` had made them: 0777 minus the
    umask (0755 with the usual 022), so other users and tools can read them.

    Returns:
        `path`.
    """
    os.chmod(path, 0o777 & ~current_umask())
    return path


def _json_default(value):
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (np.floating,)):
        return float(value)
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


def write_bytes(path, data):
    """Writes `data` (bytes) to `path`, atomically. Returns `path`."""
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise TypeError(f"write_bytes({path!r}): expected bytes, got {type(data).__name__}.")

    def save(tmp):
        with open(tmp, "wb") as f:
            f.write(data)
    return atomic_save(path, save)


def write_text(path, text, encoding="utf-8"):
    """Writes the string `text` to `path`, atomically. Returns `path`."""
    if not isinstance(text, str):
        raise TypeError(f"write_text({path!r}): expected str, got {type(text).__name__}.")
    return write_bytes(path, text.encode(encoding))


def write_json(path, data):
    """Writes `data` as JSON (indented, sorted keys, trailing newline; numpy scalars and
    arrays allowed) to `path`, atomically. Returns `path`."""
    def save(tmp):
        with open(tmp, "w") as f:
            json.dump(data, f, indent=2, sort_keys=True, default=_json_default)
            f.write("\n")
    return atomic_save(path, save, ".json")


#: The name `locks`, `metadata` and older callers use.
write_json_atomic = write_json


def write_csv(path, rows, columns=None):
    """Writes rows (dicts) as CSV to `path`, atomically. Returns `path`.

    Args:
        path: destination file.
        rows: list of dicts.
        columns: column order (default: the keys of the first row); keys not listed
            are left out, listed keys a row lacks are written empty.
    """
    rows = list(rows)
    if columns is None:
        if not rows:
            raise ValueError(f"No rows to write to {path!r} and no columns given.")
        columns = list(rows[0])

    def save(tmp):
        with open(tmp, "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=list(columns), extrasaction="ignore")
            writer.writeheader()
            writer.writerows(rows)
    return atomic_save(path, save, ".csv")


def save_npy(path, array):
    """Saves `array` as .npy at `path`, atomically. Returns `path`."""
    return atomic_save(path, lambda tmp: np.save(tmp, np.asarray(array)), ".npy")


def save_figure(path, fig, dpi=100, close=True):
    """Saves a matplotlib figure as PNG at `path`, atomically (and closes it). Returns `path`.

    Args:
        path: destination .png.
        fig: a `matplotlib.figure.Figure`.
        dpi: resolution.
        close: close the figure afterwards (frees its memory; pyplot keeps figures).
    """
    try:
        return atomic_save(path, lambda tmp: fig.savefig(tmp, dpi=dpi, bbox_inches="tight",
                                                         format="png"), ".png")
    finally:
        if close:
            import matplotlib.pyplot as plt  # pylint: disable=import-outside-toplevel
            plt.close(fig)
