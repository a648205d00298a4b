"""Cameras and rays: the NeRF-synthetic and Phototourism conventions.

Two ways of turning a pixel into a world-space ray are used by the paper's data
(PAPER.md, "View synthesis"):

- **NeRF-synthetic** (the authors' ShapeNet renders and `procedural_objects`): a
  pinhole camera with horizontal field of view `camera_angle_x`, focal
  `0.5 · W / tan(0.5 · camera_angle_x)`, principal point at the image centre, and a
  4×4 camera-to-world matrix whose camera frame has x right, y up and looks along
  −z (OpenGL/Blender). Pixel (row j, column i) gets the camera-frame direction
  `((i − W/2) / f, −(j − H/2) / f, −1)`, as in the authors' `get_rays`.
- **Phototourism**: per-image inverse intrinsics `kinv` (3×3) map homogeneous
  pixel coordinates `(i, j, 1)` straight to camera-frame directions, which the
  camera-to-world rotation takes to the world (the authors' notebook).

Directions are not normalised: with the NeRF-synthetic convention the ray
parameter t is then the camera-space depth. The pinhole maths uses
`tensorflow_graphics.rendering.camera.perspective` (which works in the OpenCV
frame: y down, looking along +z) and camera poses use
`tensorflow_graphics.geometry.transformation.look_at`.

Pixel positions are integer pixel indices plus `pixel_offset` (default 0.0, the
authors' convention; 0.5 would shoot rays through pixel centres).
"""

import functools
import inspect
import sys
import types

import numpy as np
import tensorflow as tf

#: Field of view of the NeRF-synthetic Blender scenes (radians), used for procedural renders.
NERF_SYNTHETIC_CAMERA_ANGLE_X = 0.6911112070083618

# OpenCV camera frame (x right, y down, +z forward) <-> OpenGL frame (x right, y up, -z forward).
_CV_TO_GL = (1.0, -1.0, -1.0)


def _fast_export_api():
    """Equivalents of tensorflow_graphics' export_api helpers without `inspect.stack()`.

    Every tensorflow_graphics module computes its `__all__` at import time from
    `inspect.stack()`, which resolves the source file of every frame by scanning all
    loaded modules: with TensorFlow loaded that costs several seconds per module
    (10-20 s in total). Looking at the caller's frame directly gives the same lists.
    """
    def caller_module():
        frame = sys._getframe(2)  # pylint: disable=protected-access
        return sys.modules[frame.f_globals["__name__"]]

    def get_functions_and_classes():
        module = caller_module()
        return [name for name, obj in inspect.getmembers(module)
                if inspect.isfunction(obj) or inspect.isclass(obj) and not name.startswith("_")]

    def get_modules():
        module = caller_module()
        return [name for name, obj in inspect.getmembers(module)
                if inspect.ismodule(obj) and obj.__name__.rsplit(".", 1)[0] == module.__name__
                and not name.startswith("_")]

    return get_functions_and_classes, get_modules


@functools.lru_cache(maxsize=None)
def _tfg():
    """tensorflow_graphics modules, imported on first use (quickly, see `_fast_export_api`)."""
    # pylint: disable=import-outside-toplevel
    from tensorflow_graphics.util import export_api
    original = export_api.get_functions_and_classes, export_api.get_modules
    export_api.get_functions_and_classes, export_api.get_modules = _fast_export_api()
    try:
        from tensorflow_graphics.geometry.transformation import look_at, quaternion
        from tensorflow_graphics.geometry.transformation import rotation_matrix_3d
        from tensorflow_graphics.math.interpolation import slerp
        from tensorflow_graphics.rendering.camera import perspective
    finally:
        export_api.get_functions_and_classes, export_api.get_modules = original
    return types.SimpleNamespace(look_at=look_at, quaternion=quaternion,
                                 rotation_matrix_3d=rotation_matrix_3d, slerp=slerp,
                                 perspective=perspective)


