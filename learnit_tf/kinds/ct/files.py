r"""A user's own CT files: a sinogram to reconstruct, or a folder of slices to meta-train on.

Sinogram conventions (`to_learnit_convention` is the one place they are converted):

- ``learnit`` (this package, `learnit_tf.kinds.ct.task`): a (V, N) array, one row per
  view, each row the *mean* of the image along parallel rays; angles θ in radians.
  `--num_angles=V` means θ_k = k·π/V.
- ``skimage``: `skimage.transform.radon(image, theta)` output (with its default
  `circle=True`): an (N, V) array, one *column* per view, *sums* along rays; `theta`
  in degrees, rotating the other way: θ = −radians(theta). `--num_angles=V` means
  radon's evenly spaced `theta = linspace(0, 180, V, endpoint=False)`, so its angles
  are negated too. Exact for odd N; for even N radon rotates about pixel N/2, half a
  pixel from this package's centre (N − 1)/2.

Folders of slices (`ct_folder_examples`): PNG/JPEG/TIFF (grayscale, or colour turned
into luma; any bit depth `learnit_tf.data.image_decoder` reads, upright by EXIF
orientation) and `.npy` (N, N) files, centre-cropped and resized to
`resolution`, as `{"image": float32 (R, R, 1)}` in [0, 1] like the Shepp-Logan
phantoms. Image files are scaled by their bit depth; each `.npy` slice is rescaled by
its own minimum and maximum unless `value_range=(lo, hi)` maps every slice the same way
(e.g. Hounsfield units). Splits as for image folders (`train/`/`test/` subfolders or a
name hash; see `learnit_tf.data.files.split_entries`).
"""

import os

import numpy as np
import tensorflow as tf

from learnit_tf.kinds.ct.task import CtTask, evenly_spaced_angles, sinogram_example
from learnit_tf.core.fit_input import FitInput
from learnit_tf.data import files as image_files

CONVENTIONS = ("learnit", "skimage")
SLICE_EXTENSIONS = image_files.IMAGE_EXTENSIONS + (".npy",)


_NOT_NPY = ((b"\x89PNG", "a PNG image"), (b"\xff\xd8\xff", "a JPEG image"),
            (b"II*\x00", "a TIFF image"), (b"MM\x00*", "a TIFF image"),
            (b"PK\x03\x04", "a zip archive (.npz?)"))


def load_npy(path, what):
    """A real numeric array from a `.npy` file (no pickles), or a ValueError naming the file."""
    path = os.fspath(path)
    try:
        with open(path, "rb") as f:
            head = f.read(6)
    except OSError as e:
        raise ValueError(f"{what} {path!r} is not a readable .npy array: {e}") from e
    if head != b"\x93NUMPY":
        found = next((name for magic, name in _NOT_NPY if head.startswith(magic)), None)
        raise ValueError(f"{what} {path!r} is not a .npy file"
                         + (f" (it is {found})" if found else "")
                         + "; expected a NumPy .npy array (np.save) of real numbers.")
    try:
        array = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError) as e:
        reason = ("it holds Python objects (pickled data), which are never loaded"
                  if "pickle" in str(e) else str(e))
        raise ValueError(f"{what} {path!r} is not a readable .npy array: {reason}.") from e
    if not isinstance(array, np.ndarray) or not (np.issubdtype(array.dtype, np.number)
                                                 or array.dtype == bool):
        raise ValueError(f"{what} {path!r} holds {getattr(array, 'dtype', type(array))}; "
                         "expected a numeric array.")
    if np.iscomplexobj(array):
        raise ValueError(f"{what} {path!r} holds complex values ({array.dtype}); expected "
                         "real numbers (the imaginary part would be dropped silently).")
    return array


