"""Speed and memory options leave results unchanged (issue "Performance").

Each option is compared with the plain path on the same problem: in float64 the
results agree to round-off; in float32 compiled steps, to 1e-4 relative (the
project's bound for any speed option). The one exception is SIREN mixed precision
(bfloat16 hidden layers), which cannot be bit-comparable by construction: its tests
compare PSNR after fitting and after meta-training instead. Speed and memory
*targets* live in `benchmarks/`, not here.
"""

import numpy as np
import tensorflow as tf
from absl.testing import parameterized

from learnit_tf import zoo
from learnit_tf.meta import init_io
from learnit_tf.data import meta_batches, take_examples
from learnit_tf.kinds.image.text_images import render_text_image, text_images_examples
from learnit_tf.meta import Fitter, InnerOptimizer, MetaConfig, MetaTrainer, meta_gradients
from learnit_tf.meta.inner import rematerialized
from learnit_tf.models import FourierFeatureMLP, FunctionalModel, Siren, with_mixed_precision
from learnit_tf.kinds.image import ImageTask
from learnit_tf.kinds.ct.task import CtTask
from learnit_tf.testing import TestCase


def _siren_problem(dtype="float64", resolution=6, batch=3, w0=3.0):
    model = Siren(out_features=3, width=8, depth=3, w0=w0, seed=1, dtype=dtype)
    task = ImageTask(resolution, dtype=dtype)
    images = np.random.RandomState(3).rand(batch, resolution, resolution, 3)
    return model, task, {"image": tf.constant(images, dtype=dtype)}


def _ct_problem(batch=3):
    # CtTask's projector works in float32, so CT comparisons use float32 tolerances.
    model = FourierFeatureMLP(out_features=1, num_features=8, scale=3.0, width=16,
                              hidden_layers=2, output_activation="sigmoid", seed=0)
    model.build((None, 2))
    task = CtTask(resolution=8, num_angles=3)
    rng = np.random.RandomState(0)
    return model, task, {"image": tf.constant(rng.rand(batch, 8, 8, 1), tf.float32),
                         "seed": tf.constant(rng.randint(0, 1000, (batch, 2)), tf.int32)}


def _max_rel_diff(a, b):
    """max |a - b| / max |b| over a weight list."""
    num = max(float(tf.reduce_max(tf.abs(x - y))) for x, y in zip(a, b))
    den = max(float(tf.reduce_max(tf.abs(y))) for y in b)
    return num / den


