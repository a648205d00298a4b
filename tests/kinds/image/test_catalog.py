"""Tests of the CelebA / Imagenette pipelines on TFDS mock data."""

import numpy as np
import tensorflow as tf
import tensorflow_datasets as tfds

from learnit_tf.kinds.image import catalog
from learnit_tf.testing import TestCase

_IMAGE_ONLY = tfds.decode.PartialDecoding({"image": True})


def _raw_images(name, split="train"):
    # Same decoders as the pipeline, so the mock generates the same random images.
    return [ex["image"].numpy() for ex in tfds.load(name, split=split, decoders=_IMAGE_ONLY)]


class CelebATest(TestCase):

    def test_paper_crop(self):
        with tfds.testing.mock_data(num_examples=3):
            ds = catalog.celeb_a_examples("train")
            images = [ex["image"].numpy() for ex in ds]
            raw = _raw_images("celeb_a")
        self.assertEqual(ds.element_spec["image"], tf.TensorSpec((178, 178, 3), tf.float32))
        self.assertLen(images, 3)
        for image, original in zip(images, raw):
            self.assertEqual(original.shape, (218, 178, 3))
            self.assertEqual(image.shape, (178, 178, 3))
            self.assertGreaterEqual(image.min(), 0.0)
            self.assertLessEqual(image.max(), 1.0)
            # Rows 20..197: the centred 178×178 window of the 218×178 image.
            self.assertAllClose(image, original[20:198].astype(np.float32) / 255.0, atol=1e-6)

    def test_resized(self):
        with tfds.testing.mock_data(num_examples=2):
            images = [ex["image"].numpy() for ex in catalog.celeb_a_examples("test", 64)]
            raw = _raw_images("celeb_a", "test")
        expected = tf.image.resize(raw[0][20:198].astype(np.float32) / 255.0, (64, 64),
                                   antialias=True).numpy()
        self.assertEqual(images[0].shape, (64, 64, 3))
        self.assertAllClose(images[0], expected, atol=1e-5)
        self.assertBetween(float(images[0].min()), 0.0, 1.0)
        self.assertBetween(float(images[0].max()), 0.0, 1.0)

    def test_too_small_image(self):
        with self.assertRaisesRegex(ValueError, r"celeb_a.*\(100, 178, 3\).*178x178 crop"):
            catalog.celeba_image(tf.zeros((100, 178, 3), tf.uint8))
        dynamic = tf.function(catalog.celeba_image,
                              input_signature=[tf.TensorSpec((None, None, 3), tf.uint8)])
        with self.assertRaisesRegex(tf.errors.InvalidArgumentError,
                                    "smaller than the 178x178 crop"):
            dynamic(tf.zeros((218, 120, 3), tf.uint8))

    def test_bad_resolution(self):
        with self.assertRaisesRegex(ValueError, "resolution must be a positive int"):
            catalog.celeb_a_examples("train", resolution=0)


def _imagenette_as_dataset(sizes):
    def as_dataset(self, split, decoders=None, read_config=None, shuffle_files=False, **kw):
        del self, split, decoders, read_config, shuffle_files, kw
        rng = np.random.default_rng(0)
        images = [rng.integers(0, 256, (h, w, 3), dtype=np.uint8) for h, w in sizes]
        return tf.data.Dataset.from_generator(
            lambda: ({"image": im} for im in images),
            output_signature={"image": tf.TensorSpec((None, None, 3), tf.uint8)})
    return as_dataset


class ImagenetteTest(TestCase):

    def test_square_crop_and_resize(self):
        sizes = [(200, 260), (300, 240)]
        with tfds.testing.mock_data(as_dataset_fn=_imagenette_as_dataset(sizes)):
            ds = catalog.imagenette_examples("train")
            images = [ex["image"].numpy() for ex in ds]
            raw = _raw_images("imagenette/320px-v2")
        self.assertEqual(ds.element_spec["image"], tf.TensorSpec((178, 178, 3), tf.float32))
        self.assertLen(images, 2)
        crops = [raw[0][:, 30:230], raw[1][30:270, :]]  # centred squares of side 200, 240
        for image, crop in zip(images, crops):
            self.assertEqual(image.shape, (178, 178, 3))
            self.assertGreaterEqual(image.min(), 0.0)
            self.assertLessEqual(image.max(), 1.0)
            expected = tf.image.resize(crop.astype(np.float32) / 255.0, (178, 178),
                                       antialias=True).numpy()
            self.assertAllClose(image, expected, atol=1e-5)

    def test_images_smaller_than_crop(self):
        # Default mock images are 5..50 pixels: smaller than the 178 crop.
        with tfds.testing.mock_data(num_examples=2):
            ds = catalog.imagenette_examples("train")
            with self.assertRaisesRegex(tf.errors.InvalidArgumentError,
                                        r"imagenette/320px-v2: an image is smaller than the "
                                        r"178x178 crop"):
                list(ds)
            # Accepting small images explicitly still gives the static output shape.
            images = [ex["image"] for ex in catalog.imagenette_examples(
                "train", resolution=178, min_side=1)]
        self.assertEqual(images[0].shape, (178, 178, 3))


if __name__ == "__main__":
    tf.test.main()
