r"""Fits one signal of your own from an init of any kind (image, CT sinogram, posed views).

    python scripts/fit.py --init=text_siren --input=photo.png --steps=10 --output_dir=OUT
    python scripts/fit.py --init=shepp_logan_ct --input=sino.npy --num_angles=16 \
        --convention=skimage --steps=200 --output_dir=OUT
    python scripts/fit.py --init=procedural_chairs_nerf --input=my_object/ --steps=100 \
        --output_dir=OUT

The init's signal kind (from the task class in its metadata) picks the reader of
`--input` (`SignalKind.fit_input`):
- image inits: a PNG/JPEG file, centre-cropped and resized to the init's resolution
  (or `--resolution`; not given, an image larger than the init's grid is fitted at its
  own size up to 256, with the zoo version measured best there or, between the evaluated
  grids, at the next one up);
- CT inits: a sinogram `.npy`, with `--angles=FILE.npy` or `--num_angles=V`, in the
  `--convention=learnit` layout ((V, N) ray means, radians) or `skimage`
  (`skimage.transform.radon` output: (N, V) sums, degrees); see
  `learnit_tf.kinds.ct.files`. `--ground_truth=FILE` adds image PSNR;
- NeRF inits: a posed-views folder (transforms.json + images, the ShapeNet /
  NeRF-synthetic layout), fitted on every view (or the first `--num_support_views`,
  scoring PSNR on the rest);
- audio inits: a WAV file (`--noresample` refuses one at another sample rate).
Each kind declares its reader's options (`SignalKind.reader_options`); each is a flag
here, listed with the kind it applies to.

`--init` is a zoo name[@version] or a directory given as a path (./NAME for a folder
here: a bare name is always the zoo's). The optimizer defaults to the init's fit recipe
(recorded in its metadata), else to the one it was meta-trained for (its inner optimizer
and learning rate, stepping with its learned Meta-SGD rates if it has them).

Writes OUTPUT_DIR/reconstruction.png (observations and the fit at the first and last
step), reconstruction.npy, curve.csv (step, loss, metrics), psnr_curve.png, the fitted
weights as an init directory OUTPUT_DIR/fitted/, and the kind's own outputs if it has
any (`FitInput.extra_outputs`, e.g. a 3D shape's surface mesh). Nothing is written if the fit fails
(non-finite weights exit with status 1). An OUTPUT_DIR that already holds files is
refused unless --overwrite, which replaces only these outputs (other files, also inside
fitted/, are kept); the folder is locked while the fit runs (`learnit_tf.output_dir`).
"""

import os
import sys

from absl import app, flags  # noqa: E402

from learnit_tf import commands  # noqa: E402
from learnit_tf.core import cli as core_cli  # noqa: E402
from learnit_tf.core import registry  # noqa: E402
from learnit_tf.core.output_dir import OutputDir, OutputDirError, define_overwrite_flag  # noqa: E402

FLAGS = flags.FLAGS
core_cli.define_string_flag("init", None, "Zoo name[@version], or an init directory as a path "
                    "(./NAME, DIR/NAME, /abs/path).")
flags.DEFINE_string("input", None, "The signal to fit: an image file (image inits), a "
                    "sinogram .npy (CT inits) or a posed-views folder (NeRF inits).")
core_cli.define_string_flag("output_dir", None, "Where the outputs go (created; an existing folder "
                    "holding files needs --overwrite).")
define_overwrite_flag()
flags.DEFINE_integer("steps", 100, "Optimization steps (>= 0).")
flags.DEFINE_enum("optimizer", None, ["sgd", "adam"],
                  "Default: the init's fit recipe, else its inner optimizer.")
flags.DEFINE_float("learning_rate", None, "> 0. Default: the init's inner learning rate "
                   "(required with an --optimizer other than the init's).")
flags.DEFINE_bool("mixed_precision", False,
                  "SIREN inits: hidden layers in bfloat16 (faster on CPUs with AVX512-BF16 "
                  "and on accelerators; PSNR within ~0.3 dB, see benchmarks/README.md).")

# Reader options: one flag per option any registered kind's reader declares
# (`SignalKind.reader_options`), passed to the init's kind's reader when given (an error
# for options its reader does not take). Flags exist before absl parses argv, so the
# kinds are loaded when this module is imported.
READER_FLAGS = tuple(core_cli.define_reader_flags(registry.all_kinds()))
# What a fit writes (an earlier fit's copy that this one does not write is removed).
OUTPUTS = ("curve.csv", "psnr_curve.png", "reconstruction.png", "reconstruction.npy",
           "fitted/config.json", "fitted/metadata.json", "fitted/model.weights.h5")


