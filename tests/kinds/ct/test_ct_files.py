"""CT files: sinogram conventions (against a non-symmetric image), fit reader, slice folders."""

import os

import numpy as np
from PIL import Image

from learnit_tf.kinds.ct import files
from learnit_tf.kinds.ct.task import CtTask, evenly_spaced_angles, make_eval_example, project
from learnit_tf.meta import Fitter, InnerOptimizer
from learnit_tf.models import FourierFeatureMLP
from learnit_tf.testing import TestCase

# scikit-image is in the `test` extra: without it this module fails to import (no quiet skip).
from skimage.transform import radon  # pylint: disable=wrong-import-position,wrong-import-order

N = 25  # Odd: scikit-image's radon rotates about the same pixel as our projector.
V = 12


def l_shape(n=N):
    """An L (a bar and a foot): no mirror or rotation symmetry, off centre."""
    image = np.zeros((n, n), np.float32)
    image[5:19, 7:11] = 1.0
    image[15:19, 7:18] = 1.0
    return image


def flips(image):
    return {"upside down": image[::-1], "mirrored": image[:, ::-1],
            "rotated 180°": image[::-1, ::-1], "transposed": image.T}


def _sinogram_files(directory, image):
    """Sinograms of `image` in both conventions, with their angle files."""
    theta = np.linspace(0.0, 180.0, V, endpoint=False)  # radon's usual evenly spaced views
    paths = {
        "skimage": os.path.join(directory, "radon.npy"),
        "skimage_angles": os.path.join(directory, "theta_degrees.npy"),
        "learnit": os.path.join(directory, "learnit.npy"),
        "learnit_angles": os.path.join(directory, "angles_radians.npy"),
    }
    np.save(paths["skimage"], radon(image.astype(np.float64), theta=theta))
    np.save(paths["skimage_angles"], theta)
    np.save(paths["learnit"], make_eval_example(image, num_views=V)["sinogram"])
    np.save(paths["learnit_angles"], evenly_spaced_angles(V))
    return paths


CASES = [("skimage", "num_angles"), ("skimage", "angles"), ("learnit", "num_angles"),
         ("learnit", "angles")]


class ConventionTest(TestCase):
    """Each convention × angle source must describe the image, not a flipped copy."""

    def setUp(self):
        super().setUp()
        self.image = l_shape()
        self.paths = _sinogram_files(self.get_temp_dir(), self.image)

    def _read(self, convention, source):
        options = ({"num_angles": V} if source == "num_angles"
                   else {"angles": self.paths[convention + "_angles"]})
        return files.fit_example(self.paths[convention], CtTask(64), convention=convention,
                                 **options)

    def test_converted_sinogram_is_the_projection_of_the_image(self):
        for convention, source in CASES:
            with self.subTest(convention=convention, source=source):
                fit_input = self._read(convention, source)
                ex = fit_input.example
                self.assertEqual(fit_input.task.resolution, N)
                self.assertEqual(ex["sinogram"].shape, (V, N))
                predicted = project(self.image, ex["angles"]).numpy()
                error = np.abs(predicted - ex["sinogram"]).max()
                self.assertLess(error, 2e-3)
                for name, flipped in flips(self.image).items():
                    wrong = np.abs(project(flipped, ex["angles"]).numpy() - ex["sinogram"]).max()
                    self.assertGreater(wrong, 50 * error, name)

    def test_reconstruction_is_the_right_way_up(self):
        model = FourierFeatureMLP(num_features=64, scale=10.0, width=64, hidden_layers=2,
                                  out_features=1, output_activation="sigmoid", seed=0)
        fitter = Fitter(model, CtTask(N), InnerOptimizer("adam", 1e-2), steps_per_call=30)
        for convention, source in CASES:
            with self.subTest(convention=convention, source=source):
                example = self._read(convention, source).example
                weights = fitter.fit(example, 30).weights
                recon = fitter.task.render(fitter.fmodel, weights).numpy()[..., 0]
                mse = np.mean((recon - self.image) ** 2)
                for name, flipped in flips(self.image).items():
                    self.assertLess(mse, 0.5 * np.mean((recon - flipped) ** 2), name)

    def test_skimage_num_angles_negates_the_angles(self):
        # The old fit_ct.py used k·π/V here: the reconstruction came out upside down.
        ex = self._read("skimage", "num_angles").example
        self.assertAllClose(ex["angles"], -evenly_spaced_angles(V), atol=1e-6)


