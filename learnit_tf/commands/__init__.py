"""The absl programs behind the console commands (`learnit-*`) and `scripts/*.py`.

Each module defines its flags and `main(argv)`, and `run()` is its console entry point
(see setup.py). The files in `scripts/` are thin shells over these modules.

Every command has `--verbose`: without it TensorFlow's start-up lines are hidden
(`learnit_tf.core._startup`) and library INFO logging (TFDS preparation lines) is not
shown; with it both come back.

An error a command reports as `absl.app.UsageError` (a bad input, a missing folder)
is printed alone, as "Error: ...", with a pointer to --help
(`learnit_tf.core.cli.print_usage_error`); absl would print the whole module docstring and every flag first, burying it.
"""

from learnit_tf.core import cli as _core_cli
from learnit_tf.core.cli import configure_logging, print_usage_error  # noqa: F401

# `--verbose`, and a UsageError printed alone: every command imports this package
# before app.run (the behaviour lives in core so a kind's own command can have it too).
_core_cli.install_command_behaviour()
