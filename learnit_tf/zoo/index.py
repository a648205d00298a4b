"""The zoo index (`index.json`): its schema, where it is, and how it is read and replaced.

    {"format_version": 1,
     "base_url": null,                      # where remote files live (optional)
     "entries": {"<name>": {"description": "...", "latest": "<version>",
                            "versions": {"<version>": {
                                "path": "<name>/<version>/",
                                "files": {"config.json": {"size": ..., "sha256": ...}, ...},
                                "headline": {...},           # learnit_tf.zoo.headline
                                "published": "2025-01-01T00:00:00Z"}}}}}

A local index is changed only by a read-merge-replace under its lock
(`locked_for_update`, learnit_tf.locks): the index is re-read under the lock, the new
version merged in, and the result written to a temporary name and renamed over the old
one, so of concurrent publishers none loses an entry. gs:// has no lock: the index is
re-read just before it is replaced (publish to one gs:// zoo from one process at a time).
"""

import contextlib
import datetime
import json
import os
import uuid

from learnit_tf.core import locks
from learnit_tf.core.atomic import atomic_save
from learnit_tf.zoo import transport
from learnit_tf.core import shipped
from learnit_tf.zoo.errors import IndexFormatError
from learnit_tf.zoo.names import NAME_RE, SHA256_RE, version_key

# Mirrors learnit_tf.meta.init_io (not imported here, to keep listing a zoo free of
# TensorFlow; tests assert the two stay equal).
CONFIG_FILE = "config.json"
METADATA_FILE = "metadata.json"
WEIGHTS_FILE = "model.weights.h5"
ALLOWED_FILES = (CONFIG_FILE, METADATA_FILE, WEIGHTS_FILE)
REQUIRED_FILES = (CONFIG_FILE, WEIGHTS_FILE)

INDEX_FILE = "index.json"
INDEX_FORMAT_VERSION = 1
ENV_INDEX = "LEARNIT_TF_ZOO_INDEX"
ENV_CACHE = "LEARNIT_TF_CACHE"
DEFAULT_CACHE_DIR = os.path.join("~", ".cache", "learnit_tf")
SHIPPED_ZOO_DIR = shipped.shipped_dir("zoo")


def utc_now():
    """The current UTC time as the index records it ("2025-01-01T00:00:00Z")."""
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def empty_index(base_url=None):
    """A new, empty index dict.

    >>> validate_index(empty_index(), "new")["entries"]
    {}
    """
    return {"format_version": INDEX_FORMAT_VERSION, "base_url": base_url, "entries": {}}


def validate_index(data, where):
    """Checks the structure of a parsed index and returns it (IndexFormatError names
    `where` and the first problem)."""
    def fail(msg):
        raise IndexFormatError(f"Zoo index {where}: {msg}")

    if not isinstance(data, dict):
        fail("must be a JSON object.")
    version = data.get("format_version")
    if not isinstance(version, int) or isinstance(version, bool):
        fail(f"'format_version' must be an integer, got {version!r}.")
    if version > INDEX_FORMAT_VERSION:
        fail(f"format_version {version} is newer than this learnit_tf understands "
             f"({INDEX_FORMAT_VERSION}); upgrade learnit_tf.")
    if data.get("base_url") is not None and not isinstance(data["base_url"], str):
        fail("'base_url' must be a string or null.")
    entries = data.get("entries")
    if not isinstance(entries, dict):
        fail("'entries' must be an object mapping names to entries.")
    for name, entry in entries.items():
        if not isinstance(name, str) or not NAME_RE.match(name):
            fail(f"entry name {name!r} is not a valid zoo name.")
        versions = entry.get("versions") if isinstance(entry, dict) else None
        if not isinstance(versions, dict) or not versions:
            fail(f"entry {name!r} must have a non-empty 'versions' object.")
        if entry.get("latest") is not None and entry["latest"] not in versions:
            fail(f"entry {name!r}: 'latest' {entry['latest']!r} is not one of its versions "
                 f"{sorted(versions, key=version_key)}.")
        for ver, info in versions.items():
            _validate_version(f"entry {name!r} version {ver!r}", ver, info, fail)
    return data


