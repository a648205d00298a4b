"""`sdf_2d`: procedurally generated 2D signed-distance images of simple curves.

PAPER.md, "2D image regression": one of the paper's four image classes is 2D SDF
images of simple curves (~10,000 images per class at 178×178, *secondary*). The
authors did not publish their generator, so this builder defines the class:

**Shapes.** Every image is the union (pointwise minimum of signed distances) of 1 to 3
random shapes, each drawn from:

- ``circle``: centre and radius;
- ``box``: rotated rectangle with rounded corners;
- ``polygon``: random star-shaped polygon (3–8 vertices, possibly regular);
- ``blob``: closed Catmull-Rom spline through 4–7 star-shaped control points;
- ``stroke``: an open quadratic Bézier curve thickened into a band.

Distances are measured in units of the image side: pixel centres lie on the paper's
grid ``linspace(0, 1, R + 1)[:-1]`` (``learnit_tf.kinds.image.image_grid``), so the
distribution of shapes is the same at every resolution and the ``small`` config is a
low-resolution version of ``paper``. The sign is negative inside.

**Distance → colour** (Inigo Quilez's classic SDF visualization, constants adapted to
the unit image), for a signed distance ``d`` of a pixel:

    base  = INSIDE_COLOR if d < 0 else OUTSIDE_COLOR   # which side of the curve
    shade = 1 - exp(-|d| / SHADE_LENGTH)               # dark near the curve
    bands = 0.8 + 0.2 * cos(2π d / BAND_PERIOD)        # iso-contours every BAND_PERIOD
    rgb   = base * shade * bands
    line  = 1 - smoothstep(0, 1.5 / R, |d|)            # white curve, 1.5 pixels wide
    rgb   = rgb * (1 - line) + line                    # in [0, 1]

with ``INSIDE_COLOR = (0.65, 0.85, 1.0)``, ``OUTSIDE_COLOR = (0.9, 0.6, 0.3)``,
``SHADE_LENGTH = 0.08`` and ``BAND_PERIOD = 1/12`` (15 pixels at 178, 5 at 64), so the
image shows the sign (colour), the distance (shading) and iso-contours (bands). Images
are stored as uint8 PNG (rounded ``255 · rgb``).

**Determinism.** Example ``i`` of split ``s`` is drawn from
``numpy.random.default_rng((config.seed, SPLIT_IDS[s], i))``: it depends only on the
config, split and index, never on generation order or machine.

Configs: ``paper`` (178×178; 9,000 train / 500 validation / 500 test, as the
``text_images`` class), ``cpu64`` (64×64; 2,000 / 100 / 100, for CPU meta-training,
~10 s to generate) and ``small`` (64×64; 200 / 50 / 50, ~2 s, for tests). Generating
``paper`` takes ~40 ms per image on one CPU core (~7 minutes), once.

Example:

>>> ds = sdf_2d_examples("train", config="small", data_dir="tfds")  # doctest: +ELLIPSIS
Generating sdf_2d/small_train offline into tfds/... (first use only).
>>> image = next(iter(ds))["image"]  # float32 (64, 64, 3) in [0, 1]
>>> image.shape, bool(0 <= image.numpy().min() <= image.numpy().max() <= 1)
(TensorShape([64, 64, 3]), True)
"""

import dataclasses

from absl import logging
import numpy as np
import tensorflow as tf
import tensorflow_datasets as tfds

from learnit_tf.data.procedural_builders import (SPLIT_NAMES, ProceduralBuilder,
                                                 ProceduralConfig, config_to_generate,
                                                 prepare_procedural_builder)
from learnit_tf.kinds.image.resolution import config_at_resolution
from learnit_tf.kinds.image.task import image_grid

INSIDE_COLOR = np.array([0.65, 0.85, 1.0], np.float64)
OUTSIDE_COLOR = np.array([0.9, 0.6, 0.3], np.float64)
SHADE_LENGTH = 0.08
BAND_PERIOD = 1.0 / 12.0
LINE_PIXELS = 1.5
SHAPE_KINDS = ("circle", "box", "polygon", "blob", "stroke")
SPLIT_IDS = {name: index for index, name in enumerate(SPLIT_NAMES)}  # 0, 1, 2


# ---------------------------------------------------------------------------
# Signed distance functions (numpy, points p of shape (..., 2), unit image).
# ---------------------------------------------------------------------------

