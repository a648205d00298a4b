"""Meta-learners: exact MAML gradients, first-order and Reptile semantics, XLA agreement."""

import numpy as np
import tensorflow as tf

from learnit_tf.meta import InnerOptimizer, MetaConfig, MetaTrainer, adapt, meta_gradients
from learnit_tf.meta.compile import resolve_jit_compile
from learnit_tf.models import FunctionalModel, Siren
from learnit_tf.kinds.image import ImageTask
from learnit_tf.testing import TestCase


def _tiny_problem(dtype="float64", w0=3.0, resolution=4, batch=2):
    model = Siren(out_features=3, width=6, depth=3, w0=w0, seed=1, dtype=dtype)
    task = ImageTask(resolution, dtype=dtype)
    rng = np.random.RandomState(3)
    images = tf.constant(rng.rand(batch, resolution, resolution, 3), dtype=dtype)
    return model, task, {"image": images}


class MamlGradientTest(TestCase):

    def _meta_loss(self, config, task, fmodel, weights, meta_batch):
        """Meta loss evaluated without any gradient tape around it (for finite differences)."""
        losses = []
        for i in range(int(meta_batch["image"].shape[0])):
            example = {"image": meta_batch["image"][i]}
            adapted, _ = adapt(lambda w, s, ex=example: task.inner_loss(fmodel, w, ex, s),
                               weights, config.inner_steps, config.inner_optimizer)
            losses.append(task.outer_loss(fmodel, adapted, example))
        return float(tf.add_n(losses) / len(losses))

    def test_maml_gradient_matches_finite_differences(self):
        model, task, meta_batch = _tiny_problem()
        fmodel = FunctionalModel(model)
        weights = fmodel.initial_weights()
        config = MetaConfig("maml", 2, InnerOptimizer("sgd", 0.5))
        grads, _ = meta_gradients(config, task, fmodel, weights, meta_batch)
        rng = np.random.RandomState(0)
        eps = 1e-5
        for trial in range(3):
            direction = [tf.constant(rng.randn(*w.shape), tf.float64) for w in weights]
            plus = [w + eps * d for w, d in zip(weights, direction)]
            minus = [w - eps * d for w, d in zip(weights, direction)]
            numeric = (self._meta_loss(config, task, fmodel, plus, meta_batch)
                       - self._meta_loss(config, task, fmodel, minus, meta_batch)) / (2 * eps)
            analytic = float(sum(tf.reduce_sum(g * d) for g, d in zip(grads, direction)))
            self.assertAllClose(analytic, numeric, rtol=1e-6, atol=1e-9,
                                msg=f"direction {trial}")

    def test_maml_differs_from_first_order(self):
        model, task, meta_batch = _tiny_problem()
        fmodel = FunctionalModel(model)
        weights = fmodel.initial_weights()
        opt = InnerOptimizer("sgd", 0.5)
        maml, _ = meta_gradients(MetaConfig("maml", 2, opt), task, fmodel, weights, meta_batch)
        fo, _ = meta_gradients(MetaConfig("fomaml", 2, opt), task, fmodel, weights, meta_batch)
        diff = max(float(tf.reduce_max(tf.abs(a - b))) for a, b in zip(maml, fo))
        scale = max(float(tf.reduce_max(tf.abs(a))) for a in maml)
        self.assertGreater(diff, 1e-3 * scale)

    def test_first_order_is_gradient_at_adapted_weights(self):
        model, task, meta_batch = _tiny_problem()
        fmodel = FunctionalModel(model)
        weights = fmodel.initial_weights()
        config = MetaConfig("fomaml", 2, InnerOptimizer("sgd", 0.5))
        grads, _ = meta_gradients(config, task, fmodel, weights, meta_batch)
        expected = [tf.zeros_like(w) for w in weights]
        for i in range(2):
            example = {"image": meta_batch["image"][i]}
            adapted, _ = adapt(lambda w, s: task.inner_loss(fmodel, w, example, s), weights, 2,
                               config.inner_optimizer)
            with tf.GradientTape() as tape:
                tape.watch(adapted)
                loss = task.outer_loss(fmodel, adapted, example)
            expected = [e + g / 2 for e, g in zip(expected, tape.gradient(loss, adapted))]
        self.assertWeightsClose(grads, expected, atol=1e-12, rtol=1e-9)

    def test_reptile_gradient_is_theta_minus_mean_adapted(self):
        model, task, meta_batch = _tiny_problem()
        fmodel = FunctionalModel(model)
        weights = fmodel.initial_weights()
        config = MetaConfig("reptile", 3, InnerOptimizer("sgd", 0.5))
        grads, _ = meta_gradients(config, task, fmodel, weights, meta_batch)
        adapted_all = []
        for i in range(2):
            example = {"image": meta_batch["image"][i]}
            ws = list(weights)
            for _ in range(3):  # Plain SGD written out, independent of `adapt`.
                with tf.GradientTape() as tape:
                    tape.watch(ws)
                    loss = tf.reduce_mean(tf.square(fmodel(ws, task.coords) - example["image"]))
                ws = [w - 0.5 * g for w, g in zip(ws, tape.gradient(loss, ws))]
            adapted_all.append(ws)
        expected = [w - (a0 + a1) / 2 for w, a0, a1 in zip(weights, *adapted_all)]
        self.assertWeightsClose(grads, expected, atol=1e-12, rtol=1e-9)

    def test_inner_adam_matches_keras_free_reference(self):
        # One Adam step from zero state moves every weight by ~lr * sign(grad).
        w = [tf.constant([1.0, -2.0, 3.0])]
        loss_fn = lambda ws, step: tf.reduce_sum(ws[0] * tf.constant([2.0, -3.0, 0.5]))  # noqa: E731
        adapted, losses = adapt(loss_fn, w, 1, InnerOptimizer("adam", 0.1))
        self.assertAllClose(adapted[0], [0.9, -1.9, 2.9], atol=1e-6)
        self.assertAllClose(losses, [2.0 + 6.0 + 1.5])

    def test_bad_meta_config(self):
        with self.assertRaisesRegex(ValueError, "algorithm"):
            MetaConfig("mamal")
        with self.assertRaisesRegex(ValueError, "inner_steps"):
            MetaConfig("maml", 0)
        with self.assertRaisesRegex(ValueError, "Inner optimizer"):
            InnerOptimizer("rmsprop")
        # A name where the optimizer goes (and its rate landing on the next field) is named,
        # not an AttributeError deep in the trainer.
        with self.assertRaisesRegex(TypeError, r"inner_optimizer must be an InnerOptimizer.*'sgd'"):
            MetaConfig("maml", 2, "sgd", 1e-2)
        with self.assertRaisesRegex(TypeError, r"share_first_forward must be True or False"):
            MetaConfig("maml", 2, InnerOptimizer("sgd", 1e-2), 1e-2)


