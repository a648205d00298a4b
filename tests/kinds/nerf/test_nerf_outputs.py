"""Outputs of the NeRF scripts: the single-view table, turntables, appearance interpolation."""

import csv
import os
import shutil
import subprocess
import sys
import tempfile

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_datasets as tfds
from PIL import Image

from learnit_tf import testing
from learnit_tf.meta import init_io
from learnit_tf.meta import InnerOptimizer
from learnit_tf.models import FunctionalModel, NerfMLP
from learnit_tf.kinds.nerf import cameras, evaluation, phototourism, procedural, rendering, sources
from learnit_tf.kinds.nerf import video
from learnit_tf.kinds.nerf.task import NerfTask

tfds.disable_progress_bar()
REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))
TINY = procedural.ProceduralObjectsConfig(
    name="outputs_tiny", resolution=10, num_views=4, num_support_views=2, num_train=1,
    num_validation=1, num_test=2)


def save_tiny_init(directory, num_samples=8):
    task = NerfTask(num_samples=num_samples, rays_per_step=16, metric_rays=64)
    return init_io.save_init(NerfMLP(width=16, hidden_layers=2, seed=0), directory,
                             {"task": {"class_name": "NerfTask", "config": task.get_config()}})


class OutputsTest(testing.TestCase):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.root = tempfile.mkdtemp(prefix="nerf_outputs_")
        cls.data_dir = os.path.join(cls.root, "tfds")
        cls.init_dir = save_tiny_init(os.path.join(cls.root, "init"))
        procedural.load_builder(TINY, cls.data_dir)

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.root, ignore_errors=True)
        super().tearDownClass()

    def test_single_view_protocol_table(self):
        out = os.path.join(self.root, "eval")
        summary = evaluation.single_view_protocol(
            self.init_dir, out, dataset="procedural_objects", num_examples=2, steps=[3, 0],
            rays_per_step=16, config=TINY, data_dir=self.data_dir, num_held_out_views=1,
            standard_optimizer=InnerOptimizer("sgd", 0.5), verbose=0)
        self.assertEqual([(s["init"], s["step"]) for s in summary],
                         [("meta", 0), ("meta", 3), ("standard", 0), ("standard", 3)])
        with open(os.path.join(out, "single_view_rows.csv")) as f:
            rows = list(csv.DictReader(f))
        self.assertLen(rows, 8)
        meta0 = [float(r["psnr"]) for r in rows if r["init"] == "meta" and r["step"] == "0"]
        self.assertAllClose(summary[0]["psnr_mean"], np.mean(meta0), atol=1e-3)
        # Step 0 of "meta" is the init itself: recompute its held-out PSNR independently.
        ds, _, _ = sources.test_examples("procedural_objects", config=TINY,
                                         data_dir=self.data_dir, num_held_out_views=1)
        example = next(iter(ds))
        fmodel = FunctionalModel(init_io.load_init(self.init_dir))
        out_rgb = rendering.render_rays(fmodel, fmodel.initial_weights(),
                                        example["test_rays_o"], example["test_rays_d"], 2.0,
                                        6.0, 8)["rgb"]
        mse = float(tf.reduce_mean(tf.square(out_rgb - example["test_rgb"])))
        self.assertAllClose(meta0[0], -10 * np.log10(mse), atol=1e-3)
        # The standard init is another network: its step-0 PSNR differs.
        self.assertNotAlmostEqual(summary[0]["psnr_mean"], summary[2]["psnr_mean"], places=3)
        with Image.open(os.path.join(out, "single_view.png")) as im:
            self.assertGreater(im.size[0], 300)
        with open(os.path.join(out, "single_view_table.csv")) as f:
            self.assertEqual(next(csv.reader(f))[:3], ["init", "step", "psnr_mean"])
        self.assertIn("meta", evaluation.format_table(summary))

    def test_dead_standard_inits_are_redrawn(self):
        # With zero biases a deep ReLU MLP's density has one sign nearly everywhere: some
        # seeds start with σ = 0 at every sample (no gradient can revive them).
        ds, _, _ = sources.test_examples("procedural_objects", config=TINY,
                                         data_dir=self.data_dir)
        example = next(iter(ds))
        task = NerfTask(num_samples=16)
        config = NerfMLP(width=128, hidden_layers=5).get_config()
        alive = []
        for seed in range(4):
            fmodel = FunctionalModel(NerfMLP.from_config(dict(config, seed=seed)))
            alive.append(evaluation.density_alive_fraction(fmodel, fmodel.initial_weights(),
                                                           example, task))
        dead = [s for s, a in enumerate(alive) if a < 0.01]
        self.assertNotEmpty(dead, f"alive fractions {alive}")
        model, seed = evaluation.draw_standard_init("NerfMLP", config, dead[0], example, task)
        self.assertGreater(seed, dead[0])
        self.assertGreaterEqual(alive[seed] if seed < 4 else 1.0, 0.01)
        fmodel = FunctionalModel(model)
        self.assertGreaterEqual(evaluation.density_alive_fraction(
            fmodel, fmodel.initial_weights(), example, task), 0.01)

    def test_turntable(self):
        out = os.path.join(self.root, "turntable")
        frames = video.render_object_turntable(
            self.init_dir, out, config=TINY, data_dir=self.data_dir, fit_steps=2, frames=5,
            scale=2, verbose=0)
        self.assertEqual(frames["rgb"].shape, (5, 10, 10, 3))
        with Image.open(os.path.join(out, "turntable.gif")) as gif:
            self.assertEqual(gif.n_frames, 5)
            self.assertEqual(gif.size, (20, 20))
        for name in ("turntable_depth.gif", "frame_000.png", "contact_sheet.png",
                     "input_view.png"):
            self.assertTrue(os.path.isfile(os.path.join(out, name)), name)
        self.assertEqual(oct(os.stat(os.path.join(out, "turntable.gif")).st_mode & 0o777),
                         "0o644")

    def test_render_photo_path_blends_weights_linearly(self):
        # Colour sigmoid(10 w - 5) everywhere, opaque: frame k shows the blended weight.
        def fmodel(weights, points):
            n = tf.shape(points)[0]
            colour = tf.fill((n, 3), 10.0 * tf.cast(weights[0], tf.float32) - 5.0)
            return tf.concat([colour, tf.fill((n, 1), 100.0)], -1)

        renderer = rendering.RayRenderer(fmodel, 8, white_background=False, chunk=16)
        kinv = np.linalg.inv([[5.0, 0, 4], [0, 5.0, 3], [0, 0, 1]])
        a = cameras.look_at_pose((0.0, -4.0, 0.5))
        b = cameras.look_at_pose((4.0, 0.0, 0.5))
        frames = video.render_photo_path(renderer, [np.float32(0.0)], [np.float32(1.0)], a, b,
                                         kinv, 6, 8, (1.0, 5.0), (2.0, 6.0), 5, stride=2)
        self.assertEqual(frames.shape, (5, 3, 4, 3))
        s = np.linspace(0.0, 1.0, 5)
        expected = 1.0 / (1.0 + np.exp(-(10.0 * s - 5.0)))
        self.assertAllClose(frames[:, 0, 0, 0], expected, atol=1e-4)

    def test_appearance_interpolation_on_fake_landmark(self):
        manual = os.path.join(self.root, "photos")
        rng = np.random.default_rng(0)
        folder = os.path.join(manual, "fake", "images")
        os.makedirs(folder, exist_ok=True)
        n, h, w = 26, 6, 8
        for i in range(n):
            Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)).save(
                os.path.join(folder, f"{i:02d}.png"))
        c2w = np.stack([cameras.look_at_pose(rng.normal(size=3) + [0.0, 0.0, 40.0])
                        for _ in range(n)])
        kinv = np.tile(np.linalg.inv([[8.0, 0, w / 2], [0, 8.0, h / 2], [0, 0, 1]]), (n, 1, 1))
        for name, array in (("c2w_mats", c2w), ("kinv_mats", kinv),
                            ("bds", np.tile([30.0, 50.0], (n, 1))),
                            ("res_mats", np.tile([w, h], (n, 1)))):
            np.save(os.path.join(manual, "fake", name + ".npy"), array)
        init_dir = save_tiny_init(os.path.join(self.root, "photo_init"))
        out = os.path.join(self.root, "appearance")
        frames = video.render_appearance_interpolation(
            init_dir, out, [0, 21], manual_dir=manual, data_dir=self.data_dir, fit_steps=2,
            frames=4, downsample=2, verbose=0,
            config=phototourism.PhototourismConfig(name="outputs_fake", landmark="fake"))
        self.assertEqual(frames.shape, (4, 3, 4, 3))
        with Image.open(os.path.join(out, "appearance.gif")) as gif:
            self.assertEqual(gif.n_frames, 4)
        with self.assertRaisesRegex(ValueError, "two image indices"):
            video.render_appearance_interpolation(init_dir, out, [0], manual_dir=manual)


