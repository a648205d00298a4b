"""learnit_tf: meta-learned initializations for coordinate-based neural representations.

A Keras/TensorFlow reimplementation and model zoo of Tancik et al., "Learned
Initializations for Optimizing Coordinate-Based Neural Representations" (CVPR 2021).

Importing the package registers every model and custom object with Keras (so
`keras.models.load_model` of a saved model works in a fresh process) and makes
`Siren.from_preset(name)` (and the other model classes') load verified zoo inits.
"""

from learnit_tf.version import __version__  # noqa: F401

from learnit_tf import _startup  # before anything imports TensorFlow

_startup.quiet_commands()

from learnit_tf import models  # noqa: E402  (registers the Keras serializables)


def _load_preset(preset, **kwargs):
    # The zoo is imported when a preset is first asked for, not with the package.
    from learnit_tf import zoo  # pylint: disable=import-outside-toplevel
    return zoo.load(preset, **kwargs)


models.presets.set_preset_loader(_load_preset)