class BadSinogramTest(TestCase):

    def _save(self, name, array):
        path = os.path.join(self.get_temp_dir(), name)
        np.save(path, array)
        return path

    def test_errors_name_the_file(self):
        task = CtTask(16)
        good = self._save("good.npy", np.zeros((4, 16), np.float32))
        with self.assertRaisesRegex(ValueError, "missing.npy.* not a readable .npy"):
            files.fit_example(os.path.join(self.get_temp_dir(), "missing.npy"), task,
                              num_angles=4)
        text = os.path.join(self.get_temp_dir(), "text.npy")
        with open(text, "w") as f:
            f.write("hello")
        with self.assertRaisesRegex(ValueError, "text.npy.* is not a .npy file; expected a "
                                                "NumPy .npy array"):
            files.fit_example(text, task, num_angles=4)
        cube = self._save("cube.npy", np.zeros((4, 16, 2)))
        with self.assertRaisesRegex(ValueError, r"cube.npy.* shape \(4, 16, 2\); expected a 2D"):
            files.fit_example(cube, task, num_angles=4)
        with self.assertRaisesRegex(ValueError, r"thin.npy.* 4 views of 1 detector bins"):
            files.fit_example(self._save("thin.npy", np.zeros((4, 1))), task, num_angles=4)
        nan = np.zeros((4, 16))
        nan[1, 2] = np.nan
        with self.assertRaisesRegex(ValueError, "nan.npy.* NaN"):
            files.fit_example(self._save("nan.npy", nan), task, num_angles=4)
        with self.assertRaisesRegex(ValueError, "4 views in the learnit layout, but "
                                                "num_angles=5"):
            files.fit_example(good, task, num_angles=5)
        with self.assertRaisesRegex(ValueError, "16 views in the skimage layout"):
            files.fit_example(good, task, num_angles=4, convention="skimage")
        with self.assertRaisesRegex(ValueError, "exactly one of angles and num_angles"):
            files.fit_example(good, task)
        angles = self._save("angles.npy", np.arange(3.0))
        with self.assertRaisesRegex(ValueError, "4 views .* but 3 angles"):
            files.fit_example(good, task, angles=angles)
        degrees = self._save("degrees.npy", np.array([0.0, 45.0, 90.0, 135.0]))
        with self.assertRaisesRegex(ValueError, "degrees instead of radians"):
            files.fit_example(good, task, angles=degrees)
        truth = self._save("truth.npy", np.zeros((8, 8)))
        with self.assertRaisesRegex(ValueError, "image is 8×8 but the sinogram has 16"):
            files.fit_example(good, task, num_angles=4, ground_truth=truth)
        with self.assertRaisesRegex(ValueError, "need a CtTask"):
            from learnit_tf.kinds.image import ImageTask  # pylint: disable=import-outside-toplevel
            files.fit_example(good, ImageTask(16), num_angles=4)

    def test_complex_2d_angles_and_images_are_refused_naming_the_file(self):
        task = CtTask(16)
        sinogram = np.random.RandomState(0).rand(4, 16)
        complex_path = self._save("complex.npy", sinogram + 1j * sinogram)
        with self.assertRaisesRegex(ValueError, r"Sinogram '.*complex.npy' holds complex "
                                                r"values \(complex128\); expected real"):
            files.fit_example(complex_path, task, num_angles=4)
        with self.assertRaisesRegex(ValueError, "sinogram holds complex values"):
            files.to_learnit_convention(sinogram * 1j, num_angles=4)
        good = self._save("good.npy", sinogram)
        grid = self._save("grid.npy", evenly_spaced_angles(4).reshape(2, 2))
        with self.assertRaisesRegex(ValueError, r"Angles file '.*grid.npy' has shape \(2, 2\); "
                                                r"expected a 1D array of shape \(4,\): one "
                                                r"angle per view of Sinogram '.*good.npy'"):
            files.fit_example(good, task, angles=grid)
        complex_angles = self._save("cangles.npy", evenly_spaced_angles(4) + 0j)
        with self.assertRaisesRegex(ValueError, r"cangles.npy' holds complex values"):
            files.fit_example(good, task, angles=complex_angles)
        # The same angles as a 1D array are accepted (the 2D refusal is about the shape).
        self.assertEqual(files.fit_example(good, task, angles=self._save(
            "line.npy", evenly_spaced_angles(4))).example["angles"].shape, (4,))
        png = os.path.join(self.get_temp_dir(), "sinogram.png")
        Image.fromarray((sinogram * 255).astype(np.uint8)).save(png)
        with self.assertRaises(ValueError) as caught:
            files.fit_example(png, task, num_angles=4)
        message = str(caught.exception)
        self.assertRegex(message, r"Sinogram '.*sinogram.png' is not a .npy file \(it is a PNG "
                                  r"image\); expected a NumPy .npy array \(np.save\)")
        self.assertNotIn("allow_pickle", message)
        pickled = os.path.join(self.get_temp_dir(), "objects.npy")
        np.save(pickled, np.array([{"a": 1}], dtype=object), allow_pickle=True)
        with self.assertRaisesRegex(ValueError, "objects.npy.* holds Python objects"):
            files.fit_example(pickled, task, num_angles=4)


