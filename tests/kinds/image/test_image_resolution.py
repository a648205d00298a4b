"""Images at other resolutions than an init's: the pixel-subset training task, the classes
rendered at R×R, and the image protocol's --resolution (issue 24, item 2)."""

import os
import subprocess
import sys

import numpy as np
import tensorflow as tf

from learnit_tf import evaluation, testing
from learnit_tf.meta import init_io
from learnit_tf.kinds.image import ImageTask, image_grid
from learnit_tf.kinds.image.evaluation import ImageProtocol
from learnit_tf.kinds.image.resolution import (config_at_resolution, metadata_at_resolution,
                                               task_at_resolution)
from learnit_tf.kinds.image.sdf_2d import Sdf2d, sdf_2d_examples
from learnit_tf.kinds.image.subset_task import PixelSubsetImageTask
from learnit_tf.kinds.image.text_images import TextImages, text_images_examples
from learnit_tf.models import FunctionalModel, Siren

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))


def coordinate_image(res):
    """An image whose pixel (i, j) holds (y, x, y·x) of its grid coordinate."""
    grid = image_grid(res)
    return np.concatenate([grid, grid[..., :1] * grid[..., 1:]], axis=-1).astype(np.float32)


class PixelSubsetTaskTest(testing.TestCase):

    def test_subset_pixels_are_the_image_at_their_coordinates(self):
        task = PixelSubsetImageTask(16, pixels_per_step=40)
        image = coordinate_image(16)
        coords, target = task.pixel_subset({"image": image}, 40, tf.constant([3, 4]))
        coords, target = coords.numpy(), target.numpy()
        # The colour is computed from the coordinate independently of the gather: a
        # flipped axis (x for y) or an off-by-one row would break the equality.
        np.testing.assert_allclose(target[:, :2], coords)
        np.testing.assert_allclose(target[:, 2], coords[:, 0] * coords[:, 1], rtol=1e-6)
        # Without replacement: 40 distinct pixels.
        self.assertEqual(len({tuple(c) for c in coords}), 40)

    def test_whole_grid_subset_loss_equals_full_image_loss(self):
        res = 12
        model = Siren(out_features=3, width=16, depth=2, seed=0)
        fmodel = FunctionalModel(model)
        weights = fmodel.initial_weights()
        rng = np.random.default_rng(1)
        example = {"image": rng.random((res, res, 3)).astype(np.float32),
                   "seed": tf.constant([0, 7])}
        full = ImageTask(res).outer_loss(fmodel, weights, example)
        task = PixelSubsetImageTask(res, pixels_per_step=res * res)
        self.assertAllClose(task.inner_loss(fmodel, weights, example, 1), full, rtol=1e-5)
        self.assertAllClose(task.outer_loss(fmodel, weights, example), full, rtol=1e-5)
        self.assertAllClose(task.metrics(fmodel, weights, example)["loss"], full, rtol=1e-6)
        # A true subset's loss differs from the full image's (it is a random estimate).
        half = PixelSubsetImageTask(res, pixels_per_step=res * res // 4)
        self.assertNotAllClose(half.inner_loss(fmodel, weights, example, 0), full)

    def test_subsets_differ_by_step_and_outer_loss(self):
        task = PixelSubsetImageTask(32, pixels_per_step=64)
        image = coordinate_image(32)
        example = {"image": image, "seed": tf.constant([1, 5])}
        seen = []

        def fmodel(weights, coords):  # Records the coordinates each loss is computed on.
            del weights
            seen.append(set(map(tuple, coords.numpy())))
            return tf.zeros((coords.shape[0], 3))

        task.inner_loss(fmodel, None, example, 0)
        task.inner_loss(fmodel, None, example, 1)
        task.outer_loss(fmodel, None, example)
        task.inner_loss(fmodel, None, example, 0)
        self.assertEqual(seen[0], seen[3])  # Deterministic by (seed, step).
        self.assertLess(len(seen[0] & seen[1]), 32)
        self.assertLess(len(seen[0] & seen[2]), 32)

    def test_bad_counts_are_refused(self):
        with self.assertRaisesRegex(ValueError, "pixels_per_step must be between 1 and"):
            PixelSubsetImageTask(8, pixels_per_step=65)
        with self.assertRaisesRegex(ValueError, "outer_pixels"):
            PixelSubsetImageTask(8, pixels_per_step=4, outer_pixels=0)

    def test_without_a_seed_every_pixel_is_fitted(self):
        """A held-out example without a seed (a test-time fit through the task a
        published init records) uses the full grid: the loss is ImageTask's, not that of
        a 4-pixel subset."""
        fmodel = FunctionalModel(Siren(out_features=3, width=8, depth=2, seed=0))
        weights = fmodel.initial_weights()
        image = np.random.default_rng(1).random((8, 8, 3)).astype(np.float32)
        task = PixelSubsetImageTask(8, pixels_per_step=4)
        full = ImageTask(8).inner_loss(fmodel, weights, {"image": image}, 0)
        for loss in (task.inner_loss(fmodel, weights, {"image": image}, 0),
                     task.outer_loss(fmodel, weights, {"image": image})):
            self.assertAllClose(loss, full)
        seeded = {"image": image, "seed": tf.constant([3, 4])}
        self.assertNotAllClose(task.inner_loss(fmodel, weights, seeded, 0), full)

    def test_fits_use_every_pixel(self):
        """`for_fitting`: a subset init's held-out or user fit minimises the full image's
        MSE even when the example carries a seed (held-out examples do), and the task an
        init's metadata gives (`task_from_metadata`, learnit-fit's `kind_of_init`) is it."""
        from learnit_tf.commands.init_args import kind_of_init  # pylint: disable=import-outside-toplevel
        task = PixelSubsetImageTask(8, pixels_per_step=4)
        fitting = task.for_fitting()
        self.assertIs(type(fitting), ImageTask)
        self.assertEqual((fitting.height, fitting.width, fitting.channels,
                          fitting.pixels_per_step), (8, 8, 3, None))
        fmodel = FunctionalModel(Siren(out_features=3, width=8, depth=2, seed=0))
        weights = fmodel.initial_weights()
        image = np.random.default_rng(1).random((8, 8, 3)).astype(np.float32)
        seeded = {"image": image, "seed": tf.constant([3, 4])}
        full = tf.reduce_mean(tf.square(task.render(fmodel, weights) - image))
        self.assertAllClose(fitting.inner_loss(fmodel, weights, seeded, 0), full)
        self.assertNotAllClose(task.inner_loss(fmodel, weights, seeded, 0), full)
        metadata = {"task": {"class_name": "PixelSubsetImageTask", "config": task.get_config()}}
        self.assertEqual(evaluation.task_from_metadata(metadata).get_config(), fitting.get_config())
        self.assertIs(type(evaluation.task_from_metadata(metadata, as_trained=True)), PixelSubsetImageTask)
        self.assertEqual(kind_of_init(metadata)[1].get_config(), fitting.get_config())
        plain = ImageTask(8)
        self.assertIs(plain.for_fitting(), plain)

    def test_task_at_resolution_is_a_full_grid(self):
        task = task_at_resolution(PixelSubsetImageTask(64, pixels_per_step=16), 32)
        self.assertIs(type(task), ImageTask)
        self.assertEqual((task.height, task.width, task.pixels_per_step), (32, 32, None))
        own = ImageTask(16)
        self.assertIs(task_at_resolution(own), own)
        with self.assertRaisesRegex(ValueError, "integer >= 2"):
            task_at_resolution(own, 1)


class ClassesAtResolutionTest(testing.TestCase):

    def test_config_copies(self):
        cfg = config_at_resolution(TextImages, "small", 48)
        self.assertEqual((cfg.name, cfg.resolution, cfg.num_train), ("small_48px", 48, 64))
        self.assertEqual(config_at_resolution(TextImages, "small", 32), "small")
        self.assertEqual(config_at_resolution(TextImages, "small", None), "small")
        with self.assertRaisesRegex(ValueError, "Unknown text_images config"):
            config_at_resolution(TextImages, "nope", 48)
        with self.assertRaisesRegex(ValueError, "integer >= 2"):
            config_at_resolution(Sdf2d, "small", "64")

    def test_same_signals_at_another_resolution(self):
        data_dir = os.path.join(self.get_temp_dir(), "tfds")
        low = [ex["image"].numpy() for ex in text_images_examples("test", "small", data_dir)]
        high = [ex["image"].numpy() for ex in
                text_images_examples("test", "small", data_dir, resolution=64)]
        self.assertEqual((len(high), high[0].shape), (len(low), (64, 64, 3)))
        # Same seeds: the same background colour (the top-left pixel is background in
        # most images) and a close 2×2 box-filtered downsampling.
        same_corner = np.mean([np.allclose(a[0, 0], b[0, 0]) for a, b in zip(low, high)])
        self.assertGreater(same_corner, 0.7)
        down = [b.reshape(32, 2, 32, 2, 3).mean(axis=(1, 3)) for b in high]
        matched = [np.mean(np.abs(a - d)) for a, d in zip(low, down)]
        shifted = [np.mean(np.abs(a - d)) for a, d in zip(low, down[1:] + down[:1])]
        self.assertLess(np.mean(matched), 0.5 * np.mean(shifted))
        sdf_high = sdf_2d_examples("test[:3]", "small", data_dir, resolution=32)
        self.assertEqual(next(iter(sdf_high))["image"].shape, (32, 32, 3))

    def test_a_split_read_at_another_resolution_generates_only_that_split(self):
        """Reading "test" at 48 px renders the test signals alone (not the training ones),
        and they are the full 48 px config's test signals, in its order: if the split-only
        copy drew or ordered examples by anything but (seed, split, index) and the split's
        name, held-out evaluations at a resolution would silently change signals."""
        from learnit_tf.data.procedural_builders import (  # pylint: disable=import-outside-toplevel
            prepare_procedural_builder, split_names_in)
        from learnit_tf.kinds.image.emoji import (  # pylint: disable=import-outside-toplevel
            EmojiImages, emoji_images_examples)
        self.assertEqual(split_names_in("validation[:10%]+train"), ("train", "validation"))
        self.assertIsNone(split_names_in("all"))
        data_dir = os.path.join(self.get_temp_dir(), "tfds")
        cases = ((Sdf2d, "small", sdf_2d_examples), (EmojiImages, "small",
                                                      emoji_images_examples))
        for builder_cls, config, examples in cases:
            full = prepare_procedural_builder(
                builder_cls, config_at_resolution(builder_cls, config, 48), data_dir)
            expected = [ex["image"].numpy() for ex in
                        full.as_dataset(split="test", shuffle_files=False)]
            got = [ex["image"].numpy() for ex in
                   examples("test", config, data_dir=data_dir, resolution=48)]
            self.assertEqual(len(got), len(expected))
            np.testing.assert_array_equal(np.round(np.stack(got) * 255).astype(np.uint8),
                                          np.stack(expected))
            folder = os.path.join(data_dir, builder_cls.name)
            self.assertIn(f"{config}_48px_test", os.listdir(folder))
            only = prepare_procedural_builder(
                builder_cls, config_at_resolution(builder_cls, config, 48, "test[:2]"),
                data_dir)
            self.assertEqual(sorted(only.info.splits), ["test"])


def _tiny_text_init(directory):
    return init_io.save_init(Siren(out_features=3, width=16, depth=2, seed=0), directory, {
        "signal_class": "text_images",
        "task": {"class_name": "PixelSubsetImageTask",
                 "config": PixelSubsetImageTask(32, pixels_per_step=64).get_config()},
        "dataset": {"function": "text_images_examples",
                    "bindings": {"config": "small"}},
        "hyperparameters": {"inner_optimizer": "sgd", "inner_learning_rate": 1e-2}})


class ProtocolResolutionTest(testing.TestCase):

    def test_metadata_at_resolution(self):
        init_dir = _tiny_text_init(os.path.join(self.get_temp_dir(), "init"))
        metadata = init_io.read_metadata(init_dir)
        out = metadata_at_resolution(metadata, 48)
        self.assertEqual(out["task"], {"class_name": "ImageTask", "config": {
            "resolution": [48, 48], "channels": 3, "pixels_per_step": None}})
        self.assertEqual(out["dataset"]["bindings"], {"config": "small", "resolution": 48})
        own = metadata_at_resolution(metadata)
        self.assertEqual(own["task"]["config"]["resolution"], [32, 32])
        self.assertEqual(own["dataset"]["bindings"], {"config": "small"})
        ct = {"task": {"class_name": "CtTask", "config": {"resolution": 8}}}
        with self.assertRaisesRegex(ValueError, "image inits"):
            metadata_at_resolution(ct, 16)

    def test_resolution_changes_the_data_and_is_reported(self):
        root = self.get_temp_dir()
        init_dir = _tiny_text_init(os.path.join(root, "init"))
        metadata = init_io.read_metadata(init_dir)
        model = init_io.load_init(init_dir)
        shapes = {}
        for res in (None, 48):
            protocol = evaluation.protocol_for(
                metadata, num_examples=1, meta_steps=1, standard_steps=1, resolution=res,
                data_dir=os.path.join(root, "tfds"), progress=False, snapshot_examples=0)
            self.assertIsInstance(protocol, ImageProtocol)
            examples = protocol.held_out(metadata_at_resolution(metadata, res), None)
            shapes[res] = tuple(examples[0]["image"].shape)
            report = protocol.evaluate(model, metadata, "tiny")
            self.assertEqual(report.settings["resolution"], res or 32)
            self.assertEqual(report.summary["resolution"], res or 32)
        self.assertEqual(shapes, {None: (32, 32, 3), 48: (48, 48, 3)})

    def test_evaluate_command_resolution_flag(self):
        root = self.get_temp_dir()
        init_dir = _tiny_text_init(os.path.join(root, "init"))
        out = os.path.join(root, "report")
        env = dict(os.environ, TFDS_DATA_DIR=os.path.join(root, "tfds"))
        result = subprocess.run(
            [sys.executable, os.path.join(REPO, "scripts", "evaluate.py"), f"--init={init_dir}",
             f"--output_dir={out}", "--resolution=40", "--num_examples=1", "--meta_steps=1",
             "--standard_steps=1", "--snapshot_examples=0", "--progress=false",
             f"--data_dir={os.path.join(root, 'tfds')}"],
            capture_output=True, text=True, env=env, timeout=600, check=False)
        self.assertEqual(result.returncode, 0, result.stderr[-2000:])
        report = evaluation.Report.from_json(
            __import__("json").load(open(os.path.join(out, "report.json"))))
        self.assertEqual(report.settings["resolution"], 40)
        bad = subprocess.run(
            [sys.executable, os.path.join(REPO, "scripts", "evaluate.py"), f"--init={init_dir}",
             f"--output_dir={out}2", "--resolution=1", "--num_examples=1"],
            capture_output=True, text=True, env=env, timeout=600, check=False)
        self.assertNotEqual(bad.returncode, 0)
        self.assertIn("resolution must be an integer >= 2", bad.stderr)
        self.assertNotIn("Traceback", bad.stderr)


class ZooResolutionTest(testing.TestCase):
    """zoo.load(resolution=R) and learnit-fit --resolution pick and warn."""

    def setUp(self):
        super().setUp()
        root = self.get_temp_dir()
        self.zoo_dir = os.path.join(root, "zoo")
        base = {"signal_class": "text_images",
                "task": {"class_name": "ImageTask", "config": ImageTask(8).get_config()},
                "dataset": {"function": "text_images_examples", "bindings": {"config": "small"}},
                "hyperparameters": {"inner_optimizer": "sgd", "inner_learning_rate": 1e-2},
                "evaluation": {"summary": {"meta_psnr_at_2": 30.5, "steps_to_match": 40,
                                           "standard_psnr_at_2": 10.0}}}
        v2 = dict(base, evaluated_resolutions={
            "8": {"meta_psnr_at_match": 31.0, "steps_to_match": 50,
                  "standard_steps_evaluated": 100},
            "16": {"meta_psnr_at_match": 29.0, "steps_to_match": None,
                   "standard_steps_evaluated": 100}})
        from learnit_tf import zoo  # pylint: disable=import-outside-toplevel
        for version, metadata in (("1", base), ("2", v2), ("3", base)):
            init = init_io.save_init(Siren(out_features=3, width=8, depth=2, seed=int(version)),
                                     os.path.join(root, f"init{version}"), metadata)
            zoo.publish(init, "tiny", version, self.zoo_dir)
        self.index = os.path.join(self.zoo_dir, "index.json")

    def test_load_picks_the_version_evaluated_there_and_warns_otherwise(self):
        from learnit_tf import zoo  # pylint: disable=import-outside-toplevel
        from learnit_tf.zoo import resolution as zr
        latest = zoo.load("tiny", index=self.index)
        with self._no_warning():
            at16 = zoo.load("tiny", index=self.index, resolution=16)
        # Version 2 (seed 2) was evaluated at 16, the latest (3) was not.
        v2 = zoo.load("tiny@2", index=self.index)
        self.assertAllClose(at16.get_weights()[0], v2.get_weights()[0])
        self.assertNotAllClose(at16.get_weights()[0], latest.get_weights()[0])
        # No version was evaluated at 32: the one best at the largest evaluated grid (16,
        # tiny@2) is loaded, with the warning and its measured numbers.
        with self.assertWarns(zr.ResolutionWarning) as caught:
            at32 = zoo.load("tiny", index=self.index, resolution=32)
        self.assertAllClose(at32.get_weights()[0], v2.get_weights()[0])
        text = str(caught.warning)
        self.assertIn("tiny@2 was meta-trained at 8×8 and not evaluated at 32×32", text)
        self.assertIn("8×8: 31.00 dB after 2 steps, 50 standard steps to match; 16×16: 29.00 dB",
                      text)
        spec, note = zr.choose_init(zoo.Zoo(self.index), "tiny", 32)
        self.assertEqual(spec, "tiny@2")
        self.assertIn("measured at 16×16, the evaluated grid that stands in for 32×32", note)
        self.assertEqual(zr.version_for_resolution(zoo.Zoo(self.index), "tiny", 32), None)
        self.assertEqual(zr.version_for_resolution(zoo.Zoo(self.index), "tiny", 32,
                                                   stand_in=True), "2")
        with self.assertWarns(zr.ResolutionWarning) as caught:
            zoo.load("tiny@3", index=self.index, resolution=16)  # Pinned: kept, warned.
        self.assertIn("tiny@3 was meta-trained at 8×8", str(caught.warning))
        self.assertIn("16×16: 29.00 dB after 2 steps, not matched in 100", zr.resolution_warning(
            "x", {"task": {"class_name": "ImageTask", "config": {"resolution": [8, 8]}},
                  "evaluated_resolutions": {"16": {"meta_psnr_at_match": 29.0,
                                                   "steps_to_match": None,
                                                   "standard_steps_evaluated": 100}}}, 32))

    def _no_warning(self):
        import contextlib  # pylint: disable=import-outside-toplevel
        import warnings  # pylint: disable=import-outside-toplevel

        @contextlib.contextmanager
        def check():
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                yield
            from learnit_tf.zoo.resolution import ResolutionWarning
            self.assertEqual([w for w in caught if w.category is ResolutionWarning], [])
        return check()

    def test_a_version_specialised_to_one_resolution_is_picked_there_only(self):
        """A newer version best at 16 but worse at 8 (an init trained for large grids) is
        loaded at 16, while a user at 8 keeps the version best at 8 (tiny@2, 31.0 dB: not
        the latest, not tiny@1 or tiny@3's 30.5 dB, not the new version's 20.0 dB)."""
        from learnit_tf import zoo  # pylint: disable=import-outside-toplevel
        from learnit_tf.zoo import resolution as zr
        metadata = {"signal_class": "text_images",
                    "task": {"class_name": "ImageTask", "config": ImageTask(16).get_config()},
                    "dataset": {"function": "text_images_examples",
                                "bindings": {"config": "small"}},
                    "hyperparameters": {"inner_optimizer": "sgd", "inner_learning_rate": 1e-2},
                    "evaluated_resolutions": {
                        "8": {"meta_psnr_at_match": 20.0, "steps_to_match": 9,
                              "standard_steps_evaluated": 100},
                        "16": {"meta_psnr_at_match": 35.0, "steps_to_match": None,
                               "standard_steps_evaluated": 40}}}
        init = init_io.save_init(Siren(out_features=3, width=8, depth=2, seed=4),
                                 os.path.join(self.get_temp_dir(), "init4"), metadata)
        zoo.publish(init, "tiny", "4", self.zoo_dir)
        zoo_obj = zoo.Zoo(self.index)
        self.assertEqual(zr.choose_init(zoo_obj, "tiny", 16), ("tiny", None))  # The latest.
        spec, note = zr.choose_init(zoo_obj, "tiny", 8)
        self.assertEqual(spec, "tiny@2")
        self.assertIn("8×8: 31.00 dB after 2 steps, 50 standard steps to match", note)
        self.assertEqual(zr.choose_init(zoo_obj, "tiny@4", 8), ("tiny@4", None))  # Pinned.
        with self._no_warning():
            at16 = zoo.load("tiny", index=self.index, resolution=16)
            at8 = zoo.load("tiny", index=self.index, resolution=8)
        self.assertAllClose(at16.get_weights()[0],
                            zoo.load("tiny@4", index=self.index).get_weights()[0])
        self.assertAllClose(at8.get_weights()[0],
                            zoo.load("tiny@2", index=self.index).get_weights()[0])

    def test_fit_command_warns_and_picks(self):
        from PIL import Image  # pylint: disable=import-outside-toplevel
        root = self.get_temp_dir()
        photo = os.path.join(root, "photo.png")
        Image.fromarray((np.random.default_rng(0).random((40, 40, 3)) * 255)
                        .astype(np.uint8)).save(photo)
        env = dict(os.environ, LEARNIT_TF_ZOO_INDEX=self.index)
        outputs = {}
        for res in (16, 32):
            result = subprocess.run(
                [sys.executable, os.path.join(REPO, "scripts", "fit.py"), "--init=tiny",
                 f"--input={photo}", f"--output_dir={os.path.join(root, f'out{res}')}",
                 "--steps=1", f"--resolution={res}"],
                capture_output=True, text=True, env=env, timeout=600, check=False)
            self.assertEqual(result.returncode, 0, result.stderr[-2000:])
            outputs[res] = result.stderr
        self.assertIn("Using tiny@2, the version of tiny with the highest 2-step PSNR measured at "
                      "16×16 (16×16: 29.00 dB after 2 steps", outputs[16])
        self.assertNotIn("Warning:", outputs[16])
        # 32 was evaluated by no version: the one best at the largest grid (16), warned.
        self.assertIn("Using tiny@2, the version of tiny with the highest 2-step PSNR measured "
                      "at 16×16, the evaluated grid that stands in for 32×32", outputs[32])
        self.assertIn("Warning: tiny@2 was meta-trained at 8×8 and not evaluated at 32×32",
                      outputs[32])

    def test_fit_command_fits_a_larger_image_at_its_own_size(self):
        """No --resolution: a 16×16 image (larger than the latest's 8×8 grid) is fitted at
        16×16 with the version measured best there; an 8×11 one at the init's own 8×8."""
        from PIL import Image  # pylint: disable=import-outside-toplevel
        root = self.get_temp_dir()
        env = dict(os.environ, LEARNIT_TF_ZOO_INDEX=self.index)
        for side, fitted_side in ((16, 16), (8, 8)):
            photo = os.path.join(root, f"photo{side}.png")
            Image.fromarray((np.random.default_rng(side).random((side, side + 3, 3)) * 255)
                            .astype(np.uint8)).save(photo)
            out = os.path.join(root, f"auto{side}")
            result = subprocess.run(
                [sys.executable, os.path.join(REPO, "scripts", "fit.py"), "--init=tiny",
                 f"--input={photo}", f"--output_dir={out}", "--steps=1"],
                capture_output=True, text=True, env=env, timeout=600, check=False)
            self.assertEqual(result.returncode, 0, result.stderr[-2000:])
            self.assertEqual(np.load(os.path.join(out, "reconstruction.npy")).shape,
                             (fitted_side, fitted_side, 3))
            picked = "Using tiny@2, the version of tiny with the highest 2-step PSNR"
            source = init_io.read_metadata(os.path.join(out, "fitted"))["fitted"]["source_init"]
            if side == 16:
                self.assertIn("--resolution=16 (from --input", result.stderr)
                self.assertIn(picked, result.stderr)
                self.assertEqual(source, "tiny@2")  # What was fitted, not the bare name.
            else:
                self.assertNotIn("--resolution=", result.stderr)
                self.assertNotIn(picked, result.stderr)
                self.assertEqual(source, "tiny")

    def test_resolution_of_input(self):
        from PIL import Image  # pylint: disable=import-outside-toplevel
        from learnit_tf.kinds.image.folder import MAX_INPUT_RESOLUTION, resolution_of_input
        root = self.get_temp_dir()
        for (width, height), expected in (((300, 200), 200), ((64, 64), None),
                                          ((40, 90), None), ((900, 700), MAX_INPUT_RESOLUTION)):
            path = os.path.join(root, f"{width}x{height}.png")
            Image.new("RGB", (width, height)).save(path)
            self.assertEqual(resolution_of_input(path, ImageTask(64)), expected, path)
        broken = os.path.join(root, "broken.png")
        with open(broken, "wb") as f:
            f.write(b"not an image")
        self.assertIsNone(resolution_of_input(broken, ImageTask(64)))
        self.assertIsNone(resolution_of_input(root, ImageTask(64)))
        from learnit_tf.core.registry import ReaderOption  # pylint: disable=import-outside-toplevel
        with self.assertRaisesRegex(ValueError, "'module:attribute'"):
            ReaderOption("resolution", "integer", from_input="resolution_of_input")


class ResolutionTableTest(testing.TestCase):

    def test_first_examples_are_the_full_configs(self):
        from learnit_tf.kinds.image.resolution import first_examples_config
        data_dir = os.path.join(self.get_temp_dir(), "tfds")
        cfg = first_examples_config(TextImages, "small", 24, 3)
        self.assertEqual((cfg.name, cfg.resolution, cfg.num_test), ("small_24px_first3", 24, 3))
        short = [ex["image"].numpy() for ex in text_images_examples("test", cfg, data_dir)]
        full = [ex["image"].numpy() for ex in
                text_images_examples("test", "small", data_dir, resolution=24)]
        self.assertEqual(len(short), 3)
        # Each is one of the full config's test signals (TFDS orders a split by a hash of
        # the example keys, so not necessarily its first three as read).
        for a in short:
            self.assertEqual(sum(np.array_equal(a, b) for b in full), 1)
        # The same signals in the same order at another resolution (same keys).
        other = first_examples_config(TextImages, "small", 48, 3)
        large = [ex["image"].numpy() for ex in text_images_examples("test", other, data_dir)]
        down = [b.reshape(24, 2, 24, 2, 3).mean(axis=(1, 3)) for b in large]
        for i, a in enumerate(short):
            errors = [np.mean(np.abs(a - d)) for d in down]
            self.assertEqual(int(np.argmin(errors)), i)

    def test_rows_match_an_independent_fit(self):
        from learnit_tf.kinds.image import resolution_table as rt
        from learnit_tf.evaluation.baselines import standard_init
        from learnit_tf.meta import Fitter
        from learnit_tf.meta.inner import InnerOptimizer
        root = self.get_temp_dir()
        init_dir = _tiny_text_init(os.path.join(root, "init"))
        metadata = init_io.read_metadata(init_dir)
        model = init_io.load_init(init_dir)
        data_dir = os.path.join(root, "tfds")
        rows, curves = rt.resolution_table([rt.Loaded("tiny", model, metadata)], [16, 24],
                                           num_examples=2, meta_steps=2, standard_steps=5,
                                           data_dir=data_dir, progress=False)
        self.assertEqual([(r["resolution"], r["trained_at"]) for r in rows], [(16, 32), (24, 32)])
        self.assertEqual(len(curves), 2)
        # Independently: fit the same two test images at 24×24 with SGD 1e-2 (the init's
        # inner optimizer) and a standard init with Adam 1e-4.
        from learnit_tf.kinds.image.resolution import first_examples_config
        images = [ex["image"] for ex in text_images_examples(
            "test", first_examples_config(TextImages, "small", 24, 2), data_dir)]
        task = ImageTask(24)
        meta = Fitter(model, task, InnerOptimizer("sgd", 1e-2))
        psnr = np.mean([meta.fit({"image": im}, 2).metrics["psnr"][2] for im in images])
        self.assertAlmostEqual(rows[1]["meta_psnr_at_match"], psnr, places=2)
        standard = Fitter(standard_init(model, seed=1), task, InnerOptimizer("adam", 1e-4))
        curve = np.mean([standard.fit({"image": im}, 5).metrics["psnr"] for im in images], 0)
        self.assertAlmostEqual(rows[1]["standard_psnr_at_match"], curve[2], places=2)
        reached = next((s for s in range(6) if curve[s] >= psnr), None)
        self.assertEqual(rows[1]["steps_to_match"], reached)
        table = rt.markdown_table(rows, [16, 24])
        self.assertIn("| tiny | 32² |", table)
        by_res = rt.evaluations_by_resolution(rows, "tiny")
        self.assertEqual(sorted(by_res), ["16", "24"])


class EmojiUpsamplingTest(testing.TestCase):

    def test_small_artwork_is_upsampled_not_refused(self):
        from PIL import Image  # pylint: disable=import-outside-toplevel
        from learnit_tf.kinds.image.emoji import load_image_upsampled
        path = os.path.join(self.get_temp_dir(), "e.png")
        # Left half red, right half blue (x is the second axis).
        pixels = np.zeros((8, 8, 3), np.uint8)
        pixels[:, :4, 0] = 255
        pixels[:, 4:, 2] = 255
        Image.fromarray(pixels).save(path)
        big = load_image_upsampled(path, 32)
        self.assertEqual(big.shape, (32, 32, 3))
        self.assertGreater(big[16, 2, 0], 0.95)    # Left stays red,
        self.assertGreater(big[16, 29, 2], 0.95)   # right stays blue,
        self.assertLess(big[16, 29, 0], 0.05)
        down = big.reshape(8, 4, 8, 4, 3).mean(axis=(1, 3))
        self.assertLess(np.abs(down - pixels / 255.0).mean(), 0.05)
        np.testing.assert_array_equal(load_image_upsampled(path, 8), pixels / np.float32(255))


class ShippedResolutionPickTest(testing.TestCase):

    def test_emoji_siren_at_64_128_and_256(self):
        """The repo's zoo: at 128 and 256 a bare `emoji_siren` is emoji_siren@8 (emoji_siren@7
        meta-trained further with inner steps and outer loss on 16,384 pixels; @7 (a
        meta-batch of 12), @6, @5 and @4, the earlier steps of that line on 4096-pixel
        subsets of 256² images, are evaluated there too, with lower PSNRs); at 64 it stays
        emoji_siren@3 (37.09 dB after 2 steps at 64² vs @7's 29.57), so a user at 64 does
        not get the version specialised to larger grids."""
        from learnit_tf import zoo  # pylint: disable=import-outside-toplevel
        from learnit_tf.zoo import resolution as zr
        from learnit_tf.zoo.names import split_name
        shipped = zoo.Zoo()

        def picked(resolution):
            spec, _ = zr.choose_init(shipped, "emoji_siren", resolution)
            return split_name(spec)[1] or shipped.resolve_version("emoji_siren")

        self.assertEqual({r: picked(r) for r in (64, 128, 256)}, {64: "3", 128: "8", 256: "8"})
        # Grids no version was evaluated at take, among the versions evaluated at several
        # grids (@4-@8), the one best at the next evaluated grid up, else the largest: @8,
        # measured better than @3, @6 and @7 at every such grid tried, 48² to 320²
        # (docs/image/resolution.md, "Between the evaluated grids"; checked there against
        # the measurements by MeasuredStandInTest).
        self.assertEqual({r: picked(r) for r in (48, 72, 100, 200, 320)},
                         {48: "8", 72: "8", 100: "8", 200: "8", 320: "8"})
        measured = {v: zr.evaluated_resolutions(shipped.describe("emoji_siren", v))
                    for v in ("3", "4", "5", "6", "7", "8")}
        for resolution in (128, 256):
            psnr = {v: measured[v][resolution]["meta_psnr_at_match"]
                    for v in ("4", "5", "6", "7", "8")}
            self.assertGreater(psnr["8"], psnr["7"])
            self.assertGreater(psnr["7"], psnr["6"])
            self.assertGreater(psnr["6"], psnr["5"])
            self.assertGreater(psnr["5"], psnr["4"])
            for version in ("5", "6", "7", "8"):  # No warning where it was evaluated.
                self.assertIsNone(zr.resolution_warning(
                    f"emoji_siren@{version}", shipped.describe("emoji_siren", version),
                    resolution))
        for version in ("5", "6", "7", "8"):
            self.assertGreater(measured["3"][64]["meta_psnr_at_match"],
                               measured[version][64]["meta_psnr_at_match"])
        # With no resolution asked for, a bare name is the entry's default: the 64² init
        # (the artwork's own grid), not the newest version, which is specialised to 256²
        # (published with --nomake_latest).
        self.assertEqual(shipped.resolve_version("emoji_siren"), "3")
        self.assertEqual(zr.choose_init(shipped, "emoji_siren", None), ("emoji_siren", None))

    def test_text_siren_at_64_128_and_256(self):
        """text_siren@7 (text_siren@6's weights with a whole-curve recipe; @6 is
        text_siren@5, itself text_siren@3 meta-trained on 4096-pixel subsets of 256² texts,
        trained 2500 steps more) is the text init at 128 and 256 and between and beyond
        them (@6's weights are better than @5's at 64, 128 and 256 on the table's test
        texts; @5 was measured better than @3 at 48² and 100²: docs/image/resolution.md);
        a same-weights pair is one candidate and the newer recipe (@7's) is the one picked,
        not @6; at 64 the 64²-only weights (36.78 dB vs @6's 28.65) as @4, the latest (@3's
        weights and a whole-curve recipe); with no resolution @4 too."""
        from learnit_tf import zoo  # pylint: disable=import-outside-toplevel
        from learnit_tf.zoo import resolution as zr
        from learnit_tf.zoo.names import split_name
        shipped = zoo.Zoo()
        picked = {r: split_name(zr.choose_init(shipped, "text_siren", r)[0])[1]
                  or shipped.resolve_version("text_siren") for r in (48, 64, 100, 128, 256, 320)}
        # At 64, @4: @3's weights with the whole-curve recipe, and the latest (a same-weights
        # pair is one candidate; @3's 36.47 vs @4's 36.43 dB is how they were evaluated).
        self.assertEqual(picked, {48: "7", 64: "4", 100: "7", 128: "7", 256: "7", 320: "7"})
        measured = {v: zr.evaluated_resolutions(shipped.describe("text_siren", v))
                    for v in ("3", "5", "6")}
        for resolution in (128, 256):
            at = {v: m.get(resolution, {}).get("meta_psnr_at_match", 0.0)
                  for v, m in measured.items()}
            self.assertGreater(at["6"], at["5"])
            self.assertGreater(at["5"], at["3"])
        self.assertEqual(shipped.resolve_version("text_siren"), "4")

    def test_sdf_siren_at_64_128_and_256(self):
        """sdf_siren@5 (sdf_siren@2 with its first layer ×0.7, meta-trained on 4096-pixel
        subsets of 256² SDFs) is the SDF init at 128 and 256 (26.55 / 26.43 dB after 2 steps
        vs sdf_siren@3's 17.90 / 16.07, the table's test SDFs); at 64 the 64²-trained weights
        (sdf_siren@4, the latest: 39.06 dB vs @5's 28.33)."""
        from learnit_tf import zoo  # pylint: disable=import-outside-toplevel
        from learnit_tf.zoo import resolution as zr
        from learnit_tf.zoo.names import split_name
        shipped = zoo.Zoo()
        picked = {r: split_name(zr.choose_init(shipped, "sdf_siren", r)[0])[1]
                  or shipped.resolve_version("sdf_siren") for r in (64, 100, 128, 256)}
        self.assertEqual(picked, {64: "4", 100: "5", 128: "5", 256: "5"})
        v5 = zr.evaluated_resolutions(shipped.describe("sdf_siren", "5"))
        v4 = zr.evaluated_resolutions(shipped.describe("sdf_siren", "4"))
        self.assertGreater(v4[64]["meta_psnr_at_match"], v5[64]["meta_psnr_at_match"])
        for resolution in (128, 256):
            self.assertGreaterEqual(v5[resolution]["steps_to_match"], 24)
            self.assertIsNone(zr.resolution_warning(
                "sdf_siren@5", shipped.describe("sdf_siren", "5"), resolution))
        self.assertEqual(shipped.resolve_version("sdf_siren"), "4")

    def test_a_version_with_an_earlier_ones_weights_is_not_passed_over(self):
        """sdf_siren@4 is sdf_siren@3's weights with a fit recipe ahead at every level to
        1000 steps, and the latest; its recorded 2-step PSNR at 64² (39.06 dB) is below
        @3's (39.25: other evaluation examples). At 64 the pick is @4, not @3."""
        from learnit_tf import zoo  # pylint: disable=import-outside-toplevel
        from learnit_tf.zoo import resolution as zr
        shipped = zoo.Zoo()
        self.assertGreater(
            zr.evaluated_resolutions(shipped.describe("sdf_siren", "3"))[64]["meta_psnr_at_match"],
            zr.evaluated_resolutions(shipped.describe("sdf_siren", "4"))[64]["meta_psnr_at_match"])
        self.assertEqual(zr.choose_init(shipped, "sdf_siren", 64), ("sdf_siren", None))
        self.assertEqual(shipped.resolve_version("sdf_siren"), "4")
        self.assertEqual(zr.version_for_resolution(shipped, "sdf_siren", 64), "4")
        self.assertEqual(zr.version_for_resolution(shipped, "emoji_siren", 64), "3")


class MeasuredStandInTest(testing.TestCase):

    def test_the_pick_between_evaluated_grids_is_the_measured_best(self):
        """At every grid measured in docs/image/resolution/between_grids (emoji_siren@3, @6,
        @7 and @8 at 48² to 320², none of them an evaluated grid of any), the version that
        `choose_init` picks for a bare `emoji_siren` is the one measured best there. A rule
        that let @3's 64² number stand in for nearby grids (48, 72, 80, 88) would fail."""
        import glob  # pylint: disable=import-outside-toplevel
        import json  # pylint: disable=import-outside-toplevel
        from learnit_tf import zoo  # pylint: disable=import-outside-toplevel
        from learnit_tf.zoo import resolution as zr
        shipped = zoo.Zoo()
        files = sorted(glob.glob(os.path.join(REPO, "docs", "image", "resolution",
                                              "between_grids", "*", "resolution.json")))
        self.assertLen(files, 5)
        best = {}
        for path in files:
            with open(path) as f:
                for row in json.load(f)["rows"]:
                    r, psnr = int(row["resolution"]), row["meta_psnr_at_match"]
                    if r not in best or psnr > best[r][1]:
                        best[r] = (row["init"], psnr)
        self.assertEqual(sorted(best), [48, 72, 80, 88, 96, 100, 181, 200, 320])
        for r, (init, _) in sorted(best.items()):
            spec, note = zr.choose_init(shipped, "emoji_siren", r)
            self.assertEqual(spec, init, f"at {r}×{r}")
            self.assertIn("the evaluated grid that stands in for", note)


class SubsetInitFitTest(testing.TestCase):

    def test_a_subset_init_is_fitted_on_every_pixel_at_any_resolution(self):
        """learnit-fit's reader: an init meta-trained on pixel subsets fits the full grid,
        at its own resolution and with --resolution (which once kept its 4096-pixel
        subsets and, with no seed in a user's file, could not fit)."""
        from PIL import Image  # pylint: disable=import-outside-toplevel
        from learnit_tf.commands.init_args import kind_of_init  # pylint: disable=import-outside-toplevel
        from learnit_tf.kinds.image.folder import fit_example
        path = os.path.join(self.get_temp_dir(), "photo.png")
        Image.fromarray((np.random.default_rng(0).random((20, 20, 3)) * 255)
                        .astype(np.uint8)).save(path)
        trained = PixelSubsetImageTask(16, pixels_per_step=4)
        task = kind_of_init({"task": {"class_name": "PixelSubsetImageTask",  # As learnit-fit.
                                      "config": trained.get_config()}})[1]
        for resolution, side in ((None, 16), (8, 8)):
            fitted = fit_example(path, task, resolution=resolution).task
            self.assertIs(type(fitted), ImageTask)
            self.assertIsNone(fitted.pixels_per_step)
            self.assertEqual((fitted.height, fitted.width), (side, side))


class ResolutionTableScriptTest(testing.TestCase):

    def test_write_metadata_records_what_zoo_load_reads(self):
        from learnit_tf.zoo import resolution as zr
        root = self.get_temp_dir()
        init_dir = _tiny_text_init(os.path.join(root, "init"))
        out = os.path.join(root, "table")
        result = subprocess.run(
            [sys.executable, os.path.join(REPO, "scripts", "resolution_table.py"),
             f"--inits={init_dir}", "--resolutions=16,24", "--num_examples=1",
             "--standard_steps=3", f"--output_dir={out}", "--write_metadata",
             f"--data_dir={os.path.join(root, 'tfds')}"],
            capture_output=True, text=True, timeout=600, check=False)
        self.assertEqual(result.returncode, 0, result.stderr[-2000:])
        metadata = init_io.read_metadata(init_dir)
        rows = __import__("json").load(open(os.path.join(out, "resolution.json")))["rows"]
        self.assertEqual(sorted(zr.evaluated_resolutions(metadata)), [16, 24])
        self.assertEqual(zr.evaluated_resolutions(metadata)[24]["meta_psnr_at_match"],
                         rows[1]["meta_psnr_at_match"])
        self.assertIsNone(zr.resolution_warning("tiny", metadata, 24))
        self.assertIn("not evaluated at 64×64", zr.resolution_warning("tiny", metadata, 64))
        self.assertTrue(os.path.exists(os.path.join(out, "resolution_table.md")))
