"""Keras conventions: registration on `import learnit_tf`, `.keras` round trip in a fresh
process, `from_preset` backed by the verified zoo, and Keras-native fine-tuning."""

import glob
import os
import subprocess
import sys
import tempfile

import keras
import numpy as np
import tensorflow as tf

from learnit_tf import zoo
from learnit_tf.evaluation.baselines import standard_init
from learnit_tf.training.callbacks import PsnrCallback, psnr
from learnit_tf.kinds.image import image_grid, text_images_examples
from learnit_tf.models import FourierFeatureMLP, NerfMLP, Siren
from learnit_tf.testing import TestCase

_FRESH_LOAD = """
import sys
import keras
import learnit_tf  # registers the classes; nothing else is imported here
model = keras.models.load_model(sys.argv[1])
print(type(model).__name__, float(model(keras.ops.zeros((1, 2))).numpy().sum()))
"""


class KerasSavingTest(TestCase):

    def test_keras_file_loads_in_a_fresh_process_after_import_learnit_tf(self):
        model = zoo.load("text_siren")
        path = os.path.join(tempfile.mkdtemp(), "m.keras")
        self.addCleanup(os.remove, path)
        model.save(path)
        expected = float(model(keras.ops.zeros((1, 2))).numpy().sum())
        result = subprocess.run([sys.executable, "-c", _FRESH_LOAD, path], capture_output=True,
                                text=True, timeout=300, cwd=tempfile.gettempdir())
        self.assertEqual(result.returncode, 0, result.stderr[-2000:])
        name, value = result.stdout.split()[-2:]
        self.assertEqual(name, "Siren")
        self.assertAllClose(float(value), expected, rtol=1e-6)


class FromPresetTest(TestCase):

    def test_every_shipped_entry_loads_through_its_class(self):
        classes = {"Siren": Siren, "FourierFeatureMLP": FourierFeatureMLP, "NerfMLP": NerfMLP}
        for entry in zoo.list():
            name = entry["name"]
            expected = zoo.load(name)
            model = classes[type(expected).__name__].from_preset(name)
            self.assertIsInstance(model, type(expected))
            for a, b in zip(model.get_weights(), expected.get_weights()):
                self.assertAllEqual(a, b)

    def test_preset_of_another_class_is_refused(self):
        with self.assertRaisesRegex(ValueError, "text_siren.*is a Siren, not a NerfMLP"):
            NerfMLP.from_preset("text_siren")

    def test_unknown_preset_names_the_preset(self):
        with self.assertRaisesRegex(Exception, "no_such_init"):
            Siren.from_preset("no_such_init")


class KerasFitTest(TestCase):

    def test_model_fit_from_zoo_init_beats_standard_init(self):
        """`compile` + `fit` (Adam, full-image batch) on held-out text images."""
        data_dir = tempfile.mkdtemp()
        images = [ex["image"].numpy() for ex in
                  text_images_examples("test", config="cpu64", data_dir=data_dir).take(2)]
        coords = image_grid(64)[None]
        log_dir = tempfile.mkdtemp()
        gains = []
        for image in images:
            target = image[None]
            finals = {}
            for label, model in (("meta", zoo.load("text_siren")),
                                 ("standard", standard_init(zoo.load("text_siren"), seed=1))):
                model.compile(keras.optimizers.Adam(1e-4), "mse")
                callback = PsnrCallback(coords, target, log_dir=os.path.join(log_dir, label))
                history = model.fit(coords, target, epochs=10, verbose=0, callbacks=[callback])
                finals[label] = history.history["psnr"][-1]
                # The callback's number is the full-image PSNR of the fitted model.
                self.assertAllClose(finals[label], psnr(model(coords), target), atol=1e-4)
            gains.append(finals["meta"] - finals["standard"])
        self.assertGreater(min(gains), 3.0, gains)
        self.assertTrue(glob.glob(os.path.join(log_dir, "meta", "events.out.tfevents.*")))
