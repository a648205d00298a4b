"""Shared test helpers (keras-hub style): a TestCase with learnit_tf assertions, the
standard checks every signal kind runs (`KindTestCase`), and helpers for tests that
run meta-training in other processes and watch its `model_dir` (`train_log_rows`,
`wait_for_logged_step`, `latest_checkpoint_step`)."""

import csv
import dataclasses
import inspect
import json
import os
import re
import time

import keras
import numpy as np
import tensorflow as tf
from absl.testing import parameterized

from learnit_tf import kinds
from learnit_tf.data.pipeline import add_example_seeds, meta_batches
from learnit_tf.meta.algorithms import MetaConfig
from learnit_tf.meta.fit import Fitter
from learnit_tf.meta.trainer import MetaTrainer
from learnit_tf.models.functional import FunctionalModel
from learnit_tf.training.logs import LOG_FILE


class TestCase(tf.test.TestCase, parameterized.TestCase):
    """Base class of learnit_tf tests."""

    def setUp(self):
        super().setUp()
        keras.utils.set_random_seed(0)

    def assertWeightsClose(self, actual, expected, atol=1e-6, rtol=1e-6, msg=None):
        """Asserts two weight lists have equal length and elementwise-close tensors."""
        self.assertEqual(len(actual), len(expected), msg)
        for i, (a, e) in enumerate(zip(actual, expected)):
            self.assertAllClose(np.asarray(a), np.asarray(e), atol=atol, rtol=rtol,
                                msg=f"weight {i}: {msg or ''}")

    def random_images(self, n, resolution, channels=3, seed=0):
        """Smooth random images in [0, 1], float32 (n, res, res, channels)."""
        rng = np.random.RandomState(seed)
        coarse = rng.rand(n, 4, 4, channels).astype(np.float32)
        return tf.image.resize(coarse, (resolution, resolution), "bilinear").numpy()


def _as_dataset(examples):
    """An unbatched `tf.data.Dataset` from a dataset or a list of example dicts."""
    if isinstance(examples, tf.data.Dataset):
        return examples
    examples = list(examples)
    if not examples:
        raise ValueError("Expected at least one example, got an empty list.")
    stacked = {k: np.stack([np.asarray(ex[k]) for ex in examples]) for k in examples[0]}
    return tf.data.Dataset.from_tensor_slices(stacked)


def _with_seeds(examples, seed):
    """A list of example dicts, each with a "seed" (its own if it had one)."""
    examples = list(examples)
    if all("seed" in ex for ex in examples):
        return [dict(ex) for ex in examples]
    seeded = list(add_example_seeds(_as_dataset(
        [{k: v for k, v in ex.items() if k != "seed"} for ex in examples]), seed))
    return [{k: (ex[k] if k in ex else s[k]) for k in s} for ex, s in zip(examples, seeded)]


def _grow_last_axis(value):
    """`value` with its last axis one longer (the last slice repeated): a wrong shape with
    values as valid as the original's."""
    value = np.asarray(value)
    return np.concatenate([value, value[..., -1:]], axis=-1)


