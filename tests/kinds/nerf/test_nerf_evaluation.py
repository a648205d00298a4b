"""The NeRF single-view protocol as a Report, scripts/evaluate.py on a NeRF init, and the
shipped NeRF init's recorded single-view numbers (slow)."""

import csv
import json
import os
import shutil
import subprocess
import sys
import tempfile
from unittest import mock

import numpy as np
import pytest
import tensorflow_datasets as tfds

from learnit_tf import evaluation, testing
from learnit_tf.meta import init_io
from learnit_tf.kinds.nerf import procedural
from learnit_tf.kinds.nerf import evaluation as nerf_evaluation
from learnit_tf.kinds.nerf import single_view
from learnit_tf.kinds.nerf.evaluation import NerfProtocol
from learnit_tf.kinds.nerf.task import NerfTask
from learnit_tf.meta import InnerOptimizer
from learnit_tf.meta.fit import FitPhase, FitRecipe, Fitter
from learnit_tf.models import FunctionalModel, NerfMLP

tfds.disable_progress_bar()
REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))
TINY = procedural.ProceduralObjectsConfig(
    name="evaluation_tiny", resolution=10, num_views=4, num_support_views=2, num_train=1,
    num_validation=1, num_test=2)


def save_tiny_nerf_init(directory):
    task = NerfTask(num_samples=8, rays_per_step=16, metric_rays=64)
    return init_io.save_init(NerfMLP(width=16, hidden_layers=2, seed=0), directory, {
        "task": {"class_name": "NerfTask", "config": task.get_config()},
        "dataset": {"function": "procedural_objects_examples",
                    "gin_bindings": {"config": "tiny"}},
        "hyperparameters": {"inner_optimizer": "sgd", "inner_learning_rate": 0.5}})


def run_evaluate(script, *args):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    return subprocess.run([sys.executable, os.path.join(REPO, "scripts", script), *args],
                          capture_output=True, text=True, env=env, timeout=1800, check=False)


