"""Moved to `learnit_tf.zoo.init_io`; this alias keeps the old import path working (issue 25).

The old name is the very same module object (`sys.modules` points it at the new one),
so module state and monkeypatching are shared.
"""

import sys

from learnit_tf.zoo import init_io as _moved

sys.modules[__name__] = _moved
