"""3D shapes as signed distance functions: the network maps a point to its signed distance.

MetaSDF (Sitzmann et al., NeurIPS 2020) meta-learns the init of a network that maps
(x, y, z) in [-1, 1]^3 to the signed distance of one shape, fitted from point samples
with a few gradient steps; this is that signal as a learnit task, so the shared
meta-learners and fitter apply unchanged.

Conventions (each tested in tests/kinds/shape3d/):
- Sign: NEGATIVE INSIDE, positive outside (`learnit_tf.kinds.shape3d.sdf`); occupancy
  is `sdf < 0`.
- Loss: the L1 (default) or squared error between the network's output and the
  signed distance, both clamped to [-clamp, clamp] (DeepSDF's clamp, 0.1), over all
  the example's points (half near the surface, half uniform): the fit spends its
  capacity near the surface, where the shape is.
- IoU: of the occupancies `prediction < 0` and `grid_sdf < 0` on the fixed
  G^3 grid (`sampling.grid_coords`, G = `grid_resolution`); 1 when both are empty.
  It is recorded at every fit step, so steps-to-match is exact (one forward pass of
  G^3 points per step: keep G small on a CPU).
"""

import numpy as np
import tensorflow as tf

from learnit_tf.core.task import Task
from learnit_tf.kinds.shape3d.sampling import grid_coords

LOSSES = ("l1", "l2")


def occupancy_iou(predicted_sdf, true_sdf):
    """IoU of the occupancies (sdf < 0) of two signed distance arrays (1.0 if both empty).

    Example:

    >>> float(occupancy_iou(tf.constant([-1., -1., 1., 1.]), tf.constant([-1., 1., 1., 1.])))
    0.5
    """
    inside_a = tf.cast(predicted_sdf < 0, tf.float32)
    inside_b = tf.cast(true_sdf < 0, tf.float32)
    intersection = tf.reduce_sum(inside_a * inside_b)
    union = tf.reduce_sum(tf.maximum(inside_a, inside_b))
    return tf.where(union > 0, intersection / tf.maximum(union, 1.0), 1.0)


class ShapeSdfTask(Task):
    """Fit one 3D shape's signed distance function from point samples.

    An example is {"points": (num_points, 3), "sdf": (num_points,), "grid_sdf":
    (grid_resolution^3,), "surface": (num_surface, 3)} (see
    `learnit_tf.kinds.shape3d.sampling`). The network takes (N, 3) points in
    [-1, 1]^3 and returns (N, 1) signed distances, e.g.
    `Siren(in_features=3, out_features=1, output_offset=0.0, w0=30)`.

    Args:
        num_points: sampled points per shape (static).
        grid_resolution: G of the IoU grid.
        num_surface: true-surface points per shape (Chamfer distance).
        loss: "l1" (MetaSDF, DeepSDF) or "l2".
        clamp: both sides of the loss are clamped to [-clamp, clamp] (None: no clamp).

    Example:

    >>> task = ShapeSdfTask(num_points=8, grid_resolution=4, num_surface=4)
    >>> task.grid.shape
    TensorShape([64, 3])
    """

    primary_metric = "iou"

    def __init__(self, num_points=2048, grid_resolution=32, num_surface=2048, loss="l1",
                 clamp=0.1, dtype="float32"):
        self.num_points = int(num_points)
        self.grid_resolution = int(grid_resolution)
        self.num_surface = int(num_surface)
        if self.num_points < 2 or self.grid_resolution < 2 or self.num_surface < 1:
            raise ValueError(f"ShapeSdfTask needs num_points >= 2, grid_resolution >= 2 and "
                             f"num_surface >= 1; got {num_points}, {grid_resolution}, "
                             f"{num_surface}.")
        if loss not in LOSSES:
            raise ValueError(f"ShapeSdfTask loss must be one of {LOSSES}, got {loss!r}.")
        self.loss = loss
        self.clamp = None if clamp is None else float(clamp)
        if self.clamp is not None and not self.clamp > 0:
            raise ValueError(f"ShapeSdfTask clamp must be > 0 or None, got {clamp}.")
        self.grid = tf.constant(grid_coords(self.grid_resolution), dtype=dtype)

    def get_config(self):
        return {"num_points": self.num_points, "grid_resolution": self.grid_resolution,
                "num_surface": self.num_surface, "loss": self.loss, "clamp": self.clamp}

    def sdf(self, fmodel, weights, points):
        """The network's signed distances at `points` (N, 3), shape (N,)."""
        return fmodel(weights, points)[:, 0]

    def render(self, fmodel, weights):
        """The network's signed distances on the IoU grid, shape (G^3,)."""
        return self.sdf(fmodel, weights, self.grid)

    def _loss(self, prediction, target):
        target = tf.cast(target, prediction.dtype)
        if self.clamp is not None:
            prediction = tf.clip_by_value(prediction, -self.clamp, self.clamp)
            target = tf.clip_by_value(target, -self.clamp, self.clamp)
        error = prediction - target
        return tf.reduce_mean(tf.abs(error) if self.loss == "l1" else tf.square(error))

    def inner_loss(self, fmodel, weights, example, step):
        del step
        points = tf.cast(example["points"], self.grid.dtype)
        return self._loss(self.sdf(fmodel, weights, points), example["sdf"])

    def metrics(self, fmodel, weights, example):
        loss = self.inner_loss(fmodel, weights, example, 0)
        return {"loss": loss, "iou": occupancy_iou(self.render(fmodel, weights),
                                                   example["grid_sdf"])}

    def validate_example(self, example, name="example"):
        expected = {"points": (self.num_points, 3), "sdf": (self.num_points,),
                    "grid_sdf": (self.grid_resolution ** 3,),
                    "surface": (self.num_surface, 3)}
        if not isinstance(example, dict):
            raise ValueError(f"{name} must be a dict with entries {sorted(expected)}.")
        for key, shape in expected.items():
            if key not in example:
                raise ValueError(f"{name} lacks {key!r}; expected entries {sorted(expected)} "
                                 f"(shapes {expected}).")
            got = tuple(example[key].shape)
            if got[-len(shape):] != shape:
                raise ValueError(f"{name}[{key!r}] has shape {got}; expected (..., "
                                 f"{', '.join(map(str, shape))}) for this task ({key}).")
            if not bool(np.all(np.isfinite(np.asarray(example[key])))):
                raise ValueError(f"{name}[{key!r}] contains NaN or infinite values.")
