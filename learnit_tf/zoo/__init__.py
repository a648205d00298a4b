"""The learnit_tf model zoo: named, versioned, hash-verified meta-learned inits.

A zoo is a directory (local, `gs://…` or served over http(s)) holding an
`index.json` and one init directory per published version
(`<name>/<version>/{config.json, metadata.json, model.weights.h5}`, see
`learnit_tf.init_io`). The index records the size and sha256 of every file, in the
spirit of TFDS `checksums.tsv`, so nothing is ever loaded unverified:

    {"format_version": 1,
     "base_url": null,                      # where remote files live (optional)
     "entries": {
       "text_siren": {
         "description": "SIREN init meta-learned on rendered text images",
         "latest": "1",
         "versions": {
           "1": {"path": "text_siren/1/",
                 "files": {"config.json": {"size": 512, "sha256": "…"}, …},
                 "headline": {"signal_class": "text", "meta_psnr_at_2": 24.1, …},
                 "published": "2025-01-01T00:00:00Z"}}}}}

Where the files of a version come from:
1. the index's own directory, when the index is a local file and
   `<index dir>/<path>` exists (the entries shipped in the repo's `zoo/` load
   offline, verified in place);
2. otherwise a base URL — the `base_url` argument, else the version's own
   `base_url`, else the index's `base_url`, else the directory of a remote index —
   downloaded into the cache (`cache_dir` argument, else `$LEARNIT_TF_CACHE`, else
   `~/.cache/learnit_tf`). Every download goes to a hidden temporary name
   (`.<file>.<random>.part`), is checked for size and sha256, then renamed into
   place; a bad file is deleted and refused. A `.part` file left by a killed download
   is never read: the next download of that file deletes it (once no live download
   holds it). Cache hits are re-verified on every use and never re-downloaded.
   A download is cut off at the size the index records (plus one byte) and at a
   total deadline (a trickling or silent server cannot hold it open): see
   `learnit_tf.zoo_transport`.

Published versions are immutable, and the cache holds them to that (pins):
- The first time a file of `name@version` is verified in the cache, its size and
  sha256 are recorded in a pin, `<cache>/zoo/pins/<index key>/<name>/<version>.json`
  (one per index, so two zoos may both have a `tiny@1`).
- Every later use checks the index against the pin before anything is read or
  written: an index that now lists another sha256 (or size) for a pinned file — a
  server that replaced a published version, even with a matching new hash — is
  refused with `PinnedVersionChangedError`, naming the entry, version, file, pinned
  and new hash. Nothing is downloaded, deleted or replaced: the good cached copy
  stays, and keeps loading once the index is restored. To accept the replacement
  deliberately, delete the pin file and the cached version directory the error names.
- A cached file that fails verification while the index still agrees with its pin
  is damaged: it is deleted and fetched again, and the new bytes must match the
  pinned hash. A cached file with no pin that fails verification (e.g. from an
  older learnit_tf, so whether it was damaged or the zoo changed is unknown) is
  kept and refused (`IntegrityError` naming the directory to delete).
- Cached and in-place files must be regular files inside their version directory:
  a symlink resolving outside it is refused (`UnsafePathError`).

The index is the repo's `zoo/index.json` unless the `index` argument or
`$LEARNIT_TF_ZOO_INDEX` names another one (a local path, a directory, an
http(s) URL or a `gs://` path), so a published zoo is one environment variable away.
Loading never executes code from the zoo: the index and configs are JSON, the
model class must be one of `learnit_tf.models.MODEL_CLASSES`, weights are HDF5;
no pickle, no gin.

Example:

>>> from learnit_tf import zoo
>>> names = [row["name"] for row in zoo.list()]        # what is shipped / published
>>> # model = zoo.load("text_siren")                   # built Keras model + weights
>>> # model = zoo.load("text_siren@1", cache_dir="/tmp/zoo-cache")
>>> # model = zoo.load("runs/text/init")               # any local init directory

TensorFlow and Keras are imported lazily, so listing a zoo is fast.
"""

import contextlib
import datetime
import hashlib
import json
import os
import re
import shutil
import urllib.parse
import uuid

from absl import logging

from learnit_tf import metadata as init_metadata
from learnit_tf.headline import finite_number as _number
from learnit_tf.headline import headline_from_metadata as protocol_headline
from learnit_tf import locks, shipped, zoo_transport
from learnit_tf.atomic import atomic_save
from learnit_tf.zoo_names import split_name, version_key  # noqa: F401  (public names of learnit_tf.zoo)
from learnit_tf.zoo_errors import (  # noqa: F401  (public names of learnit_tf.zoo)
    ZooError, UnknownEntryError, IntegrityError, UnsafePathError,
    IndexFormatError, VersionExistsError, DownloadTimeoutError,
    PinnedVersionChangedError, NonFiniteWeightsError)

# Mirrors learnit_tf.init_io (not imported here, to keep `list` free of TensorFlow;
# tests assert the two stay equal).
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

_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")
_SHA256_RE = re.compile(r"^[0-9a-f]{64}$")
_CHUNK = 1 << 20
PINS_DIR = "pins"
_List = list  # this module defines a public `list()`; keep the builtin at hand

# Locations (local, URL, gfile) and byte checks: learnit_tf.zoo_transport.
_gfile = zoo_transport.gfile
_scheme = zoo_transport.scheme
_is_url = zoo_transport.is_url
_is_local = zoo_transport.is_local
_mismatch = zoo_transport.mismatch


