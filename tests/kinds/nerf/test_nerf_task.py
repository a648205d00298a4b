"""NerfTask: ray batches, metrics on held-out rays, validation, and a short Reptile run."""

import os
import time

import numpy as np
import tensorflow as tf
import tensorflow_datasets as tfds

from learnit_tf import testing
from learnit_tf.meta import InnerOptimizer, MetaConfig, MetaTrainer
from learnit_tf.models import FunctionalModel, NerfMLP
from learnit_tf.kinds.nerf import evaluation, procedural
from learnit_tf.kinds.nerf.task import NerfTask

tfds.disable_progress_bar()


def slab_field(weights, points):
    """A fake network: an opaque black slab |z| < 0.5, empty elsewhere."""
    del weights
    inside = tf.cast(tf.abs(points[:, 2]) < 0.5, tf.float32)
    black = tf.fill(tf.shape(inside), -20.0)
    return tf.stack([black, black, black, 500.0 * inside], -1)


def point_field(weights, points):
    """A fake network with one weight: colour = sigmoid(w · x), no density ... except a slab."""
    colour = tf.sigmoid(weights[0] * points)
    inside = tf.cast(tf.abs(points[:, 2]) < 0.5, tf.float32)
    return tf.concat([colour * 10.0 - 5.0, 50.0 * inside[:, None]], -1)


def down_rays(n, seed=0):
    rng = np.random.default_rng(seed)
    o = np.concatenate([rng.uniform(-1, 1, (n, 2)), np.full((n, 1), 4.0)], -1)
    d = np.tile([[0.0, 0.0, -1.0]], (n, 1))
    return tf.constant(o, tf.float32), tf.constant(d, tf.float32)


class NerfTaskTest(testing.TestCase):

    def test_check_init_refuses_a_dead_density(self):
        task = NerfTask(num_samples=8, rays_per_step=4)
        o, d = down_rays(16)
        example = {"rays_o": o, "rays_d": d, "rgb": tf.fill((16, 3), 0.5)}
        model = NerfMLP(width=16, hidden_layers=2, seed=0)
        fmodel = FunctionalModel(model)
        weights = fmodel.initial_weights()
        # Density bias far below zero: sigma = relu(raw) is 0 at every sample.
        dead = weights[:-1] + [weights[-1] - tf.constant([0.0, 0.0, 0.0, 1e3])]
        self.assertRegex(task.check_init(fmodel, dead, example), "positive at only 0.00%")
        alive = weights[:-1] + [weights[-1] + tf.constant([0.0, 0.0, 0.0, 1e3])]
        self.assertIsNone(task.check_init(fmodel, alive, example))

    def test_metrics_score_held_out_rays_with_their_bounds(self):
        task = NerfTask(num_samples=64, rays_per_step=8, metric_rays=None)
        o, d = down_rays(20)
        example = {"rays_o": o, "rays_d": d, "rgb": tf.fill((20, 3), 0.75)}
        # Support only: the slab renders black -> MSE 0.75^2.
        m = task.metrics(slab_field, [], example)
        self.assertAllClose(m["loss"], 0.5625, atol=1e-4)
        self.assertAllClose(m["psnr"], -10 * np.log10(0.5625), atol=1e-3)
        # Held-out rays are scored instead when present; per-ray bounds that stop before
        # the slab render the white background -> MSE (1 - 0.25)^2.
        example.update({"test_rays_o": o[:10], "test_rays_d": d[:10],
                        "test_rgb": tf.fill((10, 3), 0.25),
                        "test_near": tf.fill((10,), 0.5), "test_far": tf.fill((10,), 3.0)})
        self.assertAllClose(task.metrics(slab_field, [], example)["loss"], 0.5625, atol=1e-4)
        example["test_far"] = tf.fill((10,), 6.0)  # now the slab is inside: black vs 0.25
        self.assertAllClose(task.metrics(slab_field, [], example)["loss"], 0.0625, atol=1e-4)
        # A fixed subset of metric_rays rays.
        self.assertLen(NerfTask(metric_rays=4).metric_indices(10), 4)
        self.assertIsNone(NerfTask(metric_rays=40).metric_indices(10))

    def test_inner_loss_batches_are_stateless_per_step(self):
        task = NerfTask(num_samples=16, rays_per_step=4)
        o, d = down_rays(50)
        rgb = tf.constant(np.random.default_rng(1).uniform(size=(50, 3)), tf.float32)
        example = {"rays_o": o, "rays_d": d, "rgb": rgb, "seed": tf.constant([3, 9])}
        weights = [tf.constant(0.7)]
        loss = tf.function(lambda ex, k: task.inner_loss(point_field, weights, ex, k),
                           jit_compile=True)
        a, b = loss(example, tf.constant(0)), loss(example, tf.constant(0))
        c = loss(example, tf.constant(1))
        self.assertEqual(float(a), float(b))
        self.assertNotAllClose(a, c)
        other_seed = dict(example, seed=tf.constant([4, 9]))
        self.assertNotAllClose(a, loss(other_seed, tf.constant(0)))
        # The loss is the MSE of rays_per_step rays: with one colour everywhere it is exact.
        flat = dict(example, rgb=tf.fill((50, 3), 0.5))
        grey = lambda w, p: tf.concat([tf.zeros_like(p), tf.fill((tf.shape(p)[0], 1), 50.0)],
                                      -1)  # noqa: E731
        self.assertAllClose(task.inner_loss(grey, [], flat, tf.constant(2)), 0.0, atol=1e-6)
        with self.assertRaisesRegex(ValueError, "'seed'"):
            task.inner_loss(grey, [], {"rays_o": o, "rays_d": d, "rgb": rgb}, tf.constant(0))

    def test_config_and_bad_arguments(self):
        task = NerfTask(near=1.0, far=3.0, num_samples=8, rays_per_step=4,
                        white_background=False)
        self.assertEqual(NerfTask(**task.get_config()).get_config(), task.get_config())
        with self.assertRaisesRegex(ValueError, "near < far"):
            NerfTask(near=6.0, far=2.0)
        with self.assertRaisesRegex(ValueError, ">= 1"):
            NerfTask(rays_per_step=0)

    def test_validate_example(self):
        task = NerfTask()
        o, d = down_rays(6)
        good = {"rays_o": o, "rays_d": d, "rgb": tf.fill((6, 3), 0.5), "seed": tf.constant([0, 1])}
        task.validate_example(good)
        cases = [
            ({"rays_o": o, "rgb": good["rgb"]}, "missing \\['rays_d'\\]"),
            (dict(good, rgb=tf.fill((5, 3), 0.5)), "same shape"),
            (dict(good, rgb=tf.fill((6, 3), 1.5)), "in \\[0, 1\\]"),
            (dict(good, test_rays_o=o), "not all of"),
            (dict(good, near=tf.fill((6,), 3.0)), "both or neither"),
            (dict(good, near=tf.fill((6,), 3.0), far=tf.fill((6,), 2.0)), "near >= far for 6"),
            (dict(good, seed=tf.constant([1, 2, 3])), "seed"),
        ]
        for example, message in cases:
            with self.assertRaisesRegex(ValueError, "my example.*" + message):
                task.validate_example(example, name="my example")


