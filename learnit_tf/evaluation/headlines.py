"""Reading headline numbers out of evaluation summaries (no TensorFlow).

A headline is the few numbers the zoo table and the cards show: both inits' value of
the kind's metric at the protocol's key point and how much the standard init needs to
match. `steps_headline` reads PSNR-vs-steps summaries (`steps.summarize` output, the
format of every evaluation recorded before reports); `format_count` writes a count of
steps or views as the tables show it. The zoo (`learnit_tf.zoo.headline`) reads these
without importing TensorFlow, so this module imports nothing heavy.
"""

import json
import math

from learnit_tf.core.registry import PSNR

META, STANDARD = "meta", "standard"


def finite_number(value):
    """`value` as a finite float, or None.

    >>> finite_number("2.5"), finite_number(float("nan")), finite_number(None)
    (2.5, None, None)
    """
    try:
        value = float(value)
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) else None


def _curve_at(curve, step):
    """The value at `step` of a curve stored as {step: value}, a list or {"steps", "psnr"}."""
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


def format_count(value):
    """A count of steps or views as tables show it: 3 significant digits, a ratio as "21.5×".

    >>> format_count(43), format_count(12345), format_count("> 300"), format_count({"ratio": 21.54})
    ('43', '1.23e+04', '> 300', '21.5×')
    """
    if isinstance(value, dict):
        for key in ("ratio", "speedup"):
            if finite_number(value.get(key)) is not None:
                return f"{finite_number(value[key]):.3g}×"
        return json.dumps(value, sort_keys=True, separators=(",", ":"))
    number = finite_number(value)
    if number is not None:
        return f"{number:.3g}"
    return "" if value is None else str(value)


def headline_values(headline, metric=PSNR):
    """(meta value, standard value, where) of a headline's key point for `metric`, e.g.
    (20.0, 12.9, "2 steps"); (None, None, "") when it records none.

    Reads `meta_<key>_at_<point>` / `standard_<key>_at_<point>` and `<key>_at` (older
    headlines without it name the step in the key).

    >>> headline_values({"meta_psnr_at_2": 20.0, "standard_psnr_at_2": 12.9})
    (20.0, 12.9, '2 steps')
    """
    prefix = f"meta_{metric.key}_at_"
    for key in sorted(headline or {}):
        if key.startswith(prefix):
            point = key[len(prefix):]
            where = headline.get(f"{metric.key}_at") or (
                f"{point} steps" if point.isdigit() else point.replace("_", " "))
            return (finite_number(headline[key]),
                    finite_number(headline.get(f"standard_{metric.key}_at_{point}")), where)
    return None, None, ""