# ----------------------------------------------------------------------------- helpers


def _join(base, *parts):
    """Joins path parts onto a local path, URL or gfile path."""
    if _is_local(base):
        return os.path.join(base, *parts)
    if _is_url(base):
        parts = [urllib.parse.quote(p) for p in parts]
    return "/".join([base.rstrip("/"), *parts])


def check_name(value, what="name"):
    """Validates a zoo entry name or version string and returns it.

    Names and versions are single path components of letters, digits, `_`, `.`, `-`
    (starting with a letter or digit), so they can never form a path like `..`.
    """
    if not isinstance(value, str) or not _NAME_RE.match(value):
        raise ValueError(
            f"Invalid zoo {what} {value!r}: expected 1-100 characters from [A-Za-z0-9_.-] "
            "starting with a letter or digit.")
    return value




def _safe_parts(path, what):
    """Splits an index `path` into safe components or raises UnsafePathError."""
    if not isinstance(path, str) or not path.strip("/"):
        raise UnsafePathError(f"{what}: path {path!r} must be a non-empty relative path.")
    if (path.startswith(("/", "~")) or "\\" in path or ":" in path
            or os.path.isabs(path)):
        raise UnsafePathError(
            f"{what}: path {path!r} is absolute or not a plain relative path; refusing it "
            "because it would escape the zoo/cache directory.")
    parts = [p for p in path.split("/") if p]
    for part in parts:
        if part in (".", "..") or not _NAME_RE.match(part):
            raise UnsafePathError(
                f"{what}: path {path!r} has component {part!r}; only plain names from "
                "[A-Za-z0-9_.-] are allowed (no '..'), refusing a path that could escape "
                "the zoo/cache directory.")
    return parts


def _check_inside(root, target, what):
    """Refuses `target` unless it resolves (symlinks included) inside `root`."""
    root_real = os.path.realpath(root)
    target_real = os.path.realpath(target)
    if os.path.commonpath([root_real, target_real]) != root_real:
        raise UnsafePathError(f"{what}: {target!r} resolves outside {root!r}; refusing it.")


def _file_digest(path):
    """(size, sha256 hex) of a local file."""
    digest = hashlib.sha256()
    size = 0
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(_CHUNK), b""):
            digest.update(chunk)
            size += len(chunk)
    return size, digest.hexdigest()


def _gfile_digest(path):
    """(size, sha256 hex) of a file read through tf.io.gfile."""
    digest = hashlib.sha256()
    size = 0
    with _gfile().GFile(path, "rb") as f:
        while True:
            chunk = f.read(_CHUNK)
            if not chunk:
                break
            digest.update(chunk)
            size += len(chunk)
    return size, digest.hexdigest()


def _check_local_file(path, expected):
    """None if the local file matches its index record, else the reason it does not."""
    if not os.path.isfile(path):
        return f"{path!r} is missing"
    if os.path.getsize(path) != expected["size"]:
        return _mismatch(path, os.path.getsize(path), None, expected)
    return _mismatch(path, *_file_digest(path), expected)


# Downloads (size cap, total deadline, .part files): learnit_tf.zoo_transport.
_open_stream = zoo_transport.open_stream
_read_bytes = zoo_transport.read_bytes
_download = zoo_transport.download
_part_files = zoo_transport.part_files
_lock_part = zoo_transport.lock_part
_part_is_live = zoo_transport.part_is_live
remove_stale_parts = zoo_transport.remove_stale_parts


def _source_key(base):
    """A readable, collision-free cache sub-directory for a base URL."""
    slug = re.sub(r"[^A-Za-z0-9]+", "_", base.split("://", 1)[-1]).strip("_")[:48]
    return f"{slug or 'zoo'}-{hashlib.sha256(base.encode()).hexdigest()[:10]}"


def headline_from_metadata(metadata, config=None, parameters=None):
    """The summary the zoo table shows, tolerant of missing metadata keys.

    The evaluation numbers come from the init's kind's protocol
    (`learnit_tf.evaluation.Protocol.headline` of the recorded report; evaluations
    recorded before reports are read as PSNR-vs-steps summaries, except NeRF's, which
    used the image protocol and give no headline numbers).

    Args:
        metadata: parsed metadata.json (`signal_class`, `task`, `dataset`,
            `evaluation`; any of them may be absent).
        config: parsed config.json, for the model class.
        parameters: number of weights of the model.

    Returns:
        A dict of the known fields (absent ones are left out): `signal_class`,
        `model_class`, `algorithm`, `task`, `dataset`, the protocol's
        `meta_psnr_at_<point>`, `standard_psnr_at_<point>`, `psnr_at`,
        `steps_to_match` / `views_to_match`, and `parameters`.

    Example:

    >>> headline_from_metadata({"signal_class": "text", "evaluation": {
    ...     "psnr_curve": {"meta": {"2": 25.0}, "standard": [10.0, 11.0, 12.0]}}})
    {'signal_class': 'text', 'meta_psnr_at_2': 25.0, 'standard_psnr_at_2': 12.0}
    """
    if isinstance(metadata, init_metadata.InitMetadata):
        metadata = metadata.to_dict()
    metadata = metadata if isinstance(metadata, dict) else {}
    task = metadata.get("task")
    dataset = metadata.get("dataset")
    headline = {
        "signal_class": metadata.get("signal_class"),
        "model_class": (config or {}).get("class_name"),
        # Where each schema version keeps it (learnit_tf.metadata).
        "algorithm": init_metadata.algorithm_of(metadata),
        "task": task.get("class_name") if isinstance(task, dict) else task,
        "dataset": dataset.get("name") if isinstance(dataset, dict) else dataset,
    }
    headline.update(protocol_headline(metadata))
    headline["parameters"] = parameters
    return {k: v for k, v in headline.items() if v is not None}


