"""The three scripts docs/image/resolution.md uses to make emoji_siren@4–@6, run end to end
on tiny inits: scale_first_layer.py (the ×0.7 warm start), average_inits.py (checkpoint
averaging, which did not help) and warm_start_chain.py (the chain in @6's metadata)."""

import json
import os
import subprocess
import sys

import numpy as np

from learnit_tf import testing
from learnit_tf.meta import init_io
from learnit_tf.models import Siren
from learnit_tf.training.warm_start import warm_start_record

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))))
SCRIPTS = os.path.join(REPO, "docs", "image", "resolution")


def _run(script, *args):
    return subprocess.run([sys.executable, os.path.join(SCRIPTS, script), *args],
                          capture_output=True, text=True, timeout=300, check=False,
                          cwd=os.path.dirname(REPO))


def _init(directory, seed, steps, warm_start=None):
    """A tiny SIREN init; one architecture (seed 0) with weights drawn from `seed`, as the
    checkpoints of one run are."""
    metadata = {"steps": steps, "wall_time_seconds": 1.5 * steps, "command": f"train {seed}",
                "hyperparameters": {} if warm_start is None else {"warm_start": warm_start}}
    model = Siren(out_features=3, width=8, depth=2, seed=0)
    rng = np.random.default_rng(seed)
    model.set_weights([rng.normal(size=w.shape).astype(w.dtype) for w in model.get_weights()])
    return init_io.save_init(model, directory, metadata)


