r"""Unrolled vs vectorised per-replica meta-batch: step time, trace/compile time, graph size.

`meta_gradients` adapts the examples of a meta-batch in a Python loop unrolled per
example (the default), or in one `tf.vectorized_map` (`MetaConfig(vectorize=True)`).
For each algorithm, meta-batch size and mode (graph, XLA) this builds both
`MetaTrainer`s on the same init and batch and measures:

- `trace s`: tracing the outer step (`get_concrete_function`),
- `first call s`: the first call after tracing (graph optimisation, or XLA compilation),
- `graph ops`: nodes of the traced step, nested function bodies included,
- `step ms`: median of the timed steps, alternating the two variants step by step
  so that load on the machine hits both alike (ratios are what count),
- `max |Δ loss|`, `max |Δ w|`: the largest difference of their per-step losses, and
  of their weights after all steps (same init, same batch).

    python benchmarks/meta_batch.py --sizes=3,8,32 --algorithms=maml,reptile \
        --modes=graph,xla --width=64 --depth=3 --res=32 --steps=5
"""

import os
import statistics
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from absl import app, flags  # noqa: E402

FLAGS = flags.FLAGS
flags.DEFINE_list("sizes", ["3", "8", "32"], "Per-replica meta-batch sizes.")
flags.DEFINE_list("algorithms", ["maml", "reptile"], "Algorithms.")
flags.DEFINE_list("modes", ["graph", "xla"], "graph and/or xla.")
flags.DEFINE_integer("width", 64, "SIREN width.")
flags.DEFINE_integer("depth", 3, "SIREN depth.")
flags.DEFINE_integer("res", 32, "Image side (RES×RES pixels per example).")
flags.DEFINE_integer("inner_steps", 2, "K, inner SGD steps.")
flags.DEFINE_integer("steps", 5, "Timed steps per variant (after the first call).")


def _graph_ops(concrete):
    graph_def = concrete.graph.as_graph_def()
    return len(graph_def.node) + sum(len(f.node_def) for f in graph_def.library.function)


def _measure(algorithm, size, mode):
    import numpy as np  # pylint: disable=import-outside-toplevel
    import tensorflow as tf  # pylint: disable=import-outside-toplevel
    from learnit_tf.kinds.image import ImageTask  # pylint: disable=import-outside-toplevel
    from learnit_tf.meta import InnerOptimizer, MetaConfig, MetaTrainer  # pylint: disable=import-outside-toplevel
    from learnit_tf.models import Siren  # pylint: disable=import-outside-toplevel

    batch = {"image": tf.constant(np.random.RandomState(size).rand(
        size, FLAGS.res, FLAGS.res, 3).astype(np.float32))}
    results = {}
    trainers = {}
    for vectorize in (False, True):
        config = MetaConfig(algorithm, FLAGS.inner_steps, InnerOptimizer("sgd", 1e-2),
                            vectorize=vectorize)
        trainer = MetaTrainer(Siren(out_features=3, width=FLAGS.width, depth=FLAGS.depth,
                                    w0=30.0, seed=0), ImageTask(FLAGS.res), config,
                              outer_learning_rate=1e-5, jit_compile=mode == "xla")
        start = time.perf_counter()
        concrete = trainer._step.get_concrete_function(batch)  # pylint: disable=protected-access
        trace = time.perf_counter() - start
        start = time.perf_counter()
        losses = [float(trainer.train_step(batch)["loss"])]
        first = time.perf_counter() - start
        results[vectorize] = {"trace": trace, "first": first, "ops": _graph_ops(concrete),
                              "losses": losses, "times": []}
        trainers[vectorize] = trainer
    for _ in range(FLAGS.steps):
        for vectorize in (False, True):
            start = time.perf_counter()
            loss = float(trainers[vectorize].train_step(batch)["loss"])
            results[vectorize]["times"].append(time.perf_counter() - start)
            results[vectorize]["losses"].append(loss)
    loss_diff = float(np.max(np.abs(np.subtract(results[False]["losses"],
                                                results[True]["losses"]))))
    weight_diff = max(float(np.max(np.abs(a.numpy() - b.numpy()))) for a, b in
                      zip(trainers[False].variables, trainers[True].variables))
    return results, loss_diff, weight_diff


def main(argv):
    del argv
    print(f"SIREN width {FLAGS.width} depth {FLAGS.depth}, {FLAGS.res}×{FLAGS.res} images, "
          f"K={FLAGS.inner_steps}, median of {FLAGS.steps} steps; u = unrolled loop, "
          "v = vectorized_map\n")
    print("| algorithm | meta-batch | mode | step ms u / v (v÷u) | trace s u / v | "
          "first call s u / v | graph ops u / v | max abs Δ loss, Δ w |")
    print("|---|---|---|---|---|---|---|---|")
    for algorithm in FLAGS.algorithms:
        for size in (int(s) for s in FLAGS.sizes):
            for mode in FLAGS.modes:
                r, loss_diff, weight_diff = _measure(algorithm, size, mode)
                u, v = r[False], r[True]
                step_u = 1e3 * statistics.median(u["times"])
                step_v = 1e3 * statistics.median(v["times"])
                print(f"| {algorithm} | {size} | {mode} | {step_u:.1f} / {step_v:.1f} "
                      f"({step_v / step_u:.2f}) | {u['trace']:.2f} / {v['trace']:.2f} | "
                      f"{u['first']:.2f} / {v['first']:.2f} | {u['ops']} / {v['ops']} | "
                      f"{loss_diff:.0e}, {weight_diff:.0e} |", flush=True)


if __name__ == "__main__":
    app.run(main)
