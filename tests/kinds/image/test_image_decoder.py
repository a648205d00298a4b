"""The one image decoder (learnit_tf.data.image_decoder): EXIF orientation, and every
PNG/JPEG/TIFF mode and bit depth compared against the file's own integers / its max."""

import os

import numpy as np
import tensorflow as tf
import tifffile
from PIL import Image, ImageOps

from learnit_tf.data import files
from learnit_tf.data.files import read_image
from learnit_tf.kinds.ct import files as ct_files
from learnit_tf.testing import TestCase

# What a viewer does to the stored pixels for each EXIF orientation (EXIF 2.3, 4.6.4),
# written with Pillow's transposes, independently of the decoder's numpy indexing.
UPRIGHT_FROM_STORED = {1: None, 2: Image.Transpose.FLIP_LEFT_RIGHT,
                       3: Image.Transpose.ROTATE_180, 4: Image.Transpose.FLIP_TOP_BOTTOM,
                       5: Image.Transpose.TRANSPOSE, 6: Image.Transpose.ROTATE_270,
                       7: Image.Transpose.TRANSVERSE, 8: Image.Transpose.ROTATE_90}
STORED_FROM_UPRIGHT = {**UPRIGHT_FROM_STORED, 6: Image.Transpose.ROTATE_90,
                       8: Image.Transpose.ROTATE_270}


def _upright_photo():
    """A 16×24 (H×W) colour image of flat 8×8 blocks, different everywhere (JPEG keeps it)."""
    blocks = np.array([[[250, 10, 10], [10, 250, 10], [10, 10, 250]],
                       [[250, 250, 10], [10, 250, 250], [130, 130, 130]]], np.uint8)
    return np.repeat(np.repeat(blocks, 8, axis=0), 8, axis=1)


def _random_uint(shape, dtype, seed=0):
    info = np.iinfo(dtype)
    values = np.random.RandomState(seed).randint(0, int(info.max) + 1, size=shape,
                                                 dtype=np.uint64)
    values = values.astype(dtype)
    values.flat[0], values.flat[-1] = info.max, 0  # The full scale is in the file.
    return values


class ExifOrientationTest(TestCase):

    def test_every_orientation_comes_back_upright(self):
        upright = _upright_photo()
        for orientation, transpose in STORED_FROM_UPRIGHT.items():
            with self.subTest(orientation=orientation):
                stored = Image.fromarray(upright)
                stored = stored.transpose(transpose) if transpose is not None else stored
                exif = Image.Exif()
                exif[0x0112] = orientation
                path = os.path.join(self.get_temp_dir(), f"photo_{orientation}.jpg")
                stored.save(path, quality=100, subsampling=0, exif=exif.tobytes())
                pixels = read_image(path)
                self.assertEqual(pixels.shape, (16, 24, 3))  # Portrait stays portrait.
                # The upright original, up to JPEG rounding ...
                self.assertLess(np.abs(pixels * 255.0 - upright).max(), 6.0)
                # ... exactly what Pillow shows for the file (its own orientation code) ...
                with Image.open(path) as img:
                    shown = ImageOps.exif_transpose(img)
                    self.assertAllEqual(np.round(pixels * 255.0), np.asarray(shown))
                    raw = img.convert("RGB")
                    check = raw.transpose(UPRIGHT_FROM_STORED[orientation]) \
                        if orientation != 1 else raw
                    self.assertAllEqual(np.round(pixels * 255.0), np.asarray(check))
                # ... and the stored grid when asked (posed views).
                self.assertAllEqual(np.round(read_image(path, orient=False) * 255.0),
                                    np.asarray(Image.open(path).convert("RGB")))

    def test_image_reader_and_ct_reader_use_it(self):
        upright = _upright_photo()
        exif = Image.Exif()
        exif[0x0112] = 6
        path = os.path.join(self.get_temp_dir(), "portrait.jpg")
        Image.fromarray(upright).transpose(Image.Transpose.ROTATE_90).save(
            path, quality=100, subsampling=0, exif=exif.tobytes())
        self.assertEqual(files.load_image(path).shape, (16, 24, 3))
        self.assertEqual(ct_files.load_slice(path).shape, (16, 24, 1))
        self.assertLess(np.abs(files.load_image(path) * 255.0 - upright).max(), 6.0)


    def test_tiff_orientation_tag_on_16_bit_samples(self):
        values = _random_uint((3, 4), np.uint16)
        path = os.path.join(self.get_temp_dir(), "rotated.tif")
        tifffile.imwrite(path, values, extratags=[(0x0112, "H", 1, 6, True)])
        # 6: the stored rows are the upright image's right-hand column (90° clockwise).
        self.assertAllEqual(read_image(path)[..., 0],
                            (np.rot90(values, k=-1) / 65535.0).astype(np.float32))


