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

from learnit_tf.data.procedural_builders import (PAPER_CITATION, PAPER_HOMEPAGE,
                                                 prepare_procedural_builder)
from learnit_tf.kinds.image.resolution import config_at_resolution

FONT_DIR = os.path.join(os.path.dirname(matplotlib.__file__), "mpl-data", "fonts", "ttf")
FONT_FILES = (
    "DejaVuSans.ttf", "DejaVuSans-Bold.ttf", "DejaVuSans-Oblique.ttf",
    "DejaVuSans-BoldOblique.ttf", "DejaVuSerif.ttf", "DejaVuSerif-Bold.ttf",
    "DejaVuSerif-Italic.ttf", "DejaVuSansMono.ttf", "DejaVuSansMono-Bold.ttf",
)
ALPHABET = string.ascii_letters + string.digits + "  .,!?"
SPLIT_NAMES = ("train", "validation", "test")


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
class TextImagesConfig(tfds.core.BuilderConfig):
    """Resolution and split sizes of a `text_images` config."""

    resolution: int = 178
    num_train: int = 9000
    num_validation: int = 500
    num_test: int = 500
    seed: int = 0


class TextImages(tfds.core.GeneratorBasedBuilder):
    """Procedurally rendered random text images (the paper's Text class)."""

    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {"1.0.0": "Initial release."}
    BUILDER_CONFIGS = [
        TextImagesConfig(name="paper", description="178×178 as in the paper, 10,000 images.",
                         resolution=178, num_train=9000, num_validation=500, num_test=500),
        TextImagesConfig(name="cpu64", description="64×64 for CPU meta-training.",
                         resolution=64, num_train=2000, num_validation=100, num_test=100),
        TextImagesConfig(name="small", description="32×32, a few images, for tests.",
                         resolution=32, num_train=64, num_validation=16, num_test=16),
    ]
    DEFAULT_CONFIG_NAME = "cpu64"

    def _info(self):
        r = self.builder_config.resolution
        return self.dataset_info_from_configs(
            description=__doc__,
            features=tfds.features.FeaturesDict({
                "image": tfds.features.Image(shape=(r, r, 3)),
            }),
            supervised_keys=None,
            homepage=PAPER_HOMEPAGE,
            citation=PAPER_CITATION,
        )

    def _split_generators(self, dl_manager):
        del dl_manager  # Nothing to download: the class is procedural.
        cfg = self.builder_config
        sizes = {"train": cfg.num_train, "validation": cfg.num_validation, "test": cfg.num_test}
        return {name: self._generate_examples(SPLIT_NAMES.index(name), sizes[name])
                for name in SPLIT_NAMES}

    def _generate_examples(self, split_index, num_examples):
        cfg = self.builder_config
        for i in range(num_examples):
            rng = np.random.RandomState([cfg.seed, split_index, i])
            yield i, {"image": render_text_image(rng, cfg.resolution)}


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
    Generating text_images/small offline into tfds/... (first use only).
    >>> next(iter(ds))["image"].shape
    TensorShape([32, 32, 3])
    """
    return image_examples_from_builder(
        prepare_procedural_builder(
            TextImages, config_at_resolution(TextImages, config, resolution), data_dir), split)
