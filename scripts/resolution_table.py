"""Image inits at several resolutions: meta 2-step PSNR and standard-init steps to match.

    python scripts/resolution_table.py --inits=text_siren@3,sdf_siren@3 \
        --resolutions=64,128,256 --num_examples=3 --standard_steps=100 \
        --output_dir=docs/image/resolution

Writes OUTPUT_DIR/resolution.csv, resolution.json (rows, the standard curves' PSNR at a
few steps, the command) and resolution_table.md. See
`learnit_tf.kinds.image.resolution_table` for the protocol.
"""

import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from absl import app, flags  # noqa: E402

from learnit_tf import commands  # noqa: E402  pylint: disable=unused-import

FLAGS = flags.FLAGS
flags.DEFINE_list("inits", None, "Image inits: zoo name[@version] or init directories.")
flags.DEFINE_list("resolutions", ["64", "128", "256"], "Grid sides to fit at.")
flags.DEFINE_integer("num_examples", 3, "Held-out test signals per init and resolution.")
flags.DEFINE_integer("meta_steps", 2, "Steps from the meta init (its fit recipe).")
flags.DEFINE_list("standard_steps", ["100"], "Cap of the standard init's Adam 1e-4 steps: "
                  "one number, or one per resolution.")
flags.DEFINE_string("data_dir", None, "TFDS data_dir (default: TFDS's).")
flags.DEFINE_string("output_dir", None, "Where the table goes.")
flags.DEFINE_bool("write_metadata", False,
                  "Record each local init directory's rows as metadata['evaluated_resolutions'] "
                  "(what zoo.load(resolution=) and learnit-fit --resolution read).")
flags.mark_flags_as_required(["inits", "output_dir"])


def _write_text(path, text):
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
    commands.configure_logging()
    # pylint: disable=import-outside-toplevel
    from learnit_tf.commands import init_args
    from learnit_tf.kinds.image import resolution_table as rt

    try:
        resolutions = [int(r) for r in FLAGS.resolutions]
    except ValueError as e:
        raise app.UsageError(f"--resolutions must be integers, got {FLAGS.resolutions}.") from e
    try:
        inits, directories = [], {}
        for name in FLAGS.inits:
            model, metadata, directory = init_args.resolve_init(name)
            inits.append(rt.Loaded(name, model, dict(metadata)))
            directories[name] = directory
        if FLAGS.write_metadata and None in directories.values():
            zoo_names = [n for n, d in directories.items() if d is None]
            raise ValueError(f"--write_metadata needs local init directories, not the zoo "
                             f"entries {zoo_names} (published files are immutable).")
        caps = [int(c) for c in FLAGS.standard_steps]
        caps = caps[0] if len(caps) == 1 else caps
        rows, curves = rt.resolution_table(
            inits, resolutions, FLAGS.num_examples, FLAGS.meta_steps, caps,
            data_dir=FLAGS.data_dir,
            on_row=lambda rows, curves: _write(rows, curves, resolutions, quiet=True))
    except (ValueError, FileNotFoundError, LookupError) as e:
        raise app.UsageError(str(e)) from e
    _write(rows, curves, resolutions)
    if FLAGS.write_metadata:
        from learnit_tf.meta import init_io# pylint: disable=import-outside-toplevel
        from learnit_tf.zoo.resolution import EVALUATED_RESOLUTIONS
        for init in inits:
            path = os.path.join(directories[init.name], init_io.METADATA_FILE)
            metadata = dict(init.metadata)
            metadata[EVALUATED_RESOLUTIONS] = rt.evaluations_by_resolution(rows, init.name)
            metadata["resolution_evaluation_command"] = " ".join(["python"] + sys.argv)
            init_io.write_json_atomic(path, metadata)
            print(f"Recorded {sorted(metadata[EVALUATED_RESOLUTIONS], key=int)} in {path}")
    return 0


def _write(rows, curves, resolutions, quiet=False):
    """The table so far: resolution.csv, resolution.json and resolution_table.md."""
    # pylint: disable=import-outside-toplevel
    from learnit_tf.meta import init_io
    from learnit_tf.core import atomic
    from learnit_tf.kinds.image import resolution_table as rt
    os.makedirs(FLAGS.output_dir, exist_ok=True)
    init_io.write_csv_atomic(rows, os.path.join(FLAGS.output_dir, "resolution.csv"),
                             rt.COLUMNS)
    result = {"command": " ".join(["python"] + sys.argv), "rows": rows,
              "standard": rt.standard_psnr_rows(curves)}
    init_io.write_json_atomic(os.path.join(FLAGS.output_dir, "resolution.json"), result)
    table = rt.markdown_table(rows, resolutions)
    atomic.atomic_save(os.path.join(FLAGS.output_dir, "resolution_table.md"),
                       lambda tmp: _write_text(tmp, table))
    if not quiet:
        print("\n" + table)
        print(json.dumps(result["standard"], indent=1))


if __name__ == "__main__":
    app.run(main)