def to_learnit_convention(sinogram, angles=None, num_angles=None, convention="learnit",
                          name="sinogram", angles_name="angles"):
    """A user's sinogram and angles in this package's convention (see the module docstring).

    Args:
        sinogram: 2D array in `convention`'s layout.
        angles: the views' angles in `convention`'s unit (radians / degrees), or None.
        num_angles: instead of `angles`: V evenly spaced views in `convention`'s sense.
        convention: "learnit" or "skimage".
        name: what to call the sinogram in errors (e.g. its file).
        angles_name: what to call the angles in errors (e.g. their file).

    Returns:
        (sinogram float32 (V, N) of ray means, angles float32 (V,) in radians).

    Example:

    >>> sino = np.zeros((16, 3))  # radon output: 16 bins, 3 views
    >>> s, a = to_learnit_convention(sino, num_angles=3, convention="skimage")
    >>> s.shape, np.round(np.degrees(a)).tolist()
    ((3, 16), [-0.0, -60.0, -120.0])
    """
    if convention not in CONVENTIONS:
        raise ValueError(f"convention must be one of {CONVENTIONS}, got {convention!r}.")
    if np.iscomplexobj(sinogram) or np.iscomplexobj(angles):
        what = name if np.iscomplexobj(sinogram) else angles_name
        raise ValueError(f"{what} holds complex values; expected real numbers (the "
                         "imaginary part would be dropped silently).")
    sinogram = np.asarray(sinogram, dtype=np.float64)
    if sinogram.ndim != 2:
        raise ValueError(f"{name} has shape {sinogram.shape}; expected a 2D sinogram ("
                         + ("(V, N): one row per view" if convention == "learnit" else
                            "(N, V): radon's one column per view") + ").")
    if not np.all(np.isfinite(sinogram)):
        raise ValueError(f"{name} contains NaN or infinite values.")
    if (angles is None) == (num_angles is None):
        raise ValueError("Give exactly one of angles and num_angles.")
    views_axis = 0 if convention == "learnit" else 1
    num_views, num_bins = sinogram.shape[views_axis], sinogram.shape[1 - views_axis]
    if num_views < 1 or num_bins < 2:
        raise ValueError(f"{name} has shape {sinogram.shape}: {num_views} views of {num_bins} "
                         f"detector bins in the {convention} layout; expected at least 1 view "
                         "of at least 2 bins.")
    if num_angles is not None and int(num_angles) != num_views:
        raise ValueError(f"{name} has shape {sinogram.shape}, i.e. {num_views} views in the "
                         f"{convention} layout, but num_angles={num_angles}.")
    if angles is not None:
        angles = np.asarray(angles, dtype=np.float64)
        if angles.ndim != 1:
            raise ValueError(f"{angles_name} has shape {angles.shape}; expected a 1D array of "
                             f"shape ({num_views},): one angle per view of {name}.")
        if not np.all(np.isfinite(angles)):
            raise ValueError(f"{angles_name} contains NaN or infinite values.")
        if angles.shape[0] != num_views:
            raise ValueError(f"{name} has {num_views} views ({convention} layout, shape "
                             f"{sinogram.shape}) but {angles.shape[0]} angles were given.")
    if convention == "learnit":
        if angles is None:
            angles = evenly_spaced_angles(num_views)
        return sinogram.astype(np.float32), np.asarray(angles, np.float32)
    # skimage: columns are views, sums along rays, degrees rotating the other way.
    if angles is None:
        angles = np.arange(num_views) * (180.0 / num_views)  # radon's linspace(0, 180, V)
    learnit_sinogram = sinogram.T / sinogram.shape[0]
    return learnit_sinogram.astype(np.float32), (-np.deg2rad(angles)).astype(np.float32)


def _ground_truth(path):
    if str(path).lower().endswith(".npy"):
        return load_npy(path, "Ground-truth image").astype(np.float32)
    return image_files.to_gray(image_files.read_image(path))


