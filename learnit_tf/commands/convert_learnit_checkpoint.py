r"""Converts the paper authors' haiku image-SIREN pickle into a learnit_tf init directory.

    python scripts/convert_learnit_checkpoint.py --input=celeba_maml.pkl \
        --output_dir=inits/celeba_authors --signal_class=celeb_a --algorithm=maml \
        --outer_steps=150000

The pickle is read with a restricted unpickler (only dicts, lists, numpy arrays and
haiku mappings; anything else is refused before it runs). Where the authors publish
their checkpoints: see the docstring of `learnit_tf/convert.py`. The output loads with
`learnit_tf.meta.init_io.load_init(DIR)` like any other init.

With --verify_npz=FILE (an .npz holding `coords` and `out`, e.g.
../shared/fixtures/learnit_siren_expected.npz) the converted model is evaluated under
XLA on `coords` before anything is written; the command fails if it deviates from `out`
by more than --tolerance.

An --output_dir that already holds files is refused unless --overwrite, which replaces
only the init's three files (others are kept; `learnit_tf.output_dir`).
"""

import os
import sys

from absl import app, flags

from learnit_tf.core import cli as core_cli

from learnit_tf import commands  # noqa: E402
from learnit_tf.core.output_dir import OutputDir, OutputDirError, define_overwrite_flag  # noqa: E402

FLAGS = flags.FLAGS
flags.DEFINE_string("input", None, "Haiku parameter pickle of the authors' image SIREN.")
core_cli.define_string_flag("output_dir", None, "Init directory to write.")
flags.DEFINE_alias("output", "output_dir")
flags.DEFINE_float("w0", 200.0, "SIREN frequency factor of the checkpoint (paper images: 200).")
define_overwrite_flag()
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
    from learnit_tf.meta import init_io
    metadata = {k: v for k, v in (("signal_class", FLAGS.signal_class),
                                  ("algorithm", FLAGS.algorithm),
                                  ("outer_steps", FLAGS.outer_steps)) if v is not None}
    out = OutputDir(FLAGS.output_dir, FLAGS.overwrite, owned=init_io.INIT_FILES)
    try:
        out.open()  # Before the pickle is read: a folder that cannot be written fails at once.
    except OutputDirError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    with out:
        staged = os.path.join(out.staging(), "init")
        try:
            _, model, error = convert.convert_checkpoint(
                FLAGS.input, staged, w0=FLAGS.w0, metadata=metadata,
                verify_npz=FLAGS.verify_npz, tolerance=FLAGS.tolerance)
        except (convert.UnsafePickleError, convert.CheckpointFormatError, FileNotFoundError,
                ValueError) as e:
            print(f"error: {e}", file=sys.stderr)
            return 1
        out.commit(staged)
    output_dir = FLAGS.output_dir
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
