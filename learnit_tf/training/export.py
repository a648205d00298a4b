"""Exporting a meta-trained init: the weights and the `InitMetadata` that describes them.

`export_init` writes `model_dir/init/` (config.json, metadata.json, model.weights.h5)
through `init_io.save_init`, via a local temporary directory when model_dir is remote.
The helpers here read, from the run's configuration, what the metadata records of the
data: the dataset function's gin bindings, where its files come from, the signal kind
that owns the task.
"""

import inspect
import os
import tempfile

import gin
import tensorflow as tf

from learnit_tf.meta import init_io
from learnit_tf.core import registry
from learnit_tf.training.distribute import is_remote_path


def export_init(model, init_dir, metadata):
    """`init_io.save_init`, through a local temporary directory for gs:// model dirs."""
    if not is_remote_path(init_dir):
        init_io.save_init(model, init_dir, metadata, overwrite=True)
        return
    with tempfile.TemporaryDirectory() as tmp:
        local = os.path.join(tmp, "init")
        init_io.save_init(model, local, metadata, overwrite=True)
        tf.io.gfile.makedirs(init_dir)
        # Object stores have no atomic directory rename: config.json, which marks a
        # complete init directory, is copied last.
        names = sorted(os.listdir(local), key=lambda n: n == init_io.CONFIG_FILE)
        for name in names:
            tf.io.gfile.copy(os.path.join(local, name), os.path.join(init_dir, name),
                             overwrite=True)


def kind_of_task(task):
    """The name of the registered signal kind whose task `task` is (None if no kind owns
    its class, e.g. a task defined in a test)."""
    try:
        return registry.kind_of_task(type(task).__name__).name
    except ValueError:
        return None


def primary_metric(task):
    """The primary `Metric` of the kind whose task `task` is (PSNR if no kind owns it)."""
    name = kind_of_task(task)
    return registry.PSNR if name is None else registry.get_kind(name).metric


def dataset_bindings(dataset_fn):
    """The gin bindings of the dataset function (e.g. its builder config), if any.

    Through gin's public `gin.get_bindings`; a function gin does not know has none.
    Only JSON scalars are kept (they are recorded in the init's metadata).
    """
    try:
        bindings = gin.get_bindings(dataset_fn)
    except (ValueError, TypeError):  # Not a gin configurable (a lambda, a partial).
        return {}
    return {k: v for k, v in bindings.items()
            if isinstance(v, (str, int, float, bool, type(None)))}


def dataset_source(dataset_fn):
    """{"source": ...} when the dataset function says where its files come from (its
    `source_metadata(**bindings)`, e.g. a Debian package's name, version and licence),
    recorded with the init; else {}."""
    describe = getattr(inspect.unwrap(dataset_fn), "source_metadata", None)
    if describe is None:
        return {}
    return {"source": describe(**dataset_bindings(dataset_fn))}
