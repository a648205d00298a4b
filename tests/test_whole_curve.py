"""Ahead at every level: the whole-curve checks, the recipe ranking, and the image protocol's
--recipe_ahead selection (validation data only) and headline (steps to 25/30/35/40 dB)."""

from unittest import mock

import numpy as np
import tensorflow as tf

from learnit_tf import evaluation
from learnit_tf.evaluation import whole_curve
from learnit_tf.evaluation.baselines import standard_init
from learnit_tf.kinds.image import ImageTask
from learnit_tf.kinds.image.evaluation import ImageProtocol
from learnit_tf.meta import FitPhase, FitRecipe, Fitter, InnerOptimizer
from learnit_tf.models import Siren
from learnit_tf.testing import TestCase


def _levels_behind_brute_force(meta, standard, from_step=1):
    """Levels (PSNRs the standard curve reaches at steps >= from_step) that the meta curve
    reaches later than the standard curve, or never: [(level, standard step, meta step)]."""
    out = []
    for s in range(from_step, len(standard)):
        level = standard[s]
        first_std = next(t for t in range(len(standard)) if standard[t] >= level)
        first_meta = next((t for t in range(len(meta)) if meta[t] >= level), None)
        if first_std >= from_step and (first_meta is None or first_meta > first_std):
            out.append((level, first_std, first_meta))
    return out


class CurveChecksTest(TestCase):

    def test_checks_agree_with_a_brute_force_over_levels(self):
        rng = np.random.default_rng(0)
        for trial in range(200):
            n = int(rng.integers(3, 30))
            standard = np.cumsum(rng.random(n))
            meta = standard + rng.normal(0.5, 1.0, n)  # sometimes ahead, sometimes behind
            meta[0] = standard[0] - 5.0  # step 0 does not count (from_step=1)
            behind = _levels_behind_brute_force(meta, standard)
            deficit = whole_curve.level_deficit_db(meta, standard)
            self.assertEqual(deficit == 0.0, not behind, msg=f"trial {trial}")
            record = whole_curve.comparison(meta, standard)
            self.assertEqual(record["ahead_at_every_level"], not behind)
            if behind:
                self.assertEqual(record["first_behind_step"], min(s for _, s, _ in behind))
                # The deficit is the worst gap of the best-so-far curves, by hand.
                worst = max(max(standard[:s + 1]) - max(meta[:s + 1]) for s in range(1, n))
                self.assertAlmostEqual(deficit, worst, places=9)
            else:
                self.assertIsNone(record["first_behind_step"])
            pointwise = max(0.0, max(standard[s] - meta[s] for s in range(1, n)))
            self.assertAlmostEqual(whole_curve.pointwise_deficit_db(meta, standard), pointwise,
                                   places=9)
            # Ahead at every step implies ahead at every level.
            if pointwise == 0.0:
                self.assertFalse(behind)

    def test_a_curve_that_dips_is_ahead_at_every_level_but_not_at_every_step(self):
        meta, standard = [10, 40, 20, 41], [10, 12, 30, 35]
        record = whole_curve.comparison(meta, standard)
        self.assertTrue(record["ahead_at_every_level"])
        self.assertFalse(record["ahead_at_every_step"])
        self.assertEqual(record["pointwise_deficit_db"], 10.0)
        # Flipped: the standard init is ahead from step 1 on.
        flipped = whole_curve.comparison(standard, meta)
        self.assertFalse(flipped["ahead_at_every_level"])
        self.assertEqual(flipped["first_behind_step"], 1)
        self.assertEqual(flipped["level_deficit_db"], 28.0)

    def test_step_zero_is_left_out_unless_asked(self):
        meta, standard = [9.0, 30.0], [10.0, 12.0]
        self.assertEqual(whole_curve.level_deficit_db(meta, standard), 0.0)
        self.assertEqual(whole_curve.level_deficit_db(meta, standard, from_step=0), 1.0)

    def test_steps_to_levels_is_the_first_step_at_or_above(self):
        curve = [10, 24.9, 25.0, 31, 29, 40.5]
        self.assertEqual(whole_curve.steps_to_levels(curve),
                         {"25": 2, "30": 3, "35": 5, "40": 5})
        self.assertEqual(whole_curve.steps_to_levels([10, 20]),
                         {"25": None, "30": None, "35": None, "40": None})

    def test_curves_without_common_steps_are_refused(self):
        with self.assertRaisesRegex(ValueError, "from_step"):
            whole_curve.level_deficit_db([10.0], [11.0])