class KindTestCase(TestCase):
    """The standard checks of one signal kind (keras-hub's `run_backbone_test` is the model).

    `run_kind_test` runs them all; each `run_*_test` method is one check, so a kind's
    test file may also call them from separate test methods. Every check takes the
    task and, where a network is needed, `model_fn`: a callable returning a fresh
    built Keras coordinate network with the same (seeded) weights on every call.

    Usage, in `tests/kinds/<kind>/test_<kind>_kind.py`:

        from learnit_tf import testing
        from learnit_tf.meta import InnerOptimizer, MetaConfig
        from learnit_tf.models import Siren
        from learnit_tf.kinds.image import ImageTask

        class ImageKindTest(testing.KindTestCase):

            def test_image_kind(self):
                images = self.random_images(12, 8, seed=4)
                self.run_kind_test(
                    "image", ImageTask(8), lambda: Siren(width=32, depth=3, w0=30.0, seed=0),
                    train_examples=[{"image": im} for im in images[:8]],
                    held_out_examples=[{"image": im} for im in images[8:]],
                    meta_config=MetaConfig("maml", 2, InnerOptimizer("sgd", 0.1)),
                    outer_learning_rate=1e-3, meta_steps=60, fit_steps=2,
                    min_psnr_gain=5.0)

    The tests of the image, CT, NeRF and audio kinds (`tests/kinds/*/test_*_kind.py`)
    show the settings that train in seconds for each.
    """

    def run_kind_test(self, kind_name, task, model_fn, train_examples, held_out_examples,
                      meta_config=MetaConfig(), outer_learning_rate=1e-4, meta_steps=20,
                      meta_batch_size=2, fit_steps=None, fit_optimizer=None,
                      standard_optimizer=None, min_psnr_gain=1.0, bad_input_fields=None,
                      xla_inner_steps=1, xla_equals_graph=True, seed=0):
        """Runs every standard check of a kind; returns the held-out PSNRs (see
        `run_meta_training_test`).

        Args:
            kind_name: the kind's registered name.
            task: a task of the kind, small enough to train in seconds.
            model_fn: callable() -> a fresh built Keras model (same weights every call).
            train_examples: unbatched training examples (a `tf.data.Dataset` or a list of
                example dicts as the kind's dataset functions yield them; seeds are added
                by the meta-batch pipeline).
            held_out_examples: a list of example dicts fitted at test time (a "seed" is
                added to those without one).
            meta_config: the `MetaConfig` of the tiny meta-training.
            outer_learning_rate: its outer Adam learning rate.
            meta_steps: its number of outer steps.
            meta_batch_size: examples per meta-batch.
            fit_steps: test-time steps (default: the meta-config's inner steps).
            fit_optimizer: test-time optimizer from the meta init (default: the inner one).
            standard_optimizer: test-time optimizer from the standard init (default:
                `fit_optimizer`).
            min_psnr_gain: dB by which the meta init must beat the standard init.
            bad_input_fields: example fields whose wrong shape `validate_example` must
                reject naming the field (default: every field of the first held-out
                example with at least one axis).
            xla_inner_steps: inner steps of the XLA = graph check (`meta_config` otherwise;
                it runs on a meta-batch of one example: that checks the task's ops under
                XLA, more steps or examples mostly add compile time).
            xla_equals_graph: False skips the XLA = graph check (for a kind with a known
                difference; its test file should then assert the difference).
            seed: seed of the meta-batch pipeline and of the held-out example seeds.
        """
        held_out_examples = list(held_out_examples)
        held_out = _with_seeds(held_out_examples, seed + 1)
        self.run_task_config_test(task)
        self.run_registry_test(kind_name, task)
        self.run_entry_points_test(kind_name)
        self.run_finite_losses_test(task, model_fn, held_out[0])
        self.run_shared_prediction_test(task, model_fn, held_out)
        self.run_bad_input_test(task, held_out_examples[0], bad_input_fields)
        if xla_equals_graph:
            # One example: the meta-batch loop is unrolled, so each adds compile time.
            batch = next(iter(meta_batches(_as_dataset(train_examples), 1, seed=seed)))
            self.run_xla_graph_test(task, model_fn, batch,
                                    dataclasses.replace(meta_config, inner_steps=xla_inner_steps),
                                    outer_learning_rate)
        return self.run_meta_training_test(
            task, model_fn, train_examples, held_out, meta_config, outer_learning_rate,
            meta_steps, meta_batch_size=meta_batch_size, fit_steps=fit_steps,
            fit_optimizer=fit_optimizer, standard_optimizer=standard_optimizer,
            min_psnr_gain=min_psnr_gain, seed=seed)

    def run_task_config_test(self, task):
        """`get_config()` is JSON-serializable and rebuilds an equal task, also through JSON
        (init metadata stores it as JSON)."""
        config = task.get_config()
        self.assertIsInstance(config, dict, f"{type(task).__name__}.get_config()")
        try:
            text = json.dumps(config)
        except TypeError as error:
            self.fail(f"{type(task).__name__}.get_config() is not JSON-serializable: {error}")
        self.assertEqual(type(task)(**config).get_config(), config)
        self.assertEqual(type(task)(**json.loads(text)).get_config(), json.loads(text),
                         f"{type(task).__name__} rebuilt from its JSON config differs")

    def run_registry_test(self, kind_name, task):
        """The kind is registered, owns the task class, and its dataset functions resolve
        (callable, with a `split` keyword; the folder reader with a `directory`)."""
        kind = kinds.get_kind(kind_name)
        self.assertEqual(kind.name, kind_name)
        self.assertTrue(kind.description, f"kind {kind_name!r} has no description")
        class_name = type(task).__name__
        self.assertIs(kind.task_class(class_name), type(task))
        self.assertIs(kinds.kind_of_task(class_name), kind)
        self.assertIs(kinds.task_class(class_name), type(task))
        self.assertTrue(kind.datasets, f"kind {kind_name!r} registers no dataset function")
        for name, function in kind.datasets.items():
            self.assertTrue(callable(function), f"dataset function {name!r} is not callable")
            self.assertIs(kinds.kind_of_dataset(name), kind)
            self.assertIs(kinds.dataset_function(name), function)
            # meta_train calls dataset_fn(split=...) with a keyword.
            self.assertIn("split", inspect.signature(function).parameters,
                          f"dataset function {name!r} takes no 'split' argument")
        if kind.folder_dataset is not None:
            self.assertIn(kind.folder_dataset, kind.datasets)
            self.assertIn("directory",
                          inspect.signature(kind.datasets[kind.folder_dataset]).parameters,
                          f"folder dataset {kind.folder_dataset!r} takes no 'directory'")

    def run_entry_points_test(self, kind_name):
        """The kind's evaluation protocol and fit-input reader ("module:attribute") import."""
        kind = kinds.get_kind(kind_name)
        for what, spec, resolve in (("protocol", kind.protocol, kind.protocol_class),
                                    ("fit_input", kind.fit_input, kind.fit_input_reader)):
            if spec is None:
                continue
            try:
                resolved = resolve()
            except (ImportError, AttributeError) as error:
                self.fail(f"kind {kind_name!r}: {what} {spec!r} does not resolve: {error!r}")
            self.assertTrue(callable(resolved), f"kind {kind_name!r}: {what} {spec!r}")

    def run_finite_losses_test(self, task, model_fn, example):
        """Inner (steps 0 and 1) and outer losses and every metric are finite scalars at
        the model's init; the primary metric is among the metrics."""
        task.validate_example(example)
        fmodel = FunctionalModel(model_fn())
        weights = fmodel.initial_weights()
        example = tf.nest.map_structure(tf.convert_to_tensor, example)
        values = {f"inner_loss(step={k})": task.inner_loss(fmodel, weights, example,
                                                           tf.constant(k, tf.int32))
                  for k in (0, 1)}
        values["outer_loss"] = task.outer_loss(fmodel, weights, example)
        metrics = task.metrics(fmodel, weights, example)
        self.assertIn(task.primary_metric, metrics)
        values.update({f"metrics[{name!r}]": value for name, value in metrics.items()})
        for name, value in values.items():
            value = np.asarray(value)
            self.assertEqual(value.shape, (), f"{name} is not a scalar: shape {value.shape}")
            self.assertTrue(np.isfinite(value), f"{name} = {value} is not finite")

    def run_shared_prediction_test(self, task, model_fn, examples):
        """Where the task shares its first forward pass, the step-0 inner loss from the
        shared prediction equals `inner_loss` for every example (and the examples' losses
        differ, so the prediction is not ignored)."""
        if not task.has_shared_prediction():
            return
        fmodel = FunctionalModel(model_fn())
        weights = fmodel.initial_weights()
        prediction = task.shared_prediction(fmodel, weights)
        step = tf.constant(0, tf.int32)
        losses = []
        for i, example in enumerate(examples):
            example = tf.nest.map_structure(tf.convert_to_tensor, example)
            direct = float(task.inner_loss(fmodel, weights, example, step))
            shared = float(task.inner_loss_from_prediction(prediction, example, step))
            self.assertAllClose(shared, direct, rtol=1e-6, atol=1e-7,
                                msg=f"example {i}: shared-prediction loss != inner_loss")
            losses.append(direct)
        if len(examples) > 1:
            self.assertGreater(max(losses) - min(losses), 0.0, "every example has one loss")

    def run_bad_input_test(self, task, example, fields=None):
        """`validate_example` accepts `example` and rejects it with a ValueError naming
        the field (and the name given to it) when one field has a wrong shape (its last
        axis one longer) or, for a float field, a NaN."""
        task.validate_example(example)
        if fields is None:
            fields = [k for k, v in example.items() if np.ndim(v) >= 1]
        self.assertTrue(fields, "no field to check")
        for field in fields:
            value = np.asarray(example[field])
            bad_values = {"wrong shape": _grow_last_axis(value)}
            if np.issubdtype(value.dtype, np.floating):
                with_nan = value.copy()
                with_nan.flat[0] = np.nan
                bad_values["NaN"] = with_nan
            for what, bad_value in bad_values.items():
                bad = dict(example, **{field: bad_value})
                with self.assertRaisesRegex(
                        ValueError, f"my example.*{re.escape(field)}",
                        msg=f"{type(task).__name__}.validate_example with a {what} {field!r}"):
                    task.validate_example(bad, name="my example")

    def run_xla_graph_test(self, task, model_fn, meta_batch, meta_config=MetaConfig(),
                           outer_learning_rate=1e-4, atol=1e-5):
        """One meta step compiled with XLA equals the graph-mode step: metrics and the
        updated init (which must have moved)."""
        results = {}
        for jit_compile in (True, False):
            trainer = MetaTrainer(model_fn(), task, meta_config, outer_learning_rate,
                                  jit_compile=jit_compile)
            before = [v.numpy() for v in trainer.variables]
            metrics = trainer.train_step(meta_batch)
            results[jit_compile] = ({k: float(v) for k, v in metrics.items()},
                                    [v.numpy() for v in trainer.variables])
        (xla_metrics, xla_weights), (graph_metrics, graph_weights) = results[True], results[False]
        self.assertEqual(sorted(xla_metrics), sorted(graph_metrics))
        for name in xla_metrics:
            self.assertTrue(np.isfinite(xla_metrics[name]), f"XLA {name} not finite")
            self.assertAllClose(xla_metrics[name], graph_metrics[name], atol=atol, rtol=atol,
                                msg=f"meta-step metric {name!r}: XLA vs graph")
        self.assertWeightsClose(xla_weights, graph_weights, atol=atol, rtol=atol,
                                msg="init after one meta step: XLA vs graph")
        moved = max(float(np.max(np.abs(a - b))) for a, b in zip(graph_weights, before))
        self.assertGreater(moved, 0.0, "the meta step did not change the init")

    def run_meta_training_test(self, task, model_fn, train_examples, held_out_examples,
                               meta_config, outer_learning_rate, meta_steps, meta_batch_size=2,
                               fit_steps=None, fit_optimizer=None, standard_optimizer=None,
                               min_psnr_gain=1.0, seed=0):
        """A tiny meta-training beats the standard init on held-out examples.

        Meta-trains `model_fn()` for `meta_steps` outer steps, then fits every held-out
        example for `fit_steps` steps from the meta init and from the standard init
        (a fresh `model_fn()`), and asserts that the mean primary metric (PSNR) after
        those steps is higher from the meta init by at least `min_psnr_gain` dB.

        Returns:
            {"meta": mean PSNR, "standard": mean PSNR, "meta_step0": ..., "standard_step0": ...}.
        """
        fit_steps = meta_config.inner_steps if fit_steps is None else int(fit_steps)
        fit_optimizer = fit_optimizer or meta_config.inner_optimizer
        standard_optimizer = standard_optimizer or fit_optimizer
        held_out = _with_seeds(held_out_examples, seed + 1)
        model = model_fn()
        standard = FunctionalModel(model_fn()).initial_weights()
        trainer = MetaTrainer(model, task, meta_config, outer_learning_rate)
        batches = meta_batches(_as_dataset(train_examples), meta_batch_size, seed=seed)
        for step, batch in zip(range(int(meta_steps)), batches):
            metrics = trainer.train_step(batch)
            loss = float(metrics["loss"])
            self.assertTrue(np.isfinite(loss), f"meta step {step}: loss {loss}")
        meta = [tf.convert_to_tensor(v) for v in trainer.variables]
        metric = task.primary_metric
        scores, fitters = {}, {}
        for name, weights, optimizer in (("meta", meta, fit_optimizer),
                                         ("standard", standard, standard_optimizer)):
            # One compiled fitter per optimizer (tracing dominates these tiny fits).
            if optimizer not in fitters:
                fitters[optimizer] = Fitter(model, task, optimizer,
                                            steps_per_call=max(fit_steps, 1))
            fitter = fitters[optimizer]
            curves = np.stack([fitter.fit(ex, fit_steps, weights).metrics[metric]
                               for ex in held_out])
            self.assertTrue(np.all(np.isfinite(curves)), f"{name} {metric} curves not finite")
            scores[name] = float(np.mean(curves[:, -1]))
            scores[f"{name}_step0"] = float(np.mean(curves[:, 0]))
        print(f"\n{type(task).__name__}: held-out {metric} after {fit_steps} steps: "
              f"meta {scores['meta']:.2f}, standard {scores['standard']:.2f} "
              f"(step 0: {scores['meta_step0']:.2f} vs {scores['standard_step0']:.2f})")
        self.assertGreater(scores["meta"], scores["standard"] + min_psnr_gain,
                           f"meta init vs standard init on held-out {metric}: {scores}")
        return scores


