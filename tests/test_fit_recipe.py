"""Test-time fitting: recipes in phases, learned rates, one compiled step for many fits."""

import sys

import numpy as np
import tensorflow as tf

from learnit_tf.meta import FitPhase, FitRecipe, Fitter, InnerOptimizer, fit
from learnit_tf.models import FourierFeatureMLP, Siren
from learnit_tf.kinds.ct import CtTask
from learnit_tf.kinds.image import ImageTask
from learnit_tf.testing import TestCase

fit_module = sys.modules["learnit_tf.meta.fit"]  # `learnit_tf.meta.fit` names the function.
SGD, ADAM = InnerOptimizer("sgd", 1e-2), InnerOptimizer("adam", 1e-3)


def _image(seed, resolution=8):
    return {"image": tf.random.stateless_uniform((resolution, resolution, 3), (seed, 0))}


class FitRecipeTest(TestCase):

    def test_phases_equal_fits_run_one_after_another(self):
        model, task, example = Siren(width=16, depth=3, seed=0), ImageTask(8), _image(1)
        recipe = FitRecipe((FitPhase(SGD, steps=3), FitPhase(ADAM)))
        result = Fitter(model, task, recipe, steps_per_call=2).fit(example, 7)
        first = Fitter(model, task, SGD).fit(example, 3)
        second = Fitter(model, task, ADAM).fit(example, 4, weights=first.weights)
        self.assertWeightsClose(result.weights, second.weights, atol=1e-6, rtol=1e-5)
        np.testing.assert_allclose(result.psnr, np.concatenate([first.psnr[:3], second.psnr]),
                                   rtol=1e-5)
        # Phases split where they say, whatever the fit length.
        self.assertEqual(recipe.boundaries(2), [(0, 2, 0)])
        self.assertEqual(FitRecipe((FitPhase(SGD, steps=2),)).boundaries(5),
                         [(0, 2, 0), (2, 5, 0)])

    def test_learned_rates_step_each_weight_with_its_rate(self):
        model = Siren(width=16, depth=3, seed=0, inner_rates="tensor")
        rates = [0.001 * (i + 1) for i in range(len(model.inner_learning_rates.rates))]
        for rate, value in zip(model.inner_learning_rates.rates, rates):
            rate.assign(value)
        task, example = ImageTask(8), _image(2)
        recipe = FitRecipe((FitPhase(SGD, steps=1, learned_rates=True),))
        result = Fitter(model, task, recipe).fit(example, 1)
        weights = [tf.convert_to_tensor(v) for v in model.trainable_variables]
        with tf.GradientTape() as tape:
            tape.watch(weights)
            loss = task.inner_loss(Fitter(model, task).fmodel, weights, example, 0)
        grads = tape.gradient(loss, weights)
        expected = [w - r * g for w, r, g in zip(weights, rates, grads)]
        self.assertWeightsClose(result.weights, expected, atol=1e-7, rtol=1e-6)

    def test_learned_rates_need_a_model_with_rates(self):
        with self.assertRaisesRegex(ValueError, "has none"):
            Fitter(Siren(width=8, depth=2, seed=0), ImageTask(8),
                   FitRecipe((FitPhase(SGD, learned_rates=True),)))
        with self.assertRaisesRegex(ValueError, "Only the last phase"):
            FitRecipe((FitPhase(SGD), FitPhase(ADAM)))
        with self.assertRaisesRegex(ValueError, "fit recipe"):
            FitRecipe.from_dict({"phases": [{"optimizer": {"name": "rmsprop"}}]})