class RankingTest(TestCase):

    def test_the_best_candidate_by_the_stated_score_computed_independently(self):
        rng = np.random.default_rng(1)
        standard = np.cumsum(rng.random(51)) + 10
        recipes = [FitRecipe((FitPhase(InnerOptimizer("adam", lr)),))
                   for lr in (1e-5, 1e-4, 3e-4, 1e-3, 3e-3)]
        curves = [standard + 20 - np.linspace(0, 30, 51),   # falls behind late (by 10 dB)
                  standard + 0.5,                            # ahead everywhere, low mean
                  standard + 3.0,                            # ahead everywhere, best mean
                  standard + 3.0 - (np.arange(51) == 7) * 4,  # dips 1 dB behind at step 7
                  standard + 50 - np.linspace(0, 60, 51)]   # best mean, behind at the end
        best, rows = whole_curve.best_ahead_recipe(
            [(r, c, standard) for r, c in zip(recipes, curves)])
        # Independently: the score steps are 1, 2, 3, 5, 10, 20, 50 (and the last, 50).
        steps = [1, 2, 3, 5, 10, 20, 50]
        deficits = [max(0.0, max(standard[s] - c[s] for s in range(1, 51))) for c in curves]
        means = [float(np.mean([c[s] for s in steps])) for c in curves]
        expected = min(range(5), key=lambda i: (round(deficits[i], 4), -round(means[i], 4)))
        self.assertEqual(expected, 2)
        self.assertEqual(best, recipes[2])
        for row, deficit, mean in zip(rows, deficits, means):
            self.assertAlmostEqual(row["pointwise_deficit_db"], deficit, places=4)
            self.assertAlmostEqual(row["score"], mean, places=4)
        # The highest mean alone would have picked the one that ends 10 dB behind.
        self.assertEqual(int(np.argmax(means)), 4)

    def test_candidates_keep_the_learned_steps_then_switch_to_adam(self):
        inner = FitRecipe((FitPhase(InnerOptimizer("sgd", 0.01), learned_rates=True),))
        candidates = whole_curve.ahead_candidates(inner, [2, 10], [1e-4, 3e-4], [200])
        self.assertLen(candidates, 1 + 2 * 2 * 2)
        self.assertEqual(candidates[0], inner)
        self.assertEqual(candidates[-1].name, "sgd(learned rates)x10 then adam(0.0003)x200 "
                                              "then adam(3e-05)")
        for recipe in candidates[1:]:
            self.assertTrue(recipe.phases[0].learned_rates)
            self.assertEqual(recipe.phases[1].optimizer.name, "adam")
        with self.assertRaisesRegex(ValueError, "Switch steps"):
            whole_curve.ahead_candidates(inner, [0], [1e-4])


def _images(seed, count, resolution=8):
    return [{"image": tf.random.stateless_uniform((resolution, resolution, 3), (seed, i))}
            for i in range(count)]


