"""A user's own meshes (OBJ, STL, PLY, OFF) as 3D shapes, read with trimesh.

Reading policy (each rule tested in tests/kinds/shape3d/test_shape3d_mesh.py):
- Formats: `.obj`, `.stl`, `.ply`, `.off` (trimesh). A file holding several meshes
  (an OBJ scene) is merged into one.
- Refused, with a ValueError naming the file: unreadable files, meshes with no
  triangles (empty), and meshes that are not watertight (holes, open edges): inside
  and outside are undefined there, and the signed distance's sign would be silently
  wrong.
- Normalization (`normalize_mesh`): the bounding box is centred on the origin and the
  mesh scaled uniformly so its longest side spans [-0.8, 0.8]
  (`sdf.NORMALIZED_HALF_EXTENT`) inside the network's [-1, 1]^3, as the procedural
  shapes are.
- Sign: trimesh's `proximity.signed_distance` is POSITIVE INSIDE; this kind's signed
  distance is NEGATIVE INSIDE (`mesh_sdf` negates it).
- Samples: as every shape (`sampling.sample_example`): half near the surface (area-
  uniform surface points plus Gaussian noise of `near_surface_std`), half uniform in
  [-1, 1]^3, at the init's task sizes; seeded by `sample_seed`.
- Folders: the regular, non-hidden mesh files directly in the folder; `train/` and
  `test/` subfolders, else a name-hash split (`learnit_tf.data.files.split_entries`,
  the policy of every kind's folders).
"""

import os

import numpy as np
import tensorflow as tf

from learnit_tf.data import files as folder_files
from learnit_tf.kinds.shape3d.sampling import sample_example
from learnit_tf.kinds.shape3d.sdf import NORMALIZED_HALF_EXTENT

MESH_EXTENSIONS = (".obj", ".stl", ".ply", ".off")
#: Surface points drawn per mesh (near-surface centres and the Chamfer points).
SURFACE_POOL = 8192
DEFAULT_NEAR_SURFACE_STD = 0.02


def load_mesh(path):
    """The mesh in `path` as one `trimesh.Trimesh`, checked (see the module docstring)."""
    import trimesh  # pylint: disable=import-outside-toplevel
    if os.path.isdir(path):
        raise ValueError(f"Mesh {path!r} is a directory; expected a mesh file "
                         f"({', '.join(MESH_EXTENSIONS)}).")
    if not os.path.splitext(path)[1].lower() in MESH_EXTENSIONS:
        raise ValueError(f"Mesh file {path!r} has an unsupported extension; expected one of "
                         f"{MESH_EXTENSIONS}.")
    try:
        loaded = trimesh.load(path, force="mesh", process=True)
    except Exception as e:  # trimesh raises many types for unreadable files.
        raise ValueError(f"Cannot read mesh file {path!r}: {type(e).__name__}: {e}") from e
    if not isinstance(loaded, trimesh.Trimesh) or len(loaded.faces) == 0:
        raise ValueError(f"Mesh file {path!r} is empty: it holds no triangles; expected a "
                         "closed (watertight) triangle mesh.")
    if not loaded.is_watertight:
        raise ValueError(
            f"Mesh file {path!r} is not watertight ({len(loaded.faces)} triangles with open "
            "edges or holes): its inside is undefined, so its signed distance would have a "
            "wrong sign. Close the mesh first (e.g. trimesh's fill_holes or a remeshing "
            "tool such as ManifoldPlus).")
    return loaded


def normalize_mesh(mesh):
    """A copy of `mesh` with its bounding box centred and its longest side 2 * 0.8."""
    low, high = mesh.bounds
    extent = float((high - low).max())
    if not extent > 0:
        raise ValueError("A mesh with a zero-size bounding box cannot be normalized.")
    normalized = mesh.copy()
    normalized.apply_translation(-(low + high) / 2)
    normalized.apply_scale(2 * NORMALIZED_HALF_EXTENT / extent)
    return normalized


def mesh_sdf(mesh, points):
    """Signed distances (NEGATIVE INSIDE) of `points` (N, 3) to `mesh`, float64 (N,).

    trimesh returns positive inside; the sign is flipped here, the kind's one place
    that reads trimesh's convention.
    """
    import trimesh  # pylint: disable=import-outside-toplevel
    return -np.asarray(trimesh.proximity.signed_distance(mesh, np.asarray(points, np.float64)),
                       np.float64)


