"""`shepp_logan`: randomized modified Shepp-Logan phantoms for sparse-view CT.

PAPER.md, "CT reconstruction": the paper meta-learns a CT init on 2048
randomized Shepp-Logan phantoms at 256×256, made with the `phantominator`
package's *modified* Shepp-Logan ellipse table and random perturbations. The
authors did not publish their perturbation ranges; ours are below.

Every phantom starts from `phantominator.ct_modified_shepp_logan_params_2d()`
(10 ellipses; columns: grey value, x semi-axis a, y semi-axis b, centre x,
centre y, angle) and is perturbed with independent uniform draws, all in the
phantom's [-1, 1]² field-of-view units:

===========================  ===========================================  =================
what                         which ellipses                               range
===========================  ===========================================  =================
head axes (a, b) scale       0 (skull) and 1 (brain), one shared draw     × U(0.90, 1.00)
  per axis                   per axis so the skull rim stays intact
brain grey value             1                                            × U(0.90, 1.10)
inner centre shift (x, y)    2–9 (ventricles, tumours, small spots)       + U(-0.05, 0.05)
inner axes (a, b)            2–9, independently per axis                  × U(0.80, 1.20)
inner angle                  2–9                                          + U(-15°, 15°)
inner grey value             2–9                                          × U(0.50, 1.50)
whole-phantom scale          all (about the origin)                       × U(0.90, 1.00)
whole-phantom rotation       all (about the origin)                       + U(-10°, 10°)
whole-phantom shift (x, y)   all                                          + U(-0.03, 0.03)
===========================  ===========================================  =================

The skull's grey value stays 1 (it anchors the intensity scale). The ellipses
are rasterized by `phantominator.ct_shepp_logan` on its grid `linspace(-1, 1, N)`
(pixel-centre inside test, no anti-aliasing, like the authors), flipped so that
row 0 is y = +1 (the usual upright display), clipped to [0, 1] (overlapping
negative ellipses can dip below 0 where a ventricle is darker than the tissue
under it) and stored as float32 (N, N, 1). With these ranges every ellipse lies
inside the disc of radius 0.97 < 1, so the whole phantom lies in the circle
inscribed in the image and a parallel-beam projection sees all of it at every
angle.

Example `i` of split `s` is drawn from `numpy.random.default_rng((seed, s, i))`,
so a dataset is deterministic by its config's seed, independent of generation
order, and generation needs no network.

Configs:
- `paper`: 256×256, 2048 phantoms = 1792 train / 128 validation / 128 test
  (the authors' train/test sizes are not published; 7/8 for training, the rest
  split between the validation set that meta-training monitors and the held-out
  test set of the views table).
- `small`: 64×64, 200 phantoms = 160 / 20 / 20, generated in about a second;
  for CPU meta-training and tests.
"""

import contextlib
import dataclasses
import logging
import math

import numpy as np
import phantominator
import tensorflow as tf
import tensorflow_datasets as tfds

from learnit_tf.data.procedural_builders import (ProceduralBuilder, ProceduralConfig,
                                                 prepare_procedural_builder)

DATASET_NAME = "shepp_logan"

#: Perturbation ranges (see the module docstring); angles in radians.
HEAD_AXIS_SCALE = (0.90, 1.00)
BRAIN_GREY_SCALE = (0.90, 1.10)
INNER_SHIFT = 0.05
INNER_AXIS_SCALE = (0.80, 1.20)
INNER_ANGLE = math.radians(15.0)
INNER_GREY_SCALE = (0.50, 1.50)
GLOBAL_SCALE = (0.90, 1.00)
GLOBAL_ANGLE = math.radians(10.0)
GLOBAL_SHIFT = 0.03

_HEAD = slice(0, 2)
_INNER = slice(2, 10)


def random_ellipses(rng):
    """A randomly perturbed modified Shepp-Logan ellipse table.

    Args:
        rng: a `numpy.random.Generator`.

    Returns:
        float64 array (10, 6) in phantominator's layout: grey value, x semi-axis,
        y semi-axis, centre x, centre y, angle (radians).

    Example:

    >>> e = random_ellipses(np.random.default_rng(0))
    >>> e.shape
    (10, 6)
    """
    e = phantominator.ct_modified_shepp_logan_params_2d().astype(np.float64)
    # Head: skull and brain share one scale per axis so the rim keeps its shape.
    e[_HEAD, 1] *= rng.uniform(*HEAD_AXIS_SCALE)
    e[_HEAD, 2] *= rng.uniform(*HEAD_AXIS_SCALE)
    e[1, 0] *= rng.uniform(*BRAIN_GREY_SCALE)
    # Inner structures: each moves, stretches, turns and changes contrast alone.
    n = e[_INNER].shape[0]
    e[_INNER, 3] += rng.uniform(-INNER_SHIFT, INNER_SHIFT, n)
    e[_INNER, 4] += rng.uniform(-INNER_SHIFT, INNER_SHIFT, n)
    e[_INNER, 1] *= rng.uniform(*INNER_AXIS_SCALE, n)
    e[_INNER, 2] *= rng.uniform(*INNER_AXIS_SCALE, n)
    e[_INNER, 5] += rng.uniform(-INNER_ANGLE, INNER_ANGLE, n)
    e[_INNER, 0] *= rng.uniform(*INNER_GREY_SCALE, n)
    # Whole phantom: a similarity transform about the origin (maps ellipses to ellipses).
    scale = rng.uniform(*GLOBAL_SCALE)
    phi = rng.uniform(-GLOBAL_ANGLE, GLOBAL_ANGLE)
    shift = rng.uniform(-GLOBAL_SHIFT, GLOBAL_SHIFT, 2)
    c, s = math.cos(phi), math.sin(phi)
    x, y = e[:, 3].copy(), e[:, 4].copy()
    e[:, 3] = scale * (c * x - s * y) + shift[0]
    e[:, 4] = scale * (s * x + c * y) + shift[1]
    e[:, 1:3] *= scale
    e[:, 5] += phi
    return e


