r"""SIREN mixed precision (bfloat16 hidden layers): speed and accuracy against float32.

1. Throughput, alternating float32 and bfloat16 in graph mode: a 2048³ matmul (the
   machine's peak) and one SIREN hidden layer at 178×178 points (forward, and
   forward + backward).
2. End to end, alternating: the MAML outer step (paper protocol: SIREN 256×5, meta-batch
   3, K = 2) and a test-time fit step, float32 vs `with_mixed_precision`, at 64×64 and
   178×178.
3. Accuracy: mean PSNR of test-time fits from the shipped `text_siren` init on
   held-out-style text images (rendered with fixed seeds) at steps 0/2/10/100, and the
   cosine / relative error of the MAML meta-gradient against float32, for bfloat16 in
   the hidden layers only (the option) and also in the first layer (why not).

    python benchmarks/precision.py --rounds=3
"""

import os
import statistics
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from absl import app, flags  # noqa: E402

FLAGS = flags.FLAGS
flags.DEFINE_integer("rounds", 3, "Alternating rounds.")
flags.DEFINE_list("res", ["64", "178"], "Resolutions of the end-to-end timings.")
flags.DEFINE_integer("num_images", 4, "Text images of the accuracy table.")
flags.DEFINE_integer("fit_steps", 100, "Longest fit of the accuracy table.")


def _median_time(fn, repeats=3):
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def _throughput_jobs(dtype):
    import tensorflow as tf  # pylint: disable=import-outside-toplevel
    n, p, w0 = 2048, 178 * 178, 200.0
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
        return tf.add_n([tf.reduce_sum(tf.cast(g, tf.float32))
                         for g in tape.gradient(loss, [x, w])])

    jobs = {"2048³ matmul": (lambda: matmul(a, b).numpy(), 2 * n**3),
            "SIREN layer forward (178² points)": (lambda: layer(x, w).numpy(), 2 * p * 256**2),
            "SIREN layer forward+backward": (lambda: layer_grad(x, w).numpy(), 6 * p * 256**2)}
    for fn, _ in jobs.values():
        fn()
    return jobs


def _step_jobs(mixed, res):
    import numpy as np  # pylint: disable=import-outside-toplevel
    import tensorflow as tf  # pylint: disable=import-outside-toplevel
    from learnit_tf.meta import Fitter, InnerOptimizer, MetaConfig, MetaTrainer  # pylint: disable=import-outside-toplevel
    from learnit_tf.models import Siren  # pylint: disable=import-outside-toplevel
    from learnit_tf.kinds.image import ImageTask  # pylint: disable=import-outside-toplevel

    batch = {"image": tf.constant(np.random.RandomState(0).rand(3, res, res, 3), tf.float32)}
    model = Siren(width=256, depth=5, w0=200.0, seed=0, mixed_precision=mixed)
    trainer = MetaTrainer(model, ImageTask(res), MetaConfig("maml", 2), 1e-5)
    trainer.train_step(batch)["loss"].numpy()
    fitter = Fitter(model, ImageTask(res), InnerOptimizer("sgd", 1e-2))
    image = {"image": batch["image"][0]}
    fitter.fit(image, 10)
    return {f"MAML outer step, {res}×{res}": lambda: trainer.train_step(batch)["loss"].numpy(),
            f"fit step, {res}×{res} (per step, 10-step calls)":
                lambda: fitter.fit(image, 10) and None}


