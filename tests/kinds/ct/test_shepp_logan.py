"""Tests of the `shepp_logan` phantom generator and TFDS builder."""

import importlib
import os
import socket
import tempfile
from unittest import mock

import numpy as np
import phantominator

from learnit_tf import testing
from learnit_tf.kinds.ct import shepp_logan


def _build(data_dir, split="test"):
    return np.stack([ex["image"] for ex in shepp_logan.shepp_logan_examples(
        split, config="small", data_dir=data_dir).as_numpy_iterator()])


class PhantomTest(testing.TestCase):

    def test_perturbed_parameters_stay_in_documented_ranges(self):
        base = phantominator.ct_modified_shepp_logan_params_2d()
        rng = np.random.default_rng(123)
        tables = np.stack([shepp_logan.random_ellipses(rng) for _ in range(2000)])
        # Skull grey is the fixed intensity anchor; the brain's varies by ±10 %.
        self.assertTrue(np.all(tables[:, 0, 0] == 1.0))
        self.assertBetween(tables[:, 1, 0].min(), -0.8 * 1.1 - 1e-9, -0.8 * 0.9)
        self.assertBetween(tables[:, 1, 0].max(), -0.8 * 1.1, -0.8 * 0.9 + 1e-9)
        # Axis scale = local × global: head in [0.9·0.9, 1], inner in [0.8·0.9, 1.2].
        ratio = tables[:, :, 1:3] / base[None, :, 1:3]
        self.assertGreaterEqual(ratio[:, :2].min(), 0.81 - 1e-9)
        self.assertLessEqual(ratio[:, :2].max(), 1.0 + 1e-9)
        self.assertGreaterEqual(ratio[:, 2:].min(), 0.72 - 1e-9)
        self.assertLessEqual(ratio[:, 2:].max(), 1.2 + 1e-9)
        # The draws use their ranges (not a degenerate constant).
        self.assertLess(ratio[:, 2:].min(), 0.75)
        self.assertGreater(ratio[:, 2:].max(), 1.17)
        grey = tables[:, 2:, 0] / base[None, 2:, 0]
        self.assertBetween(grey.min(), 0.5, 0.52)
        self.assertBetween(grey.max(), 1.48, 1.5)
        dangle = np.degrees(tables[:, :, 5] - base[None, :, 5])
        self.assertLessEqual(np.abs(dangle[:, :2]).max(), 10.0 + 1e-9)
        self.assertLessEqual(np.abs(dangle[:, 2:]).max(), 25.0 + 1e-9)
        # Every ellipse inside the disc of radius 0.97: no mass outside the inscribed circle.
        reach = np.hypot(tables[:, :, 3], tables[:, :, 4]) + tables[:, :, 1:3].max(-1)
        self.assertLess(reach.max(), 0.97)

    def test_phantom_is_deterministic_by_seed_and_in_unit_range(self):
        a = shepp_logan.random_phantom((0, 0, 5), 48)
        b = shepp_logan.random_phantom((0, 0, 5), 48)
        c = shepp_logan.random_phantom((0, 0, 6), 48)
        np.testing.assert_array_equal(a, b)
        self.assertGreater(np.abs(a - c).max(), 0.05)
        self.assertEqual(a.dtype, np.float32)
        self.assertEqual(a.min(), 0.0)
        self.assertEqual(a.max(), 1.0)  # The skull rim.
        # Zero outside the inscribed circle (radius (N-1)/2 about the centre).
        yy, xx = np.mgrid[:48, :48] - 23.5
        self.assertEqual(float(np.abs(a[np.hypot(yy, xx) > 23.5]).max()), 0.0)

    def test_phantom_is_upright(self):
        # The three small ellipses at y = -0.605 sit in the lower half of the image.
        e = phantominator.ct_modified_shepp_logan_params_2d()
        e[:7, 0] = 0.0  # Keep only ellipses 7-9.
        img = shepp_logan.render_phantom(e, 64)
        rows = np.nonzero(img.max(1))[0]
        self.assertGreater(rows.min(), 32)


class BuilderTest(testing.TestCase):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.tmp = tempfile.TemporaryDirectory()
        cls.data_dir = os.path.join(cls.tmp.name, "a")
        # Generation must work offline: any socket connection fails the build.
        with mock.patch.object(socket.socket, "connect",
                               side_effect=OSError("network access during generation")):
            cls.test_images = _build(cls.data_dir)

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()
        super().tearDownClass()

    def test_small_config_shapes_sizes_and_values(self):
        images = self.test_images
        self.assertEqual(images.shape, (20, 64, 64, 1))
        self.assertEqual(images.dtype, np.float32)
        self.assertEqual(images.min(), 0.0)
        self.assertEqual(images.max(), 1.0)
        np.testing.assert_array_equal(images.reshape(20, -1).max(1), np.ones(20, np.float32))
        # Phantoms differ from each other.
        self.assertGreater(np.abs(images[1:] - images[:1]).max(axis=(1, 2, 3)).min(), 0.05)
        builder = shepp_logan.shepp_logan_builder("small", self.data_dir)
        sizes = {name: split.num_examples for name, split in builder.info.splits.items()}
        self.assertEqual(sizes, {"train": 160, "validation": 20, "test": 20})

    def test_generation_is_deterministic(self):
        again = _build(os.path.join(self.tmp.name, "b"))
        np.testing.assert_array_equal(again, self.test_images)
        # Example i of a split is the phantom of seed (config seed, split index, i).
        expected = {shepp_logan.random_phantom((0, 2, i), 64).tobytes() for i in range(20)}
        got = {img[..., 0].tobytes() for img in self.test_images}
        self.assertEqual(got, expected)

    def test_paper_config(self):
        builder = shepp_logan.SheppLogan(config="paper", data_dir=self.tmp.name)
        cfg = builder.builder_config
        self.assertEqual(cfg.resolution, 256)
        self.assertEqual(cfg.num_train + cfg.num_validation + cfg.num_test, 2048)
        self.assertEqual(builder.info.features["image"].shape, (256, 256, 1))

    def test_reimport_does_not_break(self):
        module = importlib.reload(shepp_logan)
        images = np.stack([ex["image"] for ex in module.shepp_logan_examples(
            "test[:3]", config="small", data_dir=self.data_dir).as_numpy_iterator()])
        np.testing.assert_array_equal(images, self.test_images[:3])

    def test_bad_config_and_split(self):
        with self.assertRaisesRegex(ValueError, "config 'huge'.*paper.*small"):
            shepp_logan.shepp_logan_examples("train", config="huge", data_dir=self.data_dir)
        with self.assertRaisesRegex(ValueError, "split 'dev'.*test.*train.*validation"):
            shepp_logan.shepp_logan_examples("dev", config="small", data_dir=self.data_dir)


if __name__ == "__main__":
    import tensorflow as tf
    tf.test.main()
