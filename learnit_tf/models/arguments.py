"""Checks of the coordinate networks' constructor arguments (they come from config.json).

A config written by hand can hold `"depth": "5"`, `"w0": -200`, a NaN or a seed too
large for TensorFlow; each becomes a ValueError naming the class and the field
(`model_from_config` adds the file) instead of a TypeError deep inside Keras or a
network that silently fits nothing.
"""

import math
import numbers

#: Seeds are used as seed * 1000 + layer by the initializers, in int32 range everywhere.
MAX_SEED = 2**31 - 1


class ArgumentError(ValueError):
    """A bad constructor argument; `field` is its name (for "config.<field>" messages)."""

    def __init__(self, message, field):
        super().__init__(message)
        self.field = field


def _described(value):
    return f"{value!r} (a string)" if isinstance(value, str) else repr(value)


def integer(owner, name, value, minimum):
    """`value` as an int >= minimum (integral floats such as 256.0 are accepted)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not (
            isinstance(value, numbers.Integral) or (math.isfinite(value)
                                                    and float(value).is_integer())):
        raise ArgumentError(f"{owner}: {name} must be an integer >= {minimum}, got "
                            f"{_described(value)}.", name)
    if int(value) < minimum:
        raise ArgumentError(f"{owner}: {name} must be an integer >= {minimum}, got {value!r}.",
                            name)
    return int(value)


def number(owner, name, value, positive=False, non_negative=False):
    """`value` as a finite float (> 0 if `positive`, >= 0 if `non_negative`)."""
    wanted = ("a finite number > 0" if positive else
              "a finite number >= 0" if non_negative else "a finite number")
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(
            value) or (positive and not value > 0) or (non_negative and not value >= 0):
        raise ArgumentError(f"{owner}: {name} must be {wanted}, got {_described(value)}.", name)
    return float(value)


def seed(owner, value):
    """None, or an int in [0, MAX_SEED]."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or not (
            0 <= int(value) <= MAX_SEED):
        raise ArgumentError(f"{owner}: seed must be None or an integer in [0, {MAX_SEED}], "
                            f"got {_described(value)}.", "seed")
    return int(value)
