"""`text_images`: the paper's Text image class, rendered procedurally (no download).

PAPER.md, "2D image regression": one of the four image classes is rendered random
text. Each image has a random background colour and a few lines of random strings
in random DejaVu fonts (shipped inside matplotlib, so generation is offline and
reproducible), random sizes and random colours. Example `i` of a split is drawn
from `numpy.random.RandomState((seed, split_index, i))`, so the dataset is
deterministic by seed and independent of generation order.
"""

import dataclasses
import os
import string

import matplotlib
import numpy as np
import tensorflow as tf
import tensorflow_datasets as tfds
from PIL import Image, ImageDraw, ImageFont

from learnit_tf.data.procedural_builders import (ProceduralBuilder, ProceduralConfig,
                                                 prepare_procedural_builder)
from learnit_tf.kinds.image.resolution import config_at_resolution

FONT_DIR = os.path.join(os.path.dirname(matplotlib.__file__), "mpl-data", "fonts", "ttf")
FONT_FILES = (
    "DejaVuSans.ttf", "DejaVuSans-Bold.ttf", "DejaVuSans-Oblique.ttf",
    "DejaVuSans-BoldOblique.ttf", "DejaVuSerif.ttf", "DejaVuSerif-Bold.ttf",
    "DejaVuSerif-Italic.ttf", "DejaVuSansMono.ttf", "DejaVuSansMono-Bold.ttf",
)
ALPHABET = string.ascii_letters + string.digits + "  .,!?"


def render_text_image(rng, resolution):
    """Renders one random text image as uint8 (resolution, resolution, 3).

    Args:
        rng: a `numpy.random.RandomState`.
        resolution: output height and width in pixels.
    """
    background = tuple(int(c) for c in rng.randint(0, 256, size=3))
    image = Image.new("RGB", (resolution, resolution), background)
    draw = ImageDraw.Draw(image)
    num_lines = rng.randint(2, 6)
    for _ in range(num_lines):
        font_path = os.path.join(FONT_DIR, FONT_FILES[rng.randint(len(FONT_FILES))])
        # Font size relative to the image so every resolution shows the same kind of text.
        size = max(6, int(resolution * rng.uniform(0.12, 0.35)))
        font = ImageFont.truetype(font_path, size)
        length = rng.randint(3, 12)
        text = "".join(ALPHABET[j] for j in rng.randint(len(ALPHABET), size=length))
        # Text colour far enough from the background to be legible.
        while True:
            colour = rng.randint(0, 256, size=3)
            if np.abs(colour - np.array(background)).sum() > 150:
                break
        x = int(rng.uniform(-0.2, 0.5) * resolution)
        y = int(rng.uniform(-0.05, 0.85) * resolution)
        draw.text((x, y), text, fill=tuple(int(c) for c in colour), font=font)
    return np.asarray(image, dtype=np.uint8)


@dataclasses.dataclass
class TextImagesConfig(ProceduralConfig):
    """Resolution of a `text_images` config (and its split sizes)."""

    resolution: int = 178


class TextImages(ProceduralBuilder):
    """Procedurally rendered random text images (the paper's Text class)."""

    BUILDER_CONFIGS = [
        TextImagesConfig(name="paper", description="178×178 as in the paper, 10,000 images.",
                         resolution=178, num_train=9000, num_validation=500, num_test=500),
        TextImagesConfig(name="cpu64", description="64×64 for CPU meta-training.",
                         resolution=64, num_train=2000, num_validation=100, num_test=100),
        TextImagesConfig(name="small", description="32×32, a few images, for tests.",
                         resolution=32, num_train=64, num_validation=16, num_test=16),
    ]
    DEFAULT_CONFIG_NAME = "cpu64"

    def _features(self):
        r = self.builder_config.resolution
        return {"image": tfds.features.Image(shape=(r, r, 3))}

    def _example(self, split, index):
        rng = np.random.RandomState(list(self.example_seed(split, index)))
        return {"image": render_text_image(rng, self.builder_config.resolution)}


def image_examples_from_builder(builder, split):
    """Unbatched examples {"image": float32 (H, W, 3) in [0, 1]} of a split."""
    if split not in builder.info.splits:
        raise ValueError(f"Unknown split {split!r} for dataset {builder.name!r}; "
                         f"expected one of {sorted(builder.info.splits)}.")
    ds = builder.as_dataset(split=split, shuffle_files=False)
    return ds.map(lambda ex: {"image": tf.cast(ex["image"], tf.float32) / 255.0},
                  num_parallel_calls=tf.data.AUTOTUNE)


def text_images_examples(split, config="cpu64", data_dir=None, resolution=None):
    """The `text_images` split as unbatched image examples, generated on first use.

    `resolution=R` renders the config's images (same seeds: the same texts) at R×R
    (`learnit_tf.kinds.image.resolution.config_at_resolution`).

    Example:

    >>> ds = text_images_examples("test", config="small", data_dir="tfds")  # doctest: +ELLIPSIS
    Generating text_images/small_test offline into tfds/... (first use only).
    >>> next(iter(ds))["image"].shape
    TensorShape([32, 32, 3])
    """
    return image_examples_from_builder(
        prepare_procedural_builder(
            TextImages, config_at_resolution(TextImages, config, resolution, split), data_dir,
            split=split),
        split)
