"""The one image decoder: every PNG/JPEG/TIFF mode and bit depth, exactly, upright.

`read_image` is the only place in `learnit_tf` that decodes image files (image and CT
folders, `learnit-fit` inputs, posed NeRF views, Phototourism photos go through it).

Values (float32 in [0, 1], channels last, C = 1 gray, 2 gray+alpha, 3 RGB, 4 RGBA):

- Unsigned integer samples are divided by their type's maximum: 8-bit by 255, 16-bit
  by 65535, 32-bit by 2**32 - 1 (float32 keeps 24 bits of that), whatever the values
  the file happens to hold. 1/2/4-bit PNGs are scaled to 255 by their decoder first.
- Floating-point samples (TIFF) are taken as they are and must be finite and within
  [0, 1]; anything else is refused (there is no full scale to divide by).
- Signed integer samples (TIFF) are refused: they have no defined full scale.
- Palette images become RGB (RGBA if they have transparency); CMYK becomes RGB by
  Pillow's conversion R = (1 - C)(1 - K); TIFF "min-is-white" is inverted; TIFF
  premultiplied alpha is divided out.
- EXIF orientation (JPEG, PNG eXIf, TIFF Orientation tag) is applied, so a portrait
  photo comes back portrait (`orient=False` keeps the stored pixel grid, which is what
  camera poses computed by COLMAP refer to).

16-bit PNGs are decoded by TensorFlow's PNG decoder (Pillow reads 16-bit RGB/RGBA PNGs
as 8 bits); TIFFs whose samples are not all 8-bit by tifffile (Pillow wraps 32-bit
unsigned TIFFs to negative numbers and cuts 16-bit RGB TIFFs to 8 bits); the rest by
Pillow. Images over `max_pixels` are refused from their header, before decoding.
"""

import os
import struct
import warnings

import numpy as np
from PIL import Image, UnidentifiedImageError

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".tif", ".tiff")
#: Largest image decoded (pixels): 8192×8192. A float32 RGB copy of it is 0.8 GB.
MAX_PIXELS = 8192 * 8192
EXIF_ORIENTATION = 0x0112

_EIGHT_BIT_MODES = {"1": "L", "L": "L", "LA": "LA", "RGB": "RGB", "RGBA": "RGBA",
                    "RGBX": "RGB", "RGBa": "RGBA", "La": "LA", "PA": "RGBA", "CMYK": "RGB",
                    "YCbCr": "RGB"}
_SIXTEEN_BIT_MODES = ("I;16", "I;16B", "I;16L", "I;16N")
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_SUPPORTED = ("grayscale, gray+alpha, RGB, RGBA (8, 16 or 32-bit unsigned, or float in "
              "[0, 1] for TIFF), palette or CMYK images")


class _TooLarge(Exception):
    pass


def read_image(path, max_pixels=MAX_PIXELS, orient=True):
    """Decodes an image file as float32 (H, W, C) in [0, 1] at its full bit depth.

    Args:
        path: PNG, JPEG or TIFF file (other formats Pillow reads work as 8-bit images).
        max_pixels: refuse images with more pixels than this (checked from the header).
        orient: apply the file's EXIF orientation (see the module docstring).

    Returns:
        (H, W, C) float32 with C = 1 (grayscale), 2 (grayscale + alpha), 3 (RGB) or
        4 (RGBA); the scaling rules are in the module docstring.

    Raises:
        ValueError naming the file: unreadable or not an image, an unsupported mode or
        sample type (naming it), float samples outside [0, 1], or more than
        `max_pixels` pixels.
    """
    path = os.fspath(path)
    try:
        with warnings.catch_warnings():
            # Our own limit (below Pillow's warning threshold) gives the clear error.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            tiff = _tiff_header(path)
            if tiff is not None and not tiff["pillow_exact"]:
                _check_size(tiff["size"], max_pixels)
                pixels = _tiff_pixels(path)
                orientation = tiff["orientation"] if orient else 1
            else:
                with Image.open(path) as img:
                    _check_size(img.size, max_pixels)
                    orientation = _orientation(img) if orient else 1
                    if img.format == "PNG" and _png_bit_depth(path) == 16:
                        pixels = _sixteen_bit_png_pixels(path)
                    else:
                        img.load()
                        pixels = _pillow_pixels(img, path)
    except (_TooLarge, Image.DecompressionBombError) as e:
        side = int(max_pixels ** 0.5)
        raise ValueError(f"Image {path!r} is too large to load ({e}); expected at most "
                         f"{max_pixels} pixels (e.g. {side}×{side}). Downscale it first."
                         ) from None
    except (UnidentifiedImageError, OSError, SyntaxError, struct.error) as e:
        raise ValueError(f"Cannot read {path!r} as an image (expected PNG, JPEG or TIFF): "
                         f"{e}") from e
    return np.ascontiguousarray(apply_orientation(pixels, orientation))


