"""`emoji_images`: a real image class, the emoji artwork of the Debian package libjs-emojify.

The package (version 1.1.0+dfsg-2, licence Expat, i.e. MIT; upstream emojify.js by
Hassan Khan, 2014) ships 881 emoji PNGs in `EMOJI_SOURCE_DIR`: 804 RGBA, 59
grayscale + alpha (LA) and 16 palette images with a transparent index, all 64×64
except two 75×75 RGBA ones. Install it with ``apt-get install libjs-emojify``;
generation then works offline. Another folder of PNGs can stand in (`source_dir`,
e.g. a tiny fake one in tests).

**Decoding** (`learnit_tf.data.files.load_image`): every mode becomes RGB in [0, 1];
palette images through their palette (transparent index included), grayscale
repeated into three channels, and alpha composited onto a WHITE background
(``rgb · a + 1 · (1 - a)``, so a fully transparent pixel is exactly (1, 1, 1), as
the paper does for its transparent images). Images of another size are centre-cropped
to a square and resized after compositing with Pillow's bicubic filter in float32
(whose support widens with the downscale factor, so it antialiases; clipped to
[0, 1]); for `cpu64` that is the one distinct 75×75 image (``shipit.png``;
``squirrel.png`` is a copy of it), for `small` every image (64 → 32).
Stored as uint8 PNG (``round(255 · rgb)``; white stays exactly 1).

**Duplicates.** 20 files are byte-identical aliases of others (``+1``/``plus1``/
``thumbsup``, ``shipit``/``squirrel``, ...): 861 distinct images. Each distinct image
appears once, under the alphabetically first of its names (the others are recorded
in the dataset's metadata), so no image is in two splits.

**Split** (deterministic, by file name): an image goes to ``test`` if the first 4
bytes of sha256(its file name) / 2³² < 0.1, to ``validation`` if < 0.2, else
``train`` (the hash of `learnit_tf.data.files.hash_split`; adding files never moves
others). The package gives 682 / 98 / 81 images.

Configs: ``cpu64`` (64×64, every image) and ``small`` (32×32, the first 64 distinct
images by name: 51 / 6 / 7, for tests). The dataset's metadata records the package,
version, licence, source folder and a sha256 fingerprint of the files, which also
guards the cache: a data_dir generated from other files is refused, not reused.

Example (needs the package):

>>> ds = emoji_images_examples("test", config="cpu64")  # doctest: +SKIP
Generating emoji_images/cpu64 offline into .../emoji_images/cpu64/1.0.0 (first use only).
>>> next(iter(ds))["image"].shape  # doctest: +SKIP
TensorShape([64, 64, 3])
"""

import dataclasses
import hashlib
import os
import shutil
import subprocess
from typing import Optional, Tuple

import numpy as np
import tensorflow_datasets as tfds
from PIL import Image

from learnit_tf.data.files import list_image_files, load_image
from learnit_tf.data.procedural_builders import (SPLIT_NAMES, ProceduralBuilder,
                                                 prepare_procedural_builder)
from learnit_tf.kinds.image.resolution import config_at_resolution
from learnit_tf.kinds.image.text_images import image_examples_from_builder

EMOJI_PACKAGE = "libjs-emojify"
EMOJI_PACKAGE_VERSION = "1.1.0+dfsg-2"
EMOJI_LICENSE = "Expat (MIT)"
EMOJI_UPSTREAM = "emojify.js 1.1.0, (c) 2014 Hassan Khan"
EMOJI_HOMEPAGE = "https://github.com/emojione/emojify.js"
EMOJI_SOURCE_DIR = "/usr/share/javascript/emojify.js/images/emoji"
#: `EmojiSource.fingerprint` of EMOJI_SOURCE_DIR as installed by libjs-emojify 1.1.0+dfsg-2.
EMOJI_FINGERPRINT = "4e58526a7ddcb4a640bed30d2b244d9263c3f81c1de63768625ec50422b9c435"
#: File counts of that release: every PNG, and distinct images (aliases removed).
EMOJI_NUM_FILES = 881
EMOJI_NUM_IMAGES = 861
#: Share of images (by file-name hash) in the test and validation splits.
TEST_FRACTION = 0.1
VALIDATION_FRACTION = 0.1
EMOJI_CITATION = (f"{EMOJI_UPSTREAM}, {EMOJI_HOMEPAGE}; Debian package {EMOJI_PACKAGE} "
                  f"{EMOJI_PACKAGE_VERSION}, licence {EMOJI_LICENSE}.")


