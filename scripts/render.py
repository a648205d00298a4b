"""Renders a NeRF init (optionally fitted to one view of an object) along a camera path.

Thin shell over `learnit_tf.kinds.nerf.render`, the NeRF kind's own command
(installed as the console command `learnit-render`; see README). Flags: `python scripts/render.py --help`.
"""

import os
import sys

# Running from a checkout without installing still finds the package.
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from learnit_tf.kinds.nerf import render as _command  # noqa: E402  pylint: disable=wrong-import-position

__doc__ = _command.__doc__  # absl prints the main module's docstring for --help

if __name__ == "__main__":
    _command.run()