class FitReuseTest(TestCase):

    def test_fit_traces_once_for_many_signals_and_models(self):
        fit_module._FITTERS.clear()
        task = ImageTask(8)
        model = Siren(width=16, depth=3, seed=0)
        for seed in range(4):
            fit(model, task, _image(seed), steps=3)
        fitters = list(fit_module._FITTERS.values())
        self.assertLen(fitters, 1)
        self.assertEqual(fitters[0].trace_count, 1)
        # Another model of the same architecture (other weights) reuses it, correctly.
        other = Siren(width=16, depth=3, seed=7)
        reused = fit(other, task, _image(9), steps=3)
        self.assertEqual(fitters[0].trace_count, 1)
        fresh = Fitter(other, task, SGD).fit(_image(9), 3)
        self.assertWeightsClose(reused.weights, fresh.weights, atol=0, rtol=0)
        # A different optimizer is a different compiled step.
        fit(model, task, _image(0), steps=2, optimizer=ADAM)
        self.assertLen(fit_module._FITTERS, 2)

    def test_reused_fit_reads_each_models_constants(self):
        # Fourier matrices are non-trainable weights: a fitter built for one model must
        # not fit another with the first one's matrix (a silent wrong result).
        fit_module._FITTERS.clear()
        task = CtTask(8, num_angles=4)
        example = {"image": tf.random.stateless_uniform((8, 8, 1), (3, 4)),
                   "seed": tf.constant([0, 1])}
        make = lambda seed: FourierFeatureMLP(num_features=8, scale=3.0, width=16,  # noqa: E731
                                              hidden_layers=2, seed=seed)
        first, second = make(0), make(1)
        fit(first, task, example, steps=2, optimizer=ADAM)
        reused = fit(second, task, example, steps=2, optimizer=ADAM)
        fresh = Fitter(second, task, ADAM).fit(example, 2)
        np.testing.assert_array_equal(reused.psnr, fresh.psnr)
        self.assertEqual(list(fit_module._FITTERS.values())[0].trace_count, 1)


class RecipeMetadataTest(TestCase):

    def test_recorded_recipe_is_the_default_and_survives_the_metadata_schema(self):
        from learnit_tf import cli, evaluation
        from learnit_tf.core.metadata import InitMetadata, MetadataError
        recipe = FitRecipe((FitPhase(SGD, steps=2, learned_rates=True), FitPhase(ADAM)))
        meta = InitMetadata(hyperparameters=InitMetadata().hyperparameters,
                            fit_recipe=recipe.to_dict())
        data = meta.to_dict()
        self.assertEqual(evaluation.meta_optimizer_from_metadata(data), recipe)
        self.assertEqual(cli.fit_optimizer(data), recipe)
        # An explicit learning rate overrides the recipe with a plain optimizer.
        self.assertEqual(cli.fit_optimizer(data, "adam", 1e-3), ADAM)
        with self.assertRaisesRegex(MetadataError, "fit_recipe"):
            InitMetadata.from_dict(dict(data, fit_recipe=[1, 2]), source="m.json")

    def test_learned_rates_without_recipe_fit_as_trained(self):
        from learnit_tf import evaluation
        data = {"schema_version": 2, "hyperparameters": {
            "inner_optimizer": "sgd", "inner_learning_rate": 0.01,
            "inner_rates": {"granularity": "tensor"}}}
        self.assertEqual(evaluation.meta_optimizer_from_metadata(data),
                         FitRecipe((FitPhase(SGD, learned_rates=True),)))
        # A user's own rate means plain SGD at that rate.
        self.assertEqual(evaluation.meta_optimizer_from_metadata(data, 0.1),
                         InnerOptimizer("sgd", 0.1))

    def test_steps_and_seconds_to_targets(self):
        from learnit_tf import evaluation
        results = {"meta": {"psnr": np.array([[10., 26., 31.], [10., 24., 29.]]),
                            "seconds_per_step": 0.5},
                   "standard": {"psnr": np.array([[10., 11., 12.]]), "seconds_per_step": None}}
        out = evaluation.steps_to_targets(results, (25.0, 30.0))
        self.assertEqual(out["meta"], {"steps": {"25": 1, "30": 2},
                                       "seconds": {"25": 0.5, "30": 1.0}})
        self.assertEqual(out["standard"]["steps"], {"25": None, "30": None})

    def test_select_fit_recipe_keeps_the_inner_steps_and_picks_the_best_score(self):
        from learnit_tf import evaluation
        model, task = Siren(width=16, depth=3, seed=0), ImageTask(8)
        metadata = {"schema_version": 2, "hyperparameters": {
            "inner_steps": 2, "inner_optimizer": "sgd", "inner_learning_rate": 0.01}}
        examples = [_image(s) for s in range(2)]
        best, rows = evaluation.select_fit_recipe(model, metadata, task, examples, steps=20,
                                                  learning_rates=(1e-6, 1e-3))
        self.assertLen(rows, 3)
        self.assertEqual(max(rows, key=lambda r: r["score"])["recipe"], best.name)
        # Adam 1e-3 beats SGD 1e-2 and Adam 1e-6 over 20 steps on these signals.
        self.assertEqual(best, FitRecipe((FitPhase(SGD, steps=2), FitPhase(ADAM))))


