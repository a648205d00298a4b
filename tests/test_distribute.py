"""tf.distribute: strategy factory, meta-batch splitting and a mirrored outer step on 2 CPUs.

This module splits the CPU into 2 logical devices at import, which only works
before TensorFlow initializes its devices. Test collection (also in pytest-xdist
workers) imports every test module before any test runs, so that normally
succeeds; if another module initialized TensorFlow at import, the tests that need
2 devices re-run themselves in a fresh pytest subprocess instead.
"""

import contextlib
import functools
import os
import socket
import subprocess
import sys
import threading
import time

import keras
import numpy as np
import tensorflow as tf

from learnit_tf.training import distribute
from learnit_tf.meta import InnerOptimizer, MetaConfig, MetaTrainer
from learnit_tf.models import Siren
from learnit_tf.kinds.image import ImageTask
from learnit_tf.testing import TestCase

_SUBPROCESS_ENV = "LEARNIT_DISTRIBUTE_TEST_SUBPROCESS"
try:
    distribute.configure_cpu_devices(2)
    _TWO_DEVICES = True
except RuntimeError:
    _TWO_DEVICES = False


def _two_cpu_devices(test):
    """Runs `test` here if this process has 2 logical CPUs, else in a fresh pytest process."""

    @functools.wraps(test)
    def wrapper(self, *args, **kwargs):
        if _TWO_DEVICES:
            return test(self, *args, **kwargs)
        if os.environ.get(_SUBPROCESS_ENV):
            self.fail("Could not create 2 logical CPU devices in a fresh process.")
        node = f"{os.path.abspath(__file__)}::{type(self).__name__}::{self._testMethodName}"
        result = subprocess.run(
            [sys.executable, "-m", "pytest", "-q", "-p", "no:xdist", "-p", "no:cacheprovider",
             node], capture_output=True, text=True, timeout=900,
            env=dict(os.environ, **{_SUBPROCESS_ENV: "1"}))
        self.assertEqual(result.returncode, 0, msg=result.stdout[-4000:] + result.stderr[-2000:])

    return wrapper


