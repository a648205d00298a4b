"""Tests of the procedural anatomy CT class (`ct_anatomy`) and its renderer."""

import os
import tempfile
from unittest import mock

import numpy as np

from learnit_tf import kinds, testing
from learnit_tf.kinds.ct import anatomy, anatomy_render


def _hu_to_unit(hu):  # Independent of anatomy_render.window: the check's window by hand.
    return min(max((hu + 1000.0) / 2000.0, 0.0), 1.0)


class RenderTest(testing.TestCase):

    def test_window_maps_the_real_check_window(self):
        # Air -> 0, water -> 0.5, +1000 HU (cortical bone) and above -> 1; not flipped.
        hu = np.array([-3000.0, -1000.0, -100.0, 0.0, 40.0, 1000.0, 1900.0])
        np.testing.assert_allclose(anatomy_render.window(hu), [_hu_to_unit(h) for h in hu])

    def test_slices_are_deterministic_by_seed_and_in_unit_range(self):
        a = anatomy_render.random_slice((0, 1, 7), 48)
        b = anatomy_render.random_slice((0, 1, 7), 48)
        c = anatomy_render.random_slice((0, 1, 8), 48)
        np.testing.assert_array_equal(a, b)
        self.assertGreater(float(np.abs(a - c).max()), 0.2)
        self.assertEqual(a.dtype, np.float32)
        self.assertEqual(a.shape, (48, 48))
        for i in range(30):
            s = anatomy_render.random_slice((3, 0, i), 32)
            self.assertGreaterEqual(float(s.min()), 0.0)
            self.assertLessEqual(float(s.max()), 1.0)

    def test_histogram_covers_air_soft_tissue_and_bone(self):
        for family in anatomy_render.FAMILIES:
            with mock.patch.object(anatomy_render, "ZOOM_PROBABILITY", 0.0):
                hu, got = anatomy_render.random_slice_hu(np.random.default_rng(11), 64, family)
            self.assertEqual(got, family)
            img = anatomy_render.area_downsample(anatomy_render.window(hu), 4)
            n = img.size
            air = np.mean(img < _hu_to_unit(-950))
            soft = np.mean((img > _hu_to_unit(-150)) & (img < _hu_to_unit(100)))
            bone = np.mean(img > _hu_to_unit(300))
            # Air around the body, soft tissue (fat, muscle, organs, brain), bone (skull or
            # spine/ribs); in a chest the lungs take much of the body.
            self.assertGreater(air, 0.1, family)
            self.assertGreater(soft, 0.08, family)
            self.assertGreater(bone * n, 10, family)
            if family == "chest":  # Lungs: -900..-700 HU.
                lung = np.mean((img > _hu_to_unit(-960)) & (img < _hu_to_unit(-600)))
                self.assertGreater(lung, 0.05)
            # Window edges stay put: the corner is air (0), the skull/spine reaches > 0.8.
            self.assertEqual(float(img[0, 0]), 0.0)
            self.assertGreater(float(img.max()), 0.8)

    def test_anterior_is_up(self):
        # Chest slices: the spine (bone > 300 HU near the midline) lies in the lower half.
        with mock.patch.object(anatomy_render, "ZOOM_PROBABILITY", 0.0):
            for seed in range(5):
                hu, _ = anatomy_render.random_slice_hu(np.random.default_rng(seed), 32, "chest")
                rows, cols = np.nonzero(hu > 300)
                n = hu.shape[0]
                mid = np.abs(cols - (n - 1) / 2) < n * 0.06
                self.assertGreater(rows[mid].mean(), n / 2)

    def test_families_and_zoom_are_all_drawn(self):
        rngs = [np.random.default_rng((5, i)) for i in range(60)]
        families = {anatomy_render.random_slice_hu(r, 8)[1] for r in rngs}
        self.assertEqual(families, set(anatomy_render.FAMILIES))

    def test_bad_family_is_refused(self):
        with self.assertRaisesRegex(ValueError, "family must be one of"):
            anatomy_render.random_slice_hu(np.random.default_rng(0), 8, "knee")


