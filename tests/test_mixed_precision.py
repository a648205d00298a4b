"""Mixed-precision meta-training steps (bfloat16 hidden matmuls, float32 weights).

Correctness only; the speed and the held-out PSNR of trained inits are measured in
benchmarks/precision.py. Tolerances: bfloat16 keeps 8 significant bits (unit round-off
u = 2⁻⁹ ≈ 0.002); every hidden matmul rounds its inputs and output to it, and the
errors pass through 3 layers, 2 inner steps and the second-order backward pass. On the
problem below the per-tensor relative error of the meta-gradient is 0.0002–0.026
(largest on hidden biases, sums of many signed terms that cancel); the bound 0.08
(40 u) leaves margin for other kernels, while float32 round-off (1e-6) would pass the
"not float32" check below only if bfloat16 were not used at all.
"""

import os
import tempfile

import numpy as np
import tensorflow as tf
from absl.testing import parameterized

from learnit_tf.kinds.image import ImageTask
from learnit_tf.kinds.ct.task import CtTask
from learnit_tf.meta import MetaConfig, MetaTrainer, meta_gradients
from learnit_tf.meta import algorithms, compile as compile_options
from learnit_tf.models import FourierFeatureMLP, FunctionalModel, Siren, siren
from learnit_tf import testing
from learnit_tf.testing import TestCase

AMD_ZEN4_FLAGS = ("fpu vme sse sse2 avx avx2 avx512f avx512bw avx512vl avx512_bf16 "
                  "avx512_vnni")
INTEL_SPR_FLAGS = "fpu sse avx2 avx512f avx512_vnni amx_bf16 amx_tile amx_int8"
OLD_FLAGS = "fpu sse sse2 avx avx2 fma avx512f avx512_vnni"


def _problem(w0=200.0, res=16, fast_sine="auto"):
    model = Siren(width=64, depth=4, w0=w0, seed=1, fast_sine=fast_sine)
    task = ImageTask(res)
    batch = {"image": tf.constant(np.random.RandomState(0).rand(2, res, res, 3), tf.float32)}
    return model, task, batch


def _matmul_dtypes(fmodel, weights, coords):
    """The dtypes of the MatMul ops of the traced forward pass, in graph order."""
    graph = tf.function(fmodel.__call__).get_concrete_function(
        weights, tf.TensorSpec(coords.shape, tf.float32)).graph
    return [op.get_attr("T").name for op in graph.get_operations()
            if op.type in ("MatMul", "BatchMatMulV2")]


