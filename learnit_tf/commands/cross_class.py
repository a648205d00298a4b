r"""Cross-class transfer: PSNR after k steps of every init on every signal class.

    python scripts/cross_class.py --inits=text_siren,sdf_siren --output_dir=docs/image

Rows are inits (by the class they were learned on) plus a standard init (Adam 1e-4);
columns are the held-out test splits of each init's own signal class. Writes
cross_class.csv and cross_class.png (a heatmap). All inits must share a resolution.
An OUTPUT_DIR that already holds files is refused unless --overwrite, which replaces only
these two files (`learnit_tf.output_dir`).
"""

import json
import os
import sys

from absl import app, flags

from learnit_tf.core import cli as core_cli  # noqa: E402

from learnit_tf import commands  # noqa: E402
from learnit_tf.core.output_dir import OutputDir, OutputDirError, define_overwrite_flag  # noqa: E402

FLAGS = flags.FLAGS
flags.DEFINE_list("inits", None, "Init directories or zoo names (one per signal class).")
core_cli.define_string_flag("output_dir", None, "Where cross_class.csv and cross_class.png go (an "
                    "existing folder holding files needs --overwrite).")
define_overwrite_flag()
flags.DEFINE_integer("num_examples", 8, "Held-out signals per class.")
flags.DEFINE_integer("steps", 2, "Test-time steps (the paper's image table: 2).")
flags.DEFINE_string("data_dir", None, "TFDS data_dir.")


def main(argv):
    commands.configure_logging()
    core_cli.require_flags("inits", "output_dir")
    del argv
    out = OutputDir(FLAGS.output_dir, FLAGS.overwrite,
                    owned=("cross_class.csv", "cross_class.png"))
    try:
        out.open()  # Before any work: a folder that cannot be written fails at once.
    except OutputDirError as e:
        print(f"Error: {e}", file=sys.stderr)
        sys.exit(2)
    with out:
        _cross_class(out)


def _cross_class(out):
    import numpy as np  # pylint: disable=import-outside-toplevel
    from learnit_tf import evaluation  # pylint: disable=import-outside-toplevel
    from learnit_tf.commands import init_args  # pylint: disable=import-outside-toplevel
    from learnit_tf.core import cli  # pylint: disable=import-outside-toplevel
    from learnit_tf.evaluation import plots  # pylint: disable=import-outside-toplevel
    # pylint: disable-next=import-outside-toplevel
    from learnit_tf.evaluation.baselines import standard_init
    from learnit_tf.meta import Fitter, InnerOptimizer  # pylint: disable=import-outside-toplevel

    loaded = []
    for name in FLAGS.inits:
        try:
            model, metadata, _ = init_args.resolve_init(name)
        except (ValueError, FileNotFoundError, LookupError) as e:
            raise app.UsageError(str(e)) from e
        loaded.append((name, model, metadata))
    tasks = [evaluation.task_from_metadata(m) for _, _, m in loaded]
    configs = {json.dumps(t.get_config(), sort_keys=True) for t in tasks}
    if len(configs) != 1:
        raise app.UsageError(f"--inits must share one task configuration, got {configs}.")
    task = tasks[0]
    classes = [m.get("signal_class", n) for n, _, m in loaded]
    data = {c: evaluation.held_out_examples(m, FLAGS.num_examples, "test", FLAGS.data_dir)
            for c, (_, _, m) in zip(classes, loaded)}
    rows_models = [(f"{c} ({n})", model, evaluation.meta_optimizer_from_metadata(m))
                   for c, (n, model, m) in zip(classes, loaded)]
    rows_models.append(("standard (adam 1e-4)", standard_init(loaded[0][1], seed=1),
                        InnerOptimizer("adam", 1e-4)))
    progress = cli.StepProgress(len(rows_models) * len(classes) * FLAGS.num_examples
                                * FLAGS.steps)
    matrix = np.zeros((len(rows_models), len(classes)))
    csv_rows = []
    for r, (label, model, optimizer) in enumerate(rows_models):
        fitter = Fitter(model, task, optimizer, steps_per_call=max(1, FLAGS.steps))
        for c, cls in enumerate(classes):
            psnr = [fitter.fit(ex, FLAGS.steps).psnr[-1] for ex in data[cls]]
            progress.add(len(psnr) * FLAGS.steps)
            matrix[r, c] = float(np.mean(psnr))
            csv_rows.append({"init": label, "tested_on": cls, "steps": FLAGS.steps,
                             "psnr_mean": float(np.mean(psnr)), "psnr_std": float(np.std(psnr))})
    staging = out.staging()
    evaluation.write_csv_atomic(csv_rows, os.path.join(staging, "cross_class.csv"),
                                columns=["init", "tested_on", "steps", "psnr_mean", "psnr_std"])
    plots.plot_heatmap(matrix, [label for label, _, _ in rows_models], classes,
                       os.path.join(staging, "cross_class.png"),
                       title=f"PSNR after {FLAGS.steps} steps (mean of {FLAGS.num_examples} "
                             "held-out signals)")
    out.commit(staging)
    print()
    for row in csv_rows:
        print(f"{row['init']:>32} on {row['tested_on']:<14} {row['psnr_mean']:.2f} dB")


def run():
    """Console entry point (same flags as scripts/cross_class.py)."""
    app.run(main)


if __name__ == "__main__":
    run()
