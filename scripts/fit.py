r"""Fits one image from an image init (CT sinograms: scripts/fit_ct.py).

    python scripts/fit.py --init=text_siren --image=photo.png --steps=10 \
        --output_dir=/tmp/learnit_fit

Writes OUTPUT_DIR/reconstruction.png (target and fit), psnr_curve.png, curve.csv and
the fitted weights as an init directory OUTPUT_DIR/fitted/ (load it with
`learnit_tf.init_io.load_init` or render it). The optimizer defaults to the one the
init was meta-trained for (SGD at its inner learning rate).
"""

import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from absl import app, flags  # noqa: E402

FLAGS = flags.FLAGS
flags.DEFINE_string("init", None, "Init directory or zoo name[@version].")
flags.DEFINE_string("image", None, "PNG/JPEG to fit (centre-cropped, resized to the init's task).")
flags.DEFINE_integer("resolution", None,
                     "Fit at this resolution (default: the init's training resolution; "
                     "coordinate networks are resolution-independent).")
flags.DEFINE_bool("mixed_precision", False,
                  "SIREN inits: hidden layers in bfloat16 (faster on CPUs with AVX512-BF16 "
                  "and on accelerators; PSNR within ~0.3 dB, see benchmarks/README.md).")
flags.DEFINE_integer("steps", 10, "Optimization steps.")
flags.DEFINE_enum("optimizer", None, ["sgd", "adam"], "Default: the init's inner optimizer.")
flags.DEFINE_float("learning_rate", None, "Default: the init's inner learning rate.")
flags.DEFINE_string("output_dir", None, "Where outputs go.")
flags.mark_flags_as_required(["init", "image", "output_dir"])


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
    import numpy as np  # pylint: disable=import-outside-toplevel
    from learnit_tf import cli, evaluation, init_io, plots  # pylint: disable=import-outside-toplevel
    from learnit_tf.meta import Fitter, InnerOptimizer  # pylint: disable=import-outside-toplevel

    try:
        model, metadata, _ = cli.resolve_init(FLAGS.init)
        task = evaluation.task_from_metadata(metadata)
        task, example = _load_example(task)
        if FLAGS.mixed_precision:
            from learnit_tf.models import with_mixed_precision  # pylint: disable=import-outside-toplevel
            model = with_mixed_precision(model)
    except (ValueError, FileNotFoundError, LookupError) as e:
        raise app.UsageError(str(e)) from e
    default = evaluation.meta_optimizer_from_metadata(metadata)
    optimizer = InnerOptimizer(FLAGS.optimizer or default.name,
                               FLAGS.learning_rate or default.learning_rate)
    progress = cli.StepProgress(FLAGS.steps)
    fitter = Fitter(model, task, optimizer, steps_per_call=max(1, min(FLAGS.steps, 50)))
    result = fitter.fit(example, FLAGS.steps, progress=lambda done, total: progress.add(
        done - progress.done), snapshot_steps=(0, FLAGS.steps))

    out = FLAGS.output_dir
    os.makedirs(out, exist_ok=True)
    rows = [{"step": k, "loss": float(result.losses[k]),
             **{name: float(v[k]) for name, v in result.metrics.items()}}
            for k in range(FLAGS.steps + 1)]
    evaluation.write_csv_atomic(rows, os.path.join(out, "curve.csv"),
                                columns=["step", "loss"] + sorted(result.metrics))
    plots.plot_psnr_curves({"fit": {"psnr": np.asarray(result.psnr)[None]}},
                           os.path.join(out, "psnr_curve.png"),
                           title=f"fit from {FLAGS.init} ({optimizer.name} "
                                 f"{optimizer.learning_rate:g})")
    render = task.render(fitter.fmodel, result.weights).numpy()
    cols = [("target", np.asarray(example["image"]))]
    cols += [(f"step {k}", task.render(fitter.fmodel, w).numpy())
             for k, w in sorted(result.snapshots.items())]
    plots.plot_reconstruction_grid([("fit", cols)], os.path.join(out, "reconstruction.png"))
    init_io.save_npy_atomic(os.path.join(out, "reconstruction.npy"), render)
    fitter.fmodel.assign(result.weights)
    metadata = dict(metadata, fitted={"source_init": FLAGS.init, "steps": FLAGS.steps,
                                      "optimizer": optimizer.name,
                                      "learning_rate": optimizer.learning_rate,
                                      "command": " ".join(["python"] + sys.argv)})
    init_io.save_init(model, os.path.join(out, "fitted"), metadata, overwrite=True)
    last = {name: float(v[-1]) for name, v in result.metrics.items()}
    print(f"\nAfter {FLAGS.steps} steps: {last}. Wrote {out}/reconstruction.png, "
          "psnr_curve.png, curve.csv, fitted/")


def _load_example(task):
    from learnit_tf.kinds.image import load_image  # pylint: disable=import-outside-toplevel
    from learnit_tf.kinds.image import ImageTask  # pylint: disable=import-outside-toplevel
    if not isinstance(task, ImageTask):
        hint = " For CT inits use scripts/fit_ct.py." if type(task).__name__ == "CtTask" else ""
        raise ValueError(f"--init={FLAGS.init!r} is not an image init (its task is "
                         f"{type(task).__name__}).{hint}")
    if FLAGS.resolution is not None:
        if FLAGS.resolution < 2:
            raise ValueError(f"--resolution must be >= 2, got {FLAGS.resolution}.")
        task = ImageTask(FLAGS.resolution, channels=task.channels)
    return task, {"image": load_image(FLAGS.image, task.height)}


if __name__ == "__main__":
    app.run(main)
