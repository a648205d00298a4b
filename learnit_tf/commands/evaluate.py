r"""Evaluates an init with its signal kind's protocol: meta init vs standard init, held out.

    python scripts/evaluate.py --init=text_siren --output_dir=/tmp/learnit_eval
    python scripts/evaluate.py --init=shepp_logan_ct --output_dir=/tmp/learnit_ct \
        --views=1,2,4 --steps=200
    python scripts/evaluate.py --init=procedural_chairs_nerf --output_dir=/tmp/learnit_nerf \
        --steps=0,10,100 --num_held_out_views=5

`--init` is an init directory or a zoo name[@version]; the kind comes from the task in
its metadata and picks the protocol (PAPER.md): images (and other signals fitted by
steps) report PSNR against test-time steps and the steps the standard init needs to
match the meta init's 2-step PSNR; CT reports PSNR against the number of views; NeRF
fits one view (Phototourism: the left half of a photo) and reports held-out PSNR.
`--directory=DIR` evaluates on a folder of your own files of the init's kind.

Writes OUTPUT_DIR/report.csv (init, optimizer, learning_rate, steps, observations,
psnr_mean, psnr_std, count), report.json (rows, summary with the headline, settings),
per_example.csv and the protocol's PNGs (and baselines.csv with --baselines). An
OUTPUT_DIR that already holds files is refused unless --overwrite, which replaces only
the report's files (others are kept); the folder is checked and locked before the
evaluation starts (`learnit_tf.output_dir`). --write_metadata changes the init's
metadata.json under a lock, merging the evaluation into the file as it is then.

Protocol flags are the fields of each kind's `Protocol.Options`; a flag left unset
keeps that protocol's default (shown in its help), and a flag the init's protocol does
not take is an error.
Reader flags are the options of the kinds' readers of your own files that their folder
reader takes (`SignalKind.reader_options`, e.g. audio's --noresample); they apply with
--directory, and one the init's kind does not take is an error.
"""

import dataclasses
import inspect
import os
import sys

from absl import app, flags  # noqa: E402

from learnit_tf import commands  # noqa: E402

from learnit_tf import kinds  # noqa: E402
from learnit_tf.core import cli as core_cli  # noqa: E402
from learnit_tf.core.output_dir import OutputDir, OutputDirError, define_overwrite_flag  # noqa: E402

FLAGS = flags.FLAGS
core_cli.define_string_flag("init", None, "Init directory or zoo name[@version].")
core_cli.define_string_flag("output_dir", None, "Where report.csv, report.json and the PNGs go "
                    "(an existing folder holding files needs --overwrite).")
define_overwrite_flag()
flags.DEFINE_bool("write_metadata", False,
                  "Store the report as metadata['evaluation'] of a local init directory.")


def _protocol_classes():
    """{kind name: protocol class} of every registered kind with a protocol."""
    return {kind.name: kind.protocol_class() for kind in kinds.all_kinds() if kind.protocol}


def _define_protocol_flags():
    """One flag per option name of any kind's protocol; unset (None) keeps its default."""
    fields = {}
    for kind_name, protocol in _protocol_classes().items():
        for field in protocol.option_fields():
            fields.setdefault(field.name, []).append((kind_name, field))
    for name, entries in sorted(fields.items()):
        helps = {field.metadata.get("help", name).rstrip(".") for _, field in entries}
        text = helps.pop() if len(helps) == 1 else "; ".join(
            f"{k}: {f.metadata.get('help', name).rstrip('.')}" for k, f in entries)
        defaults = ", ".join(f"{k} {_format_default(f.default)}" for k, f in entries)
        text = f"{text}. [unset: the protocol's default: {defaults}]"
        if all(f.type in (bool, "bool") for _, f in entries):
            flags.DEFINE_bool(name, None, text)
        else:
            flags.DEFINE_string(name, None, text)
    return sorted(fields)


def _format_default(value):
    if isinstance(value, tuple):
        return ",".join(str(v) for v in value)
    return "none" if value is None else str(value)


PROTOCOL_FLAGS = _define_protocol_flags()


def folder_reader_options(kind):
    """The kind's reader options its folder reader (`--directory`) also takes."""
    if not kind.folder_dataset:
        return ()
    accepted = inspect.signature(kind.datasets[kind.folder_dataset]).parameters
    return tuple(o for o in kind.reader_options if o.name in accepted)


def _reader_kinds():
    """The kinds as seen by --directory: each with only its folder reader's options."""
    return [dataclasses.replace(kind, reader_options=folder_reader_options(kind))
            for kind in kinds.all_kinds()]


# Reader options of the kinds' folder readers (e.g. audio --noresample), one flag each;
# a name that is also a protocol option (e.g. --resolution) stays the protocol's.
READER_FLAGS = tuple(core_cli.define_reader_flags(_reader_kinds(), skip=PROTOCOL_FLAGS))


