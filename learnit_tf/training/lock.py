"""One run per `model_dir`: `ModelDirLock`, a lock file naming its holder.

The lock (`meta_train.lock`: pid, host, start time, command) is taken before the data
is read, so a second concurrent run fails at once with `ModelDirLockedError`; a lock
left by a process that is gone (same host, dead pid) is taken over.
"""

import datetime
import json
import os
import socket
import sys
import uuid

import tensorflow as tf

from learnit_tf.training.distribute import is_remote_path
from learnit_tf.training.errors import ModelDirLockedError

LOCK_FILE = "meta_train.lock"

_HELD_LOCKS = set()  # Lock files held by this process.


def _pid_alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # Another user's live process.
        return True
    return True


def read_json_record(path):
    """A JSON object file (a lock's record, warm_start.json): None if absent, {} if
    unreadable (a lock held by an unknown run)."""
    try:
        with tf.io.gfile.GFile(path) as f:
            record = json.loads(f.read())
    except (tf.errors.NotFoundError, FileNotFoundError):
        return None
    except (ValueError, tf.errors.OpError):
        return {}
    return record if isinstance(record, dict) else {}


class ModelDirLock:
    """An exclusive lock file in a model directory, naming its holder (pid, host, start).

    Local directories use an atomic hard link of a complete file, so two runs cannot
    both take the lock; on object stores (gs://) the check and the write are separate
    (best effort). A lock whose holder ran on this host and whose pid is gone is stale
    and taken over; a lock from another host is refused (its liveness cannot be
    checked) with the path to delete if that run is known to be gone.
    """

    def __init__(self, directory):
        self.path = os.path.join(directory, LOCK_FILE)
        self.record = {"pid": os.getpid(), "host": socket.gethostname(),
                       "started": datetime.datetime.now(datetime.timezone.utc).isoformat(
                           timespec="seconds"),
                       "command": " ".join(sys.argv), "token": uuid.uuid4().hex}

    def _holder(self):
        """The lock's record; None if there is no lock, {} if it cannot be read."""
        return read_json_record(self.path)

    def _is_stale(self, holder):
        if not isinstance(holder.get("pid"), int) or holder.get("host") != socket.gethostname():
            return False
        if holder["pid"] == os.getpid():
            return self.path not in _HELD_LOCKS  # Our pid, but not our lock: a reused pid.
        return not _pid_alive(holder["pid"])

    def _try_create(self):
        text = json.dumps(self.record)
        if is_remote_path(self.path):
            if tf.io.gfile.exists(self.path):
                return False
            with tf.io.gfile.GFile(self.path, "w") as f:
                f.write(text)
            return True
        tmp = f"{self.path}.{self.record['token']}.tmp"
        with open(tmp, "w") as f:
            f.write(text)
        try:
            os.link(tmp, self.path)  # Atomic, and the lock is complete once visible.
            return True
        except FileExistsError:
            return False
        except OSError:  # A file system without hard links: exclusive create instead.
            try:
                fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                return False
            with os.fdopen(fd, "w") as f:
                f.write(text)
            return True
        finally:
            os.remove(tmp)

    def _remove_stale(self, holder):
        """Removes the lock if it is still `holder`'s (of two runs taking over, one wins)."""
        moved = f"{self.path}.stale-{self.record['token']}"
        try:
            tf.io.gfile.rename(self.path, moved)
        except (tf.errors.NotFoundError, FileNotFoundError):
            return
        if read_json_record(moved) != holder:  # Another run took the lock meanwhile: undo.
            try:
                tf.io.gfile.rename(moved, self.path, overwrite=False)
                return
            except (tf.errors.AlreadyExistsError, FileExistsError):
                pass
        tf.io.gfile.remove(moved)

    def acquire(self):
        for _ in range(3):
            if self._try_create():
                _HELD_LOCKS.add(self.path)
                return self
            holder = self._holder()
            if holder is None:
                continue  # Released meanwhile: try again.
            if not self._is_stale(holder):
                raise ModelDirLockedError(
                    f"{os.path.dirname(self.path)} is in use by another meta_train run (pid "
                    f"{holder.get('pid', '?')} on host {holder.get('host', '?')}, started "
                    f"{holder.get('started', '?')}). Wait for it to finish or use another "
                    f"model_dir; if that run is gone, delete {self.path}.")
            print(f"Taking over the stale lock of pid {holder['pid']} on {holder['host']} "
                  f"(no such process): {self.path}")
            self._remove_stale(holder)
        raise ModelDirLockedError(f"Could not take the lock {self.path} (contended).")

    def release(self):
        _HELD_LOCKS.discard(self.path)
        holder = self._holder()
        if holder and holder.get("token") == self.record["token"]:
            tf.io.gfile.remove(self.path)

    def __enter__(self):
        return self.acquire()

    def __exit__(self, *exc):
        self.release()
        return False