def sdf_circle(p, center, radius):
    """Signed distance to a circle (negative inside)."""
    return np.linalg.norm(p - np.asarray(center), axis=-1) - radius


def sdf_box(p, center, half_size, angle=0.0, rounding=0.0):
    """Signed distance to a rotated rectangle with corners rounded by `rounding`."""
    c, s = np.cos(angle), np.sin(angle)
    q = p - np.asarray(center)
    # Rotate points into the box frame.
    q = np.stack([c * q[..., 0] + s * q[..., 1], -s * q[..., 0] + c * q[..., 1]], axis=-1)
    d = np.abs(q) - (np.asarray(half_size) - rounding)
    outside = np.linalg.norm(np.maximum(d, 0.0), axis=-1)
    inside = np.minimum(np.max(d, axis=-1), 0.0)
    return outside + inside - rounding


#: Pixels per block in the segment-distance loops: (block, K) temporaries stay in the CPU
#: cache (a 256x256 image at once makes ~30 MB ones per array), ~2x faster at 256x256.
_BLOCK = 4096


def _by_blocks(p, dtype, per_block):
    """`per_block(q)` over blocks of `_BLOCK` rows of p (N, 2), concatenated: (N,) dtype."""
    out = np.empty(len(p), dtype)
    for start in range(0, len(p), _BLOCK):
        out[start:start + _BLOCK] = per_block(p[start:start + _BLOCK])
    return out


def _segment_distance_min(p, a, b):
    """Distance from points p (N, 2) to the nearest of the segments a[k]→b[k] (K, 2): (N,).

    Blocks of `_BLOCK` points and one square root per point (of the smallest squared
    distance; the square root is monotone, so this is the smallest distance exactly).
    """
    ab = b - a
    denom = np.maximum(np.sum(ab * ab, axis=-1), 1e-12)

    def nearest(q):
        # Per-component (n, K) arrays: avoids (n, K, 2) temporaries.
        apy = q[:, 0:1] - a[None, :, 0]
        apx = q[:, 1:2] - a[None, :, 1]
        t = np.clip((apy * ab[:, 0] + apx * ab[:, 1]) / denom, 0.0, 1.0)
        dy = apy - t * ab[:, 0]
        dx = apx - t * ab[:, 1]
        return np.sqrt(np.min(dy * dy + dx * dx, axis=1))

    return _by_blocks(p, np.float64, nearest)


def _crossings_odd(p, a, b):
    """Whether a ray along +x (axis 1) from each point p (N, 2) crosses the closed polygon
    with edges a[k]→b[k] an odd number of times (the even-odd rule): bool (N,)."""
    ay, ax, by, bx = a[None, :, 0], a[None, :, 1], b[None, :, 0], b[None, :, 1]

    def odd(q):
        y, x = q[:, 0:1], q[:, 1:2]
        straddles = (ay > y) != (by > y)
        with np.errstate(divide="ignore", invalid="ignore"):
            x_cross = ax + (y - ay) * (bx - ax) / (by - ay)
        return np.sum(straddles & (x < x_cross), axis=1) % 2 == 1

    return _by_blocks(p, bool, odd)


def sdf_polygon(p, vertices):
    """Signed distance to a closed polygon (even-odd rule for the inside).

    Args:
        p: points (..., 2).
        vertices: (K, 2) polygon vertices in order, K >= 3.
    """
    shape = p.shape[:-1]
    pts = np.asarray(p, np.float64).reshape(-1, 2)
    a = np.asarray(vertices, np.float64)
    b = np.roll(a, -1, axis=0)
    dist = _segment_distance_min(pts, a, b)
    sign = np.where(_crossings_odd(pts, a, b), -1.0, 1.0)
    return (sign * dist).reshape(shape)


def sdf_polyline(p, points, half_width):
    """Signed distance to an open polyline thickened to a band of `half_width`."""
    shape = p.shape[:-1]
    pts = np.asarray(points, np.float64)
    dist = _segment_distance_min(np.asarray(p, np.float64).reshape(-1, 2), pts[:-1], pts[1:])
    return (dist - half_width).reshape(shape)


