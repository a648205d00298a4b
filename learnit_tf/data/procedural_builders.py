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

`ProceduralBuilder` and `ProceduralConfig` are the builders' shared boilerplate: version,
`_info` and, for classes drawn from (seed, split, index), the split generators; a kind's
builder supplies only its features and its example generator, its config only its own
fields and each split's size.
"""

import contextlib
import dataclasses
import fcntl
import io
import logging
import os
import re
import sys
from typing import Optional, Tuple

import tensorflow_datasets as tfds

#: Where the method comes from; shown in every builder's DatasetInfo.
PAPER_HOMEPAGE = "https://github.com/tancik/learnit"
PAPER_CITATION = ("Tancik et al., Learned Initializations for Optimizing Coordinate-Based "
                  "Neural Representations, CVPR 2021.")
#: The splits of every procedural class, in order; a split's index seeds its examples.
SPLIT_NAMES = ("train", "validation", "test")


@dataclasses.dataclass
class ProceduralConfig(tfds.core.BuilderConfig):
    """A config of a class drawn from (seed, split, index): split sizes and seed.

    The sizes are keyword-only and required: a config says how many signals it holds.
    A kind's config subclasses this one with its own fields (resolution, ...).
    `splits` (None: all) restricts what is generated to some splits (`split_names_in`).
    """

    num_train: int = dataclasses.field(kw_only=True)
    num_validation: int = dataclasses.field(kw_only=True)
    num_test: int = dataclasses.field(kw_only=True)
    seed: int = dataclasses.field(default=0, kw_only=True)
    splits: Optional[Tuple[str, ...]] = dataclasses.field(default=None, kw_only=True)

    def split_sizes(self):
        """{split name: number of examples} of the splits generated, in `SPLIT_NAMES` order."""
        sizes = {"train": self.num_train, "validation": self.num_validation,
                 "test": self.num_test}
        return {s: n for s, n in sizes.items() if self.splits is None or s in self.splits}


def split_names_in(split):
    """The splits (in `SPLIT_NAMES` order) a TFDS split string reads: "test[:3]" ->
    ("test",), "train+validation[:10%]" -> ("train", "validation"); None if it names
    another split or is not a plain string.

    A split's examples and their order do not depend on the other splits (each is drawn
    from (seed, split, index), and TFDS orders a split by its keys hashed with the split's
    name), so a config generating only these splits reads exactly what the full one does.
    """
    if not isinstance(split, str):
        return None
    names = {re.sub(r"\[.*\]$", "", part.strip()) for part in split.split("+")}
    if not names or not names <= set(SPLIT_NAMES):
        return None
    return tuple(s for s in SPLIT_NAMES if s in names)


class ProceduralBuilder(tfds.core.GeneratorBasedBuilder, skip_registration=True):
    """A TFDS builder generated on this machine (see `prepare_procedural_builder`).

    A subclass gives `BUILDER_CONFIGS`, `_features` and either `_example` (classes of
    `ProceduralConfig`s: example `index` of `split` is `_example(split, index)`, under the
    key `_example_key(split, index)`, drawn from `example_seed(split, index)`) or its own
    `_split_generators` and `_generate_examples` (e.g. a class read from local files).
    `_info` describes the class with the builder's module docstring (`_description`),
    `HOMEPAGE`, `CITATION` and `_metadata`.
    """

    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {"1.0.0": "Initial release."}
    HOMEPAGE = PAPER_HOMEPAGE
    CITATION = PAPER_CITATION

    def _features(self):
        """{feature name: TFDS feature} of an example, for `self.builder_config`."""
        raise NotImplementedError(f"{type(self).__name__} declares no features.")

    def _description(self):
        return sys.modules[type(self).__module__].__doc__

    def _metadata(self):
        """The dataset's `tfds.core.MetadataDict`, or None."""
        return None

    def _info(self):
        return self.dataset_info_from_configs(
            description=self._description(),
            features=tfds.features.FeaturesDict(self._features()),
            supervised_keys=None,
            homepage=self.HOMEPAGE,
            citation=self.CITATION,
            metadata=self._metadata(),
        )

    def _split_generators(self, dl_manager):
        del dl_manager  # Nothing to download: the class is procedural.
        return {split: self._generate_examples(split)
                for split in self.builder_config.split_sizes()}

    def _generate_examples(self, split):
        for index in range(self.builder_config.split_sizes()[split]):
            yield self._example_key(split, index), self._example(split, index)

    def example_seed(self, split, index):
        """(config seed, split index, example index): what example `index` is drawn from,
        so a split never depends on generation order and splits never share a stream."""
        return (self.builder_config.seed, SPLIT_NAMES.index(split), index)

    def _example_key(self, split, index):
        del split  # Keys are unique within a split.
        return index

    def _example(self, split, index):
        """The features of example `index` of `split` (see `example_seed`)."""
        raise NotImplementedError(f"{type(self).__name__} generates no examples by index.")


def prepare_procedural_builder(builder_cls, config, data_dir=None, split=None):
    """Instantiates a procedural TFDS builder and generates it locally if needed.

    Args:
        builder_cls: a `tfds.core.GeneratorBasedBuilder` subclass.
        config: a config name from `builder_cls.BUILDER_CONFIGS` or a config object.
        data_dir: TFDS data directory (default: TFDS's).
        split: the TFDS split string the caller will read (e.g. "test[:3]"), or None.
            If `config` is not generated in `data_dir` yet, only the splits it names
            are (`config_for_splits`): fitting one held-out signal does not first
            generate the whole training split. A config generated in full is read.

    Raises:
        ValueError: `config` names no config of the builder.
    """
    names = [c.name for c in builder_cls.BUILDER_CONFIGS]
    if isinstance(config, str) and config not in names:
        raise ValueError(f"Unknown {builder_cls.name} config {config!r}; expected one of "
                         f"{names} (or a config object).")
    with _quiet_tfds():
        return _prepare(builder_cls, config_to_generate(builder_cls, config, data_dir, split),
                        data_dir)


def config_to_generate(builder_cls, config, data_dir=None, split=None):
    """The config `prepare_procedural_builder` reads or generates for `config` and the
    split string `split`: `config` itself if `data_dir` holds it (or `split` restricts
    nothing), else its copy generating only those splits (`config_for_splits`)."""
    if split is not None:
        only = config_for_splits(builder_cls, config, split)
        if only is not None:
            with _quiet_tfds():
                if not builder_cls(config=config, data_dir=data_dir).is_prepared():
                    return only
    return config


def config_for_splits(builder_cls, config, split):
    """A copy of `config` (a name or `ProceduralConfig` of `builder_cls`) that generates
    only the splits the TFDS split string `split` reads, named `<config>_<split>...` so
    that TFDS stores it beside the full one; None where that does not apply (a config
    without `splits`, one already restricted, or a split string naming all splits or
    others). Its examples are the full config's, in the same order (`split_names_in`).
    """
    base = config
    if isinstance(config, str):
        base = next((c for c in builder_cls.BUILDER_CONFIGS if c.name == config), None)
    if base is None or not hasattr(base, "splits") or base.splits is not None:
        return None
    splits = split_names_in(split)
    if not splits or splits == SPLIT_NAMES:
        return None
    return dataclasses.replace(base, name=base.name + "".join(f"_{s}" for s in splits),
                               splits=splits)


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
