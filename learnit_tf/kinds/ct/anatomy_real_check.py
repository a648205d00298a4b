"""The real-CT check of the anatomy CT init: three real CT slices that pydicom ships.

pydicom 3.0.2 (PyPI, MIT licence) ships three real CT slices as test files, from three
different patients (PatientID 1CT1, JXD191021006, CQ500-CT-310). They are kept out of
meta-training and of every choice made on validation data (the class `ct_anatomy` is
procedural, `learnit_tf.kinds.ct.anatomy`): they are the check that a CT init holds on
real scans (issue 24).

Preprocessing (as for `shepp_logan_ct@2`'s `out_of_class_evaluation`): HU = pixel ·
RescaleSlope + RescaleIntercept, clipped to [-1000, 1000], scaled to [0, 1], then
area-resized (the mean of each block; the slices are 128² and 512², so the factors
are whole) to `resolution`².
"""

import os

import numpy as np

from learnit_tf.core.atomic import save_npy

#: The three real CT slices in pydicom's test data, in the order the check uses.
REAL_CT_FILES = ("CT_small.dcm", "J2K_pixelrep_mismatch.dcm", "693_J2KI.dcm")
HU_WINDOW = (-1000.0, 1000.0)
INSTALL_HINT = ("pip install 'pydicom==3.0.2' (its test files hold the real CT slices; the "
                "JPEG 2000 ones decode through Pillow)")


def window_hu(hu, window=HU_WINDOW):
    """HU clipped to `window` and scaled to [0, 1], float32.

    Example:

    >>> window_hu(np.array([-2000., -1000., 0., 1000., 3000.]))
    array([0. , 0. , 0.5, 1. , 1. ], dtype=float32)
    """
    low, high = window
    return ((np.clip(np.asarray(hu, np.float64), low, high) - low) / (high - low)).astype(
        np.float32)


def area_resize(image, resolution):
    """The mean of each (k × k) block of a square image whose side is k · `resolution`.

    Example:

    >>> area_resize(np.arange(16.).reshape(4, 4), 2)
    array([[ 2.5,  4.5],
           [10.5, 12.5]], dtype=float32)
    """
    image = np.asarray(image, np.float64)
    n = image.shape[0]
    if image.ndim != 2 or image.shape[1] != n or n % int(resolution):
        raise ValueError(f"area_resize needs a square image whose side is a multiple of "
                         f"resolution={resolution}, got shape {image.shape}.")
    k = n // int(resolution)
    return image.reshape(resolution, k, resolution, k).mean(axis=(1, 3)).astype(np.float32)


def real_ct_slices(resolution=64):
    """The three real CT slices, windowed and area-resized: list of float32 (R, R).

    Raises:
        FileNotFoundError: pydicom (or one of its test files) is missing; names the
            install command.
    """
    try:
        import pydicom  # pylint: disable=import-outside-toplevel
        from pydicom.data import get_testdata_file  # pylint: disable=import-outside-toplevel
    except ImportError as e:
        raise FileNotFoundError(f"The real-CT check needs pydicom: {INSTALL_HINT}.") from e
    slices = []
    for name in REAL_CT_FILES:
        path = get_testdata_file(name)
        if path is None:
            raise FileNotFoundError(f"pydicom {pydicom.__version__} does not ship {name}: "
                                    f"{INSTALL_HINT}.")
        data = pydicom.dcmread(path)
        hu = (data.pixel_array.astype(np.float64) * float(data.RescaleSlope)
              + float(data.RescaleIntercept))
        slices.append(area_resize(window_hu(hu), resolution))
    return slices


def write_real_ct_folder(directory, resolution=64):
    """Writes the slices as `directory/test/<file stem>.npy`, and an empty `train/`, the
    layout `evaluate.py --directory=DIRECTORY --split=test` reads (it lists the slices by
    file name and rescales each `.npy` slice by its own minimum and maximum,
    `learnit_tf.kinds.ct.files`). Nothing is trained on it: `train/` stays empty.
    Never overwrites a different existing file.

    Returns:
        The written (or already identical) paths.
    """
    folder = os.path.join(directory, "test")
    os.makedirs(folder, exist_ok=True)
    os.makedirs(os.path.join(directory, "train"), exist_ok=True)
    paths = []
    for name, image in zip(REAL_CT_FILES, real_ct_slices(resolution)):
        path = os.path.join(folder, os.path.splitext(name)[0] + ".npy")
        if os.path.exists(path):
            if not np.array_equal(np.load(path), image):
                raise FileExistsError(f"{path} exists and differs from the real-CT slice "
                                      f"{name}; remove it or choose another directory.")
        else:
            save_npy(path, image)
        paths.append(path)
    return paths
