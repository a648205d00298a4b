"""How to fit from an init: a `FitRecipe` of phases, each an optimizer for some steps.

For example an init's meta-learned inner steps (with its learned Meta-SGD rates)
followed by Adam for the long run, or by the same learned-rate SGD with heavy-ball
momentum ramped in over a warm-up. `learnit_tf.meta.Fitter` runs a recipe; a new phase
starts its optimizer (and its momentum and warm-up) afresh.
"""

import dataclasses
from typing import Optional

from learnit_tf.meta.inner import InnerOptimizer


@dataclasses.dataclass(frozen=True)
class FitPhase:
    """`steps` optimizer steps (None: until the end of the fit) with `optimizer`;
    `learned_rates`: step with the model's meta-learned inner rates (SGD).

    `momentum` (SGD phases, in [0, 1)): heavy-ball momentum on the SGD step u,
    b <- momentum * b + u, w <- w - b. `warmup_steps`: the phase's k-th step
    (k = 1, 2, ...) is scaled by min(1, k / warmup_steps), a linear warm-up from the
    phase's start (Adam's moments and the momentum buffer still see every gradient).
    Both 0: the optimizer's plain step. `rate_scale` (> 0): every step u of the phase's
    optimizer is multiplied by it before momentum and warm-up (e.g. the learned rates
    x 2 for a long run). `momentum_restart` (momentum phases): before each step the
    buffer is zeroed when the gradient g points against it (sum of g * b < 0: the next
    heavy-ball step would go uphill), the gradient restart of O'Donoghue & Candès
    (2015).
    """

    optimizer: InnerOptimizer
    steps: Optional[int] = None
    learned_rates: bool = False
    momentum: float = 0.0
    warmup_steps: int = 0
    rate_scale: float = 1.0
    momentum_restart: bool = False

    def __post_init__(self):
        if not isinstance(self.optimizer, InnerOptimizer):
            raise ValueError(f"FitPhase.optimizer must be an InnerOptimizer, got "
                             f"{self.optimizer!r}.")
        if self.steps is not None and (isinstance(self.steps, bool) or int(self.steps) < 1):
            raise ValueError(f"FitPhase.steps must be None or >= 1, got {self.steps!r}.")
        if self.learned_rates and self.optimizer.name != "sgd":
            raise ValueError("A phase with learned_rates steps with SGD, got "
                             f"{self.optimizer.name!r}.")
        if (isinstance(self.momentum, bool) or not isinstance(self.momentum, (int, float))
                or not 0.0 <= float(self.momentum) < 1.0):
            raise ValueError(f"FitPhase.momentum must be a number in [0, 1), got "
                             f"{self.momentum!r}.")
        if self.momentum and self.optimizer.name != "sgd":
            raise ValueError("FitPhase.momentum is heavy-ball momentum on SGD steps; the "
                             f"phase steps with {self.optimizer.name!r}.")
        if (isinstance(self.warmup_steps, bool) or not isinstance(self.warmup_steps, int)
                or self.warmup_steps < 0):
            raise ValueError(f"FitPhase.warmup_steps must be an integer >= 0, got "
                             f"{self.warmup_steps!r}.")
        if (isinstance(self.rate_scale, bool) or not isinstance(self.rate_scale, (int, float))
                or not 0.0 < float(self.rate_scale) < float("inf")):
            raise ValueError(f"FitPhase.rate_scale must be a finite number > 0, got "
                             f"{self.rate_scale!r}.")
        if not isinstance(self.momentum_restart, bool):
            raise ValueError(f"FitPhase.momentum_restart must be True or False, got "
                             f"{self.momentum_restart!r}.")
        if self.momentum_restart and not self.momentum:
            raise ValueError("FitPhase.momentum_restart restarts a momentum buffer; the "
                             "phase has no momentum.")
        object.__setattr__(self, "momentum", float(self.momentum))
        object.__setattr__(self, "rate_scale", float(self.rate_scale))

    def describe(self):
        """The phase's compact name (`FitRecipe.name`: report rows, selection rows, zoo
        headlines), e.g. 'sgd(learned rates x 2, momentum 0.97)x20'. Model cards put the
        same fields in prose instead (`learnit_tf.zoo.card.format_recipe`, which says why
        the two differ); a new field belongs in both."""
        rate = "learned rates" if self.learned_rates else f"{self.optimizer.learning_rate:g}"
        extras = ((f" x {self.rate_scale:g}" if self.rate_scale != 1.0 else "")
                  + (f", momentum {self.momentum:g}" if self.momentum else "")
                  + (" with restarts" if self.momentum_restart else "")
                  + (f", warm-up {self.warmup_steps}" if self.warmup_steps else ""))
        return f"{self.optimizer.name}({rate}{extras})" + ("" if self.steps is None else
                                                           f"x{self.steps}")

    def to_dict(self):
        """JSON-ready; `momentum`, `warmup_steps`, `rate_scale` and `momentum_restart`
        only when set (so recipes without them read and write as before)."""
        out = {"optimizer": dataclasses.asdict(self.optimizer), "steps": self.steps,
               "learned_rates": self.learned_rates}
        if self.momentum:
            out["momentum"] = self.momentum
        if self.warmup_steps:
            out["warmup_steps"] = self.warmup_steps
        if self.rate_scale != 1.0:
            out["rate_scale"] = self.rate_scale
        if self.momentum_restart:
            out["momentum_restart"] = True
        return out