class RematerializationTest(TestCase):

    @parameterized.parameters("sgd", "adam")
    def test_remat_maml_equals_plain_maml(self, inner):
        model, task, meta_batch = _siren_problem()
        fmodel = FunctionalModel(model)
        weights = fmodel.initial_weights()
        opt = InnerOptimizer(inner, 0.3 if inner == "sgd" else 0.01)
        plain, plain_metrics = meta_gradients(MetaConfig("maml", 3, opt, share_first_forward=False),
                                              task, fmodel, weights, meta_batch)
        for mode in ("eager", "graph"):
            fn = lambda ws: meta_gradients(MetaConfig("maml", 3, opt, remat=True),  # noqa: E731
                                           task, fmodel, ws, meta_batch)
            if mode == "graph":
                fn = tf.function(fn)
            remat, remat_metrics = fn(weights)
            self.assertWeightsClose(remat, plain, atol=1e-12, rtol=1e-9, msg=mode)
            self.assertAllClose(remat_metrics["loss"], plain_metrics["loss"], rtol=1e-12)
            self.assertAllClose(remat_metrics["inner_loss_first"],
                                plain_metrics["inner_loss_first"], rtol=1e-12)

    def test_remat_with_non_trainable_weights(self):
        # A Fourier-feature network reads its fixed matrix B as a variable inside
        # the rematerialized step.
        model, task, meta_batch = _ct_problem()
        fmodel = FunctionalModel(model)
        weights = fmodel.initial_weights()
        opt = InnerOptimizer("sgd", 1.0)
        plain, _ = meta_gradients(MetaConfig("maml", 2, opt), task, fmodel, weights, meta_batch)
        remat, _ = tf.function(lambda ws: meta_gradients(
            MetaConfig("maml", 2, opt, remat=True), task, fmodel, ws, meta_batch))(weights)
        self.assertLess(_max_rel_diff(remat, plain), 1e-5)

    @parameterized.parameters(True, False)
    def test_remat_trainer_steps_match_within_1e4(self, jit):
        results = []
        for remat in (False, True):
            model, task, meta_batch = _siren_problem(dtype="float32", resolution=8, w0=30.0)
            trainer = MetaTrainer(model, task, MetaConfig("maml", 4, remat=remat), 1e-3,
                                  jit_compile=jit)
            for _ in range(2):
                loss = float(trainer.train_step(meta_batch)["loss"])
            results.append(([v.numpy() for v in model.trainable_variables], loss))
        self.assertLess(_max_rel_diff(results[1][0], results[0][0]), 1e-4)
        self.assertAllClose(results[1][1], results[0][1], rtol=1e-4)

    def test_remat_frees_the_inner_trajectory(self):
        # The mechanism, not a target: without remat the compiled step keeps every
        # inner step's activations; with it, far less (grappler/XLA must not merge
        # the recomputation back into the forward pass).
        peaks = {}
        for remat in (False, True):
            model = Siren(width=64, depth=4, w0=30.0, seed=0)
            task = ImageTask(32)
            batch = {"image": tf.constant(self.random_images(2, 32))}
            trainer = MetaTrainer(model, task, MetaConfig("maml", 6, remat=remat), 1e-4,
                                  jit_compile=False)
            trainer.train_step(batch)["loss"].numpy()
            tf.config.experimental.reset_memory_stats("CPU:0")
            base = tf.config.experimental.get_memory_info("CPU:0")["current"]
            trainer.train_step(batch)["loss"].numpy()
            peaks[remat] = tf.config.experimental.get_memory_info("CPU:0")["peak"] - base
        self.assertLess(peaks[True], 0.5 * peaks[False], msg=str(peaks))

    def test_rematerialized_gradient(self):
        x = tf.constant([0.3, -1.2], tf.float64)
        fn = lambda v: [tf.sin(v) * v, tf.reduce_sum(v**3)]  # noqa: E731
        with tf.GradientTape(persistent=True) as tape:
            tape.watch(x)
            plain = fn(x)
            remat = rematerialized(fn)(x)
            plain_total = tf.reduce_sum(plain[0]) + 2.0 * plain[1]
            remat_total = tf.reduce_sum(remat[0]) + 2.0 * remat[1]
        self.assertAllClose(tape.gradient(remat_total, x), tape.gradient(plain_total, x))

    def test_remat_is_for_maml_only(self):
        for algorithm in ("fomaml", "reptile"):
            with self.assertRaisesRegex(ValueError, "remat applies to algorithm 'maml' only"):
                MetaConfig(algorithm, 2, remat=True)


class SharedFirstForwardTest(TestCase):

    @parameterized.product(algorithm=["maml", "fomaml", "reptile"], problem=["image", "ct"])
    def test_shared_first_forward_equals_separate(self, algorithm, problem):
        model, task, meta_batch = _siren_problem() if problem == "image" else _ct_problem()
        fmodel = FunctionalModel(model)
        weights = fmodel.initial_weights()
        results = []
        for share in (False, True):
            config = MetaConfig(algorithm, 2, InnerOptimizer("sgd", 0.3),
                                share_first_forward=share)
            results.append(tf.function(
                lambda ws, c=config: meta_gradients(c, task, fmodel, ws, meta_batch))(weights))
        (plain, plain_metrics), (shared, shared_metrics) = results
        # float64 (images): round-off only; float32 (CT): well inside 1e-4.
        tol = 1e-9 if problem == "image" else 1e-5
        self.assertLess(_max_rel_diff(shared, plain), tol)
        for key in ("loss", "inner_loss_first"):
            self.assertAllClose(shared_metrics[key], plain_metrics[key], rtol=tol)

    @parameterized.parameters("maml", "fomaml", "reptile")
    def test_shared_first_forward_trainer_within_1e4(self, algorithm):
        for jit in (True, False):
            results = []
            for share in (False, True):
                model, task, meta_batch = _siren_problem(dtype="float32", resolution=8, w0=30.0)
                trainer = MetaTrainer(model, task,
                                      MetaConfig(algorithm, 2, share_first_forward=share),
                                      1e-3, jit_compile=jit)
                for _ in range(2):
                    loss = float(trainer.train_step(meta_batch)["loss"])
                results.append(([v.numpy() for v in model.trainable_variables], loss))
            self.assertLess(_max_rel_diff(results[1][0], results[0][0]), 1e-4, msg=jit)
            self.assertAllClose(results[1][1], results[0][1], rtol=1e-4)

    def test_only_tasks_with_one_input_grid_share(self):
        self.assertTrue(ImageTask(8).has_shared_prediction())
        self.assertTrue(CtTask(8).has_shared_prediction())
        # Random pixel subsets differ per example: no shared forward pass.
        self.assertFalse(ImageTask(8, pixels_per_step=16).has_shared_prediction())