class NerfProtocolTest(testing.TestCase):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.root = tempfile.mkdtemp(prefix="nerf_evaluation_")
        cls.data_dir = os.path.join(cls.root, "tfds")
        cls.init_dir = save_tiny_nerf_init(os.path.join(cls.root, "init"))
        procedural.load_builder(TINY, cls.data_dir)

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.root, ignore_errors=True)
        super().tearDownClass()

    def test_report_rows_from_per_object_psnrs(self):
        metadata = init_io.read_metadata(self.init_dir)
        protocol = NerfProtocol(num_examples=2, steps="3,0", rays_per_step=16, config=TINY,
                                data_dir=self.data_dir, num_held_out_views=1,
                                standard_optimizer="sgd", standard_learning_rate=0.5,
                                progress=False)
        report = protocol.evaluate(init_io.load_init(self.init_dir), metadata, "tiny")
        self.assertEqual(report.protocol, "nerf_single_view")
        self.assertEqual([(r["init"], r["steps"], r["observations"], r["count"], r["optimizer"])
                          for r in report.rows],
                         [("meta", 0, 1, 2, "sgd"), ("meta", 3, 1, 2, "sgd"),
                          ("standard", 0, 1, 2, "sgd"), ("standard", 3, 1, 2, "sgd")])
        per_object = report.tables["per_example.csv"][1]
        for row in report.rows:
            values = [r["psnr"] for r in per_object
                      if (r["init"], r["step"]) == (row["init"], row["steps"])]
            self.assertAllClose([row["psnr_mean"], row["psnr_std"]],
                                [np.mean(values), np.std(values)])
        # The summary keeps the old single-view table (same means, rounded).
        table = {(s["init"], s["step"]): s["psnr_mean"]
                 for s in report.summary["single_view_table"]}
        for row in report.rows:
            self.assertAlmostEqual(table[(row["init"], row["steps"])], row["psnr_mean"],
                                   places=3)
        self.assertEqual(report.settings["dataset"], "procedural_objects")
        out = os.path.join(self.root, "out")
        report.write(out)
        self.assertEqual(sorted(os.listdir(out)), ["per_example.csv", "report.csv",
                                                   "report.json", "single_view.png"])

    def test_protocol_fits_a_meta_sgd_init_with_its_recipe(self):
        model, _ = NerfFitRecipeTest._model_and_example()
        task = NerfTask(num_samples=8, rays_per_step=16, metric_rays=64)
        init_dir = init_io.save_init(model, os.path.join(self.get_temp_dir(), "init"), {
            "task": {"class_name": "NerfTask", "config": task.get_config()},
            "dataset": {"function": "procedural_objects_examples",
                        "gin_bindings": {"config": "tiny"}},
            "hyperparameters": {"inner_optimizer": "sgd", "inner_learning_rate": 0.5},
            "fit_recipe": NerfFitRecipeTest.RECIPE.to_dict()})
        protocol = NerfProtocol(num_examples=1, steps="0,3", rays_per_step=16, config=TINY,
                                data_dir=self.data_dir, num_held_out_views=1,
                                progress=False)
        metadata = init_io.read_metadata(init_dir)
        report = protocol.evaluate(init_io.load_init(init_dir), metadata, "tiny")
        meta_rows = [r for r in report.rows if r["init"] == "meta"]
        self.assertEqual({r["optimizer"] for r in meta_rows}, {NerfFitRecipeTest.RECIPE.name})
        self.assertEqual(report.settings["meta_optimizer"]["fit_recipe"], NerfFitRecipeTest.RECIPE.to_dict())
        # An explicit learning rate is the plain optimizer (the paper's protocol).
        plain = NerfProtocol(num_examples=1, steps="0", rays_per_step=16, config=TINY,
                             data_dir=self.data_dir, num_held_out_views=1,
                             meta_learning_rate=0.5, progress=False)
        report = plain.evaluate(init_io.load_init(init_dir), metadata, "tiny")
        self.assertEqual(report.settings["meta_optimizer"], {"name": "sgd",
                                                             "learning_rate": 0.5})

    def test_select_fit_recipe_on_validation_objects(self):
        """--select_fit_recipe chooses on the validation split (never the test objects),
        scores each candidate by its held-out-view PSNR at the recipe score steps
        (recomputed here by an independent fit), keeps the best, and the table uses it."""
        metadata = dict(init_io.read_metadata(self.init_dir))
        metadata["hyperparameters"] = dict(metadata["hyperparameters"], inner_steps=2)
        model = init_io.load_init(self.init_dir)
        protocol = NerfProtocol(num_examples=1, steps="0,3", rays_per_step=16, config=TINY,
                                data_dir=self.data_dir, num_held_out_views=1,
                                select_fit_recipe=True, recipe_learning_rates="1e-3,1e-2",
                                recipe_examples=1, progress=False)
        with mock.patch.object(nerf_evaluation.sources, "test_examples",
                               wraps=nerf_evaluation.sources.test_examples) as read:
            report = protocol.evaluate(model, metadata, "tiny")
        self.assertEqual([c.args[1] for c in read.call_args_list], ["validation", "test"])
        selection = report.summary["fit_recipe_selection"]
        self.assertEqual([row["recipe"] for row in selection],
                         ["sgd(0.5)", "sgd(0.5)x2 then adam(0.001)",
                          "sgd(0.5)x2 then adam(0.01)"])
        best = max(selection, key=lambda row: row["score"])
        self.assertEqual(report.summary["fit_recipe"], best["fit_recipe"])
        self.assertEqual(report.row("meta", steps=3)["optimizer"], best["recipe"])
        # The score: mean held-out PSNR at steps 1, 2, 3 of a fit on the validation object.
        ds, near, far = nerf_evaluation.sources.test_examples(
            "procedural_objects", "validation", config=TINY, data_dir=self.data_dir,
            num_held_out_views=1)
        example = nerf_evaluation.take_examples(ds, 1, seed=0)[0]
        task = nerf_evaluation.sources.task_from_metadata(metadata, rays_per_step=16,
                                                          near=near, far=far)
        fmodel = FunctionalModel(model)
        renderer = nerf_evaluation.RayRenderer(fmodel, task.eval_num_samples,
                                               task.white_background, 4096)
        psnrs = []
        Fitter(model, task, FitRecipe.from_dict(selection[1]["fit_recipe"])).fit(
            example, 3, stop_at=[1, 2, 3], on_stop=lambda step, w: psnrs.append(
                nerf_evaluation.held_out_psnr(renderer, w, example, near, far)["psnr"]))
        self.assertAllClose(selection[1]["score"], np.mean(psnrs), atol=1e-3)
        self.assertAllClose(selection[1]["psnr_final"], psnrs[-1], atol=1e-3)
        with self.assertRaisesRegex(ValueError, "--meta_learning_rate"):
            NerfProtocol(select_fit_recipe=True, meta_learning_rate=0.5, config=TINY,
                         data_dir=self.data_dir).evaluate(model, metadata, "tiny")

    def test_posed_views_folder(self):
        """--directory: a folder of the user's objects (ShapeNet layout), test/ split."""
        folder = os.path.join(self.get_temp_dir(), "objects")
        for split, count in (("train", 1), ("test", 2)):
            objects = {f"{split}{i}": procedural.generate_object(0, 0, i, 8, 4)
                       for i in range(count)}
            procedural.write_shapenet_format(os.path.join(folder, split), "", objects,
                                             {"train": list(objects)})
        protocol = NerfProtocol(directory=folder, num_examples=5, steps="0,2",
                                rays_per_step=16, progress=False)
        report = protocol.evaluate(init_io.load_init(self.init_dir),
                                   init_io.read_metadata(self.init_dir), "tiny")
        # Both test objects (fewer than asked for), one support view each.
        self.assertEqual([(r["init"], r["steps"], r["observations"], r["count"])
                          for r in report.rows],
                         [("meta", 0, 1, 2), ("meta", 2, 1, 2), ("standard", 0, 1, 2),
                          ("standard", 2, 1, 2)])
        self.assertEqual(report.settings["dataset"], "posed-views folder")
        self.assertEqual(report.settings["directory"], folder)

    def test_headline_at_the_first_step(self):
        sgd, adam = InnerOptimizer("sgd", 0.5), InnerOptimizer("adam", 5e-4)
        rows = [evaluation.report_row("meta", sgd, 0, [14.0], 1),
                evaluation.report_row("meta", sgd, 100, [16.0], 1),
                evaluation.report_row("standard", adam, 0, [10.0], 1),
                evaluation.report_row("standard", adam, 100, [14.5], 1)]
        report = evaluation.Report("nerf_single_view", "x", rows)
        self.assertEqual(NerfProtocol.headline(report),
                         {"psnr_at": "0 steps, fit on 1 view", "meta_psnr_at_0": 14.0,
                          "standard_psnr_at_0": 10.0, "steps_to_match": 100})
        photo = [dict(r, observations="left half") for r in rows[:3]]
        self.assertEqual(NerfProtocol.headline(evaluation.Report("nerf_single_view", "x",
                                                                 photo)),
                         {"psnr_at": "0 steps, fit on the left half", "meta_psnr_at_0": 14.0,
                          "standard_psnr_at_0": 10.0, "steps_to_match": "> 0"})
        # Through metadata: a recorded report gives the same headline, a legacy (image
        # protocol) evaluation none.
        self.assertEqual(NerfProtocol.headline_from_evaluation(report.to_json()),
                         NerfProtocol.headline(report))
        self.assertEqual(NerfProtocol.headline_from_evaluation({"meta_psnr_at_2": 14.7}), {})

    def test_evaluate_script_on_a_nerf_init(self):
        """scripts/evaluate_nerf.py (an alias of evaluate.py) dispatches to NerfProtocol."""
        out = os.path.join(self.root, "script_out")
        result = run_evaluate("evaluate_nerf.py", f"--init={self.init_dir}",
                              "--dataset=procedural_objects", "--config=tiny",
                              f"--data_dir={self.data_dir}", "--num_examples=1",
                              "--steps=0,2", "--num_held_out_views=1", "--rays_per_step=16",
                              f"--output_dir={out}", "--noprogress")
        self.assertEqual(result.returncode, 0, result.stderr[-3000:])
        self.assertIn("NerfProtocol", result.stdout)
        with open(os.path.join(out, "report.csv")) as f:
            rows = list(csv.DictReader(f))
        self.assertEqual([(r["init"], r["steps"], r["observations"], r["count"]) for r in rows],
                         [("meta", "0", "1", "1"), ("meta", "2", "1", "1"),
                          ("standard", "0", "1", "1"), ("standard", "2", "1", "1")])
        with open(os.path.join(out, "report.json")) as f:
            report = json.load(f)
        self.assertEqual(report["settings"]["config"], "tiny")
        self.assertEqual(report["settings"]["meta_optimizer"],
                         {"name": "sgd", "learning_rate": 0.5})
        self.assertAlmostEqual(report["summary"]["headline"]["meta_psnr_at_0"],
                               float(rows[0]["psnr_mean"]), places=6)


