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
            table = {(r["init"], r["tested_on"]): float(r["psnr_mean"])
                     for r in csv.DictReader(f)}
        # Every cell equals a direct computation: the row's init fitted with its own
        # optimizer on the column class's first held-out signal (data the script
        # generated), the standard row a seed-1 standard init with Adam 1e-4.
        from learnit_tf import evaluation, zoo  # pylint: disable=import-outside-toplevel
        from learnit_tf.evaluation.baselines import standard_init  # pylint: disable=import-outside-toplevel
        from learnit_tf.meta import Fitter, InnerOptimizer  # pylint: disable=import-outside-toplevel
        metadata = {n: zoo.describe(n) for n in ("text_siren", "sdf_siren")}
        classes = {n: m["signal_class"] for n, m in metadata.items()}
        task = evaluation.task_from_metadata(metadata["text_siren"])
        examples = {classes[n]: evaluation.held_out_examples(
            m, 1, "test", os.path.join(out, "tfds"))[0] for n, m in metadata.items()}
        inits = {f"{classes[n]} ({n})": (zoo.load(n),
                                         evaluation.meta_optimizer_from_metadata(m))
                 for n, m in metadata.items()}
        inits["standard (adam 1e-4)"] = (standard_init(zoo.load("text_siren"), seed=1),
                                         InnerOptimizer("adam", 1e-4))
        self.assertEqual(set(table), {(i, c) for i in inits for c in examples})
        for label, (model, optimizer) in inits.items():
            fitter = Fitter(model, task, optimizer)
            for cls, example in examples.items():
                self.assertAlmostEqual(table[(label, cls)], fitter.fit(example, 2).psnr[-1],
                                       delta=1e-3, msg=(label, cls))
        # Each init is best on its own class (README's cross-class table): a table with
        # its axes swapped would fail here.
        for name, cls in classes.items():
            own = table[(f"{cls} ({name})", cls)]
            for label in inits:
                if label != f"{cls} ({name})":
                    self.assertGreater(own, table[(label, cls)] + 1.0, (name, label))

if __name__ == "__main__":
    unittest.main()
