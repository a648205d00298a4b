"""The polynomial sine and cosine (`learnit_tf.models.fast_sine`) and Siren's `fast_sine`.

Accuracy against float64 numpy, symmetry, quadrants, derivatives of three orders, and
what the Siren option changes (and what it must not: the default float32 path). Speed is
measured in benchmarks/precision.py, never here.
"""

import numpy as np
import tensorflow as tf

from learnit_tf.models import FunctionalModel, Siren, fast_sine, with_mixed_precision
from learnit_tf import testing
from learnit_tf.testing import TestCase

MODES = {"graph": lambda f: tf.function(f, autograph=False),
         "xla": lambda f: tf.function(f, jit_compile=True, autograph=False)}


def _errors(x, mode):
    """Max |sin - sin64|, |cos - cos64| of `fast_sine.sincos` over float32 array x."""
    sin, cos = MODES[mode](fast_sine.sincos)(tf.constant(x))
    x64 = x.astype(np.float64)
    return (float(np.max(np.abs(sin.numpy() - np.sin(x64)))),
            float(np.max(np.abs(cos.numpy() - np.cos(x64)))))


class SincosTest(TestCase):

    def test_accurate_over_the_stated_range(self):
        rng = np.random.RandomState(0)
        bound = fast_sine.MAX_ACCURATE
        # Uniform over the range, dense near 0, and the quadrant boundaries kπ/4 (where
        # the reduction switches polynomial and sign) with their float32 neighbours.
        k = np.arange(-40, 41) * np.pi / 4
        edges = np.concatenate([np.nextafter(k.astype(np.float32), np.float32(-np.inf)),
                                k.astype(np.float32),
                                np.nextafter(k.astype(np.float32), np.float32(np.inf))])
        x = np.concatenate([rng.uniform(-bound, bound, 400_000), rng.uniform(-4, 4, 100_000),
                            np.array([0.0, -0.0, bound, -bound]), edges]).astype(np.float32)
        for mode in MODES:
            with self.subTest(mode=mode):
                sin_err, cos_err = _errors(x, mode)
                # tf.sin's own error here is ~1e-7 too: both are float32 round-off.
                self.assertLess(sin_err, fast_sine.MAX_ERROR)
                self.assertLess(cos_err, fast_sine.MAX_ERROR)

    def test_beyond_the_range(self):
        # Stated in the module docstring: up to 1e5 the error stays below 2e-6 in every
        # mode (XLA contracts the reduction into FMAs and stays at ~1e-7); the values stay
        # bounded further out; inf and nan give nan like tf.sin.
        rng = np.random.RandomState(1)
        x = rng.uniform(fast_sine.MAX_ACCURATE, 1e5, 200_000).astype(np.float32)
        x = np.concatenate([x, -x])
        for mode in MODES:
            with self.subTest(mode=mode):
                self.assertLess(max(_errors(x, mode)), 2e-6)
        far = np.concatenate([rng.uniform(1e5, 1e7, 10_000)]).astype(np.float32)
        for mode in MODES:
            sin, cos = MODES[mode](fast_sine.sincos)(tf.constant(far))
            self.assertLess(float(tf.reduce_max(tf.abs(sin))), 1.01)
            self.assertLess(float(tf.reduce_max(tf.abs(cos))), 1.01)
        special = tf.constant([np.inf, -np.inf, np.nan], tf.float32)
        for mode in MODES:
            sin, cos = MODES[mode](fast_sine.sincos)(special)
            self.assertTrue(np.all(np.isnan(sin.numpy())) and np.all(np.isnan(cos.numpy())))

    def test_odd_sine_even_cosine_exactly(self):
        x = np.random.RandomState(2).uniform(0, 1000, 50_000).astype(np.float32)
        for mode in MODES:
            f = MODES[mode](fast_sine.sincos)
            sin, cos = f(tf.constant(x))
            sin_neg, cos_neg = f(tf.constant(-x))
            with self.subTest(mode=mode):
                np.testing.assert_array_equal(sin_neg.numpy(), -sin.numpy())
                np.testing.assert_array_equal(cos_neg.numpy(), cos.numpy())

    def test_every_quadrant_picks_the_right_function_and_sign(self):
        # 0.3 + qπ/2 for q = -8..7: each quadrant twice, positive and negative x. A swapped
        # sine/cosine or a wrong sign in any quadrant is off by ~0.4 or more here.
        q = np.arange(-8, 8)
        x = (0.3 + q * np.pi / 2).astype(np.float32)
        sin, cos = fast_sine.sincos(tf.constant(x))
        np.testing.assert_allclose(sin.numpy(), np.sin(x.astype(np.float64)), atol=2e-7)
        np.testing.assert_allclose(cos.numpy(), np.cos(x.astype(np.float64)), atol=2e-7)
        # The same values the quadrant rule says, written out.
        expected_sin = [np.sin(0.3), np.cos(0.3), -np.sin(0.3), -np.cos(0.3)]
        np.testing.assert_allclose(sin.numpy(), [expected_sin[i % 4] for i in q], atol=2e-6)

    def test_refuses_other_dtypes(self):
        with self.assertRaisesRegex(ValueError, "float32"):
            fast_sine.sincos(tf.constant([1.0], tf.float64))

    def test_no_sine_op_in_the_graph(self):
        graph = tf.function(fast_sine.sincos).get_concrete_function(
            tf.TensorSpec((None, 4), tf.float32)).graph
        types = {op.type for op in graph.get_operations()}
        self.assertFalse(types & {"Sin", "Cos"}, msg=str(types))


