"""Publishing an init into a zoo (local or gs://) as a new, immutable version.

Several publishers may write one local zoo at the same moment: the whole publish (the
check that the version is new, the copy, the change of index.json) holds the index's
lock (`learnit_tf.zoo.index.locked_for_update`), and index.json is re-read under it
before the new version is merged in, so no entry is lost and of two publishers of one
version exactly one wins. gs:// has no lock: the index is re-read just before it is
replaced (publish to one gs:// zoo from one process at a time).

(Named `publishing`, not `publish`: `learnit_tf.zoo.publish` is the function.)
"""

import os
import shutil
import uuid

from absl import logging

from learnit_tf.zoo import index as zoo_index
from learnit_tf.zoo import transport
from learnit_tf.zoo.client import non_finite_weights
from learnit_tf.zoo.errors import IntegrityError, NonFiniteWeightsError, VersionExistsError
from learnit_tf.zoo.headline import headline_from_metadata
from learnit_tf.core.metadata import MetadataError
from learnit_tf.zoo.names import check_name, version_key

_PUBLISH_LOCK_TIMEOUT_SECONDS = 600


def _check_destination(destination):
    """The destination as an absolute local path or a gs:// path; refuses non-directories."""
    if transport.is_url(destination):
        raise ValueError(f"Cannot publish to {destination!r}: http(s) is read-only; publish to "
                         "a local directory or gs:// and serve that directory.")
    if not transport.is_local(destination):
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


def _latest_after(entry, version, make_latest):
    """The entry's `latest` once `version` is in entry["versions"] (see `publish`)."""
    if make_latest is None:  # The rule before the option existed: the highest version.
        return max(entry["versions"], key=version_key)
    if make_latest or entry.get("latest") not in entry["versions"]:
        return version  # Asked for, or the entry's first version (a name must resolve).
    return entry["latest"]