def _validate_index(data, where):
    """Checks the structure of a parsed index and returns it."""
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
        if not isinstance(name, str) or not _NAME_RE.match(name):
            fail(f"entry name {name!r} is not a valid zoo name.")
        versions = entry.get("versions") if isinstance(entry, dict) else None
        if not isinstance(versions, dict) or not versions:
            fail(f"entry {name!r} must have a non-empty 'versions' object.")
        if entry.get("latest") is not None and entry["latest"] not in versions:
            fail(f"entry {name!r}: 'latest' {entry['latest']!r} is not one of its versions "
                 f"{sorted(versions, key=version_key)}.")
        for ver, info in versions.items():
            what = f"entry {name!r} version {ver!r}"
            if not isinstance(ver, str) or not _NAME_RE.match(ver):
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
                if not isinstance(sha, str) or not _SHA256_RE.match(sha):
                    fail(f"{what}: file {filename!r} needs a lowercase hex 'sha256' "
                         "of 64 characters.")
    return data


def empty_index(base_url=None):
    """A new, empty index dict."""
    return {"format_version": INDEX_FORMAT_VERSION, "base_url": base_url, "entries": {}}


def _resolve_cache_dir(cache_dir):
    return os.path.abspath(os.path.expanduser(
        cache_dir or os.environ.get(ENV_CACHE) or DEFAULT_CACHE_DIR))


def _resolve_index_location(index):
    location = index or os.environ.get(ENV_INDEX) or os.path.join(SHIPPED_ZOO_DIR, INDEX_FILE)
    location = str(location)
    if _is_local(location):
        location = os.path.abspath(os.path.expanduser(location))
        if os.path.isdir(location):
            location = os.path.join(location, INDEX_FILE)
    elif location.endswith("/"):
        location += INDEX_FILE
    elif not _is_url(location) and not location.endswith(".json"):
        if _gfile().isdir(location):
            location = _join(location, INDEX_FILE)
    return location


# ----------------------------------------------------------------------------- the zoo