def catmull_rom_closed(control, samples_per_segment=8):
    """Points on the closed uniform Catmull-Rom spline through `control` (K, 2)."""
    control = np.asarray(control, np.float64)
    t = np.linspace(0.0, 1.0, samples_per_segment, endpoint=False)[:, None]
    p0, p1 = np.roll(control, 1, axis=0), control
    p2, p3 = np.roll(control, -1, axis=0), np.roll(control, -2, axis=0)
    out = []
    for k in range(len(control)):
        a, b, c, d = p0[k], p1[k], p2[k], p3[k]
        out.append(0.5 * ((2 * b) + (-a + c) * t + (2 * a - 5 * b + 4 * c - d) * t**2
                          + (-a + 3 * b - 3 * c + d) * t**3))
    return np.concatenate(out, axis=0)


# ---------------------------------------------------------------------------
# Random shapes and images.
# ---------------------------------------------------------------------------

def _star_points(rng, center, radius, count, regular=False, min_radius=0.45):
    """`count` points around `center` in angular order (a simple, star-shaped loop)."""
    step = 2 * np.pi / count
    offset = rng.uniform(0, 2 * np.pi)
    if regular:
        angles = offset + np.arange(count) * step
        radii = np.full(count, radius)
    else:
        # Jittered, evenly spaced angles: irregular but never folding back on itself.
        angles = offset + (np.arange(count) + rng.uniform(-0.35, 0.35, count)) * step
        radii = radius * rng.uniform(min_radius, 1.0, count)
    return np.asarray(center) + np.stack([radii * np.sin(angles), radii * np.cos(angles)], -1)


def random_shape_sdf(rng, p):
    """Draws one random shape and returns (kind, signed distance at points p)."""
    kind = SHAPE_KINDS[rng.integers(len(SHAPE_KINDS))]
    center = rng.uniform(0.2, 0.8, 2)
    size = rng.uniform(0.1, 0.3)
    if kind == "circle":
        return kind, sdf_circle(p, center, size)
    if kind == "box":
        half = size * rng.uniform(0.4, 1.0, 2)
        rounding = rng.uniform(0.0, 0.5) * half.min()
        return kind, sdf_box(p, center, half, rng.uniform(0, np.pi), rounding)
    if kind == "polygon":
        regular = bool(rng.integers(2))
        verts = _star_points(rng, center, size, int(rng.integers(3, 9)), regular)
        return kind, sdf_polygon(p, verts)
    if kind == "blob":
        control = _star_points(rng, center, size, int(rng.integers(4, 8)), min_radius=0.6)
        return kind, sdf_polygon(p, catmull_rom_closed(control))
    # stroke: quadratic Bézier from a to c bent towards b.
    a, b, c = (center + rng.uniform(-1.0, 1.0, 2) * size * 1.5 for _ in range(3))
    t = np.linspace(0.0, 1.0, 24)[:, None]
    curve = (1 - t) ** 2 * a + 2 * (1 - t) * t * b + t**2 * c
    return kind, sdf_polyline(p, curve, rng.uniform(0.01, 0.04))


def sdf_to_rgb(d, resolution):
    """The documented distance → colour mapping (module docstring); float (..., 3) in [0, 1]."""
    d = np.asarray(d, np.float64)[..., None]
    ad = np.abs(d)
    base = np.where(d < 0, INSIDE_COLOR, OUTSIDE_COLOR)
    rgb = base * (1.0 - np.exp(-ad / SHADE_LENGTH)) * (0.8 + 0.2 * np.cos(2 * np.pi * d / BAND_PERIOD))
    x = np.clip(ad / (LINE_PIXELS / resolution), 0.0, 1.0)
    line = 1.0 - x * x * (3.0 - 2.0 * x)  # 1 - smoothstep(0, width, |d|)
    return np.clip(rgb * (1.0 - line) + line, 0.0, 1.0)


def render_sdf_example(seed, resolution):
    """One random SDF image.

    Args:
        seed: anything `numpy.random.default_rng` accepts (e.g. a tuple of ints).
        resolution: image side in pixels.

    Returns:
        dict with "image" (uint8 (R, R, 3)), "sdf" (float32 (R, R)), "shapes" (list of kinds).
    """
    rng = np.random.default_rng(seed)
    p = image_grid(resolution).astype(np.float64)
    kinds, sdf = [], None
    for _ in range(int(rng.integers(1, 4))):
        kind, d = random_shape_sdf(rng, p)
        kinds.append(kind)
        sdf = d if sdf is None else np.minimum(sdf, d)
    image = np.round(255.0 * sdf_to_rgb(sdf, resolution)).astype(np.uint8)
    return {"image": image, "sdf": sdf.astype(np.float32), "shapes": kinds}


