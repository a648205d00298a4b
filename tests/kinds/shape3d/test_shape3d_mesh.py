"""A user's meshes: the sign convention (negative inside; trimesh's positive-inside flipped),
normalization to the unit cube, refusals naming the file, the folder reader."""

import os

import numpy as np
import trimesh

from learnit_tf import testing
from learnit_tf.kinds.shape3d import mesh as mesh_io
from learnit_tf.kinds.shape3d.task import ShapeSdfTask


def _box_sdf(points, half):
    q = np.abs(points) - np.asarray(half)
    return np.linalg.norm(np.maximum(q, 0.0), axis=-1) + np.minimum(q.max(-1), 0.0)


class MeshTest(testing.TestCase):

    def setUp(self):
        super().setUp()
        self.dir = self.get_temp_dir()

    def _write(self, mesh, name):
        path = os.path.join(self.dir, name)
        mesh.export(path)
        return path

    def test_sign_is_negative_inside(self):
        box = trimesh.creation.box(extents=(1.0, 1.0, 1.0))
        d = mesh_io.mesh_sdf(box, np.array([[0.0, 0.0, 0.0], [0.9, 0.0, 0.0]]))
        np.testing.assert_allclose(d, [-0.5, 0.4], atol=1e-9)
        # trimesh itself says the opposite: this reader must flip it.
        raw = trimesh.proximity.signed_distance(box, np.array([[0.0, 0.0, 0.0]]))
        self.assertGreater(float(raw[0]), 0)

    def test_example_matches_the_analytic_box_after_normalization(self):
        # An off-centre box 2 × 1.2 × 0.8: normalized, it is centred with half sides
        # 0.8, 0.48, 0.32 (longest side spans [-0.8, 0.8]).
        box = trimesh.creation.box(extents=(2.0, 1.2, 0.8))
        box.apply_translation((3.0, -1.0, 2.0))
        path = self._write(box, "box.obj")
        task = ShapeSdfTask(num_points=512, grid_resolution=8, num_surface=64)
        example, normalized = mesh_io.mesh_example(path, task, near_surface_std=0.02)
        np.testing.assert_allclose(normalized.bounds, [[-0.8, -0.48, -0.32], [0.8, 0.48, 0.32]],
                                   atol=1e-9)
        half = (0.8, 0.48, 0.32)
        np.testing.assert_allclose(example["sdf"], _box_sdf(example["points"], half),
                                   atol=1e-5)
        self.assertTrue(np.any(example["sdf"] < 0))
        self.assertEqual(example["points"].shape, (512, 3))
        self.assertEqual(example["grid_sdf"].shape, (512,))
        self.assertEqual(example["surface"].shape, (64, 3))
        np.testing.assert_allclose(_box_sdf(example["surface"], half), 0.0, atol=1e-5)
        task.validate_example(example)

    def test_formats(self):
        sphere = trimesh.creation.icosphere(subdivisions=2, radius=2.0)
        for extension in ("obj", "stl", "ply", "off"):
            loaded = mesh_io.normalize_mesh(mesh_io.load_mesh(
                self._write(sphere, f"sphere.{extension}")))
            self.assertAllClose(loaded.bounds, [[-0.8] * 3, [0.8] * 3], atol=1e-6)

    def test_non_watertight_mesh_is_refused_naming_the_file(self):
        box = trimesh.creation.box()
        box.update_faces(np.arange(len(box.faces)) != 0)  # A hole: one triangle removed.
        path = self._write(box, "open_box.obj")
        with self.assertRaisesRegex(ValueError, "open_box.obj.*not watertight"):
            mesh_io.load_mesh(path)

    def test_empty_mesh_is_refused_naming_the_file(self):
        path = os.path.join(self.dir, "empty.obj")
        with open(path, "w") as f:
            f.write("# no faces\nv 0 0 0\nv 1 0 0\n")
        with self.assertRaisesRegex(ValueError, "empty.obj.*(empty|Cannot read)"):
            mesh_io.load_mesh(path)
        other = os.path.join(self.dir, "nothing.stl")
        open(other, "w").close()
        with self.assertRaisesRegex(ValueError, "nothing.stl"):
            mesh_io.load_mesh(other)

    def test_unsupported_extension_and_folder(self):
        path = os.path.join(self.dir, "shape.xyz")
        open(path, "w").close()
        with self.assertRaisesRegex(ValueError, "shape.xyz.*unsupported extension"):
            mesh_io.load_mesh(path)
        empty_folder = os.path.join(self.dir, "none_here")
        os.makedirs(empty_folder)
        with self.assertRaisesRegex(ValueError, "none_here.*holds no mesh files"):
            mesh_io.list_mesh_files(empty_folder)

    def test_folder_reader_splits_and_static_shapes(self):
        folder = os.path.join(self.dir, "meshes")
        for split, count in (("train", 2), ("test", 1)):
            os.makedirs(os.path.join(folder, split))
            for i in range(count):
                self._write(trimesh.creation.icosphere(1, radius=0.5 + 0.1 * i),
                            os.path.join("meshes", split, f"s{i}.ply"))
        ds = mesh_io.mesh_folder_examples(folder, "train", num_points=64, grid_resolution=4,
                                          num_surface=16)
        self.assertEqual({k: tuple(v.shape) for k, v in ds.element_spec.items()},
                         {"points": (64, 3), "sdf": (64,), "grid_sdf": (64,),
                          "surface": (16, 3)})
        self.assertLen(list(ds), 2)
        self.assertLen(list(mesh_io.mesh_folder_examples(folder, "test", num_points=64,
                                                         grid_resolution=4, num_surface=16)), 1)
