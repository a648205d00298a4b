r"""Evaluates an init on held-out signals against a standard init (the paper's protocol).

    python scripts/evaluate.py --init=text_images --output_dir=/tmp/learnit_eval

Writes OUTPUT_DIR/psnr.csv (init, step, psnr_mean, psnr_std), evaluation.json (PSNR
after 2 steps for both inits and how many standard-init steps match the meta init's
2-step PSNR), psnr_curves.png and reconstructions.png.
"""

import json
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from absl import app, flags  # noqa: E402

FLAGS = flags.FLAGS
flags.DEFINE_string("init", None, "Init directory or zoo name[@version].")
flags.DEFINE_string("output_dir", None, "Where the CSV, JSON and PNGs go.")
flags.DEFINE_string("split", "test", "Held-out split of the init's signal class.")
flags.DEFINE_integer("num_examples", 8, "Held-out signals to average over.")
flags.DEFINE_integer("meta_steps", 20, "Test-time steps from the meta init (SGD).")
flags.DEFINE_integer("standard_steps", 1000, "Test-time steps from the standard init (Adam).")
flags.DEFINE_float("standard_learning_rate", 1e-4, "Adam learning rate of the standard init.")
flags.DEFINE_integer("standard_seed", 1, "Seed of the standard init.")
flags.DEFINE_string("data_dir", None, "TFDS data_dir (default: TFDS's).")
flags.DEFINE_string("image_folder", None, "Evaluate on a folder of your own images instead.")
flags.DEFINE_bool("baselines", False,
                  "Also compare the paper's baseline inits (standard, mean, matched, shuffled), "
                  "each with SGD 1e-2 and Adam 1e-4: baselines.csv and baselines.png.")
flags.DEFINE_integer("baseline_steps", 2, "Test-time steps of the baseline table.")
flags.DEFINE_integer("init_fit_steps", 500, "Adam steps that build the mean and matched inits.")
flags.DEFINE_integer("mean_examples", 200, "Training signals averaged into the class mean.")
flags.DEFINE_bool("write_metadata", False,
                  "Store the summary as metadata['evaluation'] of a local init directory.")
flags.mark_flags_as_required(["init", "output_dir"])


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
    from learnit_tf import cli, evaluation, init_io, plots  # pylint: disable=import-outside-toplevel
    from learnit_tf.data import take_examples
    from learnit_tf.kinds.image import image_folder_examples  # pylint: disable=import-outside-toplevel
    from learnit_tf.meta import InnerOptimizer  # pylint: disable=import-outside-toplevel

    try:
        model, metadata, init_dir = cli.resolve_init(FLAGS.init)
        task = evaluation.task_from_metadata(metadata)
        if FLAGS.image_folder:
            resolution = getattr(task, "height", None)
            examples = take_examples(image_folder_examples(
                FLAGS.image_folder, FLAGS.split, resolution=resolution), FLAGS.num_examples)
        else:
            examples = evaluation.held_out_examples(metadata, FLAGS.num_examples, FLAGS.split,
                                                    FLAGS.data_dir)
    except (ValueError, FileNotFoundError, LookupError) as e:
        raise app.UsageError(str(e)) from e

    meta_opt = evaluation.meta_optimizer_from_metadata(metadata)
    standard_opt = InnerOptimizer("adam", FLAGS.standard_learning_rate)
    progress = cli.StepProgress(len(examples) * (FLAGS.meta_steps + FLAGS.standard_steps))
    print(f"Evaluating {FLAGS.init} on {len(examples)} held-out signals: meta init "
          f"({meta_opt.name} {meta_opt.learning_rate:g}, {FLAGS.meta_steps} steps) vs standard "
          f"init (adam {FLAGS.standard_learning_rate:g}, {FLAGS.standard_steps} steps).")
    snapshot_steps = sorted({0, 1, 2, 5, 10, FLAGS.meta_steps} & set(range(FLAGS.meta_steps + 1))
                            | {s for s in (100, 1000) if s <= FLAGS.standard_steps})

    def on_fit(label, index, result):
        del index
        progress.add(len(result.losses) - 1, **{f"{label}_psnr": float(result.psnr[-1])})

    results, rows, summary = evaluation.evaluate_against_standard(
        model, examples, task, meta_opt, FLAGS.meta_steps, FLAGS.standard_steps, standard_opt,
        FLAGS.standard_seed, snapshot_steps=snapshot_steps, snapshot_examples=3,
        progress=on_fit)
    summary["init"] = FLAGS.init
    summary["split"] = FLAGS.split
    summary["command"] = " ".join(["python"] + sys.argv)

    out = FLAGS.output_dir
    os.makedirs(out, exist_ok=True)
    evaluation.write_csv_atomic(rows, os.path.join(out, "psnr.csv"))
    plots.plot_psnr_curves(results, os.path.join(out, "psnr_curves.png"),
                           title=f"{metadata.get('signal_class', FLAGS.init)}: held-out PSNR",
                           summary=summary)
    _plot_reconstructions(results, examples, task, os.path.join(out, "reconstructions.png"))
    if FLAGS.baselines:
        summary["baselines"] = _baseline_table(model, task, examples, metadata, out)
    init_io.write_json_atomic(os.path.join(out, "evaluation.json"), summary)
    if FLAGS.write_metadata:
        if init_dir is None:
            raise app.UsageError("--write_metadata needs a local init directory, not a zoo name.")
        metadata["evaluation"] = summary
        init_io.write_json_atomic(os.path.join(init_dir, init_io.METADATA_FILE), metadata)
    print("\n" + json.dumps({k: v for k, v in summary.items() if k != "psnr_curve"}, indent=1))
    print(f"Wrote {out}/psnr.csv, evaluation.json, psnr_curves.png, reconstructions.png")