# ---------------------------------------------------------------------------
# TFDS builder.
# ---------------------------------------------------------------------------

@dataclasses.dataclass
class Sdf2dConfig(ProceduralConfig):
    """Resolution of one `sdf_2d` variant (and its split sizes and seed)."""

    resolution: int = 178


class Sdf2d(ProceduralBuilder):
    """2D signed-distance images of random simple curves (see module docstring)."""

    name = "sdf_2d"
    HOMEPAGE = "https://arxiv.org/abs/2012.02189"
    CITATION = ("@inproceedings{tancik2021learnit, title={Learned Initializations for "
                "Optimizing Coordinate-Based Neural Representations}, author={Tancik, "
                "Matthew and Mildenhall, Ben and Wang, Terrance and Schmidt, Divi and "
                "Srinivasan, Pratul P. and Barron, Jonathan T. and Ng, Ren}, "
                "booktitle={CVPR}, year={2021}}")
    BUILDER_CONFIGS = [
        Sdf2dConfig(name="paper", description="178x178, 9000/500/500 images (paper size).",
                    resolution=178, num_train=9000, num_validation=500, num_test=500,
                    seed=0),
        Sdf2dConfig(name="cpu64", description="64x64, 2000/100/100 images, CPU meta-training.",
                    resolution=64, num_train=2000, num_validation=100, num_test=100, seed=2),
        Sdf2dConfig(name="small", description="64x64, 200/50/50 images (tests, CPU).",
                    resolution=64, num_train=200, num_validation=50, num_test=50, seed=1),
    ]
    DEFAULT_CONFIG_NAME = "small"

    def _description(self):
        return __doc__.split("\n\n")[0]

    def _features(self):
        r = self.builder_config.resolution
        return {"image": tfds.features.Image(shape=(r, r, 3), dtype=np.uint8),
                "num_shapes": np.int32}

    def _example(self, split, index):
        ex = render_sdf_example(self.example_seed(split, index), self.builder_config.resolution)
        return {"image": ex["image"], "num_shapes": np.int32(len(ex["shapes"]))}


def sdf_2d_builder(config="small", data_dir=None, split=None):
    """The `sdf_2d` builder for `config` (a config name or an `Sdf2dConfig`), prepared
    (with `split`, the split string to be read: only the splits it names if `config` is
    not generated yet; `prepare_procedural_builder`)."""
    cfg = next((c for c in Sdf2d.BUILDER_CONFIGS if c.name == config), config)
    if isinstance(cfg, Sdf2dConfig):
        config = cfg = config_to_generate(Sdf2d, cfg, data_dir, split)
        total = sum(cfg.split_sizes().values())
        # TFDS's own progress bars count examples but do not know the total: say it.
        logging.info("Preparing sdf_2d/%s: %d images at %dx%d (generating takes about "
                     "%.0f s on one core the first time)...", cfg.name, total, cfg.resolution,
                     cfg.resolution, total * 40e-3 * (cfg.resolution / 178) ** 2 + 2)
    return prepare_procedural_builder(Sdf2d, config, data_dir)


def sdf_2d_examples(split, config="small", data_dir=None, resolution=None):
    """Unbatched examples {"image": float32 (R, R, 3) in [0, 1]} of `sdf_2d`.

    Generates the dataset on first use (``small``: seconds; ``paper``: a few minutes).

    Args:
        split: "train", "validation", "test" or any TFDS split string (e.g. "train[:10]").
        config: "paper" (178×178), "cpu64" or "small" (64×64), or an `Sdf2dConfig`.
        data_dir: TFDS data directory (default: TFDS's, ~/tensorflow_datasets).
        resolution: render the config's shapes (same seeds) at this many pixels per
            side instead (`resolution.config_at_resolution`).

    Returns:
        A `tf.data.Dataset` in a fixed order.

    Example:

    >>> ds = sdf_2d_examples("test[:2]", "small", "my_tfds")  # doctest: +ELLIPSIS
    Generating sdf_2d/small_test offline into my_tfds/... (first use only).
    >>> [tuple(ex["image"].shape) for ex in ds]
    [(64, 64, 3), (64, 64, 3)]
    """
    builder = sdf_2d_builder(config_at_resolution(Sdf2d, config, resolution, split), data_dir,
                             split=split)
    ds = builder.as_dataset(split=split, shuffle_files=False)
    return ds.map(lambda ex: {"image": tf.cast(ex["image"], tf.float32) / 255.0},
                  num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
