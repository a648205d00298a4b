r"""The single-view protocol table: meta-learned vs standard init on held-out views.

PAPER.md, "View synthesis": fit each test object on ONE view (Phototourism: the left
half of a photo) from the meta-learned init (SGD, lr 0.5, 64 rays a step) and from a
standard init (Adam), and report PSNR on the held-out views (right half) after a
number of test-time steps (paper: 1000).

    python scripts/evaluate_nerf.py --init_dir=/tmp/learnit/nerf_cpu/init \
        --dataset=procedural_objects --config=small --num_examples=10 \
        --steps=0,10,100,1000 --out_dir=docs/nerf_procedural

Writes OUT_DIR/single_view_table.csv (mean/std per init and step),
OUT_DIR/single_view_rows.csv (per object) and OUT_DIR/single_view.png.
"""

import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from absl import app, flags, logging  # noqa: E402

FLAGS = flags.FLAGS
flags.DEFINE_string("init_dir", None, "Meta-learned init directory (config.json, weights).")
flags.DEFINE_enum("dataset", "procedural_objects", ["procedural_objects", "shapenet",
                                                    "phototourism"], "Signal class.")
flags.DEFINE_string("config", "small", "procedural_objects config (tiny, small, paper).")
flags.DEFINE_string("class_name", "chairs", "ShapeNet class (chairs, cars, lamps).")
flags.DEFINE_string("landmark", "sacre", "Phototourism landmark.")
flags.DEFINE_string("manual_dir", None, "Manual download directory (shapenet, phototourism).")
flags.DEFINE_string("data_dir", None, "TFDS data directory.")
flags.DEFINE_string("split", "test", "Split to evaluate.")
flags.DEFINE_integer("num_examples", 10, "Objects (photos) to evaluate.")
flags.DEFINE_list("steps", ["0", "10", "100", "1000"],
                  "Test-time step counts at which held-out PSNR is measured (paper: 1000).")
flags.DEFINE_integer("rays_per_step", 64, "Random rays per test-time step (paper: 64).")
flags.DEFINE_integer("num_samples", None, "Samples per ray (default: the init's task).")
flags.DEFINE_enum("meta_optimizer", "sgd", ["sgd", "adam"], "Optimizer from the meta init.")
flags.DEFINE_float("meta_learning_rate", 0.5, "Step size from the meta init (paper: 0.5).")
flags.DEFINE_enum("standard_optimizer", "adam", ["sgd", "adam"],
                  "Optimizer from the standard init (paper: standard inits need Adam).")
flags.DEFINE_float("standard_learning_rate", 5e-4, "Step size from the standard init.")
flags.DEFINE_integer("standard_seed", 1,
                     "First seed tried for the standard init (seeds whose ReLU density is zero "
                     "everywhere on the first object's rays are skipped; see the table).")
flags.DEFINE_integer("single_view", None, "Support view index (default: one per object).")
flags.DEFINE_integer("num_held_out_views", None, "Use only the first k held-out views.")
flags.DEFINE_integer("downsample", 1, "Phototourism: keep every k-th pixel.")
flags.DEFINE_integer("chunk", 4096, "Rays per rendering call.")
flags.DEFINE_integer("seed", 0, "Seed of the test-time ray batches.")
flags.DEFINE_string("out_dir", None, "Output directory.")
flags.mark_flags_as_required(["init_dir", "out_dir"])


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
    import tensorflow_datasets as tfds  # pylint: disable=import-outside-toplevel

    from learnit_tf.meta import InnerOptimizer  # pylint: disable=import-outside-toplevel
    from learnit_tf.nerf import evaluation  # pylint: disable=import-outside-toplevel

    tfds.disable_progress_bar()
    logging.set_verbosity(logging.WARNING)  # TFDS logs every dataset it opens at INFO.
    try:
        steps = [int(s) for s in FLAGS.steps]
    except ValueError as e:
        raise app.UsageError(f"--steps must be integers, got {FLAGS.steps}.") from e
    summary = evaluation.single_view_protocol(
        FLAGS.init_dir, FLAGS.out_dir, dataset=FLAGS.dataset, split=FLAGS.split,
        num_examples=FLAGS.num_examples, steps=steps, rays_per_step=FLAGS.rays_per_step,
        num_samples=FLAGS.num_samples,
        meta_optimizer=InnerOptimizer(FLAGS.meta_optimizer, FLAGS.meta_learning_rate),
        standard_optimizer=InnerOptimizer(FLAGS.standard_optimizer,
                                          FLAGS.standard_learning_rate),
        standard_seed=FLAGS.standard_seed, seed=FLAGS.seed, chunk=FLAGS.chunk,
        config=FLAGS.config, class_name=FLAGS.class_name, manual_dir=FLAGS.manual_dir,
        landmark=FLAGS.landmark, data_dir=FLAGS.data_dir, single_view=FLAGS.single_view,
        num_held_out_views=FLAGS.num_held_out_views, downsample=FLAGS.downsample)
    print()
    print(evaluation.format_table(summary))
    print(f"Wrote {FLAGS.out_dir}/single_view_table.csv, single_view_rows.csv, single_view.png")
    return 0


if __name__ == "__main__":
    sys.exit(app.run(main))
