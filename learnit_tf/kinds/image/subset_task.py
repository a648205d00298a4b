"""Meta-training on random pixel subsets of large images: one init for every grid.

An init meta-trained on the 64×64 grid only learns the function at those points: its
learned inner steps fit the 4,096 grid pixels, and between them the SIREN (w0 = 200)
is free to alias, so fitted at 128×128 or 256×256 it loses most of its advantage
(docs/image/resolution.md). `PixelSubsetImageTask` trains on images held at a high
resolution (e.g. 256×256, whose grid contains the 64 and 128 grids) and lets every inner
step, and the outer loss, see a fixed number of random pixels of it (drawn without
replacement, a new subset per step). Shapes are static and a step costs the same as a
64×64 step whatever the images' resolution, while the init must fit, after its inner
steps, pixels it was not stepped on: its function between the pixels of any coarser
grid is trained too.

Each subset's mean squared error is an unbiased estimate of the full image's; with a
subset of every pixel it *is* the full image's loss (tests/test_image_resolution.py).
Test-time fits use the full grid (`for_fitting`; at another resolution,
`resolution.task_at_resolution`).
"""

import tensorflow as tf

from learnit_tf.kinds.image.task import ImageTask
from learnit_tf.core.task import mse_to_psnr

# Folded into an example's seed for the outer loss's subset, so it is drawn independently
# of the inner steps' (which use seed + step, as ImageTask's pixels_per_step does).
OUTER_STREAM = 0x0DD5EED


class PixelSubsetImageTask(ImageTask):
    """Inner steps and outer loss on random pixel subsets of an (H, W) image.

    An example is `{"image": float32 (H, W, C), "seed": int32 (2,)}` (meta_train's
    pipeline adds the seed); without a seed the losses use every pixel (a test-time fit).
    Metrics (`metrics`, `render`) use the full grid.

    Args:
        resolution: height and width of the training images (int or pair).
        channels: colour channels.
        pixels_per_step: pixels of each inner step's loss (default 4096, a 64×64 step).
        outer_pixels: pixels of the outer (meta) loss (default: pixels_per_step).
        dtype: dtype of the coordinates.

    Example:

    >>> task = PixelSubsetImageTask(256, pixels_per_step=4096)
    >>> task.get_config()["outer_pixels"]
    4096
    """

    def __init__(self, resolution, channels=3, pixels_per_step=4096, outer_pixels=None,
                 dtype="float32"):
        super().__init__(resolution, channels=channels, pixels_per_step=pixels_per_step,
                         dtype=dtype)
        num_pixels = self.height * self.width
        self.outer_pixels = self.pixels_per_step if outer_pixels is None else int(outer_pixels)
        for name, count in (("pixels_per_step", self.pixels_per_step),
                            ("outer_pixels", self.outer_pixels)):
            if count is None or not 1 <= count <= num_pixels:
                raise ValueError(f"PixelSubsetImageTask: {name} must be between 1 and the "
                                 f"image's {num_pixels} pixels, got {count!r}.")

    def get_config(self):
        return dict(super().get_config(), outer_pixels=self.outer_pixels)

    def for_fitting(self):
        """A full-grid `ImageTask` of this size: a user's fit sees every pixel."""
        return ImageTask((self.height, self.width), channels=self.channels)

    def pixel_subset(self, example, count, seed):
        """(coords (count, 2), target (count, C)): `count` distinct random pixels."""
        num_pixels = self.height * self.width
        # top_k of uniform noise: a uniformly random subset without replacement.
        noise = tf.random.stateless_uniform((num_pixels,), seed)
        _, idx = tf.math.top_k(noise, k=count, sorted=False)
        coords = tf.gather(self._flat_coords, idx)
        target = tf.gather(tf.reshape(example["image"], (num_pixels, self.channels)), idx)
        return coords, target

    def _seed(self, example):
        """The example's seed (int32 (2,)), or None: an example without one is fitted on
        every pixel, as `for_fitting`'s task fits. meta_train's pipeline always adds one."""
        seed = example.get("seed") if isinstance(example, dict) else None
        return None if seed is None else tf.cast(seed, tf.int32)

    def _full_grid_loss(self, fmodel, weights, example):
        return tf.reduce_mean(tf.square(self.render(fmodel, weights) - example["image"]))

    def inner_loss(self, fmodel, weights, example, step):
        seed = self._seed(example)
        if seed is None:
            return self._full_grid_loss(fmodel, weights, example)
        seed = seed + tf.stack([0, tf.cast(step, tf.int32)])
        coords, target = self.pixel_subset(example, self.pixels_per_step, seed)
        return tf.reduce_mean(tf.square(fmodel(weights, coords) - target))

    def outer_loss(self, fmodel, weights, example):
        seed = self._seed(example)
        if seed is None:
            return self._full_grid_loss(fmodel, weights, example)
        seed = tf.random.experimental.stateless_fold_in(seed, OUTER_STREAM)
        coords, target = self.pixel_subset(example, self.outer_pixels, seed)
        return tf.reduce_mean(tf.square(fmodel(weights, coords) - target))

    def metrics(self, fmodel, weights, example):
        mse = tf.reduce_mean(tf.square(self.render(fmodel, weights) - example["image"]))
        return {"loss": mse, "psnr": mse_to_psnr(mse)}