class FitError(Exception):
    """A fit that must not be written (non-finite weights)."""


def _check_flags():
    if FLAGS.steps < 0:
        raise ValueError(f"--steps must be >= 0, got {FLAGS.steps}.")
    if FLAGS.learning_rate is not None and not FLAGS.learning_rate > 0:
        raise ValueError(f"--learning_rate must be > 0, got {FLAGS.learning_rate}.")
    if not os.path.exists(FLAGS.input):
        raise ValueError(f"--input={FLAGS.input!r} does not exist.")


def _reader_flag_values():
    """{reader flag: value, None when not given}."""
    return {name: FLAGS[name].value for name in READER_FLAGS}


def _init_at_resolution(init, resolution):
    """--init, or for a bare zoo name the version measured best at `resolution`
    (`zoo.resolution.choose_init`, which prints why)."""
    # pylint: disable=import-outside-toplevel
    from learnit_tf.zoo import resolution as zoo_resolution
    if resolution is None or core_cli.is_path_like(init):
        return init
    from learnit_tf import zoo
    try:
        init, note = zoo_resolution.choose_init(zoo.Zoo(), init, resolution)
    except zoo.ZooError:  # E.g. no index: resolve_init says so, naming --init.
        note = None
    if note:
        print(note, file=sys.stderr)
    return init


def prepare():
    """(model, metadata, FitInput, optimizer, init): `init` is the one loaded (--init, or
    the zoo version chosen for the resolution); ValueError for any bad flag or input."""
    _check_flags()  # Before importing TensorFlow: bad flags fail at once.
    from learnit_tf.commands import init_args  # pylint: disable=import-outside-toplevel
    from learnit_tf.zoo import resolution as zoo_resolution  # pylint: disable=import-outside-toplevel
    flag_values = _reader_flag_values()
    resolution = flag_values.get(zoo_resolution.RESOLUTION_OPTION)

    def describe(init):  # Metadata, kind and task only: the model is loaded once, below.
        _, metadata, _ = init_args.resolve_init(init, load_model=False)
        return (metadata,) + init_args.kind_of_init(metadata, f"--init={init}")

    init = _init_at_resolution(FLAGS.init, resolution)
    metadata, kind, task = describe(init)
    # Options not given that the kind reads from the input (an image's own size):
    for option in kind.reader_options:
        if flag_values.get(option.name) is None:
            value = option.value_from_input(FLAGS.input, task)
            if value is not None:
                flag_values[option.name] = value
                print(f"--{option.name}={value} (from --input; pass --{option.name} to "
                      "choose)", file=sys.stderr)
    if resolution is None and flag_values.get(zoo_resolution.RESOLUTION_OPTION) is not None:
        resolution = flag_values[zoo_resolution.RESOLUTION_OPTION]
        chosen = _init_at_resolution(FLAGS.init, resolution)
        if chosen != init:  # A zoo version measured best at the input's size.
            init = chosen
            metadata, kind, task = describe(init)
    model, _, _ = init_args.resolve_init(init)
    warning = zoo_resolution.resolution_warning(init, metadata, resolution)
    if warning:
        print(f"Warning: {warning}", file=sys.stderr)
    optimizer = init_args.fit_optimizer(metadata, FLAGS.optimizer, FLAGS.learning_rate)
    reader = kind.fit_input_reader()
    options = core_cli.reader_options(kind, flag_values)
    fit_input = reader(FLAGS.input, task, **options)
    fit_input.task.validate_example(fit_input.example, f"--input={FLAGS.input}")
    if FLAGS.mixed_precision:
        from learnit_tf.models import with_mixed_precision  # pylint: disable=import-outside-toplevel
        model = with_mixed_precision(model)
    return model, metadata, fit_input, optimizer, init


def run_fit(model, fit_input, optimizer, source_init=None):
    """(Fitter, FitResult); FitError if the fitted weights are not finite. `source_init`:
    the init loaded (default --init)."""
    import numpy as np  # pylint: disable=import-outside-toplevel
    from learnit_tf.meta import Fitter  # pylint: disable=import-outside-toplevel
    steps = FLAGS.steps
    print(f"Fitting {fit_input.description or FLAGS.input} from {source_init or FLAGS.init} with "
          f"{optimizer.describe()} for {steps} steps.")
    progress = core_cli.StepProgress(steps)
    fitter = Fitter(model, fit_input.task, optimizer, steps_per_call=max(1, min(steps, 50)))
    result = fitter.fit(fit_input.example, steps, snapshot_steps=(0, steps),
                        progress=lambda done, total: progress.add(done - progress.done))
    bad = [i for i, w in enumerate(result.weights) if not np.all(np.isfinite(np.asarray(w)))]
    if bad:
        losses = np.asarray(result.losses)
        first = int(np.argmax(~np.isfinite(losses))) if not np.all(np.isfinite(losses)) else None
        where = f" (the loss is first non-finite at step {first})" if first is not None else ""
        raise FitError(f"The fit diverged: {len(bad)} weight tensors are NaN/infinite after "
                       f"{steps} steps{where}. Nothing was written; lower --learning_rate "
                       f"(was {optimizer.describe()}).")
    return fitter, result


