"""The paper's natural-image classes from the TFDS catalog: CelebA and Imagenette.

PAPER.md, "2D image regression": CelebA with a 178×178 centre crop, Imagenette at
178×178. TFDS downloads the data on the user's machine on first use (CelebA needs
~1.4 GB and sometimes a manual download, see the TFDS catalog page); tests use
`tfds.testing.mock_data`.

- `celeb_a_examples`: CelebA's aligned images are 218×178 (height × width); the
  paper's crop is the centred 178×178 square (rows 20…197), optionally resized.
- `imagenette_examples`: the centred square of side min(height, width), resized to
  `resolution` (area-style antialiased bilinear).

Both yield unbatched ``{"image": float32 (R, R, 3) in [0, 1]}`` with static shapes, in
a fixed order. Images smaller than the crop fail with an error naming the dataset, the
image size and the crop.

Example:

>>> ds = celeb_a_examples("test[:4]", resolution=64)  # doctest: +SKIP
>>> next(iter(ds))["image"].shape  # doctest: +SKIP
TensorShape([64, 64, 3])
"""

import tensorflow as tf
import tensorflow_datasets as tfds

#: Side of the paper's CelebA centre crop (the width of CelebA's aligned images).
CELEBA_CROP = 178
#: Default Imagenette variant: shorter side 320 ≥ 178, so nothing is upsampled.
IMAGENETTE_CONFIG = "320px-v2"


def _check_size(image, min_height, min_width, what):
    """Returns `image` after asserting (statically if possible) it is at least the crop."""
    static = image.shape
    if static.rank is not None and static.rank != 3:
        raise ValueError(f"{what}: expected an image of rank 3 (H, W, C), got shape {static}.")
    h, w = static[0], static[1]
    if (h is not None and h < min_height) or (w is not None and w < min_width):
        raise ValueError(f"{what}: images of shape {tuple(static)} are smaller than the "
                         f"{min_height}x{min_width} crop.")
    if h is not None and w is not None:
        return image
    shape = tf.shape(image)
    check = tf.debugging.assert_greater_equal(
        shape[:2], tf.constant([min_height, min_width]),
        message=(f"{what}: an image is smaller than the {min_height}x{min_width} crop "
                 "(its height, width are x)"))
    with tf.control_dependencies([check]):
        return tf.identity(image)


def _to_unit_float(image):
    return tf.cast(image, tf.float32) / 255.0


def _resize(image, resolution):
    # Antialiased bilinear (a triangle filter) never overshoots, so the output stays in
    # [0, 1]; the clip only guards float round-off.
    image = tf.image.resize(image, (resolution, resolution), method="bilinear",
                            antialias=True)
    return tf.clip_by_value(image, 0.0, 1.0)


def center_crop(image, height, width, what="image"):
    """The centred (height, width) window of an (H, W, C) image; error if it is smaller."""
    image = _check_size(image, height, width, what)
    shape = tf.shape(image)
    top = (shape[0] - height) // 2
    left = (shape[1] - width) // 2
    out = image[top:top + height, left:left + width]
    return tf.ensure_shape(out, (height, width, image.shape[-1]))


def celeba_image(image, resolution=CELEBA_CROP):
    """The paper's CelebA preprocessing of one uint8 (218, 178, 3) image → float32 (R, R, 3)."""
    out = _to_unit_float(center_crop(image, CELEBA_CROP, CELEBA_CROP, "celeb_a"))
    if resolution != CELEBA_CROP:
        out = _resize(out, resolution)
    return tf.ensure_shape(out, (resolution, resolution, 3))


def square_image(image, resolution, min_side=None, what="image"):
    """Centre square of side min(H, W), resized to `resolution` → float32 (R, R, 3).

    Args:
        image: uint8 (H, W, 3).
        resolution: output side.
        min_side: smallest accepted min(H, W) (default `resolution`: never upsample).
        what: name used in error messages.
    """
    min_side = resolution if min_side is None else int(min_side)
    image = _check_size(image, min_side, min_side, what)
    shape = tf.shape(image)
    side = tf.minimum(shape[0], shape[1])
    top = (shape[0] - side) // 2
    left = (shape[1] - side) // 2
    crop = image[top:top + side, left:left + side]
    out = _resize(_to_unit_float(crop), resolution)
    return tf.ensure_shape(out, (resolution, resolution, 3))


def _validate_resolution(resolution, name):
    if not isinstance(resolution, int) or resolution < 1:
        raise ValueError(f"{name}: resolution must be a positive int, got {resolution!r}.")


def celeb_a_examples(split, resolution=CELEBA_CROP, data_dir=None, download=True):
    """CelebA with the paper's 178×178 centre crop: {"image": float32 (R, R, 3) in [0, 1]}.

    Args:
        split: TFDS split of `celeb_a` ("train", "validation", "test", "test[:100]", ...).
        resolution: output side; 178 keeps the crop as is, other values resize it.
        data_dir: TFDS data directory.
        download: let TFDS download and prepare the data if missing.

    Returns:
        An unbatched `tf.data.Dataset` in a fixed order.
    """
    _validate_resolution(resolution, "celeb_a_examples")
    ds = tfds.load("celeb_a", split=split, data_dir=data_dir, download=download,
                   shuffle_files=False, decoders=tfds.decode.PartialDecoding({"image": True}))
    return ds.map(lambda ex: {"image": celeba_image(ex["image"], resolution)},
                  num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)


def imagenette_examples(split, resolution=CELEBA_CROP, data_dir=None,
                        config=IMAGENETTE_CONFIG, min_side=None, download=True):
    """Imagenette centre-cropped to a square and resized: {"image": float32 (R, R, 3)}.

    Args:
        split: "train" or "validation" (Imagenette has no test split), or a slice.
        resolution: output side (paper: 178).
        data_dir: TFDS data directory.
        config: TFDS `imagenette` config ("320px-v2", "full-size-v2", "160px-v2", ...).
        min_side: smallest accepted shorter image side (default `resolution`, so no image
            is upsampled; "160px" variants therefore need `min_side <= 160`).
        download: let TFDS download and prepare the data if missing.

    Returns:
        An unbatched `tf.data.Dataset` in a fixed order.
    """
    _validate_resolution(resolution, "imagenette_examples")
    name = f"imagenette/{config}" if config else "imagenette"
    ds = tfds.load(name, split=split, data_dir=data_dir, download=download,
                   shuffle_files=False, decoders=tfds.decode.PartialDecoding({"image": True}))
    return ds.map(lambda ex: {"image": square_image(ex["image"], resolution, min_side,
                                                    what=name)},
                  num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