class Zoo:
    """A zoo index plus where to cache and fetch its files.

    Args:
        index: the index: a local `index.json` or directory, an http(s) URL or a
            `gs://` path. Default: `$LEARNIT_TF_ZOO_INDEX`, else the repo's `zoo/`.
        cache_dir: where downloaded files go. Default: `$LEARNIT_TF_CACHE`, else
            `~/.cache/learnit_tf`.
        base_url: overrides where files of entries not present locally are fetched
            from (http(s), `gs://` or a local directory).
        progress: show a progress bar for downloads of 1 MiB or more.

    Example:

    >>> zoo = Zoo()                                    # the shipped zoo
    >>> isinstance(zoo.names(), type([]))
    True
    """

    def __init__(self, index=None, cache_dir=None, base_url=None, progress=True):
        self.index_location = _resolve_index_location(index)
        self.cache_dir = _resolve_cache_dir(cache_dir)
        self.base_url = base_url
        self.progress = progress
        self._index = None

    def __repr__(self):
        return f"Zoo(index={self.index_location!r}, cache_dir={self.cache_dir!r})"

    # -- index ---------------------------------------------------------------------

    @property
    def index_root(self):
        """Directory (path or URL) holding the index."""
        if _is_local(self.index_location):
            return os.path.dirname(self.index_location)
        return self.index_location.rsplit("/", 1)[0] + "/"

    @property
    def index(self):
        """The parsed, validated index (read once per Zoo object)."""
        if self._index is None:
            self._index = self._read_index()
        return self._index

    def _read_index(self):
        where = self.index_location
        if _is_local(where):
            if not os.path.isfile(where):
                raise ZooError(f"Zoo index {where!r} not found. Set ${ENV_INDEX} or pass "
                               "index= a local index.json, a directory holding one, an "
                               "http(s) URL or a gs:// path.")
            with open(where, "rb") as f:
                raw = f.read()
        else:
            # Remote index: refresh the cached copy, fall back to it when offline.
            cached = os.path.join(self.cache_dir, "zoo", _source_key(self.index_root),
                                  INDEX_FILE)
            try:
                raw = _read_bytes(where)
            except ZooError as e:
                if not os.path.isfile(cached):
                    raise
                logging.warning("%s; using the cached index %s", e, cached)
                with open(cached, "rb") as f:
                    raw = f.read()
            else:
                _parse_index(raw, where)  # never cache a broken index
                _write_bytes_atomic(cached, raw)
        return _parse_index(raw, where)

    def names(self):
        """Sorted entry names."""
        return sorted(self.index["entries"])

    def _entry(self, name):
        entries = self.index["entries"]
        if name not in entries:
            available = ", ".join(sorted(entries)) or "none"
            raise UnknownEntryError(
                f"Unknown zoo entry {name!r} in {self.index_location}; available: {available}.")
        return entries[name]

    def resolve_version(self, name, version=None):
        """The version string that `version` (None: the latest) selects for `name`."""
        entry = self._entry(name)
        versions = entry["versions"]
        if version is None:
            return entry.get("latest") or max(versions, key=version_key)
        version = str(version)
        if version not in versions:
            raise UnknownEntryError(
                f"Unknown version {version!r} of zoo entry {name!r}; available versions: "
                f"{', '.join(sorted(versions, key=version_key))}.")
        return version

    def _version_info(self, name, version):
        version = self.resolve_version(name, version)
        info = self._entry(name)["versions"][version]
        what = f"zoo entry {name!r} version {version!r}"
        parts = _safe_parts(info["path"], what)
        for filename in info["files"]:
            if filename not in ALLOWED_FILES:
                raise UnsafePathError(
                    f"{what} lists file {filename!r}; an init may only contain "
                    f"{', '.join(ALLOWED_FILES)} (no code, pickles or gin are ever loaded).")
        missing = [f for f in REQUIRED_FILES if f not in info["files"]]
        if missing:
            raise IndexFormatError(f"{what} does not list {', '.join(missing)}.")
        return version, info, parts, what

    def _local_dir(self, parts):
        """The in-place directory of an entry shipped next to a local index, or None."""
        if not _is_local(self.index_location):
            return None
        root = self.index_root
        directory = os.path.join(root, *parts)
        if not os.path.isdir(directory):
            return None
        _check_inside(root, directory, "index path")
        return directory

    def _remote_base(self, info, what):
        base = self.base_url or info.get("base_url") or self.index.get("base_url")
        if not base and not _is_local(self.index_location):
            base = self.index_root
        if not base:
            raise ZooError(
                f"{what} is not present next to the index ({self.index_root}) and the index "
                "has no base_url; pass base_url= (http(s), gs:// or a directory).")
        return base

    def _cache_version_dir(self, base, parts):
        root = os.path.join(self.cache_dir, "zoo", _source_key(base))
        directory = os.path.join(root, *parts)
        os.makedirs(root, exist_ok=True)
        _check_inside(root, directory, "index path")
        return directory

    # -- pins (see the module docstring) -------------------------------------------

    def pin_path(self, name, version):
        """Where the pin of `name@version` from this index lives in the cache."""
        return os.path.join(self.cache_dir, "zoo", PINS_DIR,
                            _source_key(self.index_location), check_name(name),
                            f"{check_name(version, 'version')}.json")

    def _read_pin(self, name, version):
        """{file: {"size", "sha256"}} pinned for `name@version` ({} if never cached)."""
        path = self.pin_path(name, version)
        if not os.path.exists(path):
            return {}
        try:
            with open(path, encoding="utf-8") as f:
                files = json.load(f)["files"]
            for record in files.values():
                if not (isinstance(record["size"], int)
                        and _SHA256_RE.match(record["sha256"])):
                    raise ValueError(record)
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as e:
            raise ZooError(f"The cache pin {path} of zoo entry {name!r} version {version!r} "
                           f"is unreadable ({e!r}); delete it and the cached version to "
                           "download that version again.") from e
        return files

    def _check_pin(self, name, version, info, pinned, directory):
        """Refuses an index whose record of a pinned file changed (immutable versions)."""
        for filename, record in sorted(info["files"].items()):
            old = pinned.get(filename)
            if old is None or (old["sha256"], old["size"]) == (record["sha256"],
                                                                 record["size"]):
                continue
            raise PinnedVersionChangedError(
                f"Refusing zoo entry {name!r} version {version!r} from {self.index_location}: "
                f"the index now lists {filename} with sha256 {record['sha256']} "
                f"({record['size']} bytes), but the copy verified and pinned in the cache has "
                f"sha256 {old['sha256']} ({old['size']} bytes). Published versions are "
                "immutable, so the cached copy is kept and nothing was downloaded. If the "
                "publisher really replaced this version, delete "
                f"{self.pin_path(name, version)} and {directory} to accept the new files; "
                "otherwise ask for a new version number.")

    def _write_pin(self, name, version, pinned):
        """Adds `pinned` to the pin file: a locked read-merge-replace (another process may
        be pinning other files of the same version), refusing a file pinned meanwhile
        with other bytes."""
        def merge(current):
            files = dict(current.get("files") or {})
            for filename, record in pinned.items():
                old = files.get(filename)
                if old is not None and (old["size"], old["sha256"]) != (record["size"],
                                                                         record["sha256"]):
                    raise PinnedVersionChangedError(
                        f"Zoo entry {name!r} version {version!r}: {filename} was pinned with "
                        f"sha256 {old['sha256']} by another process while this one verified "
                        f"sha256 {record['sha256']}; published versions are immutable.")
                files[filename] = record
            return {"index": self.index_location, "name": name, "version": version,
                    "files": files, "pinned": current.get("pinned") or _utc_now()}
        locks.update_json(self.pin_path(name, version), merge, default={})

    # -- public API ----------------------------------------------------------------

    def list(self):
        """One row per (name, version): headline metrics, size and where it is.

        Returns:
            A list of dicts with keys `name`, `version`, `latest` (bool),
            `description`, `headline`, `size` (bytes) and `location` ("local": next
            to a local index, e.g. shipped in zoo/; "cached"; "remote"; "missing": no
            local files and no base_url; "unsafe": a refused path), sorted by name
            then version.
        """
        rows = []
        for name in self.names():
            entry = self.index["entries"][name]
            latest = self.resolve_version(name)
            for version in sorted(entry["versions"], key=version_key):
                info = entry["versions"][version]
                rows.append({
                    "name": name, "version": version, "latest": version == latest,
                    "description": entry.get("description", ""),
                    "headline": dict(info.get("headline") or {}),
                    "size": sum(f["size"] for f in info["files"].values()),
                    "location": self._location(info),
                })
        return rows

    def _location(self, info):
        try:
            parts = _safe_parts(info["path"], "index path")
            if self._local_dir(parts):
                return "local"
        except UnsafePathError:
            return "unsafe"
        try:
            base = self._remote_base(info, "")
        except ZooError:
            return "missing"
        directory = os.path.join(self.cache_dir, "zoo", _source_key(base), *parts)
        if all(os.path.isfile(os.path.join(directory, f)) for f in info["files"]):
            return "cached"
        return "remote"

    def info(self, name, version=None):
        """The index record of one version (plus `name`, `version`, `description`)."""
        version, info, _, _ = self._version_info(name, version)
        record = json.loads(json.dumps(info))
        record.update(name=name, version=version,
                      description=self._entry(name).get("description", ""),
                      size=sum(f["size"] for f in info["files"].values()),
                      location=self._location(info))
        return record

    def download(self, name, version=None, files=None):
        """Makes the files of an entry available locally and verified; returns the dir.

        Entries shipped next to a local index are verified in place; others are
        fetched into the cache (cache hits are verified and never re-downloaded).
        The index must agree with the hashes pinned for this version (see the module
        docstring): a damaged cached copy of a pinned file is fetched again, anything
        else that does not match is refused and left as it is.

        Args:
            name: entry name.
            version: version string; None selects the entry's latest.
            files: only these file names (default: all files of the version).

        Returns:
            The local directory holding the verified files.

        Raises:
            UnknownEntryError, IntegrityError (PinnedVersionChangedError),
            UnsafePathError, ZooError.
        """
        version, info, parts, what = self._version_info(name, version)
        wanted = [*info["files"]] if files is None else [*files]
        for filename in wanted:
            if filename not in info["files"]:
                raise UnknownEntryError(f"{what} has no file {filename!r}; it has "
                                        f"{', '.join(sorted(info['files']))}.")
        local = self._local_dir(parts)
        if local is not None:
            for filename in wanted:
                path = os.path.join(local, filename)
                _check_inside(local, path, f"{what}: file {filename}")
                problem = _check_local_file(path, info["files"][filename])
                if problem:
                    raise IntegrityError(f"Refusing {what}: {problem}.")
            return local
        base = self._remote_base(info, what)
        directory = self._cache_version_dir(base, parts)
        pinned = self._read_pin(name, version)
        self._check_pin(name, version, info, pinned, directory)  # Before touching anything.
        newly_pinned = {}
        for filename in wanted:
            expected = info["files"][filename]
            target = os.path.join(directory, filename)
            if os.path.lexists(target):
                _check_inside(directory, target, f"{what}: cached file {filename}")
                problem = _check_local_file(target, expected)
                if problem is None:  # Verified cache hit.
                    if filename not in pinned:
                        newly_pinned[filename] = _record(expected)
                    continue
                if filename not in pinned:
                    raise IntegrityError(
                        f"Refusing {what}: the cached copy {problem}. It has no pin, so "
                        "whether it was damaged or the zoo changed a published version is "
                        f"unknown; it is kept. Delete {directory} to download "
                        f"{name}@{version} again.")
                logging.warning("Cached file is damaged (%s); downloading it again (it must "
                                "match the pinned sha256).", problem)
                os.remove(target)
            _download(_join(base, *parts, filename), target, expected, self.progress)
            if filename not in pinned:
                newly_pinned[filename] = _record(expected)
        if newly_pinned:
            self._write_pin(name, version, {**pinned, **newly_pinned})
        return directory

    def describe(self, name, version=None):
        """The metadata.json of an entry (fetching only that file if remote)."""
        version, info, _, _ = self._version_info(name, version)
        if METADATA_FILE not in info["files"]:
            return {}
        directory = self.download(name, version, files=[METADATA_FILE])
        path = os.path.join(directory, METADATA_FILE)
        init_metadata.InitMetadata.read(path)  # Validates (errors name the file and field).
        with open(path, encoding="utf-8") as f:
            return json.load(f)

    def load(self, name_or_path, version=None):
        """Builds the Keras model of an init (zoo name, `name@version`, or local dir)."""
        from learnit_tf import init_io  # pylint: disable=import-outside-toplevel
        target = str(name_or_path)
        if _scheme(target):
            raise ZooError(
                f"load() takes a zoo name or a local init directory, not the URL {target!r}: "
                "remote inits load through a zoo index (index= or $" + ENV_INDEX + ") so "
                "their hashes can be checked.")
        directory = os.path.expanduser(target)
        name, version = split_name(target, version)
        if "/" in target or os.sep in target or not _NAME_RE.match(name):
            if os.path.isdir(directory):
                return init_io.load_init(directory)
            raise FileNotFoundError(f"{target!r} is neither an init directory nor a zoo name.")
        try:
            return init_io.load_init(self.download(name, version))
        except ZooError:
            # A bare name that the zoo does not know may still be a directory in the cwd;
            # zoo names win so that a stray local folder never shadows a verified init.
            if "@" not in target and version is None and os.path.isdir(directory):
                return init_io.load_init(directory)
            raise

    def verify(self, name, version=None):
        """Checks every file of an entry (downloading missing ones) and that it loads.

        Returns:
            A dict with `name`, `version`, `directory`, `files` (name -> sha256) and
            `parameters` of the rebuilt model.
        """
        version, info, _, what = self._version_info(name, version)
        directory = self.download(name, version)
        from learnit_tf import init_io  # pylint: disable=import-outside-toplevel
        model = init_io.load_init(directory)  # HDF5 through Keras: nothing is unpickled.
        problem = non_finite_weights(model)
        if problem:
            raise NonFiniteWeightsError(
                f"{what} ({os.path.join(directory, WEIGHTS_FILE)}): {problem}; its sha256 "
                "matches the index, but the init cannot be fitted.")
        return {"name": name, "version": version, "directory": directory,
                "files": {f: r["sha256"] for f, r in info["files"].items()},
                "parameters": int(model.count_params())}