class ResolutionDocScriptsTest(testing.TestCase):

    def test_scale_first_layer(self):
        root = self.get_temp_dir()
        parent = _init(os.path.join(root, "parent"), 1, 10)
        out = os.path.join(root, "scaled")
        result = _run("scale_first_layer.py", f"--init={parent}", "--scale=0.5",
                      f"--output_dir={out}")
        self.assertEqual(result.returncode, 0, result.stderr[-2000:])
        before, after = init_io.load_init(parent).get_weights(), init_io.load_init(out).get_weights()
        self.assertAllClose(after[0], 0.5 * before[0])  # The first layer's kernel only.
        for a, b in zip(before[1:], after[1:]):
            self.assertAllClose(a, b)
        self.assertEqual(init_io.read_metadata(out)["first_layer_scale"],
                         {"parent": parent, "scale": 0.5})
        bad = _run("scale_first_layer.py", f"--init={parent}", "--scale=0",
                   f"--output_dir={out}2")
        self.assertNotEqual(bad.returncode, 0)
        self.assertIn("--scale must be > 0", bad.stderr)
        self.assertFalse(os.path.exists(out + "2"))

    def test_average_inits(self):
        root = self.get_temp_dir()
        inits = [_init(os.path.join(root, f"i{k}"), k, 10 * k) for k in (1, 2, 3)]
        out = os.path.join(root, "mean")
        result = _run("average_inits.py", f"--inits={','.join(inits)}", f"--output_dir={out}")
        self.assertEqual(result.returncode, 0, result.stderr[-2000:])
        weights = [init_io.load_init(d).get_weights() for d in inits]
        for i, averaged in enumerate(init_io.load_init(out).get_weights()):
            self.assertAllClose(averaged, np.mean([w[i] for w in weights], axis=0), atol=1e-6)
        self.assertEqual([a["steps"] for a in init_io.read_metadata(out)["averaged_from"]["inits"]],
                         [10, 20, 30])
        self.assertIn("at least two", _run("average_inits.py", f"--inits={inits[0]}",
                                           f"--output_dir={out}2").stderr)
        wide = init_io.save_init(Siren(out_features=3, width=16, depth=2, seed=0),
                                 os.path.join(root, "wide"), {"steps": 1})
        refused = _run("average_inits.py", f"--inits={inits[0]},{wide}", f"--output_dir={out}3")
        self.assertIn("is another architecture", refused.stderr)
        self.assertFalse(os.path.exists(out + "3"))

    def test_warm_start_chain(self):
        root = self.get_temp_dir()
        grandparent = _init(os.path.join(root, "grandparent"), 1, 100)
        parent = _init(os.path.join(root, "parent"), 2, 20, warm_start_record(
            grandparent, init_io.load_init(grandparent), init_io.read_init_metadata(grandparent)))
        child = _init(os.path.join(root, "child"), 3, 5, warm_start_record(
            parent, init_io.load_init(parent), init_io.read_init_metadata(parent)))
        result = _run("warm_start_chain.py", f"--init={child}", f"--parent={parent}",
                      f"--scale_command=scale --output_dir={grandparent}")
        self.assertEqual(result.returncode, 0, result.stderr[-2000:])
        with open(os.path.join(child, "metadata.json")) as f:
            metadata = json.load(f)
        chain = metadata["warm_start_chain"]
        self.assertEqual([a["init"] for a in chain], [parent, grandparent])
        self.assertEqual(chain[0]["version"], parent)
        self.assertEqual(chain[1]["made_by"], f"scale --output_dir={grandparent}")
        self.assertEqual(metadata["total_steps"], 5 + 20 + 100)
        self.assertAlmostEqual(metadata["total_wall_time_seconds"], 1.5 * 125)
        # A parent the chain does not pass through is refused, the metadata left as it was.
        stranger = _init(os.path.join(root, "stranger"), 9, 1)
        bad = _run("warm_start_chain.py", f"--init={child}", f"--parent={stranger}")
        self.assertNotEqual(bad.returncode, 0)
        self.assertIn("do not pass through", bad.stderr)
        with open(os.path.join(child, "metadata.json")) as f:
            self.assertEqual(json.load(f), metadata)

    def test_warm_start_chain_continues_with_the_parents_recorded_chain(self):
        # The parent is a published version whose own ancestors' folders are gone: its
        # recorded warm_start_chain is the rest of the child's (emoji_siren@8 from @7).
        root = self.get_temp_dir()

        def child_of(name, seed, steps, parent):
            return _init(os.path.join(root, name), seed, steps, warm_start_record(
                parent, init_io.load_init(parent), init_io.read_init_metadata(parent)))

        first = _init(os.path.join(root, "first"), 1, 100)
        second = child_of("second", 4, 50, first)
        parent = child_of("parent", 2, 20, second)
        self.assertEqual(_run("warm_start_chain.py", f"--init={parent}",
                              f"--parent={second}").returncode, 0)
        recorded = init_io.read_metadata(parent)["warm_start_chain"]
        self.assertEqual([a["init"] for a in recorded], [second, first])
        child = child_of("child", 3, 5, parent)
        for gone in (first, second):
            os.rename(gone, gone + "_gone")
        result = _run("warm_start_chain.py", f"--init={child}", f"--parent={parent}")
        self.assertEqual(result.returncode, 0, result.stderr[-2000:])
        metadata = init_io.read_metadata(child)
        self.assertEqual([a["init"] for a in metadata["warm_start_chain"]],
                         [parent, second, first])
        self.assertEqual(metadata["warm_start_chain"][1:], recorded)
        self.assertEqual(metadata["total_steps"], 5 + 20 + 50 + 100)
        self.assertAlmostEqual(metadata["total_wall_time_seconds"], 1.5 * 175)

    def test_warm_start_chain_through_the_parents_scaled_copy(self):
        # The run's warm start is the zoo version's own scaled copy (sdf's parent, trained
        # from scratch, with its first layer scaled): the chain is that copy, recorded with
        # the scale command and the version it was scaled from.
        root = self.get_temp_dir()
        parent = _init(os.path.join(root, "parent"), 2, 20)
        scaled = os.path.join(root, "scaled")
        self.assertEqual(_run("scale_first_layer.py", f"--init={parent}", "--scale=0.7",
                              f"--output_dir={scaled}").returncode, 0)
        child = _init(os.path.join(root, "child"), 3, 5, warm_start_record(
            scaled, init_io.load_init(scaled), init_io.read_init_metadata(scaled)))
        command = f"scale --init={parent} --scale=0.7 --output_dir={scaled}"
        result = _run("warm_start_chain.py", f"--init={child}", f"--parent={parent}",
                      f"--scale_command={command}")
        self.assertEqual(result.returncode, 0, result.stderr[-2000:])
        metadata = init_io.read_metadata(child)
        [entry] = metadata["warm_start_chain"]
        self.assertEqual((entry["init"], entry["made_by"], entry["scaled_from"]),
                         (scaled, command, parent))
        self.assertNotIn("version", entry)  # The scaled weights are not the version's.
        self.assertEqual(metadata["total_steps"], 5 + 20)
        self.assertAlmostEqual(metadata["total_wall_time_seconds"], 1.5 * 25)
        # Without the scale command naming that copy, the chain does not reach the parent.
        bad = _run("warm_start_chain.py", f"--init={child}", f"--parent={parent}")
        self.assertIn("do not pass through", bad.stderr)
