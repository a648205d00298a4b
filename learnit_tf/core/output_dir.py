"""The output folder of a command (`--output_dir`): checked first, locked, never silently replaced.

Every command that writes an `--output_dir` (learnit-fit, learnit-evaluate,
learnit-cross-class, learnit-render, learnit-convert) goes through `OutputDir`:

- **Checked before any work.** A path that is a file, lies inside a file, or cannot be
  created or written (permissions, a read-only file system) is refused at once with a
  message naming it, not after a long run.
- **Never silently replaced.** A folder that already holds anything is refused unless
  the user passes `--overwrite`. With `--overwrite` only the files the command writes
  are replaced (each by an atomic rename); every other file in the folder, or in a
  sub-folder such as `fitted/`, is left as it is. Outputs of an earlier run of the same
  command that this run does not write again (`owned`, e.g. a PSNR plot a fit without
  PSNR does not draw) are removed, so the folder never mixes two runs.
- **Locked.** One command at a time per folder: an OS lock on `.learnit-output.lock`
  inside it (released when the process ends, even when killed). A second command on
  the same folder is refused at once with `OutputDirLockedError`.
- **All or nothing.** Outputs are written into a hidden staging folder inside the
  output folder and moved into place only when all of them were written; a failing
  run leaves the folder as it was (and removes it again if the run created it).

Example:

>>> import os, tempfile
>>> out = OutputDir(os.path.join(tempfile.mkdtemp(), "run"))
>>> with out.open():
...     staging = out.staging()
...     with open(os.path.join(staging, "table.csv"), "w") as f:
...         _ = f.write("a,b\\n")
...     out.commit(staging)
['table.csv']
>>> OutputDir(out.path).open()
Traceback (most recent call last):
...
learnit_tf.core.output_dir.OutputDirExistsError: --output_dir=... already holds table.csv; \
pass --overwrite to replace the files this command writes (other files are kept), or \
choose another folder.
"""

import fnmatch
import os
import shutil
import tempfile

import filelock

LOCK_FILE = ".learnit-output.lock"
_STAGING_PREFIX = ".learnit-staging-"
_SHOWN = 5


class OutputDirError(ValueError):
    """An --output_dir a command cannot write (the message names it and why)."""


class OutputDirExistsError(OutputDirError, FileExistsError):
    """A non-empty --output_dir given without --overwrite."""


class OutputDirLockedError(OutputDirError):
    """An --output_dir another command is writing at this moment."""


class OutputDirNotWritableError(OutputDirError, PermissionError):
    """An --output_dir that cannot be created or written."""


def define_overwrite_flag():
    """Defines the `--overwrite` flag of the commands writing an --output_dir (once)."""
    from absl import flags  # pylint: disable=import-outside-toplevel
    if "overwrite" not in flags.FLAGS:
        flags.DEFINE_bool(
            "overwrite", False,
            "Write into an --output_dir that already holds files: replace the files this "
            "command writes (each atomically); any other file there is kept.")


