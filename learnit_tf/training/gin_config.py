"""Gin registration of library pieces (gin stays at the edges: library code is plain Python).

Importing this module makes the coordinate networks, tasks, dataset functions and
the run configuration (`learnit_tf.training.config.RunConfig`, gin name `meta_train`)
configurable from `.gin` files and `--gin_bindings`. Every registered signal kind's
tasks, dataset functions and own models are registered under their own names.
"""

import gin

from learnit_tf import models
from learnit_tf.core import registry
from learnit_tf.training.config import RunConfig  # noqa: F401  (registers meta_train)

_REGISTERED = False


def register_all():
    """Registers everything with gin once (idempotent).

    Tasks and dataset functions come from the signal-kind registry
    (`learnit_tf.core.registry`), which also rebuilds an init's task and data from its
    metadata, so every class that can be trained can also be evaluated.
    """
    global _REGISTERED
    if _REGISTERED:
        return
    # The shared networks and each kind's own (SignalKind.models, e.g. NeRF's NerfMLP).
    for cls in models.model_classes().values():
        gin.external_configurable(cls, module="learnit_tf")
    for kind in registry.all_kinds():
        for name, obj in {**kind.tasks, **kind.datasets}.items():
            gin.external_configurable(obj, name=name, module="learnit_tf")
    _REGISTERED = True


def parse_config(gin_files=(), gin_bindings=()):
    """Parses gin files and bindings with errors that name the offending input.

    `gin_files` are paths; the command resolves the name of a shipped config
    ("image/text_maml_cpu.gin") to its path first (`learnit_tf.core.shipped`).
    """
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
