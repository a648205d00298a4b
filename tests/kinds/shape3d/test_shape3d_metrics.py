"""IoU and Chamfer against analytic values (two spheres), the task's loss, metrics and
static-shape checks, the surface picture."""

import numpy as np
import tensorflow as tf

from learnit_tf import testing
from learnit_tf.kinds.shape3d import metrics, render
from learnit_tf.kinds.shape3d.sampling import grid_coords
from learnit_tf.kinds.shape3d.task import ShapeSdfTask, occupancy_iou


def _sphere_sdf(points, radius, center=(0.0, 0.0, 0.0)):
    return np.linalg.norm(np.asarray(points) - np.asarray(center), axis=-1) - radius


def _sphere_points(radius, count, seed=0):
    u = np.random.RandomState(seed).normal(size=(count, 3))
    return radius * u / np.linalg.norm(u, axis=-1, keepdims=True)


class IouTest(testing.TestCase):

    def test_concentric_spheres(self):
        grid = grid_coords(64)
        iou = metrics.grid_iou(_sphere_sdf(grid, 0.4), _sphere_sdf(grid, 0.6))
        self.assertAllClose(iou, (0.4 / 0.6) ** 3, atol=0.01)

    def test_overlapping_spheres_lens(self):
        # Two spheres of radius r whose centres are d apart: the lens's volume is
        # pi (4r + d)(2r - d)^2 / 12.
        r, d = 0.5, 0.3
        lens = np.pi * (4 * r + d) * (2 * r - d) ** 2 / 12
        expected = lens / (2 * 4 / 3 * np.pi * r ** 3 - lens)
        grid = grid_coords(64)
        a, b = _sphere_sdf(grid, r, (-d / 2, 0, 0)), _sphere_sdf(grid, r, (d / 2, 0, 0))
        self.assertAllClose(metrics.grid_iou(a, b), expected, atol=0.01)
        # The compiled metric (task.occupancy_iou) is the same number.
        self.assertAllClose(float(occupancy_iou(tf.constant(a), tf.constant(b))),
                            metrics.grid_iou(a, b), atol=1e-6)

    def test_sign_matters(self):
        grid = grid_coords(16)
        sphere = _sphere_sdf(grid, 0.5)
        self.assertEqual(metrics.grid_iou(sphere, sphere), 1.0)
        # A flipped sign (positive inside) is the complement: IoU 0.
        self.assertEqual(metrics.grid_iou(-sphere, sphere), 0.0)
        self.assertEqual(metrics.grid_iou(np.ones(8), np.ones(8)), 1.0)  # Both empty.


class ChamferTest(testing.TestCase):

    def test_point_sets(self):
        a = np.array([[0.0, 0.0, 0.0]])
        b = np.array([[0.0, 0.0, 0.5], [0.0, 0.0, 1.0]])
        self.assertAllClose(metrics.chamfer_distance(a, b), 0.5 + 0.75)
        self.assertAllClose(metrics.chamfer_distance(b, b), 0.0)

    def test_concentric_spheres_are_twice_the_gap(self):
        grid = grid_coords(64)
        true_surface = _sphere_points(0.6, 4096)
        chamfer = metrics.surface_chamfer(_sphere_sdf(grid, 0.4), 64, true_surface)
        self.assertAllClose(chamfer, 2 * (0.6 - 0.4), atol=0.01)
        # The same sphere: only the sampling floor of two independent 4096-point samples
        # (nearest-neighbour gaps ~ sqrt(area / N) / 2 each way, 0.033 here).
        same = metrics.surface_chamfer(_sphere_sdf(grid, 0.6), 64, true_surface)
        self.assertLess(same, 0.04)

    def test_marching_cubes_frame_and_no_surface(self):
        vertices, faces = metrics.marching_cubes_surface(_sphere_sdf(grid_coords(32), 0.5), 32)
        radii = np.linalg.norm(vertices, axis=-1)
        self.assertAllClose(radii.mean(), 0.5, atol=0.01)  # [-1, 1]^3 frame, not indices.
        self.assertGreater(len(faces), 100)
        self.assertIsNone(metrics.marching_cubes_surface(np.ones(8), 2))
        self.assertTrue(np.isnan(metrics.surface_chamfer(np.ones(8), 2, np.zeros((4, 3)))))


