"""How the zoo reads bytes from elsewhere: bounded in size and in time, never kept unverified.

Every download (a remote index.json, an init's files) is bounded twice:
- **Size.** An init file is read up to the size its index records and one byte more:
  a server that sends more (with or without a Content-Length) is cut there and the
  bytes are dropped. A remote index is read up to 16 MiB.
- **Time.** A total deadline per download, not per read: a server that trickles a
  byte now and then is cut off when the deadline passes, as is one that goes silent
  (each socket read waits at most until the deadline). The deadline is 120 s plus
  one second per 256 KiB the file is expected to hold (a 100 MiB file: 520 s), or
  `$LEARNIT_TF_DOWNLOAD_DEADLINE` seconds when that is set.

A download streams into a hidden temporary `.<file>.<random>.part` beside its target,
is checked for size and sha256, then renamed into place; on any failure (cut off, too
large, wrong hash, Ctrl-C) the temporary is deleted, so nothing unverified is kept. A
`.part` left by a killed process is never read, and is deleted by the next download of
that file once no live download holds it (an OS lock marks live ones).
"""

import contextlib
import hashlib
import os
import re
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request

from absl import logging

from learnit_tf.zoo.errors import DownloadTimeoutError, IntegrityError, UnsafePathError, ZooError

try:
    import fcntl
except ImportError:  # Windows: stale .part files are recognised by age alone.
    fcntl = None

ENV_DEADLINE = "LEARNIT_TF_DOWNLOAD_DEADLINE"
CHUNK = 1 << 20
MAX_INDEX_BYTES = 16 << 20
PROGRESS_MIN_BYTES = 1 << 20
READ_TIMEOUT_SECONDS = 60  # The longest one socket read may wait (within the deadline).
BASE_DEADLINE_SECONDS = 120
MIN_BYTES_PER_SECOND = 256 << 10
FRESH_PART_SECONDS = 5
STALE_PART_SECONDS_WITHOUT_LOCKS = 3600


_URL_SCHEMES = ("http", "https", "file")


def gfile():
    """tf.io.gfile (TensorFlow is imported only when a gs:// or other gfile path is used)."""
    import tensorflow as tf  # pylint: disable=import-outside-toplevel
    return tf.io.gfile


def scheme(location):
    """URL scheme of `location` ('' for a local path)."""
    match = re.match(r"^([A-Za-z][A-Za-z0-9+.-]*)://", str(location))
    return match.group(1).lower() if match else ""


def is_url(location):
    return scheme(location) in _URL_SCHEMES


def is_local(location):
    return scheme(location) == ""


def join(base, *parts):
    """Joins path parts onto a local path, URL or gfile path."""
    if is_local(base):
        return os.path.join(base, *parts)
    if is_url(base):
        parts = [urllib.parse.quote(p) for p in parts]
    return "/".join([base.rstrip("/"), *parts])


def source_key(base):
    """A readable, collision-free cache sub-directory for a base URL (or index location)."""
    slug = re.sub(r"[^A-Za-z0-9]+", "_", base.split("://", 1)[-1]).strip("_")[:48]
    return f"{slug or 'zoo'}-{hashlib.sha256(base.encode()).hexdigest()[:10]}"


def check_inside(root, target, what):
    """Refuses `target` unless it resolves (symlinks included) inside `root`."""
    root_real = os.path.realpath(root)
    target_real = os.path.realpath(target)
    if os.path.commonpath([root_real, target_real]) != root_real:
        raise UnsafePathError(f"{what}: {target!r} resolves outside {root!r}; refusing it.")


def file_digest(path):
    """(size, sha256 hex) of a local file."""
    digest = hashlib.sha256()
    size = 0
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(CHUNK), b""):
            digest.update(chunk)
            size += len(chunk)
    return size, digest.hexdigest()


def gfile_digest(path):
    """(size, sha256 hex) of a file read through tf.io.gfile."""
    digest = hashlib.sha256()
    size = 0
    with gfile().GFile(path, "rb") as f:
        while True:
            chunk = f.read(CHUNK)
            if not chunk:
                break
            digest.update(chunk)
            size += len(chunk)
    return size, digest.hexdigest()


# Files `check_local_file` hashed and found matching in this process:
# (real path, expected size, expected sha256) -> the file's `_stat_signature` then.
_VERIFIED = {}
# Only a file last changed at least this long before it was hashed is remembered: any
# later change then gives it a newer ctime (which no user-space call sets back), even
# where the file system's clock ticks coarsely.
VERIFIED_MIN_AGE_NS = 2 * 10**9


def _stat_signature(st):
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


