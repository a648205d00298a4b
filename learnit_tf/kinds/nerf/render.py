r"""Renders a NeRF init (optionally fitted to one view of an object) along a camera path.

Objects (procedural_objects, shapenet): a turntable around the object, after fitting
the init for --fit_steps on ONE view of object --index (0 steps renders the init as
it is, i.e. the class prior):

    python scripts/render.py --init=/tmp/learnit/procedural_objects_reptile_cpu/init \
        --dataset=procedural_objects --config=small --index=0 --fit_steps=100 --scale=4 \
        --output_dir=docs/nerf_procedural/turntable

writes turntable.gif, turntable_depth.gif, stills (frame_*.png, contact_sheet.png) and
the fitted view (input_view.png).

Phototourism appearance interpolation (PAPER.md): fit the init to photos A and B
(all pixels, --fit_steps each), then move the camera from A's pose to B's while
blending the two weight sets linearly:

    python scripts/render.py --init=... --dataset=phototourism --landmark=sacre \
        --manual_dir=/data/phototourism --appearance_indices=3,7 --fit_steps=64 \
        --optimizer=sgd --learning_rate=1 --downsample=4 --output_dir=/tmp/appearance

writes appearance.gif and appearance_*.png stills.

An OUTPUT_DIR that already holds files is refused unless --overwrite, which replaces only
the render's files (others are kept); the folder is checked and locked before anything is
rendered (`learnit_tf.core.output_dir`).
"""

import sys

from absl import app, flags

from learnit_tf.core import cli as core_cli  # noqa: E402

from learnit_tf.core import cli  # noqa: E402
from learnit_tf.core.output_dir import OutputDir, OutputDirError, define_overwrite_flag  # noqa: E402

FLAGS = flags.FLAGS
# --verbose and usage errors printed alone, as every learnit command (a kind's command
# uses core, not learnit_tf.commands).
cli.install_command_behaviour()
core_cli.define_string_flag("init", None, "Init directory or zoo name[@version] of a NeRF init.")
flags.DEFINE_enum("dataset", "procedural_objects",
                  ["procedural_objects", "shapenet", "phototourism"], "Signal class.")
flags.DEFINE_string("config", "small", "procedural_objects config (tiny, small, paper).")
flags.DEFINE_string("class_name", "chairs", "ShapeNet class (chairs, cars, lamps).")
flags.DEFINE_string("landmark", "sacre", "Phototourism landmark.")
flags.DEFINE_string("manual_dir", None, "Manual download directory (shapenet, phototourism).")
flags.DEFINE_string("data_dir", None, "TFDS data directory.")
flags.DEFINE_string("split", "test", "Split of the object to fit.")
flags.DEFINE_integer("single_view", None, "Support view index (default: one per object).")
flags.DEFINE_integer("rays_per_step", 64, "Random rays per test-time step (paper: 64).")
flags.DEFINE_integer("num_samples", None, "Samples per ray (default: the init's task).")
flags.DEFINE_integer("downsample", 4, "Phototourism: keep every k-th pixel.")
flags.DEFINE_integer("chunk", 4096, "Rays per rendering call.")
flags.DEFINE_integer("seed", 0, "Seed of the test-time ray batches.")
core_cli.define_string_flag("output_dir", None, "Output directory (an existing folder holding files "
                    "needs --overwrite).")
define_overwrite_flag()
flags.DEFINE_integer("index", 0, "Object index within the split.")
flags.DEFINE_integer("fit_steps", 0, "Test-time steps before rendering (0: the init as is).")
flags.DEFINE_enum("optimizer", "sgd", ["sgd", "adam"], "Test-time optimizer.")
flags.DEFINE_float("learning_rate", 0.5, "Test-time step size (paper, meta init: SGD 0.5).")
flags.DEFINE_integer("frames", 36, "Frames along the path.")
flags.DEFINE_integer("resolution", None, "Turntable resolution (default: the dataset's).")
flags.DEFINE_float("elevation", None, "Turntable elevation in degrees (default: the views').")
flags.DEFINE_float("radius", None, "Turntable radius (default: the views').")
flags.DEFINE_integer("fps", 12, "GIF frames per second.")
flags.DEFINE_integer("scale", 1, "Integer upscaling of the GIF/PNG pixels.")
flags.DEFINE_list("appearance_indices", [], "Phototourism: two image indices A,B.")


def main(argv):
    cli.configure_logging()
    cli.require_flags("init", "output_dir")
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
    out = OutputDir(FLAGS.output_dir, FLAGS.overwrite, owned=OUTPUTS)
    try:
        out.open()  # Before any work: a folder that cannot be written fails at once.
    except OutputDirError as e:
        print(f"Error: {e}", file=sys.stderr)
        return 2
    with out:
        return _render(out)


# What a render writes (an earlier render's copy that this one does not write is removed).
OUTPUTS = ("turntable.gif", "turntable_depth.gif", "frame_[0-9][0-9][0-9].png",
           "contact_sheet.png", "input_view.png", "appearance.gif",
           "appearance_[0-9][0-9][0-9].png")


def _render(out):
    import tensorflow_datasets as tfds  # pylint: disable=import-outside-toplevel

    from learnit_tf.meta import InnerOptimizer  # pylint: disable=import-outside-toplevel
    from learnit_tf.kinds.nerf import video  # pylint: disable=import-outside-toplevel

    tfds.disable_progress_bar()
    try:
        init_dir, _ = cli.resolve_init_directory(FLAGS.init)  # verified; loaded once, below
    except ValueError as e:  # The message alone (a bad --init), as the other commands do.
        print(f"Error: {e}", file=sys.stderr)
        return 2
    optimizer = InnerOptimizer(FLAGS.optimizer, FLAGS.learning_rate)
    common = dict(fit_steps=FLAGS.fit_steps, optimizer=optimizer,
                  rays_per_step=FLAGS.rays_per_step, num_samples=FLAGS.num_samples,
                  frames=FLAGS.frames, fps=FLAGS.fps, scale=FLAGS.scale, chunk=FLAGS.chunk,
                  seed=FLAGS.seed, manual_dir=FLAGS.manual_dir, data_dir=FLAGS.data_dir)
    if FLAGS.dataset == "phototourism":
        if len(FLAGS.appearance_indices) != 2:
            raise app.UsageError("--dataset=phototourism renders an appearance interpolation: "
                                 "pass --appearance_indices=A,B (two image indices).")
        staging = out.staging()
        video.render_appearance_interpolation(
            init_dir, staging, [int(i) for i in FLAGS.appearance_indices],
            landmark=FLAGS.landmark, downsample=FLAGS.downsample, **common)
        out.commit(staging)
        print(f"Wrote {FLAGS.output_dir}/appearance.gif and appearance_*.png")
    else:
        if FLAGS.appearance_indices:
            raise app.UsageError("--appearance_indices is for --dataset=phototourism.")
        staging = out.staging()
        video.render_object_turntable(
            init_dir, staging, dataset=FLAGS.dataset, split=FLAGS.split,
            index=FLAGS.index, single_view=FLAGS.single_view, resolution=FLAGS.resolution,
            elevation=FLAGS.elevation, radius=FLAGS.radius, config=FLAGS.config,
            class_name=FLAGS.class_name, **common)
        out.commit(staging)
        print(f"Wrote {FLAGS.output_dir}/turntable.gif, turntable_depth.gif, frame_*.png, "
              "contact_sheet.png, input_view.png")
    return 0


def run():
    """Console entry point (same flags as scripts/render.py)."""
    sys.exit(app.run(main))


if __name__ == "__main__":
    run()