def render_phantom(ellipses, resolution):
    """Rasterizes an ellipse table to a float32 (resolution, resolution) image in [0, 1].

    Example:

    >>> img = render_phantom(phantominator.ct_modified_shepp_logan_params_2d(), 16)
    >>> img.shape, float(img.max())
    ((16, 16), 1.0)
    """
    image = phantominator.ct_shepp_logan(int(resolution), modified=True, E=ellipses)
    # phantominator's row index grows with y; flip so the phantom is upright.
    return np.clip(np.flipud(image), 0.0, 1.0).astype(np.float32)


def random_phantom(seed, resolution):
    """The phantom drawn from `numpy.random.default_rng(seed)`, float32 (N, N) in [0, 1].

    Example:

    >>> a = random_phantom((0, 0, 3), 32)
    >>> bool(np.array_equal(a, random_phantom((0, 0, 3), 32)))
    True
    """
    return render_phantom(random_ellipses(np.random.default_rng(seed)), resolution)


@dataclasses.dataclass
class SheppLoganConfig(ProceduralConfig):
    """Resolution of a `shepp_logan` config (and its split sizes and seed)."""

    resolution: int = 256


def image_features(resolution):
    """TFDS features of a CT image class: "image", float32 (R, R, 1)."""
    # Piecewise-constant float images compress ~10× with zlib.
    return {"image": tfds.features.Tensor(shape=(resolution, resolution, 1), dtype=np.float32,
                                          encoding=tfds.features.Encoding.ZLIB)}


def _already_registered(name):
    # TFDS raises on a second registration of a name (e.g. after importlib.reload or
    # when this file is imported under two module names); the registry is private,
    # so fall back to "not registered" if its layout changes.
    registry = getattr(tfds.core.registered, "_DATASET_REGISTRY", {})
    return name in registry


class SheppLogan(ProceduralBuilder, skip_registration=_already_registered(DATASET_NAME)):
    """Randomized modified Shepp-Logan phantoms (see the module docstring)."""

    name = DATASET_NAME
    BUILDER_CONFIGS = [
        SheppLoganConfig(
            name="paper", description="256×256, 2048 phantoms as in the paper.",
            resolution=256, num_train=1792, num_validation=128, num_test=128),
        SheppLoganConfig(
            name="small", description="64×64, 200 phantoms, for CPU training and tests.",
            resolution=64, num_train=160, num_validation=20, num_test=20),
    ]
    DEFAULT_CONFIG_NAME = "small"

    def _features(self):
        return image_features(self.builder_config.resolution)

    def _example(self, split, index):
        image = random_phantom(self.example_seed(split, index), self.builder_config.resolution)
        return {"image": image[:, :, None]}


class _DropMessage(logging.Filter):
    def __init__(self, text):
        super().__init__()
        self.text = text

    def filter(self, record):
        return self.text not in record.getMessage()


@contextlib.contextmanager
def _quiet_tfds_dtype_warning():
    # TFDS 4.9's own zlib Tensor decoder reads the deprecated `FeatureConnector.dtype`
    # and warns on every `as_dataset`; the warning is about TFDS internals, not ours.
    log_filter = _DropMessage("`FeatureConnector.dtype` is deprecated")
    logger = logging.getLogger("absl")
    logger.addFilter(log_filter)
    try:
        yield
    finally:
        logger.removeFilter(log_filter)


def shepp_logan_builder(config="small", data_dir=None, split=None):
    """The `SheppLogan` builder for `config`, generated into `data_dir` if needed (offline).

    Args:
        config: "paper" or "small" (or a `SheppLoganConfig`).
        data_dir: TFDS data directory (default: TFDS's default, `~/tensorflow_datasets`
            or `$TFDS_DATA_DIR`).
        split: the split string to be read: if `config` is not generated yet, only the
            splits it names are (`prepare_procedural_builder`).
    """
    return prepare_procedural_builder(SheppLogan, config, data_dir, split=split)


def shepp_logan_examples(split="train", config="small", data_dir=None):
    """A split of `shepp_logan` as unbatched examples {"image": float32 (N, N, 1) in [0, 1]}.

    Generates the dataset into `data_dir` on first use (seconds for "small", about
    a minute for "paper"); later calls read it back.

    Args:
        split: "train", "validation" or "test" (TFDS slicing such as "test[:8]" works).
        config: "paper" (256×256, 2048 phantoms) or "small" (64×64, 200 phantoms).
        data_dir: TFDS data directory (default: TFDS's default).

    Example:

    >>> ds = shepp_logan_examples("test", config="small", data_dir="tfds")  # doctest: +ELLIPSIS
    Generating shepp_logan/small_test offline into tfds/... (first use only).
    >>> next(iter(ds))["image"].shape
    TensorShape([64, 64, 1])
    """
    builder = shepp_logan_builder(config, data_dir, split=split)
    base = str(split).split("[", 1)[0]
    if base not in builder.info.splits:
        raise ValueError(f"Unknown split {split!r} for dataset {DATASET_NAME!r}; expected one "
                         f"of {sorted(builder.info.splits)} (optionally sliced, e.g. 'test[:8]').")
    with _quiet_tfds_dtype_warning():
        ds = builder.as_dataset(split=split, shuffle_files=False)
    return ds.map(lambda ex: {"image": tf.ensure_shape(ex["image"], builder.info.features[
        "image"].shape)}, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
