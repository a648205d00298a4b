r"""Lists, describes, downloads and verifies the inits of a learnit_tf zoo.

Usage:

    python scripts/zoo.py list [--format=text|markdown|json]
    python scripts/zoo.py describe NAME [VERSION]
    python scripts/zoo.py download NAME [VERSION]
    python scripts/zoo.py verify [NAME [VERSION]]      # no name: every entry
    python scripts/zoo.py cards                        # (re)write every version's model card
    python scripts/zoo.py site --output_dir=DIR        # the static zoo site (HTML + CSS + PNGs)

`verify` checks every file's size and sha256 against the index (and against the
hashes pinned in the cache: a published version never changes), that the init builds,
and that its weights are finite (NaN/Inf weights fail); it prints `ok` or
`FAILED NAME@VERSION: reason` per entry and exits 1 if any failed.

`cards` writes README.md (+ curve.png, reconstructions.png) into every version folder of
a local zoo (`learnit_tf.zoo.card`; the evaluation folders named in the metadata are read
from the current folder). `site` renders the zoo index and its cards as plain HTML into
--output_dir (`learnit_tf.zoo.site`; a folder holding files needs --overwrite, which
replaces only the site's own files). Open DIR/index.html in a browser (file:// works).

NAME may also be written NAME@VERSION. The zoo is the repo's zoo/index.json unless
--index or $LEARNIT_TF_ZOO_INDEX names another (local path, http(s) URL or gs://);
downloads go to --cache_dir, $LEARNIT_TF_CACHE or ~/.cache/learnit_tf.
"""

import json
import os
import sys

from absl import app, flags

from learnit_tf.core import cli as core_cli
from learnit_tf.core.output_dir import define_overwrite_flag

from learnit_tf import commands


from learnit_tf import zoo  # pylint: disable=wrong-import-position
from learnit_tf.core import output_dir  # pylint: disable=wrong-import-position

flags.DEFINE_string("index", None, "Zoo index (index.json path or directory, http(s) URL or "
                    "gs://). Default: $LEARNIT_TF_ZOO_INDEX, else the repo's zoo/index.json.")
flags.DEFINE_string("cache_dir", None, "Download cache. Default: $LEARNIT_TF_CACHE, else "
                    "~/.cache/learnit_tf.")
flags.DEFINE_string("base_url", None, "Fetch entries not shipped locally from this URL.")
flags.DEFINE_enum("format", "text", ["text", "markdown", "json"], "Output format of `list`.")
core_cli.define_string_flag("output_dir", None, "Folder the `site` command writes.")
define_overwrite_flag()  # `site`: replace the site's own files; other files are kept.

FLAGS = flags.FLAGS
COMMANDS = ("list", "describe", "download", "verify", "cards", "site")


def _name_version(args, command, required=True):
    if not args:
        if required:
            raise app.UsageError(f"`{command}` needs NAME [VERSION].")
        return None, None
    if len(args) > 2:
        raise app.UsageError(f"`{command}` takes NAME [VERSION], got {args}.")
    return zoo.split_name(args[0], args[1] if len(args) == 2 else None)


def main(argv):
    commands.configure_logging()
    try:
        _run(argv)
    except (zoo.ZooError, output_dir.OutputDirError) as e:
        # Refusals (unknown entry, failed verification, unsafe path, an output folder
        # holding files) are user-facing.
        print(f"error: {e}", file=sys.stderr)
        sys.exit(1)


def _run(argv):
    if len(argv) < 2 or argv[1] not in COMMANDS:
        raise app.UsageError(f"Expected a command: {' | '.join(COMMANDS)}.")
    command, args = argv[1], argv[2:]
    the_zoo = zoo.Zoo(FLAGS.index, FLAGS.cache_dir, FLAGS.base_url)
    if command == "list":
        if args:
            raise app.UsageError("`list` takes no arguments.")
        rows = the_zoo.list()
        if FLAGS.format == "json":
            print(json.dumps(rows, indent=2, sort_keys=True))
        else:
            print(f"Zoo index: {the_zoo.index_location}")
            print(zoo.format_table(rows, markdown=FLAGS.format == "markdown"))
    elif command in ("cards", "site"):
        if args:
            raise app.UsageError(f"`{command}` takes no arguments.")
        from learnit_tf.zoo import card, site  # pylint: disable=import-outside-toplevel
        if command == "cards":
            for label, files in card.write_all_cards(the_zoo).items():
                print(f"{label}: {', '.join(files)}")
        else:
            if not FLAGS.output_dir:
                raise app.UsageError("`site` needs --output_dir=DIR.")
            written = site.build_site(the_zoo, FLAGS.output_dir, overwrite=FLAGS.overwrite)
            print(f"Wrote {len(written)} files; open "
                  f"{os.path.join(os.path.abspath(FLAGS.output_dir), site.PAGE_FILE)}")
    elif command == "describe":
        name, version = _name_version(args, command)
        info = the_zoo.info(name, version)
        print(json.dumps({"zoo": info, "metadata": the_zoo.describe(name, info["version"])},
                         indent=2, sort_keys=True))
    elif command == "download":
        name, version = _name_version(args, command)
        print(the_zoo.download(name, version))
    else:
        name, version = _name_version(args, command, required=False)
        targets = ([(name, version)] if name else
                   [(row["name"], row["version"]) for row in the_zoo.list()])
        failures = 0
        for target_name, target_version in targets:
            try:
                report = the_zoo.verify(target_name, target_version)
            except Exception as e:  # pylint: disable=broad-except  # report all entries
                failures += 1
                print(f"FAILED {_label(the_zoo, target_name, target_version)}: {e}")
            else:
                print(f"ok     {report['name']}@{report['version']}: "
                      f"{len(report['files'])} files, {report['parameters']} parameters, "
                      f"{report['directory']}")
        if failures:
            sys.exit(1)


def _label(the_zoo, name, version):
    """NAME@VERSION, with the version `verify` resolved (the latest when none was given)."""
    try:
        return f"{name}@{the_zoo.resolve_version(name, version)}"
    except Exception:  # pylint: disable=broad-except  # an unknown name: say what was asked
        return f"{name}@{version}" if version else name


def run():
    """Console entry point (same flags as scripts/zoo.py)."""
    app.run(main)


if __name__ == "__main__":
    run()