class SliceFolderTest(TestCase):

    def test_png_and_npy_slices(self):
        directory = self.get_temp_dir()
        Image.fromarray(np.full((20, 24), 40000, np.uint16)).save(
            os.path.join(directory, "a16.png"))
        Image.fromarray((l_shape(20) * 255).astype(np.uint8)).save(
            os.path.join(directory, "b.png"))
        np.save(os.path.join(directory, "c.npy"), l_shape(20) * 3000.0 - 1000.0)  # HU-like
        np.save(os.path.join(directory, "d.npy"), l_shape(20)[..., None])
        images = {}
        for split in ("train", "test"):
            for ex in files.ct_folder_examples(directory, split=split, resolution=16):
                images.setdefault(split, []).append(ex["image"].numpy())
        self.assertEqual(sum(len(v) for v in images.values()), 4)
        self.assertNotEmpty(images["test"])
        every = np.stack(images["train"] + images["test"])
        self.assertEqual(every.shape[1:], (16, 16, 1))
        self.assertGreaterEqual(every.min(), 0.0)
        self.assertLessEqual(every.max(), 1.0)
        self.assertAllClose(files.load_slice(os.path.join(directory, "a16.png")).mean(),
                            40000 / 65535, atol=1e-6)
        hu = files.load_slice(os.path.join(directory, "c.npy"))
        self.assertAllClose(hu[..., 0], l_shape(20))  # Per-slice min/max scaling.
        fixed = files.load_slice(os.path.join(directory, "c.npy"), value_range=(-1000, 5000))
        self.assertAllClose(fixed.max(), 3000 / 6000, atol=1e-6)  # (2000 + 1000) / 6000

    def test_bad_slices(self):
        directory = self.get_temp_dir()
        with self.assertRaisesRegex(ValueError, "holds no CT slice files"):
            files.ct_folder_examples(directory)
        np.save(os.path.join(directory, "flat.npy"), np.ones((20, 20)))
        with self.assertRaisesRegex(ValueError, r"flat.npy.* is constant"):
            files.load_slice(os.path.join(directory, "flat.npy"))
        np.save(os.path.join(directory, "vol.npy"), np.ones((3, 20, 20)))
        with self.assertRaisesRegex(ValueError, r"vol.npy.* shape \(3, 20, 20\); expected a 2D"):
            files.load_slice(os.path.join(directory, "vol.npy"))
        bad = np.zeros((20, 20))
        bad[3, 3] = np.inf
        np.save(os.path.join(directory, "inf.npy"), bad)
        with self.assertRaisesRegex(ValueError, "inf.npy.* NaN or infinite"):
            files.load_slice(os.path.join(directory, "inf.npy"))
        small = os.path.join(directory, "small")
        os.makedirs(small)
        for name in ("s1.npy", "s2.npy"):
            np.save(os.path.join(small, name), l_shape(8))
        with self.assertRaisesRegex(ValueError, r"s\d.npy.* 8×8, smaller than the requested 16"):
            files.ct_folder_examples(small, split="train", resolution=16)
