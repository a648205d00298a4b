"""Tests of the baseline inits (standard, mean, matched, shuffled) and their evaluation."""

import csv
import os
import tempfile

import numpy as np
import tensorflow as tf

from learnit_tf.evaluation import baselines
from learnit_tf.meta import InnerOptimizer, fit
from learnit_tf.models import FourierFeatureMLP, FunctionalModel, Siren
from learnit_tf.kinds.image import ImageTask
from learnit_tf.testing import TestCase

RES = 16
FAST_ADAM = InnerOptimizer("adam", 1e-3)


def _images(n, seed=0):
    rng = np.random.RandomState(seed)
    coarse = rng.rand(n, 4, 4, 3).astype(np.float32)
    return tf.image.resize(coarse, (RES, RES), "bilinear").numpy()


class BaselinesTest(TestCase):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.task = ImageTask(RES)
        cls.images = _images(5)
        # A stand-in "meta init" whose output is far from a standard init's: a small SIREN
        # fitted to one image (the baselines only need some trained weights).
        cls.meta = Siren(width=32, depth=3, w0=30.0, seed=0)
        result = fit(cls.meta, cls.task, {"image": cls.images[0]}, 150, FAST_ADAM)
        FunctionalModel(cls.meta).assign(result.weights)
        cls.meta_image = cls.meta(cls.task.coords).numpy()

    def _render(self, model):
        return model(self.task.coords).numpy()

    def test_standard_init(self):
        a = baselines.standard_init(self.meta, seed=3)
        b = baselines.standard_init(self.meta, seed=3)
        c = baselines.standard_init(self.meta, seed=4)
        self.assertEqual({**a.get_config(), "seed": 0}, {**self.meta.get_config(), "seed": 0})
        self.assertWeightsClose(a.get_weights(), b.get_weights(), atol=0, rtol=0)
        self.assertFalse(np.array_equal(a.get_weights()[0], c.get_weights()[0]))
        self.assertFalse(np.array_equal(a.get_weights()[0], self.meta.get_weights()[0]))
        # Fresh standard init: zero biases, first-layer kernel within U(±1/fan_in).
        self.assertAllEqual(a.get_weights()[1], np.zeros(32))
        self.assertLessEqual(np.abs(a.get_weights()[0]).max(), 1.0 / 2)

    def test_standard_init_keeps_fourier_matrix(self):
        model = FourierFeatureMLP(num_features=8, width=8, hidden_layers=1, seed=0)
        fresh = baselines.standard_init(model, seed=1)
        self.assertAllEqual(fresh.b_matrix.numpy(), model.b_matrix.numpy())
        self.assertFalse(np.array_equal(fresh.trainable_variables[0].numpy(),
                                        model.trainable_variables[0].numpy()))

    def test_standard_init_of_a_meta_sgd_init_has_no_learned_rates(self):
        """The rates are meta-learned, not architecture: the standard init must not carry
        them, while it still shares the Fourier matrix."""
        from learnit_tf.models.inner_rates import inner_rates_of  # pylint: disable=import-outside-toplevel
        model = FourierFeatureMLP(num_features=8, width=8, hidden_layers=1, seed=0,
                                  inner_rates="tensor")
        fresh = baselines.standard_init(model, seed=1)
        self.assertIsNotNone(inner_rates_of(model))
        self.assertIsNone(inner_rates_of(fresh))
        self.assertNotIn("inner_rates", fresh.get_config())
        self.assertAllEqual(fresh.b_matrix.numpy(), model.b_matrix.numpy())

    def test_shuffled_init_is_a_per_layer_permutation(self):
        shuffled = baselines.shuffled_init(self.meta, seed=1)
        for i, (s, m) in enumerate(zip(shuffled.get_weights(), self.meta.get_weights())):
            self.assertEqual(s.shape, m.shape)
            # Same multiset of values within each tensor ...
            self.assertAllEqual(np.sort(s, axis=None), np.sort(m, axis=None), msg=f"weight {i}")
            # ... in different positions.
            self.assertGreater(np.mean(s != m), 0.5, msg=f"weight {i}")
        self.assertGreater(np.abs(self._render(shuffled) - self.meta_image).max(), 0.05)
        again = baselines.shuffled_init(self.meta, seed=1)
        self.assertWeightsClose(again.get_weights(), shuffled.get_weights(), atol=0, rtol=0)

    def test_class_mean_image(self):
        ds = tf.data.Dataset.from_tensor_slices({"image": self.images})
        self.assertAllClose(baselines.class_mean_image(ds, n=3), self.images[:3].mean(0))
        self.assertAllClose(baselines.class_mean_image(ds), self.images.mean(0))
        with self.assertRaisesRegex(ValueError, "has 5 examples, expected at least n=9"):
            baselines.class_mean_image(ds, n=9)
        with self.assertRaisesRegex(ValueError, "no 'image' entry"):
            baselines.class_mean_image([{"pixels": self.images[0]}])

    def test_mean_init_outputs_the_class_mean(self):
        mean = baselines.class_mean_image({"image": x} for x in self.images)
        model, result = baselines.mean_init(self.meta, mean, self.task, 300, FAST_ADAM, seed=2,
                                            return_fit=True)
        error = np.abs(self._render(model) - mean).max()
        standard_error = np.abs(self._render(baselines.standard_init(self.meta, 2)) - mean).max()
        self.assertLess(error, 0.03)
        self.assertGreater(standard_error, 0.1)  # the fit did the work
        self.assertGreater(result.psnr[-1], 40.0)

    def test_matched_init_outputs_the_meta_output(self):
        model = baselines.matched_init(self.meta, self.task, 300, FAST_ADAM, seed=2)
        error = np.abs(self._render(model) - self.meta_image).max()
        self.assertLess(error, 0.03)
        self.assertGreater(np.abs(self._render(baselines.standard_init(self.meta, 2))
                                  - self.meta_image).max(), 0.1)
        # Same function, different weights.
        self.assertGreater(np.abs(model.get_weights()[0] - self.meta.get_weights()[0]).max(),
                           0.01)

    def test_evaluate_baselines(self):
        examples = [{"image": x} for x in self.images[1:3]]
        rows = baselines.evaluate_baselines(self.meta, self.task, examples, steps=2,
                                            init_fit_steps=20, progress=False)
        self.assertLen(rows, 5 * 2 * 3)
        self.assertEqual(set(rows[0]), {"init", "optimizer", "learning_rate", "step",
                                        "psnr_mean", "psnr_std", "num_examples"})
        table = {(r["init"], r["optimizer"], r["step"]): r for r in rows}
        self.assertEqual({k[0] for k in table}, set(baselines.BASELINE_INITS))
        self.assertEqual({(r["optimizer"], r["learning_rate"]) for r in rows},
                         {("sgd", 1e-2), ("adam", 1e-4)})
        # Step 0 is the init itself: the meta init's PSNR on each example, averaged.
        fmodel = FunctionalModel(self.meta)
        psnrs = [float(self.task.metrics(fmodel, fmodel.initial_weights(),
                                         {"image": tf.constant(e["image"])})["psnr"])
                 for e in examples]
        for opt in ("sgd", "adam"):
            self.assertAllClose(table[("meta", opt, 0)]["psnr_mean"], np.mean(psnrs), atol=1e-3)
            self.assertAllClose(table[("meta", opt, 0)]["psnr_std"], np.std(psnrs), atol=1e-3)
        for r in rows:
            self.assertTrue(np.isfinite(r["psnr_mean"]) and r["psnr_std"] >= 0)
            self.assertEqual(r["num_examples"], 2)
        # SGD from the meta init improves the fit.
        self.assertGreater(table[("meta", "sgd", 2)]["psnr_mean"],
                           table[("meta", "sgd", 0)]["psnr_mean"])
        path = baselines.write_rows_csv(rows, os.path.join(tempfile.mkdtemp(), "t.csv"))
        with open(path) as f:
            read = list(csv.DictReader(f))
        self.assertLen(read, len(rows))
        self.assertAllClose(float(read[-1]["psnr_mean"]), rows[-1]["psnr_mean"])

    def test_bad_arguments(self):
        with self.assertRaisesRegex(ValueError, r"Unknown inits \['random'\]"):
            baselines.baseline_inits(self.meta, self.task, None, 1, inits=("random",))
        with self.assertRaisesRegex(ValueError, "needs mean_image"):
            baselines.baseline_inits(self.meta, self.task, None, 1, inits=("mean",))
        with self.assertRaisesRegex(TypeError, "Expected a Keras model or a dict"):
            baselines.standard_init("siren", 0)
        config = {"class_name": "Siren", "config": self.meta.get_config()}
        self.assertEqual(baselines.standard_init(config, 1).width, 32)


if __name__ == "__main__":
    tf.test.main()
