"""`from_preset` for the coordinate networks (keras-hub style), backed by the verified zoo.

The models layer sits below the zoo (the zoo builds models), so the zoo is not imported
here: `learnit_tf/__init__.py` installs `learnit_tf.zoo.load` as the preset loader when
the package is imported, and `from_preset` calls whatever loader is installed.
"""

_PRESET_LOADER = None


def set_preset_loader(loader):
    """Installs callable(name, **kwargs) -> built model (normally `learnit_tf.zoo.load`)."""
    global _PRESET_LOADER
    _PRESET_LOADER = loader


class PresetMixin:
    """Adds `from_preset(name)` to a Keras coordinate network class."""

    @classmethod
    def from_preset(cls, preset, **kwargs):
        """The zoo init `preset` ("name" or "name@version", or an init directory) as `cls`.

        Files are verified against the zoo index before anything is loaded; keyword
        arguments go to `learnit_tf.zoo.load` (version, cache_dir, base_url, index).

        Example:

        >>> from learnit_tf.models import Siren
        >>> model = Siren.from_preset("text_siren")
        >>> model.w0
        200.0
        """
        if _PRESET_LOADER is None:
            raise RuntimeError("No preset loader installed; import learnit_tf first.")
        model = _PRESET_LOADER(preset, **kwargs)
        if not isinstance(model, cls):
            raise ValueError(f"Preset {preset!r} is a {type(model).__name__}, not a "
                             f"{cls.__name__}; load it with {type(model).__name__}.from_preset "
                             f"or learnit_tf.zoo.load({preset!r}).")
        return model
