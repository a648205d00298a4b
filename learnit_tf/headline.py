"""Moved to `learnit_tf.zoo.headline`; this alias keeps the old import path working (issue 25).

Here `headline_from_metadata` keeps its old meaning, the protocol part of a headline
(`learnit_tf.zoo.headline.protocol_headline`); the one full headline, with what the
init is, is `learnit_tf.zoo.headline.headline_from_metadata`.
"""

import warnings

warnings.warn(f"{__name__} is deprecated (issue 25 grouped learnit_tf by layer); import "
              "learnit_tf.zoo.headline instead.", DeprecationWarning, stacklevel=2)

from learnit_tf.zoo.headline import (  # noqa: F401
    META, STANDARD, finite_number, protocol_headline, steps_headline)
from learnit_tf.zoo.headline import protocol_headline as headline_from_metadata  # noqa: F401
