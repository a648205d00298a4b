"""Measurement operators and losses, one per signal kind."""

from learnit_tf.tasks.base import Task, mse_to_psnr
from learnit_tf.tasks.image import ImageTask, image_grid

__all__ = ["Task", "mse_to_psnr", "ImageTask", "image_grid"]