class MixedStepTest(TestCase, parameterized.TestCase):

    @parameterized.parameters("maml", "reptile", "fomaml")
    def test_meta_gradients_close_to_float32(self, algorithm):
        model, task, batch = _problem()
        fmodel = FunctionalModel(model)
        weights = fmodel.initial_weights()
        grads = {}
        for mixed in (False, True):
            config = MetaConfig(algorithm, 2, mixed_precision=mixed)
            grads[mixed], metrics = tf.function(
                lambda ws, c=config: meta_gradients(c, task, fmodel, ws, batch))(weights)
            self.assertEqual({g.dtype for g in grads[mixed]}, {tf.float32})
        rel = [float(tf.norm(m - f) / tf.norm(f)) for f, m in zip(grads[False], grads[True])]
        self.assertLess(max(rel), 0.08, msg=str(rel))
        # bfloat16 is really used: float32 round-off alone is ~1e-6.
        self.assertGreater(max(rel), 1e-4, msg=str(rel))
        self.assertTrue(np.isfinite(float(metrics["loss"])))

    def test_first_and_output_layers_stay_float32(self):
        model, _, _ = _problem()
        fmodel = FunctionalModel(model)
        weights = fmodel.initial_weights()
        coords = tf.zeros((5, 2))
        self.assertEqual(_matmul_dtypes(fmodel, weights, coords), ["float32"] * 4)
        # Depth 4: first layer, 2 hidden layers, output layer.
        self.assertEqual(_matmul_dtypes(fmodel.with_mixed_precision(), weights, coords),
                         ["float32", "bfloat16", "bfloat16", "float32"])
        # Behaviour, not just graph: coordinates 2⁻¹² apart (the same number in bfloat16,
        # whose spacing near 0.5 is 2⁻⁹) still give different outputs; a bfloat16 first
        # layer would see two equal rows and give exactly equal ones.
        x = tf.constant([[0.5, 0.25], [0.5 + 2.0 ** -12, 0.25]])
        self.assertEqual(float(tf.cast(x[0, 0], tf.bfloat16)), float(tf.cast(x[1, 0], tf.bfloat16)))
        out = fmodel.with_mixed_precision()(weights, x)
        self.assertEqual(out.dtype, tf.float32)
        self.assertGreater(float(tf.reduce_max(tf.abs(out[0] - out[1]))), 0.0)

    def test_weights_stay_float32_after_a_step(self):
        model, task, batch = _problem()
        before = [v.numpy() for v in model.trainable_variables]
        trainer = MetaTrainer(model, task, MetaConfig("maml", 2, mixed_precision=True), 1e-3,
                              jit_compile=False)
        trainer.train_step(batch)
        self.assertEqual({v.dtype for v in model.trainable_variables}, {"float32"})
        self.assertFalse(model.mixed_precision)  # The model itself is unchanged.
        changed = [not np.array_equal(b, v.numpy())
                   for b, v in zip(before, model.trainable_variables)]
        self.assertTrue(all(changed), msg=str(changed))
        # Adam's slots are float32 too (a bfloat16 slot would lose small updates).
        self.assertEqual({v.dtype for v in trainer.optimizer.variables
                          if len(v.shape) > 0}, {"float32"})

    def test_other_models_and_bad_values(self):
        ct_model = FourierFeatureMLP(num_features=4, width=8, hidden_layers=1, seed=0)
        ct_task = CtTask(resolution=8, num_angles=3)
        # "auto" leaves models without bfloat16 hidden matmuls in their own precision...
        self.assertFalse(algorithms.uses_mixed_precision(MetaConfig(mixed_precision="auto"),
                                                         ct_model))
        # ...True on them is an error naming the model.
        with self.assertRaisesRegex(ValueError, "needs a float32 Siren.*FourierFeatureMLP"):
            algorithms.uses_mixed_precision(MetaConfig(mixed_precision=True), ct_model)
        del ct_task
        with self.assertRaisesRegex(ValueError, "float32 Siren models only"):
            FunctionalModel(Siren(width=8, depth=3, dtype="float64")).with_mixed_precision()
        for bad in (1, "yes", None, "bfloat16"):
            with self.assertRaisesRegex(ValueError, "mixed_precision must be True, False or "
                                                    "'auto'"):
                MetaConfig(mixed_precision=bad)


