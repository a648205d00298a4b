"""Registers the 3D-shape kind (signed distance functions, IoU as its metric)."""

from learnit_tf.core.registry import Metric, ReaderOption, SignalKind, register_kind
from learnit_tf.kinds.shape3d import mesh, procedural, task

#: IoU of occupancy on the task's fixed grid (higher is better); steps to reach these.
IOU = Metric(key="iou", label="IoU", unit="", higher_is_better=True,
             levels=(0.5, 0.7, 0.8, 0.9), digits=3)

KIND = register_kind(SignalKind(
    name="shape3d",
    description="3D shapes: point -> signed distance (negative inside), from point samples",
    tasks={"ShapeSdfTask": task.ShapeSdfTask},
    datasets={
        "procedural_shapes_examples": procedural.procedural_shapes_examples,
        "mesh_folder_examples": mesh.mesh_folder_examples,
    },
    folder_dataset="mesh_folder_examples",
    protocol="learnit_tf.kinds.shape3d.evaluation:ShapeProtocol",
    fit_input="learnit_tf.kinds.shape3d.mesh:fit_example",
    default_init="procedural_shapes_siren",
    metric=IOU,
    reader_options=(
        ReaderOption("near_surface_std", "float", None,
                     "3D meshes: standard deviation of the noise added to surface points "
                     "for the near-surface half of the samples, in units of the normalized "
                     "shape (its longest side spans [-0.8, 0.8]); default: the init's class."),
        ReaderOption("sample_seed", "integer", 0,
                     "3D meshes: seed of the point samples drawn from the mesh."),
    ),
))