class NerfFitRecipeTest(testing.TestCase):
    """A Meta-SGD NeRF init fits with its recipe and learned rates in the protocol."""

    RECIPE = FitRecipe((FitPhase(InnerOptimizer("sgd", 0.5), steps=2, learned_rates=True),
                        FitPhase(InnerOptimizer("adam", 1e-2))))

    @staticmethod
    def _model_and_example():
        model = NerfMLP(width=16, hidden_layers=2, seed=0, inner_rates="tensor")
        rng = np.random.RandomState(0)
        for rate in model.inner_learning_rates.rates:  # Distinct, so routing shows.
            rate.assign(rng.uniform(0.1, 1.0, rate.shape))
        directions = rng.normal(size=(32, 3)) * [0.2, 0.2, 0.0] + [0.0, 0.0, -1.0]
        example = {"rays_o": np.tile([[0.0, 0.0, 4.0]], (32, 1)).astype(np.float32),
                   "rays_d": directions.astype(np.float32),
                   "rgb": rng.uniform(size=(32, 3)).astype(np.float32),
                   "seed": np.array([3, 0], np.int32)}
        return model, example

    def test_protocol_fits_follow_the_recipe_with_the_models_learned_rates(self):
        """`evaluate_inits` stops the shared Fitter at its checkpoints: the weights it
        measures there are those of one uninterrupted fit, stepped with the init's own
        learned rates (other rates give other weights)."""
        model, example = self._model_and_example()
        task = NerfTask(num_samples=8, rays_per_step=8, metric_rays=16)
        fmodel = FunctionalModel(model)
        seen = []

        def measured(renderer, weights, *args):
            del renderer, args
            seen.append([w.numpy() for w in weights])
            return {"psnr": 0.0, "psnr_all": 0.0, "images": [None], "targets": [None]}

        with mock.patch.object(single_view, "held_out_psnr", measured):
            nerf_evaluation.evaluate_inits(
                fmodel, task, [nerf_evaluation.InitSpec("meta", fmodel.initial_weights(),
                                                        self.RECIPE, model)],
                [example], [0, 1, 5], steps_per_call=3, keep_images=0, verbose=0)
        self.assertLen(seen, 3)
        at = dict(zip([0, 1, 5], seen))
        self.assertAllClose(at[0], [w.numpy() for w in fmodel.initial_weights()])
        expected = Fitter(model, task, self.RECIPE, jit_compile=False).fit(example, 5).weights
        self.assertAllClose(at[5], [w.numpy() for w in expected], atol=1e-5)
        one = Fitter(model, task, self.RECIPE, jit_compile=False).fit(example, 1).weights
        self.assertAllClose(at[1], [w.numpy() for w in one], atol=1e-6)
        # The learned rates are used: other rates give other weights after one step.
        other_model = NerfMLP(width=16, hidden_layers=2, seed=0, inner_rates="tensor")
        for mine, other in zip(model.inner_learning_rates.rates,
                               other_model.inner_learning_rates.rates):
            other.assign(2.0 * mine)
        other = Fitter(model, task, self.RECIPE, jit_compile=False).fit(
            example, 1, weights=fmodel.initial_weights(), model=other_model).weights
        self.assertGreater(max(float(np.abs(a - b.numpy()).max())
                               for a, b in zip(at[1], other)), 1e-6)
        with self.assertRaisesRegex(ValueError, "learned inner rates"):
            Fitter(NerfMLP(width=16, hidden_layers=2, seed=0), task, self.RECIPE)


