"""The `emoji_images` builder (learnit_tf/kinds/image/emoji.py) on a tiny fake source folder
(RGBA, LA, palette, a 75×75 file and an alias), plus one test on the real Debian package
when it is installed; and the gin file that trains on it."""

import hashlib
import os
import pathlib
import re
import shutil
import threading

import gin
import numpy as np
import pytest
from PIL import Image

from data_dependencies import require_emoji_package

from learnit_tf.training import gin_config
from learnit_tf.kinds import dataset_function, kind_of_dataset
from learnit_tf.kinds.image import emoji
from learnit_tf.kinds.image.emoji import (emoji_images_builder, emoji_images_examples,
                                          scan_emoji_source, split_of)

REPO = pathlib.Path(__file__).resolve().parents[3]

#: The fake folder's distinct images and the split their names hash to (frozen here, so a
#: change of the split rule fails this test instead of silently moving images).
FAKE_SPLITS = {
    "rgba.png": "train", "la.png": "train", "palette.png": "train",
    "palette_opaque.png": "train", "big75.png": "train", "filler0.png": "train",
    "filler18.png": "validation", "filler22.png": "validation", "filler7.png": "test",
}
ALIAS = "rgba_alias.png"  # Byte-identical copy of rgba.png.
#: RGBA test pixels of rgba.png: transparent (its colour must not show), half, opaque.
TRANSPARENT, HALF, OPAQUE = (10, 200, 30, 0), (200, 40, 100, 128), (5, 6, 7, 255)


def _write_fake_source(directory):
    rng = np.random.default_rng(0)
    directory.mkdir()
    rgba = rng.integers(0, 256, (64, 64, 4), dtype=np.uint8)
    rgba[0, 0], rgba[0, 1], rgba[0, 2] = TRANSPARENT, HALF, OPAQUE
    Image.fromarray(rgba, "RGBA").save(directory / "rgba.png")
    shutil.copy(directory / "rgba.png", directory / ALIAS)
    la = rng.integers(0, 256, (64, 64, 2), dtype=np.uint8)
    la[0, 0], la[0, 1] = (0, 0), (100, 255)  # Transparent black; opaque gray 100.
    Image.fromarray(la, "LA").save(directory / "la.png")
    for name, transparent in (("palette.png", True), ("palette_opaque.png", False)):
        # Index 0 is black (transparent in palette.png), 1 red, 2 blue.
        indices = np.zeros((64, 64), np.uint8)
        indices[:, 32:] = 1
        indices[40:, :] = 2
        image = Image.fromarray(indices, "P")
        image.putpalette([0, 0, 0, 255, 0, 0, 0, 0, 255] + [0] * (253 * 3))
        image.save(directory / name, **({"transparency": 0} if transparent else {}))
    # 75×75: a horizontal gradient under a vertical alpha ramp (cropping instead of
    # resizing, or resizing before compositing, would give other pixels).
    big = np.zeros((75, 75, 4), np.uint8)
    big[..., 0] = np.linspace(0, 255, 75).astype(np.uint8)[None, :]
    big[..., 1] = 128
    big[..., 2] = 255 - big[..., 0]
    big[..., 3] = np.linspace(0, 255, 75).astype(np.uint8)[:, None]
    Image.fromarray(big, "RGBA").save(directory / "big75.png")
    for name in ("filler0.png", "filler7.png", "filler18.png", "filler22.png"):
        Image.fromarray(rng.integers(0, 256, (64, 64, 4), dtype=np.uint8), "RGBA").save(
            directory / name)
    return directory


@pytest.fixture(scope="module")
def fake(tmp_path_factory):
    """(source folder, data_dir with cpu64 and small generated from it)."""
    root = tmp_path_factory.mktemp("emoji")
    source = _write_fake_source(root / "source")
    data_dir = str(root / "tfds")
    for config in ("cpu64", "small"):
        emoji_images_builder(config, data_dir, str(source))
    return source, data_dir


