"""Shared pieces of the procedurally generated TFDS datasets (no downloads).

Every offline signal class (text_images, sdf_2d, shepp_logan, procedural_objects) is
generated on this machine the first time it is asked for; `prepare_procedural_builder`
is the one place that does it, so all of them validate their config name the same
way and never look for a hosted copy.
"""

import contextlib
import io

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
    builder = builder_cls(config=config, data_dir=data_dir)
    if builder.is_prepared():
        return builder
    # TFDS prints "Downloading and preparing dataset Unknown size ..." to stdout, which
    # is wrong for a class generated offline; say what happens instead (its progress
    # bar, on stderr, stays).
    print(f"Generating {builder.name}/{builder.builder_config.name} offline into "
          f"{builder.data_dir} (first use only).", flush=True)
    with contextlib.redirect_stdout(io.StringIO()):
        builder.download_and_prepare(download_config=tfds.download.DownloadConfig(
            download_mode=tfds.download.GenerateMode.REUSE_DATASET_IF_EXISTS,
            try_download_gcs=False,  # Never look for a hosted copy: generation is local.
            compute_stats=tfds.download.ComputeStatsMode.SKIP))
    return builder
