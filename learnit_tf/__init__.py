"""learnit_tf: meta-learned initializations for coordinate-based neural representations.

A Keras/TensorFlow reimplementation and model zoo of Tancik et al., "Learned
Initializations for Optimizing Coordinate-Based Neural Representations" (CVPR 2021).

Importing the package registers every model and custom object with Keras (so
`keras.models.load_model` of a saved model works in a fresh process) and makes
`Siren.from_preset(name)` (and the other model classes') load verified zoo inits.
"""

from learnit_tf.core.version import __version__  # noqa: F401

from learnit_tf.core import _startup  # before anything imports TensorFlow

_startup.quiet_commands()

from learnit_tf import models  # noqa: E402  (registers the Keras serializables)
from learnit_tf.core import cli as _core_cli  # noqa: E402


def _load_preset(preset, **kwargs):
    # The zoo is imported when a preset is first asked for, not with the package.
    from learnit_tf import zoo  # pylint: disable=import-outside-toplevel
    return zoo.load(preset, **kwargs)


models.presets.set_preset_loader(_load_preset)


def _resolve_init_directory(init, log=None):
    # Commands (and a kind's own command, e.g. NeRF's render) resolve --init through
    # core.cli; the zoo behind it is imported only when an init is resolved.
    from learnit_tf.commands import init_args  # pylint: disable=import-outside-toplevel
    return init_args.resolve_init_directory(init, log)


_core_cli.set_init_resolver(_resolve_init_directory)


def _load_zoo_parent(source):
    # meta_train.warm_start = "text_siren@2": recorded as name@version, verified against
    # the zoo's digests; the zoo is imported only when a run names a zoo entry.
    from learnit_tf import zoo  # pylint: disable=import-outside-toplevel
    from learnit_tf.core.metadata import as_init_metadata  # pylint: disable=import-outside-toplevel
    try:
        entries = zoo.Zoo()
        name, version = zoo.split_name(source)
        version = entries.resolve_version(name, version)
        source = f"{name}@{version}"
        return (source, entries.load(name, version),
                as_init_metadata(entries.describe(name, version), source))
    except zoo.ZooError as e:
        raise ValueError(str(e)) from e


_core_cli.set_zoo_init_loader(_load_zoo_parent)
