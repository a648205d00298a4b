"""A user's own posed views (the ShapeNet / NeRF-synthetic layout): fit one object, or train.

One object is a folder with `transforms.json` (`camera_angle_x`, `frames[].file_path`,
`frames[].transform_matrix`, camera-to-world, NeRF-synthetic axes) and one PNG per
frame (RGBA composited on white, or RGB), as the authors' ShapeNet renders and
`learnit_tf.kinds.nerf.procedural.write_shapenet_format` write it (parsed by
`views.read_transforms`). A folder of objects has one such subfolder per object;
its splits are `train/` and `test/` (optionally `validation/`) subfolders of objects
when present, else a hash of the object folder names (as image folders,
`learnit_tf.data.files.split_entries`).
"""

import os

import numpy as np
import tensorflow as tf

from learnit_tf.core.fit_input import FitInput
from learnit_tf.data import files as image_files
from learnit_tf.kinds.nerf import views as views_lib
from learnit_tf.kinds.nerf.rendering import render_rays_chunked
from learnit_tf.kinds.nerf.task import NerfTask


def read_object(folder, resolution=None, scene_bounds=(2.0, 6.0)):
    """One posed-views folder as an object record (numpy).

    Args:
        folder: directory with `transforms.json` and its frames' images (or the path of
            the transforms.json itself).
        resolution: if set, every view must be resolution×resolution.
        scene_bounds: the task's (near, far) the camera centres must lie within (see
            `learnit_tf.kinds.nerf.poses`).

    Returns:
        {"object_id": str, "images": uint8 (V, H, W, 4), "poses": float32 (V, 4, 4),
        "camera_angle_x": float32}.

    Raises:
        ValueError naming the file: no or invalid transforms.json, a frame whose pose is
        not a camera pose within the scene bounds (naming the frame), missing or
        unreadable images, views of different sizes.
    """
    folder = os.fspath(folder)
    if os.path.basename(folder) == "transforms.json" and os.path.isfile(folder):
        folder = os.path.dirname(folder) or "."
    if not os.path.isdir(folder):
        raise ValueError(f"Posed-views folder {folder!r} does not exist or is not a directory.")
    try:
        camera_angle_x, paths, poses = views_lib.read_transforms(folder, scene_bounds)
    except FileNotFoundError as e:
        objects = [d for d in sorted(os.listdir(folder))
                   if os.path.isfile(os.path.join(folder, d, "transforms.json"))]
        hint = (f" It holds object folders ({', '.join(objects[:3])}...): pass one of them."
                if objects else "")
        raise ValueError(f"{e}{hint}") from e
    images = [views_lib.load_rgba(p, resolution) for p in paths]
    first = images[0].shape
    for path, image in zip(paths, images):
        if image.shape != first:
            raise ValueError(f"View {path} is {image.shape[1]}×{image.shape[0]} but "
                             f"{paths[0]} is {first[1]}×{first[0]}; every view of an object "
                             "must have the same size.")
    return {"object_id": os.path.basename(os.path.normpath(folder)),
            "images": np.stack(images), "poses": poses,
            "camera_angle_x": np.float32(camera_angle_x)}


def _support_count(num_views, num_support_views, where):
    if num_support_views is None:
        return num_views
    s = int(num_support_views)
    if not 1 <= s <= num_views:
        raise ValueError(f"{where} has {num_views} views; num_support_views must be in "
                         f"[1, {num_views}], got {num_support_views}.")
    return s


