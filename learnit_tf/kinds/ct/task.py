"""Sparse-view CT: a coordinate network fitted through a parallel-beam projector.

PAPER.md, "CT reconstruction": the network maps pixel coordinates to attenuation;
the measurement is a set of 1D parallel-beam projections (a sinogram) at a few
angles; the loss is the MSE between predicted and observed projections, and the
quality is the PSNR of the rendered image against the phantom.

Projector geometry (as the authors' notebook `ct_project`, except where noted):
for angle θ the sampling grid is rotated about the image centre and the image is
resampled there, then *averaged* along the ray axis. With pixel indices (row, col),
centre c = (N − 1)/2, detector offset s = j − c (bin j) and ray offset t = i − c
(sample i), the sample point is

    row = c + s·sin θ + t·cos θ,    col = c + s·cos θ − t·sin θ,

and `projection[θ, j] = mean_i image(row, col)`. At θ = 0 this is the mean of
each column. Samples falling outside the image read 0. The mean (not the sum) is
the authors' choice: it is the line integral measured in units of the image side
(a ray through a unit-intensity image of side 1 reads 1), so projections of images
in [0, 1] stay in [0, 1] and the loss scale does not depend on the resolution.
Differences from the notebook: it rotates about pixel N/2 (ours: the true centre
(N − 1)/2, which keeps a centred phantom centred at every angle); it resamples with
nearest neighbour (ours: bilinear by default, `interpolation="nearest"` selectable).
In scikit-image's convention, `project(image, θ) · N == radon(image, -degrees(θ))`
for odd N (where both rotate about the same pixel); `learnit_tf.kinds.ct.files.
to_learnit_convention` is the one place a user's sinogram is converted.

Example layouts accepted by `CtTask` (N = resolution, V = number of views):
- training: {"image": (N, N, 1), "seed": int32 (2,)}; the task draws `num_angles`
  angles U[0, π) from the seed (fixed over the inner loop, as in the authors'
  Reptile step; the pipeline gives every example a fresh seed) and projects the
  image itself to form the observations;
- evaluation: {"image": (N, N, 1), "angles": (V,), "sinogram": (V, N)}, e.g. from
  `make_eval_example` (evenly spaced views); "image" may be left out (or all
  zeros) for a user's own sinogram, and then "psnr" is NaN;
- {"image", "angles"} without "sinogram": the image is projected at those angles.
"""

import math

import numpy as np
import tensorflow as tf

from learnit_tf.core.task import Task, mse_to_psnr
from learnit_tf.core.grids import image_grid
# `project` and `INTERPOLATIONS` are part of this module's interface (re-exported).
from learnit_tf.kinds.ct.projector import (  # pylint: disable=unused-import
    INTERPOLATIONS, project, project_with_tables, projection_tables)

#: The keys `CtTask.prepare_example` adds for the projector (`projection_tables`).
RAY_INDEX, RAY_WEIGHT = "ray_index", "ray_weight"
#: Angles (radians) outside [-MAX_ABS_ANGLE, MAX_ABS_ANGLE] are rejected as a likely unit
#: mistake (degrees passed as radians).
MAX_ABS_ANGLE = 2.0 * math.pi


def evenly_spaced_angles(num_views):
    """`num_views` angles evenly spaced in [0, π), float32 (the paper's test views).

    Example:

    >>> evenly_spaced_angles(4) / np.pi
    array([0.  , 0.25, 0.5 , 0.75], dtype=float32)
    """
    num_views = int(num_views)
    if num_views < 1:
        raise ValueError(f"num_views must be >= 1, got {num_views}.")
    return (np.arange(num_views) * (np.pi / num_views)).astype(np.float32)


def _as_image(image, name):
    image = np.asarray(image, dtype=np.float32)
    if image.ndim == 3 and image.shape[-1] == 1:
        image = image[..., 0]
    if image.ndim != 2:
        raise ValueError(f"{name} must have shape (N, N) or (N, N, 1), got {image.shape}.")
    if image.shape[0] != image.shape[1]:
        raise ValueError(f"{name} must be square, got shape {image.shape}.")
    if not np.all(np.isfinite(image)):
        raise ValueError(f"{name} contains NaN or infinite values.")
    return image


