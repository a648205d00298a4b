"""SIREN coordinate network exactly as in the paper's image experiment.

Tancik et al., "Learned Initializations for Optimizing Coordinate-Based Neural
Representations" (CVPR 2021), 2D image regression: SIREN with w0 = 200, width 256,
depth 5 (first sine layer, 3 hidden sine layers, linear output + 0.5). The layout
matches the authors' haiku `SirenLayer`: every hidden layer computes
`sin(w0 * (x @ W + b))`, the last one `x @ W + b + 0.5`.

`mixed_precision=True` runs the matmuls of the hidden sine layers in bfloat16
(weights stay float32; the hardware accumulates in float32) and keeps the first and
the output layer in float32: the first layer multiplies the coordinates by w0 = 200
and bfloat16's 2⁻⁸ rounding of the coordinates would cost whole radians of phase
(measured: with every layer in bfloat16 a test-time fit loses 6.7 dB after 100 steps
and MAML meta-gradients keep a cosine of 0.1 to float32's; with the first and last
layers in float32, within 0.3 dB and 0.99). See benchmarks/README.md.

How a mixed sine layer is computed (`_mixed_sine_layer`), and why, from
benchmarks/precision.py on an AVX512-BF16 CPU (TensorFlow graph mode, oneDNN):
- w0 is folded into the kernel and bias (a 256×256 scaling instead of an N×256 one;
  bfloat16 keeps its relative precision under scaling); a hidden layer multiplies in
  bfloat16 and adds the bias in float32 (so the bias and its gradient, a sum over all
  coordinates, are never rounded to bfloat16);
- the sine runs in float32, by default as a polynomial (`fast_sine`, below);
  TensorFlow's CPU sine and cosine on bfloat16 tensors are slower than on float32 ones
  (they convert per element), no cheaper than the casts;
- sine and cosine are computed once per forward pass: every derivative, of any order
  (MAML's second order), reuses them and needs only multiplies, and a zero cotangent
  (the unused cosine of a first-order backward pass) costs nothing. TensorFlow's own
  sine recomputes the cosine at every backward pass and the sine again in the
  second-order one: 104 instead of 56 sine/cosine passes per MAML step (K = 2,
  meta-batch 3);
- `fast_sine` ("auto", the default: on the mixed path only; True: also on the float32
  path; False: `tf.sin` and `tf.cos`, `_sine`): the bias add (and the bfloat16 product's
  cast) and a range-reduced polynomial sine and cosine (`learnit_tf.models.fast_sine`,
  as accurate as `tf.sin`: ≤ 1.2e-7 absolute for |z| ≤ 8192) run as one XLA cluster
  inside the graph-mode step: 28 forward sine layers of 4096×256 values cost 26 instead
  of 56 ms of CPU time, and the mixed MAML step gets 8–10 % faster (1.50–1.52× →
  1.62–1.67× float32's in CPU time, benchmarks/precision.py). A sine feeding a bfloat16
  matmul leaves its cluster in bfloat16 (the cast fused); each backward pass's cast,
  multiplies, cast and bias sum run as one more cluster, and MAML's second order of
  that as another (`fast_sine.sine_of_affine`): no activation-sized element-wise op
  stays outside the clusters: 1.75–1.76× float32's. Each layer is one op
  (`fast_sine.sine_layer`, `fast_sine.affine_layer` for the output layer) whose weight
  gradient reads aliases, so MAML's second-order cotangent sums run in the clusters,
  not as TensorFlow AddN ops: 1.80× / 1.80× (a second run 1.86× / 1.82×) at 64² / 178²
  (docs/benchmarks.md).
  The float32 path with "auto" keeps Keras' layers and `tf.sin`: published inits'
  numbers stay bit-identical; `fast_sine=True` there folds w0 like the mixed path and
  changes outputs by float32 round-off (~1e-6);
- XLA for the whole step (`jit_compile=True`) would fuse the casts, but its CPU dots
  compute bfloat16 as float32 (measured 1.0× float32) and its CPU `tf.sin` is ~7× slower
  than TensorFlow's (it calls a scalar sine per element), so on CPUs graph mode stays
  and only the sine cluster is compiled; on GPUs and TPUs XLA (the "auto" default there)
  fuses the casts into the matmul consumers.
"""

