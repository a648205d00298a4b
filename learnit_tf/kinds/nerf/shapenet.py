"""`shapenet_views`: the authors' ShapeNet renders, read from a manual download directory.

PAPER.md, "View synthesis: ShapeNet single view": per object 50 views at 128×128
(0–24 support, 25–49 held out), RGBA composited on white, a `transforms.json` per
object (NeRF-synthetic convention) and a splits JSON with train/val/test object ids;
classes chairs, cars, lamps. The layout read here (as the authors' release):

    <manual_dir>/chair_splits.json        {"train": [ids], "val": [ids], "test": [ids]}
    <manual_dir>/chairs/<id>/transforms.json
    <manual_dir>/chairs/<id>/r_0.png ... r_49.png

Objects listed in a splits file but absent from the download are skipped with a
warning (the authors' own loader does the same); malformed objects raise errors
naming the file.
"""

import dataclasses
import json
import os

import numpy as np
import tensorflow_datasets as tfds
from absl import logging

from learnit_tf.kinds.nerf import views as views_lib

CLASSES = ("chairs", "cars", "lamps")

MANUAL_DOWNLOAD_INSTRUCTIONS = """\
Download the ShapeNet renders of Tancik et al. (CVPR 2021), "Learned Initializations
for Optimizing Coordinate-Based Neural Representations", from the data link in
https://github.com/tancik/learnit (README, "ShapeNet" data), and extract them into
the manual directory so that it contains, for each class you use:

  <manual_dir>/chair_splits.json   (car_splits.json, lamp_splits.json)
  <manual_dir>/chairs/<object id>/transforms.json and r_<k>.png   (cars/, lamps/)

Then pass manual_dir=<manual_dir> to shapenet_examples(...) (or
--manual_dir to `tfds build`). Objects in the NeRF-synthetic format written by
learnit_tf.kinds.nerf.procedural.write_shapenet_format can be read the same way.
"""


@dataclasses.dataclass
class ShapenetViewsConfig(tfds.core.BuilderConfig):
    """One object class of the renders.

    Attributes:
        class_name: folder name of the class ("chairs", "cars", "lamps").
        resolution: view size (authors: 128).
        num_views: views per object (authors: 50).
        num_support_views: support views (authors: 25; the rest are held out).
    """

    class_name: str = "chairs"
    resolution: int = 128
    num_views: int = 50
    num_support_views: int = 25


def splits_path(manual_dir, class_name):
    """The splits JSON of a class: `<singular>_splits.json` (or `<class>_splits.json`)."""
    singular = class_name[:-1] if class_name.endswith("s") else class_name
    candidates = [os.path.join(manual_dir, f"{singular}_splits.json"),
                  os.path.join(manual_dir, f"{class_name}_splits.json")]
    for path in candidates:
        if os.path.isfile(path):
            return path
    raise FileNotFoundError(
        f"No splits file for class {class_name!r} in {manual_dir} (looked for "
        f"{', '.join(os.path.basename(c) for c in candidates)}).\n{MANUAL_DOWNLOAD_INSTRUCTIONS}")


def read_splits(manual_dir, class_name):
    """{"train"|"validation"|"test": [object ids]} from the class's splits JSON."""
    path = splits_path(manual_dir, class_name)
    try:
        with open(path) as f:
            raw = json.load(f)
    except json.JSONDecodeError as e:
        raise ValueError(f"{path} is not valid JSON: {e}") from e
    aliases = {"train": ("train",), "validation": ("val", "validation", "valid"),
               "test": ("test",)}
    splits = {}
    for split, keys in aliases.items():
        key = next((k for k in keys if isinstance(raw, dict) and k in raw), None)
        if key is None:
            raise ValueError(f"{path} has no {split!r} list (expected keys 'train', 'val', "
                             f"'test'; found {sorted(raw) if isinstance(raw, dict) else raw!r}).")
        if not isinstance(raw[key], list):
            raise ValueError(f"{path}: {key!r} must be a list of object ids.")
        splits[split] = [str(x) for x in raw[key]]
    return splits


def check_manual_dir(manual_dir, class_name):
    """Raises FileNotFoundError with the download instructions if the data is not there."""
    if manual_dir is None or not os.path.isdir(manual_dir):
        raise FileNotFoundError(f"ShapeNet renders manual directory {manual_dir!r} does not "
                                f"exist.\n{MANUAL_DOWNLOAD_INSTRUCTIONS}")
    class_dir = os.path.join(manual_dir, class_name)
    if not os.path.isdir(class_dir):
        raise FileNotFoundError(f"Class folder {class_dir} not found in the manual directory."
                                f"\n{MANUAL_DOWNLOAD_INSTRUCTIONS}")
    splits_path(manual_dir, class_name)


