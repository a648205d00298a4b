"""Shared test helpers (keras-hub style): a TestCase with learnit_tf assertions."""

import keras
import numpy as np
import tensorflow as tf
from absl.testing import parameterized


class TestCase(tf.test.TestCase, parameterized.TestCase):
    """Base class of learnit_tf tests."""

    def setUp(self):
        super().setUp()
        keras.utils.set_random_seed(0)

    def assertWeightsClose(self, actual, expected, atol=1e-6, rtol=1e-6, msg=None):
        """Asserts two weight lists have equal length and elementwise-close tensors."""
        self.assertEqual(len(actual), len(expected), msg)
        for i, (a, e) in enumerate(zip(actual, expected)):
            self.assertAllClose(np.asarray(a), np.asarray(e), atol=atol, rtol=rtol,
                                msg=f"weight {i}: {msg or ''}")

    def random_images(self, n, resolution, channels=3, seed=0):
        """Smooth random images in [0, 1], float32 (n, res, res, channels)."""
        rng = np.random.RandomState(seed)
        coarse = rng.rand(n, 4, 4, channels).astype(np.float32)
        return tf.image.resize(coarse, (resolution, resolution), "bilinear").numpy()