def make_eval_example(image, num_views=None, angles=None, interpolation="bilinear"):
    """An evaluation example: the image, its views' angles and its sinogram.

    Args:
        image: (N, N) or (N, N, 1) array, the ground truth.
        num_views: number of evenly spaced views in [0, π) (or give `angles`).
        angles: explicit angles in radians, shape (V,).
        interpolation: projector interpolation (must match the task's).

    Returns:
        {"image": float32 (N, N, 1), "angles": float32 (V,), "sinogram": float32 (V, N)}.

    Example:

    >>> ex = make_eval_example(np.ones((8, 8)), num_views=2)
    >>> ex["sinogram"].shape
    (2, 8)
    """
    image = _as_image(image, "image")
    if (num_views is None) == (angles is None):
        raise ValueError("Give exactly one of num_views and angles.")
    angles = evenly_spaced_angles(num_views) if angles is None else _check_angles(angles)
    sinogram = project(tf.constant(image), tf.constant(angles), interpolation).numpy()
    return {"image": image[..., None], "angles": angles, "sinogram": sinogram}


def _check_angles(angles, name="angles", batched=False):
    """`angles` as float32 (V,) (or (..., V) if `batched`): finite radians, else ValueError."""
    angles = np.asarray(angles, dtype=np.float32)
    if batched:
        if angles.ndim < 1 or angles.shape[-1] < 1:
            raise ValueError(f"{name} must have shape (..., V) with V >= 1, got {angles.shape}.")
    elif angles.ndim != 1 or angles.shape[0] < 1:
        raise ValueError(f"{name} must have shape (V,) with V >= 1, got {angles.shape}.")
    if not np.all(np.isfinite(angles)):
        raise ValueError(f"{name} contains NaN or infinite values.")
    if np.any(np.abs(angles) > MAX_ABS_ANGLE):
        raise ValueError(
            f"{name} must be radians in [-2π, 2π]; got values in [{angles.min():.4g}, "
            f"{angles.max():.4g}] (degrees instead of radians?).")
    return angles


def sinogram_example(sinogram, angles, image=None):
    """An example from a user's sinogram (and optionally the true image, for PSNR).

    Args:
        sinogram: (V, N) projections, one row per angle, each the *mean* along the
            rays (divide a sum-normalized sinogram, e.g. scikit-image's `radon`, by N).
        angles: (V,) angles in radians, in this module's convention.
        image: optional (N, N) or (N, N, 1) ground truth.

    Example:

    >>> ex = sinogram_example(np.zeros((3, 16)), evenly_spaced_angles(3))
    >>> sorted(ex)
    ['angles', 'sinogram']
    """
    sinogram = np.asarray(sinogram, dtype=np.float32)
    angles = _check_angles(angles)
    if sinogram.ndim != 2:
        raise ValueError(f"sinogram must have shape (V, N) (one row per angle), got "
                         f"{sinogram.shape}.")
    if sinogram.shape[0] != angles.shape[0]:
        raise ValueError(f"sinogram has {sinogram.shape[0]} rows but angles has "
                         f"{angles.shape[0]} entries; expected one row per angle.")
    if not np.all(np.isfinite(sinogram)):
        raise ValueError("sinogram contains NaN or infinite values.")
    example = {"angles": angles, "sinogram": sinogram}
    if image is not None:
        image = _as_image(image, "image")
        if image.shape[0] != sinogram.shape[1]:
            raise ValueError(f"image is {image.shape[0]}×{image.shape[1]} but the sinogram has "
                             f"{sinogram.shape[1]} detector bins; expected equal sizes.")
        example["image"] = image[..., None]
    return example


