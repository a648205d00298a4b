r"""Converts the paper authors' haiku image-SIREN pickle into a learnit_tf init directory.

    python scripts/convert_learnit_checkpoint.py --input=celeba_maml.pkl \
        --output_dir=inits/celeba_authors --signal_class=celeb_a --algorithm=maml \
        --outer_steps=150000

The pickle is read with a restricted unpickler (only dicts, lists, numpy arrays and
haiku mappings; anything else is refused before it runs). Where the authors publish
their checkpoints: see the docstring of `learnit_tf/convert.py`. The output loads with
`learnit_tf.init_io.load_init(DIR)` like any other init.

With --verify_npz=FILE (an .npz holding `coords` and `out`, e.g.
../shared/fixtures/learnit_siren_expected.npz) the converted model is evaluated under
XLA on `coords` before anything is written; the command fails if it deviates from `out`
by more than --tolerance.
"""

import sys

from absl import app, flags

from learnit_tf import commands  # noqa: E402

FLAGS = flags.FLAGS
flags.DEFINE_string("input", None, "Haiku parameter pickle of the authors' image SIREN.")
flags.DEFINE_string("output_dir", None, "Init directory to write.")
flags.DEFINE_alias("output", "output_dir")
flags.DEFINE_float("w0", 200.0, "SIREN frequency factor of the checkpoint (paper images: 200).")
flags.DEFINE_bool("overwrite", False, "Replace an existing output directory.")
flags.DEFINE_string("signal_class", None, "Signal class recorded in metadata, e.g. celeb_a.")
flags.DEFINE_string("algorithm", None, "Meta-learning algorithm recorded in metadata, e.g. maml.")
flags.DEFINE_integer("outer_steps", None, "Outer steps recorded in metadata, e.g. 150000.")
flags.DEFINE_string("verify_npz", None, "Optional .npz with 'coords' and 'out' to check against.")
flags.DEFINE_float("tolerance", 1e-5, "Maximum absolute deviation allowed with --verify_npz.")


def main(argv):
    commands.configure_logging()
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
    if not FLAGS.input or not FLAGS.output_dir:
        raise app.UsageError("--input and --output_dir are required.")
    from learnit_tf import convert  # pylint: disable=import-outside-toplevel
    metadata = {k: v for k, v in (("signal_class", FLAGS.signal_class),
                                  ("algorithm", FLAGS.algorithm),
                                  ("outer_steps", FLAGS.outer_steps)) if v is not None}
    try:
        output_dir, model, error = convert.convert_checkpoint(
            FLAGS.input, FLAGS.output_dir, w0=FLAGS.w0, metadata=metadata,
            overwrite=FLAGS.overwrite, verify_npz=FLAGS.verify_npz, tolerance=FLAGS.tolerance)
    except FileExistsError:
        print(f"error: --output_dir {FLAGS.output_dir!r} already exists; pass --overwrite to "
              "replace it.", file=sys.stderr)
        return 1
    except (convert.UnsafePickleError, convert.CheckpointFormatError, FileNotFoundError,
            ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    print(f"Wrote {output_dir}: Siren(width={model.width}, depth={model.depth}, "
          f"w0={model.w0:g}, out_features={model.out_features})")
    if error is not None:
        print(f"Max |output - expected| on {FLAGS.verify_npz} (XLA): {error:.3g}")
    return 0


def run():
    """Console entry point (same flags as scripts/convert_learnit_checkpoint.py)."""
    sys.exit(app.run(main))


if __name__ == "__main__":
    run()
