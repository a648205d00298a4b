"""`Zoo`: a zoo index plus where to cache and fetch its files; loading verified inits.

Where the files of a version come from, how downloads are checked and how the cache
pins published versions: see the `learnit_tf.zoo` package docstring.
"""

import json
import os

from absl import logging

from learnit_tf.core import locks
from learnit_tf.zoo import index as zoo_index
from learnit_tf.zoo import transport
from learnit_tf.zoo.errors import (IndexFormatError, IntegrityError, NonFiniteWeightsError,
                                   PinnedVersionChangedError, UnknownEntryError,
                                   UnsafePathError, ZooError)
from learnit_tf.core.metadata import InitMetadata
from learnit_tf.zoo.names import NAME_RE, SHA256_RE, check_name, safe_parts, split_name, version_key

PINS_DIR = "pins"


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
        self.index_location = zoo_index.resolve_index_location(index)
        self.cache_dir = zoo_index.resolve_cache_dir(cache_dir)
        self.base_url = base_url
        self.progress = progress
        self._index = None

    def __repr__(self):
        return f"Zoo(index={self.index_location!r}, cache_dir={self.cache_dir!r})"

    # -- index ---------------------------------------------------------------------

    @property
    def index_root(self):
        """Directory (path or URL) holding the index."""
        if transport.is_local(self.index_location):
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
        if transport.is_local(where):
            if not os.path.isfile(where):
                raise ZooError(f"Zoo index {where!r} not found. Set ${zoo_index.ENV_INDEX} or pass "
                               "index= a local index.json, a directory holding one, an "
                               "http(s) URL or a gs:// path.")
            with open(where, "rb") as f:
                raw = f.read()
        else:
            # Remote index: refresh the cached copy, fall back to it when offline.
            cached = os.path.join(self.cache_dir, "zoo", transport.source_key(self.index_root),
                                  zoo_index.INDEX_FILE)
            try:
                raw = transport.read_bytes(where)
            except ZooError as e:
                if not os.path.isfile(cached):
                    raise
                logging.warning("%s; using the cached index %s", e, cached)
                with open(cached, "rb") as f:
                    raw = f.read()
            else:
                zoo_index.parse_index(raw, where)  # never cache a broken index
                zoo_index.write_bytes_atomic(cached, raw)
        return zoo_index.parse_index(raw, where)

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
        parts = safe_parts(info["path"], what)
        for filename in info["files"]:
            if filename not in zoo_index.ALLOWED_FILES:
                raise UnsafePathError(
                    f"{what} lists file {filename!r}; an init may only contain "
                    f"{', '.join(zoo_index.ALLOWED_FILES)} (no code, pickles or gin are ever "
                    "loaded).")
        missing = [f for f in zoo_index.REQUIRED_FILES if f not in info["files"]]
        if missing:
            raise IndexFormatError(f"{what} does not list {', '.join(missing)}.")
        return version, info, parts, what

    def _local_dir(self, parts):
        """The in-place directory of an entry shipped next to a local index, or None."""
        if not transport.is_local(self.index_location):
            return None
        root = self.index_root
        directory = os.path.join(root, *parts)
        if not os.path.isdir(directory):
            return None
        transport.check_inside(root, directory, "index path")
        return directory

    def _remote_base(self, info, what):
        base = self.base_url or info.get("base_url") or self.index.get("base_url")
        if not base and not transport.is_local(self.index_location):
            base = self.index_root
        if not base:
            raise ZooError(
                f"{what} is not present next to the index ({self.index_root}) and the index "
                "has no base_url; pass base_url= (http(s), gs:// or a directory).")
        return base

    def _cache_version_dir(self, base, parts):
        root = os.path.join(self.cache_dir, "zoo", transport.source_key(base))
        directory = os.path.join(root, *parts)
        os.makedirs(root, exist_ok=True)
        transport.check_inside(root, directory, "index path")
        return directory

    # -- pins (see the module docstring) -------------------------------------------

    def pin_path(self, name, version):
        """Where the pin of `name@version` from this index lives in the cache."""
        return os.path.join(self.cache_dir, "zoo", PINS_DIR,
                            transport.source_key(self.index_location), check_name(name),
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
                        and SHA256_RE.match(record["sha256"])):
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
                    "files": files, "pinned": current.get("pinned") or zoo_index.utc_now()}
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
            parts = safe_parts(info["path"], "index path")
            if self._local_dir(parts):
                return "local"
        except UnsafePathError:
            return "unsafe"
        try:
            base = self._remote_base(info, "")
        except ZooError:
            return "missing"
        directory = os.path.join(self.cache_dir, "zoo", transport.source_key(base), *parts)
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
                transport.check_inside(local, path, f"{what}: file {filename}")
                problem = transport.check_local_file(path, info["files"][filename])
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
                transport.check_inside(directory, target, f"{what}: cached file {filename}")
                problem = transport.check_local_file(target, expected)
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
            transport.download(transport.join(base, *parts, filename), target, expected,
                               self.progress)
            if filename not in pinned:
                newly_pinned[filename] = _record(expected)
        if newly_pinned:
            self._write_pin(name, version, {**pinned, **newly_pinned})
        return directory

    def describe(self, name, version=None):
        """The metadata.json of an entry (fetching only that file if remote)."""
        version, info, _, _ = self._version_info(name, version)
        if zoo_index.METADATA_FILE not in info["files"]:
            return {}
        directory = self.download(name, version, files=[zoo_index.METADATA_FILE])
        # Read once, validated (errors name the file and field); the dict is the file's JSON.
        return InitMetadata.read(os.path.join(directory, zoo_index.METADATA_FILE)).file_dict()

    def load(self, name_or_path, version=None):
        """Builds the Keras model of an init (zoo name, `name@version`, or local dir)."""
        from learnit_tf.meta import init_io# pylint: disable=import-outside-toplevel
        target = str(name_or_path)
        if transport.scheme(target):
            raise ZooError(
                f"load() takes a zoo name or a local init directory, not the URL {target!r}: "
                "remote inits load through a zoo index (index= or $" + zoo_index.ENV_INDEX + ") so "
                "their hashes can be checked.")
        directory = os.path.expanduser(target)
        name, version = split_name(target, version)
        if "/" in target or os.sep in target or not NAME_RE.match(name):
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
        from learnit_tf.meta import init_io# pylint: disable=import-outside-toplevel
        model = init_io.load_init(directory)  # HDF5 through Keras: nothing is unpickled.
        problem = non_finite_weights(model)
        if problem:
            raise NonFiniteWeightsError(
                f"{what} ({os.path.join(directory, zoo_index.WEIGHTS_FILE)}): {problem}; its "
                "sha256 matches the index, but the init cannot be fitted.")
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
