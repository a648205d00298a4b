"""Explicit-weight evaluation of Keras models.

Meta-learning differentiates *through* optimization, so inner loops must treat
weights as values, never assign variables. `FunctionalModel` wraps a built Keras
model and evaluates it with a list of weight tensors through Keras 3's
`stateless_call`; gradients flow from the output back into those tensors.
"""

import tensorflow as tf


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

    def __init__(self, model):
        if not model.built:
            raise ValueError(f"Model {model.name!r} must be built before functional use.")
        self.model = model

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
        outputs, _ = self.model.stateless_call(list(weights), non_trainable, inputs)
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

    def __init__(self, model, non_trainable=None):
        super().__init__(model)
        self._non_trainable = None if non_trainable is None else list(non_trainable)

    def __call__(self, weights, inputs):
        if self._non_trainable is None:
            return super().__call__(weights, inputs)
        if len(weights) != self.num_weights:
            raise ValueError(
                f"Expected {self.num_weights} weight tensors for model {self.model.name!r}, "
                f"got {len(weights)}.")
        outputs, _ = self.model.stateless_call(list(weights), self._non_trainable, inputs)
        return outputs