class BitDepthTest(TestCase):

    def _png16(self, values, name):
        path = os.path.join(self.get_temp_dir(), name)
        with open(path, "wb") as f:
            f.write(tf.io.encode_png(tf.constant(values)).numpy())
        return path

    def test_16_bit_pngs_of_every_channel_count_are_exact(self):
        for channels, name in ((1, "gray"), (2, "gray_alpha"), (3, "rgb"), (4, "rgba")):
            with self.subTest(name):
                values = _random_uint((9, 7, channels), np.uint16, seed=channels)
                path = self._png16(values, f"{name}16.png")
                pixels = read_image(path)
                self.assertEqual(pixels.dtype, np.float32)
                self.assertAllEqual(pixels, (values / 65535.0).astype(np.float32))
                # All 16 bits survive (8-bit values would all be multiples of 257).
                self.assertTrue(np.any(values % 257 != 0))
                self.assertAllEqual(np.round(pixels.astype(np.float64) * 65535), values)

    def test_8_bit_modes_are_exact(self):
        tmp = self.get_temp_dir()
        rgba = _random_uint((6, 5, 4), np.uint8)
        cases = {"L": rgba[..., 0], "LA": rgba[..., :2], "RGB": rgba[..., :3], "RGBA": rgba}
        for mode, values in cases.items():
            with self.subTest(mode):
                path = os.path.join(tmp, f"{mode}.png")
                Image.fromarray(values, mode=mode).save(path)
                expected = values / 255.0
                self.assertAllEqual(read_image(path),
                                    (expected[..., None] if values.ndim == 2 else
                                     expected).astype(np.float32))
        # Palette: the file's palette entries; with transparency, an alpha channel.
        palette = Image.fromarray(rgba[..., :3]).quantize(8)
        palette.save(os.path.join(tmp, "p.png"))
        lut = np.array(palette.getpalette()[:24], np.uint8).reshape(8, 3)
        indices = np.asarray(palette)
        self.assertAllEqual(read_image(os.path.join(tmp, "p.png")),
                            (lut[indices] / 255.0).astype(np.float32))
        palette.save(os.path.join(tmp, "pt.png"), transparency=0)
        with_alpha = read_image(os.path.join(tmp, "pt.png"))
        self.assertEqual(with_alpha.shape, (6, 5, 4))
        self.assertAllEqual(with_alpha[..., 3], (indices != 0).astype(np.float32))
        # 1-bit: 0 or 1.
        bits = Image.fromarray(rgba[..., 0] > 127)
        bits.save(os.path.join(tmp, "bits.png"))
        self.assertAllEqual(read_image(os.path.join(tmp, "bits.png"))[..., 0],
                            (rgba[..., 0] > 127).astype(np.float32))

    def test_cmyk_becomes_rgb(self):
        cmyk = _random_uint((6, 5, 4), np.uint8, seed=3)
        path = os.path.join(self.get_temp_dir(), "cmyk.tif")
        Image.fromarray(cmyk, mode="CMYK").save(path)
        c, m, y, k = (cmyk[..., i] / 255.0 for i in range(4))
        expected = np.stack([(1 - c) * (1 - k), (1 - m) * (1 - k), (1 - y) * (1 - k)], -1)
        self.assertAllClose(read_image(path), expected, atol=1.01 / 255)

    def test_tiff_integers_are_divided_by_their_types_maximum(self):
        tmp = self.get_temp_dir()
        for dtype, channels in ((np.uint8, 1), (np.uint8, 3), (np.uint16, 1), (np.uint16, 3),
                                (np.uint16, 4), (np.uint32, 1), (np.uint32, 3)):
            with self.subTest(dtype=dtype.__name__, channels=channels):
                values = _random_uint((5, 6, channels), dtype, seed=channels)
                path = os.path.join(tmp, f"{dtype.__name__}_{channels}.tif")
                kwargs = {"extrasamples": ["unassalpha"]} if channels == 4 else {}
                tifffile.imwrite(path, values if channels > 1 else values[..., 0],
                                 photometric="rgb" if channels > 1 else "minisblack", **kwargs)
                expected = values.astype(np.float64) / float(np.iinfo(dtype).max)
                self.assertAllEqual(read_image(path), expected.astype(np.float32))
        # 2**32 - 1 is 1.0 (it was read as -1 / 65535, 4 billion as 65000 times full scale).
        path = os.path.join(tmp, "u32_full.tif")
        tifffile.imwrite(path, np.array([[4294967295, 2147483648]], np.uint32))
        self.assertAllClose(read_image(path)[0, :, 0], [1.0, 0.5], atol=1e-7)

    def test_float_tiff_range_rule(self):
        tmp = self.get_temp_dir()
        values = np.random.RandomState(0).rand(4, 5).astype(np.float32)
        path = os.path.join(tmp, "f32.tif")
        tifffile.imwrite(path, values)
        self.assertAllEqual(read_image(path)[..., 0], values)
        for name, bad, pattern in (("hdr.tif", values * 4.0, r"values in \[.*\]; float images "
                                                            r"must lie within \[0, 1\]"),
                                   ("nan.tif", np.where(values > 0.5, np.nan, values),
                                    "NaN or infinite")):
            tifffile.imwrite(os.path.join(tmp, name), bad.astype(np.float32))
            with self.assertRaisesRegex(ValueError, name + ".*" + pattern):
                read_image(os.path.join(tmp, name))

    def test_unsupported_modes_name_the_file_and_mode(self):
        tmp = self.get_temp_dir()
        signed = os.path.join(tmp, "signed.tif")
        tifffile.imwrite(signed, np.arange(20, dtype=np.int32).reshape(4, 5))
        with self.assertRaisesRegex(ValueError, r"signed.tif' has MINISBLACK with 1 samples of "
                                                r"int32 .*no defined full scale"):
            read_image(signed)
        cmyk16 = os.path.join(tmp, "cmyk16.tif")
        tifffile.imwrite(cmyk16, np.zeros((4, 5, 4), np.uint16), photometric="separated")
        with self.assertRaisesRegex(ValueError, r"cmyk16.tif' has TIFF mode SEPARATED with 4 "
                                                r"samples of uint16; expected"):
            read_image(cmyk16)
        hsv = os.path.join(tmp, "hsv.png")
        Image.new("RGB", (4, 4)).save(hsv)
        with Image.open(hsv) as img:
            converted = img.convert("HSV")
        from learnit_tf.data import image_decoder  # pylint: disable=import-outside-toplevel
        with self.assertRaisesRegex(ValueError, r"hsv.png' has mode 'HSV'; expected"):
            image_decoder._pillow_pixels(converted, hsv)  # pylint: disable=protected-access

    def test_tiff_files_are_listed_in_folders(self):
        directory = self.get_temp_dir()
        values = _random_uint((8, 8), np.uint16)
        tifffile.imwrite(os.path.join(directory, "slice.tiff"), values)
        self.assertEqual(files.list_image_files(directory),
                         [os.path.join(directory, "slice.tiff")])
        self.assertAllEqual(files.load_image(os.path.join(directory, "slice.tiff"))[..., 0],
                            (values / 65535.0).astype(np.float32))
