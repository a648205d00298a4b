r"""Outer-step time of learnit_tf's MAML / first-order MAML / Reptile vs the authors' JAX step.

Protocol of the paper's image demo: SIREN w0 = 200, width 256, depth 5, a RES×RES grid,
meta-batch 3, K = 2 inner SGD steps at 1e-2, outer Adam 1e-5. For each algorithm it
times learnit_tf's step with XLA and without, and the JAX peer
(../shared/benchmarks/jax_maml_reference.py, run in its own virtualenv), alternating
rounds in one session so that machine noise hits all of them alike. Each figure is
the median over rounds of the per-round median step time; ratios are of medians.

    python benchmarks/meta_step.py --res=64 --rounds=3 \
        --jax_python=~/.venv-jaxref/bin/python

JAX is not a dependency of learnit_tf: install it in a separate virtualenv
(`python -m venv ~/.venv-jaxref && ~/.venv-jaxref/bin/pip install jax optax`).
"""

import os
import re
import statistics
import subprocess
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from absl import app, flags  # noqa: E402

FLAGS = flags.FLAGS
flags.DEFINE_integer("res", 64, "Grid resolution.")
flags.DEFINE_integer("batch", 3, "Meta-batch size.")
flags.DEFINE_integer("inner_steps", 2, "K, inner steps.")
flags.DEFINE_integer("rounds", 3, "Alternating rounds.")
flags.DEFINE_integer("steps_per_round", 5, "Timed steps per round (after warm-up).")
flags.DEFINE_list("algorithms", ["maml", "fomaml", "reptile"], "Algorithms to time.")
flags.DEFINE_bool("no_xla", True, "Also time the non-XLA graph step.")
flags.DEFINE_string("jax_python", os.path.expanduser("~/.venv-jaxref/bin/python"),
                    "Python of the JAX virtualenv ('' to skip the peer).")
flags.DEFINE_string("jax_script", os.path.join(os.path.dirname(__file__), "..", "..", "shared",
                                               "benchmarks", "jax_maml_reference.py"),
                    "Path of the JAX reference script.")


def _learnit_timer(algorithm, jit):
    import numpy as np  # pylint: disable=import-outside-toplevel
    import tensorflow as tf  # pylint: disable=import-outside-toplevel
    from learnit_tf.meta import InnerOptimizer, MetaConfig, MetaTrainer  # pylint: disable=import-outside-toplevel
    from learnit_tf.models import Siren  # pylint: disable=import-outside-toplevel
    from learnit_tf.tasks import ImageTask  # pylint: disable=import-outside-toplevel

    trainer = MetaTrainer(Siren(width=256, depth=5, w0=200.0, seed=0), ImageTask(FLAGS.res),
                          MetaConfig(algorithm, FLAGS.inner_steps, InnerOptimizer("sgd", 1e-2)),
                          outer_learning_rate=1e-5, jit_compile=jit)
    batch = {"image": tf.constant(np.random.RandomState(0).rand(
        FLAGS.batch, FLAGS.res, FLAGS.res, 3).astype("float32"))}
    trainer.train_step(batch)["loss"].numpy()  # Compile.

    def run():
        times = []
        for _ in range(FLAGS.steps_per_round):
            start = time.perf_counter()
            trainer.train_step(batch)["loss"].numpy()
            times.append(time.perf_counter() - start)
        return statistics.median(times)
    return run


def _jax_time(algorithm):
    """Median seconds per step of the JAX peer (it prints ms/step)."""
    if algorithm == "fomaml":
        return None  # The peer implements MAML and Reptile only.
    out = subprocess.run([FLAGS.jax_python, FLAGS.jax_script, str(FLAGS.res), str(FLAGS.batch),
                          str(FLAGS.inner_steps), algorithm],
                         capture_output=True, text=True, check=True).stdout
    match = re.search(r"([0-9.]+) ms/step", out)
    if not match:
        raise RuntimeError(f"Unexpected JAX peer output: {out!r}")
    return float(match.group(1)) / 1e3


def main(argv):
    del argv
    use_jax = bool(FLAGS.jax_python) and os.path.exists(FLAGS.jax_python)
    timers = {}
    for algorithm in FLAGS.algorithms:
        timers[(algorithm, "xla")] = _learnit_timer(algorithm, True)
        if FLAGS.no_xla:
            timers[(algorithm, "graph")] = _learnit_timer(algorithm, False)
    samples = {key: [] for key in timers}
    jax_samples = {a: [] for a in FLAGS.algorithms}
    for r in range(FLAGS.rounds):
        for algorithm in FLAGS.algorithms:
            for key in [k for k in timers if k[0] == algorithm]:
                samples[key].append(timers[key]())
            if use_jax:
                t = _jax_time(algorithm)
                if t is not None:
                    jax_samples[algorithm].append(t)
        print(f"round {r + 1}/{FLAGS.rounds} done", file=sys.stderr)
    print(f"\nSIREN 256x5, {FLAGS.res}x{FLAGS.res} grid, meta-batch {FLAGS.batch}, "
          f"K={FLAGS.inner_steps}; medians of {FLAGS.rounds} alternating rounds "
          f"x {FLAGS.steps_per_round} steps; {os.cpu_count()} CPUs\n")
    print("| algorithm | learnit_tf XLA (ms) | learnit_tf graph mode (ms) | JAX peer (ms) "
          "| JAX / learnit_tf graph | JAX / learnit_tf XLA |")
    print("|---|---|---|---|---|---|")
    for algorithm in FLAGS.algorithms:
        xla = statistics.median(samples[(algorithm, "xla")]) * 1e3
        graph = (statistics.median(samples[(algorithm, "graph")]) * 1e3
                 if (algorithm, "graph") in samples else float("nan"))
        peer = statistics.median(jax_samples[algorithm]) * 1e3 if jax_samples[algorithm] else None
        ratio = f"{peer / xla:.2f}x" if peer else "n/a"
        ratio_graph = f"{peer / graph:.2f}x" if peer and graph == graph else "n/a"
        peer_s = f"{peer:.1f}" if peer else "n/a"
        print(f"| {algorithm} | {xla:.1f} | {graph:.1f} | {peer_s} | {ratio_graph} | {ratio} |")


if __name__ == "__main__":
    app.run(main)
