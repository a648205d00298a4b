"""Reading and writing init directories (the keras-hub preset layout).

An init directory holds three files:
- `config.json`: {"class_name": "Siren", "config": model.get_config(), "format_version": 1};
  enough to rebuild the architecture without gin or any code from the directory.
- `metadata.json`: what the init is (signal class and kind, task, dataset, algorithm and
  hyperparameters, training steps, wall time, command, library versions, evaluation);
  the versioned schema `learnit_tf.core.metadata.InitMetadata`, validated on read and
  read once per load (`load_init` takes an already read `InitMetadata`).
- `model.weights.h5`: the weights, as written by `model.save_weights`.

Writes are atomic: files go to a temporary sibling directory that is renamed into
place, so a reader never sees a half-written init.
"""

import json
import os
import platform
import shutil
import tempfile

import keras
import numpy as np
import tensorflow as tf

from learnit_tf.core import atomic
from learnit_tf.core.atomic import atomic_save, share_directory, write_json_atomic  # noqa: F401
from learnit_tf.core.metadata import (InitMetadata, MetadataError, NonFiniteConstant,
                                     non_finite_fields)
from learnit_tf.core.version import __version__
from learnit_tf.models import check_config, model_from_config

CONFIG_FILE = "config.json"
METADATA_FILE = "metadata.json"
WEIGHTS_FILE = "model.weights.h5"
INIT_FILES = (CONFIG_FILE, METADATA_FILE, WEIGHTS_FILE)
FORMAT_VERSION = 1


def library_versions():
    """Versions of the libraries an init was produced with."""
    return {
        "learnit_tf": __version__,
        "tensorflow": tf.__version__,
        "keras": keras.__version__,
        "numpy": np.__version__,
        "python": platform.python_version(),
    }


def save_npy_atomic(path, array):
    """Saves `array` as .npy at `path` via a temporary file and rename."""
    return atomic_save(path, lambda tmp: np.save(tmp, np.asarray(array)), ".npy")


def write_csv_atomic(rows, path, columns=None):
    """Writes rows (dicts) as CSV to `path`, atomically (`learnit_tf.core.atomic.write_csv`,
    rows first for the callers of earlier releases)."""
    return atomic.write_csv(path, rows, columns)


def save_init(model, directory, metadata=None, overwrite=False):
    """Saves `model` as an init directory, atomically.

    Args:
        model: a built learnit_tf coordinate network.
        directory: destination directory (created; must not exist unless `overwrite`).
        metadata: an `InitMetadata` or a dict, stored as metadata.json (library
            versions are added when absent).
        overwrite: replace an existing directory.

    Returns:
        The directory path.
    """
    directory = os.path.abspath(directory)
    if os.path.exists(directory) and not overwrite:
        raise FileExistsError(f"Init directory {directory!r} already exists; "
                              "pass overwrite=True to replace it.")
    parent = os.path.dirname(directory)
    os.makedirs(parent, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix=f".{os.path.basename(directory)}.tmp-", dir=parent)
    share_directory(tmp)  # mkdtemp creates 0700; an exported init/ is meant to be read by others.
    try:
        config = {"class_name": type(model).__name__, "config": model.get_config(),
                  "format_version": FORMAT_VERSION}
        write_json_atomic(os.path.join(tmp, CONFIG_FILE), config)
        if isinstance(metadata, InitMetadata):
            meta = metadata.to_dict()
            meta["library_versions"] = meta["library_versions"] or library_versions()
        else:
            meta = dict(metadata or {})
            meta.setdefault("library_versions", library_versions())
        write_json_atomic(os.path.join(tmp, METADATA_FILE), meta)
        model.save_weights(os.path.join(tmp, WEIGHTS_FILE))
        if os.path.exists(directory):
            old = tempfile.mkdtemp(prefix=f".{os.path.basename(directory)}.old-", dir=parent)
            os.rmdir(old)
            os.replace(directory, old)
            os.replace(tmp, directory)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, directory)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return directory