import math

import keras
import tensorflow as tf
from keras import ops

from learnit_tf.models import arguments, fast_sine as fast_sine_lib
from learnit_tf.models.inner_rates import InnerRatesMixin
from learnit_tf.models.presets import PresetMixin

AUTO = "auto"


@keras.saving.register_keras_serializable(package="learnit_tf")
class SirenInitializer(keras.initializers.Initializer):
    """Uniform SIREN weight init: U(±1/fan_in) for the first layer, else U(±√(6/fan_in)/w0)."""

    def __init__(self, w0=200.0, is_first=False, seed=None):
        self.w0 = arguments.number("SirenInitializer", "w0", w0, positive=True)
        self.is_first = bool(is_first)
        self.seed = seed

    def __call__(self, shape, dtype=None):
        fan_in = shape[0]
        if self.is_first:
            limit = 1.0 / fan_in
        else:
            limit = math.sqrt(6.0 / fan_in) / self.w0
        return keras.random.uniform(shape, -limit, limit, dtype=dtype, seed=self.seed)

    def get_config(self):
        return {"w0": self.w0, "is_first": self.is_first, "seed": self.seed}


@keras.saving.register_keras_serializable(package="learnit_tf")
class Siren(PresetMixin, InnerRatesMixin, keras.Model):
    """Sinusoidal representation network (Sitzmann et al. 2020) as used by learnit.

    Args:
        out_features: channels of the output (3 for RGB images).
        width: hidden width (paper: 256).
        depth: number of dense layers including the output layer (paper: 5).
        w0: frequency factor of the sine activations (paper: 200 for images).
        output_offset: constant added to the linear output (paper: 0.5).
        in_features: coordinate dimension (2 for images).
        seed: integer seed for the weight initializer, for reproducible standard inits.
        inner_rates: optional meta-learned inner learning rates (Meta-SGD) held by the
            model: a granularity ("parameter", "tensor", "layer") or a spec dict
            (`learnit_tf.models.inner_rates.normalize_spec`).
        mixed_precision: bfloat16 hidden matmuls (see the module docstring).
        fast_sine: "auto" (default: the polynomial sine of `learnit_tf.models.fast_sine`
            on the mixed-precision path, `tf.sin` on the float32 one, which stays
            bit-identical), True (both paths; float32 models only) or False (`tf.sin`
            everywhere). Kept in the config (and so in a saved init) when not "auto".

    Example:

    >>> model = Siren(out_features=3, width=32, depth=3, seed=0)
    >>> coords = keras.ops.zeros((4, 4, 2))
    >>> tuple(model(coords).shape)
    (4, 4, 3)
    """

    def __init__(self, out_features=3, width=256, depth=5, w0=200.0,
                 output_offset=0.5, in_features=2, seed=None, mixed_precision=False,
                 inner_rates=None, fast_sine=AUTO, **kwargs):
        super().__init__(**kwargs)
        self.out_features = arguments.integer("Siren", "out_features", out_features, 1)
        self.width = arguments.integer("Siren", "width", width, 1)
        self.depth = arguments.integer("Siren", "depth", depth, 2)
        # w0 <= 0 flips or flattens every sine: the init would fit nothing.
        self.w0 = arguments.number("Siren", "w0", w0, positive=True)
        self.output_offset = arguments.number("Siren", "output_offset", output_offset)
        self.in_features = arguments.integer("Siren", "in_features", in_features, 1)
        self.seed = arguments.seed("Siren", seed)
        self.mixed_precision = bool(mixed_precision)
        if not (isinstance(fast_sine, bool) or fast_sine == AUTO):
            raise ValueError(f"Siren fast_sine must be True, False or 'auto', got {fast_sine!r}.")
        if fast_sine is True and self.dtype_policy.name != "float32":
            raise ValueError(f"fast_sine=True is written for float32 Sirens, got dtype "
                             f"{self.dtype_policy.name!r}.")
        self.fast_sine = fast_sine
        if self.mixed_precision and self.dtype_policy.name != "float32":
            raise ValueError(f"mixed_precision=True needs the float32 model policy (its hidden "
                             f"layers become mixed_bfloat16), got dtype "
                             f"{self.dtype_policy.name!r}.")
        self.dense_layers = []
        for i in range(self.depth):
            last = i == self.depth - 1
            layer_seed = None if seed is None else int(seed) * 1000 + i
            hidden = 0 < i < self.depth - 1
            self.dense_layers.append(keras.layers.Dense(
                self.out_features if last else self.width,
                kernel_initializer=SirenInitializer(self.w0, is_first=(i == 0), seed=layer_seed),
                bias_initializer="zeros",
                dtype="mixed_bfloat16" if self.mixed_precision and hidden else self.dtype_policy,
                name=f"dense_{i}"))
        self._inner_rates_spec = inner_rates
        self.build((None, self.in_features))

    def build(self, input_shape):
        shape = (None, self.in_features)
        for layer in self.dense_layers:
            layer.build(shape)
            shape = (None, layer.units)
        self._build_inner_rates(self._inner_rates_spec)
        self.built = True

    def call(self, coords, mixed_precision=None):
        """The network's output; `mixed_precision` (None: the model's own setting) lets a
        meta-training step choose bfloat16 hidden matmuls for a float32 model without
        copying it (`FunctionalModel(model, mixed_precision=True)`)."""
        mixed = self.mixed_precision if mixed_precision is None else bool(mixed_precision)
        if mixed and self.dtype_policy.name != "float32":
            raise ValueError(f"mixed_precision needs the float32 model policy, got dtype "
                             f"{self.dtype_policy.name!r}.")
        # The float32 path with fast_sine="auto" or False is the original Keras one.
        fast = self.uses_fast_sine(mixed)
        rows = mixed or fast
        x = coords
        if rows:  # Plain 2-D matmuls: oneDNN fuses MatMul + BiasAdd, not BatchMatMul.
            x = tf.reshape(coords, (-1, self.in_features))
        hidden = self.dense_layers[:-1]
        alias = None  # With fast: x's alias for the next layer's weight gradient.
        for i, layer in enumerate(hidden):
            if rows:  # The first layer stays float32 (see the module docstring).
                # The polynomial sine hands a bfloat16 next layer its input in bfloat16.
                bfloat16_next = mixed and fast and i + 1 < len(hidden)
                x, alias = _mixed_sine_layer(x, layer.kernel, layer.bias, self.w0,
                                             bfloat16=mixed and i > 0, fast=fast,
                                             out_dtype=tf.bfloat16 if bfloat16_next else None,
                                             x_alias=alias)
            else:
                x = ops.sin(self.w0 * self._full_precision(layer, x))
        if alias is None:
            out = self._full_precision(self.dense_layers[-1], x)
        else:  # The fast sine's path: the output layer's weight gradient reads the alias.
            out = fast_sine_lib.affine_layer(x, self.dense_layers[-1].kernel,
                                             self.dense_layers[-1].bias, x_alias=alias)
        out = out + self.output_offset
        if rows:
            out = tf.reshape(out, tf.concat([tf.shape(coords)[:-1], [self.out_features]], 0))
        return out

    def _full_precision(self, layer, x):
        # A float32 layer runs as it always did (Keras Dense: same kernels, same results
        # as published inits were evaluated with); a mixed model's hidden layer asked for
        # float32 (call(mixed_precision=False)) bypasses its bfloat16 policy.
        if layer.dtype_policy.name == self.dtype_policy.name:
            return layer(x)
        return _float32_dense(layer, x)

    def uses_fast_sine(self, mixed):
        """Whether a forward pass (on the mixed-precision path or not) computes the sine
        with `learnit_tf.models.fast_sine` (recorded in an init's metadata as
        precision.sine)."""
        return self.fast_sine is True or (mixed and self.fast_sine == AUTO)

    def get_config(self):
        return {
            "out_features": self.out_features, "width": self.width, "depth": self.depth,
            "w0": self.w0, "output_offset": self.output_offset,
            "in_features": self.in_features, "seed": self.seed, "name": self.name,
            "dtype": self.dtype_policy.name, "mixed_precision": self.mixed_precision,
            **self._inner_rates_config(),
            # Written only when set: the configs of published inits stay as they were.
            **({} if self.fast_sine == AUTO else {"fast_sine": self.fast_sine}),
        }


