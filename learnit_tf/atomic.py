"""Atomic file outputs: write a temporary file beside the target, then rename.

Every file learnit_tf writes (inits, CSV tables, plots, renders, zoo files) goes
through `atomic_save`, so an interrupted write never leaves a half-written file
under the final name.
"""

import os
import tempfile


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
