"""Image regression end to end: data, meta-training gain, training loop, bad inputs."""

import os
import tempfile

import gin
import numpy as np
import tensorflow as tf
from PIL import Image

from learnit_tf.meta import init_io
from learnit_tf.training import gin_config
from learnit_tf.data import meta_batches, take_examples
from learnit_tf.kinds.image import image_folder_examples, load_image, text_images_examples
from learnit_tf.meta import Fitter, InnerOptimizer, MetaConfig, MetaTrainer, fit
from learnit_tf.models import Siren
from learnit_tf.kinds.image import ImageTask
from learnit_tf.testing import TestCase
from learnit_tf.training import NonFiniteLossError, evaluate_init, meta_train

_DATA_DIR = tempfile.mkdtemp(prefix="learnit_tfds_")


def _small(split):
    return text_images_examples(split, config="small", data_dir=_DATA_DIR)


class TextImagesTest(TestCase):

    def test_deterministic_and_in_range(self):
        first = [e["image"].numpy() for e in _small("test").take(4)]
        other_dir = self.get_temp_dir()
        second = [e["image"].numpy()
                  for e in text_images_examples("test", "small", data_dir=other_dir).take(4)]
        for a, b in zip(first, second):
            self.assertAllEqual(a, b)
            self.assertEqual(a.shape, (32, 32, 3))
            self.assertGreaterEqual(a.min(), 0.0)
            self.assertLessEqual(a.max(), 1.0)
            self.assertGreater(a.std(), 0.01)  # Text on a background, not a blank image.
        self.assertGreater(np.abs(first[0] - first[1]).mean(), 0.01)

    def test_unknown_split(self):
        with self.assertRaisesRegex(ValueError, "Unknown split 'tst'"):
            _small("tst")

    def test_meta_batches_static_shapes_and_seeds(self):
        batch = next(iter(meta_batches(_small("train"), 3, seed=7)))
        self.assertEqual(batch["image"].shape, (3, 32, 32, 3))
        self.assertEqual(batch["seed"].shape, (3, 2))
        self.assertAllEqual(batch["seed"][:, 0], [7, 7, 7])
        self.assertLen(set(batch["seed"][:, 1].numpy().tolist()), 3)


class MetaLearningGainTest(TestCase):

    def test_maml_beats_standard_init_by_3db_after_2_steps(self):
        task = ImageTask(32)
        held_out = take_examples(_small("test"), 8)
        model = Siren(width=128, depth=4, seed=0)
        trainer = MetaTrainer(model, task, MetaConfig("maml", 2), outer_learning_rate=1e-4)
        iterator = iter(meta_batches(_small("train"), 3, seed=0))
        for _ in range(40):
            trainer.train_step(next(iterator))
        meta = evaluate_init(Fitter(model, task, InnerOptimizer("sgd", 1e-2)), held_out, 2)
        # The paper's baseline protocol: standard init fitted with Adam 1e-4.
        standard = evaluate_init(Fitter(Siren(width=128, depth=4, seed=1), task,
                                        InnerOptimizer("adam", 1e-4)), held_out, 2)
        meta_psnr, standard_psnr = meta["psnr"][0][2], standard["psnr"][0][2]
        self.assertGreaterEqual(meta_psnr - standard_psnr, 3.0,
                                f"meta {meta_psnr:.2f} dB vs standard {standard_psnr:.2f} dB")


class FitTest(TestCase):

    def test_fit_curve_and_weights(self):
        model = Siren(width=32, depth=3, seed=0)
        image = self.random_images(1, 16)[0]
        result = fit(model, ImageTask(16), {"image": image}, steps=5,
                     optimizer=InnerOptimizer("adam", 1e-3))
        self.assertEqual(result.psnr.shape, (6,))
        self.assertGreater(result.psnr[-1], result.psnr[0] + 1.0)
        # The curve's last entry is the PSNR of the returned weights.
        fmodel_out = tf.reduce_mean(tf.square(
            ImageTask(16).render(__import__("learnit_tf").models.FunctionalModel(model),
                                 result.weights) - image))
        self.assertAllClose(result.psnr[-1], -10 * np.log10(float(fmodel_out)), atol=1e-3)

    def test_fit_rejects_bad_images(self):
        model = Siren(width=8, depth=2, seed=0)
        task = ImageTask(8)
        bad = np.full((8, 8, 3), 0.5, np.float32)
        bad[2, 3, 1] = np.nan
        with self.assertRaisesRegex(ValueError, "NaN"):
            fit(model, task, {"image": bad}, 1)
        with self.assertRaisesRegex(ValueError, r"expected \(\.\.\., 8, 8, 3\)"):
            fit(model, task, {"image": np.zeros((8, 8), np.float32)}, 1)
        with self.assertRaisesRegex(ValueError, r"expected \(\.\.\., 8, 8, 3\)"):
            fit(model, task, {"image": np.zeros((8, 8, 4), np.float32)}, 1)


