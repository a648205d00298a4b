"""The kind's metrics outside the compiled fit: marching cubes, Chamfer distance, grid IoU.

- Surface of a network (or any SDF on the fixed grid): marching cubes
  (`skimage.measure.marching_cubes`) at level 0 of the signed distances on
  `sampling.grid_coords(G)`, vertices mapped back to [-1, 1]^3.
- Chamfer distance between two surfaces given as point sets A and B: the mean over A
  of the distance to the nearest point of B plus the mean over B of the distance to
  the nearest point of A (Euclidean distances, not squared; in units of the
  normalized shape, whose longest side spans 1.6). Two concentric spheres of radii
  r < R are 2 (R - r) apart. The predicted surface is sampled area-uniformly with as
  many points as the true surface's samples, with a fixed seed.
- IoU of occupancy: `task.occupancy_iou` on the same grid (numpy here).

Example:

>>> import numpy as np
>>> a = np.array([[0.0, 0.0, 0.0]]); b = np.array([[0.0, 0.0, 0.5], [0.0, 0.0, 1.0]])
>>> round(chamfer_distance(a, b), 3)  # 0.5 (A to B) + (0.5 + 1.0) / 2 (B to A)
1.25
"""

import numpy as np

from learnit_tf.kinds.shape3d.sampling import grid_coords


def grid_iou(predicted_sdf, true_sdf):
    """IoU of the occupancies (sdf < 0) of two signed distance arrays (1.0 if both empty)."""
    a, b = np.asarray(predicted_sdf) < 0, np.asarray(true_sdf) < 0
    union = np.logical_or(a, b).sum()
    return 1.0 if union == 0 else float(np.logical_and(a, b).sum() / union)


def marching_cubes_surface(grid_sdf, resolution):
    """(vertices (V, 3) in [-1, 1]^3, faces (F, 3)) of the zero level set of `grid_sdf`
    (G^3 values on `grid_coords(G)`), or None when it has no surface (all one sign).

    Faces are oriented so their normals point outward (to positive distances).
    """
    from skimage import measure  # pylint: disable=import-outside-toplevel
    volume = np.array(grid_sdf, np.float32).reshape((resolution,) * 3)  # A writable copy.
    if not (volume.min() < 0 < volume.max()):
        return None
    spacing = 2.0 / (resolution - 1)
    vertices, faces, _, _ = measure.marching_cubes(volume, level=0.0,
                                                   spacing=(spacing,) * 3)
    # skimage orients faces toward increasing values: outward for negative-inside SDFs,
    # as trimesh expects (its normals point outward when its volume is positive).
    return vertices - 1.0, faces


def sample_mesh_surface(vertices, faces, count, seed=0):
    """`count` area-uniform points on a triangle mesh, float64 (count, 3)."""
    triangles = np.asarray(vertices, np.float64)[np.asarray(faces)]
    areas = 0.5 * np.linalg.norm(np.cross(triangles[:, 1] - triangles[:, 0],
                                          triangles[:, 2] - triangles[:, 0]), axis=-1)
    rng = np.random.RandomState(seed)
    chosen = rng.choice(len(triangles), size=int(count), p=areas / areas.sum())
    u, v = rng.uniform(size=(2, int(count), 1))
    flip = (u + v) > 1
    u, v = np.where(flip, 1 - u, u), np.where(flip, 1 - v, v)
    t = triangles[chosen]
    return t[:, 0] + u * (t[:, 1] - t[:, 0]) + v * (t[:, 2] - t[:, 0])


def chamfer_distance(points_a, points_b):
    """Symmetric Chamfer distance of two point sets (see the module docstring)."""
    from scipy.spatial import cKDTree  # pylint: disable=import-outside-toplevel
    a, b = np.asarray(points_a, np.float64), np.asarray(points_b, np.float64)
    a_to_b = cKDTree(b).query(a)[0].mean()
    b_to_a = cKDTree(a).query(b)[0].mean()
    return float(a_to_b + b_to_a)


def surface_chamfer(grid_sdf, resolution, true_surface, seed=0):
    """Chamfer distance between the marching-cubes surface of `grid_sdf` and the true
    surface points, or NaN when the prediction has no surface."""
    mesh = marching_cubes_surface(grid_sdf, resolution)
    if mesh is None:
        return float("nan")
    predicted = sample_mesh_surface(*mesh, count=len(true_surface), seed=seed)
    return chamfer_distance(predicted, true_surface)


def network_grid_sdf(fmodel, weights, resolution, batch=32768):
    """The network's signed distances on `grid_coords(resolution)`, float32 (G^3,)."""
    import tensorflow as tf  # pylint: disable=import-outside-toplevel
    coords = grid_coords(resolution)
    out = [fmodel(weights, tf.constant(coords[i:i + batch]))[:, 0].numpy()
           for i in range(0, len(coords), batch)]
    return np.concatenate(out).astype(np.float32)
