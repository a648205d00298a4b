"""A folder of the user's own images, and one image file for `scripts/fit.py`.

Decoding and the folder split rule are shared by every kind
(`learnit_tf.data.files`: `read_image`, `load_image`, `split_entries`); this module
turns them into image examples.
"""

import os

import numpy as np
import tensorflow as tf

from learnit_tf.data.files import (IMAGE_EXTENSIONS, MAX_PIXELS, SPLITS,  # noqa: F401
                                   composite, crop_and_resize, hash_split, list_image_files,
                                   load_image, read_image, split_entries, to_gray, to_rgb)


def image_folder_examples(directory, split="train", resolution=64, test_fraction=0.1):
    """Unbatched examples {"image": float32 (R, R, 3)} from a folder of images.

    Args:
        directory: folder of PNG/JPEG/TIFF files, or with `train/` and `test/` (and
            optionally `validation/`) subfolders of them.
        split: "train", "validation" or "test" (see `split_entries`).
        resolution: output size after centre crop.
        test_fraction: share of files (by name hash) in the test split, for folders
            without split subfolders (a folder of >= 2 files always has a test file).

    Raises:
        ValueError naming the folder or file: missing/empty folder or split, an
        unreadable image, or one smaller than `resolution`.
    """
    files = split_entries(directory, split, list_image_files, test_fraction, "image files")
    images = np.stack([load_image(f, resolution) for f in files])
    return tf.data.Dataset.from_tensor_slices({"image": images})


#: The largest side `resolution_of_input` picks by itself: the largest grid the shipped
#: image inits were evaluated at (docs/image/resolution.md); a SIREN fit's memory and
#: time grow with the pixel count, so a phone photo is not fitted at 4000×3000 unasked.
MAX_INPUT_RESOLUTION = 256


def resolution_of_input(path, task):
    """`learnit-fit --resolution` when not given: an image file larger than the init's
    grid is fitted at its own size (its shorter side, the centre crop's), up to
    `MAX_INPUT_RESOLUTION`; None (the init's own grid) for smaller images, other inputs
    or files that cannot be read (the reader then says what is wrong). With a bare zoo
    name this also picks the version best at that size (`zoo.resolution.choose_init`).
    """
    # pylint: disable-next=import-outside-toplevel
    from PIL import Image, UnidentifiedImageError
    from learnit_tf.kinds.image.task import ImageTask  # pylint: disable=import-outside-toplevel
    if not (os.path.isfile(path) and isinstance(task, ImageTask)):
        return None
    try:
        with Image.open(path) as img:  # Reads the header only.
            side = min(img.size)
    except (OSError, ValueError, UnidentifiedImageError):
        return None
    if side <= max(task.height, task.width):
        return None
    return min(side, MAX_INPUT_RESOLUTION)


def fit_example(path, task, resolution=None):
    """`scripts/fit.py --input=IMAGE` for an image init: a `FitInput` of {"image"}.

    Args:
        path: PNG/JPEG/TIFF file (centre-cropped and resized to the task's resolution).
        task: the init's `ImageTask` in its `for_fitting` form (`learnit-fit`'s
            `kind_of_init` gives it: every pixel of an init trained on pixel subsets).
        resolution: fit at this resolution instead (see `zoo_resolution` for how
            well an init does where it was not evaluated).
    """
    # pylint: disable=import-outside-toplevel
    from learnit_tf.core.fit_input import FitInput
    from learnit_tf.kinds.image.task import ImageTask
    if not isinstance(task, ImageTask):
        raise ValueError(f"image inputs need an ImageTask init, got {type(task).__name__}.")
    if os.path.isdir(path):
        raise ValueError(f"--input={path!r} is a directory; an image init fits one image "
                         "file (PNG, JPEG or TIFF).")
    if resolution is not None and int(resolution) < 2:
        raise ValueError(f"resolution must be >= 2, got {resolution}.")
    if resolution is not None:
        task = ImageTask(int(resolution), channels=task.channels,
                         pixels_per_step=task.pixels_per_step)
    if task.height != task.width:
        raise ValueError(f"The init's task is {task.height}×{task.width}; fitting a file "
                         "needs a square task (pass resolution=...).")
    image = load_image(path, task.height)
    if task.channels == 1:
        image = to_gray(image)
    elif task.channels != 3:
        raise ValueError(f"The init's task has {task.channels} channels; image files give 1 "
                         "or 3.")
    example = {"image": image}
    if task.pixels_per_step is not None:
        example["seed"] = np.zeros(2, np.int32)  # The random pixel subsets of the fit.
    return FitInput(task, example, observed=[("target", image)],
                    render=lambda fmodel, weights: task.render(fmodel, weights).numpy(),
                    description=f"{task.height}×{task.width} image {os.path.basename(path)}")
