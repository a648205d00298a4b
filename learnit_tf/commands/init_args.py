"""The commands' `--init`: a directory or a verified zoo name, its task and optimizer.

`resolve_init_directory` is also installed as the core resolver
(`learnit_tf.core.cli.set_init_resolver`, by `learnit_tf/__init__.py`), so a kind's own
command (NeRF's render) resolves `--init` the same way without importing the zoo.
"""

import os
import sys

from learnit_tf.meta import init_io
from learnit_tf.core.cli import is_path_like


def resolve_init_directory(init, log=None):
    """(local directory, from_zoo) of an init directory or a verified zoo name[@version].

    A path-like argument (see `is_path_like`) is an init directory; a bare name is a
    zoo entry, downloaded if needed and verified against the zoo's hashes. A local
    folder never shadows the zoo: if a bare name is both a zoo entry and a directory
    here, the zoo entry is used and a note says to pass ./NAME for the folder.

    Args:
        init: the `--init` flag value.
        log: callable(str) for notes (default: print to stderr).

    Raises:
        ValueError with a message naming `init`: not a directory, unknown zoo name, or
        a zoo entry that fails verification.
    """
    from learnit_tf import zoo  # pylint: disable=import-outside-toplevel
    log = log or (lambda message: print(message, file=sys.stderr))
    init = os.fspath(init)
    if not init:
        raise ValueError("--init is empty; expected an init directory or a zoo name.")
    if is_path_like(init):
        directory = os.path.expanduser(init)
        if not os.path.isdir(directory):
            raise ValueError(f"--init={init!r} is not a directory (expected an init directory "
                             f"with {', '.join(init_io.INIT_FILES)}, or a bare zoo name).")
        return directory, False
    local = os.path.isdir(init)
    try:
        directory = zoo.download(init)
    except zoo.UnknownEntryError as e:
        hint = (f" A directory {init!r} exists here: pass --init=./{init} to use it."
                if local else "")
        raise ValueError(f"--init={init!r} is not a zoo init ({e}).{hint} Directories must "
                         "be given as paths (./NAME, DIR/NAME or an absolute path).") from e
    except (zoo.ZooError, OSError) as e:
        raise ValueError(f"--init={init!r}: the zoo entry could not be loaded and verified: "
                         f"{e}") from e
    if local:
        log(f"Note: --init={init!r} is the zoo init; the local directory {init!r} is ignored "
            f"(pass --init=./{init} to use it).")
    return directory, True


def resolve_init(init, log=None, load_model=True):
    """(model, metadata, directory or None) for an init directory or a zoo name[@version].

    The directory is None for zoo entries (their files are verified and must not be
    written to). Resolution and its errors: `resolve_init_directory`. With
    `load_model=False` the model is None: only the metadata is read (to decide which
    init to load before paying for a Keras model).
    """
    directory, from_zoo = resolve_init_directory(init, log)
    try:
        metadata = init_io.read_metadata(directory)
        model = init_io.load_init(directory) if load_model else None
    except (OSError, ValueError, KeyError, TypeError) as e:
        if from_zoo:
            raise ValueError(f"--init={init!r}: zoo entry at {directory} is not a readable "
                             f"init: {e}") from e
        raise ValueError(f"--init={init!r} is not a readable init directory: {e}") from e
    return model, metadata, None if from_zoo else directory


def kind_of_init(metadata, init="init"):
    """(SignalKind, task) of an init from its metadata (the task class picks the kind);
    the task is the one a user's fit uses (`Task.for_fitting`)."""
    # pylint: disable=import-outside-toplevel
    from learnit_tf.core import registry
    from learnit_tf.core.metadata import as_init_metadata
    spec = as_init_metadata(metadata, source=f"{init} metadata").task
    if spec is None or not spec.class_name:
        raise ValueError(f"{init}'s metadata records no task class ('task': {{'class_name', "
                         "'config'}), so its task cannot be rebuilt (e.g. a converted "
                         "checkpoint: fit it from Python with the task you need).")
    kind = registry.kind_of_task(spec.class_name)
    try:
        task = kind.task_class(spec.class_name)(**spec.config)
    except TypeError as e:
        raise ValueError(f"{init}'s metadata has a task config {spec.config} that "
                         f"{spec.class_name} does not accept: {e}") from e
    return kind, task.for_fitting()


def fit_optimizer(metadata, name=None, learning_rate=None):
    """The test-time optimizer: by default the init's fit recipe, else the inner
    optimizer it was meta-trained for (with its learned rates, if any).

    Args:
        metadata: the init's metadata.
        name: "sgd" or "adam" (default: the init's inner optimizer).
        learning_rate: > 0 (default: the init's inner learning rate; required when
            `name` is not the init's inner optimizer).
    """
    from learnit_tf import evaluation  # pylint: disable=import-outside-toplevel
    hyper = (metadata or {}).get("hyperparameters") or {}
    default_name = hyper.get("inner_optimizer", "sgd")
    if learning_rate is not None and not learning_rate > 0:
        raise ValueError(f"--learning_rate must be > 0, got {learning_rate}.")
    if learning_rate is None and name is None and not (
            (metadata or {}).get("fit_recipe") or "inner_learning_rate" in hyper):
        raise ValueError("The init records neither a fit recipe nor an inner learning rate; "
                         "pass --learning_rate (and --optimizer).")
    if learning_rate is None and name is not None and (
            name != default_name or "inner_learning_rate" not in hyper):
        raise ValueError(f"--optimizer={name} needs --learning_rate: the init was meta-trained "
                         f"for {default_name} and records no learning rate for {name}.")
    return evaluation.meta_optimizer_from_metadata(metadata, learning_rate, optimizer=name)
