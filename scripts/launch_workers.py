"""Starts N local meta-training workers (MultiWorkerMirroredStrategy) with their TF_CONFIG.

Thin shell over `learnit_tf.commands.launch_workers` (installed as the console command
`learnit-launch-workers`; see docs/distributed.md). Flags: `python scripts/launch_workers.py --help`.

That module is loaded from its file alone, not through the `learnit_tf` package (whose
import loads TensorFlow, seconds of CPU the launcher does not need: only its workers do).
"""

import importlib.util
import os

_PATH = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                     "learnit_tf", "commands", "launch_workers.py")
_spec = importlib.util.spec_from_file_location("learnit_launch_workers", _PATH)
_command = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_command)

__doc__ = _command.__doc__  # absl prints the main module's docstring for --help

if __name__ == "__main__":
    _command.run()