def _check_size(size, max_pixels):
    width, height = size
    if width * height > max_pixels:
        raise _TooLarge(f"{width}×{height}")


def apply_orientation(array, orientation):
    """(H, W, ...) stored pixels -> upright pixels for an EXIF orientation value 1-8.

    EXIF 2.3 section 4.6.4: the tag says where the stored 0th row and 0th column are
    in the upright image; e.g. 6 ("right, top") is displayed rotated 90° clockwise.
    """
    ops = {1: lambda a: a,
           2: lambda a: a[:, ::-1],                       # mirrored left-right
           3: lambda a: a[::-1, ::-1],                    # rotated 180°
           4: lambda a: a[::-1],                          # mirrored top-bottom
           5: lambda a: np.swapaxes(a, 0, 1),             # transposed
           6: lambda a: np.swapaxes(a, 0, 1)[:, ::-1],    # rotate 90° clockwise
           7: lambda a: np.swapaxes(a, 0, 1)[::-1, ::-1],  # transverse
           8: lambda a: np.swapaxes(a, 0, 1)[::-1]}       # rotate 90° counter-clockwise
    return ops.get(orientation, ops[1])(array)


def _orientation(img):
    try:
        value = img.getexif().get(EXIF_ORIENTATION, 1)
    except Exception:  # pylint: disable=broad-except
        return 1  # A corrupt EXIF block: the stored grid, as viewers do.
    return int(value) if isinstance(value, int) and 1 <= value <= 8 else 1


def _png_bit_depth(path):
    with open(path, "rb") as f:
        head = f.read(26)
    if len(head) < 26 or head[:8] != _PNG_SIGNATURE or head[12:16] != b"IHDR":
        return None
    return head[24]


def _sixteen_bit_png_pixels(path):
    import tensorflow as tf  # pylint: disable=import-outside-toplevel
    with open(path, "rb") as f:
        data = f.read()
    try:
        values = tf.io.decode_png(data, channels=0, dtype=tf.uint16).numpy()
    except (tf.errors.InvalidArgumentError, tf.errors.UnknownError) as e:
        raise OSError(e.message) from None
    return (values.astype(np.float64) / 65535.0).astype(np.float32)


