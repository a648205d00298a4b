"""`ct_anatomy`: procedural axial CT slices (heads, chests, abdomens) for sparse-view CT.

A signal class closer to real scans than the Shepp-Logan phantoms
(`learnit_tf.kinds.ct.anatomy_render` draws the slices: body outline with a fat
layer, lungs, spine, ribs, skull, organs, vessels, soft-tissue texture, realistic HU,
zoomed crops), windowed like the real-CT check (HU [-1000, 1000] -> [0, 1]).

No Debian or PyPI package reachable here ships real CT volumes from several patients:
pydicom 3.0.2 ships three real CT slices (kept out of training and validation: they
are the check) plus 16×16 DICOMDIR test stubs; `pydicom-data` is not installable here;
`ctsim` ships phantom definitions only; gdcm/dcmtk/SimpleITK/nibabel/medpy ship no CT
slices. So the class is procedural.

Example `i` of split `s` is drawn from `numpy.random.default_rng((seed, s, i))`, so
splits are fixed by the config's seed, disjoint (different generator streams) and
independent of generation order.

Configs:
- `small`: 64×64, 2000 train / 100 validation / 100 test (about 45 s to generate).
- `paper`: 256×256, 1792 / 128 / 128 (the paper's 2048 CT signals).
"""

import dataclasses
import math

import tensorflow as tf

from learnit_tf.data.procedural_builders import (SPLIT_NAMES, ProceduralBuilder,
                                                 ProceduralConfig, prepare_procedural_builder)
from learnit_tf.kinds.ct.anatomy_render import random_slice
from learnit_tf.kinds.ct.shepp_logan import (_already_registered, _quiet_tfds_dtype_warning,
                                             image_features)

DATASET_NAME = "ct_anatomy"


@dataclasses.dataclass
class AnatomyConfig(ProceduralConfig):
    """Resolution of a `ct_anatomy` config (and its split sizes and seed)."""

    resolution: int = 64


class CtAnatomy(ProceduralBuilder, skip_registration=_already_registered(DATASET_NAME)):
    """Procedural axial CT slices (see the module docstring)."""

    name = DATASET_NAME
    BUILDER_CONFIGS = [
        AnatomyConfig(name="small", description="64×64, 2200 slices, for CPU training.",
                      resolution=64, num_train=2000, num_validation=100, num_test=100),
        AnatomyConfig(name="paper", description="256×256, 2048 slices (the paper's count).",
                      resolution=256, num_train=1792, num_validation=128, num_test=128),
        AnatomyConfig(name="tiny", description="32×32, 40 slices, for tests.",
                      resolution=32, num_train=24, num_validation=8, num_test=8),
    ]
    DEFAULT_CONFIG_NAME = "small"

    def _features(self):
        return image_features(self.builder_config.resolution)

    def _example(self, split, index):
        image = random_slice(self.example_seed(split, index), self.builder_config.resolution)
        return {"image": image[:, :, None]}


def anatomy_builder(config="small", data_dir=None):
    """The `CtAnatomy` builder for `config`, generated into `data_dir` if needed (offline)."""
    return prepare_procedural_builder(CtAnatomy, config, data_dir)


def few_view_angles(index, views, seed=0):
    """Training views of example `index`: k evenly spaced angles, k drawn from `views`.

    k is drawn uniformly from `views` and the views' common offset U[0, π/k) (so the
    network meets every rotation), both from a stateless generator keyed by (seed,
    index): the same example always gets the same views. Returned as max(views)
    angles, the k distinct ones repeated max(views)/k times each, so the tensor shape
    is static and the mean squared error over the rows equals the k-view MSE.

    Args:
        index: int64 scalar tensor, the example's position in its split.
        views: view counts, each dividing max(views), e.g. (2, 4, 8).
        seed: int, the generator's key besides `index`.

    Returns:
        float32 (max(views),) radians in [0, π).

    Example:

    >>> a = few_view_angles(tf.constant(3, tf.int64), (2,)).numpy()
    >>> bool(abs(a[1] - a[0] - math.pi / 2) < 1e-6)
    True
    """
    views = _check_views(views)
    most = max(views)
    key = tf.stack([tf.cast(seed, tf.int64), tf.cast(index, tf.int64)])
    choice = tf.random.stateless_uniform((), key, maxval=len(views), dtype=tf.int64,
                                         alg="philox")
    k = tf.gather(tf.constant(views, tf.int64), choice)
    offset = tf.random.stateless_uniform((), key + 1, dtype=tf.float32, alg="philox")
    step = math.pi / tf.cast(k, tf.float32)
    slots = tf.cast(tf.math.floormod(tf.range(most, dtype=tf.int64), k), tf.float32)
    return offset * step + slots * step


def _check_views(views):
    views = tuple(int(v) for v in views)
    if not views or min(views) < 1 or any(max(views) % v for v in views):
        raise ValueError(f"views must be positive view counts that each divide the largest "
                         f"(e.g. (2, 4, 8)), got {views}.")
    return views


def anatomy_ct_examples(split="train", config="small", data_dir=None, views=None):
    """A split of `ct_anatomy` as unbatched examples {"image": float32 (N, N, 1) in [0, 1]}.

    Args:
        split: "train", "validation" or "test" (TFDS slicing such as "test[:8]" works).
        config: "small" (64×64), "paper" (256×256) or "tiny" (32×32, tests).
        data_dir: TFDS data directory (default: TFDS's default).
        views: None (the task draws its own angles), or view counts such as (2, 4, 8):
            then every example also gets "angles" (`few_view_angles`), so meta-training
            fits few evenly spaced views, the regime of the views table.
    """
    builder = anatomy_builder(config, data_dir)
    base = str(split).split("[", 1)[0]
    if base not in builder.info.splits:
        raise ValueError(f"Unknown split {split!r} for dataset {DATASET_NAME!r}; expected one "
                         f"of {sorted(builder.info.splits)} (optionally sliced, e.g. 'test[:8]').")
    views = None if views is None else _check_views(views)
    with _quiet_tfds_dtype_warning():
        ds = builder.as_dataset(split=split, shuffle_files=False)
    shape = builder.info.features["image"].shape
    ds = ds.map(lambda ex: {"image": tf.ensure_shape(ex["image"], shape)},
                num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    if views is None:
        return ds
    seed = 1000 + SPLIT_NAMES.index(base)  # Different views per split.
    return ds.enumerate().map(
        lambda i, ex: dict(ex, angles=few_view_angles(i, views, seed)),
        num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