class ShapenetViews(tfds.core.GeneratorBasedBuilder):
    """The authors' ShapeNet renders: 50 RGBA views per object with camera poses."""

    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {"1.0.0": "Initial release."}
    MANUAL_DOWNLOAD_INSTRUCTIONS = MANUAL_DOWNLOAD_INSTRUCTIONS
    BUILDER_CONFIGS = [ShapenetViewsConfig(name=c, class_name=c,
                                           description=f"ShapeNet {c}, 128×128, 50 views.")
                       for c in CLASSES]
    DEFAULT_CONFIG_NAME = "chairs"

    def _info(self):
        return views_lib.object_dataset_info(self, __doc__)

    def _split_generators(self, dl_manager):
        cfg = self.builder_config
        manual_dir = os.fspath(dl_manager.manual_dir)
        check_manual_dir(manual_dir, cfg.class_name)
        splits = read_splits(manual_dir, cfg.class_name)
        generators = {}
        for split, ids in splits.items():
            folders = []
            for object_id in ids:
                folder = os.path.join(manual_dir, cfg.class_name, object_id)
                if not os.path.isdir(folder):
                    logging.warning("shapenet_views: object %s of split %s is missing from %s; "
                                    "skipped.", object_id, split, manual_dir)
                    continue
                # Parse every transforms.json up front so bad files fail before writing.
                camera_angle_x, paths, poses = views_lib.read_transforms(folder)
                if len(paths) != cfg.num_views:
                    raise ValueError(
                        f"{os.path.join(folder, 'transforms.json')} has {len(paths)} frames; "
                        f"config {cfg.name!r} expects {cfg.num_views} views "
                        f"({cfg.num_support_views} support + "
                        f"{cfg.num_views - cfg.num_support_views} held out).")
                folders.append((object_id, camera_angle_x, paths, poses))
            if ids and not folders:
                raise FileNotFoundError(f"None of the {len(ids)} objects of split {split!r} "
                                        f"exist under {os.path.join(manual_dir, cfg.class_name)}."
                                        f"\n{MANUAL_DOWNLOAD_INSTRUCTIONS}")
            generators[split] = self._generate_examples(folders)
        return generators

    def _generate_examples(self, folders):
        cfg = self.builder_config
        for object_id, camera_angle_x, paths, poses in folders:
            images = np.stack([views_lib.load_rgba(p, cfg.resolution) for p in paths])
            yield object_id, {"object_id": object_id, "images": images, "poses": poses,
                              "camera_angle_x": np.float32(camera_angle_x)}


def load_builder(class_name="chairs", manual_dir=None, data_dir=None, config=None):
    """The prepared `shapenet_views` builder (prepared from `manual_dir` if needed)."""
    if config is None:
        if class_name not in CLASSES:
            raise ValueError(f"Unknown ShapeNet class {class_name!r}; expected one of {CLASSES} "
                             "(or pass a ShapenetViewsConfig).")
        config = class_name
    builder = ShapenetViews(config=config, data_dir=data_dir)
    if not builder.is_prepared():
        check_manual_dir(manual_dir, builder.builder_config.class_name)
        builder.download_and_prepare(download_config=tfds.download.DownloadConfig(
            manual_dir=manual_dir))
    return builder


def shapenet_examples(split, class_name="chairs", manual_dir=None, views="all",
                      single_view=None, held_out=None, num_held_out_views=None, data_dir=None,
                      config=None):
    """The authors' ShapeNet renders as unbatched `NerfTask` examples.

    Args:
        split: "train", "validation" (or "val") or "test".
        class_name: "chairs", "cars" or "lamps".
        manual_dir: directory with the extracted renders (see MANUAL_DOWNLOAD_INSTRUCTIONS);
            needed only the first time (TFDS then reads its prepared copy in `data_dir`).
        views: "all" support views or "single" (SV meta / single-view test).
        single_view: the support view for views="single" (None: one per object by hash).
        held_out: add held-out views as "test_*" rays (default: all splits but train).
        num_held_out_views: only the first k held-out views.
        data_dir: TFDS data directory.
        config: a custom `ShapenetViewsConfig` (e.g. other resolution), overriding class_name.

    Example:

    >>> ds = shapenet_examples("test", manual_dir="/data/learnit_shapenet",
    ...                        views="single")  # doctest: +SKIP
    """
    builder = load_builder(class_name, manual_dir, data_dir, config)
    split = views_lib.resolve_split(split, builder)
    held_out = split != "train" if held_out is None else bool(held_out)
    records = builder.as_dataset(split=split, shuffle_files=False)
    return views_lib.object_examples(records, builder.builder_config.num_support_views, views,
                                     single_view, held_out, num_held_out_views)
