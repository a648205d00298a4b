"""The task interface shared by every signal kind (kinds' tasks live in `learnit_tf.kinds`)."""

from learnit_tf.tasks.base import Task, mse_to_psnr

__all__ = ["Task", "mse_to_psnr"]
