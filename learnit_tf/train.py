"""Moved to the package `learnit_tf.training` (issue 25); this alias keeps the old import
path working: `from learnit_tf.train import meta_train, RunConfig, ...`.

The names are the very objects of their new modules (`learnit_tf.training.runner`,
`.config`, `.lock`, `.logs`, ...), so monkeypatching a class attribute (e.g.
`MetaTrainRunner.log_step`) reaches the runner.
"""

import warnings

warnings.warn(f"{__name__} is deprecated (issue 25 grouped learnit_tf by layer); import "
              "learnit_tf.training instead.", DeprecationWarning, stacklevel=2)

from learnit_tf.training import *  # noqa: F401,F403  pylint: disable=wildcard-import,unused-wildcard-import
from learnit_tf.training import __all__  # noqa: F401