def _float32_dense(layer, x):
    """x @ kernel + bias in x's dtype, without the layer's dtype-policy casts.

    The hidden layers of a mixed-precision Siren carry the "mixed_bfloat16" policy (so
    their `compute_dtype` says what they compute) but `Siren.call` computes them itself.
    """
    return tf.nn.bias_add(ops.matmul(x, layer.kernel), layer.bias)


def _mixed_sine_layer(x, kernel, bias, w0, bfloat16, fast=False, out_dtype=None,
                      x_alias=None):
    """(sin(w0 · (x @ kernel + bias)), its alias or None) of a mixed-precision Siren
    (x float32 or bfloat16).

    With `bfloat16` the matmul runs in bfloat16 (weights stay float32: cast per call,
    once per inner step, 256×256, negligible; the hardware accumulates in float32) and
    its product is cast back before the float32 bias add; without, all in float32 (the
    first layer). w0 is folded into the kernel and bias; the sine is `_sine` (`tf.sin`;
    no alias) or, with `fast`, `fast_sine.sine_layer` (the product, then the cast, bias
    add and a polynomial sine and cosine in one XLA cluster; returns an alias of the
    sine, and takes x's, `x_alias`, for the weight gradient), returned in `out_dtype`
    (bfloat16 when the next layer multiplies in bfloat16; default float32). See the
    module docstring.
    """
    bias = bias * w0
    dtype = tf.bfloat16 if bfloat16 else x.dtype
    kernel = tf.cast(kernel * w0, dtype)
    if fast:
        return fast_sine_lib.sine_layer(tf.cast(x, dtype), kernel, bias, out_dtype,
                                        x_alias=None if x_alias is None
                                        else tf.cast(x_alias, dtype))
    product = tf.matmul(tf.cast(x, dtype), kernel)
    return _sine(tf.nn.bias_add(tf.cast(product, bias.dtype), bias)), None


