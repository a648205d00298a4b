"""Explicit-weight evaluation of Keras models.

Meta-learning differentiates *through* optimization, so inner loops must treat
weights as values, never assign variables. `FunctionalModel` wraps a built Keras
model and evaluates it with a list of weight tensors through Keras 3's
`stateless_call`; gradients flow from the output back into those tensors.
"""

import tensorflow as tf

from learnit_tf.models.siren import Siren


def supports_mixed_precision(model):
    """Whether `model` can run its hidden matmuls in bfloat16 (a float32 Siren)."""
    return isinstance(model, Siren) and model.dtype_policy.name == "float32"


class FunctionalModel:
    """A built Keras model evaluated as a pure function of its trainable weights.

    Non-trainable weights (e.g. the Fourier matrix B) are captured as constants.

    Example:

    >>> from learnit_tf.models import Siren
    >>> fmodel = FunctionalModel(Siren(width=16, depth=3, seed=0))
    >>> weights = fmodel.initial_weights()
    >>> out = fmodel(weights, tf.zeros((4, 2)))
    >>> tuple(out.shape)
    (4, 3)
    """

    def __init__(self, model, mixed_precision=None):
        if not model.built:
            raise ValueError(f"Model {model.name!r} must be built before functional use.")
        self.model = model
        # None: the model's own setting; True/False: passed to its call (Siren only).
        if mixed_precision is not None and not supports_mixed_precision(model):
            raise ValueError(f"mixed_precision={mixed_precision!r} was asked for model "
                             f"{model.name!r} ({type(model).__name__}); bfloat16 hidden "
                             "matmuls are implemented for float32 Siren models only.")
        self.mixed_precision = None if mixed_precision is None else bool(mixed_precision)

    def with_mixed_precision(self, enabled=True):
        """The same functional model evaluated with (or without) bfloat16 hidden matmuls."""
        copy = object.__new__(type(self))
        copy.__dict__.update(self.__dict__)
        if not supports_mixed_precision(self.model):
            raise ValueError(f"Mixed precision was asked for model {self.model.name!r} "
                             f"({type(self.model).__name__}); it is implemented for float32 "
                             "Siren models only.")
        copy.mixed_precision = bool(enabled)
        return copy

    def _call_kwargs(self):
        return {} if self.mixed_precision is None else {"mixed_precision": self.mixed_precision}

    @property
    def num_weights(self):
        return len(self.model.trainable_variables)

    def initial_weights(self):
        """The model's current trainable weights as a list of tensors."""
        return [tf.convert_to_tensor(v) for v in self.model.trainable_variables]

    def weight_shapes(self):
        return [tuple(v.shape) for v in self.model.trainable_variables]

    def __call__(self, weights, inputs):
        if len(weights) != self.num_weights:
            raise ValueError(
                f"Expected {self.num_weights} weight tensors for model {self.model.name!r}, "
                f"got {len(weights)}.")
        non_trainable = [tf.convert_to_tensor(v) for v in self.model.non_trainable_variables]
        outputs, _ = self.model.stateless_call(list(weights), non_trainable, inputs,
                                               **self._call_kwargs())
        return outputs

    def assign(self, weights):
        """Write weight tensors into the model's variables (outside inner loops only)."""
        for var, value in zip(self.model.trainable_variables, weights):
            var.assign(value)


class BoundFunctionalModel(FunctionalModel):
    """A `FunctionalModel` whose non-trainable weights are given tensors, not variables.

    Compiled functions that take the constants as arguments capture no model state,
    so they can serve every model of the same architecture (and, under a
    distribution strategy, read them in replica context). `non_trainable=None` reads
    the model's own variables.
    """

    def __init__(self, model, non_trainable=None, mixed_precision=None):
        super().__init__(model, mixed_precision)
        self._non_trainable = None if non_trainable is None else list(non_trainable)

    def __call__(self, weights, inputs):
        if self._non_trainable is None:
            return super().__call__(weights, inputs)
        if len(weights) != self.num_weights:
            raise ValueError(
                f"Expected {self.num_weights} weight tensors for model {self.model.name!r}, "
                f"got {len(weights)}.")
        outputs, _ = self.model.stateless_call(list(weights), self._non_trainable, inputs,
                                               **self._call_kwargs())
        return outputs