class SineOfAffineTest(TestCase):
    """`fast_sine.sine_of_affine`: sin(product + bias) with a custom gradient of any order."""

    def _derivatives(self, sine, p, b):
        # f = Σ sin(p + b)² · p and three nested orders of derivatives along p and b.
        with tf.GradientTape(persistent=True) as t3:
            t3.watch([p, b])
            with tf.GradientTape(persistent=True) as t2:
                t2.watch([p, b])
                with tf.GradientTape() as t1:
                    t1.watch([p, b])
                    s = tf.cast(sine(p, b), b.dtype)  # A bfloat16 sine: in float32.
                    f = tf.reduce_sum(s * s * tf.cast(p, s.dtype))
                g1p, g1b = t1.gradient(f, [p, b])
                h1 = tf.reduce_sum(tf.cast(g1p, b.dtype) * tf.cos(b)) + tf.reduce_sum(g1b * g1b)
            g2p, g2b = t2.gradient(h1, [p, b])
            h2 = tf.reduce_sum(tf.cast(g2p, b.dtype) ** 2) + tf.reduce_sum(g2b)
        g3p, g3b = t3.gradient(h2, [p, b])
        return [f, g1p, g1b, g2p, g2b, g3p, g3b]

    def test_three_orders_match_tf_sin_in_float64(self):
        rng = np.random.RandomState(0)
        p = rng.uniform(-40.0, 40.0, (7, 5)).astype(np.float32)
        b = rng.uniform(-3.0, 3.0, (5,)).astype(np.float32)
        # The reference: tf.sin on the same (float32-representable) inputs, in float64.
        expected = self._derivatives(lambda p, b: tf.sin(p + b), tf.constant(p, tf.float64),
                                     tf.constant(b, tf.float64))
        for mode, run in (("eager", lambda f: f), ("graph", tf.function)):
            got = run(lambda p, b: self._derivatives(fast_sine.sine_of_affine, p, b))(
                tf.constant(p), tf.constant(b))
            for order, (e, g) in enumerate(zip(expected, got)):
                with self.subTest(mode=mode, tensor=order):
                    self.assertEqual(g.dtype, tf.float32)
                    e = e.numpy()
                    # float32 round-off of sums of ~35 terms of size up to ~1e3.
                    np.testing.assert_allclose(g.numpy(), e, atol=2e-5 * np.max(np.abs(e)))

    def test_bfloat16_output(self):
        # out_dtype=bfloat16 (a sine feeding a bfloat16 matmul): the values of the float32
        # sine cast to bfloat16 (the cast is only fused), and three orders of derivatives
        # as that composition's: at the first order to float32 round-off; from the second
        # on, the term d_cos·sin uses the bfloat16 sine (relative 2⁻⁹ on that term).
        rng = np.random.RandomState(2)
        p = tf.constant(rng.uniform(-40.0, 40.0, (7, 5)).astype(np.float32))
        b = tf.constant(rng.uniform(-3.0, 3.0, (5,)).astype(np.float32))
        cast = lambda p, b: tf.cast(fast_sine.sine_of_affine(p, b), tf.bfloat16)  # noqa: E731
        fused = lambda p, b: fast_sine.sine_of_affine(p, b, tf.bfloat16)  # noqa: E731
        self.assertEqual(fused(p, b).dtype, tf.bfloat16)
        np.testing.assert_array_equal(fused(p, b).numpy(), cast(p, b).numpy())
        for mode, run in (("eager", lambda f: f), ("graph", tf.function)):
            expected = run(lambda p, b: self._derivatives(cast, p, b))(p, b)
            got = run(lambda p, b: self._derivatives(fused, p, b))(p, b)
            for order, (e, g) in enumerate(zip(expected, got)):
                with self.subTest(mode=mode, tensor=order):
                    e, g = e.numpy(), g.numpy()
                    bound = 2e-6 if order < 3 else 1e-2  # Measured: 0 and ≤ 5.5e-3.
                    np.testing.assert_allclose(g, e, atol=bound * np.max(np.abs(e)))

    def test_bfloat16_product(self):
        rng = np.random.RandomState(1)
        p = tf.cast(tf.constant(rng.uniform(-3, 3, (6, 4)), tf.float32), tf.bfloat16)
        b = tf.constant(rng.uniform(-1, 1, (4,)), tf.float32)
        with tf.GradientTape() as tape:
            tape.watch([p, b])
            s = fast_sine.sine_of_affine(p, b)
            loss = tf.reduce_sum(s)
        gp, gb = tape.gradient(loss, [p, b])
        z = tf.cast(p, tf.float64) + tf.cast(b, tf.float64)
        self.assertEqual((s.dtype, gp.dtype, gb.dtype), (tf.float32, tf.bfloat16, tf.float32))
        np.testing.assert_allclose(s.numpy(), np.sin(z.numpy()), atol=2e-7)
        np.testing.assert_allclose(gp.numpy().astype(np.float64), np.cos(z.numpy()), atol=4e-3)
        np.testing.assert_allclose(gb.numpy(), np.cos(z.numpy()).sum(0), atol=1e-6)



