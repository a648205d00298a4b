r"""Outer-step time and achieved FLOP/s of learnit_tf's meta-learners vs the authors' JAX step.

Protocol of the paper's image demo: SIREN w0 = 200, width 256, depth 5, a RES×RES grid,
meta-batch 3, K = 2 inner SGD steps at 1e-2, outer Adam 1e-5. For each algorithm it
times, alternating rounds in one session so that machine noise hits all alike:

- `graph`: learnit_tf's default on CPU (graph mode, first forward pass shared),
- `graph, unshared`: the same without sharing the first forward pass (the
  optimization's before/after),
- `xla`: `jit_compile=True`,
- the JAX peer (../shared/benchmarks/jax_maml_reference.py in its own virtualenv),
- a 2048×2048×2048 float32 `tf.matmul` (graph mode): the machine's matmul peak.

Each figure is the median over rounds of the per-round median step time; ratios are
of medians. FLOPs are the step's matmul FLOPs counted from its traced graph
(`learnit_tf.training.profiling.matmul_flops`; the JAX peer does the unshared step's).

    python benchmarks/meta_step.py --res=64,178 --rounds=3 --steps_per_round=3

JAX is not a dependency of learnit_tf: install it in a separate virtualenv
(`python -m venv ~/.venv-jaxref && ~/.venv-jaxref/bin/pip install jax optax`).
"""

import os
import platform
import re
import statistics
import subprocess
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from absl import app, flags  # noqa: E402

FLAGS = flags.FLAGS
flags.DEFINE_list("res", ["64"], "Grid resolutions (one table each).")
flags.DEFINE_integer("batch", 3, "Meta-batch size.")
flags.DEFINE_integer("inner_steps", 2, "K, inner steps.")
flags.DEFINE_integer("rounds", 3, "Alternating rounds.")
flags.DEFINE_integer("steps_per_round", 3, "Timed steps per round (after warm-up).")
flags.DEFINE_list("algorithms", ["maml", "fomaml", "reptile"], "Algorithms to time.")
flags.DEFINE_list("variants", ["graph", "graph_unshared", "xla"],
                  "learnit_tf variants: graph, graph_unshared, xla.")
flags.DEFINE_string("jax_python", os.path.expanduser("~/.venv-jaxref/bin/python"),
                    "Python of the JAX virtualenv ('' to skip the peer).")
flags.DEFINE_string("jax_script", os.path.join(os.path.dirname(__file__), "..", "..", "shared",
                                               "benchmarks", "jax_maml_reference.py"),
                    "Path of the JAX reference script.")
flags.DEFINE_integer("peak_size", 2048, "Side of the square matmul that measures the peak.")

VARIANT_TITLES = {"graph": "graph (default)", "graph_unshared": "graph, unshared first forward",
                  "xla": "XLA"}


def _median_timer(fn, steps):
    def run():
        times = []
        for _ in range(steps):
            start = time.perf_counter()
            fn()
            times.append(time.perf_counter() - start)
        return statistics.median(times)
    return run


def _learnit_timer(algorithm, variant, res):
    """(timer, matmul FLOPs per step) of one learnit_tf configuration."""
    import numpy as np  # pylint: disable=import-outside-toplevel
    import tensorflow as tf  # pylint: disable=import-outside-toplevel
    from learnit_tf.meta import InnerOptimizer, MetaConfig, MetaTrainer  # pylint: disable=import-outside-toplevel
    from learnit_tf.models import Siren  # pylint: disable=import-outside-toplevel
    from learnit_tf.training.profiling import matmul_flops  # pylint: disable=import-outside-toplevel
    from learnit_tf.kinds.image import ImageTask  # pylint: disable=import-outside-toplevel

    config = MetaConfig(algorithm, FLAGS.inner_steps, InnerOptimizer("sgd", 1e-2),
                        share_first_forward=variant != "graph_unshared")
    trainer = MetaTrainer(Siren(width=256, depth=5, w0=200.0, seed=0), ImageTask(res), config,
                          outer_learning_rate=1e-5, jit_compile=variant == "xla")
    batch = {"image": tf.constant(np.random.RandomState(0).rand(
        FLAGS.batch, res, res, 3).astype("float32"))}
    flops = matmul_flops(trainer._step.get_concrete_function(batch))  # pylint: disable=protected-access
    trainer.train_step(batch)["loss"].numpy()  # Compile.
    return _median_timer(lambda: trainer.train_step(batch)["loss"].numpy(),
                         FLAGS.steps_per_round), flops


def _peak_timer():
    import tensorflow as tf  # pylint: disable=import-outside-toplevel
    n = FLAGS.peak_size
    a = tf.random.stateless_uniform((n, n), (0, 1))
    b = tf.random.stateless_uniform((n, n), (0, 2))
    matmul = tf.function(lambda x, y: tf.reduce_sum(tf.matmul(x, y)))
    matmul(a, b).numpy()
    return _median_timer(lambda: matmul(a, b).numpy(), 5), 2 * n**3


