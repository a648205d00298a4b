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

from learnit_tf import cli  # noqa: E402

FLAGS = flags.FLAGS
cli.define_nerf_data_flags(downsample_default=1, split_help="Split to evaluate.")
flags.DEFINE_integer("num_examples", 10, "Objects (photos) to evaluate.")
flags.DEFINE_list("steps", ["0", "10", "100", "1000"],
                  "Test-time step counts at which held-out PSNR is measured (paper: 1000).")
flags.DEFINE_enum("meta_optimizer", "sgd", ["sgd", "adam"], "Optimizer from the meta init.")
flags.DEFINE_float("meta_learning_rate", 0.5, "Step size from the meta init (paper: 0.5).")
flags.DEFINE_enum("standard_optimizer", "adam", ["sgd", "adam"],
                  "Optimizer from the standard init (paper: standard inits need Adam).")
flags.DEFINE_float("standard_learning_rate", 5e-4, "Step size from the standard init.")
flags.DEFINE_integer("standard_seed", 1,
                     "First seed tried for the standard init (seeds whose ReLU density is zero "
                     "everywhere on the first object's rays are skipped; see the table).")
flags.DEFINE_integer("num_held_out_views", None, "Use only the first k held-out views.")


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
    import tensorflow_datasets as tfds  # pylint: disable=import-outside-toplevel

    from learnit_tf.meta import InnerOptimizer  # pylint: disable=import-outside-toplevel
    from learnit_tf.kinds.nerf import evaluation  # pylint: disable=import-outside-toplevel

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
