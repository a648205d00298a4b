"""Moved to `learnit_tf.core.metadata`; this alias keeps the old import path working (issue 25).

The old name is the very same module object (`sys.modules` points it at the new one),
so module state and monkeypatching are shared. Deprecated: import `learnit_tf.core.metadata`.
"""

import sys

from learnit_tf.core import metadata as _moved

sys.modules[__name__] = _moved