class SineTest(TestCase):
    """`siren._sine` (the mixed path's sine with `fast_sine=False`): tf.sin's values and
    derivatives, with one sine/cosine per forward. The polynomial sine of the default
    mixed path: tests/test_fast_sine.py."""

    def _derivatives(self, sine, z):
        # f(z) = Σ sin(z)² · z, and its first three derivatives along z, nested tapes.
        def f(zs):
            s = sine(zs[0])
            return tf.reduce_sum(s * s * zs[0])
        value, (g1,), (g2,), (g3,) = testing.three_orders(f, [z])
        return [value, g1, g2, g3]

    def test_three_orders_match_tf_sin(self):
        z = tf.constant(np.random.RandomState(0).uniform(-40.0, 40.0, (7, 5)), tf.float64)
        expected = self._derivatives(tf.sin, z)
        for mode, run in (("eager", lambda f: f(z)), ("graph", lambda f: tf.function(f)(z))):
            got = run(lambda z: self._derivatives(siren._sine, z))
            for order, (e, g) in enumerate(zip(expected, got)):
                with self.subTest(mode=mode, order=order):
                    np.testing.assert_allclose(g.numpy(), e.numpy(), rtol=1e-12, atol=1e-12)

    def test_one_sine_and_one_cosine_per_forward_pass(self):
        # The MAML step's graph: K = 2, meta-batch 2, shared first forward: 1 + 2 + 2
        # forward passes of 3 sine layers. TensorFlow's sine would add a cosine per
        # backward pass and a sine and a cosine per second-order one. With tf.sin
        # (fast_sine=False): 15 Sin and 15 Cos ops; with the default polynomial sine: none,
        # and 15 calls of the compiled sine-and-cosine cluster (one per forward layer).
        for fast_sine, expected in ((False, (15, 15, 0)), ("auto", (0, 0, 15))):
            graph = _mixed_meta_step_graph(fast_sine)
            types = [op.type for op in graph.get_operations()]
            calls = sum(1 for op in graph.get_operations()
                        if op.type in ("PartitionedCall", "StatefulPartitionedCall")
                        and "sincos_of_affine" in op.get_attr("f").name)
            with self.subTest(fast_sine=fast_sine):
                self.assertEqual((types.count("Sin"), types.count("Cos"), calls), expected)


    def test_backward_casts_and_multiplies_run_in_compiled_clusters(self):
        # With the polynomial sine, the mixed step has no activation-sized cast, multiply,
        # subtraction or bias-gradient op of its own: the sine hands the next bfloat16
        # matmul its input in bfloat16, and every backward pass's casts, multiplies and
        # bias sums run in compiled clusters. Calls (K = 2, meta-batch 2, 3 sine layers):
        # the backward of each of the 5 forward passes in the outer gradient plus the 4
        # inner backward passes: 9 × 3 = 27; their second order (the 4 inner ones): 12.
        # With tf.sin those ops are TensorFlow's (36 casts each way, 60 multiplies...).
        counts = {}
        for fast_sine in ("auto", False):
            graph = _mixed_meta_step_graph(fast_sine)
            points = int(np.prod(_problem()[1].coords.shape[:-1]))
            ops = [op.type for op in graph.get_operations() if op.outputs
                   and op.outputs[0].shape.rank == 2 and op.outputs[0].shape[0] == points]
            names = [op.get_attr("f").name for op in graph.get_operations()
                     if op.type in ("PartitionedCall", "StatefulPartitionedCall")]
            counts[fast_sine] = (
                sum(ops.count(t) for t in ("Cast", "Mul", "Sub", "BiasAddGrad")),
                sum("_affine_cotangents_" in n and "_grad_" not in n for n in names),
                sum("_affine_cotangents_grad_" in n for n in names))
        self.assertEqual(counts["auto"], (0, 27, 12))
        self.assertGreater(counts[False][0], 100)
        self.assertEqual(counts[False][1:], (0, 0))


    def test_cotangent_sums_run_in_compiled_clusters(self):
        # A layer's input feeds its forward product and its weight gradient; with the
        # polynomial sine the weight gradients read aliases (fast_sine.sine_layer), so the
        # two cotangents of an activation are summed inside the backward clusters, not by
        # an AddN of TensorFlow's. Left (K = 2, meta-batch 2): the shared first forward's
        # activations read by both examples' first inner steps: the inputs of the two
        # bfloat16 layers and of the output layer (float32), and the 3 cosines (float32).
        # Before the aliases: 20 (14 bfloat16); with tf.sin: 32.
        counts = {}
        for fast_sine in ("auto", False):
            graph = _mixed_meta_step_graph(fast_sine)
            points = int(np.prod(_problem()[1].coords.shape[:-1]))
            sums = [op.outputs[0].dtype.name for op in graph.get_operations()
                    if op.type == "AddN" and op.outputs[0].shape.as_list() == [points, 64]]
            counts[fast_sine] = (sums.count("bfloat16"), sums.count("float32"))
        self.assertEqual(counts["auto"], (2, 4))
        self.assertEqual(counts[False], (14, 18))