def _record(expected):
    return {"size": expected["size"], "sha256": expected["sha256"]}


def non_finite_weights(model):
    """Which weights of `model` hold NaN or infinity, as a sentence; None if all finite."""
    import numpy as np  # pylint: disable=import-outside-toplevel
    bad = [v.path if hasattr(v, "path") else v.name for v in model.weights
           if not np.all(np.isfinite(np.asarray(v)))]
    if not bad:
        return None
    shown = ", ".join(bad[:3]) + (f" and {len(bad) - 3} more" if len(bad) > 3 else "")
    return (f"{len(bad)} of {len(model.weights)} weight tensors hold NaN or infinite "
            f"values ({shown})")


def _parse_index(raw, where):
    try:
        data = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise IndexFormatError(f"Zoo index {where}: not valid JSON ({e}).") from e
    return _validate_index(data, where)


def _write_bytes_atomic(path, data):
    def save(tmp):
        with open(tmp, "wb") as f:
            f.write(data)
    atomic_save(path, save)




# ------------------------------------------------------------------ module-level API


def list(index=None, cache_dir=None):  # pylint: disable=redefined-builtin
    """Rows (name, version, headline, size, location) of every init in the zoo.

    Example:

    >>> rows = list()               # the shipped zoo (zoo/index.json)
    >>> all("headline" in row for row in rows)
    True
    """
    return Zoo(index, cache_dir).list()


