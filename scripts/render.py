"""Renders a NeRF init (optionally fitted to one view of an object) along a camera path.

Thin shell over `learnit_tf.commands.render` (installed as a console command; see
README). Flags: `python scripts/render.py --help`.
"""

import os
import sys

# Running from a checkout without installing still finds the package.
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from learnit_tf.commands import render as _command  # noqa: E402  pylint: disable=wrong-import-position

__doc__ = _command.__doc__  # absl prints the main module's docstring for --help

if __name__ == "__main__":
    _command.run()