@dataclasses.dataclass(frozen=True)
class EmojiSource:
    """The PNG files of a source folder, with byte-identical aliases grouped.

    Attributes:
        directory: the folder.
        files: every PNG base name, sorted.
        images: {name: path} of the distinct images, each under the sorted-first of
            its names (sorted by name).
        aliases: {name: other names of the same bytes}, for images that have them.
        fingerprint: sha256 over each file's name and the sha256 of its bytes.
    """

    directory: str
    files: tuple
    images: dict
    aliases: dict
    fingerprint: str


def scan_emoji_source(source_dir=None):
    """Lists and fingerprints the PNGs of `source_dir` (default: the installed package's).

    Raises:
        FileNotFoundError naming the folder (and how to install the package) if it
            does not exist; ValueError naming it if it holds no PNG files.
    """
    directory = os.fspath(source_dir) if source_dir is not None else EMOJI_SOURCE_DIR
    if not os.path.isdir(directory):
        if source_dir is None or _same_folder(directory, EMOJI_SOURCE_DIR):
            how = (f"install the Debian package {EMOJI_PACKAGE} (`apt-get install "
                   f"{EMOJI_PACKAGE}`), or pass source_dir=... a folder of PNG files")
        else:
            how = "expected source_dir to be a folder of PNG files"
        raise FileNotFoundError(f"emoji_images: source folder {directory!r} does not exist; "
                                f"{how}.")
    paths = list_image_files(directory, (".png",), "PNG files")
    by_content, lines = {}, []
    for path in paths:
        with open(path, "rb") as f:
            digest = hashlib.sha256(f.read()).hexdigest()
        name = os.path.basename(path)
        by_content.setdefault(digest, []).append(name)  # Sorted: paths are.
        lines.append(f"{name}\t{digest}\n")
    images = {names[0]: os.path.join(directory, names[0]) for names in by_content.values()}
    aliases = {names[0]: names[1:] for names in by_content.values() if len(names) > 1}
    return EmojiSource(directory, tuple(os.path.basename(p) for p in paths),
                       dict(sorted(images.items())), dict(sorted(aliases.items())),
                       hashlib.sha256("".join(lines).encode()).hexdigest())


def split_of(name):
    """"train", "validation" or "test" for an image file name (see the module docstring)."""
    fraction = int.from_bytes(hashlib.sha256(name.encode()).digest()[:4], "big") / 2**32
    if fraction < TEST_FRACTION:
        return "test"
    return "validation" if fraction < TEST_FRACTION + VALIDATION_FRACTION else "train"


def source_metadata(source=None):
    """JSON-able record of where the images come from (e.g. for an init's metadata).

    Args:
        source: an `EmojiSource` (default: `scan_emoji_source()`, the package's folder).

    The package fields (name, version, licence, upstream) are None for another folder
    whose files are not the release's: they would not describe its images.
    """
    source = scan_emoji_source() if source is None else source
    release = source.fingerprint == EMOJI_FINGERPRINT
    package = release or _same_folder(source.directory, EMOJI_SOURCE_DIR)
    if release:  # Known exactly: the files are that release's.
        version = EMOJI_PACKAGE_VERSION
    else:  # The package's folder with other files (another release): ask dpkg.
        version = installed_package_version() if package else None
    return {
        "package": EMOJI_PACKAGE if package else None,
        "package_version": version,
        "files_match_release": release,
        "license": EMOJI_LICENSE if package else None,
        "upstream": EMOJI_UPSTREAM if package else None,
        "homepage": EMOJI_HOMEPAGE if package else None,
        "source_dir": source.directory,
        "num_files": len(source.files),
        "num_images": len(source.images),
        "fingerprint": source.fingerprint,
        "aliases": source.aliases,
        "split_rule": (f"sha256(file name)[:4] / 2**32: < {TEST_FRACTION} test, "
                       f"< {TEST_FRACTION + VALIDATION_FRACTION} validation, else train"),
    }


