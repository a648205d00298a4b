"""Shared pieces of the absl scripts: resolving an init, common flags, progress."""

import os

import keras

from learnit_tf import init_io


def resolve_init(init):
    """(model, metadata, directory or None) for an init directory or a zoo name[@version]."""
    if os.path.isdir(init):
        return init_io.load_init(init), init_io.read_metadata(init), init
    if os.path.sep in init or init.startswith("."):
        raise ValueError(f"--init={init!r} is not an init directory (expected a directory with "
                         f"{', '.join(init_io.INIT_FILES)}, or a zoo name).")
    from learnit_tf import zoo  # pylint: disable=import-outside-toplevel
    return zoo.load(init), zoo.describe(init), None


class StepProgress:
    """A Keras progress bar (with ETA) over a known total number of optimization steps."""

    def __init__(self, total_steps, verbose=1):
        self.bar = keras.utils.Progbar(max(1, int(total_steps)), verbose=verbose,
                                       unit_name="step")
        self.done = 0

    def add(self, steps, **values):
        self.done += int(steps)
        self.bar.update(self.done, values=list(values.items()) or None)


def define_nerf_data_flags(downsample_default, split_help):
    """Defines the flags that say which NeRF data to use (scripts/evaluate_nerf.py, render.py).

    Args:
        downsample_default: default of --downsample (Phototourism pixel stride).
        split_help: help text of --split in the calling script.
    """
    from absl import flags  # pylint: disable=import-outside-toplevel
    flags.DEFINE_string("init_dir", None, "Init directory (config.json, weights, metadata).")
    flags.DEFINE_enum("dataset", "procedural_objects",
                      ["procedural_objects", "shapenet", "phototourism"], "Signal class.")
    flags.DEFINE_string("config", "small", "procedural_objects config (tiny, small, paper).")
    flags.DEFINE_string("class_name", "chairs", "ShapeNet class (chairs, cars, lamps).")
    flags.DEFINE_string("landmark", "sacre", "Phototourism landmark.")
    flags.DEFINE_string("manual_dir", None,
                        "Manual download directory (shapenet, phototourism).")
    flags.DEFINE_string("data_dir", None, "TFDS data directory.")
    flags.DEFINE_string("split", "test", split_help)
    flags.DEFINE_integer("single_view", None, "Support view index (default: one per object).")
    flags.DEFINE_integer("rays_per_step", 64, "Random rays per test-time step (paper: 64).")
    flags.DEFINE_integer("num_samples", None, "Samples per ray (default: the init's task).")
    flags.DEFINE_integer("downsample", downsample_default, "Phototourism: keep every k-th pixel.")
    flags.DEFINE_integer("chunk", 4096, "Rays per rendering call.")
    flags.DEFINE_integer("seed", 0, "Seed of the test-time ray batches.")
    flags.DEFINE_string("out_dir", None, "Output directory.")
    flags.mark_flags_as_required(["init_dir", "out_dir"])
