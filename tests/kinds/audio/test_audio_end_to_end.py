"""Audio end to end through the scripts: meta_train.py on a WAV folder (the documented gin
file, one binding), evaluate.py and fit.py on that init (the fit must raise the tone's PSNR by a margin); the
procedural gin files parse.

Tiny settings (256-sample clips, a 16-wide SIREN, 2 outer steps) so each script runs in
seconds of compute.
"""

import csv
import json
import os
import subprocess
import sys
import wave

import gin
import numpy as np

from learnit_tf import testing
from learnit_tf.meta import init_io
from learnit_tf.training import gin_config

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))
TINY = ["NUM_SAMPLES = 256", "SAMPLE_RATE = 2000", "Siren.width = 16", "Siren.depth = 3",
        "meta_train.meta_batch_size = 2", "meta_train.num_steps = 2",
        "meta_train.checkpoint_every = 2", "meta_train.eval_every = 2",
        "meta_train.show_progress = False"]


def _write_tone(path, frequency, rate=2000, n=400):
    samples = 0.5 * np.sin(2 * np.pi * frequency * np.arange(n) / rate)
    with wave.open(path, "wb") as f:
        f.setnchannels(1)
        f.setsampwidth(2)
        f.setframerate(rate)
        f.writeframes(np.round(samples * 32767).astype("<i2").tobytes())
    return path


def _run(script, *args):
    return subprocess.run([sys.executable, os.path.join(REPO, "scripts", script), *args],
                          capture_output=True, text=True, timeout=600, cwd=REPO,
                          env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2"))


class AudioScriptsTest(testing.TestCase):

    def test_folder_meta_train_evaluate_and_fit(self):
        root = self.get_temp_dir()
        folder = os.path.join(root, "wavs")
        os.makedirs(folder)
        for i in range(5):
            _write_tone(os.path.join(folder, f"tone{i}.wav"), 110.0 * (i + 1))
        model_dir = os.path.join(root, "run")
        result = _run("meta_train.py", "--gin_file=gin/audio/folder_maml_cpu.gin",
                      f"--model_dir={model_dir}",
                      f"--gin_bindings=audio_folder_examples.directory = '{folder}'",
                      *[f"--gin_bindings={b}" for b in TINY])
        self.assertEqual(result.returncode, 0, result.stderr[-3000:])
        init_dir = os.path.join(model_dir, "init")
        metadata = init_io.read_metadata(init_dir)
        self.assertEqual(metadata["task"]["class_name"], "AudioTask")
        self.assertEqual(metadata["task"]["config"]["num_samples"], 256)
        self.assertEqual(metadata["dataset"]["function"], "audio_folder_examples")

        out = os.path.join(root, "eval")
        result = _run("evaluate.py", f"--init={init_dir}", f"--output_dir={out}",
                      f"--directory={folder}", "--num_examples=1", "--meta_steps=2",
                      "--standard_steps=3", "--snapshot_examples=1", "--noprogress")
        self.assertEqual(result.returncode, 0, result.stderr[-3000:])
        self.assertIn("AudioProtocol", result.stdout)
        with open(os.path.join(out, "report.csv")) as f:
            rows = list(csv.DictReader(f))
        self.assertEqual([(r["init"], r["steps"]) for r in rows],
                         [("meta", str(s)) for s in range(3)]
                         + [("standard", str(s)) for s in range(4)])
        self.assertTrue(all(np.isfinite(float(r["psnr_mean"])) for r in rows))
        with open(os.path.join(out, "report.json")) as f:
            report = json.load(f)
        self.assertEqual(report["protocol"], "audio_psnr_vs_steps")
        self.assertIn("reconstructions.png", os.listdir(out))

        fit_dir = os.path.join(root, "fit")
        result = _run("fit.py", f"--init={init_dir}", f"--input={folder}/tone2.wav",
                      "--steps=20", "--optimizer=adam", "--learning_rate=1e-3",
                      f"--output_dir={fit_dir}")
        self.assertEqual(result.returncode, 0, result.stderr[-3000:])
        with open(os.path.join(fit_dir, "curve.csv")) as f:
            curve = list(csv.DictReader(f))
        self.assertEqual([r["step"] for r in curve], [str(s) for s in range(21)])
        # The fit learns the tone: 20 Adam 1e-3 steps raise its PSNR by > 1.5 dB (measured
        # +2.8 to +4.7 dB from three seeds of this SIREN; a fit that does not move the
        # weights, or scores the wrong signal, stays at ~15.07 dB, the silent prediction).
        psnr = [float(r["psnr"]) for r in curve]
        self.assertGreater(psnr[-1], psnr[0] + 1.5)
        self.assertGreater(psnr[-1], max(psnr[:5]))
        self.assertIn("reconstruction.png", os.listdir(fit_dir))

    def test_procedural_gin_files_parse(self):
        for name, samples, w0 in (("procedural_maml_cpu.gin", 4096, 300.0),
                                  ("procedural_maml.gin", 16384, 600.0)):
            gin.clear_config()
            try:
                gin_config.parse_config([os.path.join(REPO, "gin", "audio", name)])
                self.assertEqual(gin.query_parameter("NUM_SAMPLES/macro.value"), samples)
                self.assertEqual(gin.query_parameter("Siren.w0"), w0)
                self.assertEqual(gin.query_parameter("Siren.in_features"), 1)
                self.assertEqual(gin.query_parameter("Siren.output_offset"), 0.0)
            finally:
                gin.clear_config()
