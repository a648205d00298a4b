r"""Peak memory of one outer step against the number of inner steps K.

For MAML (with and without `remat`), first-order MAML and Reptile (each with and
without the shared first forward pass), on the paper's image protocol (SIREN 256×5,
w0 = 200, meta-batch 3, RES×RES grid), it reports the peak of TensorFlow's CPU
allocator during a compiled outer step, above what was allocated before the step
(weights, optimizer slots, the batch): i.e. the step's working memory. It is read
with `tf.config.experimental.reset_memory_stats` / `get_memory_info("CPU:0")` and
covers every tensor the step allocates (oneDNN scratch buffers excluded). Memory is
deterministic here, so one step after warm-up is measured (the max over `--steps`).

    python benchmarks/memory.py --res=64 --ks=1,2,4,8,12
"""

import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# CPU allocator statistics (get_memory_info) need the BFC allocator on every CPU.
os.environ.setdefault("TF_CPU_ALLOCATOR_USE_BFC", "true")

from absl import app, flags  # noqa: E402

FLAGS = flags.FLAGS
flags.DEFINE_integer("res", 64, "Grid resolution.")
flags.DEFINE_integer("batch", 3, "Meta-batch size.")
flags.DEFINE_list("ks", ["1", "2", "4", "8", "12"], "Inner steps K.")
flags.DEFINE_integer("steps", 2, "Measured steps per configuration (after one warm-up).")
flags.DEFINE_enum("mode", "graph", ["graph", "xla"], "Compilation mode.")
flags.DEFINE_list("rows", ["maml", "maml+remat", "fomaml", "fomaml/unshared", "reptile",
                           "reptile/unshared"], "Configurations.")

MIB = 2.0**20


def _measure(row, k):
    """(peak MiB above the pre-step allocation, seconds per step)."""
    import numpy as np  # pylint: disable=import-outside-toplevel
    import tensorflow as tf  # pylint: disable=import-outside-toplevel
    from learnit_tf.meta import InnerOptimizer, MetaConfig, MetaTrainer  # pylint: disable=import-outside-toplevel
    from learnit_tf.models import Siren  # pylint: disable=import-outside-toplevel
    from learnit_tf.kinds.image import ImageTask  # pylint: disable=import-outside-toplevel

    algorithm = row.split("+")[0].split("/")[0]
    config = MetaConfig(algorithm, k, InnerOptimizer("sgd", 1e-2), remat=row.endswith("+remat"),
                        share_first_forward=not row.endswith("/unshared"))
    trainer = MetaTrainer(Siren(width=256, depth=5, w0=200.0, seed=0), ImageTask(FLAGS.res),
                          config, outer_learning_rate=1e-5, jit_compile=FLAGS.mode == "xla")
    batch = {"image": tf.constant(np.random.RandomState(0).rand(
        FLAGS.batch, FLAGS.res, FLAGS.res, 3).astype("float32"))}
    trainer.train_step(batch)["loss"].numpy()  # Trace, optimize, compile.
    peaks, times = [], []
    for _ in range(FLAGS.steps):
        tf.config.experimental.reset_memory_stats("CPU:0")
        before = tf.config.experimental.get_memory_info("CPU:0")["current"]
        start = time.perf_counter()
        trainer.train_step(batch)["loss"].numpy()
        times.append(time.perf_counter() - start)
        peaks.append(tf.config.experimental.get_memory_info("CPU:0")["peak"] - before)
    return max(peaks) / MIB, sorted(times)[len(times) // 2]


def main(argv):
    del argv
    ks = [int(k) for k in FLAGS.ks]
    results = {}
    started = time.time()
    total = len(FLAGS.rows) * len(ks)
    for row in FLAGS.rows:
        for k in ks:
            results[(row, k)] = _measure(row, k)
            done = len(results)
            elapsed = time.time() - started
            print(f"{row} K={k}: {results[(row, k)][0]:.1f} MiB, "
                  f"{results[(row, k)][1] * 1e3:.0f} ms/step  [{done}/{total}, "
                  f"ETA {elapsed / done * (total - done):.0f} s]", file=sys.stderr, flush=True)

    print(f"\n### Peak step memory (MiB above the pre-step allocation), {FLAGS.res}×{FLAGS.res}, "
          f"meta-batch {FLAGS.batch}, {FLAGS.mode} mode\n")
    print("| configuration | " + " | ".join(f"K={k}" for k in ks) + " | max/min over K |")
    print("|---|" + "---|" * (len(ks) + 1))
    for row in FLAGS.rows:
        peaks = [results[(row, k)][0] for k in ks]
        print(f"| {row} | " + " | ".join(f"{p:.0f}" for p in peaks)
              + f" | {max(peaks) / min(peaks):.2f} |")
    print("\nms per outer step:\n")
    print("| configuration | " + " | ".join(f"K={k}" for k in ks) + " |")
    print("|---|" + "---|" * len(ks))
    for row in FLAGS.rows:
        print(f"| {row} | " + " | ".join(f"{results[(row, k)][1] * 1e3:.0f}" for k in ks) + " |")
    kmax = max(ks)
    for reference in ("fomaml", "fomaml/unshared"):
        if ("maml+remat", kmax) in results and (reference, kmax) in results:
            ratio = results[("maml+remat", kmax)][0] / results[(reference, kmax)][0]
            print(f"\nMAML+remat / {reference} peak at K={kmax}: {ratio:.2f}×")
    if ("maml", kmax) in results and ("maml+remat", kmax) in results:
        print(f"MAML / MAML+remat peak at K={kmax}: "
              f"{results[('maml', kmax)][0] / results[('maml+remat', kmax)][0]:.1f}×; "
              f"time cost of remat {results[('maml+remat', kmax)][1] / results[('maml', kmax)][1]:.2f}×")


if __name__ == "__main__":
    app.run(main)
