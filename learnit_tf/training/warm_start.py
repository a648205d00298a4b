"""Warm start: a run's step 0 starts from an existing init instead of random weights.

`load_parent` reads the parent (an init directory, or a zoo entry, verified);
`copy_parent_weights` checks that it has the run's architecture and copies its weights
and learned inner rates into the run's model; `warm_start_record` is what the exported
metadata records of the parent (and `WARM_START_FILE` keeps it for resumed runs).
"""

import hashlib
import json
import os

import keras
import numpy as np

from learnit_tf.meta import init_io
from learnit_tf.core.metadata import as_init_metadata
from learnit_tf.models.inner_rates import inner_rates_of
from learnit_tf.core import cli
from learnit_tf.training.errors import MetaTrainConfigError
from learnit_tf.training.lock import read_json_record
from learnit_tf.training.logs import write_text_atomic

WARM_START_FILE = "warm_start.json"  # The parent init of a warm-started run.


def load_parent(source):
    """(source as recorded, parent model, parent `InitMetadata`) of `meta_train.warm_start`.

    `source` is an init directory or a zoo name ("text_siren" for its latest version, or
    "text_siren@2"; recorded as name@version and verified against the zoo's digests).
    """
    try:
        if os.path.isdir(source):
            return source, init_io.load_init(source), init_io.read_init_metadata(source)
        # The zoo is a higher layer (it reads what training writes): the package root
        # installs its loader in core, as it installs the --init resolver.
        return cli.load_zoo_init(source)
    except (ValueError, OSError, KeyError) as e:
        raise MetaTrainConfigError(f"meta_train.warm_start={source!r}: {e}") from e


def warm_start_record(source, parent, metadata):
    """What the metadata records of a warm start's parent init (JSON-ready): where it
    came from, the digest of its weights (trainable, then non-trainable: fixed features
    and learned rates), and its own steps, wall time and command, so the total training
    is known."""
    digest = hashlib.sha256()
    for variable in list(parent.trainable_variables) + list(parent.non_trainable_variables):
        digest.update(np.ascontiguousarray(keras.ops.convert_to_numpy(variable)).tobytes())
    return {"init": source, "weights_sha256": digest.hexdigest(),
            "steps": metadata.steps, "wall_time_seconds": metadata.wall_time_seconds,
            "command": metadata.command}


def _architecture(model):
    return {k: v for k, v in model.get_config().items()
            if k not in ("name", "seed", "inner_rates")}


def copy_parent_weights(model, rates_layer, parent, source):
    """Copies `parent`'s weights (and learned inner rates) into `model`.

    Args:
        model: the run's model (built by model_fn).
        rates_layer: the run's learned inner-rates layer, or None (no Meta-SGD).
        parent: the parent init's model.
        source: the parent as named in the error messages.

    Raises:
        MetaTrainConfigError: the parent is another architecture, or carries learned
            rates of another granularity than the run's (or the run learns none).
    """
    if type(parent) is not type(model) or _architecture(parent) != _architecture(model):
        raise MetaTrainConfigError(
            f"meta_train.warm_start={source!r} is a {type(parent).__name__} "
            f"{_architecture(parent)}, but meta_train.model_fn builds a "
            f"{type(model).__name__} {_architecture(model)}; they must match.")
    theirs = inner_rates_of(parent)
    # Every weight but the learned rates: the trainable ones and the fixed ones (a
    # Fourier-feature matrix B drawn from the seed belongs to the parent's function).
    # Matched by order: variable paths carry per-process unique model names.
    rate_ids = {id(v) for layer in (rates_layer, theirs) if layer is not None
                for v in layer.rates}

    def weights(m):
        return [v for v in m.trainable_variables + m.non_trainable_variables
                if id(v) not in rate_ids]

    targets, values = weights(model), weights(parent)
    if [tuple(v.shape) for v in targets] != [tuple(v.shape) for v in values]:
        raise MetaTrainConfigError(
            f"meta_train.warm_start={source!r}: its weights "
            f"{[tuple(v.shape) for v in values]} do not match this architecture's "
            f"{[tuple(v.shape) for v in targets]}.")
    for target, value in zip(targets, values):
        target.assign(value)
    if theirs is not None:
        if rates_layer is None or rates_layer.granularity != theirs.granularity:
            raise MetaTrainConfigError(
                f"meta_train.warm_start={source!r} carries learned inner rates per "
                f"{theirs.granularity!r}; set meta_train.inner_rates="
                f"{theirs.granularity!r} to keep training them (got "
                f"{None if rates_layer is None else rates_layer.granularity!r}).")
        for target, value in zip(rates_layer.rates, theirs.rates):
            target.assign(value)
        rates_layer.clip()  # Into this run's bounds.


def record_parent(model_dir, record):
    """Keeps the parent's record in `model_dir` (a resumed run reports the same parent)."""
    write_text_atomic(os.path.join(model_dir, WARM_START_FILE), json.dumps(record, indent=2))


def recorded_parent(model_dir, source):
    """The parent recorded at step 0 of the run in `model_dir`, which a run resuming with
    `meta_train.warm_start=source` continues (MetaTrainConfigError if it has none: the
    run was not warm-started, and its checkpoint would silently win)."""
    record = read_json_record(os.path.join(model_dir, WARM_START_FILE))
    if not record:
        raise MetaTrainConfigError(
            f"meta_train.warm_start={source!r} is set, but the run in {model_dir} was not "
            f"warm-started (no {WARM_START_FILE}); its checkpoint would win. Drop warm_start "
            "or use a new model_dir.")
    return record