class ScriptsTest(testing.TestCase):
    """scripts/render.py (default) and the evaluate_nerf.py alias (slow) end to end, tiny."""

    def run_script(self, name, *args):
        env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
        result = subprocess.run([sys.executable, os.path.join(REPO, "scripts", name), *args],
                                capture_output=True, text=True, env=env, timeout=600,
                                check=False)
        self.assertEqual(result.returncode, 0, result.stderr[-3000:])
        return result.stdout

    @pytest.mark.slow  # The alias's dispatch runs by default in test_nerf_evaluation.py.
    def test_evaluate_script(self):
        root = self.get_temp_dir()
        init_dir = save_tiny_init(os.path.join(root, "init"))
        stdout = self.run_script("evaluate_nerf.py", f"--init={init_dir}", "--config=tiny",
                                 f"--data_dir={os.path.join(root, 'tfds')}", "--num_examples=1",
                                 "--steps=0,2", "--num_held_out_views=1",
                                 f"--output_dir={root}/eval")
        self.assertIn("standard", stdout)
        self.assertTrue(os.path.isfile(os.path.join(root, "eval", "report.csv")))

    def test_render_script(self):
        root = self.get_temp_dir()
        init_dir = save_tiny_init(os.path.join(root, "init"))
        # The flags docs/README.md shows (--dataset, --config, --fit_steps, --scale).
        self.run_script("render.py", f"--init={init_dir}", "--dataset=procedural_objects",
                        "--config=tiny", f"--data_dir={os.path.join(root, 'tfds')}",
                        "--fit_steps=2", "--frames=3", "--scale=2",
                        f"--output_dir={root}/render")
        with Image.open(os.path.join(root, "render", "turntable.gif")) as gif:
            self.assertEqual(gif.n_frames, 3)
            self.assertEqual(gif.size, (32, 32))  # 16x16 tiny views, upscaled 2x
