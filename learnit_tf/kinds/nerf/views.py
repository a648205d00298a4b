"""Multi-view object records (the authors' ShapeNet render format) and their task examples.

An object record holds V RGBA views of one object with their camera-to-world
matrices and the shared horizontal field of view. On disk (the authors' renders and
`procedural.write_shapenet_format`) an object is a folder with `transforms.json`
(NeRF-synthetic: `camera_angle_x`, `frames[].file_path`, `frames[].transform_matrix`)
and one PNG per frame. In TFDS (`shapenet_views`, `procedural_objects`) a record is
`{"object_id", "images" (V, H, W, 4) uint8, "poses" (V, 4, 4), "camera_angle_x"}`.

`object_examples` turns records into `NerfTask` examples (see
`learnit_tf.kinds.nerf.task`): the first `num_support_views` views are the support
(observed) views, the rest are held out (PAPER.md: views 0–24 support, 25–49 held out).
"""

import json
import os

import numpy as np
import tensorflow as tf
import tensorflow_datasets as tfds

from learnit_tf.data.procedural_builders import PAPER_CITATION, PAPER_HOMEPAGE
from learnit_tf.data.files import read_image
from learnit_tf.kinds.nerf import cameras
from learnit_tf.kinds.nerf import poses as poses_lib

VIEW_MODES = ("all", "single")


def object_features(num_views, resolution):
    """TFDS features of an object record."""
    return tfds.features.FeaturesDict({
        "object_id": tfds.features.Text(),
        "images": tfds.features.Sequence(
            tfds.features.Image(shape=(resolution, resolution, 4)), length=num_views),
        "poses": tfds.features.Tensor(shape=(num_views, 4, 4), dtype=np.float32),
        "camera_angle_x": tfds.features.Scalar(dtype=np.float32),
    })


def object_dataset_info(builder, description):
    """`DatasetInfo` of a multi-view object builder (procedural_objects, shapenet_views).

    Records the near/far planes of the authors' ShapeNet renders (2, 6) and the
    config's number of support views in the dataset metadata.
    """
    cfg = builder.builder_config
    return builder.dataset_info_from_configs(
        description=description,
        features=object_features(cfg.num_views, cfg.resolution),
        supervised_keys=None,
        homepage=PAPER_HOMEPAGE,
        metadata=tfds.core.MetadataDict(near=2.0, far=6.0,
                                        num_support_views=cfg.num_support_views),
        citation=PAPER_CITATION,
    )


def read_transforms(folder, scene_bounds=(2.0, 6.0)):
    """Parses and validates an object folder in the NeRF-synthetic format.

    Args:
        folder: directory with `transforms.json` and the frames' PNG files.
        scene_bounds: the task's (near, far): every camera centre must lie at a distance
            in [near, far] from the origin (`learnit_tf.kinds.nerf.poses.check_pose`;
            None: no distance check). Default: the ShapeNet renders' (2, 6).

    Returns:
        (camera_angle_x: float, image paths: list of str, poses: float32 (V, 4, 4)).

    Raises:
        FileNotFoundError: no transforms.json, or a frame's image is missing
            (images and poses disagree in count).
        ValueError: invalid JSON, no `camera_angle_x`, no frames, or a
            `transform_matrix` that is not a camera pose (`poses.check_pose`: finite,
            rotation with det +1, within the scene bounds) — the message names the file
            and the frame.
    """
    path = os.path.join(folder, "transforms.json")
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{path} not found: every object folder needs a transforms.json "
                                "(NeRF-synthetic format).")
    try:
        with open(path) as f:
            meta = json.load(f)
    except json.JSONDecodeError as e:
        raise ValueError(f"{path} is not valid JSON: {e}") from e
    if not isinstance(meta, dict) or "camera_angle_x" not in meta:
        raise ValueError(f"{path} has no 'camera_angle_x' (the horizontal field of view in "
                         "radians of the NeRF-synthetic format).")
    try:
        camera_angle_x = float(meta["camera_angle_x"])
    except (TypeError, ValueError) as e:
        raise ValueError(f"{path}: 'camera_angle_x' must be a number, got "
                         f"{meta['camera_angle_x']!r}.") from e
    if not 0.0 < camera_angle_x < np.pi:
        raise ValueError(f"{path}: 'camera_angle_x' must be in (0, pi) radians, got "
                         f"{camera_angle_x}.")
    frames = meta.get("frames")
    if not isinstance(frames, list) or not frames:
        raise ValueError(f"{path} has no 'frames' list.")
    image_paths, poses = [], []
    for k, frame in enumerate(frames):
        if not isinstance(frame, dict) or "file_path" not in frame or \
                "transform_matrix" not in frame:
            raise ValueError(f"{path}: frame {k} needs 'file_path' and 'transform_matrix'.")
        pose = poses_lib.check_pose(frame["transform_matrix"],
                                    f"{path}: frame {k} 'transform_matrix'", scene_bounds)
        # The authors' loader uses the base name of file_path plus ".png".
        name = os.path.basename(str(frame["file_path"]))
        if not name.lower().endswith(".png"):
            name += ".png"
        image_paths.append(os.path.join(folder, name))
        poses.append(pose)
    missing = [p for p in image_paths if not os.path.isfile(p)]
    if missing:
        raise FileNotFoundError(
            f"{path} lists {len(image_paths)} frames but {len(missing)} of their images are "
            f"missing, so images and poses disagree in count (first missing: {missing[0]}).")
    return camera_angle_x, image_paths, np.stack(poses).astype(np.float32)


