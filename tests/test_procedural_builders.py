"""prepare_procedural_builder: concurrent first use of one dataset in an empty data_dir.

The workers of a multi-worker run start together and each asks for the training
dataset; without the generation lock, each TFDS builder generates into its own
temporary directory and all but the first fail to rename it into place
(`FileExistsError`), and the stdout redirections of two threads tangle (stdout stays
swallowed). Threads start the race here (the lock is a `flock`, which excludes
threads as it does processes).
"""

import os
import threading

from learnit_tf.data.procedural_builders import prepare_procedural_builder
from learnit_tf.kinds.image.text_images import TextImages

SIZES = {"train": 64, "validation": 16, "test": 16}  # The "small" config.


def test_two_concurrent_first_uses_generate_once_and_both_read_it(tmp_path, capsys):
    data_dir = tmp_path / "tfds"
    start = threading.Barrier(2)
    results = [None, None]

    def prepare(index):
        start.wait()  # Both check "not prepared yet" within microseconds of each other.
        try:
            builder = prepare_procedural_builder(TextImages, "small", str(data_dir))
            results[index] = {
                split: sum(1 for _ in builder.as_dataset(split=split)) for split in SIZES}
        except Exception as e:  # pylint: disable=broad-except
            results[index] = e

    threads = [threading.Thread(target=prepare, args=(i,)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)
    assert results == [SIZES, SIZES], results

    # Generated once, into one complete version directory; no temporary one is left.
    config_dir = data_dir / "text_images" / "small"
    assert sorted(p.name for p in config_dir.iterdir()) == [".1.0.0.lock", "1.0.0"]
    assert sorted(p.name for p in (config_dir / "1.0.0").iterdir()) == [
        "dataset_info.json", "features.json",
        *[f"text_images-{split}.tfrecord-00000-of-00001"
          for split in ("test", "train", "validation")]]
    print("stdout still works")
    out = capsys.readouterr().out
    assert out.count("Generating text_images/small offline into") == 1, out
    assert out.endswith("stdout still works\n"), out

    # A later caller finds it prepared and generates nothing.
    builder = prepare_procedural_builder(TextImages, "small", str(data_dir))
    assert builder.info.splits["train"].num_examples == 64
    assert "Generating" not in capsys.readouterr().out


# -- The shared builder base (ProceduralBuilder, ProceduralConfig) ------------------------------
#
# Every procedural class must stay what it was before the builders shared a base: the same
# dataset names, version, configs (split sizes, seeds), features and DatasetInfo, and each
# example drawn from (seed, split index, index) exactly as the kind's own generator draws
# it. Caches and the published inits' evaluations depend on it. The expected values below
# are written out, not read from the builders.

import dataclasses  # pylint: disable=wrong-import-position,wrong-import-order

import numpy as np  # pylint: disable=wrong-import-position,wrong-import-order
import pytest  # pylint: disable=wrong-import-position,wrong-import-order
import tensorflow_datasets as tfds  # pylint: disable=wrong-import-position,wrong-import-order

from learnit_tf.data.procedural_builders import (  # pylint: disable=wrong-import-position
    PAPER_CITATION, PAPER_HOMEPAGE, ProceduralConfig)
from learnit_tf.kinds.audio import procedural as audio  # pylint: disable=wrong-import-position
from learnit_tf.kinds.ct import anatomy, anatomy_render  # pylint: disable=wrong-import-position
from learnit_tf.kinds.ct import shepp_logan  # pylint: disable=wrong-import-position
from learnit_tf.kinds.image import emoji, sdf_2d, text_images  # pylint: disable=wrong-import-position
from learnit_tf.kinds.nerf import procedural as nerf  # pylint: disable=wrong-import-position
from learnit_tf.kinds.shape3d import procedural as shape3d  # pylint: disable=wrong-import-position

SPLITS = ("train", "validation", "test")
NERF_ANGLE = nerf.cameras.NERF_SYNTHETIC_CAMERA_ANGLE_X


def _features(kind, cfg):
    """The features each class has always had, written out per kind."""
    f = tfds.features
    if kind == "procedural_audio":
        return {"waveform": f.Tensor(shape=(cfg["num_samples"],), dtype=np.float32)}
    if kind == "text_images":
        r = cfg["resolution"]
        return {"image": f.Image(shape=(r, r, 3))}
    if kind == "sdf_2d":
        r = cfg["resolution"]
        return {"image": f.Image(shape=(r, r, 3), dtype=np.uint8), "num_shapes": np.int32}
    if kind == "emoji_images":
        r = cfg["resolution"]
        return {"image": f.Image(shape=(r, r, 3)), "name": f.Text()}
    if kind in ("shepp_logan", "ct_anatomy"):
        r = cfg["resolution"]
        return {"image": f.Tensor(shape=(r, r, 1), dtype=np.float32,
                                  encoding=f.Encoding.ZLIB)}
    if kind == "procedural_objects":
        r, v = cfg["resolution"], cfg["num_views"]
        return {"object_id": f.Text(),
                "images": f.Sequence(f.Image(shape=(r, r, 4)), length=v),
                "poses": f.Tensor(shape=(v, 4, 4), dtype=np.float32),
                "camera_angle_x": f.Scalar(dtype=np.float32)}
    assert kind == "procedural_shapes", kind
    n, g, s = cfg["num_points"], cfg["grid_resolution"], cfg["num_surface"]
    return {"points": f.Tensor(shape=(n, 3), dtype=np.float32),
            "sdf": f.Tensor(shape=(n,), dtype=np.float32),
            "grid_sdf": f.Tensor(shape=(g ** 3,), dtype=np.float32, encoding="zlib"),
            "surface": f.Tensor(shape=(s, 3), dtype=np.float32)}


def _sizes(train, validation, test, seed=0):
    return {"num_train": train, "num_validation": validation, "num_test": test, "seed": seed}


#: builder class -> (dataset name, default config, {config: its fields}), as published.
CLASSES = {
    audio.ProceduralAudio: ("procedural_audio", "cpu", {
        "paper": dict(num_samples=16384, sample_rate=16000, **_sizes(9000, 500, 500)),
        "cpu": dict(num_samples=4096, sample_rate=8000, **_sizes(2000, 100, 100)),
        "small": dict(num_samples=512, sample_rate=2000, **_sizes(64, 16, 16))}),
    text_images.TextImages: ("text_images", "cpu64", {
        "paper": dict(resolution=178, **_sizes(9000, 500, 500)),
        "cpu64": dict(resolution=64, **_sizes(2000, 100, 100)),
        "small": dict(resolution=32, **_sizes(64, 16, 16))}),
    sdf_2d.Sdf2d: ("sdf_2d", "small", {
        "paper": dict(resolution=178, **_sizes(9000, 500, 500, seed=0)),
        "cpu64": dict(resolution=64, **_sizes(2000, 100, 100, seed=2)),
        "small": dict(resolution=64, **_sizes(200, 50, 50, seed=1))}),
    emoji.EmojiImages: ("emoji_images", "cpu64", {
        "cpu64": dict(resolution=64, max_images=None, source_dir=None),
        "small": dict(resolution=32, max_images=64, source_dir=None)}),
    shepp_logan.SheppLogan: ("shepp_logan", "small", {
        "paper": dict(resolution=256, **_sizes(1792, 128, 128)),
        "small": dict(resolution=64, **_sizes(160, 20, 20))}),
    anatomy.CtAnatomy: ("ct_anatomy", "small", {
        "small": dict(resolution=64, **_sizes(2000, 100, 100)),
        "paper": dict(resolution=256, **_sizes(1792, 128, 128)),
        "tiny": dict(resolution=32, **_sizes(24, 8, 8))}),
    nerf.ProceduralObjects: ("procedural_objects", "small", {
        name: dict(resolution=r, num_views=50, num_support_views=25, radius=4.0,
                   camera_angle_x=NERF_ANGLE, **sizes)
        for name, r, sizes in (("paper", 128, _sizes(1000, 50, 100)),
                               ("small", 32, _sizes(200, 10, 20)),
                               ("tiny", 16, _sizes(16, 2, 4)))}),
    shape3d.ProceduralShapes: ("procedural_shapes", "cpu", {
        "paper": dict(num_points=16384, near_surface_std=0.01, grid_resolution=64,
                      num_surface=8192, **_sizes(9000, 500, 500)),
        "cpu": dict(num_points=2048, near_surface_std=0.02, grid_resolution=32,
                    num_surface=2048, **_sizes(512, 32, 32)),
        "small": dict(num_points=256, near_surface_std=0.02, grid_resolution=8,
                      num_surface=128, **_sizes(16, 4, 4))}),
}
SDF_CITATION = ("@inproceedings{tancik2021learnit, title={Learned Initializations for "
                "Optimizing Coordinate-Based Neural Representations}, author={Tancik, "
                "Matthew and Mildenhall, Ben and Wang, Terrance and Schmidt, Divi and "
                "Srinivasan, Pratul P. and Barron, Jonathan T. and Ng, Ren}, "
                "booktitle={CVPR}, year={2021}}")


def _expected_info(cls, cfg):
    """(description, homepage, citation, metadata) each class has always recorded."""
    module = __import__(cls.__module__, fromlist=["_"])
    if cls is sdf_2d.Sdf2d:
        return module.__doc__.split("\n\n")[0], "https://arxiv.org/abs/2012.02189", \
            SDF_CITATION, {}
    if cls is emoji.EmojiImages:
        r = cfg["resolution"]
        return (f"Emoji artwork from the Debian package libjs-emojify 1.1.0+dfsg-2 (licence "
                f"Expat (MIT); upstream emojify.js 1.1.0, (c) 2014 Hassan Khan), read from "
                f"{emoji.EMOJI_SOURCE_DIR}; {r}×{r} RGB, alpha composited on white, aliases "
                "dropped, split by file-name hash 80/10/10."), emoji.EMOJI_HOMEPAGE, \
            emoji.EMOJI_CITATION, {}
    metadata = {audio.ProceduralAudio: {"sample_rate": cfg.get("sample_rate")},
                nerf.ProceduralObjects: {"near": 2.0, "far": 6.0, "num_support_views": 25},
                shape3d.ProceduralShapes: {"sign": "negative inside"}}.get(cls, {})
    return module.__doc__, PAPER_HOMEPAGE, PAPER_CITATION, metadata


@pytest.mark.parametrize("cls", list(CLASSES), ids=lambda c: c.__name__)
def test_builders_keep_their_names_versions_configs_and_info(cls, tmp_path):
    name, default, configs = CLASSES[cls]
    assert (cls.name, str(cls.VERSION), cls.DEFAULT_CONFIG_NAME) == (name, "1.0.0", default)
    assert cls.RELEASE_NOTES == {"1.0.0": "Initial release."}
    assert [c.name for c in cls.BUILDER_CONFIGS] == list(configs)
    for config in cls.BUILDER_CONFIGS:
        expected = configs[config.name]
        assert {k: getattr(config, k) for k in expected} == expected, config.name
        if "num_train" in expected:
            assert config.split_sizes() == {s: expected[f"num_{s}"] for s in SPLITS}
        builder = cls(config=config.name, data_dir=str(tmp_path))  # Not generated.
        info = builder.info
        assert (info.name, info.config_name, str(info.version)) == (name, config.name, "1.0.0")
        assert info.features.to_json() == tfds.features.FeaturesDict(
            _features(name, expected)).to_json(), config.name
        description, homepage, citation, metadata = _expected_info(cls, expected)
        assert (info.description, info.homepage, info.citation) == (
            description.strip(), homepage, citation), config.name  # TFDS strips.
        assert dict(info.metadata or {}) == metadata, config.name
        assert info.supervised_keys is None


def test_a_procedural_config_must_say_its_split_sizes():
    with pytest.raises(TypeError, match="num_train"):
        text_images.TextImagesConfig(name="no_sizes", resolution=8)
    config = shepp_logan.SheppLoganConfig(name="sized", resolution=8, num_train=3,
                                          num_validation=2, num_test=1)
    assert isinstance(config, ProceduralConfig) and config.seed == 0
    assert config.split_sizes() == {"train": 3, "validation": 2, "test": 1}


def _direct(cls, cfg, split, i):
    """(key, example) of example `i` of `split`, computed without the builder."""
    s = SPLITS.index(split)
    # Compared by name, not identity: another test in the same worker may re-import a
    # kind's module (deprecated-path aliases), making a second class object.
    name = cls.__name__
    if name == audio.ProceduralAudio.__name__:
        rng = np.random.RandomState([cfg.seed, s, i])
        return i, {"waveform": audio.render_clip(rng, cfg.num_samples, cfg.sample_rate)}
    if name == text_images.TextImages.__name__:
        rng = np.random.RandomState([cfg.seed, s, i])
        return i, {"image": text_images.render_text_image(rng, cfg.resolution)}
    if name == sdf_2d.Sdf2d.__name__:
        ex = sdf_2d.render_sdf_example((cfg.seed, s, i), cfg.resolution)
        return i, {"image": ex["image"], "num_shapes": np.int32(len(ex["shapes"]))}
    if name == shepp_logan.SheppLogan.__name__:
        return i, {"image": shepp_logan.random_phantom((cfg.seed, s, i), cfg.resolution)[..., None]}
    if name == anatomy.CtAnatomy.__name__:
        return i, {"image": anatomy_render.random_slice((cfg.seed, s, i), cfg.resolution)[..., None]}
    if name == nerf.ProceduralObjects.__name__:
        data = nerf.generate_object(cfg.seed, s, i, cfg.resolution, cfg.num_views, cfg.radius,
                                    cfg.camera_angle_x)
        key = f"{split}_{i:05d}"
        return key, {"object_id": key, "images": data["images"],
                     "poses": data["poses"], "camera_angle_x": np.float32(NERF_ANGLE)}
    assert name == shape3d.ProceduralShapes.__name__, name
    rng = np.random.RandomState([cfg.seed, s, i])
    return i, shape3d.shape_example(rng, cfg.num_points, cfg.near_surface_std,
                                    cfg.grid_resolution, cfg.num_surface)


#: Tiny configs (a non-default seed; split sizes that differ, so a swap would show).
TINY = {
    audio.ProceduralAudio: dict(num_samples=64, sample_rate=2000),
    text_images.TextImages: dict(resolution=12),
    sdf_2d.Sdf2d: dict(resolution=12),
    shepp_logan.SheppLogan: dict(resolution=12),
    anatomy.CtAnatomy: dict(resolution=12),
    nerf.ProceduralObjects: dict(resolution=6, num_views=3, num_support_views=1),
    shape3d.ProceduralShapes: dict(num_points=16, grid_resolution=3, num_surface=8),
}


def _canonical(example):
    """A comparable form of an example (TFDS reads text features back as bytes)."""
    example = {k: v.decode() if isinstance(v, bytes) else v for k, v in example.items()}
    return tuple((k, np.asarray(v).dtype.str, np.asarray(v).shape, np.asarray(v).tobytes())
                 for k, v in sorted(example.items()))


@pytest.mark.parametrize("cls", list(TINY), ids=lambda c: c.__name__)
def test_generated_splits_hold_the_examples_drawn_from_seed_split_and_index(cls, tmp_path):
    config_cls = type(cls.BUILDER_CONFIGS[0])
    cfg = config_cls(name="base_test", seed=3, num_train=1, num_validation=2, num_test=3,
                     **TINY[cls])
    builder = cls(config=cfg, data_dir=str(tmp_path))
    # The generator itself: keys and examples, in order.
    generated = {split: list(gen) for split, gen in builder._split_generators(None).items()}  # pylint: disable=protected-access
    assert list(generated) == list(SPLITS)
    for split, pairs in generated.items():
        direct = [_direct(cls, cfg, split, i) for i in range(cfg.split_sizes()[split])]
        assert [k for k, _ in pairs] == [k for k, _ in direct], split
        assert [_canonical(ex) for _, ex in pairs] == [_canonical(ex) for _, ex in direct]
    # And the generated TFDS dataset (read back in TFDS's own order, so compared sorted).
    prepared = prepare_procedural_builder(cls, cfg, str(tmp_path))
    for split in SPLITS:
        assert prepared.info.splits[split].num_examples == cfg.split_sizes()[split]
        read = [_canonical(ex) for ex in tfds.as_numpy(
            prepared.as_dataset(split=split, shuffle_files=False))]
        direct = [_canonical(_direct(cls, cfg, split, i)[1])
                  for i in range(cfg.split_sizes()[split])]
        assert sorted(read) == sorted(direct), split
    # Seeds matter: another seed draws other examples.
    other = dataclasses.replace(cfg, name="base_test_seed4", seed=4)
    assert _canonical(_direct(cls, other, "test", 0)[1]) != \
        _canonical(_direct(cls, cfg, "test", 0)[1])


def _read(builder, split):
    return [_canonical(ex) for ex in tfds.as_numpy(builder.as_dataset(split=split,
                                                                     shuffle_files=False))]


@pytest.mark.parametrize("cls", list(TINY), ids=lambda c: c.__name__)
def test_a_split_read_first_generates_only_that_split_with_the_same_examples(cls, tmp_path):
    """Fitting one held-out signal used to generate the whole class first (49 s of
    training shapes for one test shape): a split read from a data_dir without the
    config generates only that split, and reads what the full config holds there, in
    the same order; a data_dir holding the full config is read as it is."""
    config_cls = type(cls.BUILDER_CONFIGS[0])
    cfg = config_cls(name="base_test", seed=3, num_train=2, num_validation=2, num_test=4,
                     **TINY[cls])
    full = prepare_procedural_builder(cls, cfg, str(tmp_path / "full"))
    only = prepare_procedural_builder(cls, cfg, str(tmp_path / "only"), split="test[:3]")
    assert only.builder_config.name == "base_test_test"
    assert sorted(only.info.splits) == ["test"]
    assert _read(only, "test[:3]") == _read(full, "test[:3]")
    assert sorted(os.listdir(tmp_path / "only" / cls.name)) == [".config", "base_test_test"]
    both = prepare_procedural_builder(cls, cfg, str(tmp_path / "only"),
                                      split="train+validation")
    assert both.builder_config.name == "base_test_train_validation"
    assert _read(both, "validation") == _read(full, "validation")
    again = prepare_procedural_builder(cls, cfg, str(tmp_path / "full"), split="test")
    assert again.builder_config.name == "base_test"
    # All three splits, or a split string naming no split of the class: the full config.
    for split in ("train+validation+test", "bogus"):
        assert prepare_procedural_builder(cls, cfg, str(tmp_path / "full"),
                                          split=split).builder_config.name == "base_test"
