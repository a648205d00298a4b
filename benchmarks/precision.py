r"""Would bfloat16 mixed precision pay off on this machine? float32 vs bfloat16 speeds.

Times, alternating, in graph mode: a 2048³ matmul (the machine's peak), and one
SIREN hidden layer at 178×178 points (256→256 matmul, bias, ×w0, sine), forward and
forward + backward. learnit_tf does not offer mixed precision (see
benchmarks/README.md for why); this is the measurement behind that decision.

    python benchmarks/precision.py --rounds=5
"""

import os
import statistics
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from absl import app, flags  # noqa: E402

FLAGS = flags.FLAGS
flags.DEFINE_integer("rounds", 5, "Alternating rounds.")
flags.DEFINE_integer("points", 178 * 178, "Points of the SIREN layer benchmark.")


def _timers(dtype):
    import tensorflow as tf  # pylint: disable=import-outside-toplevel
    n, p, w0 = 2048, FLAGS.points, 200.0
    a = tf.cast(tf.random.stateless_uniform((n, n), (0, 1)), dtype)
    b = tf.cast(tf.random.stateless_uniform((n, n), (0, 2)), dtype)
    x = tf.cast(tf.random.stateless_uniform((p, 256), (0, 3), -1, 1), dtype)
    w = tf.cast(tf.random.stateless_uniform((256, 256), (0, 4), -0.01, 0.01), dtype)
    bias = tf.zeros((256,), dtype)

    @tf.function
    def matmul(a, b):
        return tf.reduce_sum(tf.cast(tf.matmul(a, b), tf.float32))

    @tf.function
    def layer(x, w):
        return tf.reduce_sum(tf.cast(tf.sin(w0 * (tf.matmul(x, w) + bias)), tf.float32))

    @tf.function
    def layer_grad(x, w):
        with tf.GradientTape() as tape:
            tape.watch([x, w])
            y = tf.sin(w0 * (tf.matmul(x, w) + bias))
            loss = tf.reduce_sum(tf.cast(y, tf.float32) ** 2)
        return [tf.reduce_sum(tf.cast(g, tf.float32)) for g in tape.gradient(loss, [x, w])]

    jobs = {"2048³ matmul": (lambda: matmul(a, b), 2 * n**3),
            "SIREN layer forward": (lambda: layer(x, w), 2 * p * 256 * 256),
            "SIREN layer forward+backward": (lambda: layer_grad(x, w), 6 * p * 256 * 256)}
    for fn, _ in jobs.values():
        tf.nest.map_structure(lambda t: t.numpy(), fn())
    return jobs


def _time(fn):
    import tensorflow as tf  # pylint: disable=import-outside-toplevel
    times = []
    for _ in range(5):
        start = time.perf_counter()
        tf.nest.map_structure(lambda t: t.numpy(), fn())
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main(argv):
    del argv
    import tensorflow as tf  # pylint: disable=import-outside-toplevel
    dtypes = {"float32": tf.float32, "bfloat16": tf.bfloat16}
    jobs = {name: _timers(dtype) for name, dtype in dtypes.items()}
    samples = {(d, j): [] for d in dtypes for j in jobs["float32"]}
    for _ in range(FLAGS.rounds):
        for d in dtypes:
            for j, (fn, _) in jobs[d].items():
                samples[(d, j)].append(_time(fn))
    print(f"\n| workload | float32 GFLOP/s | bfloat16 GFLOP/s | bfloat16 speed-up |")
    print("|---|---|---|---|")
    for j, (_, flops) in jobs["float32"].items():
        f32 = statistics.median(samples[("float32", j)])
        bf16 = statistics.median(samples[("bfloat16", j)])
        print(f"| {j} | {flops / f32 / 1e9:.1f} | {flops / bf16 / 1e9:.1f} | {f32 / bf16:.2f}× |")


if __name__ == "__main__":
    app.run(main)
