"""`procedural_objects`: chair-like objects made of boxes, rendered by exact ray casting.

An offline stand-in for the authors' ShapeNet chair renders (PAPER.md, "View
synthesis: ShapeNet single view"): every object is a seat, a back and four legs
(sometimes armrests), with random proportions and two random colours, axis-aligned
in a z-up world and centred at the origin. Views are rendered from random cameras on
a sphere of radius 4 (ShapeNet's), with the NeRF-synthetic camera of the Blender
scenes, as RGBA (alpha 1 on the object, 0 elsewhere; composite on white), 25
support + 25 held-out views per object, near 2 and far 6.

Shading is Lambertian under a fixed directional light plus ambient light, so
colours do not depend on the viewing direction (the paper's NeRF MLP has no view
input). Rendering is exact: a ray shot through pixel (row j, column i) with
`cameras.nerf_synthetic_rays` (the same rays the task trains on) is intersected
with every box (slab test) and shows the nearest hit.

Object i of split s is drawn from `numpy.random.default_rng((seed, s, i))`, so a
dataset is deterministic by seed and independent of generation order.
"""

import dataclasses
import json
import os

import numpy as np
import tensorflow_datasets as tfds
from PIL import Image

from learnit_tf.data.procedural_builders import (ProceduralBuilder, ProceduralConfig,
                                                 prepare_procedural_builder)
from learnit_tf.kinds.nerf import cameras
from learnit_tf.kinds.nerf import views as views_lib

LIGHT_DIRECTION = np.array([0.35, -0.5, 0.8]) / np.linalg.norm([0.35, -0.5, 0.8])
AMBIENT = 0.35


@dataclasses.dataclass
class BoxObject:
    """Axis-aligned boxes with colours: lo, hi (B, 3) corners and colours (B, 3) in [0, 1]."""

    lo: np.ndarray
    hi: np.ndarray
    colours: np.ndarray

    def contains(self, points, margin=0.0):
        """Whether each point (..., 3) lies inside some box (grown by `margin`)."""
        p = np.asarray(points)[..., None, :]
        inside = np.all((p >= self.lo - margin) & (p <= self.hi + margin), axis=-1)
        return inside.any(axis=-1)


def _random_colour(rng, value_range):
    hue = rng.uniform()
    saturation = rng.uniform(0.35, 0.9)
    value = rng.uniform(*value_range)
    # HSV -> RGB.
    k = (np.array([5.0, 3.0, 1.0]) + hue * 6.0) % 6.0
    return value - value * saturation * np.clip(np.minimum(k, 4.0 - k), 0.0, 1.0)


def random_chair(rng):
    """A random chair-like `BoxObject` (seat, back, 4 legs, optional armrests).

    Extents stay within about ±0.7 horizontally and ±1.0 vertically, so the object
    fills a good part of the frame from distance 4 without leaving it.
    """
    scale = 1.2
    half_w = rng.uniform(0.3, 0.55)       # seat half-width (x)
    half_d = rng.uniform(0.3, 0.55)       # seat half-depth (y)
    seat_t = rng.uniform(0.05, 0.14)      # seat thickness
    leg_h = rng.uniform(0.35, 0.7)        # floor to seat bottom
    leg_t = rng.uniform(0.05, 0.11)       # leg side
    back_h = rng.uniform(0.35, 0.8)       # above the seat top
    back_t = rng.uniform(0.05, 0.11)      # back thickness
    seat_colour = _random_colour(rng, (0.45, 0.95))
    leg_colour = _random_colour(rng, (0.2, 0.7))
    seat_top = leg_h + seat_t
    boxes = [
        ((-half_w, -half_d, leg_h), (half_w, half_d, seat_top), seat_colour),
        ((-half_w, -half_d, seat_top), (half_w, -half_d + back_t, seat_top + back_h),
         seat_colour),
    ]
    for sx in (-1, 1):
        for sy in (-1, 1):
            x0 = sx * half_w - (leg_t if sx > 0 else 0.0)
            y0 = sy * half_d - (leg_t if sy > 0 else 0.0)
            boxes.append(((x0, y0, 0.0), (x0 + leg_t, y0 + leg_t, leg_h), leg_colour))
    if rng.uniform() < 0.35:
        arm_h = rng.uniform(0.15, 0.3)
        for sx in (-1, 1):
            x0 = sx * half_w - (leg_t if sx > 0 else 0.0)
            boxes.append(((x0, -half_d, seat_top + arm_h - 0.04),
                          (x0 + leg_t, half_d, seat_top + arm_h), leg_colour))
            boxes.append(((x0, half_d - leg_t, seat_top), (x0 + leg_t, half_d,
                                                            seat_top + arm_h), leg_colour))
    lo = np.array([b[0] for b in boxes], np.float64)
    hi = np.array([b[1] for b in boxes], np.float64)
    colours = np.array([b[2] for b in boxes], np.float64)
    # Centre the bounding box at the origin.
    centre = 0.5 * (lo.min(axis=0) + hi.max(axis=0))
    return BoxObject(scale * (lo - centre), scale * (hi - centre), colours)


