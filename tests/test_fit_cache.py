"""FitCache: an evaluation's finished fits kept on disk, reused only when everything that
decides them is the same, so an interrupted evaluation resumes."""

import dataclasses
import json
import os
import subprocess
import sys
from unittest import mock

import numpy as np

from learnit_tf import evaluation, testing
from learnit_tf.evaluation import fit_cache as fit_cache_module
from learnit_tf.evaluation.fit_cache import FitCache, FitCacheError
from learnit_tf.kinds.image import ImageTask
from learnit_tf.kinds.image.evaluation import ImageProtocol
from learnit_tf.meta import FitPhase, FitRecipe, Fitter, InnerOptimizer, init_io
from learnit_tf.models import Siren

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _examples(count, side=8, seed=0):
    rng = np.random.default_rng(seed)
    return [{"image": rng.random((side, side, 3)).astype(np.float32)} for _ in range(count)]


def _model(seed=0, **kwargs):
    model = Siren(out_features=3, width=8, depth=2, seed=seed, **kwargs)
    model(np.zeros((1, 2), np.float32))
    return model


class _CountingFits:
    """Patches Fitter.fit to count the fits really run."""

    def __enter__(self):
        self.count = 0
        real = Fitter.fit

        def counted(fitter, *args, **kwargs):
            self.count += 1
            return real(fitter, *args, **kwargs)
        self._patch = mock.patch.object(Fitter, "fit", counted)
        self._patch.start()
        return self

    def __exit__(self, *exc):
        self._patch.stop()


