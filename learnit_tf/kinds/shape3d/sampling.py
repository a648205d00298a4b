"""One shape as a training example: point samples with signed distances, a grid, a surface.

Every shape, procedural or a user's mesh, becomes the same example (static shapes,
float32), from a signed distance function (negative inside) and points on its surface:

- "points" (num_points, 3): the first half near the surface (surface points plus
  Gaussian noise of standard deviation `near_surface_std`, DeepSDF's sampling), the
  rest uniform in [-1, 1]^3;
- "sdf" (num_points,): their signed distances;
- "grid_sdf" (G^3,): signed distances at `grid_coords(G)`, for the IoU of occupancy
  and the target's surface picture;
- "surface" (num_surface, 3): points on the true surface, for the Chamfer distance.

Example:

>>> grid_coords(2).tolist()
[[-1.0, -1.0, -1.0], [-1.0, -1.0, 1.0], [-1.0, 1.0, -1.0], [-1.0, 1.0, 1.0], [1.0, -1.0, -1.0], [1.0, -1.0, 1.0], [1.0, 1.0, -1.0], [1.0, 1.0, 1.0]]
"""

import numpy as np


def grid_coords(resolution):
    """The fixed grid of the kind: `linspace(-1, 1, G)` per axis, float32 (G^3, 3), x
    slowest (C order: index (i, j, k) -> i * G^2 + j * G + k)."""
    axis = np.linspace(-1.0, 1.0, int(resolution))
    return np.stack(np.meshgrid(axis, axis, axis, indexing="ij"), -1).reshape(-1, 3).astype(
        np.float32)


def sample_example(sdf_fn, surface, rng, num_points, near_surface_std, grid_resolution,
                   num_surface):
    """The example of one shape (see the module docstring).

    Args:
        sdf_fn: callable((N, 3) float64) -> (N,) signed distances, negative inside.
        surface: (S, 3) points on the shape's surface (S >= 1).
        rng: numpy RandomState.
        num_points: samples in "points" (half near the surface, half uniform).
        near_surface_std: standard deviation of the near-surface noise.
        grid_resolution: G of "grid_sdf".
        num_surface: points in "surface" (drawn from `surface`, with repeats if fewer).
    """
    surface = np.asarray(surface, np.float64)
    num_near = int(num_points) // 2
    near = surface[rng.randint(len(surface), size=num_near)]
    near = near + rng.normal(scale=near_surface_std, size=near.shape)
    uniform = rng.uniform(-1.0, 1.0, size=(int(num_points) - num_near, 3))
    points = np.clip(np.concatenate([near, uniform]), -1.0, 1.0)
    chosen = rng.choice(len(surface), size=int(num_surface), replace=len(surface) < num_surface)
    return {
        "points": points.astype(np.float32),
        "sdf": np.asarray(sdf_fn(points), np.float32),
        "grid_sdf": np.asarray(sdf_fn(grid_coords(grid_resolution).astype(np.float64)),
                               np.float32),
        "surface": surface[chosen].astype(np.float32),
    }
