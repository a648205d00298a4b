"""A user's own folder of PNG/JPEG images as a signal class.

Images are centre-cropped to a square and resized to the target resolution. The
train/test split is deterministic per file name (a hash), so adding files never
moves existing ones between splits.
"""

import hashlib
import os

import numpy as np
import tensorflow as tf
from PIL import Image, UnidentifiedImageError

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg")


def load_image(path, resolution=None):
    """Reads an image file as float32 (H, W, 3) in [0, 1], centre-cropped and resized.

    Args:
        path: PNG or JPEG file.
        resolution: if set, centre-crop to a square and resize to resolution×resolution.

    Raises:
        ValueError: unreadable or non-image file, unsupported channel layout, or an image
            smaller than the requested resolution.
    """
    try:
        with Image.open(path) as img:
            img.load()
            mode = img.mode
            if mode in ("RGBA", "LA"):
                # Composite transparency on white, as the paper's renders do.
                background = Image.new("RGBA", img.size, (255, 255, 255, 255))
                img = Image.alpha_composite(background, img.convert("RGBA"))
            elif mode not in ("RGB", "L", "I;16", "P"):
                raise ValueError(f"Image {path!r} has mode {mode!r}; expected RGB, RGBA, "
                                 "grayscale or palette images.")
            img = img.convert("RGB")
    except (UnidentifiedImageError, OSError) as e:
        raise ValueError(f"Cannot read {path!r} as an image (expected PNG or JPEG): {e}") from e
    if resolution is not None:
        width, height = img.size
        side = min(width, height)
        if side < resolution:
            raise ValueError(f"Image {path!r} is {width}×{height}, smaller than the requested "
                             f"{resolution}×{resolution} crop.")
        left, top = (width - side) // 2, (height - side) // 2
        img = img.crop((left, top, left + side, top + side))
        if side != resolution:
            img = img.resize((resolution, resolution), Image.BICUBIC)
    return np.asarray(img, dtype=np.float32) / 255.0


def _in_test_split(filename, test_fraction):
    digest = hashlib.sha256(os.path.basename(filename).encode()).digest()
    return int.from_bytes(digest[:4], "big") / 2**32 < test_fraction


def list_image_files(directory):
    """Sorted image files (PNG/JPEG) directly inside `directory`."""
    if not os.path.isdir(directory):
        raise ValueError(f"Image folder {directory!r} does not exist or is not a directory.")
    files = sorted(os.path.join(directory, f) for f in os.listdir(directory)
                   if f.lower().endswith(IMAGE_EXTENSIONS))
    if not files:
        raise ValueError(f"Image folder {directory!r} holds no PNG/JPEG files "
                         f"(extensions {IMAGE_EXTENSIONS}).")
    return files


def image_folder_examples(directory, split="train", resolution=64, test_fraction=0.1):
    """Unbatched examples {"image": float32 (R, R, 3)} from a folder of images.

    Args:
        directory: folder of PNG/JPEG files.
        split: "train" or "test" ("validation" is the same as "test").
        resolution: output size after centre crop.
        test_fraction: share of files (by name hash) in the test split.
    """
    if split not in ("train", "test", "validation"):
        raise ValueError(f"split must be 'train', 'validation' or 'test', got {split!r}.")
    files = list_image_files(directory)
    want_test = split != "train"
    chosen = [f for f in files if _in_test_split(f, test_fraction) == want_test]
    if not chosen:
        raise ValueError(f"Split {split!r} of image folder {directory!r} is empty "
                         f"({len(files)} files, test_fraction={test_fraction}).")
    images = np.stack([load_image(f, resolution) for f in chosen])
    return tf.data.Dataset.from_tensor_slices({"image": images})
