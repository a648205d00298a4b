"""3D shapes end to end through the commands: meta_train.py on procedural_shapes (the
documented CPU gin file with tiny bindings), evaluate.py (IoU report, Chamfer column,
pictures) and fit.py on a mesh (fitted network, surface.ply, surface.png); a
non-watertight mesh is refused by fit.py naming the file; the gin files parse.

Tiny settings (256 points, an 8^3 IoU grid, a 32-wide SIREN, 4 outer steps) so each
command runs in seconds of compute.
"""

import csv
import json
import os
import subprocess
import sys

import gin
import numpy as np
import trimesh

from learnit_tf import gin_config, testing
from learnit_tf.meta import init_io

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))
TINY = ["procedural_shapes_examples.config = 'small'", "ShapeSdfTask.num_points = 256",
        "ShapeSdfTask.grid_resolution = 8", "ShapeSdfTask.num_surface = 128",
        "Siren.width = 32", "Siren.depth = 3", "meta_train.meta_batch_size = 2",
        "meta_train.num_steps = 4", "meta_train.checkpoint_every = 4",
        "meta_train.eval_every = 4", "meta_train.num_eval_examples = 2",
        "meta_train.show_progress = False"]


def _run(script, *args):
    return subprocess.run([sys.executable, os.path.join(REPO, "scripts", script), *args],
                          capture_output=True, text=True, timeout=900, cwd=REPO,
                          env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2"))


class ShapeCommandsTest(testing.TestCase):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.root = os.path.join(os.environ.get("TEST_TMPDIR", "/tmp"),
                                f"shape3d_e2e_{os.getpid()}")
        cls.data_dir = os.path.join(cls.root, "tfds")
        cls.model_dir = os.path.join(cls.root, "run")
        cls.train = _run("meta_train.py",
                         "--gin_file=gin/shape3d/procedural_shapes_maml_cpu.gin",
                         f"--model_dir={cls.model_dir}",
                         f"--gin_bindings=procedural_shapes_examples.data_dir = '{cls.data_dir}'",
                         *[f"--gin_bindings={b}" for b in TINY])
        cls.init_dir = os.path.join(cls.model_dir, "init")

    def test_meta_train_records_the_task_and_class(self):
        self.assertEqual(self.train.returncode, 0, self.train.stderr[-3000:])
        metadata = init_io.read_metadata(self.init_dir)
        self.assertEqual(metadata["task"]["class_name"], "ShapeSdfTask")
        self.assertEqual(metadata["task"]["config"]["num_points"], 256)
        self.assertEqual(metadata["dataset"]["function"], "procedural_shapes_examples")
        self.assertIn("held-out IoU", self.train.stdout)

    def test_evaluate_reports_iou_and_chamfer(self):
        self.assertEqual(self.train.returncode, 0, self.train.stderr[-3000:])
        out = os.path.join(self.get_temp_dir(), "eval")
        result = _run("evaluate.py", f"--init={self.init_dir}", f"--output_dir={out}",
                      f"--data_dir={self.data_dir}", "--num_examples=2", "--meta_steps=2",
                      "--standard_steps=3", "--chamfer_resolution=16",
                      "--snapshot_examples=1", "--noprogress", "--write_metadata")
        self.assertEqual(result.returncode, 0, result.stderr[-3000:])
        with open(os.path.join(out, "report.csv")) as f:
            rows = list(csv.DictReader(f))
        self.assertEqual([(r["init"], r["steps"]) for r in rows],
                         [("meta", str(s)) for s in range(3)]
                         + [("standard", str(s)) for s in range(4)])
        ious = [float(r["iou_mean"]) for r in rows]
        self.assertTrue(all(0.0 <= v <= 1.0 for v in ious), ious)
        with open(os.path.join(out, "report.json")) as f:
            report = json.load(f)
        self.assertEqual(report["protocol"], "shape_iou_vs_steps")
        summary = report["summary"]
        self.assertAlmostEqual(summary["meta_iou_at_2"], float(rows[2]["iou_mean"]), places=6)
        self.assertGreater(summary["target_grid_chamfer"], 0.0)
        with open(os.path.join(out, "per_step.csv")) as f:
            per_step = list(csv.DictReader(f))
        self.assertEqual(len(per_step), 2 * (3 + 4))  # 2 shapes × kept steps of both inits.
        self.assertIn("chamfer", per_step[0])
        for name in ("iou_curves.png", "reconstructions.png"):
            self.assertIn(name, os.listdir(out))
        # --write_metadata: the init records the report, whose headline is the IoU one.
        recorded = init_io.read_metadata(self.init_dir)["evaluation"]
        self.assertEqual(recorded["protocol"], "shape_iou_vs_steps")
        self.assertEqual(recorded["summary"]["headline"]["iou_at"], "2 steps")

    def test_evaluate_on_a_folder_of_meshes(self):
        self.assertEqual(self.train.returncode, 0, self.train.stderr[-3000:])
        folder = os.path.join(self.get_temp_dir(), "meshes")
        for split, radii in (("train", (0.5,)), ("test", (0.4, 0.7))):
            os.makedirs(os.path.join(folder, split))
            for i, radius in enumerate(radii):
                trimesh.creation.icosphere(2, radius=radius).export(
                    os.path.join(folder, split, f"sphere{i}.off"))
        out = os.path.join(self.get_temp_dir(), "eval_folder")
        result = _run("evaluate.py", f"--init={self.init_dir}", f"--directory={folder}",
                      f"--output_dir={out}", "--num_examples=2", "--meta_steps=1",
                      "--standard_steps=1", "--chamfer_resolution=16",
                      "--snapshot_examples=0", "--noprogress")
        self.assertEqual(result.returncode, 0, result.stderr[-3000:])
        with open(os.path.join(out, "report.json")) as f:
            report = json.load(f)
        # Both test spheres were read (normalized alike: the same shape twice).
        self.assertEqual(report["summary"]["num_examples"], 2)
        self.assertEqual([r["count"] for r in report["rows"]], [2] * 4)

    def test_fit_a_mesh_writes_network_surface_and_picture(self):
        self.assertEqual(self.train.returncode, 0, self.train.stderr[-3000:])
        folder = self.get_temp_dir()
        box = os.path.join(folder, "model.obj")
        trimesh.creation.box(extents=(1.0, 0.6, 0.4)).export(box)
        fit_dir = os.path.join(folder, "fit")
        result = _run("fit.py", f"--init={self.init_dir}", f"--input={box}", "--steps=3",
                      "--near_surface_std=0.01", f"--output_dir={fit_dir}")
        self.assertEqual(result.returncode, 0, result.stderr[-3000:])
        with open(os.path.join(fit_dir, "curve.csv")) as f:
            curve = list(csv.DictReader(f))
        self.assertEqual([r["step"] for r in curve], ["0", "1", "2", "3"])
        outputs = os.listdir(fit_dir)
        for name in ("fitted", "reconstruction.png", "surface.png"):
            self.assertIn(name, outputs)
        if "surface.ply" in outputs:  # A 4-step init may have no zero level set yet.
            surface = trimesh.load(os.path.join(fit_dir, "surface.ply"))
            self.assertGreater(len(surface.faces), 0)
            self.assertLessEqual(float(np.abs(surface.vertices).max()), 1.0 + 1e-6)

    def test_fit_refuses_an_open_mesh_naming_it(self):
        self.assertEqual(self.train.returncode, 0, self.train.stderr[-3000:])
        folder = self.get_temp_dir()
        box = trimesh.creation.box()
        box.update_faces(np.arange(len(box.faces)) != 0)
        path = os.path.join(folder, "open_box.obj")
        box.export(path)
        result = _run("fit.py", f"--init={self.init_dir}", f"--input={path}", "--steps=1",
                      f"--output_dir={os.path.join(folder, 'fit')}")
        self.assertNotEqual(result.returncode, 0)
        self.assertIn("open_box.obj", result.stderr)
        self.assertIn("not watertight", result.stderr)


class GinFilesTest(testing.TestCase):

    def test_gin_files_parse(self):
        for name, width, grid in (("procedural_shapes_maml_cpu.gin", 128, 32),
                                  ("procedural_shapes_maml.gin", 256, 64)):
            gin.clear_config()
            try:
                gin_config.parse_config([os.path.join(REPO, "gin", "shape3d", name)])
                self.assertEqual(gin.query_parameter("Siren.width"), width)
                self.assertEqual(gin.query_parameter("Siren.in_features"), 3)
                self.assertEqual(gin.query_parameter("Siren.output_offset"), 0.0)
                self.assertEqual(gin.query_parameter("ShapeSdfTask.grid_resolution"), grid)
            finally:
                gin.clear_config()
