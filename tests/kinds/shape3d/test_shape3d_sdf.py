"""Analytic SDFs and procedural shapes: sign (negative inside), primitives' distances,
normalization, surface points, the deterministic train/test split, static shapes."""

import numpy as np

from learnit_tf import testing
from learnit_tf.kinds.shape3d import procedural, sdf
from learnit_tf.kinds.shape3d.sampling import grid_coords, sample_example


def _sphere(radius, center=(0.0, 0.0, 0.0)):
    return sdf.Primitive("sphere", np.asarray(center, float), np.eye(3), (radius,))


class PrimitiveTest(testing.TestCase):

    def test_sphere_is_negative_inside_and_exact(self):
        shape = sdf.Shape((_sphere(0.5),))
        d = shape.sdf(np.array([[0.0, 0.0, 0.0], [0.25, 0.0, 0.0], [0.0, 0.9, 0.0]]))
        np.testing.assert_allclose(d, [-0.5, -0.25, 0.4])

    def test_box_torus_capsule_distances(self):
        box = sdf.Primitive("box", np.zeros(3), np.eye(3), (0.3, 0.2, 0.1))
        np.testing.assert_allclose(box.sdf(np.array([[0.0, 0.0, 0.0], [0.5, 0.0, 0.0],
                                                     [0.6, 0.6, 0.0]])),
                                   [-0.1, 0.2, np.hypot(0.3, 0.4)])
        torus = sdf.Primitive("torus", np.zeros(3), np.eye(3), (0.5, 0.1))
        np.testing.assert_allclose(torus.sdf(np.array([[0.5, 0.0, 0.0], [0.0, 0.0, 0.0]])),
                                   [-0.1, 0.4])
        capsule = sdf.Primitive("capsule", np.zeros(3), np.eye(3), (0.4, 0.1))
        np.testing.assert_allclose(capsule.sdf(np.array([[0.0, 0.0, 0.7], [0.3, 0.0, 0.2]])),
                                   [0.2, 0.2])

    def test_rotation_turns_the_primitive(self):
        # A capsule along local z, turned onto world x by the rotation (local -> world).
        to_x = np.array([[0.0, 0.0, 1.0], [0.0, 1.0, 0.0], [-1.0, 0.0, 0.0]])
        capsule = sdf.Primitive("capsule", np.zeros(3), to_x, (0.4, 0.1))
        np.testing.assert_allclose(capsule.sdf(np.array([[0.45, 0.0, 0.0], [0.0, 0.0, 0.45]])),
                                   [-0.05, 0.35], atol=1e-12)

    def test_union_and_smooth_union(self):
        a, b = _sphere(0.3, (-0.3, 0, 0)), _sphere(0.3, (0.3, 0, 0))
        points = np.random.RandomState(0).uniform(-1, 1, (500, 3))
        hard = sdf.Shape((a, b)).sdf(points)
        np.testing.assert_allclose(hard, np.minimum(a.sdf(points), b.sdf(points)))
        smooth = sdf.Shape((a, b), blend=0.1).sdf(points)
        self.assertTrue(np.all(smooth <= hard + 1e-12))
        self.assertLess(float(np.max(hard - smooth)), 0.1 / 4 + 1e-9)  # At most k/4 below.

    def test_normalized_bounding_box(self):
        rng = np.random.RandomState(3)
        shape = sdf.random_shape(rng)
        shape = shape.normalized(sdf.surface_points(shape, rng, 2048))
        surface = sdf.surface_points(shape, rng, 4096)
        low, high = surface.min(0), surface.max(0)
        self.assertAllClose((low + high) / 2, np.zeros(3), atol=0.02)
        self.assertAllClose(float((high - low).max()), 2 * sdf.NORMALIZED_HALF_EXTENT,
                            atol=0.02)

    def test_surface_points_are_on_the_surface(self):
        rng = np.random.RandomState(1)
        shape = sdf.random_shape(rng)
        points = sdf.surface_points(shape, rng, 1000)
        self.assertEqual(points.shape, (1000, 3))
        self.assertLess(float(np.abs(shape.sdf(points)).max()), 1e-3)


class ProceduralShapesTest(testing.TestCase):

    def test_example_shapes_and_signs(self):
        rng = np.random.RandomState([0, 0, 0])
        example = procedural.shape_example(rng, 64, 0.02, 8, 32)
        self.assertEqual({k: v.shape for k, v in example.items()},
                         {"points": (64, 3), "sdf": (64,), "grid_sdf": (512,),
                          "surface": (32, 3)})
        self.assertTrue(all(v.dtype == np.float32 for v in example.values()))
        # Near-surface half lies near the zero set; uniform half in [-1, 1]^3.
        self.assertLess(float(np.abs(example["sdf"][:32]).mean()), 0.05)
        self.assertLessEqual(float(np.abs(example["points"]).max()), 1.0)
        # The grid's corners are outside every normalized shape: positive.
        corners = [0, 7, 56, 63, 448, 455, 504, 511]
        self.assertTrue(np.all(example["grid_sdf"][corners] > 0))
        self.assertTrue(np.any(example["grid_sdf"] < 0))

    def test_deterministic_and_splits_differ(self):
        first = procedural.shape_example(np.random.RandomState([0, 2, 5]), 64, 0.02, 8, 32)
        again = procedural.shape_example(np.random.RandomState([0, 2, 5]), 64, 0.02, 8, 32)
        other = procedural.shape_example(np.random.RandomState([0, 0, 5]), 64, 0.02, 8, 32)
        for key in first:
            np.testing.assert_array_equal(first[key], again[key])
        self.assertFalse(np.allclose(first["grid_sdf"], other["grid_sdf"]))

    def test_builder_small_config_static_shapes(self):
        data_dir = self.get_temp_dir()
        ds = procedural.procedural_shapes_examples("test", config="small", data_dir=data_dir)
        self.assertEqual({k: tuple(v.shape) for k, v in ds.element_spec.items()},
                         {"points": (256, 3), "sdf": (256,), "grid_sdf": (512,),
                          "surface": (128, 3)})
        examples = list(ds.as_numpy_iterator())
        self.assertLen(examples, 4)
        # The builder's test example i is shape_example((seed 0, split 2, i)).
        expected = procedural.shape_example(np.random.RandomState([0, 2, 0]), 256, 0.02, 8,
                                            128)
        match = [np.array_equal(e["grid_sdf"], expected["grid_sdf"]) for e in examples]
        self.assertEqual(sum(match), 1)
        with self.assertRaisesRegex(ValueError, "Unknown procedural_shapes config"):
            procedural.procedural_shapes_examples("test", config="huge", data_dir=data_dir)


class SamplingTest(testing.TestCase):

    def test_grid_order_and_sample_example(self):
        grid = grid_coords(3)
        self.assertEqual(grid.shape, (27, 3))
        np.testing.assert_array_equal(grid[1], [-1.0, -1.0, 0.0])  # z fastest.
        np.testing.assert_array_equal(grid[9], [0.0, -1.0, -1.0])  # x slowest.
        sphere = sdf.Shape((_sphere(0.5),))
        surface = np.array([[0.5, 0.0, 0.0], [0.0, 0.5, 0.0]])
        example = sample_example(sphere.sdf, surface, np.random.RandomState(0), 10, 0.0, 3, 4)
        np.testing.assert_allclose(example["sdf"][:5], 0.0, atol=1e-6)  # std 0: on surface.
        np.testing.assert_allclose(example["grid_sdf"][13], -0.5)  # The centre.
        np.testing.assert_allclose(example["sdf"], sphere.sdf(example["points"]), rtol=1e-6)
