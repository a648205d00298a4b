"""Shared pieces of the procedurally generated TFDS datasets (no downloads).

Every offline signal class (text_images, sdf_2d, shepp_logan, procedural_objects) is
generated on this machine the first time it is asked for; `prepare_procedural_builder`
is the one place that does it, so all of them validate their config name the same
way and never look for a hosted copy.

Several processes (the workers of a multi-worker run, parallel tests) may ask for the
same dataset in an empty data_dir at once. TFDS alone does not allow that: each
generates into its own temporary directory and all but the first fail to rename it
into place (`FileExistsError`). So generation holds an exclusive lock file next to
the dataset's directory (`fcntl.flock`: released by the kernel if the holder dies,
and it also excludes threads, each of which opens the file anew): the first caller
generates, the others wait and then read its result. Object-store data dirs (gs://)
have no such lock; there a caller that loses the rename reads the winner's copy.
"""

import contextlib
import fcntl
import io
import logging
import os

import tensorflow_datasets as tfds

#: Where the method comes from; shown in every builder's DatasetInfo.
PAPER_HOMEPAGE = "https://github.com/tancik/learnit"
PAPER_CITATION = ("Tancik et al., Learned Initializations for Optimizing Coordinate-Based "
                  "Neural Representations, CVPR 2021.")


def prepare_procedural_builder(builder_cls, config, data_dir=None):
    """Instantiates a procedural TFDS builder and generates it locally if needed.

    Args:
        builder_cls: a `tfds.core.GeneratorBasedBuilder` subclass.
        config: a config name from `builder_cls.BUILDER_CONFIGS` or a config object.
        data_dir: TFDS data directory (default: TFDS's).

    Raises:
        ValueError: `config` names no config of the builder.
    """
    names = [c.name for c in builder_cls.BUILDER_CONFIGS]
    if isinstance(config, str) and config not in names:
        raise ValueError(f"Unknown {builder_cls.name} config {config!r}; expected one of "
                         f"{names} (or a config object).")
    with _quiet_tfds():
        return _prepare(builder_cls, config, data_dir)


class _NoMissingInfoWarning(logging.Filter):
    """TFDS warns "Variant folder ... has no dataset_info.json" for every builder made
    before its first generation: expected here, and printed twice per first use."""

    def filter(self, record):
        return "has no dataset_info.json" not in record.getMessage()


@contextlib.contextmanager
def _quiet_tfds():
    """No missing-info warnings and no TFDS progress bars (a local builder takes seconds
    and its own one-line message says what happens)."""
    from absl import logging as absl_logging  # pylint: disable=import-outside-toplevel
    from tensorflow_datasets.core.utils import tqdm_utils  # pylint: disable=import-outside-toplevel
    quiet = _NoMissingInfoWarning()
    logger = absl_logging.get_absl_logger()
    logger.addFilter(quiet)
    shown = tqdm_utils._active  # pylint: disable=protected-access  # no public getter
    tfds.display_progress_bar(False)
    try:
        yield
    finally:
        tfds.display_progress_bar(shown)
        logger.removeFilter(quiet)


def _prepare(builder_cls, config, data_dir):
    builder = builder_cls(config=config, data_dir=data_dir)
    if builder.is_prepared():
        return builder
    with _generation_lock(builder):
        # A new builder: one made before another process finished generating does not
        # read the splits that process wrote.
        builder = builder_cls(config=config, data_dir=data_dir)
        if builder.is_prepared():
            return builder
        # TFDS prints "Downloading and preparing dataset Unknown size ..." to stdout,
        # which is wrong for a class generated offline; say what happens instead (its
        # progress bar, on stderr, stays). The redirection is process-wide, so it too
        # must not overlap another thread's.
        print(f"Generating {builder.name}/{builder.builder_config.name} offline into "
              f"{builder.data_dir} (first use only).", flush=True)
        try:
            with contextlib.redirect_stdout(io.StringIO()):
                builder.download_and_prepare(download_config=tfds.download.DownloadConfig(
                    download_mode=tfds.download.GenerateMode.REUSE_DATASET_IF_EXISTS,
                    try_download_gcs=False,  # Never look for a hosted copy: it is local.
                    compute_stats=tfds.download.ComputeStatsMode.SKIP))
        except FileExistsError:  # Unlocked (object store): another writer renamed first.
            builder = builder_cls(config=config, data_dir=data_dir)
            if not builder.is_prepared():
                raise
    return builder


@contextlib.contextmanager
def _generation_lock(builder):
    """Holds an exclusive lock on `.<version>.lock` beside the builder's version directory
    (local data dirs only; a no-op on object stores)."""
    version_dir = builder.data_dir
    if "://" in str(version_dir):
        yield
        return
    parent, version = os.path.split(os.path.normpath(version_dir))
    os.makedirs(parent, exist_ok=True)
    with open(os.path.join(parent, f".{version}.lock"), "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # Blocks while another caller generates.
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