def load_rgba(path, resolution=None):
    """Reads an image as RGBA uint8 (H, W, 4) (alpha 255 if the file has none).

    Decoded by `learnit_tf.data.files.read_image` (any mode and bit depth; a
    ValueError naming the file for unreadable, unsupported or oversized images). The
    stored pixel grid is kept (EXIF orientation is not applied): camera poses from
    COLMAP, which ignores EXIF orientation, refer to it.
    """
    pixels = read_image(path, orient=False)
    colour, alpha = (pixels[..., :-1], pixels[..., -1:]) if pixels.shape[-1] in (2, 4) else (
        pixels, np.ones_like(pixels[..., :1]))
    if colour.shape[-1] == 1:
        colour = np.repeat(colour, 3, axis=-1)
    rgba = np.round(np.concatenate([colour, alpha], axis=-1) * 255.0).astype(np.uint8)
    if resolution is not None and rgba.shape[:2] != (resolution, resolution):
        raise ValueError(f"Image {path} is {rgba.shape[1]}×{rgba.shape[0]}; expected "
                         f"{resolution}×{resolution}.")
    return rgba


def composite_on_white(images):
    """uint8 RGBA (..., 4) -> float32 RGB in [0, 1], composited on white (as the authors)."""
    x = tf.cast(images, tf.float32) / 255.0
    return x[..., :3] * x[..., 3:] + (1.0 - x[..., 3:])


def view_rays(poses, camera_angle_x, height, width):
    """Rays of every pixel of V views: (rays_o, rays_d), each float32 (V, H, W, 3)."""
    focal = cameras.focal_from_camera_angle_x(width, camera_angle_x)
    directions = cameras.camera_directions(height, width, focal)
    poses = tf.convert_to_tensor(poses, tf.float32)
    rays_d = tf.einsum("vij,hwj->vhwi", poses[:, :3, :3], directions)
    shape = rays_d.shape if rays_d.shape.is_fully_defined() else tf.shape(rays_d)
    rays_o = tf.broadcast_to(poses[:, None, None, :3, 3], shape)
    return rays_o, rays_d


def record_to_example(record, num_support_views, views="all", single_view=None,
                      held_out=True, num_held_out_views=None):
    """One object record (dict of tensors) -> a `NerfTask` example.

    Args:
        record: {"object_id", "images" (V, H, W, 4) uint8, "poses" (V, 4, 4),
            "camera_angle_x"} with static V, H, W.
        num_support_views: views [0, S) are support views, [S, V) held out.
        views: "all" (every support view) or "single" (one support view: SV meta
            training and the single-view test protocol).
        single_view: the support view used when views="single"; None picks one per
            object deterministically from a hash of its id.
        held_out: add the held-out views as "test_*" rays.
        num_held_out_views: use only the first k held-out views (cheaper evaluation).
    """
    images, poses = record["images"], record["poses"]
    num_views, height, width = (int(d) for d in images.shape[:3])
    s = int(num_support_views)
    if views == "all":
        support = tf.range(s)
    elif views == "single":
        if single_view is None:
            view = tf.cast(tf.strings.to_hash_bucket_fast(record["object_id"], s), tf.int32)
        else:
            view = tf.constant(int(single_view) % s, tf.int32)
        support = view[None]
    else:
        raise ValueError(f"views must be one of {VIEW_MODES}, got {views!r}.")
    rgb = composite_on_white(images)
    rays_o, rays_d = view_rays(poses, record["camera_angle_x"], height, width)

    def flat(x, idx, count):
        return tf.reshape(tf.gather(x, idx), (count * height * width, 3))

    n_support = 1 if views == "single" else s
    example = {"rays_o": flat(rays_o, support, n_support),
               "rays_d": flat(rays_d, support, n_support),
               "rgb": flat(rgb, support, n_support)}
    if held_out:
        n_test = num_views - s if num_held_out_views is None else min(
            int(num_held_out_views), num_views - s)
        test = tf.range(s, s + n_test)
        example.update({"test_rays_o": flat(rays_o, test, n_test),
                        "test_rays_d": flat(rays_d, test, n_test),
                        "test_rgb": flat(rgb, test, n_test),
                        "test_shape": tf.constant([n_test, height, width], tf.int32)})
    return example


def object_examples(records, num_support_views, views="all", single_view=None, held_out=True,
                    num_held_out_views=None):
    """Maps a tf.data of object records to unbatched `NerfTask` examples."""
    if views not in VIEW_MODES:
        raise ValueError(f"views must be one of {VIEW_MODES}, got {views!r}.")
    if num_held_out_views is not None and int(num_held_out_views) < 1:
        raise ValueError(f"num_held_out_views must be >= 1, got {num_held_out_views}.")
    return records.map(
        lambda r: record_to_example(r, num_support_views, views, single_view, held_out,
                                    num_held_out_views),
        num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)


def resolve_split(split, builder):
    """The TFDS split name for `split` ("val" means "validation"), validated against a builder."""
    name = {"val": "validation", "valid": "validation"}.get(split, split)
    if name not in builder.info.splits:
        raise ValueError(f"Unknown split {split!r} for {builder.name}; expected one of "
                         f"{sorted(builder.info.splits)}.")
    return name