def check_local_file(path, expected):
    """None if the local file matches its index record, else the reason it does not.

    A file is hashed once per process: one that matched before is not hashed again while
    its device, inode, size, mtime and ctime are all unchanged (so e.g. `learnit-fit`,
    which reads an entry's metadata before loading its model, hashes each file once).
    Writing to it, replacing it or touching it changes those, and it is hashed again; a
    file changed within `VERIFIED_MIN_AGE_NS` of its hash is never remembered. As
    before, nothing guards the moment between this check and the read that follows it.
    """
    if not os.path.isfile(path):
        return f"{path!r} is missing"
    before = os.stat(path)
    key = (os.path.realpath(path), expected["size"], expected["sha256"])
    if _VERIFIED.get(key) == _stat_signature(before):
        return None
    _VERIFIED.pop(key, None)
    if before.st_size != expected["size"]:
        return mismatch(path, before.st_size, None, expected)
    started = time.time_ns()
    problem = mismatch(path, *file_digest(path), expected)
    if (problem is None and _stat_signature(os.stat(path)) == _stat_signature(before)
            and started - max(before.st_mtime_ns, before.st_ctime_ns) >= VERIFIED_MIN_AGE_NS):
        _VERIFIED[key] = _stat_signature(before)
    return problem


def mismatch(path, size, sha256, expected):
    """Describes how (size, sha256) differs from an index record, or returns None."""
    if size != expected["size"]:
        # Only the size is known to differ (cut off, edited or replaced): say just that.
        relation = "fewer" if size < expected["size"] else "more"
        return (f"{path!r} has the wrong size (size mismatch: expected {expected['size']} "
                f"bytes as the index records, got {size} bytes, "
                f"{abs(expected['size'] - size)} {relation})")
    if sha256 != expected["sha256"]:
        return (f"{path!r} has sha256 {sha256}, the index expects {expected['sha256']} "
                "(file tampered with or corrupted)")
    return None


def deadline_seconds(expected_size):
    """The total time a download of `expected_size` bytes may take (see the docstring)."""
    value = os.environ.get(ENV_DEADLINE)
    if value:
        try:
            seconds = float(value)
        except ValueError:
            seconds = float("nan")
        if not seconds > 0 or seconds == float("inf"):
            raise ValueError(f"${ENV_DEADLINE}={value!r}: expected a number of seconds > 0.")
        return seconds
    return BASE_DEADLINE_SECONDS + expected_size / MIN_BYTES_PER_SECOND


class _Deadline:
    """The time left for one download; raises DownloadTimeoutError once it is spent."""

    def __init__(self, url, seconds):
        self.url, self.seconds = url, seconds
        self.end = time.monotonic() + seconds

    def remaining(self):
        return self.end - time.monotonic()

    def check(self, received):
        if self.remaining() <= 0:
            self.fail(received)

    def fail(self, received, cause=None):
        raise DownloadTimeoutError(
            f"Could not download {self.url}: it did not finish within {self.seconds:g} s "
            f"(the total deadline of a download; {received} bytes arrived). Nothing was "
            f"kept. The server is too slow or stalled; set ${ENV_DEADLINE} to allow more "
            "time.") from cause


def _socket_of(stream):
    """The socket under an http(s) response (None for files, gfile streams)."""
    raw = getattr(getattr(stream, "fp", None), "raw", None)
    return getattr(raw, "_sock", None)  # http.client keeps it here (SocketIO._sock).


def open_stream(url, deadline=None):
    """Opens `url` (http/https/file, gs:// and other gfile schemes, or a local path)."""
    if is_url(url):
        timeout = READ_TIMEOUT_SECONDS
        if deadline is not None:
            timeout = max(0.001, min(timeout, deadline.remaining()))
        try:
            return urllib.request.urlopen(url, timeout=timeout)  # nosec: verified
        except urllib.error.HTTPError as e:
            raise ZooError(f"Could not download {url}: HTTP {e.code} {e.reason}.") from e
        except TimeoutError as e:
            if deadline is not None and deadline.remaining() <= 0:
                deadline.fail(0, e)
            raise ZooError(f"Could not download {url}: {e}.") from e
        except (urllib.error.URLError, OSError) as e:
            raise ZooError(f"Could not download {url}: {e}.") from e
    if is_local(url):
        if not os.path.isfile(url):
            raise ZooError(f"Could not read {url!r}: no such file.")
        return open(url, "rb")
    files = gfile()
    if not files.exists(url):
        raise ZooError(f"Could not read {url!r}: no such file.")
    return files.GFile(url, "rb")