def _mixed_meta_step_graph(fast_sine="auto"):
    """The graph of a mixed-precision MAML meta-step (K = 2) on `_problem()`."""
    model, task, batch = _problem(fast_sine=fast_sine)
    fmodel = FunctionalModel(model)
    weights = fmodel.initial_weights()
    config = MetaConfig("maml", 2, mixed_precision=True)
    return tf.function(lambda ws: meta_gradients(config, task, fmodel, ws, batch)
                       ).get_concrete_function(weights).graph


class MixedModelTest(TestCase):

    def test_matches_the_same_bfloat16_model_with_tf_sin(self):
        # The custom sine changes no number beyond float32 round-off: outputs, gradients
        # and MAML's second-order meta-gradients agree with the same mixed model whose
        # sine is TensorFlow's (whose gradients TensorFlow derives itself). The polynomial
        # sine (the default) differs from tf.sin by ~1e-7, which can flip a bfloat16
        # rounding of the next layer's input here and there: a looser bound for it.
        config = MetaConfig("maml", 2, mixed_precision=True)

        def runner(fast_sine):
            model, task, batch = _problem(fast_sine=fast_sine)
            fmodel = FunctionalModel(model).with_mixed_precision()
            coords = tf.reshape(task.coords, (-1, 2))

            def run(ws):
                with tf.GradientTape() as tape:
                    tape.watch(ws)
                    out = fmodel(ws, coords)
                    loss = tf.reduce_mean(tf.square(out - 0.5))
                meta, _ = meta_gradients(config, task, fmodel, ws, batch)
                return [out] + tape.gradient(loss, ws) + meta
            return tf.function(run), fmodel.initial_weights()

        run, weights = runner(False)
        custom = run(weights)
        with _patched(siren, "_sine", tf.sin):
            run, weights = runner(False)
            expected = run(weights)
        run, weights = runner("auto")
        fast = run(weights)
        for name, got, bound in (("custom sine", custom, 2e-4), ("fast sine", fast, 2e-3)):
            for i, (e, g) in enumerate(zip(expected, got)):
                scale = float(tf.reduce_max(tf.abs(e)))
                self.assertLess(float(tf.reduce_max(tf.abs(g - e))), bound * scale,
                                msg=f"{name}, tensor {i}")

    def test_backward_matmuls_of_hidden_layers_run_in_bfloat16(self):
        # Every matmul of the meta-step (forward, backward, second order) between two
        # hidden-width or coordinate-count operands is bfloat16; the ones touching the
        # 2 input or 3 output features are the float32 first and output layers.
        graph = _mixed_meta_step_graph()
        dtypes = {"hidden": set(), "edge": set()}
        count = 0
        for op in graph.get_operations():
            if op.type not in ("MatMul", "BatchMatMulV2"):
                continue
            dims = {d for t in op.inputs for d in t.shape.as_list()[-2:]}
            hidden = not dims & {2, 3}
            dtypes["hidden" if hidden else "edge"].add(op.get_attr("T").name)
            count += hidden
        self.assertEqual(dtypes, {"hidden": {"bfloat16"}, "edge": {"float32"}})
        # 2 hidden layers × (5 forward + 8 inner-backward × 2 + second order) matmuls.
        self.assertGreater(count, 2 * (5 + 16))