class CtTask(Task):
    """Sparse-view CT reconstruction with a coordinate network.

    The network is evaluated on the paper's image grid (`image_grid(N)`) to give an
    (N, N, 1) attenuation image; the loss is the MSE between its projections and
    the observed projections at the observed angles; metrics are "loss",
    "sinogram_psnr" (PSNR of the projections, which are in [0, 1] for images in
    [0, 1]) and "psnr" (rendered image vs ground truth; NaN when the example has
    no ground-truth image or an all-zero one).

    Args:
        resolution: N, the image height and width.
        num_angles: views drawn U[0, π) per training example (paper: 20).
        interpolation: projector interpolation, "bilinear" or "nearest".

    Example:

    >>> from learnit_tf.models import FourierFeatureMLP, FunctionalModel
    >>> task = CtTask(resolution=8, num_angles=3)
    >>> fmodel = FunctionalModel(FourierFeatureMLP(num_features=8, width=16, hidden_layers=1,
    ...                                            output_activation="sigmoid", seed=0))
    >>> ex = {"image": tf.zeros((8, 8, 1)), "seed": tf.constant([0, 1])}
    >>> float(task.inner_loss(fmodel, fmodel.initial_weights(), ex, 0)) > 0
    True
    """

    def __init__(self, resolution, num_angles=20, interpolation="bilinear"):
        self.resolution = int(resolution)
        if self.resolution < 2:
            raise ValueError(f"resolution must be >= 2, got {resolution}.")
        self.num_angles = int(num_angles)
        if self.num_angles < 1:
            raise ValueError(f"num_angles must be >= 1, got {num_angles}.")
        if interpolation not in INTERPOLATIONS:
            raise ValueError(
                f"interpolation must be one of {INTERPOLATIONS}, got {interpolation!r}.")
        self.interpolation = interpolation
        self.coords = tf.constant(image_grid(self.resolution))

    def get_config(self):
        return {"resolution": self.resolution, "num_angles": self.num_angles,
                "interpolation": self.interpolation}

    def render(self, fmodel, weights):
        """The network's image, shape (N, N, 1)."""
        return fmodel(weights, self.coords)

    def project(self, image, angles):
        """Projections (V, N) of an (N, N, 1) image at `angles` (V,)."""
        return project(image[..., 0], angles, self.interpolation)

    def training_angles(self, seed):
        """The `num_angles` angles U[0, π) drawn from an example's seed (int32 (2,)).

        Drawn as raw 32-bit Philox integers and scaled here: TF's float conversion of
        stateless uniforms differs between XLA and the eager kernels, the integers do
        not, so compiled and uncompiled runs see the same views.
        """
        bits = tf.random.stateless_uniform((self.num_angles,), tf.cast(seed, tf.int32),
                                           minval=None, maxval=None, dtype=tf.uint32,
                                           alg="philox")
        # The top 24 bits are exact in float32: u in [0, 1) on a 2^-24 grid.
        u = tf.cast(tf.bitwise.right_shift(bits, 8), tf.float32) * (2.0 ** -24)
        return u * math.pi

    def observations(self, example):
        """(angles (V,), sinogram (V, N)) observed for `example` (see the module docstring)."""
        prepared = self._with_tables(example)
        return prepared["angles"], prepared["sinogram"]

    def prepare_example(self, example):
        """The example with its views and the projector's tables: `angles`, `sinogram`
        (for an example without one, the true image's projections at its angles or its
        seed's training angles) and `ray_index` / `ray_weight`
        (`learnit_tf.kinds.ct.projector.projection_tables` at those angles). Every loss
        then projects the network's image with one gather and never re-projects the
        true image (a fit or a MAML step computes its inner loss at every step).
        Memory: the tables hold 4·V·N² (bilinear) indices and weights, 42 MB for 20
        views of a 256² image.

        >>> task = CtTask(resolution=8, num_angles=3)
        >>> ex = {"image": tf.ones((8, 8, 1)), "seed": tf.constant([0, 1])}
        >>> prepared = task.prepare_example(ex)
        >>> sorted(prepared), tuple(prepared["sinogram"].shape)
        (['angles', 'image', 'ray_index', 'ray_weight', 'seed', 'sinogram'], (3, 8))
        """
        return self._with_tables(example)

    def _with_tables(self, example):
        """`prepare_example`'s result, which every loss projects through: an example the
        fitter or meta-learner prepared passes as it is, any other is prepared here (then
        in every loss, as a direct call of a loss on a raw example does)."""
        if RAY_INDEX in example:
            return example
        if "angles" in example:
            angles = tf.cast(example["angles"], tf.float32)
        else:
            angles = self.training_angles(example["seed"])
        index, weight = projection_tables(self.resolution, angles, self.interpolation)
        if "sinogram" in example:
            sinogram = tf.cast(example["sinogram"], tf.float32)
        else:
            flat = tf.reshape(tf.cast(example["image"], tf.float32), (-1,))
            sinogram = tf.stop_gradient(project_with_tables(flat, index, weight))
        return {**example, "angles": angles, "sinogram": sinogram, RAY_INDEX: index,
                RAY_WEIGHT: weight}

    def _projection_mse(self, fmodel, weights, example):
        return self.inner_loss_from_prediction(self.render(fmodel, weights), example, None)

    def has_shared_prediction(self):
        return True

    def shared_prediction(self, fmodel, weights):
        return self.render(fmodel, weights)

    def inner_loss_from_prediction(self, prediction, example, step):
        del step  # The views are fixed for the whole fit.
        example = self._with_tables(example)
        predicted = project_with_tables(tf.reshape(prediction, (-1,)), example[RAY_INDEX],
                                        example[RAY_WEIGHT])
        return tf.reduce_mean(tf.square(tf.cast(predicted, tf.float32) - example["sinogram"]))

    def inner_loss(self, fmodel, weights, example, step):
        # The views are fixed for the whole fit: `step` does not change them.
        del step
        return self._projection_mse(fmodel, weights, example)

    def outer_loss(self, fmodel, weights, example):
        return self._projection_mse(fmodel, weights, example)

    def metrics(self, fmodel, weights, example):
        loss = self._projection_mse(fmodel, weights, example)
        result = {"loss": loss, "sinogram_psnr": mse_to_psnr(loss)}
        if "image" in example:
            image = tf.cast(example["image"], tf.float32)
            mse = tf.reduce_mean(tf.square(self.render(fmodel, weights) - image))
            has_truth = tf.reduce_max(tf.abs(image)) > 0
            result["psnr"] = tf.where(has_truth, mse_to_psnr(mse), tf.constant(np.nan))
        else:
            result["psnr"] = tf.constant(np.nan, tf.float32)
        return result

    def validate_example(self, example, name="example"):
        """Checks one example (leading batch dimensions are allowed); raises ValueError."""
        if not isinstance(example, dict):
            raise ValueError(f"{name} must be a dict of arrays, got {type(example).__name__}.")
        n = self.resolution
        image = example.get("image")
        if image is not None:
            shape = tuple(image.shape)
            if len(shape) < 3 or shape[-1] != 1:
                raise ValueError(f"{name}['image'] has shape {shape}; expected (..., {n}, {n}, 1).")
            if shape[-3] != shape[-2]:
                raise ValueError(f"{name}['image'] is not square: shape {shape}; CT images must "
                                 f"be (..., {n}, {n}, 1).")
            if shape[-3] != n:
                raise ValueError(f"{name}['image'] is {shape[-3]}×{shape[-2]} but the task's "
                                 f"resolution is {n}; expected (..., {n}, {n}, 1).")
            if not np.all(np.isfinite(np.asarray(image))):
                raise ValueError(f"{name}['image'] contains NaN or infinite values.")
        angles = example.get("angles")
        sinogram = example.get("sinogram")
        if sinogram is not None and angles is None:
            raise ValueError(f"{name} has a 'sinogram' but no 'angles'; give the angle (radians) "
                             "of every sinogram row.")
        if angles is not None:
            _check_angles(angles, f"{name}['angles']", batched=True)
        if sinogram is not None:
            s = np.asarray(sinogram)
            v = np.asarray(angles).shape[-1]
            if s.ndim < 2 or s.shape[-2] != v or s.shape[-1] != n:
                raise ValueError(
                    f"{name}['sinogram'] has shape {s.shape}; expected (..., {v}, {n}): one row "
                    f"per angle ({v} angles) and {n} detector bins (the resolution).")
            if not np.all(np.isfinite(s)):
                raise ValueError(f"{name}['sinogram'] contains NaN or infinite values.")
        else:
            if image is None:
                raise ValueError(f"{name} needs an 'image' (to project) or a 'sinogram' with "
                                 "'angles'.")
            if angles is None:
                seed = example.get("seed")
                if seed is None:
                    raise ValueError(f"{name} needs 'angles' or a 'seed' (int32 (2,)) to draw "
                                     f"{self.num_angles} random angles from.")
                if tuple(seed.shape)[-1:] != (2,):
                    raise ValueError(f"{name}['seed'] must have shape (..., 2), got "
                                     f"{tuple(seed.shape)}.")