def _validate_version(what, ver, info, fail):
    if not isinstance(ver, str) or not NAME_RE.match(ver):
        fail(f"{what}: invalid version string.")
    if not isinstance(info, dict) or not isinstance(info.get("path"), str):
        fail(f"{what} must be an object with a string 'path'.")
    if info.get("base_url") is not None and not isinstance(info["base_url"], str):
        fail(f"{what}: 'base_url' must be a string or null.")
    if info.get("headline") is not None and not isinstance(info["headline"], dict):
        fail(f"{what}: 'headline' must be an object.")
    files = info.get("files")
    if not isinstance(files, dict) or not files:
        fail(f"{what} must list its 'files'.")
    for filename, record in files.items():
        if not isinstance(record, dict):
            fail(f"{what}: file {filename!r} must be an object with size and sha256.")
        size, sha = record.get("size"), record.get("sha256")
        if not isinstance(size, int) or isinstance(size, bool) or size < 0:
            fail(f"{what}: file {filename!r} needs a non-negative integer 'size'.")
        if not isinstance(sha, str) or not SHA256_RE.match(sha):
            fail(f"{what}: file {filename!r} needs a lowercase hex 'sha256' "
                 "of 64 characters.")


def parse_index(raw, where):
    """The validated index held by the bytes `raw` (read from `where`)."""
    try:
        data = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise IndexFormatError(f"Zoo index {where}: not valid JSON ({e}).") from e
    return validate_index(data, where)


def resolve_cache_dir(cache_dir):
    """The cache directory: `cache_dir`, else `$LEARNIT_TF_CACHE`, else ~/.cache/learnit_tf."""
    return os.path.abspath(os.path.expanduser(
        cache_dir or os.environ.get(ENV_CACHE) or DEFAULT_CACHE_DIR))


def resolve_index_location(index):
    """Where the index is: `index`, else `$LEARNIT_TF_ZOO_INDEX`, else the shipped zoo's
    (a directory, local or gs://, stands for the index.json inside it)."""
    location = index or os.environ.get(ENV_INDEX) or os.path.join(SHIPPED_ZOO_DIR, INDEX_FILE)
    location = str(location)
    if transport.is_local(location):
        location = os.path.abspath(os.path.expanduser(location))
        if os.path.isdir(location):
            location = os.path.join(location, INDEX_FILE)
    elif location.endswith("/"):
        location += INDEX_FILE
    elif not transport.is_url(location) and not location.endswith(".json"):
        if transport.gfile().isdir(location):
            location = transport.join(location, INDEX_FILE)
    return location


def write_bytes_atomic(path, data):
    """Writes `data` to the local file `path` through a temporary file and rename."""
    def save(tmp):
        with open(tmp, "wb") as f:
            f.write(data)
    return atomic_save(path, save)


def read_index_file(index_path):
    """The validated index at `index_path` (local or gfile); an empty one if none yet."""
    files = transport.gfile()
    if not files.exists(index_path):
        return empty_index()
    with files.GFile(index_path, "rb") as f:
        return parse_index(f.read(), index_path)


def replace_index_file(index_path, index):
    """Writes the index to a temporary name, then renames it over the old one."""
    files = transport.gfile()
    tmp = f"{index_path}.tmp-{uuid.uuid4().hex}"
    data = json.dumps(index, indent=2, sort_keys=True) + "\n"
    try:
        with files.GFile(tmp, "w") as f:
            f.write(data)
        files.rename(tmp, index_path, overwrite=True)
    except BaseException:
        if files.exists(tmp):
            files.remove(tmp)
        raise


def locked_for_update(index_path, timeout_seconds):
    """The lock a read-merge-replace of a local index holds (nothing for gs://)."""
    if transport.is_local(index_path):
        return locks.locked(index_path, timeout_seconds, what=f"zoo index {index_path}")
    return contextlib.nullcontext()