class MixedPrecisionTest(TestCase):
    """SIREN with bfloat16 hidden layers: same weights, float32 in and out, PSNR held."""

    def test_layers_weights_and_config(self):
        model = Siren(width=16, depth=4, seed=0)
        mixed = with_mixed_precision(model)
        self.assertEqual([layer.compute_dtype for layer in mixed.dense_layers],
                         ["float32", "bfloat16", "bfloat16", "float32"])
        self.assertEqual({v.dtype for v in mixed.weights}, {"float32"})
        self.assertWeightsClose(mixed.get_weights(), model.get_weights(), atol=0, rtol=0)
        x = tf.random.stateless_uniform((64, 2), (0, 1), -1.0, 1.0)
        out = mixed(x)
        self.assertEqual(out.dtype, tf.float32)
        self.assertAllClose(out, model(x), atol=2e-2)
        self.assertFalse(np.allclose(out.numpy(), model(x).numpy(), atol=1e-6, rtol=0))
        directory = self.get_temp_dir() + "/mixed"
        init_io.save_init(mixed, directory)
        self.assertTrue(init_io.load_init(directory).mixed_precision)
        self.assertFalse(with_mixed_precision(mixed, enabled=False).mixed_precision)

    def test_bad_uses(self):
        with self.assertRaisesRegex(ValueError, "Siren models only.*FourierFeatureMLP"):
            with_mixed_precision(FourierFeatureMLP(num_features=4, width=8, hidden_layers=1))
        with self.assertRaisesRegex(ValueError, "float32 model policy.*float64"):
            Siren(width=8, depth=3, dtype="float64", mixed_precision=True)

    def test_fit_from_shipped_init_holds_psnr(self):
        # Version 1 (MAML): what the README's "within 0.2 dB" was measured on. Version 2
        # (Meta-SGD) loses about 2 dB at step 2 in bfloat16 (README, known limitations).
        model = zoo.load("text_siren@1")
        rng = np.random.RandomState(7)
        images = [render_text_image(rng, 64).astype(np.float32) / 255.0 for _ in range(3)]
        task = ImageTask(64)
        curves = {}
        for name, m in (("float32", model), ("mixed", with_mixed_precision(model))):
            fitter = Fitter(m, task, InnerOptimizer("sgd", 1e-2), jit_compile=False)
            curves[name] = np.mean([fitter.fit({"image": im}, 10).psnr for im in images], axis=0)
        for step in (0, 2):
            self.assertAllClose(curves["mixed"][step], curves["float32"][step], atol=0.5,
                                msg=f"step {step}: {curves}")
        # Later, bfloat16 round-off changes the trajectory: measured +0.72 dB at step 10
        # with the bfloat16-matmul / float32-sine layers (a different path, not a loss);
        # what must not happen is a loss of accuracy.
        self.assertGreater(curves["mixed"][10], curves["float32"][10] - 0.5, msg=str(curves))
        self.assertGreater(curves["mixed"][10], curves["mixed"][0] + 5.0)

    def test_meta_training_holds_psnr(self):
        # Same seeds and batches as the float32 gain test: 40 MAML steps, then the
        # held-out PSNR after 2 steps from each learned init.
        task = ImageTask(32)
        data_dir = self.get_temp_dir()
        small = lambda split: text_images_examples(split, "small", data_dir)  # noqa: E731
        held_out = take_examples(small("test"), 6)
        psnr = {}
        for mixed in (False, True):
            model = Siren(width=128, depth=4, seed=0, mixed_precision=mixed)
            trainer = MetaTrainer(model, task, MetaConfig("maml", 2), outer_learning_rate=1e-4,
                                  jit_compile=False)
            iterator = iter(meta_batches(small("train"), 3, seed=0))
            for _ in range(40):
                trainer.train_step(next(iterator))
            fitter = Fitter(model, task, InnerOptimizer("sgd", 1e-2), jit_compile=False)
            psnr[mixed] = np.mean([fitter.fit(ex, 2).psnr for ex in held_out], axis=0)
        self.assertAllClose(psnr[True][2], psnr[False][2], atol=0.5, msg=str(psnr))
        self.assertGreater(psnr[True][2], psnr[True][0] + 3.0)
