"""Zoo headlines of recorded evaluations, from each kind's protocol (no TensorFlow).

The zoo table shows, per init, both inits' PSNR at the protocol's key point and how
much the standard init needs to match. `headline_from_metadata` finds the init's kind
in the registry and asks its protocol (`learnit_tf.evaluation.Protocol`, imported
lazily by the registry, so this module and the zoo import no protocol);
`steps_headline` reads PSNR-vs-steps summaries, the format of every evaluation
recorded before reports.
"""

import math

from learnit_tf.kinds import registry

META, STANDARD = "meta", "standard"


def finite_number(value):
    """`value` as a finite float, or None."""
    try:
        value = float(value)
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) else None


def _curve_at(curve, step):
    """PSNR at `step` from a curve stored as {step: psnr}, a list or {"steps", "psnr"}."""
    if isinstance(curve, (list, tuple)):
        return finite_number(curve[step]) if len(curve) > step else None
    if not isinstance(curve, dict):
        return None
    for key in (str(step), step):
        if key in curve:
            return finite_number(curve[key])
    steps, values = curve.get("steps"), curve.get("psnr", curve.get("mean"))
    if isinstance(steps, list) and isinstance(values, list) and step in steps:
        i = steps.index(step)
        return finite_number(values[i]) if i < len(values) else None
    if isinstance(values, list):
        return _curve_at(values, step)
    return None


def steps_headline(summary, match_step=2):
    """The PSNR-vs-steps headline from a steps summary (`summarize` output or legacy metadata).

    >>> steps_headline({"psnr_curve": {"meta": {"2": 25.0}, "standard": [10.0, 11.0, 12.0]},
    ...                 "standard_steps_evaluated": 300})
    {'meta_psnr_at_2': 25.0, 'standard_psnr_at_2': 12.0, 'steps_to_match': '> 300'}
    """
    if not isinstance(summary, dict):
        return {}
    curves = summary.get("psnr_curve")
    curves = curves if isinstance(curves, dict) else {}
    steps_to_match = summary.get("steps_to_match")
    if not isinstance(steps_to_match, (int, float, str, dict)) or isinstance(steps_to_match, bool):
        steps_to_match = None
    evaluated = finite_number(summary.get("standard_steps_evaluated"))
    if steps_to_match is None and evaluated is not None:
        # The standard init never reached the meta init's PSNR in the evaluated steps.
        steps_to_match = f"> {int(evaluated)}"
    headline = {}
    for label in (META, STANDARD):
        key = f"{label}_psnr_at_{match_step}"
        value = finite_number(summary.get(key))
        headline[key] = value if value is not None else _curve_at(curves.get(label), match_step)
    headline["steps_to_match"] = steps_to_match
    return {k: v for k, v in headline.items() if v is not None}


def headline_from_metadata(metadata):
    """The protocol headline of an init's recorded evaluation, from its kind's protocol.

    Inits whose task is unknown (or missing, or whose metadata does not validate) are
    read as PSNR-vs-steps summaries.
    """
    if not hasattr(metadata, "get"):
        return {}
    evaluation = metadata.get("evaluation")
    # Schema version 2 records the kind; version 1 only the task class (learnit_tf.metadata).
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