class ImageFolderTest(TestCase):

    def _write(self, directory, name, size=(40, 30), mode="RGB"):
        path = os.path.join(directory, name)
        array = (np.random.RandomState(len(name)).rand(size[1], size[0], 3) * 255).astype("uint8")
        Image.fromarray(array).convert(mode).save(path)
        return path

    def test_folder_crop_resize_and_split(self):
        directory = self.get_temp_dir()
        for i in range(30):
            self._write(directory, f"img{i:02d}.png")
        self._write(directory, "gray.jpg", mode="L")
        train = list(image_folder_examples(directory, "train", resolution=16, test_fraction=0.3))
        test = list(image_folder_examples(directory, "test", resolution=16, test_fraction=0.3))
        self.assertEqual(len(train) + len(test), 31)
        self.assertNotEmpty(test)
        self.assertEqual(train[0]["image"].shape, (16, 16, 3))
        again = list(image_folder_examples(directory, "test", resolution=16, test_fraction=0.3))
        self.assertAllEqual(test[0]["image"], again[0]["image"])

    def test_bad_folders_and_files(self):
        empty = self.get_temp_dir()
        with self.assertRaisesRegex(ValueError, "holds no PNG/JPEG"):
            image_folder_examples(empty)
        with self.assertRaisesRegex(ValueError, "does not exist"):
            image_folder_examples(os.path.join(empty, "missing"))
        bogus = os.path.join(empty, "notes.png")
        with open(bogus, "w") as f:
            f.write("not an image")
        with self.assertRaisesRegex(ValueError, "Cannot read .*notes.png"):
            load_image(bogus)
        small = self._write(empty, "small.png", size=(10, 12))
        with self.assertRaisesRegex(ValueError, "smaller than the requested 16"):
            load_image(small, 16)
        cmyk = self._write(empty, "cmyk.jpg", mode="CMYK")
        # CMYK is converted to RGB by the one image decoder (issue 26), not refused.
        self.assertEqual(load_image(cmyk).shape[-1], 3)


class MetaTrainLoopTest(TestCase):

    def _run(self, model_dir, **kwargs):
        args = dict(model_fn=lambda seed: Siren(width=16, depth=3, seed=seed),
                    task=ImageTask(32), dataset_fn=_small, meta_batch_size=2,
                    checkpoint_every=2, eval_every=0, show_progress=False)
        args.update(kwargs)
        return meta_train(model_dir, **args)

    def test_exports_init_with_metadata(self):
        model_dir = self.get_temp_dir()
        result = self._run(model_dir, num_steps=3, eval_every=3, num_eval_examples=2)
        model = init_io.load_init(result["init_dir"])
        self.assertEqual(model.width, 16)
        meta = init_io.read_metadata(result["init_dir"])
        self.assertEqual(meta["steps"], 3)
        self.assertEqual(meta["algorithm"], "maml")
        self.assertEqual(meta["task"]["class_name"], "ImageTask")
        self.assertIn("wall_time_seconds", meta)
        self.assertTrue(os.path.isdir(os.path.join(model_dir, "tensorboard")))

    def test_remat_run_matches_plain_run(self):
        # The memory option, switched on the way users do (meta_train.remat in gin),
        # trains the same init.
        results = {}
        for remat in (False, True):
            result = self._run(self.get_temp_dir() + f"/remat{int(remat)}", num_steps=3,
                               inner_steps=3, remat=remat, outer_learning_rate=1e-3)
            results[remat] = (init_io.load_init(result["init_dir"]),
                              init_io.read_metadata(result["init_dir"]))
        self.assertTrue(results[True][1]["hyperparameters"]["remat"])
        self.assertFalse(results[False][1]["hyperparameters"]["remat"])
        plain = [v.numpy() for v in results[False][0].trainable_variables]
        remat = [v.numpy() for v in results[True][0].trainable_variables]
        self.assertWeightsClose(remat, plain, atol=1e-5, rtol=1e-4)
        start = [v.numpy() for v in Siren(width=16, depth=3, seed=0).trainable_variables]
        moved = max(float(np.max(np.abs(p - s))) for p, s in zip(plain, start))
        self.assertGreater(moved, 1e-3)  # The comparison is not of untrained weights.

    def test_nan_loss_stops_and_keeps_last_good_checkpoint(self):
        model_dir = self.get_temp_dir()
        self._run(model_dir, num_steps=4, stop_after_steps=4)
        manager_dir = os.path.join(model_dir, "checkpoints")
        latest = tf.train.latest_checkpoint(manager_dir)
        self.assertTrue(latest.endswith("ckpt-4"))
        saved = {name: tf.train.load_variable(latest, name)
                 for name, _ in tf.train.list_variables(latest) if "model" in name}
        with self.assertRaisesRegex(NonFiniteLossError, "Non-finite .* step 5"):
            self._run(model_dir, num_steps=8, inner_learning_rate=1e30)
        self.assertEqual(tf.train.latest_checkpoint(manager_dir), latest)
        for name, value in saved.items():
            self.assertAllEqual(tf.train.load_variable(latest, name), value)

    def test_unknown_gin_binding_is_named(self):
        with self.assertRaisesRegex(ValueError, "no_such_parameter"):
            gin_config.parse_config([], ["meta_train.no_such_parameter = 3"])
        with self.assertRaisesRegex(ValueError, "Cannot read gin file"):
            gin_config.parse_config(["/nonexistent/x.gin"], [])
        gin.clear_config()
