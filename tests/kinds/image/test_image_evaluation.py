"""The image protocol (PSNR vs steps, reconstructions, baselines) and scripts/evaluate.py on
an image init evaluated on a folder of the user's own images."""

import csv
import json
import os
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from learnit_tf import evaluation, testing, zoo
from learnit_tf.meta import init_io
from learnit_tf.core.output_dir import LOCK_FILE
from learnit_tf.kinds.image import ImageTask
from learnit_tf.kinds.image.evaluation import ImageProtocol
from learnit_tf.models import Siren

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))
RES = 8


def make_image_folder(root, num_train=3, num_test=2, size=12):
    """A folder with train/ and test/ subfolders of random RGB PNGs (`size` pixels square)."""
    rng = np.random.default_rng(0)
    for split, count in (("train", num_train), ("test", num_test)):
        os.makedirs(os.path.join(root, split))
        for i in range(count):
            pixels = (rng.random((size, size, 3)) * 255).astype(np.uint8)
            Image.fromarray(pixels).save(os.path.join(root, split, f"{split}{i}.png"))
    return root


def save_tiny_image_init(directory, folder):
    """A tiny SIREN init whose metadata names ImageTask(8) and the folder's dataset."""
    return init_io.save_init(Siren(out_features=3, width=16, depth=2, seed=0), directory, {
        "signal_class": "my_images",
        "task": {"class_name": "ImageTask", "config": ImageTask(RES).get_config()},
        "dataset": {"function": "image_folder_examples",
                    "gin_bindings": {"directory": folder, "resolution": RES}},
        "hyperparameters": {"inner_optimizer": "sgd", "inner_learning_rate": 1e-2}})


class ImageProtocolTest(testing.TestCase):

    def test_report_with_reconstructions_and_baselines(self):
        root = self.get_temp_dir()
        folder = make_image_folder(os.path.join(root, "images"))
        init_dir = save_tiny_image_init(os.path.join(root, "init"), folder)
        metadata = init_io.read_metadata(init_dir)
        protocol = evaluation.protocol_for(metadata, num_examples=2, meta_steps=2,
                                           standard_steps=3, baselines=True, baseline_steps=1,
                                           init_fit_steps=2, mean_examples=3, progress=False)
        self.assertIsInstance(protocol, ImageProtocol)
        report = protocol.evaluate(init_io.load_init(init_dir), metadata, "tiny")
        self.assertEqual(report.protocol, "image_psnr_vs_steps")
        self.assertEqual([(r["init"], r["steps"], r["count"]) for r in report.rows],
                         [("meta", s, 2) for s in range(3)] + [("standard", s, 2)
                                                               for s in range(4)])
        columns, baseline_rows = report.tables["baselines.csv"]
        self.assertEqual(tuple(columns), evaluation.REPORT_COLUMNS)
        self.assertEqual({(r["init"], r["optimizer"]) for r in baseline_rows if r["steps"] == 1},
                         {(i, o) for i in ("meta", "standard", "mean", "matched", "shuffled")
                          for o in ("sgd", "adam")})
        # The baseline table's meta init with SGD 1e-2 is the protocol's meta init.
        meta_sgd = [r for r in baseline_rows if (r["init"], r["optimizer"], r["steps"])
                    == ("meta", "sgd", 1)][0]
        self.assertAlmostEqual(meta_sgd["psnr_mean"], report.row("meta", steps=1)["psnr_mean"],
                               places=3)
        self.assertAlmostEqual(report.summary["baselines"]["meta/sgd"], meta_sgd["psnr_mean"],
                               places=3)
        out = os.path.join(root, "out")
        report.write(out)
        self.assertEqual(sorted(os.listdir(out)),
                         ["baselines.csv", "baselines.png", "per_example.csv", "psnr_curves.png",
                          "reconstructions.png", "report.csv", "report.json"])
        for name in ("baselines.png", "psnr_curves.png", "reconstructions.png"):
            with Image.open(os.path.join(out, name)) as image:
                self.assertEqual(image.format, "PNG")

    def test_folder_examples_come_from_the_folder_at_the_tasks_resolution(self):
        root = self.get_temp_dir()
        folder = make_image_folder(os.path.join(root, "images"), num_test=1, size=16)
        init_dir = save_tiny_image_init(os.path.join(root, "init"), "/nonexistent")
        metadata = init_io.read_metadata(init_dir)
        # A folder with fewer test images than asked for: the ones there are used.
        protocol = ImageProtocol(directory=folder, num_examples=5, progress=False)
        examples = protocol.held_out(metadata, ImageTask(RES))
        self.assertLen(examples, 1)
        self.assertEqual(tuple(examples[0]["image"].shape), (RES, RES, 3))
        with self.assertRaisesRegex(ValueError, "empty|no|not"):
            ImageProtocol(directory=os.path.join(root, "missing")).held_out(
                metadata, ImageTask(RES))


