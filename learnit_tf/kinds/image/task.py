"""2D image regression: the network maps pixel coordinates to colours (identity measurement).

PAPER.md, "2D image regression": coordinates are the regular grid
`linspace(0, 1, RES + 1)[:-1]` per axis with 'ij' indexing; the loss is the mean
squared error over all pixels; quality is PSNR.
"""

import numpy as np
import tensorflow as tf

from learnit_tf.core.grids import image_grid
from learnit_tf.core.task import Task, mse_to_psnr

__all__ = ["ImageTask", "image_grid"]  # image_grid lives in core (CT uses it too).


class ImageTask(Task):
    """Fit an image with a coordinate network.

    An example is `{"image": float32 (H, W, C) in [0, 1]}`; with `pixels_per_step`
    it also needs `"seed"` (int32 (2,)) to draw a random pixel subset at every inner
    step (for large images, as in the paper's memory-bound settings).

    Args:
        resolution: image height and width (int) or (height, width).
        channels: colour channels.
        pixels_per_step: if set, the inner loss uses this many random pixels per step.
        dtype: dtype of the coordinates (float64 for gradient checks).

    Example:

    >>> task = ImageTask(resolution=8)
    >>> task.coords.shape
    TensorShape([8, 8, 2])
    """

    def __init__(self, resolution, channels=3, pixels_per_step=None, dtype="float32"):
        if isinstance(resolution, int):
            resolution = (resolution, resolution)
        self.height, self.width = int(resolution[0]), int(resolution[1])
        self.channels = int(channels)
        self.pixels_per_step = None if pixels_per_step is None else int(pixels_per_step)
        self.coords = tf.constant(image_grid(self.height, self.width), dtype=dtype)
        self._flat_coords = tf.reshape(self.coords, (-1, 2))

    def get_config(self):
        return {"resolution": [self.height, self.width], "channels": self.channels,
                "pixels_per_step": self.pixels_per_step}

    def render(self, fmodel, weights):
        """The network's image, shape (H, W, C)."""
        return fmodel(weights, self.coords)

    def inner_loss(self, fmodel, weights, example, step):
        image = example["image"]
        if self.pixels_per_step is None:
            return tf.reduce_mean(tf.square(self.render(fmodel, weights) - image))
        num_pixels = self.height * self.width
        seed = tf.stack([tf.cast(example["seed"][0], tf.int32),
                         tf.cast(example["seed"][1], tf.int32) + tf.cast(step, tf.int32)])
        idx = tf.random.stateless_uniform(
            (self.pixels_per_step,), seed, 0, num_pixels, dtype=tf.int32)
        coords = tf.gather(self._flat_coords, idx)
        target = tf.gather(tf.reshape(image, (num_pixels, self.channels)), idx)
        return tf.reduce_mean(tf.square(fmodel(weights, coords) - target))

    def outer_loss(self, fmodel, weights, example):
        return tf.reduce_mean(tf.square(self.render(fmodel, weights) - example["image"]))

    def has_shared_prediction(self):
        # With random pixel subsets every example sees different coordinates.
        return self.pixels_per_step is None

    def shared_prediction(self, fmodel, weights):
        return self.render(fmodel, weights)

    def inner_loss_from_prediction(self, prediction, example, step):
        del step
        return tf.reduce_mean(tf.square(prediction - example["image"]))

    def metrics(self, fmodel, weights, example):
        mse = self.outer_loss(fmodel, weights, example)
        return {"loss": mse, "psnr": mse_to_psnr(mse)}

    def metrics_from_inner_loss(self, loss):
        if self.pixels_per_step is not None:
            return None
        return {"loss": loss, "psnr": mse_to_psnr(loss)}

    def validate_example(self, example, name="example"):
        image = example.get("image") if isinstance(example, dict) else None
        if image is None:
            raise ValueError(f"{name} must be a dict with an 'image' entry.")
        shape = tuple(image.shape)
        expected = (self.height, self.width, self.channels)
        if shape[-3:] != expected:
            # Say which of size and channels differs: a resolution mismatch is the usual one.
            if len(shape) < 3:
                problem = "an image has (height, width, channels) dimensions"
            elif shape[-3:-1] != expected[:2]:
                problem = (f"images are {shape[-3]}×{shape[-2]}, the task expects "
                           f"{self.height}×{self.width}")
            else:
                problem = f"images have {shape[-1]} channels, the task expects {self.channels}"
            raise ValueError(f"{name}['image'] has shape {shape}; expected (..., "
                             f"{self.height}, {self.width}, {self.channels}): {problem}.")
        if not bool(np.all(np.isfinite(np.asarray(image)))):
            raise ValueError(f"{name}['image'] contains NaN or infinite values.")
