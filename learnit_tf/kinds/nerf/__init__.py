"""NeRF view synthesis: cameras, volume rendering, the NeRF task and 3D signal classes.

PAPER.md, "View synthesis": a NeRF MLP is meta-learned (Reptile) over a class of
objects (ShapeNet chairs, cars, lamps; here also the offline `procedural_objects`)
or over photos of one landmark (Phototourism), so that a few gradient steps on the
rays of one view recover the object from new viewpoints.

Modules: `cameras` (rays, poses, projection), `rendering` (stratified sampling,
compositing, chunked rendering), `task` (`NerfTask`), `procedural`
(`procedural_objects`), `shapenet` (`shapenet_views`), `phototourism`, `views`
(object records -> examples), `evaluation` (single-view protocol), `video`
(turntables, appearance interpolation), `sources` (dataset/init helpers for scripts).
"""

from learnit_tf.kinds.nerf import cameras, rendering, video
from learnit_tf.kinds.nerf.evaluation import (InitSpec, evaluate_inits, held_out_psnr,
                                              single_view_protocol)
from learnit_tf.kinds.nerf.phototourism import Phototourism, PhototourismConfig, phototourism_examples
from learnit_tf.kinds.nerf.procedural import (ProceduralObjects, ProceduralObjectsConfig,
                                        procedural_objects_examples)
from learnit_tf.kinds.nerf.rendering import (RayRenderer, composite, render_rays, render_rays_chunked,
                                       stratified_samples)
from learnit_tf.kinds.nerf.shapenet import ShapenetViews, ShapenetViewsConfig, shapenet_examples
from learnit_tf.kinds.nerf.task import NerfTask

__all__ = [
    "cameras", "rendering", "video", "NerfTask", "RayRenderer", "composite", "render_rays",
    "render_rays_chunked", "stratified_samples", "ProceduralObjects", "ProceduralObjectsConfig",
    "procedural_objects_examples", "ShapenetViews", "ShapenetViewsConfig", "shapenet_examples",
    "Phototourism", "PhototourismConfig", "phototourism_examples", "InitSpec", "evaluate_inits", "held_out_psnr", "single_view_protocol",
]
