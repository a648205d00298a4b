"""Moved to `learnit_tf.core.output_dir`; this alias keeps the old import path working (issue 25).

The old name is the very same module object (`sys.modules` points it at the new one),
so module state (e.g. the kind registry) and monkeypatching are shared.
"""

import sys

from learnit_tf.core import output_dir as _moved

sys.modules[__name__] = _moved
