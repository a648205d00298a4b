"""What a kind's reader of one user signal gives `scripts/fit.py` (`SignalKind.fit_input`)."""

import dataclasses
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
    """

    task: object
    example: dict
    observed: List[Tuple[str, np.ndarray]]
    render: Callable
    description: Optional[str] = None
