"""Matmul FLOP counting of traced steps (used by benchmarks/ for achieved FLOP/s)."""

import tensorflow as tf

from learnit_tf.meta import MetaConfig, MetaTrainer
from learnit_tf.models import FunctionalModel, Siren
from learnit_tf.training.profiling import matmul_flops
from learnit_tf.kinds.image import ImageTask
from learnit_tf.testing import TestCase


class MatmulFlopsTest(TestCase):

    def test_siren_forward_pass(self):
        fmodel = FunctionalModel(Siren(width=32, depth=4, seed=0))
        weights = fmodel.initial_weights()
        fn = tf.function(lambda x: fmodel(weights, x))
        flops = matmul_flops(fn.get_concrete_function(tf.TensorSpec((100, 2))))
        # depth 4: 2->32, two 32->32, 32->3 (2 FLOPs per multiply-add).
        self.assertEqual(flops, 2 * 100 * (2 * 32 + 2 * 32 * 32 + 32 * 3))

    def test_while_loop_body_counts_trip_count_times(self):
        def loop(x, w):
            return tf.while_loop(lambda k, y: k < 7, lambda k, y: (k + 1, tf.matmul(y, w)),
                                 (tf.constant(2), x))[1]
        fn = tf.function(loop).get_concrete_function(tf.TensorSpec((4, 3)),
                                                     tf.TensorSpec((3, 3)))
        self.assertEqual(matmul_flops(fn), 5 * 2 * 4 * 3 * 3)

    def test_transposes_and_batches(self):
        fn = tf.function(lambda a, b: tf.matmul(a, b, transpose_a=True, transpose_b=True))
        cf = fn.get_concrete_function(tf.TensorSpec((2, 5, 4)), tf.TensorSpec((2, 6, 5)))
        self.assertEqual(matmul_flops(cf), 2 * 2 * 4 * 6 * 5)

    def test_meta_steps_in_forward_pass_units(self):
        # SIREN 16x3 on 8x8, meta-batch 3, K=2: one forward pass = 2*64*P FLOPs.
        # Reptile per example: 2 x (forward + backward) + outer forward; sharing the
        # first forward pass saves 2 of the 3 examples' step-0 forward passes.
        model = Siren(width=16, depth=3, seed=0)
        forward = 2 * 64 * (2 * 16 + 16 * 16 + 16 * 3)
        backward_without_first_layer_input = 2 * forward - 2 * 64 * 2 * 16
        batch = {"image": tf.zeros((3, 8, 8, 3))}
        counts = {}
        for share in (False, True):
            trainer = MetaTrainer(model, ImageTask(8),
                                  MetaConfig("reptile", 2, share_first_forward=share), 1e-3,
                                  jit_compile=False)
            counts[share] = matmul_flops(trainer._step.get_concrete_function(batch))  # pylint: disable=protected-access
        self.assertEqual(counts[False], 3 * (3 * forward + 2 * backward_without_first_layer_input))
        self.assertEqual(counts[False] - counts[True], 2 * forward)

    def test_dynamic_shapes_are_refused(self):
        fn = tf.function(lambda a, b: tf.matmul(a, b))
        cf = fn.get_concrete_function(tf.TensorSpec((None, 3)), tf.TensorSpec((3, 3)))
        with self.assertRaisesRegex(ValueError, "static shapes"):
            matmul_flops(cf)
