"""NeRF MLP of the paper's view-synthesis experiments (the NeRF kind's own model).

Declared in the kind's `models` (`learnit_tf.kinds.nerf.kind`) and registered with Keras
("learnit_tf>NerfMLP") when this module is imported, i.e. when the kinds are loaded;
`learnit_tf.models.NerfMLP` still finds it (through the registry).

PAPER.md, "View synthesis": positional encoding sin/cos(x · 2^i) for
i in linspace(0, 8, 20) (120 dims for 3D input, no raw xyz), 5 ReLU layers of
width 256, a linear output of 4 (rgb logits and density), no view directions.
Activations of the outputs (sigmoid for rgb, ReLU for σ) are applied by the renderer.
"""

import numpy as np
import keras
from keras import ops

from learnit_tf.models import arguments
from learnit_tf.models.inner_rates import InnerRatesMixin
from learnit_tf.models.presets import PresetMixin


@keras.saving.register_keras_serializable(package="learnit_tf")
class NerfMLP(PresetMixin, InnerRatesMixin, keras.Model):
    """Positional-encoding ReLU MLP returning raw (r, g, b, σ) per 3D point.

    Args:
        width: hidden width (paper: 256).
        hidden_layers: number of ReLU layers (paper: 5).
        num_frequencies: frequencies 2^linspace(0, max_log2_frequency, num_frequencies)
            (paper: 20).
        max_log2_frequency: paper: 8.
        out_features: paper: 4.
        in_features: paper: 3.
        inner_rates: optional meta-learned inner learning rates (see `Siren`).
        seed: integer seed for the dense initializers.

    Example:

    >>> model = NerfMLP(width=32, hidden_layers=2, seed=0)
    >>> tuple(model(keras.ops.zeros((5, 7, 3))).shape)
    (5, 7, 4)
    """

    def __init__(self, width=256, hidden_layers=5, num_frequencies=20, max_log2_frequency=8.0,
                 out_features=4, in_features=3, seed=None, inner_rates=None, **kwargs):
        super().__init__(**kwargs)
        self.width = arguments.integer("NerfMLP", "width", width, 1)
        self.hidden_layers = arguments.integer("NerfMLP", "hidden_layers", hidden_layers, 0)
        self.num_frequencies = arguments.integer("NerfMLP", "num_frequencies",
                                                 num_frequencies, 1)
        self.max_log2_frequency = arguments.number("NerfMLP", "max_log2_frequency",
                                                   max_log2_frequency)
        self.out_features = arguments.integer("NerfMLP", "out_features", out_features, 1)
        self.in_features = arguments.integer("NerfMLP", "in_features", in_features, 1)
        self.seed = seed = arguments.seed("NerfMLP", seed)
        self._frequencies = (2.0 ** np.linspace(
            0.0, self.max_log2_frequency, self.num_frequencies)).astype("float32")
        self.dense_layers = []
        for i in range(self.hidden_layers + 1):
            last = i == self.hidden_layers
            self.dense_layers.append(keras.layers.Dense(
                self.out_features if last else self.width,
                activation=None if last else "relu",
                kernel_initializer=keras.initializers.GlorotUniform(
                    seed=None if seed is None else int(seed) * 1000 + i),
                dtype=self.dtype_policy,
                name=f"dense_{i}"))
        shape = (None, 2 * self.in_features * self.num_frequencies)
        for layer in self.dense_layers:
            layer.build(shape)
            shape = (None, layer.units)
        self._build_inner_rates(inner_rates)
        self.built = True

    def encode(self, points):
        """Positional encoding: [sin(x·f), cos(x·f)] for every frequency f, no raw x."""
        scaled = points[..., None] * ops.convert_to_tensor(self._frequencies)
        scaled = ops.reshape(
            scaled, (*ops.shape(points)[:-1], self.in_features * self.num_frequencies))
        return ops.concatenate([ops.sin(scaled), ops.cos(scaled)], axis=-1)

    def call(self, points):
        x = self.encode(points)
        for layer in self.dense_layers:
            x = layer(x)
        return x

    def get_config(self):
        return {
            "width": self.width, "hidden_layers": self.hidden_layers,
            "num_frequencies": self.num_frequencies,
            "max_log2_frequency": self.max_log2_frequency, "out_features": self.out_features,
            "in_features": self.in_features, "seed": self.seed, "name": self.name,
            "dtype": self.dtype_policy.name, **self._inner_rates_config(),
        }