class ProtocolTest(TestCase):
    """--select_fit_recipe --recipe_ahead on a tiny SIREN and 8×8 images."""

    def setUp(self):
        super().setUp()
        self.task = ImageTask(8)
        self.model = Siren(out_features=3, width=16, depth=2, seed=0)
        self.metadata = {"signal_class": "tiny",
                         "task": {"class_name": "ImageTask", "config": self.task.get_config()},
                         "hyperparameters": {"inner_optimizer": "sgd",
                                             "inner_learning_rate": 1e-2, "inner_steps": 2}}
        self.splits = {"validation": _images(7, 2), "test": _images(8, 2)}
        self.asked = []

    def _held_out(self, metadata, count, split="test", data_dir=None, seed=12345):
        del metadata, data_dir, seed
        self.asked.append(split)
        return self.splits[split][:count]

    def _mean_curve(self, model, optimizer, examples, steps):
        fitter = Fitter(model, self.task, optimizer)
        return np.mean([fitter.fit(e, steps).psnr for e in examples], axis=0)

    def test_selection_reads_only_validation_and_the_headline_matches_the_curves(self):
        protocol = ImageProtocol(meta_steps=12, standard_steps=12, select_fit_recipe=True,
                                 recipe_ahead=True, recipe_steps=12, recipe_examples=2,
                                 recipe_learning_rates="1e-3,1e-2", recipe_switch_steps="2",
                                 recipe_decay_steps="6", snapshot_examples=0, progress=False)
        with mock.patch.object(evaluation.held_out, "held_out_examples", self._held_out):
            report = protocol.evaluate(self.model, self.metadata, "tiny",
                                       examples=self.splits["test"])
        self.assertEqual(self.asked, ["validation"])
        selection = report.summary["fit_recipe_selection"]
        self.assertEqual(selection["split"], "validation")
        # The standard curve the candidates were ranked against is the standard init's,
        # fitted on the validation images (not the test images).
        adam = InnerOptimizer("adam", 1e-4)
        standard = standard_init(self.model, seed=1)
        on_validation = self._mean_curve(standard, adam, self.splits["validation"], 12)
        on_test = self._mean_curve(standard, adam, self.splits["test"], 12)
        recorded = [selection["standard_curve"][str(s)] for s in (1, 2, 3, 5, 10, 12)]
        self.assertAllClose(recorded, on_validation[[1, 2, 3, 5, 10, 12]], atol=2e-3)
        self.assertGreater(np.abs(on_test - on_validation).max(), 0.1)
        # The chosen recipe is the best of the candidates by the stated rank, recomputed
        # from validation fits made here.
        candidates = whole_curve.ahead_candidates(
            evaluation.meta_optimizer_from_metadata(self.metadata), [2], [1e-3, 1e-2], [6])
        self.assertEqual([r["recipe"] for r in selection["candidates"]],
                         [c.name for c in candidates])
        keys = []
        for candidate in candidates:
            curve = self._mean_curve(self.model, candidate, self.splits["validation"], 12)
            deficit = max(0.0, float(np.max(on_validation[1:] - curve[1:])))
            keys.append((round(deficit, 4), -round(evaluation.recipe_score(curve), 4)))
        chosen = FitRecipe.from_dict(report.summary["fit_recipe"])
        self.assertEqual(chosen, candidates[min(range(len(keys)), key=lambda i: (keys[i], i))])
        # Headline: steps to 25/30/35/40 dB and the whole-curve check, from the curves.
        headline = ImageProtocol.headline(report)
        curves = report.summary["mean_psnr_by_step"]
        self.assertLen(curves["meta"], 13)
        for label in ("meta", "standard"):
            direct = {}
            for level in (25, 30, 35, 40):
                hits = [s for s, v in enumerate(curves[label]) if v >= level]
                direct[str(level)] = hits[0] if hits else None
            self.assertEqual(headline["steps_to_psnr"][label]["steps"], direct)
            self.assertAllClose(curves[label][12],
                                report.row(label, steps=12)["psnr_mean"], atol=1e-3)
        behind = _levels_behind_brute_force(curves["meta"], curves["standard"])
        self.assertEqual(headline["whole_curve"]["ahead_at_every_level"], not behind)
        self.assertEqual(headline["whole_curve"]["steps"], 12)
        self.assertEqual(headline["fit_recipe"], chosen.name)
        self.assertEqual(ImageProtocol.headline_from_evaluation(report.to_json()), headline)

    def test_without_recipe_ahead_the_selection_is_unchanged(self):
        protocol = ImageProtocol(meta_steps=3, standard_steps=3, select_fit_recipe=True,
                                 recipe_steps=3, recipe_examples=1,
                                 recipe_learning_rates="1e-3", snapshot_examples=0,
                                 progress=False)
        with mock.patch.object(evaluation.held_out, "held_out_examples", self._held_out):
            report = protocol.evaluate(self.model, self.metadata, "tiny",
                                       examples=self.splits["test"])
        self.assertEqual(self.asked, ["validation"])
        self.assertNotIn("split", report.summary["fit_recipe_selection"][0])
        self.assertLen(report.summary["fit_recipe_selection"], 2)

    def test_momentum_candidates_are_ranked_and_the_chosen_one_is_what_is_evaluated(self):
        protocol = ImageProtocol(meta_steps=6, standard_steps=6, select_fit_recipe=True,
                                 recipe_ahead=True, recipe_steps=6, recipe_examples=1,
                                 recipe_learning_rates="", recipe_switch_steps="2",
                                 recipe_momenta="0.5,0.9", recipe_warmup_steps="0,3",
                                 snapshot_examples=0, progress=False)
        with mock.patch.object(evaluation.held_out, "held_out_examples", self._held_out):
            report = protocol.evaluate(self.model, self.metadata, "tiny",
                                       examples=self.splits["test"][:1])
        self.assertEqual(self.asked, ["validation"])
        sgd = InnerOptimizer("sgd", 1e-2)
        expected = [FitRecipe((FitPhase(sgd),))] + [
            FitRecipe((FitPhase(sgd, steps=2), FitPhase(sgd, momentum=m, warmup_steps=w)))
            for m in (0.5, 0.9) for w in (0, 3)]
        rows = report.summary["fit_recipe_selection"]["candidates"]
        self.assertEqual([r["recipe"] for r in rows], [r.name for r in expected])
        self.assertEqual([FitRecipe.from_dict(r["fit_recipe"]) for r in rows], expected)
        # The test images are fitted with the chosen recipe, momentum and warm-up included.
        chosen = FitRecipe.from_dict(report.summary["fit_recipe"])
        refit = Fitter(self.model, self.task, chosen).fit(self.splits["test"][0], 6).psnr
        self.assertAllClose(report.summary["mean_psnr_by_step"]["meta"], refit, atol=2e-3)

    def test_recipes_from_a_candidates_file_are_ranked_with_the_others(self):
        import json
        import os
        import tempfile
        sgd = InnerOptimizer("sgd", 1e-2)
        extra = [FitRecipe((FitPhase(sgd, steps=2), FitPhase(sgd, steps=2, momentum=0.9,
                                                             momentum_restart=True),
                            FitPhase(sgd, momentum=0.5, rate_scale=3.0))),
                 FitRecipe((FitPhase(sgd, rate_scale=5.0),))]
        path = os.path.join(tempfile.mkdtemp(), "candidates.json")
        with open(path, "w") as f:
            json.dump([r.to_dict() for r in extra], f)
        protocol = ImageProtocol(meta_steps=6, standard_steps=6, select_fit_recipe=True,
                                 recipe_ahead=True, recipe_steps=6, recipe_examples=1,
                                 recipe_learning_rates="", recipe_switch_steps="2",
                                 recipe_momenta="0.9", recipe_candidates=path,
                                 snapshot_examples=0, progress=False)
        with mock.patch.object(evaluation.held_out, "held_out_examples", self._held_out):
            report = protocol.evaluate(self.model, self.metadata, "tiny",
                                       examples=self.splits["test"][:1])
        self.assertEqual(self.asked, ["validation"])
        expected = [FitRecipe((FitPhase(sgd),)),
                    FitRecipe((FitPhase(sgd, steps=2), FitPhase(sgd, momentum=0.9)))] + extra
        rows = report.summary["fit_recipe_selection"]["candidates"]
        self.assertEqual([FitRecipe.from_dict(r["fit_recipe"]) for r in rows], expected)
        # The rank over all four, recomputed from validation fits made here.
        adam = InnerOptimizer("adam", 1e-4)
        standard = self._mean_curve(standard_init(self.model, seed=1), adam,
                                    self.splits["validation"][:1], 6)
        keys = []
        for candidate in expected:
            curve = self._mean_curve(self.model, candidate, self.splits["validation"][:1], 6)
            deficit = max(0.0, float(np.max(standard[1:] - curve[1:])))
            keys.append((round(deficit, 4), -round(evaluation.recipe_score(curve), 4)))
        chosen = FitRecipe.from_dict(report.summary["fit_recipe"])
        self.assertEqual(chosen, expected[min(range(len(keys)), key=lambda i: (keys[i], i))])
        with open(path, "w") as f:
            json.dump([{"phases": [{"optimizer": {"name": "sgd", "learning_rate": 0.01},
                                    "rate_scale": -1}]}], f)
        with self.assertRaisesRegex(ValueError, "candidates.json entry 0: not a fit recipe"):
            whole_curve.read_candidates(path)
        self.assertEqual(whole_curve.read_candidates(""), [])