def fit_example(path, task, num_support_views=None, seed=0):
    """`scripts/fit.py --input=VIEWS_DIR` for a NeRF init: a `FitInput` on the given views.

    Args:
        path: a posed-views folder (see the module docstring).
        task: the init's `NerfTask`.
        num_support_views: fit on the first S views and score PSNR on the rest
            (default: fit on every view, PSNR on them).
        seed: seed of the random ray batches.
    """
    if not isinstance(task, NerfTask):
        raise ValueError(f"posed-view inputs need a NerfTask init, got {type(task).__name__}.")
    record = read_object(path, scene_bounds=(task.near, task.far))
    num_views, height, width = record["images"].shape[:3]
    s = _support_count(num_views, num_support_views, f"Posed-views folder {path!r}")
    tensors = {k: tf.constant(v) for k, v in record.items()}
    example = views_lib.record_to_example(tensors, s, views="all", held_out=s < num_views)
    example = {k: v.numpy() for k, v in example.items()}
    example["seed"] = np.array([int(seed), 0], np.int32)
    rgb = views_lib.composite_on_white(record["images"][:1]).numpy()[0]
    rays_o, rays_d = (r[0].numpy().reshape(-1, 3) for r in views_lib.view_rays(
        record["poses"][:1], record["camera_angle_x"], height, width))

    def render_first_view(fmodel, weights):
        out = render_rays_chunked(fmodel, weights, rays_o, rays_d, task.near, task.far,
                                  task.eval_num_samples, task.chunk, task.white_background,
                                  outputs=("rgb",))
        return np.clip(out["rgb"].numpy().reshape(height, width, 3), 0.0, 1.0)

    held = f", PSNR on {num_views - s} held-out" if s < num_views else ""
    return FitInput(task, example, observed=[("view 0", rgb)], render=render_first_view,
                    description=f"{s} of {num_views} {width}×{height} views{held}")


def list_object_folders(directory):
    """Sorted object subfolders (each with a transforms.json) directly inside `directory`."""
    if not os.path.isdir(directory):
        raise ValueError(f"Folder {directory!r} does not exist or is not a directory.")
    folders = sorted(os.path.join(directory, d) for d in os.listdir(directory)
                     if not d.startswith(".")
                     and os.path.isfile(os.path.join(directory, d, "transforms.json")))
    if not folders:
        raise ValueError(f"Folder {directory!r} holds no object folders (subfolders with a "
                         "transforms.json and their views, the ShapeNet / NeRF-synthetic "
                         "layout).")
    return folders


def nerf_folder_examples(directory, split="train", num_support_views=None, views="all",
                         single_view=None, held_out=None, num_held_out_views=None,
                         resolution=None, test_fraction=0.1, near=2.0, far=6.0):
    """Unbatched `NerfTask` examples from a folder of posed-view objects (ShapeNet layout).

    Args:
        directory: one subfolder per object (transforms.json + views), or `train/` and
            `test/` (optionally `validation/`) subfolders of such objects.
        split: "train", "validation" or "test".
        num_support_views: views [0, S) of every object are support, the rest held out
            (default: half the views, as the authors' 25 of 50).
        views: "all" support views or "single" (SV meta, single-view test).
        single_view: the support view for views="single" (None: one per object by hash).
        held_out: add held-out views as "test_*" rays (default: all splits but train).
        num_held_out_views: only the first k held-out views.
        resolution: if set, every view must be resolution×resolution.
        test_fraction: share of objects in the test split (folders without subfolders).
        near, far: the task's bounds; every camera centre must be at a distance in
            [near, far] from the origin (`learnit_tf.kinds.nerf.poses`).

    Raises:
        ValueError naming the folder or file: missing/empty folder or split, bad
        transforms.json, missing or unreadable views, objects that differ in number
        or size of views, fewer than 2 views per object.
    """
    folders = image_files.split_entries(directory, split, list_object_folders, test_fraction,
                                        "object folders")
    records = [read_object(f, resolution, (near, far)) for f in folders]
    shape = records[0]["images"].shape
    for folder, record in zip(folders, records):
        if record["images"].shape != shape:
            raise ValueError(f"Object {folder!r} has views of shape {record['images'].shape[:3]}"
                             f" (views, height, width) but {folders[0]!r} has {shape[:3]}; "
                             "every object of a folder needs the same number and size of views.")
    num_views = shape[0]
    if num_views < 2:
        raise ValueError(f"Objects in {directory!r} have {num_views} view; expected at least "
                         "2 (support and held-out views).")
    s = num_views // 2 if num_support_views is None else _support_count(
        num_views, num_support_views, f"Object {folders[0]!r}")
    if s >= num_views:
        raise ValueError(f"num_support_views={s} leaves no held-out view of the {num_views}.")
    held_out = split != "train" if held_out is None else bool(held_out)
    stacked = {key: np.stack([r[key] for r in records]) for key in records[0]}
    dataset = tf.data.Dataset.from_tensor_slices(stacked)
    return views_lib.object_examples(dataset, s, views, single_view, held_out,
                                     num_held_out_views)