class CompiledStepTest(TestCase):

    def test_auto_compile_uses_xla_only_with_accelerators(self):
        has_accelerator = bool(tf.config.list_logical_devices("GPU")
                               or tf.config.list_logical_devices("TPU"))
        self.assertEqual(resolve_jit_compile("auto"), has_accelerator)
        self.assertTrue(resolve_jit_compile(True))
        self.assertFalse(resolve_jit_compile(False))
        with self.assertRaisesRegex(ValueError, "jit_compile must be"):
            resolve_jit_compile("yes")

    def test_compiled_and_eager_steps_agree(self):
        for algorithm in ("maml", "fomaml", "reptile"):
            results = []
            for jit in (True, False):
                model, task, meta_batch = _tiny_problem(dtype="float32", w0=30.0, resolution=8,
                                                        batch=3)
                trainer = MetaTrainer(model, task, MetaConfig(algorithm, 2), 1e-3,
                                      jit_compile=jit)
                for _ in range(2):
                    metrics = trainer.train_step(meta_batch)
                results.append(([v.numpy() for v in model.trainable_variables],
                                float(metrics["loss"])))
            self.assertWeightsClose(results[0][0], results[1][0], atol=1e-5, rtol=1e-5,
                                    msg=algorithm)
            self.assertAllClose(results[0][1], results[1][1], rtol=1e-5)