def describe(name, version=None, index=None, cache_dir=None, base_url=None):
    """The metadata.json of a zoo init (`name` may be "name@version")."""
    name, version = split_name(name, version)
    return Zoo(index, cache_dir, base_url).describe(name, version)


def load(name_or_path, version=None, cache_dir=None, base_url=None, index=None,
         resolution=None):
    """A built Keras model carrying the weights of a zoo init or init directory.

    Args:
        name_or_path: zoo entry name, "name@version", or a local init directory.
        version: version of a zoo entry (default: its latest).
        cache_dir: download cache (default `$LEARNIT_TF_CACHE` or ~/.cache/learnit_tf).
        base_url: where to fetch entries not shipped locally.
        index: zoo index (default `$LEARNIT_TF_ZOO_INDEX` or the repo's zoo/index.json).
        resolution: image inits: the grid side R you will fit at. A bare name loads the
            newest version evaluated at R; a `ResolutionWarning` with the measured
            numbers says when the loaded init was not
            (`learnit_tf.zoo_resolution`).

    Example:

    >>> # model = load("text_siren")
    >>> # fit(model, task, example, steps=2, optimizer=InnerOptimizer("sgd", 1e-2))
    """
    zoo_obj = Zoo(index, cache_dir, base_url)
    if resolution is not None:
        from learnit_tf import zoo_resolution  # pylint: disable=import-outside-toplevel
        return zoo_resolution.load_at_resolution(zoo_obj, name_or_path, version, resolution)
    return zoo_obj.load(name_or_path, version)


def download(name, version=None, cache_dir=None, base_url=None, index=None):
    """Fetches (if needed) and verifies a zoo init; returns its local directory."""
    name, version = split_name(name, version)
    return Zoo(index, cache_dir, base_url).download(name, version)


def verify(name, version=None, cache_dir=None, base_url=None, index=None):
    """Verifies sizes and sha256 of a zoo init and that it builds; returns a report."""
    name, version = split_name(name, version)
    return Zoo(index, cache_dir, base_url).verify(name, version)


# ----------------------------------------------------------------------------- publish


def _utc_now():
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


# Several publishers may write one local zoo at the same moment: the whole publish (the
# check that the version is new, the copy, the change of index.json) holds the index's
# lock (learnit_tf.locks), and index.json is re-read under it before the new version is
# merged in, so no entry is lost and of two publishers of one version exactly one wins.
# gs:// has no lock: the index is re-read just before it is replaced (publish to one gs://
# zoo from one process at a time).
_PUBLISH_LOCK_TIMEOUT_SECONDS = 600


def _read_gfile_index(gfile, index_path):
    if not gfile.exists(index_path):
        return empty_index()
    with gfile.GFile(index_path, "rb") as f:
        return _parse_index(f.read(), index_path)


def _write_gfile_index(gfile, index_path, index):
    """Writes the index to a temporary name, then renames it over the old one."""
    tmp = f"{index_path}.tmp-{uuid.uuid4().hex}"
    data = json.dumps(index, indent=2, sort_keys=True) + "\n"
    try:
        with gfile.GFile(tmp, "w") as f:
            f.write(data)
        gfile.rename(tmp, index_path, overwrite=True)
    except BaseException:
        if gfile.exists(tmp):
            gfile.remove(tmp)
        raise


