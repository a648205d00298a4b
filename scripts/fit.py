r"""Fits one signal from an init: an image (or, with --sinogram, a CT sinogram).

    python scripts/fit.py --init=text_images --image=photo.png --steps=10 \
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
flags.DEFINE_string("sinogram", None, "CT: .npy sinogram (num_angles, detector) to reconstruct.")
flags.DEFINE_string("angles", None, "CT: .npy of projection angles in radians (with --sinogram).")
flags.DEFINE_integer("steps", 10, "Optimization steps.")
flags.DEFINE_enum("optimizer", None, ["sgd", "adam"], "Default: the init's inner optimizer.")
flags.DEFINE_float("learning_rate", None, "Default: the init's inner learning rate.")
flags.DEFINE_string("output_dir", None, "Where outputs go.")
flags.mark_flags_as_required(["init", "output_dir"])


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
    if bool(FLAGS.image) == bool(FLAGS.sinogram):
        raise app.UsageError("Give exactly one of --image or --sinogram.")
    import numpy as np  # pylint: disable=import-outside-toplevel
    from learnit_tf import cli, evaluation, init_io, plots  # pylint: disable=import-outside-toplevel
    from learnit_tf.meta import Fitter, InnerOptimizer  # pylint: disable=import-outside-toplevel

    try:
        model, metadata, _ = cli.resolve_init(FLAGS.init)
        task = evaluation.task_from_metadata(metadata)
        example = _load_example(task)
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
    curve_key = "psnr" if "image" in example and np.any(example["image"]) else "loss"
    curve = result.metrics.get(curve_key, result.losses)
    plots.plot_psnr_curves({"fit": {"psnr": np.asarray(curve)[None]}},
                           os.path.join(out, "psnr_curve.png"),
                           title=f"fit from {FLAGS.init} ({optimizer.name} "
                                 f"{optimizer.learning_rate:g})")
    render = task.render(fitter.fmodel, result.weights).numpy()
    cols = []
    if "image" in example and np.any(example["image"]):
        cols.append(("target", np.asarray(example["image"])))
    cols += [(f"step {k}", task.render(fitter.fmodel, w).numpy())
             for k, w in sorted(result.snapshots.items())]
    plots.plot_reconstruction_grid([("fit", cols)], os.path.join(out, "reconstruction.png"))
    np.save(os.path.join(out, "reconstruction.npy"), render)
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
    import numpy as np  # pylint: disable=import-outside-toplevel
    if FLAGS.image:
        from learnit_tf.data import load_image  # pylint: disable=import-outside-toplevel
        if not hasattr(task, "height"):
            raise ValueError(f"--image needs an image init; this init's task is "
                             f"{type(task).__name__}.")
        return {"image": load_image(FLAGS.image, task.height)}
    from learnit_tf.tasks import ct  # pylint: disable=import-outside-toplevel
    if not isinstance(task, ct.CtTask):
        raise ValueError(f"--sinogram needs a CT init; this init's task is {type(task).__name__}.")
    if not FLAGS.angles:
        raise ValueError("--sinogram needs --angles (a .npy of angles in radians).")
    return ct.sinogram_example(np.load(FLAGS.sinogram, allow_pickle=False),
                               np.load(FLAGS.angles, allow_pickle=False))


if __name__ == "__main__":
    app.run(main)
