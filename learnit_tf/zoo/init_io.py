"""Moved to `learnit_tf.meta.init_io`; this alias keeps the old import path working (issue 25).

The old name is the very same module object (`sys.modules` points it at the new one),
so module state and monkeypatching are shared. Deprecated: import `learnit_tf.meta.init_io`.
"""

import sys

from learnit_tf.meta import init_io as _moved

sys.modules[__name__] = _moved