def fit_example(path, task, angles=None, num_angles=None, convention="learnit",
                ground_truth=None, interpolation=None):
    """`scripts/fit.py --input=SINOGRAM.npy` for a CT init: a `FitInput`.

    Args:
        path: `.npy` sinogram in `convention`'s layout.
        task: the init's `CtTask` (its interpolation is kept; the resolution becomes the
            sinogram's number of detector bins: coordinate networks are
            resolution-independent).
        angles: `.npy` file (or array) of the views' angles (radians for "learnit",
            degrees for "skimage"); or give `num_angles`.
        num_angles: V evenly spaced views (see the module docstring).
        convention: "learnit" or "skimage".
        ground_truth: optional (N, N) `.npy` or image file, for PSNR curves.
        interpolation: projector interpolation (default: the init's).
    """
    if not isinstance(task, CtTask):
        raise ValueError(f"sinogram inputs need a CtTask init, got {type(task).__name__}.")
    angles_name = "angles"
    if isinstance(angles, (str, os.PathLike)):
        angles_name = f"Angles file {os.fspath(angles)!r}"
        angles = load_npy(angles, "Angles file")
    sinogram, radians = to_learnit_convention(load_npy(path, "Sinogram"), angles, num_angles,
                                              convention, name=f"Sinogram {os.fspath(path)!r}",
                                              angles_name=angles_name)
    image = None if ground_truth is None else _ground_truth(ground_truth)
    try:
        example = sinogram_example(sinogram, radians, image)
    except ValueError as e:
        raise ValueError(f"Sinogram {os.fspath(path)!r} (convention {convention!r}): {e}") from e
    task = CtTask(sinogram.shape[1], num_angles=task.num_angles,
                  interpolation=interpolation or task.interpolation)
    observed = [("sinogram", np.clip(sinogram, 0.0, 1.0))]
    if image is not None:
        observed.append(("ground truth", example["image"]))
    return FitInput(task, example, observed,
                    render=lambda fmodel, weights: task.render(fmodel, weights).numpy(),
                    description=f"{sinogram.shape[0]} views of {sinogram.shape[1]} bins "
                                f"({convention} convention)")


def load_slice(path, value_range=None):
    """One CT slice file as float32 (H, W, 1) in [0, 1] (see the module docstring)."""
    path = os.fspath(path)
    if not path.lower().endswith(".npy"):
        return image_files.to_gray(image_files.read_image(path))
    array = load_npy(path, "CT slice").astype(np.float64)
    if array.ndim == 3 and array.shape[-1] == 1:
        array = array[..., 0]
    if array.ndim != 2:
        raise ValueError(f"CT slice {path!r} has shape {array.shape}; expected a 2D (H, W) "
                         "array.")
    if not np.all(np.isfinite(array)):
        raise ValueError(f"CT slice {path!r} contains NaN or infinite values.")
    if value_range is None:
        lo, hi = array.min(), array.max()
        if hi <= lo:
            raise ValueError(f"CT slice {path!r} is constant ({lo:g}); per-slice scaling to "
                             "[0, 1] needs a range (or pass value_range=(lo, hi)).")
    else:
        lo, hi = (float(v) for v in value_range)
        if not hi > lo:
            raise ValueError(f"value_range must be (lo, hi) with lo < hi, got {value_range}.")
    return np.clip((array - lo) / (hi - lo), 0.0, 1.0).astype(np.float32)[..., None]


def list_slice_files(directory):
    """Sorted CT slice files (PNG/JPEG/TIFF/.npy) directly inside `directory`."""
    return image_files.list_image_files(directory, SLICE_EXTENSIONS, "CT slice files")


def ct_folder_examples(directory, split="train", resolution=64, test_fraction=0.1,
                       value_range=None):
    """Unbatched phantom-like examples {"image": float32 (R, R, 1)} from a folder of CT slices.

    Args:
        directory: folder of PNG/JPEG/TIFF/.npy slices, or with `train/` and `test/` (and
            optionally `validation/`) subfolders of them.
        split: "train", "validation" or "test".
        resolution: R, after a centre crop (match `CtTask.resolution`).
        test_fraction: share of files in the test split (folders without subfolders).
        value_range: (lo, hi) mapped to [0, 1] for every `.npy` slice (default: each
            slice's own min and max).

    Raises:
        ValueError naming the folder or file: missing/empty folder or split, unreadable
        or constant slices, wrong rank, NaN, slices smaller than `resolution`.
    """
    files = image_files.split_entries(directory, split, list_slice_files, test_fraction,
                                      "CT slice files")
    images = np.stack([image_files.crop_and_resize(load_slice(f, value_range), int(resolution),
                                                   f) for f in files])
    return tf.data.Dataset.from_tensor_slices({"image": images})
