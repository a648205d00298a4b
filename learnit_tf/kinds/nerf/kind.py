"""Registers the NeRF view-synthesis kind."""

from learnit_tf.kinds.nerf import files, model, phototourism, procedural, shapenet, task
from learnit_tf.core.registry import ReaderOption, SignalKind, register_kind

KIND = register_kind(SignalKind(
    name="nerf",
    description="view synthesis: 3D points -> colour and density, volume rendering of rays",
    tasks={"NerfTask": task.NerfTask},
    datasets={
        "procedural_objects_examples": procedural.procedural_objects_examples,
        "shapenet_examples": shapenet.shapenet_examples,
        "phototourism_examples": phototourism.phototourism_examples,
        "nerf_folder_examples": files.nerf_folder_examples,
    },
    folder_dataset="nerf_folder_examples",
    protocol="learnit_tf.kinds.nerf.evaluation:NerfProtocol",
    fit_input="learnit_tf.kinds.nerf.files:fit_example",
    default_init="procedural_chairs_nerf",
    models={"NerfMLP": model.NerfMLP},
    # Installed as the console command learnit-render (setup.py; scripts/render.py).
    commands={"render": "learnit_tf.kinds.nerf.render:main"},
    reader_options=(
        ReaderOption("num_support_views", "integer", None,
                     "Fit on the first S views, PSNR on the rest (default: fit on "
                     "every view)"),
        ReaderOption("seed", "integer", None,
                     "Seed of the random ray batches of the fit (default 0)"),
    ),
))