class FitCacheTest(testing.TestCase):

    def setUp(self):
        super().setUp()
        self.cache = FitCache(os.path.join(self.get_temp_dir(), "cache"))
        self.task = ImageTask(8)

    def _compare(self, examples, model=None, optimizer=None, progress=None):
        model = model or _model()
        inits = {"meta": (model, optimizer or InnerOptimizer("sgd", 1e-2), 4),
                 "standard": (_model(seed=1), InnerOptimizer("adam", 1e-4), 6)}
        return evaluation.compare_inits(inits, self.task, examples, None,
                                        snapshot_steps=(0, 2), snapshot_examples=1,
                                        progress=progress, fit_cache=self.cache)

    def test_a_second_run_fits_nothing_and_returns_the_same_curves(self):
        examples = _examples(2)
        with _CountingFits() as fits:
            first = self._compare(examples)
        self.assertEqual(fits.count, 4)
        self.assertLen(os.listdir(self.cache.directory), 4)
        with _CountingFits() as fits:
            second = self._compare(examples)
        self.assertEqual(fits.count, 0)
        for label in ("meta", "standard"):
            np.testing.assert_array_equal(first[label]["psnr"], second[label]["psnr"])
            self.assertEqual(sorted(second[label]["snapshots"][0]), [0, 2])
            for a, b in zip(first[label]["snapshots"][0][2], second[label]["snapshots"][0][2]):
                np.testing.assert_array_equal(np.asarray(a), b)
        # And equal to fitting without a cache at all (the cache changes nothing).
        inits = {"meta": (_model(), InnerOptimizer("sgd", 1e-2), 4)}
        plain = evaluation.compare_inits(inits, self.task, examples, None)
        np.testing.assert_array_equal(plain["meta"]["psnr"], second["meta"]["psnr"])

    def test_an_interrupted_run_resumes_after_its_last_finished_fit(self):
        examples = _examples(3)

        def stop_after_two(label, index, result):
            if (label, index) == ("meta", 1):
                raise KeyboardInterrupt
        with _CountingFits() as fits:
            with self.assertRaises(KeyboardInterrupt):
                self._compare(examples, progress=stop_after_two)
        self.assertEqual(fits.count, 2)
        with _CountingFits() as fits:
            resumed = self._compare(examples)
        self.assertEqual(fits.count, 4)  # meta's third example and 3 standard fits.
        with _CountingFits() as fits:
            fresh = FitCache(os.path.join(self.get_temp_dir(), "other"))
            inits = {"meta": (_model(), InnerOptimizer("sgd", 1e-2), 4)}
            uncached = evaluation.compare_inits(inits, self.task, examples, None,
                                                snapshot_steps=(0, 2), snapshot_examples=1,
                                                fit_cache=fresh)
        np.testing.assert_array_equal(uncached["meta"]["psnr"], resumed["meta"]["psnr"])

    def test_the_key_changes_with_everything_that_decides_a_fit(self):
        model, example = _model(), _examples(1)[0]
        sgd = InnerOptimizer("sgd", 1e-2)
        base = self.cache.key(model, sgd, self.task, example, 4)
        self.assertEqual(base, self.cache.key(_model(), sgd, self.task, example, 4))
        self.assertEqual(base, self.cache.key(model, FitRecipe.of(sgd), self.task, example, 4))
        nudged = _model()
        kernel = nudged.weights[-1]
        kernel.assign(kernel.numpy() + np.float32(1e-7) * (kernel.numpy() == kernel.numpy()))
        changed_example = {"image": example["image"].copy()}
        changed_example["image"][3, 5, 1] += 1e-3
        others = {
            "one weight nudged": self.cache.key(nudged, sgd, self.task, example, 4),
            "another seed": self.cache.key(_model(seed=2), sgd, self.task, example, 4),
            "another w0 (config only)": self.cache.key(_model(w0=31.0), sgd, self.task,
                                                       example, 4),
            "learning rate": self.cache.key(model, InnerOptimizer("sgd", 2e-2), self.task,
                                            example, 4),
            "a recipe phase": self.cache.key(model, FitRecipe([FitPhase(sgd, steps=2),
                                                               FitPhase(sgd)]),
                                             self.task, example, 4),
            "task resolution": self.cache.key(model, sgd, ImageTask(9), example, 4),
            "one pixel": self.cache.key(model, sgd, self.task, changed_example, 4),
            "steps": self.cache.key(model, sgd, self.task, example, 5),
            "snapshots": self.cache.key(model, sgd, self.task, example, 4, (0, 2)),
            "jit": self.cache.key(model, sgd, self.task, example, 4, jit_compile=True),
        }
        for what, key in others.items():
            self.assertNotEqual(key, base, what)
        self.assertLen(set(others.values()), len(others))

    def test_a_file_that_is_not_its_fit_is_refused_by_name(self):
        examples = _examples(1)
        self._compare(examples)
        names = sorted(os.listdir(self.cache.directory))
        first, second = (os.path.join(self.cache.directory, n) for n in names[:2])
        with open(first, "rb") as f:
            good = f.read()
        with open(second, "wb") as f:  # Another fit's file under this name.
            f.write(good)
        with self.assertRaisesRegex(FitCacheError, f"{second}.*does not hold the fit"):
            self._compare(examples)
        os.remove(second)  # As the message says: that fit is done again.
        with open(first, "wb") as f:
            f.write(good[:100])  # Truncated.
        with self.assertRaisesRegex(FitCacheError, f"{first}.*not a readable fit"):
            self._compare(examples)

    def test_a_file_in_place_of_the_directory_is_refused(self):
        path = os.path.join(self.get_temp_dir(), "file")
        open(path, "w").close()
        with self.assertRaisesRegex(ValueError, "not a directory"):
            FitCache(path)

    def test_evaluate_command_resumes_from_its_cache(self):
        """`learnit-evaluate --select_fit_recipe --recipe_ahead --fit_cache_dir` (the
        command of docs/image/ahead.md): a second run writes the same report, selection
        included, and no new cache file."""
        root = self.get_temp_dir()
        init = init_io.save_init(_model(), os.path.join(root, "init"), {
            "signal_class": "text_images",
            "task": {"class_name": "ImageTask", "config": ImageTask(32).get_config()},
            "dataset": {"function": "text_images_examples", "bindings": {"config": "small"}},
            "hyperparameters": {"inner_optimizer": "sgd", "inner_learning_rate": 1e-2}})
        cache = os.path.join(root, "fits")
        reports = []
        for run in range(2):
            out = os.path.join(root, f"report{run}")
            result = subprocess.run(
                [sys.executable, os.path.join(REPO, "scripts", "evaluate.py"), f"--init={init}",
                 f"--output_dir={out}", "--num_examples=2", "--meta_steps=3",
                 "--standard_steps=5", "--snapshot_examples=1", "--progress=false",
                 "--select_fit_recipe", "--recipe_ahead", "--recipe_steps=3",
                 "--recipe_examples=1", "--recipe_learning_rates=1e-3",
                 "--recipe_switch_steps=1",
                 f"--fit_cache_dir={cache}", f"--data_dir={os.path.join(root, 'tfds')}"],
                capture_output=True, text=True, timeout=600, check=False)
            self.assertEqual(result.returncode, 0, result.stderr[-2000:])
            if run == 0:
                files = sorted(os.listdir(cache))
                # 2 test signals × 2 inits, and 1 validation signal × (standard init +
                # 2 candidates).
                self.assertLen(files, 4 + 3)
            with open(os.path.join(out, "report.json")) as f:
                reports.append(json.load(f))
        self.assertEqual(sorted(os.listdir(cache)), files)
        self.assertEqual(reports[0]["rows"], reports[1]["rows"])
        for key in ("psnr_curve", "fit_recipe", "fit_recipe_selection"):
            self.assertEqual(reports[0]["summary"][key], reports[1]["summary"][key], key)
        self.assertLen(reports[0]["summary"]["fit_recipe_selection"]["candidates"], 2)