def focal_from_camera_angle_x(width, camera_angle_x):
    """Focal length in pixels of a camera with horizontal field of view `camera_angle_x`.

    Example:

    >>> round(float(focal_from_camera_angle_x(128, NERF_SYNTHETIC_CAMERA_ANGLE_X)), 2)
    177.78
    """
    return 0.5 * width / tf.tan(0.5 * tf.cast(camera_angle_x, tf.float32))


def pixel_coordinates(height, width, pixel_offset=0.0):
    """Pixel positions (x = column, y = row) + offset, float32 (H, W, 2), 'xy' order.

    Example:

    >>> pixel_coordinates(2, 3)[1, 2].numpy().tolist()
    [2.0, 1.0]
    """
    xs = tf.range(width, dtype=tf.float32) + pixel_offset
    ys = tf.range(height, dtype=tf.float32) + pixel_offset
    x, y = tf.meshgrid(xs, ys, indexing="xy")
    return tf.stack([x, y], axis=-1)


def camera_directions(height, width, focal, principal_point=None, pixel_offset=0.0):
    """Camera-frame ray directions (OpenGL frame, z = −1), float32 (H, W, 3).

    Args:
        height, width: image size in pixels.
        focal: focal length in pixels (scalar or (fx, fy)).
        principal_point: (cx, cy) in pixels; default (W/2, H/2).
        pixel_offset: added to integer pixel indices (0.0: authors' convention).
    """
    focal = tf.broadcast_to(tf.cast(focal, tf.float32), (2,))
    if principal_point is None:
        principal_point = (0.5 * width, 0.5 * height)
    principal_point = tf.cast(tf.convert_to_tensor(principal_point), tf.float32)
    pixels = pixel_coordinates(height, width, pixel_offset)
    # tensorflow_graphics gives ((x - cx)/fx, (y - cy)/fy, 1) in the OpenCV frame.
    rays_cv = _tfg().perspective.ray(pixels, focal[None, None], principal_point[None, None])
    return rays_cv * tf.constant(_CV_TO_GL, tf.float32)


def _check_pose(c2w, name="c2w"):
    c2w = tf.convert_to_tensor(c2w, tf.float32)
    if c2w.shape.rank is not None and (c2w.shape.rank < 2 or c2w.shape[-2] not in (3, 4)
                                       or c2w.shape[-1] != 4):
        raise ValueError(f"{name} must have shape (..., 3, 4) or (..., 4, 4), got {c2w.shape}.")
    return c2w


def rays_from_directions(directions, c2w):
    """World rays for camera-frame directions (..., 3) and a camera-to-world matrix.

    Returns:
        (rays_o, rays_d), both shaped like `directions`.
    """
    c2w = _check_pose(c2w)
    rotation, origin = c2w[:3, :3], c2w[:3, 3]
    rays_d = tf.einsum("ij,...j->...i", rotation, directions)
    shape = rays_d.shape if rays_d.shape.is_fully_defined() else tf.shape(rays_d)
    rays_o = tf.broadcast_to(origin, shape)
    return rays_o, rays_d


def nerf_synthetic_rays(height, width, camera_angle_x, c2w, pixel_offset=0.0):
    """Rays of every pixel of a NeRF-synthetic camera, each float32 (H, W, 3).

    Args:
        height, width: image size.
        camera_angle_x: horizontal field of view in radians (transforms.json).
        c2w: camera-to-world matrix (4, 4) or (3, 4); camera looks along −z, y up.
        pixel_offset: 0.0 (authors' convention) or 0.5 (pixel centres).

    Example:

    >>> o, d = nerf_synthetic_rays(4, 4, 0.69, np.eye(4))
    >>> d[2, 2].numpy().tolist() == [0.0, 0.0, -1.0]  # the principal point looks down −z
    True
    """
    focal = focal_from_camera_angle_x(width, camera_angle_x)
    directions = camera_directions(height, width, focal, pixel_offset=pixel_offset)
    return rays_from_directions(directions, c2w)


