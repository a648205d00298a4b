r"""Reconstructs an image from your own sparse-view sinogram, starting from a CT init.

    python scripts/fit_ct.py --init=/tmp/learnit/ct_cpu/init --sinogram=sino.npy \
        --num_angles=8 --steps=1000 --output_dir=/tmp/ct_fit

Inputs (learnit convention, the default): `--sinogram` is a (V, N) float array,
one row per view, each row the *mean* of the image along parallel rays (see
`learnit_tf.kinds.ct.task`); angles in radians come from `--angles=FILE.npy` (shape
(V,)) or `--num_angles=V` (evenly spaced in [0, π)). With `--convention=skimage`
the file is `skimage.transform.radon(image, theta)` output instead: shape (N, V),
sums along rays, and `--angles` holds radon's `theta` in degrees; it is converted
(exactly for odd N; for even N radon rotates about pixel N/2, half a pixel from our
centre (N - 1)/2).
`--image=FILE.npy` (optional, (N, N)) is the ground truth, for PSNR curves.

Writes OUTPUT_DIR/reconstruction.npy ((N, N) float32), reconstruction.png (sinogram,
reconstruction, ground truth if given), curves.png (projection loss and PSNR per
step) and metrics.json.
"""

import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from absl import app, flags  # noqa: E402

FLAGS = flags.FLAGS
flags.DEFINE_string("init", None, "Init directory (or zoo name) of a CT init.")
flags.DEFINE_string("sinogram", None, "Sinogram .npy file.")
flags.DEFINE_string("angles", None,
                    "Angles .npy file (radians; degrees with --convention=skimage).")
flags.DEFINE_integer("num_angles", None, "Instead of --angles: V views evenly spaced in [0, π).")
flags.DEFINE_enum("convention", "learnit", ["learnit", "skimage"],
                  "Sinogram layout: learnit (V, N) means, or skimage radon (N, V) sums.")
flags.DEFINE_string("image", None, "Optional ground-truth image .npy (N, N) for PSNR.")
flags.DEFINE_integer("steps", 1000, "Optimizer steps (authors' notebook: 1000).")
flags.DEFINE_enum("optimizer", "sgd", ["sgd", "adam"], "Test-time optimizer (meta init: SGD).")
flags.DEFINE_float("learning_rate", None, "Step size (default for sgd: the init's inner "
                   "learning rate from its metadata, else 10, the paper's CT value; adam: 1e-3).")
flags.DEFINE_enum("interpolation", None, ["bilinear", "nearest"],
                  "Projector interpolation (default: the init's task config, else bilinear).")
flags.DEFINE_string("output_dir", None, "Where the outputs go.")
flags.mark_flags_as_required(["init", "sinogram", "output_dir"])


def _load_npy(path, flag):
    import numpy as np  # pylint: disable=import-outside-toplevel
    try:
        return np.load(path, allow_pickle=False)
    except (OSError, ValueError) as e:
        raise app.UsageError(f"--{flag}={path!r} is not a readable .npy array: {e}") from e