def _jax_time(algorithm, res):
    """Median seconds per step of the JAX peer (it prints ms/step)."""
    if algorithm == "fomaml":
        return None  # The peer implements MAML and Reptile only.
    out = subprocess.run([FLAGS.jax_python, FLAGS.jax_script, str(res), str(FLAGS.batch),
                          str(FLAGS.inner_steps), algorithm],
                         capture_output=True, text=True, check=True).stdout
    match = re.search(r"([0-9.]+) ms/step", out)
    if not match:
        raise RuntimeError(f"Unexpected JAX peer output: {out!r}")
    return float(match.group(1)) / 1e3


def _machine():
    import tensorflow as tf  # pylint: disable=import-outside-toplevel
    model = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            names = [line.split(":", 1)[1].strip() for line in f if line.startswith("model name")]
        model = names[0] if names else model
    except OSError:
        pass
    return f"{os.cpu_count()} CPUs ({model}), TensorFlow {tf.__version__}"


def _run_resolution(res, use_jax, started, total_res, index):
    timers, flops = {}, {}
    for algorithm in FLAGS.algorithms:
        for variant in FLAGS.variants:
            timers[(algorithm, variant)], flops[(algorithm, variant)] = _learnit_timer(
                algorithm, variant, res)
    peak_timer, peak_flops = _peak_timer()
    samples = {key: [] for key in timers}
    jax_samples = {a: [] for a in FLAGS.algorithms}
    peak_samples = []
    for r in range(FLAGS.rounds):
        peak_samples.append(peak_timer())
        for algorithm in FLAGS.algorithms:
            for variant in FLAGS.variants:
                samples[(algorithm, variant)].append(timers[(algorithm, variant)]())
            if use_jax:
                t = _jax_time(algorithm, res)
                if t is not None:
                    jax_samples[algorithm].append(t)
        done = (index * FLAGS.rounds + r + 1) / (total_res * FLAGS.rounds)
        elapsed = time.time() - started
        print(f"res {res}: round {r + 1}/{FLAGS.rounds} done, elapsed {elapsed:.0f} s, "
              f"ETA {elapsed / done - elapsed:.0f} s", file=sys.stderr, flush=True)

    peak = peak_flops / statistics.median(peak_samples)
    print(f"\n### {res}×{res} grid\n")
    print(f"SIREN 256x5, meta-batch {FLAGS.batch}, K={FLAGS.inner_steps}; medians of "
          f"{FLAGS.rounds} alternating rounds x {FLAGS.steps_per_round} steps; "
          f"{_machine()}; matmul peak ({FLAGS.peak_size}^3 float32, graph mode) "
          f"{peak / 1e9:.1f} GFLOP/s\n")
    print("| algorithm | variant | ms/step | matmul GFLOP/step | GFLOP/s | % of matmul peak "
          "| JAX peer / this |")
    print("|---|---|---|---|---|---|---|")
    for algorithm in FLAGS.algorithms:
        peer = statistics.median(jax_samples[algorithm]) if jax_samples[algorithm] else None
        for variant in FLAGS.variants:
            t = statistics.median(samples[(algorithm, variant)])
            f = flops[(algorithm, variant)]
            ratio = f"{peer / t:.2f}×" if peer else "n/a"
            print(f"| {algorithm} | {VARIANT_TITLES[variant]} | {t * 1e3:.1f} | {f / 1e9:.2f} "
                  f"| {f / t / 1e9:.1f} | {100 * f / t / peak:.0f}% | {ratio} |")
        if peer:
            unshared = flops.get((algorithm, "graph_unshared"))
            achieved = (f"{unshared / peer / 1e9:.1f} | {100 * unshared / peer / peak:.0f}%"
                        if unshared else "n/a | n/a")
            gflop = f"{unshared / 1e9:.2f}" if unshared else "n/a"
            print(f"| {algorithm} | JAX peer (XLA) | {peer * 1e3:.1f} | {gflop} | {achieved} "
                  "| 1.00× |")
    sys.stdout.flush()


def main(argv):
    del argv
    use_jax = bool(FLAGS.jax_python) and os.path.exists(FLAGS.jax_python)
    if not use_jax:
        print(f"JAX peer not found at {FLAGS.jax_python!r}: timing learnit_tf only.",
              file=sys.stderr)
    unknown = set(FLAGS.variants) - set(VARIANT_TITLES)
    if unknown:
        raise app.UsageError(f"--variants: unknown {sorted(unknown)}; expected {list(VARIANT_TITLES)}")
    started = time.time()
    resolutions = [int(r) for r in FLAGS.res]
    for i, res in enumerate(resolutions):
        _run_resolution(res, use_jax, started, len(resolutions), i)


if __name__ == "__main__":
    app.run(main)
