r"""Test-time use of zoo inits: load + fit a 178×178 image, and CT / NeRF steps per second.

1. What a practitioner waits for: `learnit_tf.zoo.load("text_siren")` (verified
   files, Keras model built), the first 2-step fit of a 178×178 image (tracing and
   graph optimization included), then the same 2-step fit once compiled, and the
   steady fitting speed at 178×178. Also the whole thing in a fresh Python process
   (imports included), as `scripts/fit.py` users see it.
2. Steps per second of the CT (`shepp_logan_ct`) and NeRF (`procedural_chairs_nerf`)
   inits' tasks as shipped: test-time fit steps (the init's inner optimizer) and
   meta-training outer steps (the init's algorithm, K and meta-batch).

Graph mode (the CPU default) and XLA alternate in rounds; figures are medians.

    python benchmarks/fit.py --rounds=3
"""

import os
import statistics
import subprocess
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from absl import app, flags  # noqa: E402

FLAGS = flags.FLAGS
flags.DEFINE_integer("rounds", 3, "Alternating rounds.")
flags.DEFINE_integer("res", 178, "Image resolution of the fitting benchmark.")
flags.DEFINE_integer("fit_steps", 20, "Steps per timed call for steps-per-second figures.")
flags.DEFINE_list("modes", ["graph", "xla"], "Compilation modes to time.")
flags.DEFINE_list("tasks", ["shepp_logan_ct", "procedural_chairs_nerf"],
                  "Zoo entries whose task speed to measure.")

_COLD_SNIPPET = r"""
import time, sys
t0 = time.perf_counter()
import numpy as np, tensorflow as tf
from learnit_tf import zoo
from learnit_tf.meta import Fitter, InnerOptimizer
from learnit_tf.kinds.image import ImageTask
t1 = time.perf_counter()
model = zoo.load("text_siren")
res = int(sys.argv[1])
image = np.random.RandomState(0).rand(res, res, 3).astype("float32")
result = Fitter(model, ImageTask(res), InnerOptimizer("sgd", 1e-2)).fit({"image": image}, 2)
t2 = time.perf_counter()
print(f"COLD {t1 - t0:.3f} {t2 - t1:.3f} {result.psnr[-1]:.2f}")
"""


def _time(fn):
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def _stack(examples):
    import tensorflow as tf  # pylint: disable=import-outside-toplevel
    return tf.nest.map_structure(lambda *xs: tf.stack(xs), *examples)


def _image_timers(mode):
    """Timers for the 178×178 image fit from the text init in one compilation mode."""
    import numpy as np  # pylint: disable=import-outside-toplevel
    from learnit_tf import zoo  # pylint: disable=import-outside-toplevel
    from learnit_tf.meta import Fitter, InnerOptimizer  # pylint: disable=import-outside-toplevel
    from learnit_tf.kinds.image import ImageTask  # pylint: disable=import-outside-toplevel

    res = FLAGS.res
    image = {"image": np.random.RandomState(0).rand(res, res, 3).astype("float32")}
    state = {}

    def first():
        state["model"] = zoo.load("text_siren")
        state["fitter"] = Fitter(state["model"], ImageTask(res), InnerOptimizer("sgd", 1e-2),
                                 jit_compile=mode == "xla")
        state["fitter"].fit(image, 2)

    return {
        "load": lambda: _time(lambda: zoo.load("text_siren")),
        "load + first 2-step fit": lambda: _time(first),
        "2-step fit (compiled)": lambda: _time(lambda: state["fitter"].fit(image, 2)),
        "ms per fit step": lambda: _time(
            lambda: state["fitter"].fit(image, FLAGS.fit_steps)) / FLAGS.fit_steps,
    }