class BuilderTest(testing.TestCase):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.tmp = tempfile.TemporaryDirectory()
        cls.data_dir = os.path.join(cls.tmp.name, "tfds")
        cls.splits = {s: np.stack([e["image"] for e in anatomy.anatomy_ct_examples(
            s, config="tiny", data_dir=cls.data_dir).as_numpy_iterator()])
            for s in anatomy.SPLIT_NAMES}

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()
        super().tearDownClass()

    def test_splits_have_their_sizes_and_match_the_renderer(self):
        self.assertEqual({s: len(v) for s, v in self.splits.items()},
                         {"train": 24, "validation": 8, "test": 8})
        # Split s holds the renderer's draws from seeds (0, s, i) (TFDS reorders them).
        for s, name in enumerate(anatomy.SPLIT_NAMES):
            stored = self.splits[name][:, :, :, 0]
            for i in (0, 3, 7):
                drawn = anatomy_render.random_slice((0, s, i), 32)
                self.assertTrue(any(np.array_equal(x, drawn) for x in stored), (name, i))
            other = anatomy_render.random_slice((0, (s + 1) % 3, 0), 32)
            self.assertFalse(any(np.array_equal(x, other) for x in stored), name)

    def test_splits_are_disjoint(self):
        flat = {s: v.reshape(len(v), -1) for s, v in self.splits.items()}
        names = list(flat)
        for i, a in enumerate(names):
            for b in names[i + 1:]:
                d = np.abs(flat[a][:, None, :] - flat[b][None, :, :]).max(-1)
                self.assertGreater(float(d.min()), 0.01, (a, b))

    def test_registered_with_the_ct_kind(self):
        self.assertIs(kinds.dataset_function("anatomy_ct_examples"),
                      anatomy.anatomy_ct_examples)

    def test_unknown_split_is_refused(self):
        with self.assertRaisesRegex(ValueError, "Unknown split 'tests'"):
            anatomy.anatomy_ct_examples("tests", config="tiny", data_dir=self.data_dir)

    def test_few_views_are_evenly_spaced_counts_from_views_fixed_per_example(self):
        def angle_sets(split):
            ds = anatomy.anatomy_ct_examples(split, config="tiny", data_dir=self.data_dir,
                                             views=(2, 4, 8))
            return [(e["image"], e["angles"]) for e in ds.as_numpy_iterator()]

        first, again = angle_sets("train"), angle_sets("train")
        counts = []
        for (image, angles), (image2, angles2) in zip(first, again):
            np.testing.assert_array_equal(angles, angles2)  # same views every epoch
            np.testing.assert_array_equal(image, image2)
            self.assertEqual(angles.shape, (8,))
            distinct = np.unique(np.round(angles, 5))
            k = len(distinct)
            counts.append(k)
            self.assertIn(k, (2, 4, 8))
            # k evenly spaced views in [0, π), each repeated 8/k times.
            np.testing.assert_allclose(np.diff(distinct), np.pi / k, atol=1e-5)
            self.assertLess(distinct[0], np.pi / k + 1e-6)
            self.assertGreaterEqual(distinct[0], 0.0)
            np.testing.assert_allclose(angles, np.tile(angles[:k], 8 // k), atol=1e-6)
        self.assertEqual(set(counts), {2, 4, 8})  # 24 examples draw every count
        offsets = [a[0] for _, a in first]
        self.assertGreater(len(set(np.round(offsets, 4))), 20)  # offsets vary
        # The validation split draws other views than train's first examples.
        val = angle_sets("validation")
        self.assertFalse(all(np.array_equal(a, b) for (_, a), (_, b) in zip(first, val)))

    def test_few_view_loss_equals_the_k_view_loss(self):
        # Repeating each of k views 8/k times leaves the projection MSE the k-view MSE.
        from learnit_tf.kinds.ct.task import project
        angles = anatomy.few_view_angles(np.int64(5), (2, 4, 8)).numpy()
        k = len(np.unique(np.round(angles, 5)))
        rng = np.random.default_rng(0)
        a, b = rng.random((16, 16)).astype(np.float32), rng.random((16, 16)).astype(np.float32)
        full = np.mean((project(a, angles).numpy() - project(b, angles).numpy()) ** 2)
        few = np.mean((project(a, angles[:k]).numpy() - project(b, angles[:k]).numpy()) ** 2)
        self.assertAlmostEqual(float(full), float(few), places=6)

    def test_view_counts_must_divide_the_largest(self):
        with self.assertRaisesRegex(ValueError, "each divide the largest"):
            anatomy.anatomy_ct_examples("train", config="tiny", data_dir=self.data_dir,
                                        views=(3, 4))
        with self.assertRaisesRegex(ValueError, "positive view counts"):
            anatomy.few_view_angles(np.int64(0), (0, 2))


class RealCheckTest(testing.TestCase):
    """The real-CT check's slices (pydicom's test files; missing -> its install command)."""

    def test_slices_are_windowed_then_block_averaged_in_file_order(self):
        import pydicom  # pylint: disable=import-outside-toplevel
        from pydicom.data import get_testdata_file  # pylint: disable=import-outside-toplevel
        from learnit_tf.kinds.ct import anatomy_real_check as check
        slices = check.real_ct_slices(64)
        self.assertLen(slices, 3)
        data = pydicom.dcmread(get_testdata_file("CT_small.dcm"))  # 128², intercept -1024
        hu = data.pixel_array.astype(np.float64) - 1024.0
        by_hand = np.clip((hu + 1000.0) / 2000.0, 0.0, 1.0)  # the check's window by hand
        by_hand = by_hand.reshape(64, 2, 64, 2).mean(axis=(1, 3))
        np.testing.assert_allclose(slices[0], by_hand, atol=1e-6)  # not transposed/flipped
        self.assertFalse(np.allclose(slices[0], by_hand.T, atol=1e-3))
        for image in slices:
            self.assertEqual(image.shape, (64, 64))
            self.assertBetween(float(image.min()), 0.0, 1.0)
            self.assertBetween(float(image.max()), 0.0, 1.0)

    def test_folder_layout_and_no_overwrite(self):
        from learnit_tf.kinds.ct import anatomy_real_check as check
        root = self.get_temp_dir()
        paths = check.write_real_ct_folder(root, resolution=32)
        self.assertEqual(sorted(os.listdir(os.path.join(root, "test"))),
                         ["693_J2KI.npy", "CT_small.npy", "J2K_pixelrep_mismatch.npy"])
        self.assertEqual(os.listdir(os.path.join(root, "train")), [])
        self.assertEqual(check.write_real_ct_folder(root, resolution=32), paths)  # identical
        np.save(paths[0], np.zeros((32, 32), np.float32))
        with self.assertRaisesRegex(FileExistsError, "differs from the real-CT slice"):
            check.write_real_ct_folder(root, resolution=32)
        np.testing.assert_array_equal(np.load(paths[0]), 0.0)  # the user's file is kept
