"""Dataset and init helpers of the NeRF kind (its evaluation protocol, render.py, video)."""

from learnit_tf.meta import init_io
from learnit_tf.kinds.nerf import phototourism, procedural, shapenet
from learnit_tf.kinds.nerf import views as views_lib
from learnit_tf.kinds.nerf.task import NerfTask
from learnit_tf.core.metadata import DatasetSpec, as_init_metadata

DATASETS = ("procedural_objects", "shapenet", "phototourism")


def object_builder(dataset, config="small", class_name="chairs", manual_dir=None,
                   data_dir=None):
    """The prepared TFDS builder of an object dataset ("procedural_objects" or "shapenet")."""
    if dataset == "procedural_objects":
        return procedural.load_builder(config, data_dir)
    if dataset == "shapenet":
        return shapenet.load_builder(class_name, manual_dir, data_dir)
    raise ValueError(f"Object dataset must be 'procedural_objects' or 'shapenet', got "
                     f"{dataset!r}.")


def object_record(builder, split, index):
    """Record `index` (in TFDS order) of a split of an object dataset, as eager tensors."""
    split = views_lib.resolve_split(split, builder)
    num = builder.info.splits[split].num_examples
    if not 0 <= int(index) < num:
        raise ValueError(f"Object index {index} out of range: split {split!r} of "
                         f"{builder.name} has {num} objects.")
    return next(iter(builder.as_dataset(split=split, shuffle_files=False).skip(int(index))))


def photo_record(builder, image_index):
    """The record of image `image_index` (its index in the landmark) of a phototourism builder."""
    for split in ("test", "validation", "train"):
        for record in builder.as_dataset(split=split, shuffle_files=False):
            if int(record["index"]) == int(image_index):
                return record
    raise ValueError(f"Image index {image_index} not found in {builder.name}/"
                     f"{builder.builder_config.name}.")


def test_examples(dataset, split="test", config="small", class_name="chairs", manual_dir=None,
                  landmark="sacre", data_dir=None, single_view=None, num_held_out_views=None,
                  downsample=1):
    """Examples of the paper's test protocol: one support view (objects) or left half (photos).

    Returns:
        (unbatched tf.data of examples with held-out "test_*" rays, default near, far).
    """
    if dataset == "procedural_objects":
        ds = procedural.procedural_objects_examples(
            split, config=config, views="single", single_view=single_view, held_out=True,
            num_held_out_views=num_held_out_views, data_dir=data_dir)
        return ds, 2.0, 6.0
    if dataset == "shapenet":
        ds = shapenet.shapenet_examples(
            split, class_name=class_name, manual_dir=manual_dir, views="single",
            single_view=single_view, held_out=True, num_held_out_views=num_held_out_views,
            data_dir=data_dir)
        return ds, 2.0, 6.0
    if dataset == "phototourism":
        ds = phototourism.phototourism_examples(
            split, landmark=landmark, manual_dir=manual_dir, protocol="half",
            downsample=downsample, data_dir=data_dir)
        return ds, None, None
    raise ValueError(f"dataset must be one of {DATASETS}, got {dataset!r}.")


def task_from_init(init_dir, **overrides):
    """A `NerfTask` with the settings recorded in an init's metadata, then `overrides`."""
    try:
        return task_from_metadata(init_io.read_metadata(init_dir), **overrides)
    except ValueError as e:
        raise ValueError(f"Init {init_dir}: {e}") from e


def task_from_metadata(metadata, **overrides):
    """A `NerfTask` with the settings recorded in init metadata, then `overrides`.

    Unknown or missing metadata falls back to NerfTask defaults (the paper's values);
    overrides that are None are ignored.
    """
    task = metadata.get("task") or {}
    if task.get("class_name", "NerfTask") != "NerfTask":
        raise ValueError(f"the init was trained for {task['class_name']}, not NerfTask; it is "
                         "not a NeRF init.")
    config = dict(task.get("config") or {})
    allowed = set(NerfTask().get_config())
    config = {k: v for k, v in config.items() if k in allowed}
    config.update({k: v for k, v in overrides.items() if v is not None})
    return NerfTask(**config)


DATASET_FUNCTIONS = {"procedural_objects_examples": "procedural_objects",
                     "shapenet_examples": "shapenet", "phototourism_examples": "phototourism"}


def dataset_from_metadata(metadata):
    """(dataset name in `DATASETS`, the recorded dataset bindings) of an init's training data.

    Inits whose metadata names no known NeRF dataset default to ("procedural_objects", {}).
    """
    spec = as_init_metadata(metadata).dataset or DatasetSpec()
    return DATASET_FUNCTIONS.get(spec.function, "procedural_objects"), dict(spec.bindings)
