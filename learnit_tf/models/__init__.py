"""Coordinate networks shared by every kind, and their explicit-weight evaluation.

A model only one kind uses lives in that kind's package and is declared in its
`SignalKind.models` (NeRF's `NerfMLP`); `model_classes()` and the functions here that
take a class name (`model_from_config`, `check_config`, `config_fields`) include those,
and `learnit_tf.models.NerfMLP` still works (looked up through the registry).
"""

import inspect

from learnit_tf.core import registry
from learnit_tf.models.arguments import ArgumentError
from learnit_tf.models.fourier import FourierFeatureMLP
from learnit_tf.models.functional import FunctionalModel
from learnit_tf.models import presets
from learnit_tf.models.siren import Siren, SirenInitializer, with_mixed_precision

#: The shared model classes by name; `model_classes()` adds the kinds' own.
MODEL_CLASSES = {cls.__name__: cls for cls in (Siren, FourierFeatureMLP)}
# Keras base-layer options a saved config may carry besides the class's own arguments.
_KERAS_CONFIG_FIELDS = ("name", "dtype", "trainable")


def model_classes():
    """{class name: class} of the shared models and every registered kind's own models."""
    classes = dict(MODEL_CLASSES)
    for kind in registry.all_kinds():
        for name, cls in kind.models.items():
            if name in classes and classes[name] is not cls:
                raise ValueError(f"Model class name {name!r} of kind {kind.name!r} is already "
                                 f"taken by {classes[name].__module__}.{name}.")
            classes[name] = cls
    return classes


def __getattr__(name):
    """`learnit_tf.models.<Name>` of a kind's own model (e.g. NerfMLP), found lazily."""
    if name[:1].isupper():
        classes = model_classes()
        if name in classes:
            return classes[name]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def config_fields(class_name):
    """The fields a config of `class_name` may hold: its constructor's arguments + Keras'."""
    parameters = inspect.signature(model_classes()[class_name].__init__).parameters.values()
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
    classes = model_classes()
    if class_name not in classes:
        raise ValueError(f"{source}: field 'class_name' is {class_name!r}; expected one of "
                         f"{sorted(classes)}.")
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
    check_dtype(config.get("dtype"), f"{source}: field 'config.dtype'",
                mixed_option="mixed_precision" in fields)


SUPPORTED_DTYPES = ("float32",)


def check_dtype(dtype, what="dtype", mixed_option=True):
    """Refuses a Keras dtype policy other than float32 (None: the default, float32).

    Every signal kind feeds float32 coordinates and targets, so a float16, bfloat16,
    float64 or mixed_* policy would fail inside the first fit step with a raw dtype
    error. Mixed precision exists as an option of its own: Siren's `mixed_precision`
    (hidden layers in mixed_bfloat16, inputs and outputs in float32).

    Raises:
        ValueError naming `what`, the value and the supported values.
    """
    name = dtype.get("config", {}).get("name") if isinstance(dtype, dict) else dtype
    if name is None or name in SUPPORTED_DTYPES:
        return
    hint = (" For bfloat16 hidden layers use the option mixed_precision=True "
            "(learnit-fit --mixed_precision)." if mixed_option else "")
    raise ValueError(f"{what} is {name!r}; supported: {', '.join(map(repr, SUPPORTED_DTYPES))} "
                     f"(the signals are float32, so other dtypes fail in the first step).{hint}")


def model_from_config(class_name, config, source="model config"):
    """Builds a coordinate network from its class name and `get_config()` dict.

    Raises:
        ValueError naming `source` and the field: see `check_config`; also a model
        without trainable floating-point weights.
    """
    check_config(class_name, config, source)
    try:
        model = model_classes()[class_name].from_config(config)
    except ArgumentError as e:  # A field's value: name the file and the field too.
        raise ValueError(f"{source}: field 'config.{e.field}': {e}") from e
    frozen = [v.path for v in model.trainable_weights if not v.dtype.startswith(
        ("float", "bfloat", "mixed"))]
    if not model.trainable or not model.trainable_weights or frozen:
        raise ValueError(f"{source}: the {class_name} it describes has no trainable "
                         f"floating-point weights{' (' + ', '.join(frozen) + ')' if frozen else ''}"
                         "; a fit from it would never move.")
    return model


__all__ = ["Siren", "SirenInitializer", "FourierFeatureMLP", "FunctionalModel",
           "MODEL_CLASSES", "check_config", "check_dtype", "config_fields", "model_classes",
           "model_from_config", "with_mixed_precision", "presets"]