def with_reader_options(protocol, kind, flag_values):
    """Passes the reader flags that were set to `protocol`'s folder reader (--directory).

    Raises:
        ValueError naming a flag the kind's folder reader does not take, or one given
        without --directory.
    """
    reader_kind = dataclasses.replace(kind, reader_options=folder_reader_options(kind))
    given = core_cli.reader_options(reader_kind, flag_values)
    given = {name: value for name, value in given.items() if flag_values.get(name) is not None}
    if not given:
        return protocol
    if not getattr(protocol.options, "directory", None):
        raise ValueError(f"--{', --'.join(sorted(given))} read(s) your own files: pass "
                         "--directory too.")
    protocol_options = protocol.folder_options

    def folder_options(task):
        own = protocol_options(task)
        clash = sorted(set(given) & set(own))
        if clash:  # Never silently overridden: the protocol fixes these for its comparison.
            raise ValueError(f"--{', --'.join(clash)}: {type(protocol).__name__} sets this "
                             "reader option itself for the evaluation; leave it unset.")
        return {**given, **own}
    protocol.folder_options = folder_options
    return protocol
flags.DEFINE_alias("image_folder", "directory")


def main(argv):
    commands.configure_logging()
    core_cli.require_flags("init", "output_dir")
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
    out = OutputDir(FLAGS.output_dir, FLAGS.overwrite,
                    owned=("report.csv", "report.json", "per_example.csv", "baselines.csv"))
    try:
        out.open()  # Before the evaluation: a folder that cannot be written fails at once.
    except OutputDirError as e:
        print(f"Error: {e}", file=sys.stderr)
        return 2
    with out:
        return _evaluate(out)


def _evaluate(out):
    # pylint: disable=import-outside-toplevel
    from learnit_tf import evaluation
    from learnit_tf.commands import init_args
    from learnit_tf.meta import init_io
    from learnit_tf.core import locks

    try:
        model, metadata, init_dir = init_args.resolve_init(FLAGS.init)
        kind = evaluation.kind_of_metadata(metadata)
        protocol_class = kind.protocol_class()
        accepted = {f.name for f in protocol_class.option_fields()}
        given = {name: FLAGS[name].value for name in PROTOCOL_FLAGS
                 if FLAGS[name].value is not None}
        wrong = sorted(set(given) - accepted)
        if wrong:
            raise ValueError(f"--{', --'.join(wrong)} do(es) not apply to {kind.name} inits "
                             f"({protocol_class.__name__} takes "
                             f"--{', --'.join(sorted(accepted))}).")
        protocol = with_reader_options(protocol_class(**given), kind,
                                       {name: FLAGS[name].value for name in READER_FLAGS})
        print(f"Evaluating {FLAGS.init} ({kind.name} init) with {protocol_class.__name__}: "
              f"{protocol.options}")
        report = protocol.evaluate(model, metadata, init_name=FLAGS.init)
    except (ValueError, FileNotFoundError, LookupError) as e:
        raise app.UsageError(str(e)) from e

    headline = protocol.headline(report)
    report.summary["headline"] = headline
    report.settings["command"] = " ".join(["python"] + sys.argv)
    if FLAGS.write_metadata and init_dir is None:
        raise app.UsageError("--write_metadata needs a local init directory, not a zoo name.")
    staging = out.staging()
    report.write(staging)
    paths = [os.path.join(FLAGS.output_dir, name) for name in out.commit(staging)]
    if FLAGS.write_metadata:
        added = {"evaluation": report.to_json()}
        if "fit_recipe" in report.summary:  # --select_fit_recipe: fit and evaluate use it.
            added["fit_recipe"] = report.summary["fit_recipe"]
        # Locked read-merge-replace: another evaluation (or an edit) of this init's
        # metadata since it was read at the start is kept.
        locks.update_json(os.path.join(init_dir, init_io.METADATA_FILE),
                          lambda current: {**current, **added})

    _print_rows(report)
    cells = protocol.headline_cells(headline)
    print(f"\nheadline: {cells['metric']} {cells['meta']} (meta) vs {cells['standard']} "
          f"(standard) at {cells['at']}; the standard init needs {cells['match']} to match.")
    print(f"Wrote {', '.join(os.path.basename(p) for p in paths)} to {FLAGS.output_dir}")
    return 0


def _print_rows(report):
    """The report's rows as a table whose columns fit their contents (any kind's metric)."""
    metric = report.metric
    label = f"{metric.label} ({metric.unit})" if metric.unit else metric.label
    header = ("init", "optimizer", "lr", "steps", "obs.", label, "n")
    lines = [(str(row["init"]), str(row["optimizer"]), f"{row['learning_rate']:g}",
              str(row["steps"]), str(row["observations"]),
              f"{row[metric.key + '_mean']:.{metric.digits}f} ± "
              f"{row[metric.key + '_std']:.{metric.digits}f}", str(row["count"]))
             for row in report.rows]
    widths = [max(len(cell) for cell in column) for column in zip(header, *lines)]
    print()
    for line in (header, *lines):
        print("  ".join(cell.ljust(w) if i < 2 else cell.rjust(w)
                        for i, (cell, w) in enumerate(zip(line, widths))))


def run():
    """Console entry point (same flags as scripts/evaluate.py)."""
    sys.exit(app.run(main))


if __name__ == "__main__":
    run()
