"""Tests of the procedural `sdf_2d` TFDS dataset."""

import math
import tempfile
from unittest import mock

import numpy as np
import tensorflow as tf

from learnit_tf.kinds.image import sdf_2d
from learnit_tf.kinds.image import image_grid
from learnit_tf.testing import TestCase


class SdfPrimitivesTest(TestCase):

    def test_circle_distances(self):
        p = np.array([[0.5, 0.5], [0.5, 0.9], [0.5, 0.7]])
        np.testing.assert_allclose(sdf_2d.sdf_circle(p, (0.5, 0.5), 0.2), [-0.2, 0.2, 0.0],
                                   atol=1e-12)

    def test_polygon_matches_box(self):
        # An axis-aligned square as a polygon must equal the exact box SDF everywhere.
        p = image_grid(40).astype(np.float64)
        square = np.array([[0.3, 0.3], [0.3, 0.7], [0.7, 0.7], [0.7, 0.3]])
        np.testing.assert_allclose(sdf_2d.sdf_polygon(p, square),
                                   sdf_2d.sdf_box(p, (0.5, 0.5), (0.2, 0.2)), atol=1e-12)

    def test_polyline_band(self):
        p = np.array([[0.5, 0.5], [0.6, 0.5], [0.5, 0.95]])
        d = sdf_2d.sdf_polyline(p, np.array([[0.5, 0.2], [0.5, 0.8]]), 0.05)
        np.testing.assert_allclose(d, [-0.05, 0.05, 0.1], atol=1e-12)

    def test_color_mapping(self):
        res = 64
        d = np.array([0.0, -0.3, 0.3, 0.1])
        rgb = sdf_2d.sdf_to_rgb(d, res)
        np.testing.assert_allclose(rgb[0], [1.0, 1.0, 1.0])  # the curve itself is white
        for i in (1, 2, 3):
            base = sdf_2d.INSIDE_COLOR if d[i] < 0 else sdf_2d.OUTSIDE_COLOR
            expected = (base * (1 - np.exp(-abs(d[i]) / sdf_2d.SHADE_LENGTH))
                        * (0.8 + 0.2 * np.cos(2 * np.pi * d[i] / sdf_2d.BAND_PERIOD)))
            np.testing.assert_allclose(rgb[i], expected, atol=1e-12)
        self.assertGreater(rgb[1, 2], rgb[1, 0])  # inside is blue
        self.assertGreater(rgb[2, 0], rgb[2, 2])  # outside is orange

    def test_render_is_deterministic_and_in_range(self):
        a = sdf_2d.render_sdf_example((0, 0, 7), 32)
        b = sdf_2d.render_sdf_example((0, 0, 7), 32)
        c = sdf_2d.render_sdf_example((0, 0, 8), 32)
        np.testing.assert_array_equal(a["image"], b["image"])
        self.assertFalse(np.array_equal(a["image"], c["image"]))
        self.assertEqual(a["image"].dtype, np.uint8)
        self.assertEqual(a["image"].shape, (32, 32, 3))
        self.assertTrue(1 <= len(a["shapes"]) <= 3)
        # Pixels well inside the shapes are blue-ish, well outside orange-ish.
        for seed in range(5):
            ex = sdf_2d.render_sdf_example((3, 1, seed), 48)
            img, d = ex["image"].astype(int), ex["sdf"]
            inside, outside = d < -3 / 48, d > 3 / 48
            if inside.any():
                self.assertTrue(np.all(img[inside][:, 2] >= img[inside][:, 0]))
            self.assertTrue(outside.any())
            self.assertTrue(np.all(img[outside][:, 0] >= img[outside][:, 2]))


def _segment_distances_per_pixel(p, a, b):
    """The smallest distance from each point to the segments a[k]→b[k], one point and one
    segment at a time (the reference of the vectorized, blocked path)."""
    out = []
    for y, x in p:
        best = np.inf
        for (ay, ax), (by, bx) in zip(a, b):
            aby, abx = by - ay, bx - ax
            t = min(max(((y - ay) * aby + (x - ax) * abx) / max(aby * aby + abx * abx, 1e-12),
                        0.0), 1.0)
            best = min(best, math.hypot(y - ay - t * aby, x - ax - t * abx))
        out.append(best)
    return np.array(out)


def _inside_per_pixel(p, vertices):
    """Even-odd rule, one point at a time."""
    inside = []
    for y, x in p:
        odd = False
        for (ay, ax), (by, bx) in zip(vertices, np.roll(vertices, -1, axis=0)):
            if (ay > y) != (by > y) and x < ax + (y - ay) * (bx - ax) / (by - ay):
                odd = not odd
        inside.append(odd)
    return np.array(inside)


def _previous_segment_distances(p, a, b):
    """The (N, K) segment distances as sdf_2d computed them before the blocked path."""
    ab = b - a
    denom = np.maximum(np.sum(ab * ab, axis=-1), 1e-12)
    apy = p[:, 0:1] - a[None, :, 0]
    apx = p[:, 1:2] - a[None, :, 1]
    t = np.clip((apy * ab[:, 0] + apx * ab[:, 1]) / denom, 0.0, 1.0)
    dy = apy - t * ab[:, 0]
    dx = apx - t * ab[:, 1]
    return np.sqrt(dy * dy + dx * dx)


