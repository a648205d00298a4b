"""The one image decoder, folder splits and the image fit reader, good and bad inputs."""

import os

import numpy as np
from PIL import Image

from learnit_tf.core.fit_input import FitInput
from learnit_tf.kinds.image import ImageTask
from learnit_tf.kinds.image import folder
from learnit_tf.testing import TestCase


def _write_rgb(path, size=(20, 20), seed=0):
    array = (np.random.RandomState(seed).rand(size[1], size[0], 3) * 255).astype(np.uint8)
    Image.fromarray(array).save(path)
    return array


class DecoderTest(TestCase):

    def test_16_bit_grayscale_keeps_its_values(self):
        # Pillow clips "I;16" to 8 bits when converting to RGB: the mean would be 0.998.
        path = os.path.join(self.get_temp_dir(), "g16.png")
        Image.fromarray(np.full((12, 10), 32700, np.uint16)).save(path)
        self.assertEqual(Image.open(path).mode, "I;16")
        pixels = folder.read_image(path)
        self.assertEqual(pixels.shape, (12, 10, 1))
        self.assertAllClose(pixels.mean(), 32700 / 65535, atol=1e-6)
        rgb = folder.load_image(path, 8)
        self.assertEqual(rgb.shape, (8, 8, 3))
        self.assertAllClose(rgb.mean(), 0.499, atol=1e-3)
        # A 16-bit ramp keeps more than 256 levels.
        ramp = os.path.join(self.get_temp_dir(), "ramp16.png")
        Image.fromarray(np.arange(1000, dtype=np.uint16).reshape(20, 50) * 60).save(ramp)
        self.assertGreater(len(np.unique(folder.read_image(ramp))), 900)

    def test_modes(self):
        tmp = self.get_temp_dir()
        rgb = _write_rgb(os.path.join(tmp, "rgb.png"))
        self.assertAllClose(folder.read_image(os.path.join(tmp, "rgb.png")), rgb / 255.0)
        Image.fromarray(rgb).convert("L").save(os.path.join(tmp, "gray.jpg"))
        self.assertEqual(folder.load_image(os.path.join(tmp, "gray.jpg")).shape, (20, 20, 3))
        rgba = np.zeros((4, 4, 4), np.uint8)
        rgba[..., 0] = 255
        rgba[:2, :, 3] = 255  # Top half opaque red, bottom half transparent.
        Image.fromarray(rgba).save(os.path.join(tmp, "rgba.png"))
        composited = folder.load_image(os.path.join(tmp, "rgba.png"))
        self.assertAllClose(composited[0, 0], [1.0, 0.0, 0.0])
        self.assertAllClose(composited[3, 0], [1.0, 1.0, 1.0])  # Transparent -> white.
        Image.fromarray(rgb).convert("P").save(os.path.join(tmp, "palette.png"))
        self.assertEqual(folder.read_image(os.path.join(tmp, "palette.png")).shape, (20, 20, 3))

    def test_bad_files_name_the_file(self):
        tmp = self.get_temp_dir()
        text = os.path.join(tmp, "notes.png")
        with open(text, "w") as f:
            f.write("not an image")
        with self.assertRaisesRegex(ValueError, "Cannot read .*notes.png"):
            folder.read_image(text)
        truncated = os.path.join(tmp, "cut.png")
        _write_rgb(truncated, (30, 30))
        with open(truncated, "rb") as f:
            data = f.read()
        with open(truncated, "wb") as f:
            f.write(data[: len(data) // 2])
        with self.assertRaisesRegex(ValueError, "Cannot read .*cut.png"):
            folder.read_image(truncated)
        # CMYK is converted now (tests/kinds/image/test_image_decoder.py); 32-bit signed
        # samples have no full scale.
        signed = os.path.join(tmp, "signed.tif")
        Image.fromarray(np.arange(16, dtype=np.int32).reshape(4, 4)).save(signed)
        with self.assertRaisesRegex(ValueError, "signed.tif.* samples of int32"):
            folder.read_image(signed)
        big = os.path.join(tmp, "big.png")
        Image.new("L", (300, 300)).save(big)
        with self.assertRaisesRegex(ValueError, r"big.png.* too large .*300×300.*at most 10000"):
            folder.read_image(big, max_pixels=10000)
        # Pillow's own bomb check (a 14000² PNG raised a raw DecompressionBombError) at a
        # lowered threshold: the same clear ValueError.
        limit = Image.MAX_IMAGE_PIXELS
        Image.MAX_IMAGE_PIXELS = 1000
        self.addCleanup(setattr, Image, "MAX_IMAGE_PIXELS", limit)
        with self.assertRaisesRegex(ValueError, r"big.png.* too large .*decompression bomb"):
            folder.read_image(big, max_pixels=10**9)
        small = os.path.join(tmp, "small.png")
        _write_rgb(small, (20, 20))
        with self.assertRaisesRegex(ValueError, "small.png.* is 20×20, smaller than the "
                                                "requested 32"):
            folder.load_image(small, 32)


class FolderSplitTest(TestCase):

    def test_hash_split_small_folders_have_a_test_file(self):
        for n in range(2, 12):
            entries = [f"/d/img{i}.png" for i in range(n)]
            train, test = folder.hash_split(entries, 0.1)
            self.assertGreaterEqual(len(test), 1, n)
            self.assertGreaterEqual(len(train), 1, n)
            self.assertCountEqual(train + test, entries)
            self.assertEqual(folder.hash_split(entries, 0.1), (train, test))  # Deterministic.
        self.assertEqual(folder.hash_split(["/d/a.png"], 0.1), (["/d/a.png"], []))

    def test_small_folder_trains_and_tests(self):
        directory = self.get_temp_dir()
        for i in range(5):
            _write_rgb(os.path.join(directory, f"img{i}.png"), seed=i)
        train = list(folder.image_folder_examples(directory, split="train", resolution=8))
        test = list(folder.image_folder_examples(directory, split="test", resolution=8))
        validation = list(folder.image_folder_examples(directory, split="validation",
                                                       resolution=8))
        self.assertEqual(len(train) + len(test), 5)
        self.assertNotEmpty(test)
        self.assertAllEqual(test[0]["image"], validation[0]["image"])
        self.assertEqual(train[0]["image"].shape, (8, 8, 3))

    def test_split_subfolders(self):
        directory = self.get_temp_dir()
        for split, count in (("train", 3), ("test", 2), ("validation", 1)):
            os.makedirs(os.path.join(directory, split))
            for i in range(count):
                _write_rgb(os.path.join(directory, split, f"{split}{i}.png"), seed=i)
        sizes = {s: len(list(folder.image_folder_examples(directory, split=s, resolution=8)))
                 for s in folder.SPLITS}
        self.assertEqual(sizes, {"train": 3, "test": 2, "validation": 1})
        only_train = self.get_temp_dir() + "/only_train"
        os.makedirs(os.path.join(only_train, "train"))
        _write_rgb(os.path.join(only_train, "train", "a.png"))
        with self.assertRaisesRegex(ValueError, "not both train/ and test/"):
            folder.image_folder_examples(only_train, split="train")

    def test_bad_folders(self):
        empty = self.get_temp_dir()
        with self.assertRaisesRegex(ValueError, "holds no PNG/JPEG/TIFF files"):
            folder.image_folder_examples(empty, split="train")
        with self.assertRaisesRegex(ValueError, "does not exist"):
            folder.image_folder_examples(os.path.join(empty, "missing"), split="train")
        with self.assertRaisesRegex(ValueError, "split must be one of"):
            folder.image_folder_examples(empty, split="tset")
        one = os.path.join(empty, "one")
        os.makedirs(one)
        _write_rgb(os.path.join(one, "a.png"))
        with self.assertRaisesRegex(ValueError, "Split 'test' of folder .*one.* is empty"):
            folder.image_folder_examples(one, split="test", resolution=8)
        tiny = os.path.join(one, "tiny.png")
        _write_rgb(tiny, size=(4, 4))
        split = "test" if tiny in folder.hash_split(folder.list_image_files(one), 0.1)[1] \
            else "train"
        with self.assertRaisesRegex(ValueError, "tiny.png.* smaller than the requested 8"):
            folder.image_folder_examples(one, split=split, resolution=8)


class FitReaderTest(TestCase):

    def test_fit_example(self):
        path = os.path.join(self.get_temp_dir(), "photo.png")
        _write_rgb(path, (30, 24))
        fit_input = folder.fit_example(path, ImageTask(16))
        self.assertIsInstance(fit_input, FitInput)
        self.assertEqual(fit_input.example["image"].shape, (16, 16, 3))
        self.assertAllClose(fit_input.example["image"], folder.load_image(path, 16))
        other = folder.fit_example(path, ImageTask(16), resolution=8)
        self.assertEqual(other.task.height, 8)
        self.assertEqual(other.example["image"].shape, (8, 8, 3))
        gray = folder.fit_example(path, ImageTask(8, channels=1))
        self.assertEqual(gray.example["image"].shape, (8, 8, 1))
        with self.assertRaisesRegex(ValueError, "is a directory"):
            folder.fit_example(self.get_temp_dir(), ImageTask(8))
        with self.assertRaisesRegex(ValueError, "smaller than the requested 32"):
            folder.fit_example(path, ImageTask(32))
