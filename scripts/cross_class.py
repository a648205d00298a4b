"""Cross-class transfer: PSNR after k steps of every init on every signal class.

Thin shell over `learnit_tf.commands.cross_class` (installed as a console command; see
README). Flags: `python scripts/cross_class.py --help`.
"""

import os
import sys

# Running from a checkout without installing still finds the package.
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from learnit_tf.commands import cross_class as _command  # noqa: E402  pylint: disable=wrong-import-position

__doc__ = _command.__doc__  # absl prints the main module's docstring for --help

if __name__ == "__main__":
    _command.run()