def _check_destination(destination):
    """The destination as an absolute local path or a gs:// path; refuses non-directories."""
    if _is_url(destination):
        raise ValueError(f"Cannot publish to {destination!r}: http(s) is read-only; publish to "
                         "a local directory or gs:// and serve that directory.")
    if not _is_local(destination):
        return destination
    destination = os.path.abspath(os.path.expanduser(destination))
    ancestor = destination
    while not os.path.exists(ancestor):
        ancestor = os.path.dirname(ancestor)
    if not os.path.isdir(ancestor):
        where = ("is a file" if ancestor == destination
                 else f"is inside {ancestor!r}, which is a file")
        raise ValueError(f"Cannot publish to --destination={destination!r}: it {where}, not a "
                         "zoo directory (a directory holding index.json and one folder per "
                         "entry). Nothing was written.")
    return destination


def _remove_dead_staging(gfile, destination, name, version):
    """Deletes staging folders of `name/version` left by a killed publish (lock held)."""
    parent = os.path.join(destination, name)
    if not os.path.isdir(parent):
        return
    for entry in os.listdir(parent):
        if entry.startswith(f".{version}.tmp-"):
            logging.info("Removing %s, left by an interrupted publish.", entry)
            gfile.rmtree(os.path.join(parent, entry))


def publish(init_dir, name, version, destination=None, description=None):
    """Publishes an init directory as `name`/`version` of a zoo.

    Validates the init (all three files, config builds, weights load), copies the
    files to `destination/<name>/<version>/` through tf.io.gfile, checks the copies'
    hashes, then adds the version to `destination/index.json` (written to a temporary
    name and renamed). Published versions are immutable: an existing version is
    refused. On a local destination the files are staged in a hidden sibling
    directory and renamed into place, so a reader never sees a partial version, and
    the publish holds the index's lock (see the module docstring), so concurrent
    publishers into one zoo all keep their entries.

    Args:
        init_dir: local init directory (see `learnit_tf.init_io.save_init`).
        name: entry name ([A-Za-z0-9_.-]).
        version: version string, e.g. "1".
        destination: zoo directory, local or `gs://…` (default: the repo's `zoo/`).
        description: one-line description of the entry (default: kept, or derived
            from the metadata).

    Returns:
        The index record of the new version.

    Raises:
        VersionExistsError: the version is already published (or was, concurrently).
        ValueError: a bad name, init or destination (e.g. an existing file).
        learnit_tf.locks.SharedFileBusyError: another publish held the index's lock
            for 10 minutes.

    Example:

    >>> import tempfile
    >>> from learnit_tf.init_io import save_init
    >>> from learnit_tf.models import Siren
    >>> init = save_init(Siren(width=8, depth=2, seed=0), tempfile.mkdtemp() + "/init",
    ...                  {"signal_class": "demo"})
    >>> record = publish(init, "demo", "1", tempfile.mkdtemp())
    >>> record["path"]
    'demo/1/'
    """
    from learnit_tf import init_io  # pylint: disable=import-outside-toplevel
    check_name(name, "name")
    check_name(str(version), "version")
    version = str(version)
    destination = _check_destination(str(destination or SHIPPED_ZOO_DIR))
    for filename in ALLOWED_FILES:
        if not os.path.isfile(os.path.join(init_dir, filename)):
            raise FileNotFoundError(f"Cannot publish {init_dir!r}: {filename} is missing "
                                    f"(an init directory holds {', '.join(ALLOWED_FILES)}).")
    # Validate before anything is written: the config builds, the weights load.
    config = init_io.read_config(init_dir)
    try:
        metadata = init_io.read_metadata(init_dir)  # Validated against the schema.
    except init_metadata.MetadataError as e:
        raise ValueError(f"Cannot publish {init_dir!r}: {e}") from e
    try:
        model = init_io.load_init(init_dir)
    except Exception as e:
        raise ValueError(f"Cannot publish {init_dir!r}: the init does not load ({e}).") from e
    problem = non_finite_weights(model)
    if problem:
        raise NonFiniteWeightsError(f"Cannot publish {init_dir!r}: {problem}.")
    files = {}
    for filename in ALLOWED_FILES:
        size, sha = _file_digest(os.path.join(init_dir, filename))
        files[filename] = {"size": size, "sha256": sha}
    headline = headline_from_metadata(metadata, config, int(model.count_params()))

    gfile = _gfile()
    index_path = _join(destination, INDEX_FILE)
    local = _is_local(destination)
    if local:
        os.makedirs(destination, exist_ok=True)
        lock = locks.locked(index_path, _PUBLISH_LOCK_TIMEOUT_SECONDS, what=f"zoo index {index_path}")
    else:
        lock = contextlib.nullcontext()
    with lock:
        index = _read_gfile_index(gfile, index_path)
        existing = index["entries"].get(name, {}).get("versions", {})
        if version in existing:
            raise VersionExistsError(
                f"{name!r} version {version!r} is already published in {index_path}; "
                "published versions are immutable (existing: "
                f"{', '.join(sorted(existing, key=version_key))}). Publish a new version.")
        version_dir = _join(destination, name, version)
        if local:
            _remove_dead_staging(gfile, destination, name, version)
        if gfile.exists(version_dir):
            raise VersionExistsError(
                f"{version_dir!r} exists but is not in the index (left by an interrupted "
                "publish?); remove it or publish another version.")

        gfile.makedirs(_join(destination, name))
        staging = (_join(destination, name, f".{version}.tmp-{uuid.uuid4().hex[:8]}")
                   if local else version_dir)
        try:
            gfile.makedirs(staging)
            for filename, record in files.items():
                target = _join(staging, filename)
                gfile.copy(os.path.join(init_dir, filename), target, overwrite=False)
                problem = _mismatch(target, *_gfile_digest(target), record)
                if problem:
                    raise IntegrityError(f"Copy failed verification: {problem}.")
            if staging != version_dir:
                gfile.rename(staging, version_dir, overwrite=False)
        except BaseException:
            if gfile.exists(staging):
                gfile.rmtree(staging)
            raise

        # Commit: re-read the index (under the lock on a local zoo) and merge into it.
        index = _read_gfile_index(gfile, index_path)
        entry = index["entries"].setdefault(name, {"versions": {}})
        if version in entry["versions"]:  # Only possible on gs:// (no lock).
            raise VersionExistsError(
                f"{name!r} version {version!r} was published concurrently.")
        record = {"path": f"{name}/{version}/", "files": files, "headline": headline,
                  "published": _utc_now()}
        entry["versions"][version] = record
        entry["latest"] = max(entry["versions"], key=version_key)
        if description is not None:
            entry["description"] = description
        elif not entry.get("description"):
            entry["description"] = metadata.get("description") or " ".join(
                str(x) for x in (headline.get("signal_class"), headline.get("model_class"),
                                 "init", f"({headline['algorithm']})" if "algorithm" in headline
                                 else None) if x)
        try:
            _write_gfile_index(gfile, index_path, index)
        except BaseException:
            # The version folder without its index record would block a retry.
            if local:
                shutil.rmtree(version_dir, ignore_errors=True)
            raise
    logging.info("Published %s version %s to %s", name, version, version_dir)
    return record


