"""Gin registration of library pieces (gin stays at the edges: library code is plain Python).

Importing this module makes the coordinate networks, tasks, dataset functions and
the `meta_train` entry point configurable from `.gin` files and `--gin_bindings`.
Optional signal kinds (CT, NeRF, extra image classes) are registered when their
modules are importable.
"""

import importlib

import gin

from learnit_tf import models, tasks
from learnit_tf.data import image_folder, text_images
from learnit_tf.train import meta_train  # noqa: F401  (registers @meta_train)

_REGISTERED = False

# (module, attribute) pairs registered when present.
_OPTIONAL = (
    ("learnit_tf.data.sdf_2d", "sdf_2d_examples"),
    ("learnit_tf.data.catalog", "celeb_a_examples"),
    ("learnit_tf.data.catalog", "imagenette_examples"),
    ("learnit_tf.data.shepp_logan", "shepp_logan_examples"),
    ("learnit_tf.tasks.ct", "CtTask"),
)


def register_all():
    """Registers everything with gin once (idempotent)."""
    global _REGISTERED
    if _REGISTERED:
        return
    for cls in (models.Siren, models.FourierFeatureMLP, models.NerfMLP, tasks.ImageTask):
        gin.external_configurable(cls, module="learnit_tf")
    gin.external_configurable(text_images.text_images_examples, module="learnit_tf")
    gin.external_configurable(image_folder.image_folder_examples, module="learnit_tf")
    for module_name, attr in _OPTIONAL + _nerf_entries():
        try:
            module = importlib.import_module(module_name)
        except ImportError:
            continue
        if hasattr(module, attr):
            gin.external_configurable(getattr(module, attr), module="learnit_tf")
    _REGISTERED = True


def _nerf_entries():
    return (("learnit_tf.nerf", "NerfTask"),
            ("learnit_tf.nerf", "procedural_objects_examples"),
            ("learnit_tf.nerf", "shapenet_examples"),
            ("learnit_tf.nerf", "phototourism_examples"))


def parse_config(gin_files=(), gin_bindings=()):
    """Parses gin files and bindings with errors that name the offending input."""
    register_all()
    for path in gin_files:
        try:
            open(path).close()
        except OSError as e:
            raise ValueError(f"Cannot read gin file {path!r}: {e}") from e
    try:
        gin.parse_config_files_and_bindings(list(gin_files), list(gin_bindings))
    except (ValueError, KeyError, gin.config.ParseError if hasattr(gin.config, "ParseError")
            else SyntaxError) as e:
        raise ValueError(f"Invalid gin configuration (files {list(gin_files)}, bindings "
                         f"{list(gin_bindings)}): {e}") from e