def _task_timers(name, mode):
    """Timers of fit and meta-train steps for a zoo init's own task."""
    from learnit_tf import evaluation, zoo  # pylint: disable=import-outside-toplevel
    from learnit_tf.meta import init_io
    from learnit_tf.meta import (  # pylint: disable=import-outside-toplevel
        Fitter, InnerOptimizer, MetaConfig, MetaTrainer)

    jit = mode == "xla"
    init_dir = zoo.download(name)
    metadata = init_io.read_metadata(init_dir)
    hp = metadata["hyperparameters"]
    task = evaluation.task_from_metadata(metadata)
    batch_size = int(hp.get("meta_batch_size", 3))
    examples = evaluation.held_out_examples(metadata, max(batch_size, 1))
    fitter = Fitter(zoo.load(name), task, evaluation.meta_optimizer_from_metadata(metadata),
                    jit_compile=jit)
    fitter.fit(examples[0], FLAGS.fit_steps)
    # The meta step steps with the inner optimizer it was trained with (a fit recipe is
    # test-time only).
    config = MetaConfig(metadata.get("algorithm", hp.get("algorithm", "maml")),
                        int(hp["inner_steps"]),
                        InnerOptimizer(hp.get("inner_optimizer", "sgd"),
                                       float(hp["inner_learning_rate"])))
    trainer = MetaTrainer(zoo.load(name), task, config, float(hp["outer_learning_rate"]),
                          jit_compile=jit)
    batch = _stack(examples[:batch_size])
    trainer.train_step(batch)["loss"].numpy()

    def meta_steps():
        for _ in range(3):
            trainer.train_step(batch)["loss"].numpy()

    return {
        f"{name}: fit steps/s": lambda: FLAGS.fit_steps / _time(
            lambda: fitter.fit(examples[0], FLAGS.fit_steps)),
        f"{name}: meta-train steps/s ({config.algorithm}, K={config.inner_steps}, "
        f"meta-batch {batch_size})": lambda: 3 / _time(meta_steps),
    }


def _cold_run():
    out = subprocess.run([sys.executable, "-c", _COLD_SNIPPET, str(FLAGS.res)],
                         capture_output=True, text=True, check=True).stdout
    line = [l for l in out.splitlines() if l.startswith("COLD ")][-1]
    imports, rest, psnr = line.split()[1:]
    return float(imports), float(rest), float(psnr)


def main(argv):
    del argv
    started = time.time()
    timers = {}
    for mode in FLAGS.modes:
        for key, fn in _image_timers(mode).items():
            timers[(key, mode)] = fn
        for name in FLAGS.tasks:
            for key, fn in _task_timers(name, mode).items():
                timers[(key, mode)] = fn
    samples = {key: [] for key in timers}
    cold = []
    for r in range(FLAGS.rounds):
        cold.append(_cold_run())
        for key, fn in timers.items():  # Keys are in order: first fit before compiled fits.
            samples[key].append(fn())
        elapsed = time.time() - started
        done = (r + 1) / FLAGS.rounds
        print(f"round {r + 1}/{FLAGS.rounds} done, elapsed {elapsed:.0f} s, "
              f"ETA {elapsed / done - elapsed:.0f} s", file=sys.stderr, flush=True)

    print(f"\n### Zoo init → {FLAGS.res}×{FLAGS.res} image fit (text_siren, SGD 1e-2)\n")
    print("| | " + " | ".join(FLAGS.modes) + " |")
    print("|---|" + "---|" * len(FLAGS.modes))
    keys = list(dict.fromkeys(k for k, _ in timers))
    for key in keys:
        cells = []
        for mode in FLAGS.modes:
            value = statistics.median(samples[(key, mode)])
            cells.append(f"{value:.1f}" if "steps/s" in key else f"{value * 1e3:.0f} ms")
        print(f"| {key} | " + " | ".join(cells) + " |")
    imports = statistics.median(c[0] for c in cold)
    total = statistics.median(c[1] for c in cold)
    print(f"\nFresh process (default mode): imports {imports:.1f} s, then load + 2-step fit "
          f"{total:.1f} s (PSNR after 2 steps {cold[-1][2]:.2f} dB on a random image).")


if __name__ == "__main__":
    app.run(main)
