"""scripts/cross_class.py end to end with tiny settings (two shipped image inits)."""

import csv
import os
import subprocess
import sys
import tempfile
import unittest

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), os.pardir))


class CrossClassScriptTest(unittest.TestCase):

    def test_two_inits_give_a_two_by_two_table_and_heatmap(self):
        out = tempfile.mkdtemp(prefix="learnit_cross_class_")
        env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
        result = subprocess.run(
            [sys.executable, os.path.join(REPO, "scripts", "cross_class.py"),
             "--inits=text_siren,sdf_siren", "--num_examples=1", "--steps=2",
             f"--data_dir={os.path.join(out, 'tfds')}", f"--output_dir={out}"],
            capture_output=True, text=True, timeout=900, env=env, cwd=REPO)
        self.assertEqual(result.returncode, 0, result.stderr[-3000:])
        self.assertTrue(os.path.isfile(os.path.join(out, "cross_class.png")))
        with open(os.path.join(out, "cross_class.csv")) as f:
            rows = list(csv.reader(f))
        self.assertGreaterEqual(len(rows), 3, rows)  # header + one row per init
        text = "\n".join(",".join(r) for r in rows)
        self.assertIn("text", text)
        self.assertIn("sdf", text)


if __name__ == "__main__":
    unittest.main()
