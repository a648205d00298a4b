r"""Publishes an init directory to a learnit_tf zoo (local directory or gs://).

Copies config.json, metadata.json and model.weights.h5 to
`<destination>/<name>/<version>/`, records their sizes and sha256 hashes and the
init's headline metrics in `<destination>/index.json` (written atomically, under a lock:
several publishes into one local zoo at once all keep their entries).
Published versions are immutable: re-publishing an existing version is refused.
Then it writes the version's model card next to its files (`README.md`, `curve.png` and,
when the evaluation's folder is here, `reconstructions.png`; see
`learnit_tf.zoo.card`): generated from the published metadata and index record, not
listed in the index.

Example:

    python scripts/publish.py --init=runs/text/init --name=text_siren --version=1
    python scripts/publish.py --init=runs/text/init --name=text_siren --version=1 \
        --destination=gs://my-bucket/learnit_zoo --description="SIREN init, rendered text"
    python scripts/publish.py --init=runs/emoji_256/init --name=emoji_siren --version=6 \
        --nomake_latest   # a bare emoji_siren keeps loading its current latest
"""

import json
import os
import sys

from absl import app, flags

from learnit_tf.core import cli as core_cli

from learnit_tf import commands


from learnit_tf import zoo  # pylint: disable=wrong-import-position
from learnit_tf.core import locks  # noqa: E402  pylint: disable=wrong-import-position

core_cli.define_string_flag("init", None, "Init directory to publish (config.json, metadata.json, "
                    "model.weights.h5).")
flags.DEFINE_string("name", None, "Zoo entry name, e.g. text_siren.")
flags.DEFINE_string("version", None, "Version to publish, e.g. 1 (must not exist yet).")
flags.DEFINE_string("destination", zoo.SHIPPED_ZOO_DIR,
                    "Zoo directory (local path or gs://); default: the repo's zoo/.")
flags.DEFINE_string("description", None, "One-line description of the entry.")
flags.DEFINE_boolean(
    "make_latest", None,
    "Which version the bare name loads afterwards (the entry's `latest`). Unset: the highest "
    "version, as before this flag (a new highest version becomes the default); "
    "--make_latest: this version; --nomake_latest: the entry's latest stays as it is (e.g. "
    "a version for another resolution that should not change what every user of the name "
    "gets). An entry's first version is its latest either way.")
flags.DEFINE_string("evaluation_dir", None,
                    "Folder the init's recorded evaluation wrote (its reconstructions.png "
                    "goes on the card). Default: the --output_dir of the evaluation command "
                    "in metadata.json, when that folder exists here.")

FLAGS = flags.FLAGS


def main(argv):
    commands.configure_logging()
    core_cli.require_flags("init", "name", "version")
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
    try:
        record = zoo.publish(FLAGS.init, FLAGS.name, FLAGS.version, FLAGS.destination,
                             description=FLAGS.description, make_latest=FLAGS.make_latest)
    except (zoo.ZooError, ValueError, FileNotFoundError, locks.SharedFileBusyError) as e:
        # Refusals (existing version, broken init, bad name or destination, a zoo locked
        # by another publish for too long) are user-facing.
        print(f"error: {e}", file=sys.stderr)
        sys.exit(1)
    except OSError as e:  # E.g. a destination this user may not write.
        print(f"error: could not publish to --destination={FLAGS.destination!r}: {e}",
              file=sys.stderr)
        sys.exit(1)
    print(f"Published {FLAGS.name} version {FLAGS.version} to "
          f"{FLAGS.destination.rstrip('/')}/{record['path']}")
    print(json.dumps(record, indent=2, sort_keys=True))
    print(f"Latest of {FLAGS.name} (what a bare {FLAGS.name!r} loads): "
          f"{_latest(FLAGS.destination, FLAGS.name)}")
    try:
        written = _write_card(FLAGS.destination, FLAGS.name, FLAGS.version, FLAGS.evaluation_dir)
    except (OSError, ValueError, zoo.ZooError) as e:
        # The version is published and verified; only its card is missing.
        print(f"error: published, but its card could not be written ({e}); write it "
              f"with `learnit-zoo cards --index={FLAGS.destination}`", file=sys.stderr)
        sys.exit(1)
    print(f"Card: {', '.join(written)}")


def _latest(destination, name):
    """The entry's `latest` in the destination's index, as it is now."""
    from learnit_tf.zoo import index as zoo_index  # pylint: disable=import-outside-toplevel
    index = zoo_index.read_index_file(f"{destination.rstrip('/')}/{zoo_index.INDEX_FILE}")
    return index["entries"][name]["latest"]


def _write_card(destination, name, version, evaluation_dir):
    """Writes the card of the published version into its folder (any tf.io.gfile path)."""
    import tempfile  # pylint: disable=import-outside-toplevel
    from learnit_tf.zoo import card  # pylint: disable=import-outside-toplevel
    with tempfile.TemporaryDirectory() as cache:
        the_zoo = zoo.Zoo(destination.rstrip("/") + "/index.json", cache_dir=cache,
                          progress=False)
        record = card.read_version(the_zoo, name, version)
        if evaluation_dir is None:
            evaluation_dir = card.evaluation_folder(record.metadata)
        elif not os.path.isdir(evaluation_dir):
            raise ValueError(f"--evaluation_dir={evaluation_dir!r} is not a folder")
        local = os.path.isdir(destination) and not destination.startswith(("gs://", "ram://"))
        target = record.directory if local else tempfile.mkdtemp(dir=cache)
        written = card.write_card(target, record, evaluation_dir)
        if not local:
            import tensorflow as tf  # pylint: disable=import-outside-toplevel
            folder = f"{destination.rstrip('/')}/{record.info['path'].rstrip('/')}"
            for filename in written:
                tf.io.gfile.copy(os.path.join(target, filename), f"{folder}/{filename}",
                                 overwrite=True)
    return written


def run():
    """Console entry point (same flags as scripts/publish.py)."""
    app.run(main)


if __name__ == "__main__":
    run()