@pytest.mark.slow
class ShippedImageInitTest(testing.TestCase):

    def test_text_siren_reproduces_its_recorded_2_step_psnrs(self):
        """The protocol's 2-step PSNRs on the 8 held-out images of text_siren@1's metadata."""
        metadata = zoo.describe("text_siren@1")  # Pinned: these are version 1's numbers.
        protocol = ImageProtocol(num_examples=8, meta_steps=2, standard_steps=2,
                                 data_dir=self.get_temp_dir(), progress=False,
                                 snapshot_examples=0)
        report = protocol.evaluate(zoo.load("text_siren@1"), metadata, "text_siren")
        recorded = metadata["evaluation"]
        for init in ("meta", "standard"):
            self.assertAlmostEqual(report.row(init, steps=2)["psnr_mean"],
                                   recorded[f"{init}_psnr_at_2"], delta=1e-3)
            self.assertAlmostEqual(report.row(init, steps=0)["psnr_mean"],
                                   recorded["psnr_curve"][init]["0"], delta=1e-3)


class EvaluateScriptTest(testing.TestCase):
    """scripts/evaluate.py on an image init and a folder of images, end to end."""

    def run_script(self, *args, expect_ok=True):
        env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
        result = subprocess.run([sys.executable, os.path.join(REPO, "scripts", "evaluate.py"),
                                 *args], capture_output=True, text=True, env=env, timeout=600,
                                check=False)
        if expect_ok:
            self.assertEqual(result.returncode, 0, result.stderr[-3000:])
        return result

    def test_image_init_on_a_folder(self):
        root = self.get_temp_dir()
        folder = make_image_folder(os.path.join(root, "images"))
        init_dir = save_tiny_image_init(os.path.join(root, "init"), "/nonexistent")
        out = os.path.join(root, "out")
        result = self.run_script(f"--init={init_dir}", f"--output_dir={out}",
                                 f"--image_folder={folder}", "--num_examples=2",
                                 "--meta_steps=2", "--standard_steps=3", "--noprogress",
                                 "--write_metadata")
        self.assertIn("ImageProtocol", result.stdout)
        with open(os.path.join(out, "report.csv")) as f:
            rows = list(csv.DictReader(f))
        self.assertEqual([(r["init"], r["steps"], r["count"]) for r in rows],
                         [("meta", str(s), "2") for s in range(3)]
                         + [("standard", str(s), "2") for s in range(4)])
        with open(os.path.join(out, "report.json")) as f:
            report = json.load(f)
        self.assertEqual(report["settings"]["directory"], folder)
        headline = report["summary"]["headline"]
        self.assertAlmostEqual(headline["meta_psnr_at_2"], float(rows[2]["psnr_mean"]), places=4)
        # The command's output-folder lock (learnit_tf.output_dir) is not an output.
        outputs = sorted(n for n in os.listdir(out) if n != LOCK_FILE)
        self.assertEqual(outputs, ["per_example.csv", "psnr_curves.png", "reconstructions.png",
                                   "report.csv", "report.json"])
        # --write_metadata stored the report; the zoo's headline of the init is its headline.
        metadata = init_io.read_metadata(init_dir)
        self.assertEqual(metadata["evaluation"]["protocol"], "image_psnr_vs_steps")
        self.assertEqual(metadata["signal_class"], "my_images")  # the rest is kept
        self.assertEqual(zoo.headline_from_metadata(metadata)["meta_psnr_at_2"],
                         headline["meta_psnr_at_2"])
        # A flag of another kind's protocol is refused, naming it; nothing is written.
        bad = self.run_script(f"--init={init_dir}", f"--output_dir={root}/bad", "--views=1,2",
                              f"--directory={folder}", expect_ok=False)
        self.assertNotEqual(bad.returncode, 0)
        self.assertIn("--views", bad.stderr)
        self.assertIn("image inits", bad.stderr)
        self.assertFalse(os.path.exists(os.path.join(root, "bad")))


if __name__ == "__main__":
    import tensorflow as tf  # pylint: disable=import-outside-toplevel
    tf.test.main()