def _named_examples(source, data_dir, split, config="cpu64"):
    """{file name: float32 image} of a split, from the public function (names from the
    builder, which lists the same examples in the same order)."""
    builder = emoji_images_builder(config, data_dir, str(source))
    names = [ex["name"].decode() for ex in builder.as_dataset(split=split).as_numpy_iterator()]
    images = [ex["image"].numpy() for ex in emoji_images_examples(split, config, data_dir,
                                                                  str(source))]
    assert len(names) == len(images)
    return dict(zip(names, images))


def _all_examples(source, data_dir, config="cpu64"):
    return {name: image for split in emoji.SPLIT_NAMES
            for name, image in _named_examples(source, data_dir, split, config).items()}


def test_alpha_is_composited_on_white(fake):
    image = _all_examples(*fake)["rgba.png"]
    assert image.dtype == np.float32 and image.shape == (64, 64, 3)
    # Fully transparent: exactly white (black background would give 0, dropped alpha
    # the hidden colour (10, 200, 30) / 255).
    np.testing.assert_array_equal(image[0, 0], [1.0, 1.0, 1.0])
    alpha = HALF[3] / 255.0
    expected = np.array(HALF[:3]) / 255.0 * alpha + (1.0 - alpha)
    np.testing.assert_allclose(image[0, 1], expected, atol=0.5 / 255 + 1e-6)
    np.testing.assert_allclose(image[0, 2], np.array(OPAQUE[:3]) / 255.0, atol=1e-6)


def test_grayscale_alpha_and_palette_become_rgb(fake):
    examples = _all_examples(*fake)
    la = examples["la.png"]
    np.testing.assert_array_equal(la[0, 0], [1.0, 1.0, 1.0])  # Transparent black.
    np.testing.assert_allclose(la[0, 1], [100 / 255.0] * 3, atol=1e-6)
    palette, opaque = examples["palette.png"], examples["palette_opaque.png"]
    np.testing.assert_array_equal(palette[0, 0], [1.0, 1.0, 1.0])  # Transparent index.
    np.testing.assert_array_equal(opaque[0, 0], [0.0, 0.0, 0.0])  # Same index, opaque.
    for image in (palette, opaque):
        np.testing.assert_array_equal(image[0, 40], [1.0, 0.0, 0.0])  # Palette colours,
        np.testing.assert_array_equal(image[50, 10], [0.0, 0.0, 1.0])  # not indices.


def test_75_pixel_file_is_composited_then_resized_bicubic(fake):
    source, data_dir = fake
    image = _all_examples(source, data_dir)["big75.png"]
    assert image.shape == (64, 64, 3)
    rgba = np.asarray(Image.open(source / "big75.png"), np.float32) / 255.0
    rgb = rgba[..., :3] * rgba[..., 3:] + 1.0 * (1.0 - rgba[..., 3:])  # On white, at 75×75.
    reference = np.stack([np.asarray(Image.fromarray(np.ascontiguousarray(rgb[..., c]), "F")
                                     .resize((64, 64), Image.BICUBIC)) for c in range(3)], -1)
    reference = np.round(np.clip(reference, 0.0, 1.0) * 255.0) / 255.0
    # Equal up to a rare rounding tie of the uint8 storage.
    np.testing.assert_allclose(image, reference, atol=1 / 255 + 1e-6)
    assert np.mean(np.abs(image - reference) < 1e-6) > 0.99
    # Neither the centre 64×64 crop nor resized before compositing (transparent top
    # rows of the gradient would show it) nor composited on black.
    crop = np.round(rgb[5:69, 5:69] * 255.0) / 255.0
    assert np.abs(image - crop).max() > 10 / 255
    resized_first = np.stack([np.asarray(Image.fromarray(np.ascontiguousarray(rgba[..., c]), "F")
                                         .resize((64, 64), Image.BICUBIC)) for c in range(4)], -1)
    on_black = np.clip(resized_first[..., :3] * resized_first[..., 3:], 0.0, 1.0)
    assert np.abs(image - on_black).max() > 0.5
    np.testing.assert_allclose(image[0], 1.0, atol=2 / 255)  # Top row: alpha 0, white.