# ------------------------------------------------- watching a meta-training run's model_dir


def train_log_rows(model_dir):
    """The step rows of `model_dir/train_log.csv` (dicts of strings; [] if none yet).

    Evaluation rows (no "seconds") are left out.
    """
    path = os.path.join(model_dir, LOG_FILE)
    if not os.path.exists(path):
        return []
    with open(path, newline="") as f:
        return [row for row in csv.DictReader(f) if row.get("seconds")]


def wait_for_logged_step(processes, model_dir, step, timeout=300.0, output=None, poll=0.02):
    """Waits until the meta-training run in `model_dir` has logged `step` (or later).

    Args:
        processes: the `subprocess.Popen` (or a list of them) running the training; if
            one exits first, the wait fails at once.
        model_dir: the run's model directory (its train_log.csv is read).
        step: the outer step to wait for.
        timeout: seconds before giving up (the processes are then killed, so that a
            failing test leaves none running).
        output: optional callable() -> str, the processes' output, shown in a failure.

    Raises:
        AssertionError: a process exited before `step`, or `timeout` passed.
    """
    processes = list(processes) if isinstance(processes, (list, tuple)) else [processes]
    describe = (lambda: "") if output is None else (lambda: ":\n" + output()[-3000:])
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        rows = train_log_rows(model_dir)
        if rows and int(rows[-1]["step"]) >= step:
            return
        for process in processes:
            if process.poll() is not None:
                raise AssertionError(f"{process.args[:2]} exited ({process.returncode}) before "
                                     f"step {step} was logged in {model_dir}{describe()}")
        time.sleep(poll)
    for process in processes:
        process.kill()
    raise AssertionError(f"Step {step} was not logged in {model_dir} within {timeout:g} s "
                         f"(processes killed){describe()}")


