"""Console commands and script shells: quiet start-up, --verbose, one shared flag set."""

import os
import subprocess
import sys
import unittest

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), os.pardir))
NOISE = ("cudart_stub", "cpu_feature_guard", "cuInit", "absl::InitializeLog",
         "Downloading and preparing")


def _run(*args):
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, cwd=REPO,
                          env=env, timeout=300)


class QuietStartupTest(unittest.TestCase):

    def test_commands_hide_tensorflow_start_up_lines(self):
        result = _run(os.path.join("scripts", "zoo.py"), "list")
        self.assertEqual(result.returncode, 0, result.stderr[-2000:])
        self.assertIn("text_siren", result.stdout)
        for pattern in NOISE:
            self.assertNotIn(pattern, result.stderr)

    def test_verbose_is_accepted_by_every_command(self):
        result = _run(os.path.join("scripts", "zoo.py"), "list", "--verbose")
        self.assertEqual(result.returncode, 0, result.stderr[-2000:])
        self.assertIn("text_siren", result.stdout)


if __name__ == "__main__":
    unittest.main()
