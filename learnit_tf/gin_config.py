"""Gin registration of library pieces (gin stays at the edges: library code is plain Python).

Importing this module makes the coordinate networks, tasks, dataset functions and
the `meta_train` entry point configurable from `.gin` files and `--gin_bindings`.
Optional signal kinds (CT, NeRF, extra image classes) are registered when their
modules are importable.
"""

import importlib

import gin

from learnit_tf import evaluation, models
from learnit_tf.train import meta_train  # noqa: F401  (registers @meta_train)

_REGISTERED = False


def register_all():
    """Registers everything with gin once (idempotent).

    Tasks and dataset functions come from the same registry that rebuilds an init's
    task and data from its metadata (`learnit_tf.evaluation`), so every class that
    can be trained can also be evaluated.
    """
    global _REGISTERED
    if _REGISTERED:
        return
    for cls in (models.Siren, models.FourierFeatureMLP, models.NerfMLP):
        gin.external_configurable(cls, module="learnit_tf")
    for name, module_name in {**evaluation.TASK_MODULES, **evaluation.DATASET_MODULES}.items():
        gin.external_configurable(getattr(importlib.import_module(module_name), name),
                                  module="learnit_tf")
    _REGISTERED = True


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