def latest_checkpoint_step(model_dir):
    """The step of `model_dir`'s latest checkpoint, after checking that it is complete.

    Reads `model_dir/checkpoints/checkpoint` (the CheckpointManager's state file) and
    asserts that the checkpoint it names has its index and data files.

    Raises:
        AssertionError: no state file, or the latest checkpoint's files are missing.
    """
    directory = os.path.join(model_dir, "checkpoints")
    state_path = os.path.join(directory, "checkpoint")
    if not os.path.exists(state_path):
        raise AssertionError(f"No checkpoint state file {state_path}.")
    with open(state_path) as f:
        state = f.read()
    match = re.search(r'^model_checkpoint_path: "(.+)"$', state, re.M)
    if match is None:
        raise AssertionError(f"{state_path} names no checkpoint:\n{state}")
    prefix = os.path.join(directory, match.group(1))
    name = os.path.basename(prefix)
    data = [f for f in os.listdir(directory) if f.startswith(name + ".data-")]
    if not os.path.exists(prefix + ".index") or not data:
        raise AssertionError(f"The latest checkpoint {prefix} is incomplete (index or data "
                             f"file missing):\n{state}")
    return int(re.fullmatch(r"ckpt-(\d+)", name).group(1))


def three_orders(fn, xs):
    """`fn(xs)` and its derivatives of orders 1 to 3 along `xs` (a list of tensors),
    through nested tapes, as MAML's second order and one beyond: g1 = ∇f,
    g2 = ∇ Σ g1·cos(x), g3 = ∇ Σ g2² (sums in each x's dtype). Returns [f, g1, g2, g3], each g a
    list like `xs`: what tests of custom gradients compare against a plain composition."""
    with tf.GradientTape() as t3:
        t3.watch(xs)
        with tf.GradientTape() as t2:
            t2.watch(xs)
            with tf.GradientTape() as t1:
                t1.watch(xs)
                f = fn(xs)
            g1 = t1.gradient(f, xs)
            h1 = tf.add_n([tf.reduce_sum(tf.cast(g, x.dtype) * tf.cos(x))
                           for g, x in zip(g1, xs)])
        g2 = t2.gradient(h1, xs)
        h2 = tf.add_n([tf.reduce_sum(tf.square(tf.cast(g, x.dtype))) for g, x in zip(g2, xs)])
    return [f, g1, g2, t3.gradient(h2, xs)]