def _previous_sdf_polygon(p, vertices):
    shape = p.shape[:-1]
    pts = p.reshape(-1, 2)
    a = np.asarray(vertices, np.float64)
    b = np.roll(a, -1, axis=0)
    dist = _previous_segment_distances(pts, a, b).min(axis=1)
    y, x = pts[:, 0:1], pts[:, 1:2]
    ay, ax, by, bx = a[None, :, 0], a[None, :, 1], b[None, :, 0], b[None, :, 1]
    straddles = (ay > y) != (by > y)
    with np.errstate(divide="ignore", invalid="ignore"):
        x_cross = ax + (y - ay) * (bx - ax) / (by - ay)
    crossings = np.sum(straddles & (x < x_cross), axis=1)
    return (np.where(crossings % 2 == 1, -1.0, 1.0) * dist).reshape(shape)


def _previous_sdf_polyline(p, points, half_width):
    pts = np.asarray(points, np.float64)
    dist = _previous_segment_distances(p.reshape(-1, 2), pts[:-1], pts[1:]).min(axis=1)
    return (dist - half_width).reshape(p.shape[:-1])


class BlockedDistancesTest(TestCase):
    """The blocked distance path (one square root per pixel, blocks of _BLOCK pixels)."""

    def test_matches_the_per_pixel_path(self):
        rng = np.random.default_rng(0)
        p = image_grid(12).astype(np.float64).reshape(-1, 2)
        for count in (3, 5, 8):
            verts = sdf_2d._star_points(rng, rng.uniform(0.3, 0.7, 2), 0.3, count)
            d = sdf_2d.sdf_polygon(p, verts)
            dist = _segment_distances_per_pixel(p, verts, np.roll(verts, -1, axis=0))
            np.testing.assert_allclose(np.abs(d), dist, rtol=1e-12, atol=1e-15)
            np.testing.assert_array_equal(d < 0, _inside_per_pixel(p, verts))
            line = rng.uniform(0.1, 0.9, (count, 2))
            np.testing.assert_allclose(sdf_2d.sdf_polyline(p, line, 0.02),
                                       _segment_distances_per_pixel(p, line[:-1], line[1:]) - 0.02,
                                       rtol=1e-12, atol=1e-15)

    def test_images_identical_to_the_previous_path(self):
        # Several blocks (40 x 40 = 1600 pixels, blocks of 512) and every shape kind: the
        # images and distances are the ones the unblocked path rendered, bit for bit.
        with mock.patch.object(sdf_2d, "_BLOCK", 512):
            new = [sdf_2d.render_sdf_example((2, 0, i), 40) for i in range(30)]
        with mock.patch.object(sdf_2d, "sdf_polygon", _previous_sdf_polygon), \
                mock.patch.object(sdf_2d, "sdf_polyline", _previous_sdf_polyline):
            old = [sdf_2d.render_sdf_example((2, 0, i), 40) for i in range(30)]
        self.assertEqual({k for ex in new for k in ex["shapes"]}, set(sdf_2d.SHAPE_KINDS))
        for a, b in zip(new, old):
            np.testing.assert_array_equal(a["image"], b["image"])
            np.testing.assert_array_equal(a["sdf"], b["sdf"])


class Sdf2dBuilderTest(TestCase):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.dirs = [tempfile.mkdtemp() for _ in range(3)]

    def _images(self, split, data_dir):
        return np.stack([ex["image"].numpy()
                         for ex in sdf_2d.sdf_2d_examples(split, "small", data_dir)])

    def test_small_config_shapes_ranges_and_splits(self):
        ds = sdf_2d.sdf_2d_examples("train", "small", self.dirs[0])
        self.assertEqual(ds.element_spec["image"], tf.TensorSpec((64, 64, 3), tf.float32))
        train = self._images("train", self.dirs[0])
        test = self._images("test", self.dirs[0])
        self.assertEqual(train.shape, (200, 64, 64, 3))
        self.assertEqual(len(self._images("validation", self.dirs[0])), 50)
        self.assertEqual(len(test), 50)
        self.assertGreaterEqual(train.min(), 0.0)
        self.assertLessEqual(train.max(), 1.0)
        self.assertGreater(train.std(axis=(1, 2, 3)).min(), 0.05)  # no blank images
        # Splits use different seeds: no test image appears in train.
        flat_train = {x.tobytes() for x in train}
        self.assertFalse(any(x.tobytes() in flat_train for x in test))

    def test_generation_is_deterministic(self):
        # Two independent generations (separate data dirs) give identical datasets.
        tiny = sdf_2d.Sdf2dConfig(name="tiny", resolution=24, num_train=6, num_validation=2,
                                  num_test=4, seed=5)
        runs = [np.stack([ex["image"].numpy() for ex in sdf_2d.sdf_2d_examples("test", tiny, d)])
                for d in self.dirs[1:]]
        self.assertEqual(runs[0].shape, (4, 24, 24, 3))
        np.testing.assert_array_equal(runs[0], runs[1])
        # ... and equal to rendering the examples directly from their seeds (any order).
        direct = {sdf_2d.render_sdf_example((5, sdf_2d.SPLIT_IDS["test"], i), 24)["image"]
                  .tobytes() for i in range(4)}
        self.assertEqual({np.round(x * 255).astype(np.uint8).tobytes() for x in runs[0]},
                         direct)

    def test_unknown_config(self):
        with self.assertRaisesRegex(ValueError, "Unknown sdf_2d config 'huge'"):
            sdf_2d.sdf_2d_examples("train", "huge", self.dirs[0])


if __name__ == "__main__":
    tf.test.main()