def stream_chunks(src, limit, deadline):
    """Yields the chunks of `src`, at most `limit` + 1 bytes in all, within `deadline`.

    Reads with `read1` where the stream has it (one socket read, whatever has
    arrived), so a trickling server cannot hold a read open past the deadline; before
    each read the socket's timeout is cut to the time left.
    """
    read = getattr(src, "read1", None) or src.read
    sock = _socket_of(src)
    received = 0
    while received <= limit:
        remaining = deadline.remaining()
        if remaining <= 0:
            deadline.fail(received)
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.settimeout(max(0.001, min(READ_TIMEOUT_SECONDS, remaining)))
        try:
            chunk = read(min(CHUNK, limit + 1 - received))
        except (TimeoutError, OSError) as e:
            if deadline.remaining() <= 0 or isinstance(e, TimeoutError):
                deadline.fail(received, e)
            raise ZooError(f"Could not download {deadline.url}: {e}.") from e
        if not chunk:
            return
        received += len(chunk)
        yield chunk
        deadline.check(received)


def read_bytes(location, limit=MAX_INDEX_BYTES):
    """The bytes of a (small) file such as an index, refused beyond `limit` bytes."""
    deadline = _Deadline(location, deadline_seconds(limit))
    with open_stream(location, deadline) as src:
        data = b"".join(stream_chunks(src, limit, deadline))
    if len(data) > limit:
        raise ZooError(f"{location!r} is larger than {limit} bytes; refusing it as an "
                              "index (nothing more was read).")
    return data


def download(url, target, expected, progress=True):
    """Copies `url` to `target` through a temporary file, checking size and sha256.

    Reads at most one byte more than the index records (`expected["size"]`) and stops
    at the deadline (`deadline_seconds`); the temporary file is removed on any
    failure, so the cache never holds a bad or partial file.
    """
    directory = os.path.dirname(target)
    os.makedirs(directory, exist_ok=True)
    remove_stale_parts(target)
    cap = expected["size"]
    deadline = _Deadline(url, deadline_seconds(cap))
    fd, tmp = tempfile.mkstemp(prefix=f".{os.path.basename(target)}.", suffix=".part",
                               dir=directory)
    lock_part(fd)  # Marks the .part as live until this process closes it or dies.
    size, digest = 0, hashlib.sha256()
    bar = None
    try:
        with os.fdopen(fd, "wb") as out, open_stream(url, deadline) as src:
            length = getattr(src, "headers", None) and src.headers.get("Content-Length")
            if length is not None and length.isdigit() and int(length) != cap:
                raise IntegrityError(
                    f"Refusing {url}: size mismatch: expected {cap} bytes as the "
                    f"index records, the server sends {int(length)} bytes (Content-Length). "
                    "Nothing was cached.")
            if progress and cap >= PROGRESS_MIN_BYTES:
                import keras  # pylint: disable=import-outside-toplevel
                print(f"Downloading {url}")
                bar = keras.utils.Progbar(cap, unit_name="B")
            for chunk in stream_chunks(src, cap, deadline):
                size += len(chunk)
                if size > cap:
                    raise IntegrityError(
                        f"Refusing {url}: the server sends more than the {cap} bytes the "
                        "index records (cut off there, nothing more was read). Nothing was "
                        "cached.")
                digest.update(chunk)
                out.write(chunk)
                if bar is not None:
                    bar.update(size)
        problem = mismatch(url, size, digest.hexdigest(), expected)
        if problem:
            raise IntegrityError(f"Refusing download: {problem}. Nothing was cached.")
        os.replace(tmp, target)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise
    return target


def part_files(target):
    """The hidden `.part` files downloads of `target` create (live or left by a kill)."""
    directory, base = os.path.split(target)
    prefix = f".{base}."
    try:
        names = os.listdir(directory)
    except FileNotFoundError:
        return []
    return [os.path.join(directory, n) for n in names
            if n.startswith(prefix) and n.endswith(".part")]


def lock_part(fd):
    if fcntl is not None:
        with contextlib.suppress(OSError):  # A file system without locks: age decides.
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)


def part_is_live(path):
    """Whether a download still writes `path` (it holds the lock, or it is very recent)."""
    try:
        age = time.time() - os.path.getmtime(path)
    except FileNotFoundError:
        return False
    if age < FRESH_PART_SECONDS:  # Between another download's mkstemp and its flock.
        return True
    if fcntl is not None:
        try:
            with open(path, "rb") as f:
                fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            return False  # Nobody holds it: its download was killed.
        except BlockingIOError:
            return True
        except FileNotFoundError:
            return False
        except OSError:
            pass  # No locks on this file system.
    # No locks to ask: only an hour without a write marks it dead.
    return age < STALE_PART_SECONDS_WITHOUT_LOCKS


def remove_stale_parts(target):
    """Deletes the `.part` files of `target` that no live download holds; returns them.

    A killed download leaves its `.part`; it is never read (every download streams
    into a new one and verifies it), and this removes it the next time that file is
    downloaded.
    """
    removed = []
    for path in part_files(target):
        if not part_is_live(path):
            with contextlib.suppress(FileNotFoundError):
                os.remove(path)
                removed.append(path)
    if removed:
        logging.info("Removed %d stale partial download(s) of %s.", len(removed), target)
    return removed

