"""Coordinate networks and their explicit-weight evaluation."""

from learnit_tf.models.fourier import FourierFeatureMLP
from learnit_tf.models.functional import FunctionalModel
from learnit_tf.models.nerf import NerfMLP
from learnit_tf.models import presets
from learnit_tf.models.siren import Siren, SirenInitializer, with_mixed_precision

MODEL_CLASSES = {cls.__name__: cls for cls in (Siren, FourierFeatureMLP, NerfMLP)}


def model_from_config(class_name, config):
    """Builds a coordinate network from its class name and `get_config()` dict."""
    if class_name not in MODEL_CLASSES:
        raise ValueError(
            f"Unknown model class {class_name!r}; expected one of {sorted(MODEL_CLASSES)}.")
    return MODEL_CLASSES[class_name].from_config(config)


__all__ = ["Siren", "SirenInitializer", "FourierFeatureMLP", "NerfMLP", "FunctionalModel",
           "MODEL_CLASSES", "model_from_config", "with_mixed_precision"]