# ------------------------------------------------------------------------------ table


def _format_size(size):
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return str(size)


def _format_steps(value):
    if isinstance(value, dict):
        for key in ("ratio", "speedup"):
            if _number(value.get(key)) is not None:
                return f"{_number(value[key]):.3g}×"
        return json.dumps(value, sort_keys=True, separators=(",", ":"))
    number = _number(value)
    if number is not None:
        return f"{number:.3g}"
    return "" if value is None else str(value)


TABLE_COLUMNS = ("name", "version", "signal class", "model", "algorithm",
                 "PSNR meta vs standard", "at", "to match", "size", "where")


def headline_psnr(headline):
    """(meta PSNR, standard PSNR, where) of a headline, e.g. (20.0, 12.9, "2 steps").

    Reads the protocol's `meta_psnr_at_<point>` / `standard_psnr_at_<point>` keys and
    `psnr_at` (older headlines without `psnr_at` name the step in the key).
    """
    for key in sorted(headline):
        if key.startswith("meta_psnr_at_"):
            point = key[len("meta_psnr_at_"):]
            where = headline.get("psnr_at") or (f"{point} steps" if point.isdigit()
                                                 else point.replace("_", " "))
            return (_number(headline[key]), _number(headline.get(f"standard_psnr_at_{point}")),
                    where)
    return None, None, ""


def _format_to_match(headline):
    if headline.get("steps_to_match") is not None:
        text = _format_steps(headline["steps_to_match"])
        return text if text.endswith("×") else f"{text} steps"
    if headline.get("views_to_match") is not None:
        return f"{_format_steps(headline['views_to_match'])} views"
    return ""


def table_rows(rows):
    """Turns `Zoo.list()` rows into string cells in `TABLE_COLUMNS` order."""
    cells = []
    for row in rows:
        headline = row.get("headline") or {}
        meta, std, where = headline_psnr(headline)
        if meta is not None or std is not None:
            psnr = (f"{meta:.2f}" if meta is not None else "?") + " vs " + (
                f"{std:.2f} dB" if std is not None else "? dB")
        else:
            psnr = ""
        cells.append([
            row["name"], row["version"] + (" (latest)" if row.get("latest") else ""),
            str(headline.get("signal_class", "")), str(headline.get("model_class", "")),
            str(headline.get("algorithm", "")), psnr, where if psnr else "",
            _format_to_match(headline), _format_size(row["size"]), row.get("location", ""),
        ])
    return cells


def format_table(rows, markdown=False):
    """A text (or Markdown) table of `Zoo.list()` rows with each init's headline.

    Example:

    >>> table = format_table([{"name": "a", "version": "1", "size": 2048, "headline": {
    ...     "meta_psnr_at_2": 30.0, "standard_psnr_at_2": 12.5}}])
    >>> "30.00 vs 12.50 dB" in table and "2.0 KiB" in table
    True
    """
    cells = table_rows(rows)
    if markdown:
        lines = ["| " + " | ".join(TABLE_COLUMNS) + " |",
                 "|" + "|".join("---" for _ in TABLE_COLUMNS) + "|"]
        lines += ["| " + " | ".join(c.replace("|", "\\|") for c in row) + " |"
                  for row in cells]
        return "\n".join(lines)
    widths = [max([len(h)] + [len(r[i]) for r in cells]) for i, h in enumerate(TABLE_COLUMNS)]
    fmt = "  ".join(f"{{:<{w}}}" for w in widths)
    lines = [fmt.format(*TABLE_COLUMNS), fmt.format(*("-" * w for w in widths))]
    lines += [fmt.format(*row) for row in cells]
    if not cells:
        lines.append("(no entries)")
    return "\n".join(line.rstrip() for line in lines)