def installed_package_version():
    """dpkg's version of the installed libjs-emojify, or None (no dpkg, not installed)."""
    if shutil.which("dpkg-query") is None:
        return None
    try:
        result = subprocess.run(["dpkg-query", "-W", "-f=${Version}", EMOJI_PACKAGE],
                                capture_output=True, text=True, timeout=30, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    version = result.stdout.strip() if result.returncode == 0 else ""
    return version or None


@dataclasses.dataclass
class EmojiImagesConfig(tfds.core.BuilderConfig):
    """Resolution, image count and source folder of an `emoji_images` config."""

    resolution: int = 64
    max_images: Optional[int] = None  # The first N distinct images by name (None: all).
    source_dir: Optional[str] = None  # None: EMOJI_SOURCE_DIR.
    splits: Optional[Tuple[str, ...]] = None  # Generate only these (None: all).


class EmojiImages(ProceduralBuilder):
    """The emoji PNGs of libjs-emojify, alpha composited on white (see the module docstring)."""

    HOMEPAGE = EMOJI_HOMEPAGE
    CITATION = EMOJI_CITATION
    BUILDER_CONFIGS = [
        EmojiImagesConfig(name="cpu64", description="64×64, all 861 distinct images.",
                          resolution=64),
        EmojiImagesConfig(name="small", description="32×32, the first 64 images by name, "
                          "for tests.", resolution=32, max_images=64),
    ]
    DEFAULT_CONFIG_NAME = "cpu64"

    def _description(self):
        cfg = self.builder_config
        r = cfg.resolution
        return (f"{_provenance(cfg.source_dir)}; {r}×{r} RGB, alpha composited on white, "
                "aliases dropped, split by file-name hash 80/10/10.")

    def _features(self):
        r = self.builder_config.resolution
        return {"image": tfds.features.Image(shape=(r, r, 3)),
                "name": tfds.features.Text()}  # The source file's base name.

    def _metadata(self):
        # Filled while generating (source_metadata); read back with the dataset.
        return tfds.core.MetadataDict()

    def _split_generators(self, dl_manager):
        del dl_manager  # Nothing to download: the files are on this machine.
        cfg = self.builder_config
        source = scan_emoji_source(cfg.source_dir)
        self.info.metadata.update(source_metadata(source))
        names = list(source.images)[:cfg.max_images]
        generated = cfg.splits or SPLIT_NAMES
        splits = {s: [n for n in names if split_of(n) == s] for s in generated}
        empty = [s for s in generated if not splits[s]]
        if empty:
            raise ValueError(f"emoji_images/{cfg.name}: the {len(names)} images of "
                             f"{source.directory!r} leave the split(s) {empty} empty (split "
                             "by file-name hash); expected more images.")
        return {s: self._generate_examples([(n, source.images[n]) for n in splits[s]])
                for s in generated}

    def _generate_examples(self, items):
        resolution = self.builder_config.resolution
        for name, path in items:
            rgb = load_image_upsampled(path, resolution)
            yield name, {"image": np.round(rgb * 255.0).astype(np.uint8), "name": name}


def load_image_upsampled(path, resolution):
    """`load_image(path, resolution)`, also for artwork smaller than `resolution`.

    The package's emoji are 64×64 (879 of its 881 PNGs): at 128 or 256 they are
    centre-cropped and upsampled (bicubic, per channel in float, as `load_image`
    downsamples), so larger sizes are smooth versions of the same artwork.
    """
    rgb = load_image(path)
    height, width = rgb.shape[:2]
    side = min(height, width)
    if side >= resolution:
        return load_image(path, resolution)
    top, left = (height - side) // 2, (width - side) // 2
    square = np.ascontiguousarray(rgb[top:top + side, left:left + side], np.float32)
    channels = [np.asarray(Image.fromarray(square[..., c], mode="F").resize(
        (resolution, resolution), Image.BICUBIC)) for c in range(square.shape[-1])]
    return np.clip(np.stack(channels, axis=-1), 0.0, 1.0).astype(np.float32)


def _provenance(source_dir):
    package = (f"the Debian package {EMOJI_PACKAGE} {EMOJI_PACKAGE_VERSION} (licence "
               f"{EMOJI_LICENSE}; upstream {EMOJI_UPSTREAM})")
    if source_dir is None:
        return f"Emoji artwork from {package}, read from {EMOJI_SOURCE_DIR}"
    return f"PNG images read from {source_dir} in place of {package}"


def _same_folder(a, b):
    return os.path.realpath(a) == os.path.realpath(b)


def _config_for(config, source, resolution=None, split=None):
    """The named config (at `resolution`, if given; then only the splits `split` reads),
    or for another source folder a copy named after its fingerprint (its own directory in
    data_dir, so it never mixes with the package's)."""
    names = [c.name for c in EmojiImages.BUILDER_CONFIGS]
    if config not in names:
        raise ValueError(f"Unknown emoji_images config {config!r}; expected one of {names}.")
    config = config_at_resolution(EmojiImages, config, resolution, split)
    base = (config if not isinstance(config, str)
            else next(c for c in EmojiImages.BUILDER_CONFIGS if c.name == config))
    if _same_folder(source.directory, EMOJI_SOURCE_DIR):
        return config
    return dataclasses.replace(
        base, name=f"{base.name}_{source.fingerprint[:12]}", source_dir=source.directory,
        description=f"{base.description} From {source.directory}.")


def emoji_images_builder(config="cpu64", data_dir=None, source_dir=None, resolution=None,
                         split=None):
    """The prepared `EmojiImages` builder (generated on first use) for `source_dir`'s files.

    At another `resolution`, `split` (the TFDS split string to be read) limits generation
    to the splits it names (`resolution.config_at_resolution`).

    Its examples also carry each image's source file "name"; `info.metadata` holds
    `source_metadata` (package, version, licence, source folder, fingerprint, aliases).

    Raises:
        FileNotFoundError: the source folder is missing (says how to install the package).
        ValueError: unknown config; a data_dir generated from other files.
    """
    source = scan_emoji_source(source_dir)
    builder = prepare_procedural_builder(
        EmojiImages, _config_for(config, source, resolution, split), data_dir)
    stored = builder.info.metadata.get("fingerprint")
    if stored != source.fingerprint:
        raise ValueError(
            f"{builder.data_dir} holds emoji_images/{builder.builder_config.name} generated "
            f"from other files (fingerprint {stored}) than those now in {source.directory!r} "
            f"({source.fingerprint}); delete that directory to regenerate, or pass another "
            "data_dir.")
    return builder


def emoji_images_examples(split, config="cpu64", data_dir=None, source_dir=None,
                          resolution=None):
    """The `emoji_images` split as unbatched {"image": float32 (R, R, 3) in [0, 1]} examples.

    Generated on first use from the PNGs in `source_dir` (default `EMOJI_SOURCE_DIR`,
    the installed libjs-emojify package), offline.

    Args:
        split: "train", "validation" or "test".
        config: "cpu64" (64×64, all images) or "small" (32×32, first 64 images).
        data_dir: TFDS data directory (default: TFDS's).
        source_dir: folder of PNG files to read instead of the package's.
        resolution: resize the images to this many pixels per side instead (the
            package's artwork is 64×64: larger sizes are upsampled, not more detailed).

    Raises:
        FileNotFoundError: the source folder is missing (says how to install the package).
        ValueError: unknown config or split; a data_dir generated from other files.
    """
    return image_examples_from_builder(
        emoji_images_builder(config, data_dir, source_dir, resolution, split), split)


def _examples_source(source_dir=None, **unused_bindings):
    """What `meta_train` records as the init's data source (`source_metadata`)."""
    return source_metadata(None if source_dir is None else scan_emoji_source(source_dir))


emoji_images_examples.source_metadata = _examples_source  # Read by learnit_tf.train.
