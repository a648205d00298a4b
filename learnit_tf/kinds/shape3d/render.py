"""Pictures of 3D shapes: a shaded view of a surface, float (H, W, 3) in [0, 1].

A surface (a mesh, or the marching-cubes surface of an SDF on the grid) is drawn by
splatting dense area-uniform surface points with their face normals into an
orthographic view from a fixed direction (azimuth 35°, elevation 25°, the same for
every picture so target and fits compare), keeping the nearest point per pixel, and
Lambert-shading it (light from the viewer's upper left). White where there is no
surface. numpy only: no OpenGL, no display.

`surface_outputs` is the 3D kind's `FitInput.extra_outputs`: the fitted network's
surface as a PLY mesh and its picture.
"""

import io

import numpy as np

from learnit_tf.kinds.shape3d.metrics import marching_cubes_surface, network_grid_sdf

#: Marching-cubes grid of pictures and meshes of fitted networks.
SURFACE_RESOLUTION = 64
_LIGHT = np.array([-0.4, 0.5, 0.77])
_COLOR = np.array([0.55, 0.68, 0.85])


def _view_rotation(azimuth=35.0, elevation=25.0):
    a, e = np.radians(azimuth), np.radians(elevation)
    rz = np.array([[np.cos(a), -np.sin(a), 0], [np.sin(a), np.cos(a), 0], [0, 0, 1]])
    rx = np.array([[1, 0, 0], [0, np.cos(e), -np.sin(e)], [0, np.sin(e), np.cos(e)]])
    # World z is up; the view looks along -z' after turning z up into y'.
    up = np.array([[1, 0, 0], [0, 0, 1], [0, -1, 0]])
    return rx @ up @ rz


def render_mesh(vertices, faces, size=128, points_per_pixel=6, seed=0):
    """A shaded orthographic view of a triangle mesh in [-1, 1]^3, float32 (size, size, 3)."""
    image = np.ones((size, size, 3), np.float32)
    vertices, faces = np.asarray(vertices, np.float64), np.asarray(faces)
    if len(faces) == 0:
        return image
    triangles = vertices[faces]
    normals = np.cross(triangles[:, 1] - triangles[:, 0], triangles[:, 2] - triangles[:, 0])
    areas = np.linalg.norm(normals, axis=-1)
    keep = areas > 0
    triangles, normals, areas = triangles[keep], normals[keep] / areas[keep, None], areas[keep]
    if not len(areas):
        return image
    rng = np.random.RandomState(seed)
    count = size * size * points_per_pixel
    chosen = rng.choice(len(areas), size=count, p=areas / areas.sum())
    u, v = rng.uniform(size=(2, count, 1))
    flip = (u + v) > 1
    u, v = np.where(flip, 1 - u, u), np.where(flip, 1 - v, v)
    t = triangles[chosen]
    points = t[:, 0] + u * (t[:, 1] - t[:, 0]) + v * (t[:, 2] - t[:, 0])
    rotation = _view_rotation()
    view, view_normals = points @ rotation.T, normals[chosen] @ rotation.T
    # Pixels cover [-1.1, 1.1] so a normalized shape (within ±0.8·√3 after turning) fits.
    half = 1.25
    col = np.clip(((view[:, 0] + half) / (2 * half) * size).astype(int), 0, size - 1)
    row = np.clip(((half - view[:, 1]) / (2 * half) * size).astype(int), 0, size - 1)
    pixel = row * size + col
    # Nearest point per pixel: sort by depth (largest z' is nearest), keep the first.
    order = np.lexsort((-view[:, 2], pixel))
    first = order[np.r_[True, pixel[order][1:] != pixel[order][:-1]]]
    # Faces may be oriented either way in a user's mesh: shade both sides alike.
    lambert = np.abs(view_normals[first] @ (_LIGHT / np.linalg.norm(_LIGHT)))
    shade = 0.25 + 0.75 * lambert
    image.reshape(-1, 3)[pixel[first]] = (shade[:, None] * _COLOR).astype(np.float32)
    return image


def render_grid_sdf(grid_sdf, resolution, size=128):
    """The shaded view of the zero level set of SDF values on the grid (white if none)."""
    mesh = marching_cubes_surface(grid_sdf, resolution)
    if mesh is None:
        return np.ones((size, size, 3), np.float32)
    return render_mesh(*mesh, size=size)


def render_network(fmodel, weights, resolution=SURFACE_RESOLUTION, size=128):
    """The shaded view of a network's surface (marching cubes on a `resolution`^3 grid)."""
    return render_grid_sdf(network_grid_sdf(fmodel, weights, resolution), resolution, size)


def png_bytes(image):
    """A float (H, W, 3) picture in [0, 1] as PNG bytes."""
    from PIL import Image  # pylint: disable=import-outside-toplevel
    buffer = io.BytesIO()
    Image.fromarray((np.clip(image, 0, 1) * 255).round().astype(np.uint8)).save(buffer, "PNG")
    return buffer.getvalue()


def surface_outputs(model, task, example, resolution=SURFACE_RESOLUTION):
    """{"surface.ply": the fitted network's marching-cubes surface (normalized frame,
    [-1, 1]^3), "surface.png": its picture}; no PLY when the network has no surface."""
    import trimesh  # pylint: disable=import-outside-toplevel
    from learnit_tf.models.functional import FunctionalModel  # pylint: disable=import-outside-toplevel
    del task, example
    fmodel = FunctionalModel(model)
    grid_sdf = network_grid_sdf(fmodel, fmodel.initial_weights(), resolution)
    mesh = marching_cubes_surface(grid_sdf, resolution)
    if mesh is None:
        return {"surface.png": png_bytes(np.ones((128, 128, 3), np.float32))}
    ply = trimesh.Trimesh(vertices=mesh[0], faces=mesh[1], process=False).export(
        file_type="ply")
    return {"surface.ply": ply, "surface.png": png_bytes(render_mesh(*mesh))}