def _shipped_whole_curve_versions():
    """(name, version, metadata) of every shipped version whose evaluation recorded the
    full mean curves (`whole_curve.add_whole_curve`)."""
    import json
    import os
    root = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "zoo")
    with open(os.path.join(root, "index.json")) as f:
        entries = json.load(f)["entries"]
    out = []
    for name, entry in sorted(entries.items()):
        for version in sorted(entry["versions"], key=int):
            with open(os.path.join(root, name, version, "metadata.json")) as f:
                metadata = json.load(f)
            summary = (metadata.get("evaluation") or {}).get("summary") or {}
            if "mean_psnr_by_step" in summary:
                out.append((name, version, metadata, entry["versions"][version]))
    return out


class ShippedWholeCurveTest(TestCase):
    """Shipped versions evaluated to the whole curve: what they record is what their
    curves say (recomputed here from the recorded mean curves, no fitting)."""

    def test_recorded_checks_and_steps_to_levels_match_the_recorded_curves(self):
        from learnit_tf import zoo
        for name, version, metadata, record in _shipped_whole_curve_versions():
            with self.subTest(entry=f"{name}@{version}"):
                summary = metadata["evaluation"]["summary"]
                curves = summary["mean_psnr_by_step"]
                # The recorded check compares the steps both curves have.
                common = min(len(curves["meta"]), len(curves["standard"]))
                meta, standard = curves["meta"][:common], curves["standard"][:common]
                behind = _levels_behind_brute_force(meta, standard)
                self.assertEqual(summary["whole_curve"]["ahead_at_every_level"], not behind)
                self.assertEqual(summary["whole_curve"]["steps"], common - 1)
                headline = zoo.headline_from_metadata(metadata)
                self.assertEqual(record["headline"]["whole_curve"], headline["whole_curve"])
                for label, curve in curves.items():
                    direct = {f"{level:g}": next((s for s, v in enumerate(curve) if v >= level),
                                                 None) for level in (25, 30, 35, 40)}
                    self.assertEqual(record["headline"]["steps_to_psnr"][label]["steps"],
                                     direct)

    def test_every_shipped_image_init_with_curves_is_ahead_to_1000_steps(self):
        """Issue 24 item 3: a version that records its whole curve is ahead of the
        standard init at every level, evaluated to >= 1000 steps of both inits.

        The only exceptions are the versions in `NOT_EVALUATED_TO_1000_STEPS`, each with
        the reason it was published without that evaluation; an exception must really
        lack a 1000-step curve (so the list cannot hide a version that was measured and
        found behind), and every other version must pass."""
        for name, version, metadata, _ in _shipped_whole_curve_versions():
            label = f"{name}@{version}"
            with self.subTest(entry=label):
                curves = metadata["evaluation"]["summary"]["mean_psnr_by_step"]
                meta, standard = curves["meta"], curves["standard"]
                evaluated = min(len(meta), len(standard)) - 1
                if label in NOT_EVALUATED_TO_1000_STEPS:
                    self.assertLess(evaluated, 1000, f"{label} is listed as not evaluated "
                                    "to 1000 steps but was: drop it from the list")
                    continue
                behind = _levels_behind_brute_force(meta, standard)
                self.assertTrue(not behind and evaluated >= 1000,
                                f"{label}: evaluated to {len(meta) - 1} meta / "
                                f"{len(standard) - 1} standard steps; behind at levels "
                                f"{behind[:3]}")

    def test_the_exceptions_are_shipped_versions(self):
        shipped = {f"{n}@{v}" for n, v, _, _ in _shipped_whole_curve_versions()}
        self.assertLessEqual(set(NOT_EVALUATED_TO_1000_STEPS), shipped)


#: Shipped image versions published without a 1000-step evaluation (a stated limitation,
#: docs/image/resolution.md "Not done"): the 128²/256² emoji inits were evaluated at those
#: grids to 2 meta / 40 standard steps (a 256² standard step costs 16 of a 64² one); so were
#: the 128²/256² text and SDF inits.
NOT_EVALUATED_TO_1000_STEPS = {
    "emoji_siren@4": "resolution init (128²/256²): evaluated to 40 standard steps",
    "emoji_siren@5": "resolution init (128²/256²): evaluated to 40 standard steps",
    "emoji_siren@6": "resolution init (128²/256²): evaluated to 40 standard steps",
    "text_siren@5": "resolution init (128²/256²): evaluated to 40 standard steps",
    "text_siren@6": "resolution init (128²/256²): evaluated to 40 standard steps",
    "sdf_siren@5": "resolution init (128²/256²): evaluated to 40 standard steps; the "
                   "momentum recipe tried at 128² diverged on 1 of 3 test SDFs "
                   "(docs/image/resolution_sdf.md)",
}
