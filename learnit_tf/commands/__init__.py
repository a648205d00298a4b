"""The absl programs behind the console commands (`learnit-*`) and `scripts/*.py`.

Each module defines its flags and `main(argv)`, and `run()` is its console entry point
(see setup.py). The files in `scripts/` are thin shells over these modules.

Every command has `--verbose`: without it TensorFlow's start-up lines are hidden
(`learnit_tf._startup`) and library INFO logging (TFDS preparation lines) is not
shown; with it both come back.

An error a command reports as `absl.app.UsageError` (a bad input, a missing folder)
is printed alone, as "Error: ...", with a pointer to --help (`print_usage_error`);
absl would print the whole module docstring and every flag first, burying it.
"""

import sys

from absl import app, flags, logging

from learnit_tf import _startup

flags.DEFINE_bool("verbose", False, "Show TensorFlow start-up lines and INFO logging.")


_ABSL_USAGE = app.usage


def print_usage_error(shorthelp=False, writeto_stdout=False, detailed_error=None,
                      exitcode=None):
    """`absl.app.usage` for the commands: --help as absl prints it, an error alone."""
    if detailed_error is None:
        return _ABSL_USAGE(shorthelp, writeto_stdout, detailed_error, exitcode)
    stream = sys.stdout if writeto_stdout else sys.stderr
    stream.write(f"Error: {detailed_error}\n(Run with --help for the usage.)\n")
    stream.flush()
    if exitcode is not None:
        sys.exit(exitcode)
    return None


# absl.app.run reports a UsageError through the module-level `usage`; every command
# imports this package before app.run, so they all print their errors alone.
app.usage = print_usage_error


def configure_logging():
    """Sets absl logging for a command from --verbose (call at the start of main)."""
    verbose = flags.FLAGS["verbose"].value if flags.FLAGS.is_parsed() else \
        _startup.verbose_requested()
    logging.set_verbosity(logging.INFO if verbose else logging.WARNING)