@pytest.mark.slow
class ShippedNerfInitTest(testing.TestCase):
    """procedural_chairs_nerf@1's zoo headline is reproduced by the single-view protocol
    (version 1: docs/nerf/procedural_objects/ holds its rows)."""

    def test_headline_and_recorded_step_0_psnrs_reproduce(self):
        # Only step 0 is compared: with today's code (before and after the protocol
        # refactor alike) the fits of docs/nerf/procedural_objects/ differ by up to ~0.2 dB
        # from 10 steps on, so that file predates a change in the fitting path.
        root = self.get_temp_dir()
        out = os.path.join(root, "out")
        result = run_evaluate("evaluate.py", "--init=procedural_chairs_nerf@1",
                              f"--output_dir={out}", f"--data_dir={root}/tfds",
                              "--num_examples=10", "--steps=0", "--num_held_out_views=5",
                              "--noprogress")
        self.assertEqual(result.returncode, 0, result.stderr[-3000:])
        with open(os.path.join(out, "per_example.csv")) as f:
            fresh = {(r["init"], int(r["example"])): float(r["psnr"])
                     for r in csv.DictReader(f)}
        with open(os.path.join(REPO, "docs", "nerf", "procedural_objects",
                               "single_view_rows.csv")) as f:
            recorded = {(r["init"], int(r["example"])): float(r["psnr"])
                        for r in csv.DictReader(f) if int(r["step"]) == 0}
        self.assertEqual(sorted(fresh), sorted(recorded))
        for key, value in recorded.items():
            self.assertAlmostEqual(fresh[key], value, delta=1e-3, msg=str(key))
        with open(os.path.join(out, "report.json")) as f:
            headline = json.load(f)["summary"]["headline"]
        with open(os.path.join(REPO, "zoo", "index.json")) as f:
            shipped = json.load(f)["entries"]["procedural_chairs_nerf"]["versions"]["1"][
                "headline"]
        for key in ("meta_psnr_at_0", "standard_psnr_at_0"):
            self.assertAlmostEqual(headline[key], shipped[key], delta=1e-3)


if __name__ == "__main__":
    import tensorflow as tf  # pylint: disable=import-outside-toplevel
    tf.test.main()
