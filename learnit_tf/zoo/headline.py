"""An init's headline: the summary the zoo index records and its table shows (no TensorFlow).

`headline_from_metadata` is the one place a headline is made: what the init is
(signal class, model, algorithm, task, dataset, size) plus the numbers of its recorded
evaluation, which come from its kind's protocol (`protocol_headline`: the kind is
looked up in the registry, whose protocol classes are imported lazily, so this module
and the zoo import no protocol). `steps_headline` reads PSNR-vs-steps summaries, the
format of every evaluation recorded before reports.
"""


from learnit_tf.core import registry
from learnit_tf.core import metadata as init_metadata

# The steps headline is evaluation-level and TensorFlow-free; one copy, re-exported here.
from learnit_tf.evaluation.headlines import (  # noqa: E402,F401
    META, STANDARD, finite_number, steps_headline)


def protocol_headline(metadata):
    """The protocol headline of an init's recorded evaluation, from its kind's protocol.

    Inits whose task is unknown (or missing, or whose metadata does not validate) are
    read as PSNR-vs-steps summaries.

    >>> protocol_headline({"evaluation": {"meta_psnr_at_2": 25.0}})
    {'meta_psnr_at_2': 25.0}
    """
    if isinstance(metadata, init_metadata.InitMetadata):
        metadata = metadata.file_dict()
    if not hasattr(metadata, "get"):
        return {}
    evaluation = metadata.get("evaluation")
    # Schema version 2 records the kind; version 1 only the task class (learnit_tf.core.metadata).
    task = metadata.get("task")
    task_class = task.get("class_name") if isinstance(task, dict) else None
    try:
        if isinstance(metadata.get("kind"), str):
            protocol = registry.get_kind(metadata["kind"]).protocol_class()
        else:
            protocol = registry.kind_of_task(task_class).protocol_class() if task_class else None
    except ValueError:
        protocol = None
    if protocol is None:
        return steps_headline(evaluation)
    return protocol.headline_from_evaluation(evaluation)


def headline_from_metadata(metadata, config=None, parameters=None):
    """The summary the zoo index records and its table shows, tolerant of missing keys.

    The evaluation numbers come from the init's kind's protocol (`protocol_headline`:
    `learnit_tf.evaluation.Protocol.headline` of the recorded report; evaluations
    recorded before reports are read as PSNR-vs-steps summaries, except NeRF's, which
    used the image protocol and give no headline numbers).

    Args:
        metadata: an `InitMetadata` or parsed metadata.json (`signal_class`, `task`,
            `dataset`, `evaluation`; any of them may be absent).
        config: parsed config.json, for the model class.
        parameters: number of weights of the model.

    Returns:
        A dict of the known fields (absent ones are left out): `signal_class`,
        `model_class`, `algorithm`, `task`, `dataset`, the protocol's
        `meta_psnr_at_<point>`, `standard_psnr_at_<point>`, `psnr_at`,
        `steps_to_match` / `views_to_match`, and `parameters`.

    Example:

    >>> headline_from_metadata({"signal_class": "text", "evaluation": {
    ...     "psnr_curve": {"meta": {"2": 25.0}, "standard": [10.0, 11.0, 12.0]}}})
    {'signal_class': 'text', 'meta_psnr_at_2': 25.0, 'standard_psnr_at_2': 12.0}
    """
    if isinstance(metadata, init_metadata.InitMetadata):
        metadata = metadata.file_dict()  # As written: version-1 keys stay where they were.
    metadata = metadata if isinstance(metadata, dict) else {}
    task = metadata.get("task")
    dataset = metadata.get("dataset")
    headline = {
        "signal_class": metadata.get("signal_class"),
        "model_class": (config or {}).get("class_name"),
        # Where each schema version keeps it (learnit_tf.core.metadata).
        "algorithm": init_metadata.algorithm_of(metadata),
        "task": task.get("class_name") if isinstance(task, dict) else task,
        "dataset": dataset.get("name") if isinstance(dataset, dict) else dataset,
    }
    headline.update(protocol_headline(metadata))
    headline["parameters"] = parameters
    return {k: v for k, v in headline.items() if v is not None}