@dataclasses.dataclass(frozen=True)
class FitRecipe:
    """Test-time optimization in phases (the last one runs to the end).

    Example:

    >>> recipe = FitRecipe((FitPhase(InnerOptimizer("sgd", 1e-2), steps=2, learned_rates=True),
    ...                     FitPhase(InnerOptimizer("adam", 1e-4))))
    >>> recipe.name
    'sgd(learned rates)x2 then adam(0.0001)'
    >>> FitRecipe.from_dict(recipe.to_dict()) == recipe
    True
    """

    phases: tuple

    def __post_init__(self):
        phases = tuple(self.phases)
        if not phases or not all(isinstance(p, FitPhase) for p in phases):
            raise ValueError(f"A FitRecipe needs one or more FitPhase, got {self.phases!r}.")
        if any(p.steps is None for p in phases[:-1]):
            raise ValueError("Only the last phase of a FitRecipe may run to the end "
                             "(steps=None).")
        object.__setattr__(self, "phases", phases)

    @classmethod
    def of(cls, optimizer):
        """`optimizer` as a recipe (a FitRecipe is returned as it is)."""
        if isinstance(optimizer, FitRecipe):
            return optimizer
        return cls((FitPhase(optimizer),))

    @property
    def name(self):
        """A readable description (report rows)."""
        return " then ".join(p.describe() for p in self.phases)

    @property
    def learning_rate(self):
        """The last phase's optimizer learning rate (report rows; with learned rates, the
        rate they started from in meta-training)."""
        return self.phases[-1].optimizer.learning_rate

    def describe(self):
        return self.name

    def record(self):
        """JSON-ready record for metadata and reports."""
        return {"optimizer": self.name, "fit_recipe": self.to_dict()}

    def boundaries(self, steps):
        """[(start, end, phase index)] covering steps 0..steps."""
        out, start = [], 0
        for i, phase in enumerate(self.phases):
            end = steps if phase.steps is None else min(steps, start + int(phase.steps))
            if end > start:
                out.append((start, end, i))
            start = end
        if start < steps:  # The last phase has a step count: it continues to the end.
            out.append((start, steps, len(self.phases) - 1))
        return out

    def segment_at(self, step):
        """(start, end or None, phase index) of the segment of `boundaries` holding
        `step`, whatever the fit's length; end None: the segment runs to the end.

        >>> recipe = FitRecipe((FitPhase(InnerOptimizer("sgd", 1e-2), steps=2),
        ...                     FitPhase(InnerOptimizer("adam", 1e-4))))
        >>> recipe.segment_at(1), recipe.segment_at(7)
        ((0, 2, 0), (2, None, 1))
        """
        start = 0
        for i, phase in enumerate(self.phases):
            if phase.steps is None:
                return start, None, i
            if step < start + int(phase.steps):
                return start, start + int(phase.steps), i
            start += int(phase.steps)
        # The last phase has a step count: a new segment continues it to the end.
        return start, None, len(self.phases) - 1

    def to_dict(self):
        return {"phases": [p.to_dict() for p in self.phases]}

    @classmethod
    def from_dict(cls, data, source="fit_recipe"):
        """The recipe of `to_dict`; anything else (an unknown phase key included: a
        setting this version would silently ignore) is a ValueError naming `source`."""
        try:
            phases = []
            for p in data["phases"]:
                unknown = sorted(set(p) - _PHASE_KEYS)
                if unknown:
                    raise ValueError(f"unknown phase key(s) {unknown}")
                phases.append(FitPhase(InnerOptimizer(**p["optimizer"]), p.get("steps"),
                                       bool(p.get("learned_rates", False)),
                                       p.get("momentum", 0.0), p.get("warmup_steps", 0),
                                       p.get("rate_scale", 1.0),
                                       p.get("momentum_restart", False)))
            return cls(tuple(phases))
        except (KeyError, TypeError, ValueError) as e:
            raise ValueError(f"{source}: not a fit recipe ({type(e).__name__}: {e}); expected "
                             '{"phases": [{"optimizer": {"name": ..., "learning_rate": ...}, '
                             '"steps": N or null, "learned_rates": bool, optionally '
                             '"momentum": [0, 1), "warmup_steps": N >= 0, "rate_scale": > 0, '
                             '"momentum_restart": bool}, ...]}.') from None


_PHASE_KEYS = frozenset({"optimizer", "steps", "learned_rates", "momentum", "warmup_steps",
                         "rate_scale", "momentum_restart"})