@contextlib.contextmanager
def _silent_tcp_server():
    """A local TCP server that accepts connections and never answers; yields its port."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    accepted = []
    stop = threading.Event()

    def accept():
        server.settimeout(0.1)
        while not stop.is_set():
            try:
                accepted.append(server.accept()[0])  # Kept open, never answered.
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield server.getsockname()[1]
    finally:
        stop.set()
        thread.join()
        for conn in accepted:
            conn.close()
        server.close()


def _images(n, resolution, seed):
    rng = np.random.RandomState(seed)
    return rng.rand(n, resolution, resolution, 3).astype(np.float32)


class MirroredOuterStepTest(TestCase):
    """Two replicas must produce exactly the one-device update for the same global meta-batch."""

    def _train(self, algorithm, inner_steps, strategy, batches, remat=False):
        keras.utils.set_random_seed(0)
        with strategy.scope():
            model = Siren(out_features=3, width=16, depth=3, w0=30.0, seed=0)
            trainer = MetaTrainer(model, ImageTask(8),
                                  MetaConfig(algorithm, inner_steps, InnerOptimizer("sgd", 1e-2),
                                             remat=remat),
                                  outer_learning_rate=1e-3, strategy=strategy)
        initial = [v.numpy() for v in model.trainable_variables]
        replicas = strategy.num_replicas_in_sync
        losses = []
        for images in batches:
            if replicas == 1:
                batch = {"image": tf.constant(images)}
            else:
                share = len(images) // replicas

                def value_fn(ctx, images=images, share=share):
                    i = ctx.replica_id_in_sync_group
                    return {"image": tf.constant(images[i * share:(i + 1) * share])}

                batch = strategy.experimental_distribute_values_from_function(value_fn)
            losses.append(float(trainer.train_step(batch)["loss"]))
        return model, trainer, initial, losses

    @_two_cpu_devices
    def test_mirrored_step_matches_one_device(self):
        mirrored = distribute.get_distribution_strategy("mirrored")
        self.assertEqual(mirrored.num_replicas_in_sync, 2)
        # (algorithm, global meta-batch, inner steps): XLA-compiled second-order MAML
        # is the slow compile, so it gets one example per replica; Reptile checks the
        # mean within a replica's share (2 each) too, and rematerialized MAML runs
        # its examples one after another inside each replica. Two outer steps on
        # different meta-batches, so the second step also checks the replicated Adam state.
        for algorithm, batch_size, inner_steps, remat in (
                ("maml", 2, 1, False), ("reptile", 4, 2, False), ("maml", 4, 2, True)):
            with self.subTest(algorithm=algorithm, remat=remat):
                batches = [_images(batch_size, 8, seed=1), _images(batch_size, 8, seed=2)]
                one_model, one_trainer, initial, one_losses = self._train(
                    algorithm, inner_steps, tf.distribute.get_strategy(), batches, remat)
                two_model, two_trainer, _, two_losses = self._train(
                    algorithm, inner_steps, mirrored, batches, remat)
                one = [v.numpy() for v in one_model.trainable_variables]
                two = [v.numpy() for v in two_model.trainable_variables]
                # The update is real (Adam moves weights by ~lr per step) ...
                moved = max(float(np.max(np.abs(a - b))) for a, b in zip(one, initial))
                self.assertGreater(moved, 1e-3)
                # ... and identical to one device for the same global meta-batch.
                self.assertWeightsClose(two, one, atol=1e-5, rtol=0, msg=algorithm)
                self.assertAllClose(two_losses, one_losses, atol=1e-6, rtol=0)
                # Adam's update hides a gradient scale error (m / sqrt(v)), its moments
                # do not: the averaged meta-gradient itself must match.
                for a, b in zip(two_trainer.optimizer.variables, one_trainer.optimizer.variables):
                    b = np.asarray(b.numpy())
                    self.assertAllClose(a.numpy(), b, rtol=1e-4,
                                        atol=1e-5 * float(np.max(np.abs(b))) + 1e-12,
                                        msg=f"{algorithm} optimizer variable {a.name}")
                # Both replicas hold the same weights, and each step counted once.
                for var in two_model.trainable_variables:
                    copies = [c.numpy() for c in var.value.values]
                    self.assertLen(copies, 2)
                    self.assertAllEqual(copies[0], copies[1])
                self.assertEqual(int(two_trainer.optimizer.iterations.numpy()), 2)
                self.assertEqual(int(one_trainer.optimizer.iterations.numpy()), 2)


class VectorizedMetaBatchTest(TestCase):
    """`MetaConfig(vectorize=True)` (one tf.vectorized_map over the per-replica meta-batch)
    must train exactly like the unrolled loop, on one device and per replica."""

    def _train(self, algorithm, vectorize, strategy, batches):
        keras.utils.set_random_seed(0)
        with strategy.scope():
            model = Siren(out_features=3, width=16, depth=3, w0=30.0, seed=0)
            trainer = MetaTrainer(model, ImageTask(8),
                                  MetaConfig(algorithm, 2, InnerOptimizer("sgd", 1e-2),
                                             vectorize=vectorize),
                                  outer_learning_rate=1e-3, strategy=strategy)
        initial = [v.numpy() for v in model.trainable_variables]
        replicas = strategy.num_replicas_in_sync
        losses = []
        for images in batches:
            share = len(images) // replicas

            def value_fn(ctx, images=images, share=share):
                i = ctx.replica_id_in_sync_group
                return {"image": tf.constant(images[i * share:(i + 1) * share])}

            batch = ({"image": tf.constant(images)} if replicas == 1 else
                     strategy.experimental_distribute_values_from_function(value_fn))
            metrics = trainer.train_step(batch)
            losses.append([float(metrics["loss"]), float(metrics["inner_loss_first"])])
        return [v.numpy() for v in model.trainable_variables], initial, losses

    def test_vectorized_equals_unrolled_on_one_device(self):
        batches = [_images(3, 8, seed=1), _images(3, 8, seed=2)]
        for algorithm in ("maml", "fomaml", "reptile"):
            with self.subTest(algorithm=algorithm):
                unrolled, initial, unrolled_losses = self._train(
                    algorithm, False, tf.distribute.get_strategy(), batches)
                vectorized, _, vectorized_losses = self._train(
                    algorithm, True, tf.distribute.get_strategy(), batches)
                moved = max(float(np.max(np.abs(a - b))) for a, b in zip(unrolled, initial))
                self.assertGreater(moved, 1e-3)  # Two real Adam steps ...
                self.assertWeightsClose(vectorized, unrolled, atol=1e-5, rtol=0, msg=algorithm)
                self.assertAllClose(vectorized_losses, unrolled_losses, atol=1e-6, rtol=0)

    def test_vectorized_maml_through_the_fast_sine_equals_unrolled(self):
        """The polynomial sine's custom gradients (`Siren(fast_sine=True)`, the mixed
        path's default) survive `vectorize`: MAML's and Meta-SGD's meta-gradients, second
        order through them, equal the unrolled loop's. Differentiated outside
        `tf.vectorized_map` the second-order term came out zero: the gap to first-order
        MAML (asserted large here) is what that loses."""
        from learnit_tf.meta.algorithms import meta_gradients  # pylint: disable=import-outside-toplevel
        from learnit_tf.models import FunctionalModel  # pylint: disable=import-outside-toplevel
        batch = {"image": tf.constant(_images(3, 8, seed=1))}
        for learned_rates in (False, True):
            model = Siren(out_features=3, width=16, depth=3, w0=30.0, seed=0, fast_sine=True,
                          **({"inner_rates": {"granularity": "tensor", "initial": 1e-2}}
                             if learned_rates else {}))
            fmodel = FunctionalModel(model)
            weights = fmodel.initial_weights()
            rates = ([tf.convert_to_tensor(r) for r in model.inner_learning_rates.rates]
                     if learned_rates else None)

            def grads(algorithm, vectorize, rates=rates, fmodel=fmodel, weights=weights):
                config = MetaConfig(algorithm, 2, InnerOptimizer("sgd", 1e-2),
                                    vectorize=vectorize)
                return tf.function(lambda: meta_gradients(config, ImageTask(8), fmodel,
                                                          weights, batch, rates)[0])()

            with self.subTest(learned_rates=learned_rates):
                unrolled, vectorized = grads("maml", False), grads("maml", True)
                first_order = grads("fomaml", False)
                gap = max(float(tf.reduce_max(tf.abs(a - b)) / tf.reduce_max(tf.abs(a)))
                          for a, b in zip(unrolled, first_order))
                self.assertGreater(gap, 0.05)
                for a, b in zip(vectorized, unrolled):
                    self.assertAllClose(a, b, atol=1e-5 * float(tf.reduce_max(tf.abs(b))),
                                        rtol=1e-4)

    @_two_cpu_devices
    def test_vectorized_per_replica_equals_unrolled_one_device(self):
        mirrored = distribute.get_distribution_strategy("mirrored")
        batches = [_images(4, 8, seed=3)]
        for algorithm in ("maml", "reptile"):
            with self.subTest(algorithm=algorithm):
                one, _, one_losses = self._train(algorithm, False, tf.distribute.get_strategy(),
                                                 batches)
                two, _, two_losses = self._train(algorithm, True, mirrored, batches)
                self.assertWeightsClose(two, one, atol=1e-5, rtol=0, msg=algorithm)
                self.assertAllClose(two_losses, one_losses, atol=1e-6, rtol=0)

    def test_vectorize_excludes_remat(self):
        with self.assertRaisesRegex(ValueError, "vectorize and remat exclude each other"):
            MetaConfig("maml", 2, vectorize=True, remat=True)


class DistributeMetaBatchesTest(TestCase):

    def _global_batches(self):
        # Meta-batches of 4 "examples" whose values are their running index.
        return tf.data.Dataset.range(1000).map(
            lambda i: {"x": tf.cast(i, tf.float32) * tf.ones((3,)),
                       "seed": tf.stack([tf.constant(0, tf.int32), tf.cast(i, tf.int32)])}
        ).batch(4, drop_remainder=True)

    @_two_cpu_devices
    def test_replica_shares_form_the_global_batch(self):
        strategy = distribute.get_distribution_strategy("mirrored")
        for skip in (0, 3):
            dist = distribute.distribute_meta_batches(strategy, self._global_batches, 4, skip=skip)
            iterator = iter(dist)
            for step in range(2):
                per_replica = next(iterator)
                shares = strategy.experimental_local_results(per_replica["x"])
                self.assertLen(shares, 2)
                for share in shares:
                    self.assertEqual(tuple(share.shape), (2, 3))  # Static per-replica shape.
                union = np.concatenate([s.numpy()[:, 0] for s in shares])
                first = 4 * (skip + step)
                self.assertAllEqual(union, np.arange(first, first + 4))
                seeds = np.concatenate([s.numpy()[:, 1] for s in
                                        strategy.experimental_local_results(per_replica["seed"])])
                self.assertAllEqual(seeds, np.arange(first, first + 4))

    @_two_cpu_devices
    def test_global_batch_must_divide(self):
        strategy = distribute.get_distribution_strategy("mirrored")
        with self.assertRaisesRegex(ValueError, "meta_batch_size=3 must be a positive multiple "
                                                "of the 2 replicas"):
            distribute.distribute_meta_batches(strategy, self._global_batches, 3)
        with self.assertRaisesRegex(ValueError, "static leading dimension 8"):
            iter(distribute.distribute_meta_batches(strategy, self._global_batches, 8))


class StrategyFactoryTest(TestCase):

    @_two_cpu_devices
    def test_builds_local_strategies(self):
        default = distribute.get_distribution_strategy("default")
        self.assertIs(default, tf.distribute.get_strategy())
        one = distribute.get_distribution_strategy("one_device")
        self.assertIsInstance(one, tf.distribute.OneDeviceStrategy)
        self.assertEqual(one.num_replicas_in_sync, 1)
        mirrored = distribute.get_distribution_strategy("MIRRORED")
        self.assertIsInstance(mirrored, tf.distribute.MirroredStrategy)
        self.assertEqual(mirrored.num_replicas_in_sync, 2)  # The 2 logical CPUs.
        self.assertTrue(mirrored.extended.should_checkpoint)
        cpu = distribute.get_distribution_strategy("mirrored", num_gpus=0)
        self.assertEqual(cpu.num_replicas_in_sync, 2)
        # Without TF_CONFIG, multi-worker mirrored is a one-worker cluster.
        multi = distribute.get_distribution_strategy("multi_worker_mirrored",
                                                     all_reduce_alg="ring")
        self.assertIsInstance(multi, tf.distribute.MultiWorkerMirroredStrategy)
        self.assertGreaterEqual(multi.num_replicas_in_sync, 1)
        # A failed collective becomes one paragraph naming the worker and what to do;
        # other errors and other strategies are left alone.
        failure = tf.errors.UnavailableError(None, None, "{{function_node x}} Collective ops "
                                             "is aborted by: task 1 stopped sending heartbeats\n"
                                             "The error could be from a previous operation.")
        message = distribute.cluster_failure_message(failure, multi, "/tmp/run")
        self.assertEqual(message, "the only worker: the cluster failed (UnavailableError: "
                         "Collective ops is aborted by: task 1 stopped sending heartbeats). "
                         "Another worker crashed, was killed or stalled; this worker cannot "
                         "continue alone. Restart all workers with the same command to resume "
                         "from the chief's last checkpoint in /tmp/run/checkpoints.")
        self.assertIsNone(distribute.cluster_failure_message(ValueError("x"), multi))
        self.assertIsNone(distribute.cluster_failure_message(failure, mirrored))

    def test_bad_arguments(self):
        with self.assertRaisesRegex(ValueError, r"Unknown distribution strategy 'parameter_server'"
                                                r".*'mirrored'.*'tpu'"):
            distribute.get_distribution_strategy("parameter_server")
        with self.assertRaisesRegex(ValueError, "use --strategy=tpu"):
            distribute.get_distribution_strategy("mirrored", tpu_address="my-tpu")
        gpus = len(tf.config.list_physical_devices("GPU"))
        with self.assertRaisesRegex(ValueError, f"num_gpus={gpus + 1} requested but {gpus} GPU"):
            distribute.get_distribution_strategy("mirrored", num_gpus=gpus + 1)
        with self.assertRaisesRegex(ValueError, "all_reduce_alg for mirrored"):
            distribute.get_distribution_strategy("mirrored", all_reduce_alg="ring")
        with self.assertRaisesRegex(ValueError, "all_reduce_alg for multi_worker_mirrored"):
            distribute.get_distribution_strategy("multi_worker_mirrored",
                                                 all_reduce_alg="hierarchical_copy")
        with self.assertRaisesRegex(ValueError, "collective_timeout applies to "
                                                "multi_worker_mirrored only, not 'mirrored'"):
            distribute.get_distribution_strategy("mirrored", collective_timeout=30)
        with self.assertRaisesRegex(ValueError, "collective_timeout must be > 0 seconds"):
            distribute.get_distribution_strategy("multi_worker_mirrored", collective_timeout=0)
        with self.assertRaisesRegex(ValueError, "num_devices must be >= 1"):
            distribute.configure_cpu_devices(0)

    def test_unreachable_tpu_fails_fast(self):
        # A port nobody listens on: refused at once.
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            free_port = probe.getsockname()[1]
        start = time.perf_counter()
        with self.assertRaisesRegex(ConnectionError,
                                    rf"TPU worker 127\.0\.0\.1:{free_port} did not accept"):
            distribute.get_distribution_strategy("tpu", tpu_address=f"grpc://127.0.0.1:{free_port}")
        # A host that accepts TCP but never speaks gRPC, on which
        # experimental_connect_to_cluster would block forever: bounded by the timeout.
        with _silent_tcp_server() as port:
            with self.assertRaisesRegex(ConnectionError, "answer within 0.5 s"):
                distribute.get_distribution_strategy("tpu", tpu_address=f"grpc://127.0.0.1:{port}",
                                                     connect_timeout=0.5)
        self.assertLess(time.perf_counter() - start, 10.0)
        with self.assertRaisesRegex(ValueError, "is not of the form host:port"):
            distribute.check_grpc_endpoint("grpc://no-port")

    def test_grpc_probe_accepts_a_tensorflow_server(self):
        # The probe must not reject a real TensorFlow gRPC worker.
        server = tf.distribute.Server.create_local_server()
        distribute.check_grpc_endpoint(server.target, timeout=5.0)

    def test_unresolvable_tpu_name(self):
        # A TPU name is looked up through the GCE metadata server / Cloud TPU API; off
        # Google Cloud (and for a name that does not exist) that must fail, clearly.
        with self.assertRaisesRegex(ValueError, "Could not resolve TPU 'no-such-tpu-learnit'"):
            distribute.get_distribution_strategy("tpu", tpu_address="no-such-tpu-learnit")

    def test_no_local_tpu(self):
        # `--tpu=local` on a machine without a TPU: a clear error, not a hang.
        with self.assertRaisesRegex(RuntimeError, "No usable TPU at 'local'"):
            distribute.get_distribution_strategy("tpu", tpu_address="local")


if __name__ == "__main__":
    tf.test.main()