def intersect_boxes(rays_o, rays_d, obj):
    """Slab test of rays (N, 3) against every box.

    Returns:
        (t_hit (N, B): entry distance, inf on a miss or behind the origin,
         axis (N, B): axis (0, 1, 2) of the entry face).
    """
    o = rays_o[:, None, :]
    d = rays_d[:, None, :]
    d = np.where(np.abs(d) < 1e-12, 1e-12, d)
    t1 = (obj.lo[None] - o) / d
    t2 = (obj.hi[None] - o) / d
    t_lo = np.minimum(t1, t2)
    t_enter = t_lo.max(axis=-1)
    t_exit = np.maximum(t1, t2).min(axis=-1)
    hit = (t_enter <= t_exit) & (t_enter > 0.0)
    return np.where(hit, t_enter, np.inf), t_lo.argmax(axis=-1)


def cast_rays(rays_o, rays_d, obj):
    """Exact ray casting of a `BoxObject`.

    Args:
        rays_o, rays_d: (N, 3) float arrays.
        obj: a `BoxObject`.

    Returns:
        dict "rgb" (N, 3) shaded colour (0 where nothing is hit), "alpha" (N,) in
        {0, 1}, "t" (N,) ray parameter of the hit (inf on a miss), "box" (N,) index
        of the hit box (-1 on a miss).
    """
    rays_o = np.asarray(rays_o, np.float64)
    rays_d = np.asarray(rays_d, np.float64)
    n = len(rays_o)
    rgb = np.zeros((n, 3))
    t = np.full(n, np.inf)
    box = np.full(n, -1)
    # Only rays that enter the object's bounding box can hit one of its boxes.
    bound = BoxObject(obj.lo.min(axis=0, keepdims=True), obj.hi.max(axis=0, keepdims=True),
                      obj.colours[:1])
    candidates = np.flatnonzero(np.isfinite(intersect_boxes(rays_o, rays_d, bound)[0][:, 0]))
    if candidates.size:
        o, d = rays_o[candidates], rays_d[candidates]
        t_hit, axis = intersect_boxes(o, d, obj)
        nearest = t_hit.argmin(axis=-1)
        rows = np.arange(len(candidates))
        t_near = t_hit[rows, nearest]
        hit = np.isfinite(t_near)
        face_axis = axis[rows, nearest]
        normal = np.zeros_like(d)
        normal[rows, face_axis] = -np.sign(d[rows, face_axis])
        shade = AMBIENT + (1.0 - AMBIENT) * np.clip(normal @ LIGHT_DIRECTION, 0.0, None)
        rgb[candidates] = obj.colours[nearest] * shade[:, None] * hit[:, None]
        t[candidates] = t_near
        box[candidates] = np.where(hit, nearest, -1)
    return {"rgb": rgb, "alpha": np.isfinite(t).astype(np.float64), "t": t, "box": box}


def render_views(obj, poses, resolution, camera_angle_x=cameras.NERF_SYNTHETIC_CAMERA_ANGLE_X):
    """RGBA uint8 renders (V, H, W, 4) of `obj` from camera-to-world `poses` (V, 4, 4).

    The rays are exactly those `views_lib.view_rays` gives the task for these poses.
    """
    poses = np.asarray(poses, np.float32)
    rays_o, rays_d = views_lib.view_rays(poses, camera_angle_x, resolution, resolution)
    out = cast_rays(rays_o.numpy().reshape(-1, 3), rays_d.numpy().reshape(-1, 3), obj)
    rgba = np.concatenate([out["rgb"], out["alpha"][:, None]], axis=-1)
    rgba = np.round(np.clip(rgba, 0.0, 1.0) * 255.0).astype(np.uint8)
    return rgba.reshape(len(poses), resolution, resolution, 4)


def generate_object(seed, split_index, index, resolution, num_views=50, radius=4.0,
                    camera_angle_x=cameras.NERF_SYNTHETIC_CAMERA_ANGLE_X):
    """One procedural object and its renders, deterministic in (seed, split_index, index).

    Returns:
        dict "object" (`BoxObject`), "images" uint8 (V, H, W, 4), "poses" float32
        (V, 4, 4), "camera_angle_x" float.
    """
    rng = np.random.default_rng((int(seed), int(split_index), int(index)))
    obj = random_chair(rng)
    poses = cameras.sphere_poses(rng, num_views, radius=radius)
    images = render_views(obj, poses, resolution, camera_angle_x)
    return {"object": obj, "images": images, "poses": poses,
            "camera_angle_x": float(camera_angle_x)}