def _accuracy():
    import keras  # pylint: disable=import-outside-toplevel
    import numpy as np  # pylint: disable=import-outside-toplevel
    import tensorflow as tf  # pylint: disable=import-outside-toplevel
    from learnit_tf import zoo  # pylint: disable=import-outside-toplevel
    from learnit_tf.kinds.image.text_images import render_text_image  # pylint: disable=import-outside-toplevel
    from learnit_tf.meta import Fitter, InnerOptimizer, MetaConfig, meta_gradients  # pylint: disable=import-outside-toplevel
    from learnit_tf.models import FunctionalModel, with_mixed_precision  # pylint: disable=import-outside-toplevel
    from learnit_tf.kinds.image import ImageTask  # pylint: disable=import-outside-toplevel

    base = zoo.load("text_siren")
    rng = np.random.RandomState(2026)
    images = [render_text_image(rng, 64).astype(np.float32) / 255.0
              for _ in range(FLAGS.num_images)]
    task = ImageTask(64)
    first_too = with_mixed_precision(base)
    # The rejected variant: the first (coordinate) layer in bfloat16 too.
    first_too.dense_layers[0].dtype_policy = keras.DTypePolicy("mixed_bfloat16")
    variants = {"float32": base, "bfloat16 hidden layers (the option)": with_mixed_precision(base),
                "bfloat16 also in the first layer": first_too}
    batch = {"image": tf.constant(np.stack(images[:3]))}
    rows, reference = [], None
    for name, model in variants.items():
        fitter = Fitter(model, task, InnerOptimizer("sgd", 1e-2))
        curve = np.mean([fitter.fit({"image": im}, FLAGS.fit_steps).psnr for im in images], 0)
        fmodel = FunctionalModel(model)
        grads, _ = tf.function(lambda ws, f=fmodel: meta_gradients(
            MetaConfig("maml", 2), task, f, ws, batch))(fmodel.initial_weights())
        flat = np.concatenate([g.numpy().ravel() for g in grads]).astype(np.float64)
        reference = flat if reference is None else reference
        cosine = flat @ reference / np.linalg.norm(flat) / np.linalg.norm(reference)
        rel = np.linalg.norm(flat - reference) / np.linalg.norm(reference)
        rows.append((name, curve, cosine, rel))
    return rows


def main(argv):
    del argv
    import tensorflow as tf  # pylint: disable=import-outside-toplevel
    started = time.time()
    throughput = {d: _throughput_jobs(dt) for d, dt in (("float32", tf.float32),
                                                          ("bfloat16", tf.bfloat16))}
    steps = {}
    for res in [int(r) for r in FLAGS.res]:
        for mixed in (False, True):
            for key, fn in _step_jobs(mixed, res).items():
                steps[(key, mixed)] = fn
    samples = {("t", d, j): [] for d in throughput for j in throughput[d]}
    samples.update({("s", k, m): [] for k, m in steps})
    for r in range(FLAGS.rounds):
        for d, jobs in throughput.items():
            for j, (fn, _) in jobs.items():
                samples[("t", d, j)].append(_median_time(fn, 5))
        for (k, m), fn in steps.items():
            samples[("s", k, m)].append(_median_time(fn, 2))
        elapsed = time.time() - started
        print(f"round {r + 1}/{FLAGS.rounds} done, elapsed {elapsed:.0f} s, "
              f"ETA {elapsed / (r + 1) * (FLAGS.rounds - r - 1):.0f} s (+ accuracy table)",
              file=sys.stderr, flush=True)
    accuracy = _accuracy()

    med = lambda key: statistics.median(samples[key])  # noqa: E731
    print("\n| workload | float32 GFLOP/s | bfloat16 GFLOP/s | bfloat16 speed-up |")
    print("|---|---|---|---|")
    for j, (_, flops) in throughput["float32"].items():
        f32, bf16 = med(("t", "float32", j)), med(("t", "bfloat16", j))
        print(f"| {j} | {flops / f32 / 1e9:.1f} | {flops / bf16 / 1e9:.1f} | {f32 / bf16:.2f}× |")
    print("\n| step (graph mode) | float32 (ms) | mixed precision (ms) | speed-up |")
    print("|---|---|---|---|")
    for key in dict.fromkeys(k for k, _ in steps):
        scale = 10 if key.startswith("fit") else 1
        f32, mixed = med(("s", key, False)) / scale, med(("s", key, True)) / scale
        print(f"| {key} | {f32 * 1e3:.1f} | {mixed * 1e3:.1f} | {f32 / mixed:.2f}× |")
    marks = [s for s in (0, 2, 10, 100) if s <= FLAGS.fit_steps]
    print(f"\nFits from text_siren (SGD 1e-2), mean PSNR (dB) over {FLAGS.num_images} rendered "
          "text images, 64×64; MAML meta-gradient on 3 of them vs float32:\n")
    print("| precision | " + " | ".join(f"PSNR @{s}" for s in marks)
          + " | meta-grad cosine | meta-grad rel. error |")
    print("|---|" + "---|" * (len(marks) + 2))
    for name, curve, cosine, rel in accuracy:
        print(f"| {name} | " + " | ".join(f"{curve[s]:.2f}" for s in marks)
              + f" | {cosine:.4f} | {rel:.3f} |")


if __name__ == "__main__":
    app.run(main)