def test_split_is_by_name_hash_disjoint_and_stable(fake, tmp_path):
    source, data_dir = fake
    splits = {s: set(_named_examples(source, data_dir, s)) for s in emoji.SPLIT_NAMES}
    assert {name: s for s, names in splits.items() for name in names} == FAKE_SPLITS
    assert all(split_of(name) == s for name, s in FAKE_SPLITS.items())
    # The alias is in no split.
    assert sum(len(v) for v in splits.values()) == len(FAKE_SPLITS)
    # Stable: another data_dir, and a folder with one more file, give the same splits
    # and the same pixels (the added file goes to its own split; nothing else moves).
    grown = tmp_path / "grown"
    shutil.copytree(source, grown)
    Image.new("RGBA", (64, 64), (1, 2, 3, 255)).save(grown / "filler9.png")
    again = _all_examples(grown, str(tmp_path / "tfds"))
    before = _all_examples(source, data_dir)
    assert set(again) == set(before) | {"filler9.png"}
    for name, image in before.items():
        np.testing.assert_array_equal(again[name], image)
    assert split_of("filler9.png") == "train"
    assert set(_named_examples(grown, str(tmp_path / "tfds"), "train")) == \
        splits["train"] | {"filler9.png"}


def test_aliases_are_dropped_and_recorded(fake):
    source, data_dir = fake
    scan = scan_emoji_source(str(source))
    assert len(scan.files) == len(FAKE_SPLITS) + 1 and list(scan.images) == sorted(FAKE_SPLITS)
    assert scan.aliases == {"rgba.png": [ALIAS]}
    metadata = emoji_images_builder("cpu64", data_dir, str(source)).info.metadata
    assert metadata["aliases"] == {"rgba.png": [ALIAS]}
    assert (metadata["num_files"], metadata["num_images"]) == (10, 9)


def test_small_config_is_32_pixels(fake):
    small = _all_examples(*fake, config="small")
    assert set(small) == set(FAKE_SPLITS)  # Fewer than its 64 images: all of them.
    for image in small.values():
        assert image.shape == (32, 32, 3) and 0.0 <= image.min() <= image.max() <= 1.0
    # A downscaled copy: the palette image's red/blue/white regions are kept.
    np.testing.assert_array_equal(small["palette.png"][0, 0], [1.0, 1.0, 1.0])
    np.testing.assert_array_equal(small["palette.png"][5, 25], [1.0, 0.0, 0.0])


def test_metadata_and_description_name_the_package(fake):
    source, data_dir = fake
    builder = emoji_images_builder("cpu64", data_dir, str(source))
    metadata = builder.info.metadata
    assert metadata["source_dir"] == str(source)
    assert metadata["fingerprint"] == scan_emoji_source(str(source)).fingerprint
    # Fake files elsewhere are not the package's: no package, version or licence claimed.
    assert metadata["files_match_release"] is False
    assert [metadata[k] for k in ("package", "package_version", "license")] == [None] * 3
    assert builder.info.description.startswith(f"PNG images read from {source} in place of "
                                               "the Debian package libjs-emojify 1.1.0+dfsg-2")
    assert "Expat" in builder.info.description and "Hassan Khan" in builder.info.citation
    # The package's configs keep their names; another folder gets its own directory.
    assert builder.builder_config.name.startswith("cpu64_")


def test_missing_package_folder_says_how_to_install(monkeypatch, tmp_path):
    missing = str(tmp_path / "usr/share/javascript/emojify.js/images/emoji")
    monkeypatch.setattr(emoji, "EMOJI_SOURCE_DIR", missing)
    with pytest.raises(FileNotFoundError,
                       match=rf"{re.escape(missing)}.*apt-get install libjs-emojify"):
        emoji_images_examples("train", data_dir=str(tmp_path / "tfds"))
    with pytest.raises(FileNotFoundError, match=r"'/no/such/folder' does not exist"):
        emoji_images_examples("train", source_dir="/no/such/folder")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match=r"empty.*holds no PNG files"):
        emoji_images_examples("train", source_dir=str(tmp_path / "empty"))
    assert not (tmp_path / "tfds").exists()  # Nothing half written.


