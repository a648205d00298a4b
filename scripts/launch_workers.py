"""Starts N local meta-training workers (MultiWorkerMirroredStrategy) with their TF_CONFIG.

Thin shell over `learnit_tf.commands.launch_workers` (installed as the console command
`learnit-launch-workers`; see docs/distributed.md). Flags: `python scripts/launch_workers.py --help`.
"""

import os
import sys

# Running from a checkout without installing still finds the package.
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from learnit_tf.commands import launch_workers as _command  # noqa: E402  pylint: disable=wrong-import-position

__doc__ = _command.__doc__  # absl prints the main module's docstring for --help

if __name__ == "__main__":
    _command.run()
