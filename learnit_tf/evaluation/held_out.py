"""What an evaluation fits, read from an init's metadata: the task, held-out signals and
the optimizer that fits from the meta init; the protocol of the init's kind.

Kinds are looked up in the registry (`learnit_tf.core.registry`); this module names none.
"""

from learnit_tf.core import registry as kinds
from learnit_tf.data.pipeline import take_examples
from learnit_tf.meta import FitPhase, FitRecipe, InnerOptimizer
from learnit_tf.core.metadata import DatasetSpec, TaskSpec, as_init_metadata


def task_from_metadata(metadata, as_trained=False):
    """The task to fit held-out signals of an init with (`Task.for_fitting` of the task
    recorded in its metadata, an `InitMetadata` or its dict); `as_trained=True`: the
    recorded task itself, as meta-training used it."""
    spec = as_init_metadata(metadata).task or TaskSpec()
    task = kinds.task_class(spec.class_name)(**spec.config)
    return task if as_trained else task.for_fitting()


def dataset_fn_from_metadata(metadata, data_dir=None, **overrides):
    """callable(split) -> examples for the dataset recorded in an init's metadata."""
    spec = as_init_metadata(metadata).dataset or DatasetSpec()
    fn = kinds.dataset_function(spec.function)
    kwargs = dict(spec.bindings)  # Version-1 files: `gin_bindings` (learnit_tf.core.metadata).
    if data_dir is not None:
        kwargs["data_dir"] = data_dir
    kwargs.update(overrides)
    return lambda split: fn(split=split, **kwargs)


def held_out_examples(metadata, count, split="test", data_dir=None, seed=12345):
    """`count` held-out examples of the signal class an init was trained on."""
    return take_examples(dataset_fn_from_metadata(metadata, data_dir)(split), count, seed=seed)


def meta_optimizer_from_metadata(metadata, learning_rate=None, optimizer=None,
                                 default_learning_rate=1e-2):
    """How to fit from a meta init: the one rule `fit.py`, `evaluate.py` and every
    kind's protocol follow.

    With neither `learning_rate` nor `optimizer`: the init's recorded `fit_recipe` if
    any; else the inner optimizer it was meta-trained with (the paper's protocol),
    stepping with its learned inner rates if it has them (Meta-SGD). Either argument
    asks for a plain optimizer instead (no recipe, no learned rates): `optimizer`
    ("sgd"/"adam", default the init's inner optimizer) at `learning_rate` (default
    the init's inner learning rate). `default_learning_rate` stands in where the
    metadata records no inner learning rate (images: the paper's SGD 1e-2; CT: 10;
    NeRF: 0.5).

    Example:

    >>> meta = {"hyperparameters": {"inner_optimizer": "sgd", "inner_learning_rate": 0.5}}
    >>> meta_optimizer_from_metadata(meta).describe()
    'sgd 0.5'
    >>> meta_optimizer_from_metadata(meta, optimizer="adam", learning_rate=1e-3).describe()
    'adam 0.001'
    """
    meta = as_init_metadata(metadata)
    hp = meta.hyperparameters
    own = learning_rate is None and optimizer is None
    if own and meta.fit_recipe is not None:
        return FitRecipe.from_dict(meta.fit_recipe, source="metadata fit_recipe")
    if learning_rate is None:
        learning_rate = (default_learning_rate if hp.inner_learning_rate is None
                         else hp.inner_learning_rate)
    plain = InnerOptimizer(optimizer or hp.inner_optimizer or "sgd", learning_rate)
    if own and "inner_rates" in hp.extra:
        return FitRecipe((FitPhase(plain, learned_rates=True),))
    return plain


def kind_of_metadata(metadata):
    """The `SignalKind` of the task recorded in an init's metadata."""
    name = as_init_metadata(metadata).kind_name()
    if not name:
        raise ValueError("The init's metadata records no known task (metadata['task']"
                         "['class_name']); its signal kind is unknown.")
    return kinds.get_kind(name)


def protocol_for(metadata, **options):
    """The evaluation protocol of an init's kind, with `options` (see its `Options`)."""
    return kind_of_metadata(metadata).protocol_class()(**options)


def recorded_protocol(metadata):
    """The protocol of an init's kind with the options of its recorded evaluation
    (`metadata['evaluation']['settings']`, those its `Options` has; none recorded: the
    defaults). `recorded_protocol(m).fitted_metadata(m)` is what that evaluation fitted,
    e.g. an image init's held-out images at the resolution it was evaluated at."""
    metadata = as_init_metadata(metadata).to_dict()
    protocol_class = kind_of_metadata(metadata).protocol_class()
    settings = (metadata.get("evaluation") or {}).get("settings") or {}
    names = {field.name for field in protocol_class.option_fields()}
    return protocol_class(**{k: v for k, v in settings.items() if k in names})