def _tiff_header(path):
    """None if `path` is not a TIFF, else its first page's size, orientation and whether
    Pillow decodes it exactly (all samples unsigned 1 or 8 bits)."""
    with open(path, "rb") as f:
        magic = f.read(4)
    if magic not in (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+"):
        return None
    import tifffile  # pylint: disable=import-outside-toplevel
    try:
        with tifffile.TiffFile(path) as tif:
            page = tif.pages[0]
            orientation = page.tags.get("Orientation")
            bits = page.bitspersample
            return {"size": (int(page.imagewidth), int(page.imagelength)),
                    "orientation": int(orientation.value) if orientation is not None else 1,
                    "pillow_exact": (bits in (1, 8) and int(page.sampleformat) == 1)}
    except (tifffile.TiffFileError, ValueError, KeyError, IndexError) as e:
        raise OSError(f"tifffile: {e}") from None


def _tiff_pixels(path):
    import tifffile  # pylint: disable=import-outside-toplevel
    try:
        with tifffile.TiffFile(path) as tif:
            page = tif.pages[0]
            photometric = page.photometric.name
            extrasamples = tuple(int(e) for e in page.extrasamples)
            axes = page.axes
            values = page.asarray()
    except (tifffile.TiffFileError, ValueError, KeyError, IndexError) as e:
        raise OSError(f"tifffile: {e}") from None
    values = np.moveaxis(values, axes.index("S"), -1) if "S" in axes else values
    values = values[..., None] if values.ndim == 2 else values
    if values.ndim != 3:
        raise ValueError(f"Image {path!r} is a TIFF of shape {values.shape} (axes "
                         f"{axes!r}); expected one 2D image of {_SUPPORTED}.")
    mode = f"{photometric} with {values.shape[-1]} samples of {values.dtype}"
    pixels = _scaled(values, path, mode)
    if photometric == "MINISWHITE" and pixels.shape[-1] in (1, 2):
        pixels[..., 0] = 1.0 - pixels[..., 0]
    elif not ((photometric == "MINISBLACK" and pixels.shape[-1] in (1, 2))
              or (photometric == "RGB" and pixels.shape[-1] in (3, 4))):
        raise ValueError(f"Image {path!r} has TIFF mode {mode}; expected {_SUPPORTED}.")
    if pixels.shape[-1] in (2, 4) and extrasamples[:1] == (1,):
        # Associated (premultiplied) alpha: divide it out, as Pillow does for 8 bits.
        alpha = pixels[..., -1:]
        pixels[..., :-1] = np.where(alpha > 0, pixels[..., :-1] / np.maximum(alpha, 1e-12),
                                    0.0)
        pixels = np.clip(pixels, 0.0, 1.0)
    return pixels.astype(np.float32)


def _scaled(values, path, mode):
    """Integer samples / their type's maximum; float samples checked to lie in [0, 1]."""
    if np.issubdtype(values.dtype, np.unsignedinteger):
        return values.astype(np.float64) / float(np.iinfo(values.dtype).max)
    if np.issubdtype(values.dtype, np.floating):
        values = values.astype(np.float64)
        if not np.all(np.isfinite(values)):
            raise ValueError(f"Image {path!r} ({mode}) holds NaN or infinite values; float "
                             "images must be finite and within [0, 1].")
        if values.size and (values.min() < 0.0 or values.max() > 1.0):
            raise ValueError(f"Image {path!r} ({mode}) has values in [{values.min():g}, "
                             f"{values.max():g}]; float images must lie within [0, 1] (they "
                             "are used as they are; rescale them first).")
        return values
    raise ValueError(f"Image {path!r} has {mode} (signed integer or other samples): no "
                     f"defined full scale; expected {_SUPPORTED}.")


def _pillow_pixels(img, path):
    mode = img.mode
    if mode in _SIXTEEN_BIT_MODES:
        return _scaled(np.asarray(img).astype(np.uint16), path, f"mode {mode!r}")[..., None]
    if mode == "F":
        return _scaled(np.asarray(img), path, "mode 'F'")[..., None].astype(np.float32)
    if mode == "P":
        img = img.convert("RGBA" if "transparency" in img.info else "RGB")
    elif mode in _EIGHT_BIT_MODES:
        if img.mode != _EIGHT_BIT_MODES[mode]:
            img = img.convert(_EIGHT_BIT_MODES[mode])
    else:
        raise ValueError(f"Image {path!r} has mode {mode!r}; expected {_SUPPORTED}.")
    array = np.asarray(img, dtype=np.float32) / 255.0
    return array[..., None] if array.ndim == 2 else array
