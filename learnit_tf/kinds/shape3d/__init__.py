"""The 3D-shape kind: one shape as a signed distance function (MetaSDF's signal).

A SIREN (or Fourier-feature MLP) maps a point of [-1, 1]^3 to the shape's signed
distance, NEGATIVE INSIDE; it is fitted from point samples (half near the surface,
half uniform) with a clamped L1 loss, and scored by the IoU of occupancy on a fixed
grid and the Chamfer distance of its marching-cubes surface. Modules: `sdf` (analytic
primitives, procedural shapes), `sampling` (one shape -> one example), `task`
(`ShapeSdfTask`), `procedural` (the `procedural_shapes` TFDS builder), `mesh` (a
user's OBJ/STL/PLY/OFF meshes via trimesh), `metrics` (IoU, Chamfer, marching
cubes), `render` (pictures), `evaluation` (the protocol), `kind` (registration).
"""

from learnit_tf.kinds.shape3d.procedural import ProceduralShapes, procedural_shapes_examples
from learnit_tf.kinds.shape3d.task import ShapeSdfTask, occupancy_iou

__all__ = ["ShapeSdfTask", "occupancy_iou", "ProceduralShapes", "procedural_shapes_examples"]