class DefaultOptimizerTest(TestCase):

    def test_a_loaded_init_fits_with_its_recorded_recipe_by_default(self):
        import os
        import tempfile
        from learnit_tf.meta import init_io
        from learnit_tf.meta.fit import default_optimizer
        recipe = FitRecipe((FitPhase(SGD, steps=1, learned_rates=True), FitPhase(ADAM)))
        model = Siren(width=8, depth=2, seed=0, inner_rates="layer")
        directory = init_io.save_init(model, os.path.join(tempfile.mkdtemp(), "init"),
                                      {"fit_recipe": recipe.to_dict()})
        loaded = init_io.load_init(directory)
        self.assertEqual(default_optimizer(loaded), recipe)
        self.assertEqual(Fitter(loaded, ImageTask(8)).recipe, recipe)
        # Without a recipe: learned rates if the model has them, else SGD 1e-2.
        self.assertEqual(default_optimizer(model),
                         FitRecipe((FitPhase(SGD, learned_rates=True),)))
        self.assertEqual(default_optimizer(Siren(width=8, depth=2, seed=0)), SGD)


class MomentumWarmupPhaseTest(TestCase):
    """A phase's heavy-ball momentum and linear warm-up (sdf_siren's long-run recipe)."""

    def _manual(self, model, task, example, steps, rate, momentum, warmup):
        weights = [tf.convert_to_tensor(v) for v in model.trainable_variables]
        buffers = [tf.zeros_like(w) for w in weights]
        fmodel = Fitter(model, task).fmodel
        for k in range(steps):
            with tf.GradientTape() as tape:
                tape.watch(weights)
                loss = task.inner_loss(fmodel, weights, example, k)
            grads = tape.gradient(loss, weights)
            buffers = [momentum * b + rate * g for b, g in zip(buffers, grads)]
            scale = min(1.0, (k + 1) / warmup) if warmup else 1.0
            weights = [w - scale * b for w, b in zip(weights, buffers)]
        return weights

    def test_momentum_and_warmup_step_as_written(self):
        model, task, example = Siren(width=16, depth=3, seed=0), ImageTask(8), _image(3)
        phase = FitPhase(SGD, momentum=0.9, warmup_steps=4)
        result = Fitter(model, task, FitRecipe((phase,)), steps_per_call=2).fit(example, 6)
        expected = self._manual(model, task, example, 6, 1e-2, 0.9, 4)
        self.assertWeightsClose(result.weights, expected, atol=1e-6, rtol=1e-5)
        # Ignoring the warm-up (or the momentum) gives other weights.
        for momentum, warmup in ((0.9, 0), (0.0, 4)):
            other = self._manual(model, task, example, 6, 1e-2, momentum, warmup)
            self.assertGreater(max(float(tf.reduce_max(tf.abs(a - b)))
                                   for a, b in zip(result.weights, other)), 1e-4)

    def test_warmup_and_momentum_restart_with_their_phase(self):
        model, task, example = Siren(width=16, depth=3, seed=0), ImageTask(8), _image(4)
        phase = FitPhase(SGD, momentum=0.5, warmup_steps=3)
        recipe = FitRecipe((FitPhase(SGD, steps=2), phase))
        result = Fitter(model, task, recipe, steps_per_call=3).fit(example, 7)
        first = Fitter(model, task, SGD).fit(example, 2)
        rest = Fitter(model, task, FitRecipe((phase,))).fit(example, 5, weights=first.weights)
        self.assertWeightsClose(result.weights, rest.weights, atol=1e-6, rtol=1e-5)
        # Stopping mid-warm-up changes nothing (the phase's step count is carried over).
        stopped = Fitter(model, task, recipe, steps_per_call=3).fit(example, 7, stop_at=[3])
        self.assertWeightsClose(stopped.weights, result.weights, atol=0, rtol=0)

    def test_learned_rates_with_momentum(self):
        model = Siren(width=16, depth=3, seed=0, inner_rates="tensor")
        for i, rate in enumerate(model.inner_learning_rates.rates):
            rate.assign(0.002 * (i + 1))
        task, example = ImageTask(8), _image(5)
        recipe = FitRecipe((FitPhase(SGD, learned_rates=True, momentum=0.8),))
        result = Fitter(model, task, recipe).fit(example, 2)
        weights = [tf.convert_to_tensor(v) for v in model.trainable_variables]
        rates = [0.002 * (i + 1) for i in range(len(weights))]
        fmodel = Fitter(model, task).fmodel
        buffers = [tf.zeros_like(w) for w in weights]
        for k in range(2):
            with tf.GradientTape() as tape:
                tape.watch(weights)
                loss = task.inner_loss(fmodel, weights, example, k)
            grads = tape.gradient(loss, weights)
            buffers = [0.8 * b + r * g for b, r, g in zip(buffers, rates, grads)]
            weights = [w - b for w, b in zip(weights, buffers)]
        self.assertWeightsClose(result.weights, weights, atol=1e-6, rtol=1e-5)

    def test_serialised_validated_and_loaded_without_flags(self):
        import os
        import tempfile
        from learnit_tf.meta import init_io
        from learnit_tf.meta.fit import default_optimizer
        recipe = FitRecipe((FitPhase(SGD, steps=2, learned_rates=True),
                            FitPhase(SGD, learned_rates=True, momentum=0.97, warmup_steps=100)))
        data = recipe.to_dict()
        self.assertEqual(data["phases"][1]["momentum"], 0.97)
        self.assertEqual(data["phases"][1]["warmup_steps"], 100)
        self.assertNotIn("momentum", data["phases"][0])  # Defaults are not written.
        self.assertEqual(FitRecipe.from_dict(data), recipe)
        self.assertEqual(recipe.name, "sgd(learned rates)x2 then "
                                      "sgd(learned rates, momentum 0.97, warm-up 100)")
        model = Siren(width=8, depth=2, seed=0, inner_rates="layer")
        directory = init_io.save_init(model, os.path.join(tempfile.mkdtemp(), "init"),
                                      {"fit_recipe": data})
        self.assertEqual(default_optimizer(init_io.load_init(directory)), recipe)
        bad = [dict(data["phases"][1], momentum=1.0), dict(data["phases"][1], momentum="0.9"),
               dict(data["phases"][1], warmup_steps=-1), dict(data["phases"][1], warmup=5),
               dict(data["phases"][1], learned_rates=False,
                    optimizer={"name": "adam", "learning_rate": 1e-4})]
        for phase in bad:
            with self.assertRaisesRegex(ValueError, "m.json: not a fit recipe"):
                FitRecipe.from_dict({"phases": [phase]}, source="m.json")
        with self.assertRaisesRegex(ValueError, "warmup_steps"):
            FitPhase(ADAM, warmup_steps=2.5)


