"""The NeRF kind through the shared kind checks (`learnit_tf.testing.KindTestCase`)."""

import os
from unittest import mock
import tempfile

import tensorflow as tf
import tensorflow_datasets as tfds

from learnit_tf import testing
from learnit_tf.data import meta_batches
from learnit_tf.kinds.nerf import procedural, rendering
from learnit_tf.kinds.nerf.task import NerfTask
from learnit_tf.meta import InnerOptimizer, MetaConfig
from learnit_tf.models import NerfMLP

tfds.disable_progress_bar()

SGD = InnerOptimizer("sgd", 0.5)


def _nerf_mlp():
    return NerfMLP(width=32, hidden_layers=3, seed=0)


def _task():
    return NerfTask(num_samples=16, rays_per_step=64, metric_rays=256)


class NerfKindTest(testing.KindTestCase):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        # Tiny procedural chairs (16x16 views), generated once for both tests: all support
        # views for training, one support view and 5 held-out views per test object (the
        # single-view protocol).
        cls._tmp = tempfile.TemporaryDirectory()
        data_dir = os.path.join(cls._tmp.name, "tfds")
        config = procedural.ProceduralObjectsConfig(
            name="kind_test", resolution=16, num_train=16, num_validation=1, num_test=3)
        cls.train = procedural.procedural_objects_examples("train", config=config, views="all",
                                                           data_dir=data_dir)
        cls.held_out = list(procedural.procedural_objects_examples(
            "test", config=config, views="single", num_held_out_views=5, data_dir=data_dir))

    @classmethod
    def tearDownClass(cls):
        cls._tmp.cleanup()
        super().tearDownClass()

    def test_nerf_kind(self):
        self.run_kind_test(
            "nerf", _task(), _nerf_mlp, self.train, self.held_out,
            meta_config=MetaConfig("reptile", 8, SGD), outer_learning_rate=5e-3, meta_steps=150,
            meta_batch_size=1, fit_steps=20, min_psnr_gain=2.0,  # measured 15.8 vs 12.3 dB
            # 'test_shape' (the held-out image size) is not read by the task.
            bad_input_fields=["rays_o", "rays_d", "rgb", "test_rays_o", "test_rays_d",
                              "test_rgb"],
            xla_equals_graph=False)  # See the next test.

    # Known difference, kept visible: the stratified jitter is drawn as float stateless
    # uniforms, which TF's XLA and graph kernels draw differently on CPU (rendering.py's
    # module docstring), so one meta step's loss differs (measured 0.125 vs 0.050).
    # CtTask.training_angles avoids this by scaling raw Philox bits; doing the same in
    # rendering.stratified_samples changes the random draws behind the shipped NeRF
    # evaluations, so it is left to the NeRF kind's owner. When fixed, this test fails:
    # drop the assertRaises and xla_equals_graph=False above.
    def test_xla_differs_from_graph_through_the_jitter(self):
        batch = next(iter(meta_batches(self.train, 1, seed=0)))
        with self.assertRaisesRegex(AssertionError, "meta-step metric 'loss': XLA vs graph"):
            self.run_xla_graph_test(_task(), _nerf_mlp, batch, MetaConfig("reptile", 1, SGD),
                                    outer_learning_rate=5e-3)

    def test_xla_equals_graph_with_the_jitter_fixed(self):
        """With the random draws made the same way in both modes (the Philox algorithm
        for seeds and draws, the jitter as raw integers scaled to [0, 1), as
        CtTask.training_angles draws its angles), one Reptile meta step (ray choice,
        rendering, inner SGD, outer update) is the same under XLA and in graph mode: the
        known difference is the random draws only (loss 0.12 vs 0.05 without this)."""
        real = tf.random.stateless_uniform

        def same_in_both_modes(shape, seed, *args, **kwargs):
            # One algorithm in both modes ("auto_select" may pick different ones).
            kwargs.setdefault("alg", "philox")
            if args or len(kwargs) > 1:  # integer draws (the ray choice)
                return real(shape, seed, *args, **kwargs)
            bits = real(shape, seed, minval=None, maxval=None, dtype=tf.uint32, alg="philox")
            return tf.cast(tf.bitwise.right_shift(bits, 8), tf.float32) * (2.0 ** -24)

        experimental = tf.random.experimental
        fold_in, split = experimental.stateless_fold_in, experimental.stateless_split
        batch = next(iter(meta_batches(self.train, 1, seed=0)))
        with mock.patch.object(rendering.tf.random, "stateless_uniform", same_in_both_modes), \
                mock.patch.object(experimental, "stateless_fold_in",
                                  lambda seed, data: fold_in(seed, data, alg="philox")), \
                mock.patch.object(experimental, "stateless_split",
                                  lambda seed, num=2: split(seed, num, alg="philox")):
            self.run_xla_graph_test(_task(), _nerf_mlp, batch, MetaConfig("reptile", 1, SGD),
                                    outer_learning_rate=5e-3,
                                    atol=1e-4)  # measured 1.3e-5 (fused float round-off)
