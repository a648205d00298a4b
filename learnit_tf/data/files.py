"""Reading a user's own files: the one image decoder and the folder split rule.

Shared by every kind's readers of user files (image folders, CT slices, posed views,
Phototourism photos, WAV folders use `split_entries`).

`read_image` (from `learnit_tf.data.image_decoder`) is the only place in `learnit_tf`
that decodes image files: every PNG/JPEG/TIFF mode and bit depth comes back as float32
in [0, 1] at its full precision (16-bit and 32-bit samples are not cut to 8 bits), upright
by its EXIF orientation, and images over `MAX_PIXELS` are refused with a clear error
before they are decoded.

Folders (`split_entries`): when the folder has `train/` and `test/` subfolders (and
optionally `validation/`) those are the splits; otherwise the split is a
deterministic hash of each entry's name, so adding files does not move existing ones
between splits (except for the small-folder rule: a folder of >= 2 entries whose
hashes put none in the test split gives the test split its entry of smallest hash,
and never all of them).
"""

import hashlib
import os

import numpy as np
from PIL import Image

from learnit_tf.data.image_decoder import (IMAGE_EXTENSIONS, MAX_PIXELS,  # noqa: F401
                                           read_image)

SPLITS = ("train", "validation", "test")


def composite(pixels, background=1.0):
    """(H, W, C) from `read_image` without alpha: colour over `background` where C is 2 or 4."""
    if pixels.shape[-1] in (2, 4):
        alpha = pixels[..., -1:]
        return pixels[..., :-1] * alpha + background * (1.0 - alpha)
    return pixels


def to_rgb(pixels):
    """float32 (H, W, 3): grayscale repeated, transparency composited on white (as the paper)."""
    pixels = composite(pixels, 1.0)
    return np.repeat(pixels, 3, axis=-1) if pixels.shape[-1] == 1 else pixels


def to_gray(pixels, background=0.0):
    """float32 (H, W, 1): ITU-R 601 luma of colour images; transparency over `background`."""
    pixels = composite(pixels, background)
    if pixels.shape[-1] == 3:
        pixels = pixels @ np.array([[0.299], [0.587], [0.114]], np.float32)
    return pixels.astype(np.float32)


def crop_and_resize(array, resolution, path):
    """Centre-crops (H, W, C) float32 to a square and resizes it (bicubic) to resolution².

    Raises:
        ValueError naming `path` if the image is smaller than the requested size.
    """
    height, width = array.shape[:2]
    side = min(width, height)
    if side < resolution:
        raise ValueError(f"Image {path!r} is {width}×{height}, smaller than the requested "
                         f"{resolution}×{resolution} crop.")
    top, left = (height - side) // 2, (width - side) // 2
    array = array[top:top + side, left:left + side]
    if side == resolution:
        return np.ascontiguousarray(array, dtype=np.float32)
    # Per channel in Pillow's float mode: no rounding to 8 bits after resampling.
    channels = [np.asarray(Image.fromarray(np.ascontiguousarray(array[..., c], np.float32),
                                           mode="F").resize((resolution, resolution),
                                                            Image.BICUBIC))
                for c in range(array.shape[-1])]
    return np.clip(np.stack(channels, axis=-1), 0.0, 1.0).astype(np.float32)


def load_image(path, resolution=None):
    """Reads an image file as float32 (H, W, 3) in [0, 1], centre-cropped and resized.

    Args:
        path: PNG, JPEG or TIFF file (any bit depth; transparency composited on white).
        resolution: if set, centre-crop to a square and resize to resolution×resolution.

    Raises:
        ValueError: unreadable or non-image file, unsupported channel layout, an image
            over `MAX_PIXELS`, or one smaller than the requested resolution.
    """
    rgb = to_rgb(read_image(path))
    return rgb if resolution is None else crop_and_resize(rgb, int(resolution), path)


# -- folders and splits ------------------------------------------------------------------------


def _hash_fraction(entry):
    digest = hashlib.sha256(os.path.basename(os.path.normpath(entry)).encode()).digest()
    return int.from_bytes(digest[:4], "big") / 2**32


def hash_split(entries, test_fraction):
    """(train, test) lists: an entry is in test if the hash of its base name < test_fraction.

    Small folders: with >= 2 entries the test split gets at least one entry (the one of
    smallest hash) and the train split keeps at least one (the one of largest hash).
    """
    if not 0.0 <= test_fraction < 1.0:
        raise ValueError(f"test_fraction must be in [0, 1), got {test_fraction}.")
    test = {e for e in entries if _hash_fraction(e) < test_fraction}
    ranked = sorted(entries, key=_hash_fraction)
    if len(entries) >= 2 and test_fraction > 0:
        if not test:
            test = {ranked[0]}
        if len(test) == len(entries):
            test.discard(ranked[-1])
    return [e for e in entries if e not in test], [e for e in entries if e in test]


def split_entries(directory, split, list_entries, test_fraction=0.1, what="files"):
    """The entries (files or object folders) of one split of a user's folder.

    Args:
        directory: the folder.
        split: "train", "validation" or "test" ("validation" is the `validation/`
            subfolder if there is one, else the test split).
        list_entries: callable(folder) -> sorted entry paths directly in `folder`
            (raising ValueError naming the folder if it holds none).
        test_fraction: share of entries (by name hash) in the test split when the folder
            has no `train/` and `test/` subfolders.
        what: what the entries are, for error messages.

    Raises:
        ValueError naming the folder: missing, unknown split, only one of train/ and
        test/, or an empty split.
    """
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}.")
    directory = os.fspath(directory)
    if not os.path.isdir(directory):
        raise ValueError(f"Folder {directory!r} does not exist or is not a directory.")
    present = [s for s in SPLITS if os.path.isdir(os.path.join(directory, s))]
    if present:
        if not {"train", "test"} <= set(present):
            raise ValueError(f"Folder {directory!r} has the split subfolder(s) {present} but "
                             "not both train/ and test/; expected train/ and test/ (and "
                             f"optionally validation/), or {what} directly in the folder.")
        name = split if split in present else "test"
        return list_entries(os.path.join(directory, name))
    entries = list_entries(directory)
    train, test = hash_split(entries, test_fraction)
    chosen = train if split == "train" else test
    if not chosen:
        raise ValueError(f"Split {split!r} of folder {directory!r} is empty ({len(entries)} "
                         f"{what}, test_fraction={test_fraction}); expected at least 2 {what}, "
                         "or train/ and test/ subfolders.")
    return chosen


def list_image_files(directory, extensions=IMAGE_EXTENSIONS, what="PNG/JPEG/TIFF files"):
    """Sorted image files (PNG/JPEG/TIFF, or `extensions`) directly inside `directory`."""
    if not os.path.isdir(directory):
        raise ValueError(f"Folder {directory!r} does not exist or is not a directory.")
    files = sorted(os.path.join(directory, f) for f in os.listdir(directory)
                   if f.lower().endswith(extensions) and not f.startswith(".")
                   and os.path.isfile(os.path.join(directory, f)))
    if not files:
        raise ValueError(f"Folder {directory!r} holds no {what} (extensions {extensions}).")
    return files
