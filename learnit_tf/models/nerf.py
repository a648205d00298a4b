"""Moved (issue 25): `NerfMLP` is the NeRF kind's own model, `learnit_tf.kinds.nerf.model`.

`learnit_tf.models.nerf.NerfMLP` keeps working: it is looked up through the registry
(this shared module imports no kind).
"""

import warnings

warnings.warn(f"{__name__} is deprecated (issue 25 grouped learnit_tf by layer); import "
              "learnit_tf.kinds.nerf.model instead.", DeprecationWarning, stacklevel=2)

from learnit_tf import models as _models


def __getattr__(name):
    return getattr(_models, name)
