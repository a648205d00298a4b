"""Meta-learned inner learning rates (Meta-SGD, Li et al. 2017), stored with the init.

A coordinate network built with `inner_rates={"granularity": ...}` owns an
`InnerLearningRates` layer of non-trainable variables: one step size per parameter,
per weight tensor or per layer. The network's forward pass never reads them, so Keras
training and explicit-weight evaluation are unchanged; meta-training updates them
beside the weights (`learnit_tf.meta.MetaTrainer`) and test-time fitting steps with
them (`learnit_tf.meta.Fitter`). They are saved in `model.weights.h5` like any weight,
and the spec is part of the model's config, so `from_config` + `load_weights` (and
the zoo) restore them.

Granularities (functa, Dupont et al. 2022, uses per-parameter rates clipped to a range):
- "parameter": a rate tensor shaped like each weight tensor;
- "tensor": one scalar rate per weight tensor;
- "layer": one scalar rate per layer, shared by its kernel and bias.
"""

import math

import keras
import numpy as np

GRANULARITIES = ("parameter", "tensor", "layer")
DEFAULT_BOUNDS = (0.0, 1.0)


def normalize_spec(spec, name="inner_rates"):
    """A checked copy of an inner-rates spec dict, or None.

    Keys: granularity (one of GRANULARITIES), initial (the starting rate, > 0),
    bounds ([low, high], 0 <= low <= initial <= high; rates are clipped to them after
    every meta-update).
    """
    if spec is None:
        return None
    if isinstance(spec, str):
        spec = {"granularity": spec}
    if not isinstance(spec, dict):
        raise ValueError(f"{name} must be None, a granularity name or a dict, got {spec!r}.")
    unknown = set(spec) - {"granularity", "initial", "bounds"}
    if unknown:
        raise ValueError(f"{name} has unknown keys {sorted(unknown)}; expected granularity, "
                         "initial, bounds.")
    granularity = spec.get("granularity")
    if granularity not in GRANULARITIES:
        raise ValueError(f"{name}.granularity must be one of {GRANULARITIES}, got "
                         f"{granularity!r}.")
    initial = spec.get("initial", 1e-2)
    bounds = spec.get("bounds", DEFAULT_BOUNDS)
    try:
        initial = float(initial)
        low, high = (float(b) for b in bounds)
    except (TypeError, ValueError):
        raise ValueError(f"{name}: initial must be a number and bounds a pair of numbers, "
                         f"got initial={spec.get('initial')!r}, "
                         f"bounds={spec.get('bounds')!r}.") from None
    if not (all(math.isfinite(x) for x in (initial, low, high))
            and 0.0 <= low <= initial <= high and initial > 0):
        raise ValueError(f"{name}: need finite 0 <= bounds[0] <= initial <= bounds[1] and "
                         f"initial > 0, got initial={initial}, bounds={[low, high]}.")
    return {"granularity": granularity, "initial": initial, "bounds": [low, high]}


def layer_groups(paths):
    """Index of the owning layer of each weight path ("siren/dense_0/kernel" → 0)."""
    owners, groups = {}, []
    for path in paths:
        owner = path.rsplit("/", 1)[0]
        groups.append(owners.setdefault(owner, len(owners)))
    return groups


class InnerLearningRates(keras.layers.Layer):
    """Non-trainable step sizes for the trainable weights of the model that owns it.

    Args:
        weight_shapes: shapes of the model's trainable weights, in order.
        weight_groups: the layer index of each weight (used by "layer").
        granularity, initial, bounds: see `normalize_spec`.
    """

    def __init__(self, weight_shapes, weight_groups, granularity, initial=1e-2,
                 bounds=DEFAULT_BOUNDS, **kwargs):
        super().__init__(**kwargs)
        spec = normalize_spec({"granularity": granularity, "initial": initial,
                               "bounds": bounds})
        self.granularity = spec["granularity"]
        self.initial = spec["initial"]
        self.bounds = tuple(spec["bounds"])
        self.weight_shapes = [tuple(int(d) for d in s) for s in weight_shapes]
        self.weight_groups = [int(g) for g in weight_groups]
        if len(self.weight_groups) != len(self.weight_shapes):
            raise ValueError(f"weight_groups ({len(self.weight_groups)}) and weight_shapes "
                             f"({len(self.weight_shapes)}) must have one entry per weight.")
        if self.granularity == "parameter":
            shapes, self._index = self.weight_shapes, list(range(len(self.weight_shapes)))
        elif self.granularity == "tensor":
            shapes, self._index = [()] * len(self.weight_shapes), list(
                range(len(self.weight_shapes)))
        else:
            self._index = list(self.weight_groups)
            shapes = [()] * (max(self._index) + 1 if self._index else 0)
        self.rates = [self.add_weight(shape=shape, name=f"rate_{i}", trainable=False,
                                      initializer=keras.initializers.Constant(self.initial))
                      for i, shape in enumerate(shapes)]
        self.built = True

    @classmethod
    def for_weights(cls, variables, spec, name="inner_learning_rates"):
        """Rates for a list of (trainable) variables, laid out as `spec` says."""
        spec = normalize_spec(spec)
        dtype = variables[0].dtype if variables else None  # float64 models: float64 rates.
        return cls([tuple(v.shape) for v in variables], layer_groups([v.path for v in variables]),
                   name=name, dtype=dtype, **spec)

    @property
    def rate_index(self):
        """The index in `rates` of each weight tensor's rate."""
        return list(self._index)

    @property
    def spec(self):
        return {"granularity": self.granularity, "initial": self.initial,
                "bounds": list(self.bounds)}

    def per_weight(self, rates=None):
        """The rate of each weight tensor (broadcastable to it), from `rates` (tensors
        in the order of `self.rates`; default: the variables' values)."""
        rates = self.rates if rates is None else list(rates)
        return [rates[i] for i in self._index]

    def clip(self):
        """Clips every rate into `bounds` (after an outer update)."""
        low, high = self.bounds
        for rate in self.rates:
            rate.assign(keras.ops.clip(rate, low, high))

    def summary_stats(self):
        """JSON-ready statistics of the rates per weight tensor (for metadata)."""
        rows = []
        for i, rate in enumerate(self.per_weight()):
            values = np.asarray(keras.ops.convert_to_numpy(rate), np.float64)
            rows.append({"weight": i, "mean": float(values.mean()), "min": float(values.min()),
                         "max": float(values.max())})
        return rows

    def call(self, inputs):  # Never part of a forward pass.
        return inputs

    def get_config(self):
        config = super().get_config()
        config.update(weight_shapes=[list(s) for s in self.weight_shapes],
                      weight_groups=list(self.weight_groups), **self.spec)
        return config


class InnerRatesMixin:
    """For coordinate networks: the optional `inner_rates` constructor argument."""

    inner_learning_rates = None

    def _build_inner_rates(self, spec):
        """Call once the dense layers are built (their weights give the rates' shapes)."""
        self.inner_rates = normalize_spec(spec)
        if self.inner_rates is not None:
            self.inner_learning_rates = InnerLearningRates.for_weights(
                self.trainable_variables, self.inner_rates)

    def _inner_rates_config(self):
        return {} if self.inner_rates is None else {"inner_rates": dict(self.inner_rates)}


def inner_rates_of(model):
    """The model's `InnerLearningRates` layer, or None."""
    return getattr(model, "inner_learning_rates", None)


def per_weight_rates(model):
    """The model's learned inner rate of each trainable weight tensor (broadcastable to
    it, in `trainable_variables` order), or None if it learned none."""
    layer = inner_rates_of(model)
    return None if layer is None else layer.per_weight()