def load_inputs():
    """(sinogram (V, N), angles (V,) radians, image or None) in the learnit convention."""
    import numpy as np  # pylint: disable=import-outside-toplevel
    from learnit_tf.kinds.ct.task import evenly_spaced_angles  # pylint: disable=import-outside-toplevel

    sinogram = _load_npy(FLAGS.sinogram, "sinogram").astype(np.float32)
    if sinogram.ndim != 2:
        raise app.UsageError(f"--sinogram must be a 2D array, got shape {sinogram.shape}.")
    if FLAGS.convention == "skimage":
        # radon returns (N, V) sums along rays with angles in degrees, rotating the other way.
        sinogram = sinogram.T / sinogram.shape[0]
    if (FLAGS.angles is None) == (FLAGS.num_angles is None):
        raise app.UsageError("Give exactly one of --angles=FILE.npy and --num_angles=V.")
    if FLAGS.angles is not None:
        angles = _load_npy(FLAGS.angles, "angles").astype(np.float32).reshape(-1)
        if FLAGS.convention == "skimage":
            angles = -np.deg2rad(angles)
    else:
        angles = evenly_spaced_angles(FLAGS.num_angles)
    image = _load_npy(FLAGS.image, "image") if FLAGS.image else None
    return sinogram, angles, image


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
    # pylint: disable=import-outside-toplevel
    import keras
    import numpy as np
    from learnit_tf import cli, init_io, plots
    from learnit_tf.meta import Fitter, InnerOptimizer
    from learnit_tf.kinds.ct.task import CtTask, sinogram_example

    sinogram, angles, image = load_inputs()
    try:
        example = sinogram_example(sinogram, angles, image)
        model, metadata, _ = cli.resolve_init(FLAGS.init)
    except (ValueError, FileNotFoundError, LookupError) as e:
        raise app.UsageError(str(e)) from e
    if FLAGS.steps < 0:
        raise app.UsageError(f"--steps must be >= 0, got {FLAGS.steps}.")
    hyper = metadata.get("hyperparameters", {})
    task_config = metadata.get("task", {}).get("config", {})
    if FLAGS.learning_rate:
        lr = FLAGS.learning_rate
    elif FLAGS.optimizer == "sgd":
        lr = float(hyper.get("inner_learning_rate", 10.0))
    else:
        lr = 1e-3  # Adam from a standard init (eval_ct's default).
    interpolation = FLAGS.interpolation or task_config.get("interpolation", "bilinear")
    n = sinogram.shape[1]
    task = CtTask(n, interpolation=interpolation)
    fitter = Fitter(model, task, InnerOptimizer(FLAGS.optimizer, lr),
                    steps_per_call=max(1, min(100, FLAGS.steps)))
    print(f"Reconstructing {n}×{n} from {len(angles)} views with {FLAGS.optimizer} {lr:g} × "
          f"{FLAGS.steps} steps from {FLAGS.init}.")
    bar = keras.utils.Progbar(max(1, FLAGS.steps), unit_name="step")
    result = fitter.fit(example, FLAGS.steps, progress=lambda done, total: bar.update(done))
    recon = task.render(fitter.fmodel, result.weights).numpy()[..., 0].astype(np.float32)

    out = FLAGS.output_dir
    os.makedirs(out, exist_ok=True)
    init_io.save_npy_atomic(os.path.join(out, "reconstruction.npy"), recon)
    psnr = result.metrics["psnr"]
    metrics = {"steps": FLAGS.steps, "optimizer": FLAGS.optimizer, "learning_rate": lr,
               "interpolation": interpolation, "num_views": int(len(angles)),
               "angles": angles.tolist(), "final_loss": float(result.losses[-1]),
               "final_sinogram_psnr": float(result.metrics["sinogram_psnr"][-1]),
               "seconds": round(result.seconds, 2)}
    if image is not None:
        metrics["final_psnr"] = float(psnr[-1])
    init_io.write_json_atomic(os.path.join(out, "metrics.json"), metrics)

    plt = plots.pyplot()
    panels = [("sinogram", example["sinogram"], "auto"), ("reconstruction", recon, "equal")]
    if image is not None:
        panels.append(("ground truth", example["image"][..., 0], "equal"))
    fig, axes = plt.subplots(1, len(panels), figsize=(3.2 * len(panels), 3.4))
    for ax, (title, data, aspect) in zip(axes, panels):
        is_sino = title == "sinogram"
        ax.imshow(data if is_sino else np.clip(data, 0, 1), cmap="gray", aspect=aspect,
                  interpolation="nearest", **({} if is_sino else {"vmin": 0, "vmax": 1}))
        ax.set_title(title if image is None or title != "reconstruction"
                     else f"reconstruction, {psnr[-1]:.2f} dB")
        ax.set_xticks([])
        ax.set_yticks([])
    axes[0].set_xlabel("detector bin")
    axes[0].set_ylabel(f"view ({len(angles)} angles)")
    plots.save_figure_atomic(fig, os.path.join(out, "reconstruction.png"))

    fig, axes = plt.subplots(1, 2, figsize=(9, 3.4))
    axes[0].semilogy(result.losses)
    axes[0].set_xlabel("step")
    axes[0].set_ylabel("projection MSE")
    axes[1].plot(result.metrics["sinogram_psnr"], label="sinogram PSNR")
    if image is not None:
        axes[1].plot(psnr, label="image PSNR")
    axes[1].set_xlabel("step")
    axes[1].set_ylabel("PSNR (dB)")
    axes[1].legend()
    for ax in axes:
        ax.grid(True, alpha=0.3)
    plots.save_figure_atomic(fig, os.path.join(out, "curves.png"))
    summary = f"final projection MSE {metrics['final_loss']:.3g}"
    if image is not None:
        summary += f", image PSNR {metrics['final_psnr']:.2f} dB"
    print(f"{summary}. Wrote {out}/reconstruction.npy, reconstruction.png, curves.png, "
          "metrics.json")
    return 0


if __name__ == "__main__":
    sys.exit(app.run(main))