def write_outputs(out, model, metadata, fit_input, optimizer, fitter, result,
                  source_init=None):
    """Writes every output into a staging folder of the open `OutputDir` `out`, then moves
    them in (each file replaced atomically; nothing else in the folder is touched).
    `source_init`: the init loaded (default --init), named in the plot and metadata."""
    source_init = source_init or FLAGS.init
    # pylint: disable=import-outside-toplevel
    import numpy as np
    from learnit_tf.evaluation import plots
    from learnit_tf.meta import init_io
    from learnit_tf.core import atomic
    from learnit_tf.core.fit_input import check_extra_outputs
    steps = FLAGS.steps
    metric_names = sorted(m for m in result.metrics if m != "loss")  # loss: the fit's own.
    rows = [{"step": k, "loss": float(result.losses[k]),
             **{m: float(result.metrics[m][k]) for m in metric_names}} for k in range(steps + 1)]
    renders = {k: fit_input.render(fitter.fmodel, w) for k, w in sorted(result.snapshots.items())}
    staging = out.staging()
    atomic.write_csv(os.path.join(staging, "curve.csv"), rows,
                     columns=["step", "loss"] + metric_names)
    # Every PSNR the task reports (CT: image and sinogram); NaN ones (no truth) are left out.
    curves = {name.replace("_", " "): {"psnr": np.asarray(result.metrics[name])[None]}
              for name in metric_names
              if "psnr" in name and np.all(np.isfinite(result.metrics[name]))}
    if curves:
        plots.plot_psnr_curves(curves, os.path.join(staging, "psnr_curve.png"),
                               title=f"fit from {source_init} ({optimizer.describe()})")
    cols = list(fit_input.observed) + [(f"step {k}", r) for k, r in renders.items()]
    plots.plot_reconstruction_grid([("fit", cols)], os.path.join(staging,
                                                                 "reconstruction.png"))
    atomic.save_npy(os.path.join(staging, "reconstruction.npy"),
                    np.asarray(renders[steps], np.float32))
    fitter.fmodel.assign(result.weights)
    if fit_input.extra_outputs is not None:  # The kind's own outputs (e.g. a 3D mesh).
        extra = check_extra_outputs(
            fit_input.extra_outputs(model, fit_input.task, fit_input.example),
            reserved=[name for name in OUTPUTS if "/" not in name] + ["fitted"])
        for name, data in extra.items():
            atomic.write_bytes(os.path.join(staging, name), data)
    fitted_metadata = dict(metadata, fitted={
        "source_init": source_init, "input": os.path.abspath(FLAGS.input), "steps": steps,
        **optimizer.record(), "command": " ".join(["python"] + sys.argv)})
    init_io.save_init(model, os.path.join(staging, "fitted"), fitted_metadata)
    return out.commit(staging)


def main(argv):
    commands.configure_logging()
    core_cli.require_flags("init", "input", "output_dir")
    import numpy as np  # pylint: disable=import-outside-toplevel
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
    out = OutputDir(FLAGS.output_dir, FLAGS.overwrite, owned=OUTPUTS)
    try:
        out.open()  # Before any work: a folder that cannot be written fails at once.
    except OutputDirError as e:
        print(f"Error: {e}", file=sys.stderr)
        return 2
    with out:
        try:
            model, metadata, fit_input, optimizer, init = prepare()
        except (ValueError, FileNotFoundError, LookupError) as e:
            print(f"Error: {e}", file=sys.stderr)  # The message, not the whole --help text.
            return 2
        try:
            fitter, result = run_fit(model, fit_input, optimizer, init)
        except FitError as e:
            print(f"Error: {e}", file=sys.stderr)
            return 1
        written = write_outputs(out, model, metadata, fit_input, optimizer, fitter, result,
                                init)
    last = {name: round(float(v[-1]), 4) for name, v in result.metrics.items()
            if np.isfinite(v[-1])}
    print(f"\nAfter {FLAGS.steps} steps: {last}. Wrote {', '.join(written)} in "
          f"{FLAGS.output_dir}.")
    return 0


def run():
    """Console entry point (same flags as scripts/fit.py)."""
    sys.exit(app.run(main))


if __name__ == "__main__":
    run()