class AutoChoiceTest(TestCase):

    def _cpuinfo(self, flags):
        path = os.path.join(tempfile.mkdtemp(dir=self.get_temp_dir()), "cpuinfo")
        with open(path, "w", encoding="utf-8") as f:
            for cpu in range(2):
                f.write(f"processor\t: {cpu}\nmodel name\t: Test CPU\nflags\t\t: {flags}\n\n")
        return path

    def test_reads_cpu_flags(self):
        if tf.config.list_physical_devices("GPU") or tf.config.list_logical_devices("TPU"):
            self.skipTest("an accelerator decides before the CPU flags")
        cases = {AMD_ZEN4_FLAGS: ("avx512_bf16",), INTEL_SPR_FLAGS: ("amx_bf16",),
                 OLD_FLAGS: ()}
        for flags, expected in cases.items():
            path = self._cpuinfo(flags)
            self.assertEqual(compile_options.cpu_bfloat16_flags(path), expected)
            self.assertEqual(compile_options.resolve_mixed_precision("auto", path),
                             bool(expected))
        # A flag named in another line (here the model name) does not count.
        path = os.path.join(tempfile.mkdtemp(dir=self.get_temp_dir()), "cpuinfo")
        with open(path, "w", encoding="utf-8") as f:
            f.write(f"model name\t: avx512_bf16 lookalike\nflags\t\t: {OLD_FLAGS}\n")
        self.assertFalse(compile_options.resolve_mixed_precision("auto", path))
        self.assertEqual(compile_options.cpu_bfloat16_flags("/nonexistent/cpuinfo"), ())
        # Explicit values override the hardware either way.
        self.assertTrue(compile_options.resolve_mixed_precision(True, self._cpuinfo(OLD_FLAGS)))
        self.assertFalse(compile_options.resolve_mixed_precision(False,
                                                                 self._cpuinfo(AMD_ZEN4_FLAGS)))

    def test_auto_config_follows_the_cpu_flags(self):
        if tf.config.list_physical_devices("GPU") or tf.config.list_logical_devices("TPU"):
            self.skipTest("an accelerator decides before the CPU flags")
        model, _, _ = _problem()
        config = MetaConfig("maml", 2, mixed_precision="auto")
        for flags, expected in ((AMD_ZEN4_FLAGS, True), (OLD_FLAGS, False)):
            path = self._cpuinfo(flags)
            with self.subTest(flags=flags), _patched(compile_options, "CPUINFO", path):
                self.assertEqual(algorithms.uses_mixed_precision(config, model), expected)
                record = algorithms.precision_metadata(config, model)
                self.assertEqual(record["matmul_dtype"], "bfloat16" if expected else "float32")
                self.assertEqual(record["requested"], "auto")
                self.assertEqual(record["bfloat16_hardware"], expected)
                self.assertIn(path if not expected else "avx512_bf16",
                              record["hardware_evidence"])

    def test_metadata_records_explicit_choices(self):
        model, _, _ = _problem()
        with _patched(compile_options, "CPUINFO", self._cpuinfo(AMD_ZEN4_FLAGS)):
            off = algorithms.precision_metadata(MetaConfig(mixed_precision=False), model)
            on = algorithms.precision_metadata(MetaConfig(mixed_precision=True), model)
        self.assertEqual((off["matmul_dtype"], off["requested"]), ("float32", False))
        self.assertEqual((on["matmul_dtype"], on["requested"]), ("bfloat16", True))
        self.assertEqual(on["weights_dtype"], "float32")
        # Which sine the steps ran: fast_sine="auto" is the polynomial on the mixed path only.
        self.assertEqual((off["sine"], on["sine"]), ("tf.sin", "polynomial"))
        for option, expected in ((False, ("tf.sin", "tf.sin")),
                                 (True, ("polynomial", "polynomial"))):
            siren = Siren(out_features=1, width=8, depth=2, seed=0, fast_sine=option)
            siren(tf.zeros((1, 2)))
            with _patched(compile_options, "CPUINFO", self._cpuinfo(AMD_ZEN4_FLAGS)):
                got = tuple(algorithms.precision_metadata(MetaConfig(mixed_precision=m),
                                                          siren)["sine"]
                            for m in (False, True))
            self.assertEqual(got, expected, f"fast_sine={option}")
        mlp = FourierFeatureMLP(out_features=1, width=8, hidden_layers=2, num_features=4, seed=0)
        mlp(tf.zeros((1, 2)))
        self.assertNotIn("sine", algorithms.precision_metadata(MetaConfig(), mlp))


class _patched:
    """Sets `module.name = value` for a `with` block."""

    def __init__(self, module, name, value):
        self.module, self.name, self.value = module, name, value

    def __enter__(self):
        self.old = getattr(self.module, self.name)
        setattr(self.module, self.name, self.value)

    def __exit__(self, *exc):
        setattr(self.module, self.name, self.old)
