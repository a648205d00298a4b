"""Atomic file outputs: write a temporary file beside the target, then rename.

Every file learnit_tf writes (inits, CSV tables, plots, renders, zoo files) goes
through `atomic_save`, so an interrupted write never leaves a half-written file
under the final name.
"""

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


def write_json_atomic(path, data):
    """Writes `data` as JSON (numpy scalars and arrays allowed) to `path`, atomically."""
    def save(tmp):
        with open(tmp, "w") as f:
            json.dump(data, f, indent=2, sort_keys=True, default=_json_default)
            f.write("\n")
    return atomic_save(path, save, ".json")