class RateScaleRestartPhaseTest(TestCase):
    """A phase's rate scale and gradient-restarted momentum (FitPhase.rate_scale,
    FitPhase.momentum_restart), against steps written out by hand."""

    def _manual(self, model, task, example, steps, rate, momentum, restart):
        """(weights, number of restarts) of SGD at `rate` with heavy-ball `momentum`,
        its buffer zeroed before a step whose gradient disagrees with it."""
        weights = [tf.convert_to_tensor(v) for v in model.trainable_variables]
        buffers = [tf.zeros_like(w) for w in weights]
        fmodel = Fitter(model, task).fmodel
        restarts = 0
        for k in range(steps):
            with tf.GradientTape() as tape:
                tape.watch(weights)
                loss = task.inner_loss(fmodel, weights, example, k)
            grads = tape.gradient(loss, weights)
            dot = sum(float(tf.reduce_sum(g * b)) for g, b in zip(grads, buffers))
            if restart and dot < 0:
                buffers = [tf.zeros_like(b) for b in buffers]
                restarts += 1
            buffers = [momentum * b + rate * g for b, g in zip(buffers, grads)]
            weights = [w - b for w, b in zip(weights, buffers)]
        return weights, restarts

    def test_scaled_restarted_momentum_steps_as_written(self):
        model, task, example = Siren(width=16, depth=3, seed=0), ImageTask(8), _image(6)
        phase = FitPhase(SGD, momentum=0.95, rate_scale=3.0, momentum_restart=True)
        # 7 steps: one restart, before the fit at this rate turns chaotic (longer, float32
        # round-off differences between the compiled and the eager steps grow).
        result = Fitter(model, task, FitRecipe((phase,)), steps_per_call=5).fit(example, 7)
        expected, restarts = self._manual(model, task, example, 7, 3e-2, 0.95, True)
        self.assertGreater(restarts, 0)  # The test exercises a restart.
        self.assertWeightsClose(result.weights, expected, atol=1e-5, rtol=1e-5)
        # Without the restart, or without the scale, other weights.
        for rate, restart in ((3e-2, False), (1e-2, True)):
            other, _ = self._manual(model, task, example, 7, rate, 0.95, restart)
            self.assertGreater(max(float(tf.reduce_max(tf.abs(a - b)))
                                   for a, b in zip(result.weights, other)), 1e-4)

    def test_rate_scale_alone_scales_the_step(self):
        model, task, example = Siren(width=16, depth=3, seed=0), ImageTask(8), _image(7)
        scaled = Fitter(model, task, FitRecipe((FitPhase(SGD, rate_scale=2.5),))).fit(example, 3)
        plain = Fitter(model, task, InnerOptimizer("sgd", 2.5e-2)).fit(example, 3)
        self.assertWeightsClose(scaled.weights, plain.weights, atol=1e-6, rtol=1e-5)

    def test_serialised_only_when_set_and_validated(self):
        phase = FitPhase(SGD, learned_rates=True, momentum=0.99, rate_scale=2,
                         momentum_restart=True, warmup_steps=50)
        recipe = FitRecipe((FitPhase(SGD, steps=20, learned_rates=True), phase))
        data = recipe.to_dict()
        self.assertEqual((data["phases"][1]["rate_scale"],
                          data["phases"][1]["momentum_restart"]), (2.0, True))
        self.assertNotIn("rate_scale", data["phases"][0])
        self.assertNotIn("momentum_restart", data["phases"][0])
        self.assertEqual(FitRecipe.from_dict(data), recipe)
        self.assertEqual(recipe.name, "sgd(learned rates)x20 then sgd(learned rates x 2, "
                                      "momentum 0.99 with restarts, warm-up 50)")
        for bad in (dict(data["phases"][1], rate_scale=0), dict(data["phases"][1], rate_scale=True),
                    dict(data["phases"][1], rate_scale=float("inf")),
                    dict(data["phases"][1], momentum_restart="yes"),
                    dict(data["phases"][1], momentum=0.0)):
            with self.assertRaisesRegex(ValueError, "m.json: not a fit recipe"):
                FitRecipe.from_dict({"phases": [bad]}, source="m.json")
        with self.assertRaisesRegex(ValueError, "momentum_restart"):
            FitPhase(SGD, momentum_restart=True)