def inverse_intrinsics_rays(height, width, kinv, c2w, pixel_offset=0.0, stride=1):
    """Rays of a Phototourism camera given inverse intrinsics, each float32 (H', W', 3).

    Directions are `c2w[:3, :3] @ kinv @ (i, j, 1)` for pixel column i and row j,
    as in the authors' Phototourism notebook.

    Args:
        height, width: full image size.
        kinv: inverse intrinsics (3, 3).
        c2w: camera-to-world (3, 4) or (4, 4), translation already scaled.
        pixel_offset: added to the pixel indices.
        stride: keep every `stride`-th row and column (H' = ceil(H / stride)),
            shooting rays through the kept full-resolution pixels.
    """
    kinv = tf.convert_to_tensor(kinv, tf.float32)
    xs = tf.range(0, width, stride, dtype=tf.float32) + pixel_offset
    ys = tf.range(0, height, stride, dtype=tf.float32) + pixel_offset
    x, y = tf.meshgrid(xs, ys, indexing="xy")
    pixels = tf.stack([x, y, tf.ones_like(x)], axis=-1)
    directions = tf.einsum("ij,...j->...i", kinv, pixels)
    return rays_from_directions(directions, c2w)


def world_to_camera(points, c2w):
    """Points (..., 3) in the camera frame (OpenGL: x right, y up, looking along −z)."""
    c2w = _check_pose(c2w)
    rotation, origin = c2w[:3, :3], c2w[:3, 3]
    return tf.einsum("ji,...j->...i", rotation, tf.convert_to_tensor(points, tf.float32) - origin)


def project_points(points, height, width, camera_angle_x, c2w, pixel_offset=0.0):
    """Projects world points into a NeRF-synthetic camera.

    Returns:
        (pixels (..., 2) as continuous (column, row) indices, depth (...) along the
        viewing axis; points behind the camera have depth <= 0).
    """
    camera = world_to_camera(points, c2w)
    depth = -camera[..., 2]
    focal = focal_from_camera_angle_x(width, camera_angle_x)
    focal = tf.broadcast_to(focal, (2,))
    principal = tf.constant([0.5 * width, 0.5 * height], tf.float32)
    # tensorflow_graphics projects OpenCV-frame points: flip y and z.
    projected = _tfg().perspective.project(camera * tf.constant(_CV_TO_GL, tf.float32),
                                    focal, principal)
    return projected - pixel_offset, depth


def look_at_pose(position, target=(0.0, 0.0, 0.0), up=(0.0, 0.0, 1.0)):
    """Camera-to-world 4×4 (float32 numpy) of a camera at `position` looking at `target`.

    The camera frame follows the NeRF convention (looks along −z, y up), which is
    what `tensorflow_graphics`' right-handed look-at builds (as a world-to-camera
    matrix, inverted here).

    Example:

    >>> pose = look_at_pose((0.0, -4.0, 0.0))
    >>> np.round(pose[:3, 2], 3).tolist() == [0.0, -1.0, 0.0]  # +z points away from the target
    True
    """
    position = np.asarray(position, np.float32)
    target = np.broadcast_to(np.asarray(target, np.float32), position.shape)
    up = np.broadcast_to(np.asarray(up, np.float32), position.shape)
    w2c = _tfg().look_at.right_handed(position, target, up).numpy()
    rotation = np.swapaxes(w2c[..., :3, :3], -1, -2)
    c2w = np.zeros(position.shape[:-1] + (4, 4), np.float32)
    c2w[..., :3, :3] = rotation
    c2w[..., :3, 3] = position
    c2w[..., 3, 3] = 1.0
    return c2w


