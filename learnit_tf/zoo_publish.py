"""Publishing an init into a zoo directory (`learnit_tf.zoo.publish`).

Several publishers may write one zoo at the same moment (two `learnit-publish` runs,
a script publishing in parallel). On a local destination the whole publish — the
check that the version is new, the copy of its files and the change of index.json —
runs under the index's lock (`learnit_tf.locks`), and index.json is re-read under that
lock before the new version is merged into it, so no publisher erases another's entry
and, of two publishers of the same version, exactly one wins: the other is refused
with `VersionExistsError` (published versions are immutable).

gs:// destinations have no lock: the index is re-read just before it is replaced,
which keeps concurrent publishes apart unless they commit within the same moment.
Publish to one gs:// zoo from one process at a time.
"""

import contextlib
import json
import os
import shutil
import uuid

from absl import logging

from learnit_tf import locks
from learnit_tf import metadata as init_metadata

_LOCK_TIMEOUT_SECONDS = 600


def _read_gfile_index(gfile, index_path):
    from learnit_tf import zoo as _zoo  # pylint: disable=import-outside-toplevel  # zoo imports us
    if not gfile.exists(index_path):
        return _zoo.empty_index()
    with gfile.GFile(index_path, "rb") as f:
        return _zoo._parse_index(f.read(), index_path)  # pylint: disable=protected-access


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
    from learnit_tf import zoo as _zoo  # pylint: disable=import-outside-toplevel  # zoo imports us
    if _zoo._is_url(destination):  # pylint: disable=protected-access
        raise ValueError(f"Cannot publish to {destination!r}: http(s) is read-only; publish to "
                         "a local directory or gs:// and serve that directory.")
    if not _zoo._is_local(destination):  # pylint: disable=protected-access
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
    # pylint: disable=protected-access,import-outside-toplevel
    from learnit_tf import init_io
    from learnit_tf import zoo as _zoo  # zoo imports this module: imported here
    _zoo.check_name(name, "name")
    _zoo.check_name(str(version), "version")
    version = str(version)
    destination = _check_destination(str(destination or _zoo.SHIPPED_ZOO_DIR))
    for filename in _zoo.ALLOWED_FILES:
        if not os.path.isfile(os.path.join(init_dir, filename)):
            raise FileNotFoundError(f"Cannot publish {init_dir!r}: {filename} is missing "
                                    f"(an init directory holds {', '.join(_zoo.ALLOWED_FILES)}).")
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
    problem = _zoo.non_finite_weights(model)
    if problem:
        raise _zoo.NonFiniteWeightsError(f"Cannot publish {init_dir!r}: {problem}.")
    files = {}
    for filename in _zoo.ALLOWED_FILES:
        size, sha = _zoo._file_digest(os.path.join(init_dir, filename))
        files[filename] = {"size": size, "sha256": sha}
    headline = _zoo.headline_from_metadata(metadata, config, int(model.count_params()))

    gfile = _zoo._gfile()
    index_path = _zoo._join(destination, _zoo.INDEX_FILE)
    local = _zoo._is_local(destination)
    if local:
        os.makedirs(destination, exist_ok=True)
        lock = locks.locked(index_path, _LOCK_TIMEOUT_SECONDS, what=f"zoo index {index_path}")
    else:
        lock = contextlib.nullcontext()
    with lock:
        index = _read_gfile_index(gfile, index_path)
        existing = index["entries"].get(name, {}).get("versions", {})
        if version in existing:
            raise _zoo.VersionExistsError(
                f"{name!r} version {version!r} is already published in {index_path}; "
                "published versions are immutable (existing: "
                f"{', '.join(sorted(existing, key=_zoo.version_key))}). Publish a new version.")
        version_dir = _zoo._join(destination, name, version)
        if local:
            _remove_dead_staging(gfile, destination, name, version)
        if gfile.exists(version_dir):
            raise _zoo.VersionExistsError(
                f"{version_dir!r} exists but is not in the index (left by an interrupted "
                "publish?); remove it or publish another version.")

        gfile.makedirs(_zoo._join(destination, name))
        staging = (_zoo._join(destination, name, f".{version}.tmp-{uuid.uuid4().hex[:8]}")
                   if local else version_dir)
        try:
            gfile.makedirs(staging)
            for filename, record in files.items():
                target = _zoo._join(staging, filename)
                gfile.copy(os.path.join(init_dir, filename), target, overwrite=False)
                problem = _zoo._mismatch(target, *_zoo._gfile_digest(target), record)
                if problem:
                    raise _zoo.IntegrityError(f"Copy failed verification: {problem}.")
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
            raise _zoo.VersionExistsError(
                f"{name!r} version {version!r} was published concurrently.")
        record = {"path": f"{name}/{version}/", "files": files, "headline": headline,
                  "published": _zoo._utc_now()}
        entry["versions"][version] = record
        entry["latest"] = max(entry["versions"], key=_zoo.version_key)
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