def test_bad_config_split_and_too_few_images(fake, tmp_path):
    source, data_dir = fake
    with pytest.raises(ValueError, match=r"Unknown emoji_images config 'paper'.*cpu64"):
        emoji_images_examples("train", "paper", data_dir, str(source))
    with pytest.raises(ValueError, match=r"Unknown split 'tset'"):
        emoji_images_examples("tset", "cpu64", data_dir, str(source))
    few = tmp_path / "few"
    few.mkdir()
    shutil.copy(source / "rgba.png", few / "rgba.png")
    with pytest.raises(ValueError, match=r"1 images of .*few.* leave the split\(s\) "
                                         r"\['validation', 'test'\] empty"):
        emoji_images_examples("train", "small", str(tmp_path / "tfds"), str(few))
    # Nothing half written: the next call fails the same way, not on a partial dataset.
    with pytest.raises(ValueError, match=r"leave the split\(s\)"):
        emoji_images_examples("train", "small", str(tmp_path / "tfds"), str(few))


def test_changed_package_files_are_refused_not_reused(fake, monkeypatch, tmp_path):
    # The package's own folder keeps the plain config name, so a cache made from other
    # files (an upgraded package) must be detected by its fingerprint.
    package = tmp_path / "package"
    shutil.copytree(fake[0], package)
    monkeypatch.setattr(emoji, "EMOJI_SOURCE_DIR", str(package))
    data_dir = str(tmp_path / "tfds")
    first = emoji_images_builder("small", data_dir)
    assert first.builder_config.name == "small"
    assert first.info.description.startswith(
        f"Emoji artwork from the Debian package libjs-emojify 1.1.0+dfsg-2 (licence Expat (MIT); "
        f"upstream emojify.js 1.1.0, (c) 2014 Hassan Khan), read from {package}")
    # The package's folder: the package is named (its files are not the release's).
    assert first.info.metadata["package"] == "libjs-emojify"
    assert first.info.metadata["license"] == "Expat (MIT)"
    assert first.info.metadata["files_match_release"] is False
    Image.new("RGBA", (64, 64), (9, 9, 9, 255)).save(package / "filler0.png")
    with pytest.raises(ValueError, match=r"generated from other files.*delete that directory"):
        emoji_images_examples("train", "small", data_dir)


