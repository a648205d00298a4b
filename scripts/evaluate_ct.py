r"""The paper's CT views table for an init: PSNR vs number of views, meta vs standard init.

    python scripts/evaluate_ct.py --init=/tmp/learnit/ct_cpu/init \
        --output_dir=/tmp/learnit/ct_cpu/views --config=small --num_examples=8 \
        --steps=500 --views=1,2,4,8,16

Fits held-out `shepp_logan` phantoms observed from V evenly spaced views in [0, π),
from the init (SGD at --meta_learning_rate, the authors' test-time optimizer) and
from a standard init of the same architecture (Adam), and writes to OUTPUT_DIR:
views.csv (init, views, steps, psnr_mean, psnr_std, num_examples), views.json
(rows, the paper's claim "meta with N views >= standard with 2N views" per N,
settings), psnr_vs_views.png and reconstructions.png.
"""

import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from absl import app, flags  # noqa: E402

FLAGS = flags.FLAGS
flags.DEFINE_string("init", None, "Init directory (or zoo name) of a CT init.")
flags.DEFINE_string("output_dir", None, "Where views.csv, views.json and the PNGs go.")
flags.DEFINE_string("config", "small", "shepp_logan config: small (64×64) or paper (256×256).")
flags.DEFINE_string("split", "test", "Held-out split.")
flags.DEFINE_string("data_dir", None, "TFDS data_dir (default: TFDS's).")
flags.DEFINE_integer("num_examples", 8, "Held-out phantoms to average over.")
flags.DEFINE_integer("steps", 1000, "Test-time steps for both inits (authors' notebook: 1000).")
flags.DEFINE_integer("standard_steps", None, "Steps for the standard init (default: --steps).")
flags.DEFINE_list("views", ["1", "2", "4", "8", "16"], "Numbers of evenly spaced views.")
flags.DEFINE_float("meta_learning_rate", None,
                   "SGD learning rate from the init (default: the init's inner learning rate "
                   "from its metadata, else 10, the paper's CT value).")
flags.DEFINE_enum("standard_optimizer", "adam", ["adam", "sgd"], "Optimizer of the standard init.")
flags.DEFINE_float("standard_learning_rate", 1e-3, "Learning rate of the standard init.")
flags.DEFINE_integer("standard_seed", 1, "Seed of the standard init.")
flags.DEFINE_enum("interpolation", None, ["bilinear", "nearest"],
                  "Projector interpolation (default: the init's task config, else bilinear).")
flags.DEFINE_integer("num_reconstructions", 1, "Phantoms whose reconstructions are kept.")
flags.mark_flags_as_required(["init", "output_dir"])


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
    # pylint: disable=import-outside-toplevel
    from learnit_tf import cli, init_io
    from learnit_tf.kinds.ct import evaluation as eval_ct
    from learnit_tf.kinds.ct.shepp_logan import shepp_logan_examples
    from learnit_tf.meta import InnerOptimizer

    try:
        views = [int(v) for v in FLAGS.views]
    except ValueError as e:
        raise app.UsageError(f"--views must be comma-separated integers, got {FLAGS.views}.") from e
    if FLAGS.num_examples < 1:
        raise app.UsageError(f"--num_examples must be >= 1, got {FLAGS.num_examples}.")
    try:
        model, metadata, _ = cli.resolve_init(FLAGS.init)
        examples = list(shepp_logan_examples(FLAGS.split, FLAGS.config, FLAGS.data_dir)
                        .take(FLAGS.num_examples).as_numpy_iterator())
    except (ValueError, FileNotFoundError, LookupError) as e:
        raise app.UsageError(str(e)) from e
    if len(examples) < FLAGS.num_examples:
        raise app.UsageError(f"--num_examples={FLAGS.num_examples} but split {FLAGS.split!r} "
                             f"holds {len(examples)} phantoms.")
    hyper = metadata.get("hyperparameters", {})
    task_config = metadata.get("task", {}).get("config", {})
    meta_lr = FLAGS.meta_learning_rate or float(hyper.get("inner_learning_rate", 10.0))
    interpolation = FLAGS.interpolation or task_config.get("interpolation", "bilinear")
    steps = {"meta": FLAGS.steps, "standard": FLAGS.standard_steps or FLAGS.steps}
    standard_opt = InnerOptimizer(FLAGS.standard_optimizer, FLAGS.standard_learning_rate)
    print(f"CT views table for {FLAGS.init}: {len(examples)} {FLAGS.config}/{FLAGS.split} "
          f"phantoms, views {views}; meta init SGD {meta_lr:g} × {steps['meta']} steps, "
          f"standard init {standard_opt.name} {standard_opt.learning_rate:g} × "
          f"{steps['standard']} steps; {interpolation} projector.")
    table = eval_ct.evaluate_views(
        model, examples, views=views, steps=steps,
        meta_optimizer=InnerOptimizer("sgd", meta_lr), standard_optimizer=standard_opt,
        standard_seed=FLAGS.standard_seed, interpolation=interpolation,
        num_reconstructions=FLAGS.num_reconstructions)

    out = FLAGS.output_dir
    os.makedirs(out, exist_ok=True)
    eval_ct.write_views_csv(table.rows, os.path.join(out, "views.csv"))
    claim = eval_ct.claim_rows(table.rows)
    init_io.write_json_atomic(os.path.join(out, "views.json"), {
        "init": FLAGS.init, "rows": table.rows, "claim_meta_n_vs_standard_2n": claim,
        "settings": {"config": FLAGS.config, "split": FLAGS.split,
                     "num_examples": len(examples), "views": views, "steps": steps,
                     "meta_optimizer": {"name": "sgd", "learning_rate": meta_lr},
                     "standard_optimizer": {"name": standard_opt.name,
                                            "learning_rate": standard_opt.learning_rate},
                     "standard_seed": FLAGS.standard_seed, "interpolation": interpolation},
        "per_example_psnr": {f"{k[0]}/{k[1]}": v.tolist() for k, v in table.psnrs.items()},
    })
    eval_ct.plot_psnr_vs_views(table.rows, os.path.join(out, "psnr_vs_views.png"))
    if table.images:
        eval_ct.plot_reconstruction_grid(table, os.path.join(out, "reconstructions.png"))

    print(f"\n{'init':<10}{'views':>6}{'PSNR (dB)':>16}")
    for row in table.rows:
        print(f"{row['init']:<10}{row['views']:>6}{row['psnr_mean']:>10.2f} ± "
              f"{row['psnr_std']:.2f}")
    for c in claim:
        verdict = "holds" if c["holds"] else "does NOT hold"
        print(f"meta {c['views']} views {c['meta_psnr']:.2f} dB vs standard {2 * c['views']} "
              f"views {c['standard_psnr_2x_views']:.2f} dB: {verdict}")
    print(f"Wrote {out}/views.csv, views.json, psnr_vs_views.png, reconstructions.png")
    return 0


if __name__ == "__main__":
    sys.exit(app.run(main))