class TaskTest(testing.TestCase):

    def _identity_radius_model(self, radius):
        """f(p) = |p| - radius as a functional model (a sphere's exact SDF)."""
        return lambda weights, p: (tf.norm(p, axis=-1, keepdims=True) - radius)

    def test_loss_is_clamped_l1_and_iou_is_recorded(self):
        task = ShapeSdfTask(num_points=4, grid_resolution=8, num_surface=2, clamp=0.1)
        points = np.array([[0.0, 0, 0], [0.2, 0, 0], [0.9, 0, 0], [0.5, 0, 0]], np.float32)
        example = {"points": points, "sdf": _sphere_sdf(points, 0.5).astype(np.float32),
                   "grid_sdf": _sphere_sdf(grid_coords(8), 0.5).astype(np.float32),
                   "surface": np.zeros((2, 3), np.float32)}
        task.validate_example(example)
        exact = task.metrics(self._identity_radius_model(0.5), [], example)
        self.assertAllClose(float(exact["loss"]), 0.0)
        self.assertAllClose(float(exact["iou"]), 1.0)
        # Radius 0.45: errors 0.05 everywhere, clamped where both sides exceed ±0.1.
        off = task.metrics(self._identity_radius_model(0.45), [], example)
        # Point 0: pred -0.45, true -0.5: both clamp to -0.1 -> 0; point 1: -0.25 vs -0.3 -> 0;
        # point 2: 0.45 vs 0.4 -> 0; point 3: 0.05 vs 0 -> 0.05. Mean 0.0125.
        self.assertAllClose(float(off["loss"]), 0.0125, atol=1e-6)
        self.assertLess(float(off["iou"]), 1.0)
        l2 = ShapeSdfTask(num_points=4, grid_resolution=8, num_surface=2, loss="l2", clamp=None)
        self.assertAllClose(float(l2.inner_loss(self._identity_radius_model(0.45), [], example,
                                                0)), 0.05 ** 2, atol=1e-7)

    def test_static_shapes_are_checked(self):
        task = ShapeSdfTask(num_points=4, grid_resolution=2, num_surface=2)
        good = {"points": np.zeros((4, 3)), "sdf": np.zeros(4), "grid_sdf": np.zeros(8),
                "surface": np.zeros((2, 3))}
        task.validate_example(good)
        for key, bad in (("points", np.zeros((5, 3))), ("grid_sdf", np.zeros(27)),
                         ("surface", np.zeros((2, 2)))):
            with self.assertRaisesRegex(ValueError, f"'{key}'.*has shape"):
                task.validate_example({**good, key: bad})
        with self.assertRaisesRegex(ValueError, "lacks 'sdf'"):
            task.validate_example({k: v for k, v in good.items() if k != "sdf"})
        with self.assertRaisesRegex(ValueError, "NaN"):
            task.validate_example({**good, "sdf": np.full(4, np.nan)})
        with self.assertRaisesRegex(ValueError, "loss must be one of"):
            ShapeSdfTask(loss="huber")


class RenderTest(testing.TestCase):

    def test_picture_of_a_sphere(self):
        image = render.render_grid_sdf(_sphere_sdf(grid_coords(32), 0.5), 32, size=64)
        self.assertEqual(image.shape, (64, 64, 3))
        covered = np.any(image < 1.0, axis=-1)
        # An orthographic view of a radius-0.5 sphere over [-1.25, 1.25]: a disc of
        # radius 0.5 / 1.25 * 32 = 12.8 pixels.
        self.assertAllClose(covered.sum(), np.pi * 12.8 ** 2, rtol=0.1)
        self.assertTrue(covered[32, 32] and not covered[2, 2])
        blank = render.render_grid_sdf(np.ones(8), 2, size=16)
        self.assertTrue(np.all(blank == 1.0))
