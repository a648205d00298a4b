"""What a kind's reader of one user signal gives `learnit-fit` (`SignalKind.fit_input`)."""

import dataclasses
import os
from typing import Callable, List, Optional, Tuple

import numpy as np


@dataclasses.dataclass
class FitInput:
    """One user signal ready to fit.

    Attributes:
        task: the task to fit with: the init's task, or one adapted to the input
            (e.g. CT at the sinogram's number of detector bins).
        example: the task's example (numpy arrays), validated by the task.
        observed: panels shown before the reconstructions in reconstruction.png:
            (title, float (H, W) or (H, W, C) array in [0, 1]).
        render: callable(fmodel, weights) -> float (H, W, C) array in [0, 1], the
            picture of a fit (the image, the CT slice, a view of the object).
        description: one line for the log ("64×64 image", "8 views of 33 bins").
        extra_outputs: optional callable(model, task, example) -> {relative file name:
            bytes}, the kind's own outputs of a fit (e.g. a 3D shape's surface mesh
            "surface.ply"), called with the fitted Keras model and written by
            `learnit-fit` into --output_dir (atomically, with its other outputs). Names
            are relative paths inside the folder (see `check_extra_outputs`).
    """

    task: object
    example: dict
    observed: List[Tuple[str, np.ndarray]]
    render: Callable
    description: Optional[str] = None
    extra_outputs: Optional[Callable] = None


def check_extra_outputs(outputs, reserved=()):
    """Validates what a kind's `extra_outputs` returned; returns it as a dict.

    Args:
        outputs: {relative file name: bytes}.
        reserved: names the command writes itself (a kind may not replace them).

    Raises:
        ValueError naming the offending entry: not a dict, a name that is absolute,
        climbs out of the folder ("..") or is reserved, or a value that is not bytes.

    >>> check_extra_outputs({"mesh/surface.ply": b"ply"})
    {'mesh/surface.ply': b'ply'}
    >>> check_extra_outputs({"../x.ply": b""})
    Traceback (most recent call last):
    ...
    ValueError: extra_outputs: '../x.ply' is not a relative path inside the output folder.
    """
    if not isinstance(outputs, dict):
        raise ValueError(f"extra_outputs must return a dict {{file name: bytes}}, got "
                         f"{type(outputs).__name__}.")
    checked = {}
    for name, data in outputs.items():
        if not isinstance(name, str) or not name:
            raise ValueError(f"extra_outputs: file names must be non-empty strings, got "
                             f"{name!r}.")
        normalized = os.path.normpath(name)
        if (os.path.isabs(name) or normalized == "." or normalized.split(os.sep)[0] == ".."):
            raise ValueError(f"extra_outputs: {name!r} is not a relative path inside the "
                             "output folder.")
        if normalized in reserved or normalized.split(os.sep)[0] in reserved:
            raise ValueError(f"extra_outputs: {name!r} is one of the command's own outputs "
                             f"({', '.join(sorted(reserved))}); choose another name.")
        if not isinstance(data, (bytes, bytearray)):
            raise ValueError(f"extra_outputs: {name!r} must be bytes, got "
                             f"{type(data).__name__}.")
        checked[normalized] = bytes(data)
    return checked
