"""The task interface shared by every signal kind; moved to `learnit_tf.core.task`.

`learnit_tf.tasks.Task` keeps working (kinds' tasks live in `learnit_tf.kinds`).
"""

from learnit_tf.core.task import Task, mse_to_psnr

__all__ = ["Task", "mse_to_psnr"]