def write_shapenet_format(root, class_name, objects, splits):
    """Writes objects in the layout of the authors' ShapeNet renders.

    `root/<class_name>/<object_id>/transforms.json` (`camera_angle_x`,
    `frames[].file_path` without extension, `frames[].transform_matrix`) with
    `r_<k>.png` RGBA images, and `root/<class_name minus trailing s>_splits.json`.

    Args:
        root: output directory.
        class_name: e.g. "chairs".
        objects: dict object_id -> dict with "images" (V, H, W, 4) uint8, "poses"
            (V, 4, 4) and "camera_angle_x".
        splits: dict split name ("train", "val", "test") -> list of object ids.
    """
    for object_id, data in objects.items():
        folder = os.path.join(root, class_name, object_id)
        os.makedirs(folder, exist_ok=True)
        frames = []
        for k, (image, pose) in enumerate(zip(data["images"], data["poses"])):
            name = f"r_{k}"
            Image.fromarray(np.asarray(image, np.uint8)).save(os.path.join(folder, name + ".png"))
            frames.append({"file_path": f"./{name}",
                           "transform_matrix": np.asarray(pose, np.float64).tolist()})
        _write_json(os.path.join(folder, "transforms.json"),
                    {"camera_angle_x": float(data["camera_angle_x"]), "frames": frames})
    singular = class_name[:-1] if class_name.endswith("s") else class_name
    _write_json(os.path.join(root, f"{singular}_splits.json"), splits)


def _write_json(path, data):
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(data, f, indent=1)
    os.replace(tmp, path)


# -- TFDS builder and examples ---------------------------------------------------------------


@dataclasses.dataclass
class ProceduralObjectsConfig(ProceduralConfig):
    """Sizes of a `procedural_objects` config (and its objects per split and seed).

    Attributes:
        resolution: views are resolution×resolution.
        num_views: views per object (first `num_support_views` support, rest held out).
        radius: camera distance to the origin (ShapeNet renders: 4).
        camera_angle_x: horizontal field of view (NeRF-synthetic Blender value).
    """

    resolution: int = 128
    num_views: int = 50
    num_support_views: int = 25
    radius: float = 4.0
    camera_angle_x: float = cameras.NERF_SYNTHETIC_CAMERA_ANGLE_X


class ProceduralObjects(ProceduralBuilder):
    """Chair-like box objects rendered from 50 random viewpoints (RGBA)."""

    BUILDER_CONFIGS = [
        ProceduralObjectsConfig(
            name="paper", description="128×128 views like the authors' ShapeNet renders.",
            resolution=128, num_train=1000, num_validation=50, num_test=100),
        ProceduralObjectsConfig(
            name="small", description="32×32 views, a few hundred objects (CPU training).",
            resolution=32, num_train=200, num_validation=10, num_test=20),
        ProceduralObjectsConfig(
            name="tiny", description="16×16 views, a handful of objects (tests, smoke runs).",
            resolution=16, num_train=16, num_validation=2, num_test=4),
    ]
    DEFAULT_CONFIG_NAME = "small"

    def _info(self):  # The multi-view objects' own (shared with shapenet_views).
        return views_lib.object_dataset_info(self, __doc__)

    def _split_generators(self, dl_manager):
        cfg = self.builder_config
        if not 0 < cfg.num_support_views < cfg.num_views:
            raise ValueError(f"procedural_objects config {cfg.name!r}: need 0 < "
                             f"num_support_views < num_views, got {cfg.num_support_views} and "
                             f"{cfg.num_views}.")
        return super()._split_generators(dl_manager)

    def _example_key(self, split, index):
        return f"{split}_{index:05d}"

    def _example(self, split, index):
        cfg = self.builder_config
        data = generate_object(*self.example_seed(split, index), cfg.resolution, cfg.num_views,
                               cfg.radius, cfg.camera_angle_x)
        return {"object_id": self._example_key(split, index), "images": data["images"],
                "poses": data["poses"], "camera_angle_x": np.float32(data["camera_angle_x"])}


def load_builder(config="small", data_dir=None, split=None):
    """The `procedural_objects` builder for `config` (name or config), generated if needed
    (with `split`, the split string to be read: only the splits it names if `config` is
    not generated yet; `prepare_procedural_builder`)."""
    return prepare_procedural_builder(ProceduralObjects, config, data_dir, split=split)


def procedural_objects_examples(split, config="small", views="all", single_view=None,
                                held_out=None, num_held_out_views=None, data_dir=None):
    """`procedural_objects` objects as unbatched `NerfTask` examples (generated on first use).

    Args:
        split: "train", "validation" (or "val") or "test".
        config: "paper" (128×128), "small" (32×32), "tiny" (16×16, tests) or a
            `ProceduralObjectsConfig`.
        views: "all" support views, or "single" (SV meta / single-view test).
        single_view: support view for views="single" (None: one per object by hash).
        held_out: add the held-out views as "test_*" rays (default: all splits but train).
        num_held_out_views: only the first k held-out views.
        data_dir: TFDS data directory.

    Example:

    >>> ds = procedural_objects_examples("test", "tiny", views="single", data_dir="tfds")
    ... # doctest: +ELLIPSIS
    Generating procedural_objects/tiny_test offline into tfds/... (first use only).
    >>> next(iter(ds))["rays_o"].shape  # one 16×16 view
    TensorShape([256, 3])
    """
    builder = load_builder(config, data_dir, split=split)
    split = views_lib.resolve_split(split, builder)
    held_out = split != "train" if held_out is None else bool(held_out)
    records = builder.as_dataset(split=split, shuffle_files=False)
    return views_lib.object_examples(records, builder.builder_config.num_support_views, views,
                                     single_view, held_out, num_held_out_views)