def _baseline_table(model, task, examples, metadata, out):
    """The paper's baseline comparison; returns {init/optimizer: PSNR at the last step}."""
    from learnit_tf import baselines, evaluation, plots  # pylint: disable=import-outside-toplevel
    train = evaluation.dataset_fn_from_metadata(metadata, FLAGS.data_dir)("train")
    mean_image = baselines.class_mean_image(train, FLAGS.mean_examples)
    print(f"\nBaseline inits: {FLAGS.baseline_steps} steps on {len(examples)} held-out signals")
    rows = baselines.evaluate_baselines(model, task, examples, FLAGS.baseline_steps,
                                        mean_image=mean_image,
                                        init_fit_steps=FLAGS.init_fit_steps)
    baselines.write_rows_csv(rows, os.path.join(out, "baselines.csv"))
    last = [r for r in rows if r["step"] == FLAGS.baseline_steps]
    values = {}
    for r in last:
        label = f"{r['optimizer']} {r['learning_rate']:g}"
        values.setdefault(r["init"], {})[label] = r["psnr_mean"]
    plots.plot_grouped_bars(values, os.path.join(out, "baselines.png"),
                            title=f"{metadata.get('signal_class', '')}: PSNR after "
                                  f"{FLAGS.baseline_steps} steps from each init")
    return {f"{r['init']}/{r['optimizer']}": round(r["psnr_mean"], 3) for r in last}


def _plot_reconstructions(results, examples, task, path):
    from learnit_tf import plots  # pylint: disable=import-outside-toplevel
    render = getattr(task, "render", None)
    if render is None:
        return
    grid = []
    for i, example in enumerate(examples[:len(results["meta"]["snapshots"])]):
        for label in ("meta", "standard"):
            fitter = results[label]["fitter"]
            snaps = results[label]["snapshots"][i]
            cols = [("target", example["image"].numpy())] if "image" in example else []
            psnr = results[label]["psnr"][i]
            cols += [(f"step {s}: {psnr[s]:.1f} dB", render(fitter.fmodel, w).numpy())
                     for s, w in sorted(snaps.items())]
            grid.append((f"#{i} {label}", cols))
    plots.plot_reconstruction_grid(grid, path)


if __name__ == "__main__":
    app.run(main)
