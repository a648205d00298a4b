"""Random Fourier-feature ReLU MLP (Tancik et al. 2020), as in the paper's CT experiment.

CT network (PAPER.md, "CT reconstruction"): γ(x) = [sin(x·B), cos(x·B)] with
B ~ N(0, 1)·scale of shape (in, num_features) and no 2π factor (the authors'
notebook), 4 ReLU layers of width 256, a linear output of 1 and a sigmoid.
"""

import keras
from keras import ops

from learnit_tf.models import arguments
from learnit_tf.models.inner_rates import InnerRatesMixin
from learnit_tf.models.presets import PresetMixin


@keras.saving.register_keras_serializable(package="learnit_tf")
class FourierFeatureMLP(PresetMixin, InnerRatesMixin, keras.Model):
    """ReLU MLP on fixed Gaussian Fourier features.

    The matrix B is a non-trainable weight: it is saved with the model and passed
    unchanged through explicit-weight evaluation, never adapted by meta-learning.

    Args:
        out_features: output channels (CT: 1).
        num_features: columns of B; the encoding has 2 * num_features dims (paper: 256).
        scale: standard deviation of B (paper: 30 for CT).
        width: hidden width (paper: 256).
        hidden_layers: number of ReLU layers (paper: 4).
        output_activation: None, "sigmoid", "relu" or any Keras activation name.
        in_features: coordinate dimension.
        inner_rates: optional meta-learned inner learning rates (see `Siren`).
        seed: integer seed for B and the dense initializers.

    Example:

    >>> model = FourierFeatureMLP(out_features=1, num_features=16, scale=10., width=32,
    ...                           hidden_layers=2, output_activation="sigmoid", seed=0)
    >>> tuple(model(keras.ops.zeros((8, 2))).shape)
    (8, 1)
    """

    def __init__(self, out_features=1, num_features=256, scale=30.0, width=256,
                 hidden_layers=4, output_activation=None, in_features=2, seed=None,
                 inner_rates=None, **kwargs):
        super().__init__(**kwargs)
        name = "FourierFeatureMLP"
        self.out_features = arguments.integer(name, "out_features", out_features, 1)
        self.num_features = arguments.integer(name, "num_features", num_features, 1)
        self.scale = arguments.number(name, "scale", scale, non_negative=True)
        self.width = arguments.integer(name, "width", width, 1)
        self.hidden_layers = arguments.integer(name, "hidden_layers", hidden_layers, 0)
        self.output_activation = output_activation
        self.in_features = arguments.integer(name, "in_features", in_features, 1)
        self.seed = seed = arguments.seed(name, seed)
        self._activation = keras.activations.get(output_activation)
        self.b_matrix = self.add_weight(
            shape=(self.in_features, self.num_features), name="fourier_b", trainable=False,
            initializer=keras.initializers.RandomNormal(stddev=self.scale, seed=seed))
        self.dense_layers = []
        for i in range(self.hidden_layers + 1):
            last = i == self.hidden_layers
            self.dense_layers.append(keras.layers.Dense(
                self.out_features if last else self.width,
                activation=None if last else "relu",
                kernel_initializer=keras.initializers.GlorotUniform(
                    seed=None if seed is None else int(seed) * 1000 + i + 1),
                dtype=self.dtype_policy,
                name=f"dense_{i}"))
        shape = (None, 2 * self.num_features)
        for layer in self.dense_layers:
            layer.build(shape)
            shape = (None, layer.units)
        self._build_inner_rates(inner_rates)
        self.built = True

    def call(self, coords):
        proj = ops.matmul(coords, self.b_matrix)
        x = ops.concatenate([ops.sin(proj), ops.cos(proj)], axis=-1)
        for layer in self.dense_layers:
            x = layer(x)
        return self._activation(x)

    def get_config(self):
        return {
            "out_features": self.out_features, "num_features": self.num_features,
            "scale": self.scale, "width": self.width, "hidden_layers": self.hidden_layers,
            "output_activation": self.output_activation, "in_features": self.in_features,
            "seed": self.seed, "name": self.name,
            "dtype": self.dtype_policy.name, **self._inner_rates_config(),
        }