def test_concurrent_first_use_generates_once(fake, tmp_path):
    source = str(fake[0])
    data_dir = str(tmp_path / "tfds")
    results, errors = [None, None], []

    def load(i):
        try:
            results[i] = [ex["image"].numpy() for ex in
                          emoji_images_examples("train", "small", data_dir, source)]
        except Exception as e:  # pylint: disable=broad-except  # Reported below.
            errors.append(e)

    threads = [threading.Thread(target=load, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    assert len(results[0]) == 6
    for a, b in zip(*results):
        np.testing.assert_array_equal(a, b)


def test_registered_in_the_image_kind():
    assert kind_of_dataset("emoji_images_examples").name == "image"
    assert dataset_function("emoji_images_examples") is emoji_images_examples


@pytest.mark.parametrize("gin_file", ["emoji_metasgd_cpu.gin", "text_metasgd_cpu.gin",
                                      "sdf_metasgd_cpu.gin"])
def test_metasgd_gin_files_parse(gin_file):
    try:
        gin_config.parse_config([str(REPO / "gin" / "image" / gin_file)])
        assert gin.query_parameter("meta_train.inner_rates") == "parameter"
        assert gin.query_parameter("meta_train.outer_decay") == "cosine"
        assert gin.query_parameter("meta_train.clip_global_norm") == (
            20.0 if gin_file.startswith("emoji") else 5.0)
        if gin_file.startswith("emoji"):
            assert gin.query_parameter("emoji_images_examples.config") == "cpu64"
            assert gin.query_parameter("meta_train.signal_class") == "emoji_images"
        if gin_file.startswith("sdf"):
            assert gin.query_parameter("sdf_2d_examples.config") == "cpu64"
            assert gin.query_parameter("meta_train.signal_class") == "sdf_2d"
    finally:
        gin.clear_config()


def test_emoji_gin_file_trains_with_tiny_settings(fake, tmp_path):
    """The gin file end to end (2 outer steps of a tiny SIREN on the fake folder)."""
    from learnit_tf.meta.init_io import read_init_metadata  # pylint: disable=import-outside-toplevel
    from learnit_tf.training import meta_train  # pylint: disable=import-outside-toplevel
    source, data_dir = fake
    try:
        gin_config.parse_config([str(REPO / "gin" / "image" / "emoji_metasgd_cpu.gin")], [
            "Siren.width = 16", "Siren.depth = 2", "ImageTask.resolution = 32",
            "emoji_images_examples.config = 'small'",
            f"emoji_images_examples.source_dir = '{source}'",
            f"emoji_images_examples.data_dir = '{data_dir}'",
            "meta_train.num_steps = 2", "meta_train.outer_warmup_steps = 1",
            "meta_train.checkpoint_every = 2", "meta_train.eval_every = 0",
            "meta_train.meta_batch_size = 2", "meta_train.show_progress = False"])
        result = meta_train(str(tmp_path / "run"))
    finally:
        gin.clear_config()
    assert result["step"] == 2 and np.isfinite(result["metrics"]["loss"])
    metadata = read_init_metadata(result["init_dir"])
    assert metadata.signal_class == "emoji_images"
    assert metadata.dataset.function == "emoji_images_examples"
    # Where the images came from is recorded with the init (not the package: a folder).
    recorded = metadata.dataset.extra["source"]
    assert recorded == emoji.source_metadata(emoji.scan_emoji_source(str(source)))
    assert recorded["source_dir"] == str(source) and recorded["package"] is None


@pytest.fixture(name="real_package")
def _real_package():
    """The real emoji artwork: installed by .ci/run; missing, the test fails with the command."""
    require_emoji_package()


@pytest.mark.usefixtures("real_package")
def test_real_package_files_and_split_sizes(tmp_path):
    scan = scan_emoji_source()
    assert len(scan.files) == emoji.EMOJI_NUM_FILES == 881
    assert scan.fingerprint == emoji.EMOJI_FINGERPRINT, "not the 1.1.0+dfsg-2 files"
    # 20 files are byte-identical aliases (e.g. thumbsup.png = +1.png): 861 images, each
    # in one split only; with the aliases they add up to the 881 files.
    assert len(scan.images) == emoji.EMOJI_NUM_IMAGES == 861
    assert len(scan.images) + sum(len(v) for v in scan.aliases.values()) == 881
    digests = set()
    for path in scan.images.values():
        with open(path, "rb") as f:
            digests.add(hashlib.sha256(f.read()).hexdigest())
    assert len(digests) == 861
    sizes = {s: sum(split_of(n) == s for n in scan.images) for s in emoji.SPLIT_NAMES}
    assert sizes == {"train": 682, "validation": 98, "test": 81}  # cpu64's splits.
    # `small` is generated from the real files (LA and palette images among them).
    small = emoji_images_builder("small", str(tmp_path))
    assert {s: small.info.splits[s].num_examples for s in emoji.SPLIT_NAMES} == \
        {"train": 51, "validation": 6, "test": 7}
    names = {ex["name"].decode() for s in emoji.SPLIT_NAMES
             for ex in small.as_dataset(split=s).as_numpy_iterator()}
    assert names == set(list(scan.images)[:64])
    assert small.info.metadata["package_version"] == "1.1.0+dfsg-2"
    assert small.info.metadata["files_match_release"] is True
    assert small.info.metadata["source_dir"] == emoji.EMOJI_SOURCE_DIR
    assert emoji.source_metadata() == dict(small.info.metadata)


@pytest.mark.usefixtures("real_package")
def test_real_package_cpu64_generates_its_splits(tmp_path):
    builder = emoji_images_builder("cpu64", str(tmp_path))
    sizes = {s: builder.info.splits[s].num_examples for s in emoji.SPLIT_NAMES}
    assert sizes == {"train": 682, "validation": 98, "test": 81}
    images = np.stack([ex["image"].numpy() for ex in emoji_images_examples(
        "test", "cpu64", str(tmp_path))])
    assert images.shape == (81, 64, 64, 3) and 0.0 <= images.min() <= images.max() <= 1.0
    # Transparent surroundings became white: every emoji's corner pixel is white.
    np.testing.assert_array_equal(images[:, 0, 0], np.ones((81, 3), np.float32))