def _sine(z):
    """sin(z), whose derivatives of every order reuse sin(z) and cos(z) of the forward pass.

    A custom gradient on the pair (sin z, cos z): d(sin) = cos·dz, d(cos) = -sin·dz,
    written with the pair's own outputs, so a gradient of the gradient (MAML's second
    order) differentiates multiplies by recorded outputs of this same op and never
    evaluates a sine or cosine again. In graph mode a cotangent that is a constant zero
    (the tape's filler for an output nobody used, e.g. the cosine in a first-order
    backward pass) is skipped instead of multiplied. Same values as `tf.sin` and its
    gradients to round-off (tests/test_mixed_precision.py checks three orders in
    float64).
    """
    outputs = []  # The op's outputs as the tapes recorded them (set after the call).

    @tf.custom_gradient
    def sin_cos(z):
        def grad(d_sin, d_cos):
            dz = fast_sine_lib.sine_cotangent(d_sin, d_cos, *outputs)
            return tf.zeros_like(z) if dz is None else dz
        return (tf.sin(z), tf.cos(z)), grad

    sin, cos = sin_cos(z)
    outputs.extend([sin, cos])
    return sin



def with_mixed_precision(model, enabled=True):
    """A copy of a SIREN (e.g. a zoo init) whose hidden layers run in bfloat16, same weights.

    Its hidden matmuls run in bfloat16 (see the module docstring). On an AVX512-BF16
    CPU the MAML step measured 1.80–1.86× faster (process CPU time, benchmarks/precision.py;
    meta-training can ask for it without a copy: `MetaConfig(mixed_precision=...)`).
    Results are not bit-comparable to float32.

    Example:

    >>> fast = with_mixed_precision(Siren(width=16, depth=3, seed=0))
    >>> [layer.compute_dtype for layer in fast.dense_layers]
    ['float32', 'bfloat16', 'float32']
    """
    if not isinstance(model, Siren):
        raise ValueError(f"Mixed precision is implemented for Siren models only, got "
                         f"{type(model).__name__} {model.name!r}.")
    config = dict(model.get_config(), mixed_precision=bool(enabled))
    copy = Siren.from_config(config)
    for target, source in zip(copy.weights, model.weights):
        target.assign(source)
    return copy