class OutputDir:
    """The output folder of one command run (see the module docstring).

    Args:
        path: the folder (created if needed).
        overwrite: allow a non-empty folder (replace only the command's own files).
        flag: how the folder is named in messages.
        owned: file names or globs (relative paths) the command writes; with
            `overwrite`, those of an earlier run that this run does not write are removed.
    """

    def __init__(self, path, overwrite=False, flag="--output_dir", owned=()):
        if not path:
            raise OutputDirError(f"{flag} is empty; expected a folder for the outputs.")
        self.given = os.fspath(path)
        self.path = os.path.abspath(os.path.expanduser(self.given))
        self.overwrite = bool(overwrite)
        self.flag = flag
        self.owned = tuple(owned)
        self._lock = None
        self._created = False
        self._committed = False

    def _name(self):
        return f"{self.flag}={self.given!r}"

    # -- open / close -----------------------------------------------------------------

    def open(self):
        """Checks, creates and locks the folder; returns self (a context manager).

        Raises:
            OutputDirError (OutputDirExistsError, OutputDirLockedError,
            OutputDirNotWritableError) naming the folder.
        """
        ancestor = self.path
        while not os.path.lexists(ancestor):
            ancestor = os.path.dirname(ancestor)
        if not os.path.isdir(ancestor):
            if ancestor == self.path:
                raise OutputDirError(f"{self._name()} exists and is not a directory; give a "
                                     "folder for the outputs.")
            raise OutputDirError(f"{self._name()} is inside {ancestor!r}, not a directory.")
        self._created = ancestor != self.path
        try:
            os.makedirs(self.path, exist_ok=True)
        except OSError as e:
            raise OutputDirNotWritableError(
                f"{self._name()} cannot be created ({e.strerror or e}); choose a folder you "
                "can write. Nothing was run.") from e
        try:
            self._lock_and_check()
        except BaseException:
            self._release(remove_created=True)
            raise
        return self

    def _lock_and_check(self):
        lock = filelock.FileLock(os.path.join(self.path, LOCK_FILE), timeout=0)
        try:
            lock.acquire()
        except filelock.Timeout as e:
            raise OutputDirLockedError(
                f"{self._name()} is being written by another learnit command right now (it "
                f"holds {os.path.join(self.path, LOCK_FILE)}); wait for it to finish or "
                "choose another folder.") from e
        except OSError as e:
            raise OutputDirNotWritableError(
                f"{self._name()} is not writable ({e.strerror or e}); choose a folder you "
                "can write. Nothing was run.") from e
        self._lock = lock
        try:  # Permissions can allow the lock file (an existing one) but not new files.
            fd, probe = tempfile.mkstemp(prefix=_STAGING_PREFIX, dir=self.path)
            os.close(fd)
            os.remove(probe)
        except OSError as e:
            raise OutputDirNotWritableError(
                f"{self._name()} is not writable ({e.strerror or e}); choose a folder you "
                "can write. Nothing was run.") from e
        self._remove_dead_staging()  # We hold the lock: any staging folder is a dead run's.
        present = sorted(n for n in os.listdir(self.path) if n != LOCK_FILE)
        if present and not self.overwrite:
            shown = ", ".join(present[:_SHOWN]) + (
                f" and {len(present) - _SHOWN} more" if len(present) > _SHOWN else "")
            raise OutputDirExistsError(
                f"{self._name()} already holds {shown}; pass --overwrite to replace the files "
                "this command writes (other files are kept), or choose another folder.")

    def _remove_dead_staging(self):
        for name in os.listdir(self.path):
            if name.startswith(_STAGING_PREFIX):
                path = os.path.join(self.path, name)
                if os.path.isdir(path) and not os.path.islink(path):
                    shutil.rmtree(path, ignore_errors=True)
                else:
                    os.remove(path)

    def close(self):
        """Releases the lock; a folder this run created and never wrote to is removed."""
        self._release(remove_created=not self._committed)

    def _release(self, remove_created):
        if self._lock is not None and os.path.isdir(self.path):
            self._remove_dead_staging()
        if remove_created and self._created and os.path.isdir(self.path):
            if sorted(os.listdir(self.path)) in ([], [LOCK_FILE]):
                lock_path = os.path.join(self.path, LOCK_FILE)
                if os.path.exists(lock_path):
                    os.remove(lock_path)
                os.rmdir(self.path)
        if self._lock is not None:
            self._lock.release()
            self._lock = None

    def __enter__(self):
        if self._lock is None:
            self.open()
        return self

    def __exit__(self, *exc_info):
        self.close()
        return False

    # -- writing ----------------------------------------------------------------------

    def staging(self):
        """A new hidden folder inside the output folder to write the outputs into."""
        if self._lock is None:
            raise RuntimeError("OutputDir.staging() before open().")
        return tempfile.mkdtemp(prefix=_STAGING_PREFIX, dir=self.path)

    def commit(self, staging):
        """Moves every file under `staging` to the same relative path in the folder.

        Each file replaces its namesake by an atomic rename; folders are created as
        needed, and nothing else in the output folder is touched, except the `owned`
        outputs of an earlier run that this run did not write (removed). Returns the
        sorted top-level names written.
        """
        if self._lock is None:
            raise RuntimeError("OutputDir.commit() before open().")
        umask = os.umask(0)
        os.umask(umask)
        written = []
        for directory, dirs, names in os.walk(staging):
            dirs.sort()
            relative = os.path.relpath(directory, staging)
            target_dir = self.path if relative == "." else os.path.join(self.path, relative)
            if os.path.lexists(target_dir) and not os.path.isdir(target_dir):
                raise OutputDirError(f"{self._name()}: {target_dir!r} is a file where this "
                                     "command writes a folder; move it away or choose another "
                                     "folder.")
            os.makedirs(target_dir, mode=0o777 & ~umask, exist_ok=True)
            for name in sorted(names):
                target = os.path.join(target_dir, name)
                if os.path.isdir(target) and not os.path.islink(target):
                    raise OutputDirError(f"{self._name()}: {target!r} is a folder where this "
                                         "command writes a file; move it away or choose "
                                         "another folder.")
                os.replace(os.path.join(directory, name), target)
                written.append(os.path.normpath(os.path.join(relative, name)))
        self._committed = True
        if self.overwrite:
            self._remove_stale_owned(set(written))
        if os.path.abspath(staging).startswith(self.path + os.sep):
            shutil.rmtree(staging, ignore_errors=True)
        return sorted({w.split(os.sep)[0] for w in written})

    def _remove_stale_owned(self, written):
        for directory, _, names in os.walk(self.path):
            relative_dir = os.path.relpath(directory, self.path)
            if relative_dir.split(os.sep)[0].startswith(_STAGING_PREFIX):
                continue
            for name in names:
                relative = os.path.normpath(os.path.join(relative_dir, name))
                if relative in written or relative == LOCK_FILE:
                    continue
                if any(fnmatch.fnmatchcase(relative, glob) for glob in self.owned):
                    os.remove(os.path.join(directory, name))
