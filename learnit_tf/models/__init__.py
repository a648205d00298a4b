"""Coordinate networks and their explicit-weight evaluation."""

import inspect

from learnit_tf.models.arguments import ArgumentError
from learnit_tf.models.fourier import FourierFeatureMLP
from learnit_tf.models.functional import FunctionalModel
from learnit_tf.models.nerf import NerfMLP
from learnit_tf.models import presets
from learnit_tf.models.siren import Siren, SirenInitializer, with_mixed_precision

MODEL_CLASSES = {cls.__name__: cls for cls in (Siren, FourierFeatureMLP, NerfMLP)}
# Keras base-layer options a saved config may carry besides the class's own arguments.
_KERAS_CONFIG_FIELDS = ("name", "dtype", "trainable")


def config_fields(class_name):
    """The fields a config of `class_name` may hold: its constructor's arguments + Keras'."""
    parameters = inspect.signature(MODEL_CLASSES[class_name].__init__).parameters.values()
    own = [p.name for p in parameters if p.name != "self"
           and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]
    return (*own, *_KERAS_CONFIG_FIELDS)


def check_config(class_name, config, source="model config"):
    """Refuses a config that names an unknown class or field, or that freezes the weights.

    A learnit_tf init exists to be fitted: `"trainable": false` (which Keras would
    accept) gives a model whose fit never moves, so it is an error here, as is any
    field the class does not take (a typo would otherwise be a raw TypeError).

    Args:
        class_name: one of `MODEL_CLASSES`.
        config: the class's `get_config()` dict (config.json's "config").
        source: what to name in errors, e.g. the config.json path.

    Raises:
        ValueError naming `source` and the field.
    """
    if class_name not in MODEL_CLASSES:
        raise ValueError(f"{source}: field 'class_name' is {class_name!r}; expected one of "
                         f"{sorted(MODEL_CLASSES)}.")
    if not isinstance(config, dict):
        raise ValueError(f"{source}: field 'config' must be an object of {class_name} "
                         f"arguments, got {type(config).__name__}.")
    if "trainable" in config and config["trainable"] is not True:
        raise ValueError(
            f"{source}: field 'config.trainable' is {config['trainable']!r}: it would freeze "
            "the weights, so a fit from this init would never move them. Remove the field "
            "(inits are always trainable).")
    fields = config_fields(class_name)
    unknown = sorted(set(config) - set(fields))
    if unknown:
        raise ValueError(f"{source}: field(s) {', '.join('config.' + f for f in unknown)} "
                         f"are not {class_name} options (expected some of "
                         f"{', '.join(fields)}).")


def model_from_config(class_name, config, source="model config"):
    """Builds a coordinate network from its class name and `get_config()` dict.

    Raises:
        ValueError naming `source` and the field: see `check_config`; also a model
        without trainable floating-point weights.
    """
    check_config(class_name, config, source)
    try:
        model = MODEL_CLASSES[class_name].from_config(config)
    except ArgumentError as e:  # A field's value: name the file and the field too.
        raise ValueError(f"{source}: field 'config.{e.field}': {e}") from e
    frozen = [v.path for v in model.trainable_weights if not v.dtype.startswith(
        ("float", "bfloat", "mixed"))]
    if not model.trainable or not model.trainable_weights or frozen:
        raise ValueError(f"{source}: the {class_name} it describes has no trainable "
                         f"floating-point weights{' (' + ', '.join(frozen) + ')' if frozen else ''}"
                         "; a fit from it would never move.")
    return model


__all__ = ["Siren", "SirenInitializer", "FourierFeatureMLP", "NerfMLP", "FunctionalModel",
           "MODEL_CLASSES", "check_config", "config_fields", "model_from_config",
           "with_mixed_precision", "presets"]
