"""The absl programs behind the console commands (`learnit-*`) and `scripts/*.py`.

Each module defines its flags and `main(argv)`, and `run()` is its console entry point
(see setup.py). The files in `scripts/` are thin shells over these modules.

Every command has `--verbose`: without it TensorFlow's start-up lines are hidden
(`learnit_tf._startup`) and library INFO logging (TFDS preparation lines) is not
shown; with it both come back.
"""

from absl import flags, logging

from learnit_tf import _startup

flags.DEFINE_bool("verbose", False, "Show TensorFlow start-up lines and INFO logging.")


def configure_logging():
    """Sets absl logging for a command from --verbose (call at the start of main)."""
    verbose = flags.FLAGS["verbose"].value if flags.FLAGS.is_parsed() else \
        _startup.verbose_requested()
    logging.set_verbosity(logging.INFO if verbose else logging.WARNING)