class AliasedLayersTest(TestCase):
    """`fast_sine.sine_layer` and `affine_layer`: the weight gradients read aliases, so a
    layer input's two cotangents meet in the previous layer's backward cluster instead of
    an AddN; values and three orders of derivatives are the plain composition's."""

    def _net(self, aliased, ws, x, hidden_dtype):
        k1, b1, k2, b2, k3, b3 = ws
        k2 = tf.cast(k2, hidden_dtype)
        if aliased:
            y1, a1 = fast_sine.sine_layer(x, k1, b1, hidden_dtype)
            y2, a2 = fast_sine.sine_layer(y1, k2, b2, x_alias=a1)
            return fast_sine.affine_layer(y2, k3, b3, x_alias=a2)
        y1 = fast_sine.sine_of_affine(tf.matmul(x, k1), b1, hidden_dtype)
        y2 = fast_sine.sine_of_affine(tf.matmul(y1, k2), b2)
        return tf.matmul(y2, k3) + b3

    def _derivatives(self, aliased, ws, x, hidden_dtype):
        # f = Σ out², then two more orders along every weight.
        f, g1, g2, g3 = testing.three_orders(
            lambda ws: tf.reduce_sum(tf.square(self._net(aliased, ws, x, hidden_dtype))), ws)
        return [f] + g1 + g2 + g3

    def test_three_orders_match_the_composition(self):
        rng = np.random.RandomState(3)
        shapes = [(2, 16), (16,), (16, 16), (16,), (16, 3), (3,)]
        ws = [tf.constant(rng.uniform(-1.5, 1.5, s), tf.float32) for s in shapes]
        x = tf.constant(rng.uniform(-1, 1, (40, 2)), tf.float32)
        # The value and first order: the same products and sums (measured: identical).
        # Second and third order: float32, the same sums in another order (measured
        # <= 1.5e-7 of each tensor's largest value); bfloat16 hidden product: the aliased
        # path sums a bfloat16 input's two cotangents in float32, where the composition's
        # AddN rounds them to bfloat16 (measured <= 5.7e-3).
        for dtype, bound in ((tf.float32, 2e-6), (tf.bfloat16, 2e-2)):
            for mode, run in (("eager", lambda f: f), ("graph", tf.function)):
                expected = run(lambda ws: self._derivatives(False, ws, x, dtype))(ws)
                got = run(lambda ws: self._derivatives(True, ws, x, dtype))(ws)
                for i, (e, g) in enumerate(zip(expected, got)):
                    with self.subTest(dtype=dtype.name, mode=mode, tensor=i):
                        e, g = e.numpy().astype(np.float64), g.numpy().astype(np.float64)
                        scale = max(float(np.max(np.abs(e))), 1e-30)
                        order_bound = 1e-6 if i <= len(ws) else bound
                        self.assertLess(float(np.max(np.abs(g - e))) / scale, order_bound)