def sphere_poses(rng, num, radius=4.0, min_elevation_deg=-30.0, max_elevation_deg=80.0,
                 up=(0.0, 0.0, 1.0)):
    """Random cameras on a sphere around the origin, looking at it; (num, 4, 4) float32.

    Positions are uniform in area over the band of elevations
    [min_elevation_deg, max_elevation_deg] (z up); the poles are excluded so the
    look-at up vector is never parallel to the viewing direction.

    Args:
        rng: a `numpy.random.Generator`.
        num: number of cameras.
        radius: distance to the origin (ShapeNet renders: 4).
    """
    lo, hi = np.sin(np.deg2rad([min_elevation_deg, max_elevation_deg]))
    z = rng.uniform(lo, hi, size=num)
    azimuth = rng.uniform(0.0, 2.0 * np.pi, size=num)
    r_xy = np.sqrt(1.0 - z**2)
    positions = radius * np.stack([r_xy * np.cos(azimuth), r_xy * np.sin(azimuth), z], -1)
    return look_at_pose(positions, up=up)


def turntable_poses(num, radius=4.0, elevation_deg=30.0, up=(0.0, 0.0, 1.0),
                    start_azimuth_deg=0.0):
    """`num` cameras circling the origin at a fixed elevation; (num, 4, 4) float32."""
    up = np.asarray(up, np.float64)
    up = up / np.linalg.norm(up)
    # An orthonormal basis (a, b) of the plane orthogonal to `up`.
    helper = np.array([1.0, 0.0, 0.0]) if abs(up[0]) < 0.9 else np.array([0.0, 1.0, 0.0])
    a = np.cross(up, helper)
    a /= np.linalg.norm(a)
    b = np.cross(up, a)
    azimuth = np.deg2rad(start_azimuth_deg) + np.linspace(0.0, 2.0 * np.pi, num, endpoint=False)
    elevation = np.deg2rad(elevation_deg)
    positions = radius * (np.cos(elevation) * (np.cos(azimuth)[:, None] * a
                                               + np.sin(azimuth)[:, None] * b)
                          + np.sin(elevation) * up)
    return look_at_pose(positions.astype(np.float32), up=up.astype(np.float32))


def estimate_orbit(c2ws):
    """Up vector, radius and mean elevation of cameras looking at the origin.

    Used to build a turntable for a dataset whose world up axis is not known
    (e.g. the authors' renders): the up vector is the mean of the cameras' y axes.

    Returns:
        (up (3,), radius float, elevation_deg float).
    """
    c2ws = np.asarray(c2ws, np.float64)
    up = c2ws[:, :3, 1].mean(axis=0)
    up /= np.linalg.norm(up)
    positions = c2ws[:, :3, 3]
    radius = float(np.linalg.norm(positions, axis=-1).mean())
    elevation = np.degrees(np.arcsin(np.clip(positions @ up / np.linalg.norm(
        positions, axis=-1), -1.0, 1.0)))
    return up.astype(np.float32), radius, float(elevation.mean())


def interpolate_poses(c2w_a, c2w_b, num):
    """`num` poses from `c2w_a` to `c2w_b`: slerp of rotations, linear translations.

    Returns:
        (num, 4, 4) float32 numpy array (first = a, last = b).
    """
    c2w_a = np.asarray(c2w_a, np.float32)
    c2w_b = np.asarray(c2w_b, np.float32)
    tfg = _tfg()
    qa = tfg.quaternion.from_rotation_matrix(c2w_a[:3, :3])
    qb = tfg.quaternion.from_rotation_matrix(c2w_b[:3, :3])
    poses = np.zeros((num, 4, 4), np.float32)
    for k, s in enumerate(np.linspace(0.0, 1.0, num)):
        q = tfg.slerp.interpolate(qa, qb, float(s),
                                  method=tfg.slerp.InterpolationType.QUATERNION)
        poses[k, :3, :3] = tfg.rotation_matrix_3d.from_quaternion(q).numpy()
        poses[k, :3, 3] = (1.0 - s) * c2w_a[:3, 3] + s * c2w_b[:3, 3]
        poses[k, 3, 3] = 1.0
    return poses

