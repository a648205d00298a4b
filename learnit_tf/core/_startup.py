"""Quiet start-up for the learnit commands (imported by `learnit_tf/__init__.py` first).

TensorFlow prints CPU-feature, CUDA-stub and cuInit lines from C++ when it is
imported, which is before any absl flag is parsed; so the decision is taken here,
from the command line: a learnit command (console `learnit-*` or `scripts/*.py`)
run without `--verbose` imports TensorFlow with `TF_CPP_MIN_LOG_LEVEL=3` (unless set)
and with file descriptor 2 pointed at /dev/null for the duration of the import (some
of those lines are written before TensorFlow reads its log level). An import error
still surfaces as a Python exception after stderr is restored. Library users
importing learnit_tf keep TensorFlow's defaults.
"""

import os
import sys

# The repository's scripts/ folder (this file is learnit_tf/core/_startup.py).
_SCRIPTS_DIR = os.path.join(
    os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "scripts")


def is_learnit_command(argv=None):
    """Whether this process runs a learnit command (console entry point or repo script)."""
    argv = sys.argv if argv is None else argv
    if not argv or not argv[0]:
        return False
    program = os.path.abspath(argv[0])
    return (os.path.basename(program).startswith("learnit-")
            or os.path.dirname(program) == _SCRIPTS_DIR)


def verbose_requested(argv=None):
    argv = sys.argv if argv is None else argv
    return any(a in ("--verbose", "--verbose=true", "--verbose=True", "--verbose=1")
               for a in argv[1:])


def quiet_commands():
    """Silences TensorFlow's C++ start-up lines for learnit commands (see module doc)."""
    if not is_learnit_command() or verbose_requested() or "tensorflow" in sys.modules:
        return
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    sys.stderr.flush()
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        import tensorflow  # noqa: F401  pylint: disable=import-outside-toplevel,unused-import
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)