class SelectionCacheTest(testing.TestCase):
    """--select_fit_recipe (--recipe_ahead or not) with --fit_cache_dir: the standard
    init's and every candidate's validation fits go through the cache."""

    def setUp(self):
        super().setUp()
        self.task = ImageTask(8)
        self.metadata = {"signal_class": "tiny",
                         "task": {"class_name": "ImageTask", "config": self.task.get_config()},
                         "hyperparameters": {"inner_optimizer": "sgd",
                                             "inner_learning_rate": 1e-2, "inner_steps": 2}}
        self.validation = _examples(2, seed=7)
        self.cache_dir = os.path.join(self.get_temp_dir(), "fits")

    def _select(self, cache=True, ahead=True, examples=None, **options):
        """(chosen FitRecipe, selection record) of `choose_fit_recipe` on the validation
        examples (held_out_examples is asked for the validation split only)."""
        settings = dict(select_fit_recipe=True, recipe_ahead=ahead, recipe_steps=5,
                        recipe_examples=2, recipe_learning_rates="1e-3",
                        recipe_switch_steps="2", progress=False,
                        fit_cache_dir=self.cache_dir if cache else "")
        settings.update(options)
        protocol = ImageProtocol(**settings)
        examples = self.validation if examples is None else examples

        def held_out(metadata, count, split="test", data_dir=None, seed=12345):
            del metadata, data_dir, seed
            self.assertEqual(split, "validation")
            return examples[:count]
        with mock.patch.object(evaluation.held_out, "held_out_examples", held_out):
            return protocol.choose_fit_recipe(_model(), self.metadata, self.task)

    def test_a_selection_run_twice_fits_nothing_the_second_time(self):
        # 2 candidates (the init's recipe; 2 learned steps then Adam 1e-3) and, with
        # --recipe_ahead, the standard init, on 2 validation signals.
        for ahead, fits_per_run in ((True, 6), (False, 4)):
            with self.subTest(recipe_ahead=ahead):
                self.cache_dir = os.path.join(self.get_temp_dir(), f"fits_{ahead}")
                with _CountingFits() as fits:
                    first = self._select(ahead=ahead)
                self.assertEqual(fits.count, fits_per_run)
                self.assertLen(os.listdir(self.cache_dir), fits_per_run)
                with _CountingFits() as fits:
                    second = self._select(ahead=ahead)
                self.assertEqual(fits.count, 0)
                with _CountingFits() as fits:
                    uncached = self._select(cache=False, ahead=ahead)
                self.assertEqual(fits.count, fits_per_run)
                # The same choice and the same record, cached or not.
                self.assertEqual(first, second)
                self.assertEqual(first, uncached)
        # The candidates' fits are the same fits with or without --recipe_ahead.
        with _CountingFits() as fits:
            self._select(ahead=True)
        self.assertEqual(fits.count, 2)  # Only the standard init's.

    def test_one_protocol_hashes_the_package_source_once(self):
        """The selection's and the evaluation's fits of one run share one FitCache, so
        they are keyed by the source as it was when the run first used the cache."""
        with mock.patch.object(fit_cache_module, "_code_fingerprint",
                               wraps=fit_cache_module._code_fingerprint) as fingerprint:
            protocol = ImageProtocol(fit_cache_dir=self.cache_dir, progress=False)
            first = protocol.fit_cache()
            self.assertIs(protocol.fit_cache(), first)
            self.assertEqual(fingerprint.call_count, 1)
            other = os.path.join(self.get_temp_dir(), "other_fits")
            protocol.options = dataclasses.replace(protocol.options, fit_cache_dir=other)
            self.assertEqual(protocol.fit_cache().directory, other)
            self.assertEqual(fingerprint.call_count, 2)
        self.assertIsNone(ImageProtocol(progress=False).fit_cache())

    def test_an_interrupted_selection_resumes_after_its_last_finished_fit(self):
        real = Fitter.fit
        done = []

        def interrupted(fitter, *args, **kwargs):
            if len(done) == 4:
                raise KeyboardInterrupt
            done.append(1)
            return real(fitter, *args, **kwargs)
        with mock.patch.object(Fitter, "fit", interrupted):
            with self.assertRaises(KeyboardInterrupt):
                self._select()
        self.assertLen(os.listdir(self.cache_dir), 4)
        with _CountingFits() as fits:
            resumed = self._select()
        self.assertEqual(fits.count, 2)  # Only the last candidate's fits.
        self.assertEqual(resumed, self._select(cache=False))

    def test_what_changes_a_fit_refits_it(self):
        self._select()
        changes = {  # change: fits it redoes (of 6)
            "recipe steps": (dict(recipe_steps=6), 6),
            "another candidate (Adam rate)": (dict(recipe_learning_rates="3e-3"), 2),
            "another standard init (seed)": (dict(standard_seed=2), 2),
            "other validation signals": (dict(examples=_examples(2, seed=8)), 6),
            "one signal fewer": (dict(recipe_examples=1), 0),
        }
        for what, (options, refits) in changes.items():
            with self.subTest(what):
                with _CountingFits() as fits:
                    self._select(**options)
                self.assertEqual(fits.count, refits)
        with mock.patch.object(fit_cache_module, "_code_fingerprint", lambda: "edited"):
            with _CountingFits() as fits:
                self._select()
        self.assertEqual(fits.count, 6)  # Another package source: nothing is reused.
