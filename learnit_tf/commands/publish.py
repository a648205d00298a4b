r"""Publishes an init directory to a learnit_tf zoo (local directory or gs://).

Copies config.json, metadata.json and model.weights.h5 to
`<destination>/<name>/<version>/`, records their sizes and sha256 hashes and the
init's headline metrics in `<destination>/index.json` (written atomically, under a lock:
several publishes into one local zoo at once all keep their entries).
Published versions are immutable: re-publishing an existing version is refused.

Example:

    python scripts/publish.py --init=runs/text/init --name=text_siren --version=1
    python scripts/publish.py --init=runs/text/init --name=text_siren --version=1 \
        --destination=gs://my-bucket/learnit_zoo --description="SIREN init, rendered text"
"""

import json
import sys

from absl import app, flags

from learnit_tf import commands


from learnit_tf import zoo  # pylint: disable=wrong-import-position
from learnit_tf.core import locks  # noqa: E402  pylint: disable=wrong-import-position

flags.DEFINE_string("init", None, "Init directory to publish (config.json, metadata.json, "
                    "model.weights.h5).")
flags.DEFINE_string("name", None, "Zoo entry name, e.g. text_siren.")
flags.DEFINE_string("version", None, "Version to publish, e.g. 1 (must not exist yet).")
flags.DEFINE_string("destination", zoo.SHIPPED_ZOO_DIR,
                    "Zoo directory (local path or gs://); default: the repo's zoo/.")
flags.DEFINE_string("description", None, "One-line description of the entry.")
flags.mark_flags_as_required(["init", "name", "version"])

FLAGS = flags.FLAGS


def main(argv):
    commands.configure_logging()
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
    try:
        record = zoo.publish(FLAGS.init, FLAGS.name, FLAGS.version, FLAGS.destination,
                             description=FLAGS.description)
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


def run():
    """Console entry point (same flags as scripts/publish.py)."""
    app.run(main)


if __name__ == "__main__":
    run()
