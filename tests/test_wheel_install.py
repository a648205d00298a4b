"""The package as a user installs it: a wheel built from this tree, installed outside it.

Builds the wheel (no network: `--no-build-isolation`, no dependencies), installs it
with `pip install --target` into a temporary directory, and from another directory
checks that the installed package (not this checkout) loads and fits every shipped
zoo entry offline and that the console commands run.
"""

import glob
import json
import os
import subprocess
import sys
import tempfile
import unittest

import numpy as np
from PIL import Image

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), os.pardir))

_FIT_EVERY_ENTRY = r"""
import json, sys
import numpy as np
import learnit_tf
from learnit_tf import evaluation, zoo
from learnit_tf.meta import Fitter
assert learnit_tf.__file__.startswith(sys.argv[1]), learnit_tf.__file__
out = {"package": learnit_tf.__file__, "entries": {}}
for row in zoo.list():
    name = row["name"]
    model = zoo.load(name)
    metadata = zoo.describe(name)
    task = evaluation.task_from_metadata(metadata)
    try:
        example = evaluation.held_out_examples(metadata, 1, split="test",
                                               data_dir=sys.argv[2])[0]
    except FileNotFoundError as e:  # Its class's files are not on this machine (emoji).
        out["entries"][name] = {"unavailable": str(e)}
        continue
    result = Fitter(model, task, evaluation.meta_optimizer_from_metadata(metadata)).fit(example, 2)
    out["entries"][name] = [float(v) for v in result.psnr]
print("RESULT " + json.dumps(out))
"""


class WheelInstallTest(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="learnit_wheel_")
        wheels = os.path.join(cls.tmp, "wheels")
        subprocess.run([sys.executable, "-m", "pip", "wheel", REPO, "--no-deps",
                        "--no-build-isolation", "-q", "-w", wheels], check=True, timeout=600,
                       capture_output=True)
        (wheel,) = glob.glob(os.path.join(wheels, "learnit_tf-*.whl"))
        cls.target = os.path.join(cls.tmp, "site")
        subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target",
                        cls.target, wheel], check=True, timeout=600, capture_output=True)
        cls.workdir = os.path.join(cls.tmp, "elsewhere")  # not the checkout
        os.makedirs(cls.workdir)
        cls.env = dict(os.environ, PYTHONPATH=cls.target, TF_CPP_MIN_LOG_LEVEL="2",
                       LEARNIT_TF_CACHE=os.path.join(cls.tmp, "cache"))
        cls.env.pop("LEARNIT_TF_ZOO_INDEX", None)

    def _run(self, args, timeout=900):
        result = subprocess.run(args, cwd=self.workdir, env=self.env, capture_output=True,
                                text=True, timeout=timeout)
        self.assertEqual(result.returncode, 0, f"{args}:\n{result.stderr[-3000:]}")
        return result

    def test_wheel_carries_the_zoo_and_gin_files(self):
        shipped = os.path.join(self.target, "learnit_tf", "_shipped")
        with open(os.path.join(REPO, "zoo", "index.json")) as f:
            index = json.load(f)
        with open(os.path.join(shipped, "zoo", "index.json")) as f:
            self.assertEqual(json.load(f), index)
        self.assertTrue(os.path.isfile(os.path.join(shipped, "gin", "image",
                                                    "text_maml_cpu.gin")))

    def test_installed_package_loads_and_fits_every_shipped_entry(self):
        data_dir = os.path.join(self.tmp, "tfds")
        result = self._run([sys.executable, "-c", _FIT_EVERY_ENTRY, self.target, data_dir])
        line = [l for l in result.stdout.splitlines() if l.startswith("RESULT ")][-1]
        out = json.loads(line[len("RESULT "):])
        with open(os.path.join(REPO, "zoo", "index.json")) as f:
            names = set(json.load(f)["entries"])
        self.assertEqual(set(out["entries"]), names)
        for name, curve in out["entries"].items():
            if isinstance(curve, dict):  # Loaded, but no held-out files here: says why.
                self.assertIn("apt-get install", curve["unavailable"], name)
                continue
            self.assertEqual(len(curve), 3, name)
            self.assertTrue(np.all(np.isfinite(curve)), (name, curve))

    def test_console_commands(self):
        bin_dir = os.path.join(self.target, "bin")
        listing = self._run([os.path.join(bin_dir, "learnit-zoo"), "list"]).stdout
        self.assertIn("text_siren", listing)
        image = os.path.join(self.tmp, "photo.png")
        rng = np.random.default_rng(0)
        Image.fromarray(rng.integers(0, 256, (80, 80, 3), dtype=np.uint8)).save(image)
        out_dir = os.path.join(self.tmp, "fit_out")
        self._run([os.path.join(bin_dir, "learnit-fit"), "--init=text_siren", f"--input={image}",
                   "--steps=2", f"--output_dir={out_dir}"])
        self.assertTrue(os.listdir(out_dir))
        # README's first command, with tiny settings.
        demo = os.path.join(self.tmp, "demo")
        self._run([os.path.join(bin_dir, "learnit-evaluate"), "--init=text_siren",
                   "--num_examples=1", "--meta_steps=2", "--standard_steps=5",
                   f"--data_dir={os.path.join(self.tmp, 'tfds')}", f"--output_dir={demo}"])
        for name in ("report.csv", "report.json", "psnr_curves.png", "reconstructions.png"):
            self.assertTrue(os.path.isfile(os.path.join(demo, name)), name)


if __name__ == "__main__":
    unittest.main()
