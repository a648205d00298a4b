"""Cameras, rays, stratified sampling and volume compositing (learnit_tf.kinds.nerf)."""

import numpy as np
import tensorflow as tf

from learnit_tf import testing
from learnit_tf.models import FunctionalModel, NerfMLP
from learnit_tf.kinds.nerf import cameras, rendering


def constant_field(rgb_raw, sigma_raw):
    """A fake network: the same raw (r, g, b, σ) at every point."""
    def fmodel(weights, points):
        del weights
        n = tf.shape(points)[0]
        raw = tf.constant(list(rgb_raw) + [sigma_raw], tf.float32)
        return tf.tile(raw[None], [n, 1])
    return fmodel


class CameraTest(testing.TestCase):

    def test_rays_hit_hand_computed_pixels(self):
        # Camera at z = 4 looking at the origin with y up: NeRF convention, image x to the
        # right = world +x, image rows downwards = world -y.
        h = w = 32
        angle = cameras.NERF_SYNTHETIC_CAMERA_ANGLE_X
        focal = 0.5 * w / np.tan(0.5 * angle)
        pose = cameras.look_at_pose((0.0, 0.0, 4.0), up=(0.0, 1.0, 0.0))
        rays_o, rays_d = cameras.nerf_synthetic_rays(h, w, angle, pose)
        rays_o, rays_d = rays_o.numpy(), rays_d.numpy()
        # Principal point (column W/2, row H/2) looks straight at the origin.
        self.assertAllClose(rays_o[16, 16] + 4.0 * rays_d[16, 16], [0.0, 0.0, 0.0], atol=1e-6)
        # Three columns right of centre reaches x = 3·4/f on the z = 0 plane.
        self.assertAllClose(rays_o[16, 19] + 4.0 * rays_d[16, 19], [12.0 / focal, 0.0, 0.0],
                            atol=1e-5)
        # Two rows above centre reaches y = +2·4/f.
        self.assertAllClose(rays_o[14, 16] + 4.0 * rays_d[14, 16], [0.0, 8.0 / focal, 0.0],
                            atol=1e-5)

    def test_project_point_then_ray_through_its_pixel_passes_through_it(self):
        h, w, angle = 24, 32, 0.8
        rng = np.random.default_rng(0)
        poses = cameras.sphere_poses(rng, 3, radius=4.0)
        for pose in poses:
            rays_o, rays_d = cameras.nerf_synthetic_rays(h, w, angle, pose)
            rays_o, rays_d = rays_o.numpy(), rays_d.numpy()
            # Exact: the point at depth t on the ray of pixel (row, col) projects to (col, row).
            rows, cols = rng.integers(0, h, 20), rng.integers(0, w, 20)
            t = rng.uniform(2.0, 6.0, 20)
            points = rays_o[rows, cols] + t[:, None] * rays_d[rows, cols]
            pixels, depth = cameras.project_points(points, h, w, angle, pose)
            self.assertAllClose(pixels.numpy(), np.stack([cols, rows], -1).astype(np.float32),
                                atol=1e-3)
            self.assertAllClose(depth.numpy(), t, atol=1e-4)  # t is the camera z-depth
            # Any point: the ray of its nearest pixel passes within half a pixel of it.
            points = rng.uniform(-1.0, 1.0, (50, 3))
            pixels, depth = cameras.project_points(points, h, w, angle, pose)
            ij = np.round(pixels.numpy()).astype(int)
            inside = (ij[:, 0] >= 0) & (ij[:, 0] < w) & (ij[:, 1] >= 0) & (ij[:, 1] < h)
            self.assertGreater(inside.sum(), 40)
            o = rays_o[ij[inside, 1], ij[inside, 0]]
            d = rays_d[ij[inside, 1], ij[inside, 0]]
            p = points[inside]
            t_closest = np.sum((p - o) * d, -1) / np.sum(d * d, -1)
            dist = np.linalg.norm(o + t_closest[:, None] * d - p, axis=-1)
            focal = 0.5 * w / np.tan(0.5 * angle)
            pixel_size_at_depth = depth.numpy()[inside] / focal
            self.assertTrue(np.all(dist <= 0.71 * pixel_size_at_depth * np.linalg.norm(d, axis=-1)))

    def test_inverse_intrinsics_rays(self):
        f, cx, cy = 50.0, 20.0, 15.0
        kinv = np.linalg.inv(np.array([[f, 0, cx], [0, f, cy], [0, 0, 1.0]]))
        rng = np.random.default_rng(1)
        c2w = np.eye(4)
        c2w[:3, :3] = cameras.look_at_pose((1.0, 2.0, 3.0))[:3, :3]
        c2w[:3, 3] = [0.5, -1.0, 2.0]
        for stride in (1, 2):
            rays_o, rays_d = cameras.inverse_intrinsics_rays(30, 40, kinv, c2w, stride=stride)
            self.assertEqual(tuple(rays_d.shape), (-(-30 // stride), -(-40 // stride), 3))
            # A point at camera-frame depth Z in front of full-res pixel (i, j).
            i, j, z = 2 * rng.integers(0, 20), 2 * rng.integers(0, 15), 3.7
            cam_point = np.array([(i - cx) * z / f, (j - cy) * z / f, z])
            world = c2w[:3, :3] @ cam_point + c2w[:3, 3]
            o, d = rays_o.numpy()[j // stride, i // stride], rays_d.numpy()[j // stride,
                                                                            i // stride]
            self.assertAllClose(o + z * d, world, atol=1e-4)

    def test_turntable_and_orbit(self):
        poses = cameras.turntable_poses(8, radius=3.0, elevation_deg=20.0)
        self.assertAllClose(np.linalg.norm(poses[:, :3, 3], axis=-1), np.full(8, 3.0),
                            atol=1e-5)
        # Every camera looks at the origin: -z axis parallel to -position.
        forward = -poses[:, :3, 2]
        self.assertAllClose(forward, -poses[:, :3, 3] / 3.0, atol=1e-5)
        up, radius, elevation = cameras.estimate_orbit(poses)
        self.assertAllClose(up, [0.0, 0.0, 1.0], atol=1e-5)
        self.assertAllClose([radius, elevation], [3.0, 20.0], atol=1e-3)

    def test_interpolate_poses_endpoints(self):
        a = cameras.look_at_pose((4.0, 0.0, 1.0))
        b = cameras.look_at_pose((0.0, 4.0, 2.0))
        path = cameras.interpolate_poses(a, b, 5)
        self.assertAllClose(path[0], a, atol=1e-5)
        self.assertAllClose(path[-1], b, atol=1e-5)
        for pose in path:  # rotations stay orthonormal
            self.assertAllClose(pose[:3, :3] @ pose[:3, :3].T, np.eye(3), atol=1e-5)


class RenderingTest(testing.TestCase):

    def test_stratified_samples(self):
        near = np.array([2.0, 1.0, 0.5], np.float32)
        far = np.array([6.0, 3.0, 0.75], np.float32)
        t = rendering.stratified_samples(near, far, 3, 8, seed=tf.constant([1, 2])).numpy()
        again = rendering.stratified_samples(near, far, 3, 8, seed=tf.constant([1, 2])).numpy()
        other = rendering.stratified_samples(near, far, 3, 8, seed=tf.constant([1, 3])).numpy()
        self.assertAllEqual(t, again)
        self.assertGreater(np.abs(t - other).max(), 1e-3)
        bins = np.linspace(0.0, 1.0, 9)
        lower = near[:, None] + (far - near)[:, None] * bins[:-1]
        upper = near[:, None] + (far - near)[:, None] * bins[1:]
        self.assertTrue(np.all((t >= lower - 1e-6) & (t <= upper + 1e-6)))
        centres = rendering.stratified_samples(2.0, 6.0, 1, 4).numpy()
        self.assertAllClose(centres, [[2.5, 3.5, 4.5, 5.5]])

    def test_constant_density_gives_analytic_transmittance(self):
        sigma, near, far = 0.7, 2.0, 6.0
        rays_d = tf.constant([[0.0, 0.0, -2.0], [0.0, 1.0, 0.0]])  # norms 2 and 1
        norms = np.array([2.0, 1.0])
        num_samples = 16
        t = rendering.stratified_samples(near, far, 2, num_samples, seed=tf.constant([0, 5]))
        raw = tf.concat([tf.zeros((2, num_samples, 3)), tf.fill((2, num_samples, 1), sigma)], -1)
        for white in (True, False):
            out = rendering.composite(raw, t, rays_d, near, far, white_background=white)
            expected_opacity = 1.0 - np.exp(-sigma * norms * (far - near))
            self.assertAllClose(out["opacity"], expected_opacity, atol=1e-5)
            # Transmittance to the start of every sample's interval is exp(-σ · distance).
            t_np = t.numpy()
            starts = np.concatenate([np.full((2, 1), near), 0.5 * (t_np[:, 1:] + t_np[:, :-1])],
                                    -1)
            expected_t = np.exp(-sigma * norms[:, None] * (starts - near))
            self.assertAllClose(out["transmittance"], expected_t, atol=1e-5)
            background = (1.0 - expected_opacity)[:, None] if white else 0.0
            expected_rgb = np.broadcast_to(0.5 * expected_opacity[:, None] + background, (2, 3))
            self.assertAllClose(out["rgb"], expected_rgb, atol=1e-5)

    def test_negative_density_is_transparent(self):
        raw = tf.concat([tf.fill((3, 8, 3), 2.0), tf.fill((3, 8, 1), -3.0)], -1)
        t = rendering.stratified_samples(2.0, 6.0, 3, 8)
        out = rendering.composite(raw, t, tf.ones((3, 3)), 2.0, 6.0, white_background=True)
        self.assertAllClose(out["opacity"], np.zeros(3))
        self.assertAllClose(out["rgb"], np.ones((3, 3)))
        self.assertAllClose(out["depth"], np.full(3, 6.0))  # background counted at far

    def test_opaque_plane_depth_and_colour(self):
        # Dense red half-space z < 0 seen from z = 4 along -z: depth 4, colour red.
        def fmodel(weights, points):
            del weights
            inside = tf.cast(points[:, 2] < 0.0, tf.float32)
            return tf.stack([tf.fill(tf.shape(inside), 10.0), -10.0 + 0.0 * inside,
                             -10.0 + 0.0 * inside, 1000.0 * inside], -1)

        rays_o = tf.constant([[0.0, 0.0, 4.0], [0.3, -0.2, 4.0]])
        rays_d = tf.constant([[0.0, 0.0, -1.0], [0.0, 0.0, -1.0]])
        out = rendering.render_rays(fmodel, [], rays_o, rays_d, 2.0, 6.0, num_samples=256)
        self.assertAllClose(out["opacity"], [1.0, 1.0], atol=1e-4)
        self.assertAllClose(out["depth"], [4.0, 4.0], atol=4.0 / 256)
        self.assertAllClose(out["rgb"], [[1.0, 0.0, 0.0]] * 2, atol=1e-4)

    def test_jit_and_eager_rendering_agree(self):
        fmodel = FunctionalModel(NerfMLP(width=16, hidden_layers=2, seed=3))
        weights = fmodel.initial_weights()
        rng = np.random.default_rng(0)
        rays_o = tf.constant(rng.normal(size=(37, 3)) + [0.0, 0.0, 4.0], tf.float32)
        rays_d = tf.constant(rng.normal(size=(37, 3)) * 0.1 + [0.0, 0.0, -1.0], tf.float32)
        near = tf.constant(rng.uniform(1.5, 2.5, 37), tf.float32)
        seed = tf.constant([4, 2])

        def render(w, o, d, n, s=None):
            return rendering.render_rays(fmodel, w, o, d, n, 6.0, 24, seed=s)

        eager = render(weights, rays_o, rays_d, near)
        jitted = tf.function(render, jit_compile=True)
        compiled = jitted(weights, rays_o, rays_d, near)
        for key in ("rgb", "depth", "opacity"):
            self.assertAllClose(eager[key], compiled[key], atol=1e-4, rtol=1e-4)
        self.assertGreater(float(tf.reduce_max(eager["opacity"])), 0.01)  # not trivially empty
        # Jittered samples: reproducible from the seed under XLA. (TF's stateless RNG gives
        # different streams with and without XLA on CPU, so jitter is compared within a mode.)
        first = jitted(weights, rays_o, rays_d, near, seed)
        second = jitted(weights, rays_o, rays_d, near, seed)
        other = jitted(weights, rays_o, rays_d, near, seed + 1)
        self.assertAllEqual(first["rgb"], second["rgb"])
        self.assertGreater(float(tf.reduce_max(tf.abs(first["rgb"] - other["rgb"]))), 1e-5)

        # Chunked rendering (graph map_fn, and the Python-loop renderer) equals one batch.
        direct = rendering.render_rays(fmodel, weights, rays_o, rays_d, near, 6.0, 24)
        chunked = tf.function(lambda w: rendering.render_rays_chunked(
            fmodel, w, rays_o, rays_d, near, 6.0, 24, chunk=8), jit_compile=True)(weights)
        renderer = rendering.RayRenderer(fmodel, 24, chunk=10)
        looped = renderer(weights, rays_o.numpy(), rays_d.numpy(), near.numpy(), 6.0)
        for key in ("rgb", "depth", "opacity"):
            self.assertAllClose(chunked[key], direct[key], atol=1e-4)
            self.assertAllClose(looped[key], direct[key], atol=1e-4)

    def test_renderer_rejects_bad_bounds_and_shapes(self):
        renderer = rendering.RayRenderer(constant_field((0, 0, 0), 1.0), 4, chunk=4)
        with self.assertRaisesRegex(ValueError, "near must be < far"):
            renderer([], np.zeros((3, 3)), np.ones((3, 3)), 6.0, 2.0)
        with self.assertRaisesRegex(ValueError, "equal shapes"):
            renderer([], np.zeros((3, 3)), np.ones((4, 3)), 2.0, 6.0)
