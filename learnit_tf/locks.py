"""Moved to `learnit_tf.core.locks`; this alias keeps the old import path working (issue 25).

The old name is the very same module object (`sys.modules` points it at the new one),
so module state (e.g. the kind registry) and monkeypatching are shared.
"""

import sys
import warnings

from learnit_tf.core import locks as _moved

warnings.warn(f"{__name__} is deprecated (issue 25 grouped learnit_tf by layer); import "
              f"{_moved.__name__} instead.", DeprecationWarning, stacklevel=2)
sys.modules[__name__] = _moved