class ReptileSingleViewTest(testing.TestCase):
    """A short Reptile run on tiny procedural chairs beats standard init from one view."""

    def test_reptile_improves_single_view_psnr(self):
        start = time.perf_counter()
        data_dir = os.path.join(self.get_temp_dir(), "tfds")
        config = procedural.ProceduralObjectsConfig(
            name="reptile_test", resolution=16, num_train=16, num_validation=1, num_test=3)
        train = procedural.procedural_objects_examples("train", config=config, views="all",
                                                       data_dir=data_dir)
        test = procedural.procedural_objects_examples("test", config=config, views="single",
                                                      num_held_out_views=5, data_dir=data_dir)
        task = NerfTask(num_samples=16, rays_per_step=64, metric_rays=256)
        model = NerfMLP(width=32, hidden_layers=3, seed=0)
        fmodel = FunctionalModel(model)
        standard = fmodel.initial_weights()
        sgd = InnerOptimizer("sgd", 0.5)
        trainer = MetaTrainer(model, task, MetaConfig("reptile", 8, sgd),
                              outer_learning_rate=5e-3)
        batches = train.repeat().shuffle(16, seed=0).enumerate().map(
            lambda i, ex: dict(ex, seed=tf.stack([tf.constant(0, tf.int32),
                                                  tf.cast(i, tf.int32)]))).batch(1)
        for _, batch in zip(range(150), batches):
            metrics = trainer.train_step(batch)
        self.assertTrue(np.isfinite(float(metrics["loss"])))
        meta = fmodel.initial_weights()
        examples = [dict(ex, seed=tf.constant([1, i])) for i, ex in enumerate(test)]
        # The same test-time optimiser (SGD 0.5, 64 rays a step) from both inits.
        inits = [evaluation.InitSpec("meta", meta, sgd),
                 evaluation.InitSpec("standard", standard, sgd)]
        rows, _ = evaluation.evaluate_inits(fmodel, task, inits, examples, [20], verbose=0)
        psnr = {s["init"]: s["psnr_mean"] for s in evaluation.summarize(rows)}
        print(f"\nheld-out PSNR after 20 steps from one view: {psnr} "
              f"({time.perf_counter() - start:.1f} s)")
        self.assertGreater(psnr["meta"], psnr["standard"] + 2.0)