def publish(init_dir, name, version, destination=None, description=None, make_latest=None):
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
        init_dir: local init directory (see `learnit_tf.meta.init_io.save_init`).
        name: entry name ([A-Za-z0-9_.-]).
        version: version string, e.g. "1".
        destination: zoo directory, local or `gs://…` (default: the repo's `zoo/`).
        description: one-line description of the entry (default: kept, or derived
            from the metadata).
        make_latest: which version a bare `name` loads afterwards (the entry's
            `latest`, the default of `zoo.load(name)` and `learnit-fit --init=name`).
            None (default): the highest version, as always (so a new highest version
            becomes the default); True: this version; False: the entry's `latest` is
            kept as the index has it when the version is merged in (under the lock), so
            a version for a special use (e.g. another resolution) does not silently
            change what every user of the name gets. An entry's first version is its
            latest whatever this says.

    Returns:
        The index record of the new version.

    Raises:
        VersionExistsError: the version is already published (or was, concurrently).
        ValueError: a bad name, init or destination (e.g. an existing file).
        learnit_tf.locks.SharedFileBusyError: another publish held the index's lock
            for 10 minutes.

    Example:

    >>> import tempfile
    >>> from learnit_tf.meta.init_io import save_init
    >>> from learnit_tf.models import Siren
    >>> init = save_init(Siren(width=8, depth=2, seed=0), tempfile.mkdtemp() + "/init",
    ...                  {"signal_class": "demo"})
    >>> record = publish(init, "demo", "1", tempfile.mkdtemp())
    >>> record["path"]
    'demo/1/'
    """
    from learnit_tf.meta import init_io# pylint: disable=import-outside-toplevel
    check_name(name, "name")
    check_name(str(version), "version")
    version = str(version)
    destination = _check_destination(str(destination or zoo_index.SHIPPED_ZOO_DIR))
    for filename in zoo_index.ALLOWED_FILES:
        if not os.path.isfile(os.path.join(init_dir, filename)):
            raise FileNotFoundError(
                f"Cannot publish {init_dir!r}: {filename} is missing (an init directory "
                f"holds {', '.join(zoo_index.ALLOWED_FILES)}).")
    # Validate before anything is written: the config builds, the weights load. The
    # metadata is read once, for the model (its fit recipe) and for the headline.
    config = init_io.read_config(init_dir)
    try:
        metadata = init_io.read_init_metadata(init_dir)  # Validated against the schema.
    except MetadataError as e:
        raise ValueError(f"Cannot publish {init_dir!r}: {e}") from e
    try:
        model = init_io.load_init(init_dir, metadata)
    except Exception as e:
        raise ValueError(f"Cannot publish {init_dir!r}: the init does not load ({e}).") from e
    problem = non_finite_weights(model)
    if problem:
        raise NonFiniteWeightsError(f"Cannot publish {init_dir!r}: {problem}.")
    files = {}
    for filename in zoo_index.ALLOWED_FILES:
        size, sha = transport.file_digest(os.path.join(init_dir, filename))
        files[filename] = {"size": size, "sha256": sha}
    headline = headline_from_metadata(metadata, config, int(model.count_params()))

    gfile = transport.gfile()
    index_path = transport.join(destination, zoo_index.INDEX_FILE)
    local = transport.is_local(destination)
    if local:
        os.makedirs(destination, exist_ok=True)
    with zoo_index.locked_for_update(index_path, _PUBLISH_LOCK_TIMEOUT_SECONDS):
        index = zoo_index.read_index_file(index_path)
        existing = index["entries"].get(name, {}).get("versions", {})
        if version in existing:
            raise VersionExistsError(
                f"{name!r} version {version!r} is already published in {index_path}; "
                "published versions are immutable (existing: "
                f"{', '.join(sorted(existing, key=version_key))}). Publish a new version.")
        version_dir = transport.join(destination, name, version)
        if local:
            _remove_dead_staging(gfile, destination, name, version)
        if gfile.exists(version_dir):
            raise VersionExistsError(
                f"{version_dir!r} exists but is not in the index (left by an interrupted "
                "publish?); remove it or publish another version.")

        gfile.makedirs(transport.join(destination, name))
        staging = (transport.join(destination, name, f".{version}.tmp-{uuid.uuid4().hex[:8]}")
                   if local else version_dir)
        try:
            gfile.makedirs(staging)
            for filename, record in files.items():
                target = transport.join(staging, filename)
                gfile.copy(os.path.join(init_dir, filename), target, overwrite=False)
                problem = transport.mismatch(target, *transport.gfile_digest(target), record)
                if problem:
                    raise IntegrityError(f"Copy failed verification: {problem}.")
            if staging != version_dir:
                gfile.rename(staging, version_dir, overwrite=False)
        except BaseException:
            if gfile.exists(staging):
                gfile.rmtree(staging)
            raise

        # Commit: re-read the index (under the lock on a local zoo) and merge into it.
        index = zoo_index.read_index_file(index_path)
        entry = index["entries"].setdefault(name, {"versions": {}})
        if version in entry["versions"]:  # Only possible on gs:// (no lock).
            raise VersionExistsError(
                f"{name!r} version {version!r} was published concurrently.")
        record = {"path": f"{name}/{version}/", "files": files, "headline": headline,
                  "published": zoo_index.utc_now()}
        entry["versions"][version] = record
        previous = entry.get("latest")
        entry["latest"] = _latest_after(entry, version, make_latest)
        if previous is not None and entry["latest"] != previous and make_latest is None:
            logging.warning("%s: latest (what a bare %r loads) is now version %s, was %s "
                            "(make_latest=False keeps it).", name, name, entry["latest"],
                            previous)
        if description is not None:
            entry["description"] = description
        elif not entry.get("description"):
            entry["description"] = metadata.extra.get("description") or " ".join(
                str(x) for x in (headline.get("signal_class"), headline.get("model_class"),
                                 "init", f"({headline['algorithm']})" if "algorithm" in headline
                                 else None) if x)
        try:
            zoo_index.replace_index_file(index_path, index)
        except BaseException:
            # The version folder without its index record would block a retry.
            if local:
                shutil.rmtree(version_dir, ignore_errors=True)
            raise
    logging.info("Published %s version %s to %s", name, version, version_dir)
    return record
