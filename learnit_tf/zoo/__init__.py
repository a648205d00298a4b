"""The learnit_tf model zoo: named, versioned, hash-verified meta-learned inits.

A zoo is a directory (local, `gs://…` or served over http(s)) holding an
`index.json` and one init directory per published version
(`<name>/<version>/{config.json, metadata.json, model.weights.h5}`, see
`learnit_tf.meta.init_io`). The index records the size and sha256 of every file, in the
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
   `learnit_tf.zoo.transport`.

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

The package's modules: `names` (entry names and versions), `errors`, `transport`
(downloads, hashes, paths), `index` (the index schema, where it is, its locked
read-merge-replace), `client` (`Zoo`: listing, verified downloads, cache pins,
loading), `publishing`, `headline` (the one `headline_from_metadata`), `table`,
`metadata` (the `InitMetadata` schema, read once), `init_io` (init directories),
`resolution`, `shipped`, `card` and `site`. This `__init__` re-exports the public API.
"""

from learnit_tf.zoo import transport  # noqa: F401
from learnit_tf.core import shipped  # noqa: F401
from learnit_tf.zoo.errors import (  # noqa: F401  (public names of learnit_tf.zoo)
    ZooError, UnknownEntryError, IntegrityError, UnsafePathError,
    IndexFormatError, VersionExistsError, DownloadTimeoutError,
    PinnedVersionChangedError, NonFiniteWeightsError)
from learnit_tf.zoo.names import check_name, split_name, version_key  # noqa: F401
from learnit_tf.zoo.index import (  # noqa: F401
    ALLOWED_FILES, CONFIG_FILE, DEFAULT_CACHE_DIR, ENV_CACHE, ENV_INDEX, INDEX_FILE,
    INDEX_FORMAT_VERSION, METADATA_FILE, REQUIRED_FILES, SHIPPED_ZOO_DIR, WEIGHTS_FILE,
    empty_index)
from learnit_tf.zoo.client import PINS_DIR, Zoo, non_finite_weights  # noqa: F401
from learnit_tf.zoo.headline import headline_from_metadata  # noqa: F401
from learnit_tf.zoo.publishing import publish  # noqa: F401
from learnit_tf.zoo.table import (  # noqa: F401
    TABLE_COLUMNS, format_table, headline_psnr, table_rows)

# Older private names that tests and tools reach for.
_source_key = transport.source_key
_lock_part = transport.lock_part
remove_stale_parts = transport.remove_stale_parts
from learnit_tf.zoo.index import validate_index as _validate_index  # noqa: E402,F401


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
        resolution: the grid side R you will fit at (inits whose kind fits at a
            resolution, e.g. images). A bare name loads the version best (2-step PSNR) evaluated
            at R; a `ResolutionWarning` with the measured numbers says when the
            loaded init was not (`learnit_tf.zoo.resolution`).

    Example:

    >>> # model = load("text_siren")
    >>> # fit(model, task, example, steps=2, optimizer=InnerOptimizer("sgd", 1e-2))
    """
    zoo_obj = Zoo(index, cache_dir, base_url)
    if resolution is not None:
        # pylint: disable-next=import-outside-toplevel
        from learnit_tf.zoo import resolution as zoo_resolution
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
