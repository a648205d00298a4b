"""Locks for the files several learnit_tf processes may change at once.

A shared file (a zoo's index.json, a cache pin, an init's metadata.json) is changed
by a locked read-merge-replace: take the lock, read the file as it is now, apply the
change to that, write it to a temporary name and rename it over the old one, release.
Two processes changing one file therefore both see their change kept, where a plain
read-change-write lets the later writer erase the earlier one's change.

The lock is a `filelock.FileLock` on a hidden sibling file (`.<name>.lock`, an OS
lock, released when the process exits or is killed, so a crash never leaves a stale
lock). The lock file itself is left in place: deleting it while another process waits
on it would let two processes both believe they hold it. Locks work on local file
systems only; for gs:// see the callers' documented limits.
"""

import contextlib
import json
import os

import filelock

from learnit_tf.core.atomic import write_json_atomic

DEFAULT_TIMEOUT_SECONDS = 600


class SharedFileBusyError(RuntimeError):
    """A shared file stayed locked by another process for longer than the timeout."""


def lock_path(path):
    """The lock file guarding `path`: `.<name>.lock` in the same directory."""
    directory, name = os.path.split(os.path.abspath(path))
    return os.path.join(directory, f".{name}.lock")


@contextlib.contextmanager
def locked(path, timeout=DEFAULT_TIMEOUT_SECONDS, what=None):
    """Holds the lock of the shared file `path` (waits up to `timeout` seconds for it).

    Raises:
        SharedFileBusyError naming `path` (or `what`) and the lock file when another
        process held the lock for the whole timeout.
    """
    lock_file = lock_path(path)
    os.makedirs(os.path.dirname(lock_file), exist_ok=True)
    lock = filelock.FileLock(lock_file, timeout=timeout)
    try:
        lock.acquire()
    except filelock.Timeout as e:
        raise SharedFileBusyError(
            f"{what or repr(path)} is being changed by another process (it held {lock_file} "
            f"for more than {timeout:g} s); try again once it is done.") from e
    try:
        yield lock_file
    finally:
        lock.release()


def update_json(path, change, default=None, timeout=DEFAULT_TIMEOUT_SECONDS, read=None):
    """Locked read-merge-replace of a JSON file; returns what was written.

    Args:
        path: the shared JSON file (local).
        change: callable(current data) -> new data; it may also raise to refuse the
            change (nothing is written then). It runs while the lock is held, on the
            file as it is at that moment, so it must merge rather than overwrite.
        default: the data when the file does not exist yet (a fresh copy is passed).
        timeout: seconds to wait for another process's change.
        read: callable(path) -> data, to parse and validate (default: `json.load`).
    """
    with locked(path, timeout):
        if os.path.exists(path):
            if read is not None:
                current = read(path)
            else:
                with open(path, encoding="utf-8") as f:
                    current = json.load(f)
        else:
            current = json.loads(json.dumps(default))
        new = change(current)
        write_json_atomic(path, new)
        return new