def _check_files_inside(directory, error=ValueError):
    """Refuses init files that are symlinks resolving outside `directory`."""
    root = os.path.realpath(directory)
    for name in INIT_FILES:
        path = os.path.join(directory, name)
        target = os.path.realpath(path)
        if os.path.islink(path) and os.path.commonpath([root, target]) != root:
            raise error(f"{path!r} is a symlink to {target!r}, outside the init directory; "
                        "an init's files must be inside it (copy the file instead).")


def read_config(directory):
    """Parses and validates `config.json` of an init directory.

    Also refuses any init file symlinked to outside the directory, and a config that
    `learnit_tf.models.check_config` refuses (unknown field, frozen weights).
    """
    path = os.path.join(directory, CONFIG_FILE)
    _check_files_inside(directory)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{path!r} not found: not an init directory "
                                f"(expected {', '.join(INIT_FILES)}).")
    with open(path) as f:
        try:
            config = json.load(f, parse_constant=NonFiniteConstant)
        except json.JSONDecodeError as e:
            raise ValueError(f"{path!r} is not valid JSON: {e}") from e
    for field, constant in non_finite_fields(config):
        raise ValueError(f"{path}: field {field!r} must be a finite number, got {constant} "
                         "(NaN/Infinity are not JSON).")
    if not isinstance(config, dict) or "class_name" not in config or "config" not in config:
        raise ValueError(f"{path!r} must hold an object with 'class_name' and 'config'.")
    check_config(config["class_name"], config["config"], source=path)
    return config


def read_metadata(directory):
    """The parsed `metadata.json` of an init directory as a dict ({} if absent).

    The file is validated against the schema (`MetadataError` names the file and the
    field); the dict is the file's JSON as written (version-1 keys stay as they are).
    New code reads `read_init_metadata`.
    """
    if not os.path.exists(os.path.join(directory, METADATA_FILE)):
        _check_files_inside(directory, MetadataError)
        return {}
    return read_init_metadata(directory).file_dict()


def read_init_metadata(directory):
    """The `InitMetadata` of an init directory (empty if it has no metadata.json).

    Raises:
        MetadataError: the file is not JSON or does not follow the schema.
    """
    path = os.path.join(directory, METADATA_FILE)
    _check_files_inside(directory, MetadataError)
    if not os.path.exists(path):
        return InitMetadata()
    if not os.path.isfile(path):
        raise MetadataError(f"{path}: not a regular file.")
    return InitMetadata.read(path)


def load_init(directory, metadata=None):
    """Builds the model described by an init directory and loads its weights.

    Args:
        directory: the init directory.
        metadata: its `InitMetadata` when the caller has read it already (it is read
            once per load); None reads it here.

    Example:

    >>> import tempfile
    >>> from learnit_tf.models import Siren
    >>> d = save_init(Siren(width=8, depth=2, seed=0), tempfile.mkdtemp() + "/init")
    >>> load_init(d).width
    8
    """
    config = read_config(directory)
    weights_path = os.path.join(directory, WEIGHTS_FILE)
    if not os.path.isfile(weights_path):
        raise FileNotFoundError(f"{weights_path!r} not found in init directory {directory!r}.")
    if metadata is None:
        metadata = read_init_metadata(directory)
    model = model_from_config(config["class_name"], config["config"],
                              source=os.path.join(directory, CONFIG_FILE))
    model.load_weights(weights_path)
    recipe = metadata.fit_recipe
    if recipe is not None:
        # pylint: disable-next=import-outside-toplevel
        from learnit_tf.meta.fit import FitRecipe
        # `learnit_tf.meta.fit` then fits this model with it by default.
        model.fit_recipe = FitRecipe.from_dict(
            recipe, source=os.path.join(directory, METADATA_FILE) + " fit_recipe")
    return model