def mesh_example(path, task, near_surface_std=DEFAULT_NEAR_SURFACE_STD, sample_seed=0):
    """The example of the mesh in `path` at `task`'s sizes, and the normalized mesh."""
    import trimesh  # pylint: disable=import-outside-toplevel
    mesh = normalize_mesh(load_mesh(path))
    near_surface_std = float(near_surface_std)
    if not near_surface_std >= 0:
        raise ValueError(f"near_surface_std must be >= 0, got {near_surface_std}.")
    surface, _ = trimesh.sample.sample_surface(mesh, SURFACE_POOL, seed=int(sample_seed))
    rng = np.random.RandomState(int(sample_seed))
    example = sample_example(lambda p: mesh_sdf(mesh, p), surface, rng, task.num_points,
                             near_surface_std, task.grid_resolution, task.num_surface)
    return example, mesh


def list_mesh_files(directory):
    """Sorted regular, readable, non-hidden mesh files directly inside `directory`."""
    if not os.path.isdir(directory):
        raise ValueError(f"Mesh folder {directory!r} does not exist or is not a directory.")
    found = sorted(os.path.join(directory, f) for f in os.listdir(directory)
                   if f.lower().endswith(MESH_EXTENSIONS) and not f.startswith(".")
                   and os.path.isfile(os.path.join(directory, f))
                   and os.access(os.path.join(directory, f), os.R_OK))
    if not found:
        raise ValueError(f"Mesh folder {directory!r} holds no mesh files (regular, readable, "
                         f"not hidden files with extensions {MESH_EXTENSIONS}).")
    return found


def mesh_folder_examples(directory, split="train", num_points=2048, grid_resolution=32,
                         num_surface=2048, near_surface_std=DEFAULT_NEAR_SURFACE_STD,
                         sample_seed=0, test_fraction=0.1):
    """Unbatched examples of a folder of meshes (see `sampling.sample_example`).

    Example:

    >>> ds = mesh_folder_examples("my_meshes", "test", num_points=2048)  # doctest: +SKIP
    """
    from learnit_tf.kinds.shape3d.task import ShapeSdfTask  # pylint: disable=import-outside-toplevel
    task = ShapeSdfTask(num_points, grid_resolution, num_surface)
    paths = folder_files.split_entries(directory, split, list_mesh_files, test_fraction,
                                       "mesh files")
    examples = [mesh_example(p, task, near_surface_std, sample_seed + i)[0]
                for i, p in enumerate(paths)]
    return tf.data.Dataset.from_tensor_slices(
        {k: np.stack([e[k] for e in examples]) for k in examples[0]})


def fit_example(path, task, near_surface_std=None, sample_seed=0):
    """`learnit-fit --input=MESH` for a 3D-shape init: a `FitInput` with extra outputs.

    The fit writes, besides the network, `surface.ply` (the marching-cubes surface of
    the fitted SDF, in the normalized frame) and `surface.png` (its rendering).
    """
    # pylint: disable=import-outside-toplevel
    from learnit_tf.core.fit_input import FitInput
    from learnit_tf.kinds.shape3d import render
    from learnit_tf.kinds.shape3d.task import ShapeSdfTask
    if not isinstance(task, ShapeSdfTask):
        raise ValueError(f"Mesh inputs need a ShapeSdfTask init, got {type(task).__name__}.")
    std = DEFAULT_NEAR_SURFACE_STD if near_surface_std is None else near_surface_std
    example, mesh = mesh_example(path, task, std, sample_seed)
    fit_input = FitInput(
        task, example, observed=[("target mesh", render.render_mesh(mesh.vertices, mesh.faces))],
        render=lambda fmodel, weights: render.render_network(fmodel, weights),
        description=f"{os.path.basename(path)}: {len(mesh.faces)} triangles, "
                    f"{task.num_points} samples")
    # The fit command writes these files next to the fitted network (FitInput.extra_outputs).
    fit_input.extra_outputs = render.surface_outputs
    return fit_input