def _coords(n=37, seed=0):
    return tf.constant(np.random.RandomState(seed).uniform(-1, 1, (n, 2)), tf.float32)


def _sine_ops(model, mixed):
    """(Sin ops, Cos ops, compiled sincos calls) in the traced forward pass."""
    fmodel = FunctionalModel(model).with_mixed_precision(mixed)
    weights = fmodel.initial_weights()
    graph = tf.function(fmodel.__call__).get_concrete_function(
        weights, tf.TensorSpec((None, 2), tf.float32)).graph
    return _count_sine_ops(graph)


def _count_sine_ops(graph):
    types = [op.type for op in graph.get_operations()]
    calls = sum(1 for op in graph.get_operations()
                if op.type in ("PartitionedCall", "StatefulPartitionedCall")
                and "sincos_of_affine" in op.get_attr("f").name)
    return types.count("Sin"), types.count("Cos"), calls


class SirenFastSineTest(TestCase):

    def _pair(self, **kwargs):
        base = Siren(width=32, depth=4, seed=3)
        other = Siren(width=32, depth=4, seed=3, **kwargs)
        other.set_weights(base.get_weights())
        return base, other

    def test_default_float32_path_is_unchanged(self):
        # fast_sine="auto" (the default) and False leave the float32 path as it was:
        # Keras layers and tf.sin, the same bytes as published inits were evaluated with.
        base, off = self._pair(fast_sine=False)
        self.assertEqual(base.fast_sine, "auto")
        coords = _coords()
        np.testing.assert_array_equal(base(coords).numpy(), off(coords).numpy())
        expected = coords
        for layer in base.dense_layers[:-1]:
            expected = tf.sin(200.0 * (tf.matmul(expected, layer.kernel) + layer.bias))
        last = base.dense_layers[-1]
        expected = tf.matmul(expected, last.kernel) + last.bias + 0.5
        np.testing.assert_array_equal(base(coords).numpy(), expected.numpy())
        self.assertEqual(_sine_ops(base, False), (3, 0, 0))

    def test_fast_float32_close_to_default(self):
        base, fast = self._pair(fast_sine=True)
        coords = _coords()
        out, ref = fast(coords).numpy(), base(coords).numpy()
        self.assertFalse(np.array_equal(out, ref))  # Really another computation...
        np.testing.assert_allclose(out, ref, atol=2e-5)  # ...equal to float32 round-off.
        self.assertEqual(_sine_ops(fast, False), (0, 0, 3))

    def test_mixed_path_uses_the_fast_sine_by_default(self):
        base, off = self._pair(fast_sine=False)
        self.assertEqual(_sine_ops(base, True), (0, 0, 3))
        self.assertEqual(_sine_ops(off, True), (3, 3, 0))
        coords = _coords()
        fast_out = base(coords, mixed_precision=True).numpy()
        tf_sin_out = off(coords, mixed_precision=True).numpy()
        np.testing.assert_allclose(fast_out, tf_sin_out, atol=1e-3)

    def test_config_and_copies(self):
        self.assertNotIn("fast_sine", Siren(width=8, depth=3).get_config())
        for value in (True, False):
            model = Siren(width=8, depth=3, seed=0, fast_sine=value)
            config = model.get_config()
            self.assertIs(config["fast_sine"], value)
            self.assertIs(Siren.from_config(config).fast_sine, value)
            self.assertIs(with_mixed_precision(model).fast_sine, value)
        for bad in ("yes", 1, None, "fast"):
            with self.assertRaisesRegex(ValueError, "fast_sine must be True, False or 'auto'"):
                Siren(width=8, depth=3, fast_sine=bad)
        with self.assertRaisesRegex(ValueError, "fast_sine=True is written for float32"):
            Siren(width=8, depth=3, fast_sine=True, dtype="float64")
        # "auto" on a float64 Siren keeps tf.sin (no float32 polynomial in its path).
        model64 = Siren(width=8, depth=3, seed=0, dtype="float64")
        self.assertEqual(model64(tf.zeros((2, 2), tf.float64)).dtype, tf.float64)
