"""The one validator of camera-to-world poses, wherever poses enter (user folders,
ShapeNet renders, Phototourism cameras).

A pose is accepted when it is finite, 3×4 or 4×4 with last row [0, 0, 0, 1], its 3×3
part is a rotation (orthonormal to `ROTATION_TOLERANCE`, determinant +1: not all-zero,
not scaled, not mirrored), and, when the task's scene bounds are given, the camera
centre lies between the near and far planes' distances from the world origin
(`near <= |centre| <= far`): the objects of the ShapeNet / NeRF-synthetic layout sit
around the origin and every ray is sampled only between `near` and `far`, so a camera
nearer or farther than that would never sample the object. Each refusal is a ValueError
naming the file and the frame index.
"""

import numpy as np

#: Largest entry of |RᵀR − I| accepted (float32 JSON round-off is ~1e-7).
ROTATION_TOLERANCE = 1e-3


def check_pose(matrix, where, scene_bounds=None):
    """A validated float32 4×4 camera-to-world matrix.

    Args:
        matrix: 3×4 or 4×4 array-like.
        where: what to call it in errors, e.g. "transforms.json: frame 3".
        scene_bounds: (near, far) of the task, or None (no distance check).

    Raises:
        ValueError starting with `where` for any violation of the module's rules.
    """
    try:
        pose = np.asarray(matrix, np.float64)
    except (TypeError, ValueError) as e:
        raise ValueError(f"{where} is not a numeric matrix ({e}); expected a 4×4 "
                         "camera-to-world matrix.") from None
    if pose.shape == (3, 4):
        pose = np.concatenate([pose, [[0.0, 0.0, 0.0, 1.0]]])
    if pose.shape != (4, 4):
        raise ValueError(f"{where} has shape {pose.shape}; expected a 4×4 (or 3×4) "
                         "camera-to-world matrix.")
    if not np.all(np.isfinite(pose)):
        raise ValueError(f"{where} holds NaN or infinite values; expected a finite "
                         "camera-to-world matrix.")
    rotation = pose[:3, :3]
    if not np.any(rotation):
        raise ValueError(f"{where} is all zeros in its rotation part; expected a rotation "
                         "matrix (orthonormal, determinant +1).")
    if not np.allclose(pose[3], [0.0, 0.0, 0.0, 1.0], atol=1e-6):
        raise ValueError(f"{where} has last row {pose[3].tolist()}; expected [0, 0, 0, 1].")
    norms = np.linalg.norm(rotation, axis=0)
    if np.max(np.abs(norms - 1.0)) > ROTATION_TOLERANCE:
        raise ValueError(f"{where} is scaled: its rotation's columns have lengths "
                         f"{np.round(norms, 4).tolist()}; expected 1 (a scaled or sheared "
                         "matrix is not a camera pose: remove the scale).")
    error = np.max(np.abs(rotation.T @ rotation - np.eye(3)))
    if error > ROTATION_TOLERANCE:
        raise ValueError(f"{where} is not a rotation: its columns are not orthogonal "
                         f"(|RᵀR − I| up to {error:.3g}, tolerance {ROTATION_TOLERANCE}).")
    det = np.linalg.det(rotation)
    if det < 0:
        raise ValueError(f"{where} is mirrored: its rotation has determinant {det:.3f} (a "
                         "left-handed camera); expected a rotation with determinant +1.")
    if scene_bounds is not None:
        near, far = (float(b) for b in scene_bounds)
        distance = float(np.linalg.norm(pose[:3, 3]))
        if not near <= distance <= far:
            centre = np.round(pose[:3, 3], 4).tolist()
            raise ValueError(f"{where} puts the camera centre at {centre}, "
                             f"{distance:.4g} from the origin, outside the task's near/far "
                             f"range [{near:g}, {far:g}]: rays sampled between near and far "
                             "would miss the scene around the origin. Expected the object at "
                             "the origin and cameras at a distance in [near, far].")
    return pose.astype(np.float32)
