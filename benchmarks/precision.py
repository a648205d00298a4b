r"""Mixed precision (bfloat16 hidden matmuls of a SIREN) and the fast sine against float32,
in one run.

1. The machine's matmul rates: a 2048³ matmul in float32 and in bfloat16 (graph mode).
2. The MAML outer step (paper protocol: SIREN 256×5, w0 = 200, meta-batch 3, K = 2,
   inner SGD 1e-2, outer Adam) at 64×64 and 178×178, four ways, alternating step by step:
   float32 (the default: Keras layers, `tf.sin`), float32 + fast sine (`Siren(fast_sine=
   True)`: w0 folded, the polynomial sine and cosine of `learnit_tf.models.fast_sine` in
   an XLA cluster, reused by every derivative), mixed with `tf.sin`
   (`Siren(fast_sine=False)`) and mixed + fast sine (`MetaConfig(mixed_precision=True)`'s
   default). Reported: the process's CPU time (more robust than wall time on a shared
   machine) and wall time, the speed-up over the default float32 step, the step's matmul
   FLOPs (`learnit_tf.training.profiling.matmul_flops`) and achieved FLOP per CPU-second
   as a share of the 2048³ bfloat16 rate measured in the same run.
3. Accuracy: the held-out 2-step PSNR (float32 fits, SGD 1e-2) of inits meta-trained
   for equal steps, in float32 and in mixed precision (the mixed path of the code that
   trained them; per seed: same init, same batches), for every seed of --seeds whose two
   training runs (below) have finished; the gap's mean and spread over the seeds.

    # the trainings (resumable; one at a time in the background, under nice):
    nice -n 10 python benchmarks/precision.py --train=float32 --seed=0 --train_steps=150
    nice -n 10 python benchmarks/precision.py --train=mixed --seed=0 --train_steps=150
    # ... the same for the other seeds; then the measurements (timings + the inits' PSNR):
    python benchmarks/precision.py --rounds=3 --seeds=0,1,2

Writes benchmarks/results/precision.json and prints markdown tables.
"""

import json
import os
import statistics
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from absl import app, flags  # noqa: E402

FLAGS = flags.FLAGS
flags.DEFINE_integer("rounds", 3, "Alternating rounds of the step timings.")
flags.DEFINE_integer("steps_per_round", 2, "Steps per contender per round.")
flags.DEFINE_list("res", ["64", "178"], "Resolutions of the step timings.")
flags.DEFINE_string("train_dir", "/work/runs/precision", "Where the two trainings write.")
flags.DEFINE_enum("train", None, ["float32", "mixed"], "Train one init (resumable) and exit.")
flags.DEFINE_integer("train_steps", 300, "Outer steps of each training (text_maml_cpu.gin).")
flags.DEFINE_integer("seed", 0, "With --train: the seed of the init and of the batch order.")
flags.DEFINE_list("seeds", ["0"], "Seeds of the trainings compared (each needs both runs).")
flags.DEFINE_integer("num_held_out", 16, "Held-out text images of the PSNR comparison.")
flags.DEFINE_integer("threads", 0, "Intra- and inter-op threads of the timings (0: "
                     "TensorFlow's default). 1 makes CPU time a clean work measure on a "
                     "shared machine.")
flags.DEFINE_string("output", os.path.join(os.path.dirname(__file__), "results",
                                           "precision.json"), "Results JSON.")

PEAK = 2048
STEP_MODEL = {"width": 256, "depth": 5, "w0": 200.0}
# gin/image/text_maml_cpu.gin (text_siren@1's recipe) at 64×64.
TRAIN_RECIPE = {"resolution": 64, "dataset": "text_images/cpu64", "algorithm": "maml",
                "inner_steps": 2, "inner_sgd": 1e-2, "outer_adam": 1e-4, "meta_batch": 3,
                "seed": 0, **STEP_MODEL}


_REPORT = []
# name: (mixed precision, Siren fast_sine). "mixed" is what MetaConfig(mixed_precision=True)
# runs by default (fast_sine="auto": the polynomial sine on the mixed path only).
CONTENDERS = {"float32": (False, "auto"), "float32_fast_sine": (False, True),
              "mixed_tf_sine": (True, False), "mixed": (True, "auto")}
LABELS = {"float32": "float32 (default)", "float32_fast_sine": "float32 + fast sine",
          "mixed_tf_sine": "mixed, tf.sin", "mixed": "mixed + fast sine (default)"}
TARGET_SPEEDUP, TARGET_GAP_DB = 1.8, 0.3


def _say(text=""):
    """Prints a line of the report and keeps it for the markdown file."""
    print(text)
    _REPORT.append(text)


def _timed(fn):
    wall, cpu = time.perf_counter(), time.process_time()
    fn()
    return time.perf_counter() - wall, time.process_time() - cpu


def _peak_jobs():
    import tensorflow as tf  # pylint: disable=import-outside-toplevel
    jobs = {}
    for dtype in (tf.float32, tf.bfloat16):
        a = tf.cast(tf.random.stateless_uniform((PEAK, PEAK), (0, 1)), dtype)
        b = tf.cast(tf.random.stateless_uniform((PEAK, PEAK), (0, 2)), dtype)
        fn = tf.function(lambda x, y: tf.reduce_sum(tf.cast(tf.matmul(x, y)[:1], tf.float32)))
        fn(a, b).numpy()
        jobs[dtype.name] = lambda fn=fn, a=a, b=b: fn(a, b).numpy()
    return jobs


def _step_job(name, res):
    """(run one step, matmul FLOPs per step) of the MAML outer step of CONTENDERS[name]."""
    import numpy as np  # pylint: disable=import-outside-toplevel
    import tensorflow as tf  # pylint: disable=import-outside-toplevel
    from learnit_tf.kinds.image import ImageTask  # pylint: disable=import-outside-toplevel
    from learnit_tf.meta import MetaConfig, MetaTrainer  # pylint: disable=import-outside-toplevel
    from learnit_tf.models import Siren  # pylint: disable=import-outside-toplevel
    from learnit_tf.training.profiling import matmul_flops  # pylint: disable=import-outside-toplevel

    mixed, fast_sine = CONTENDERS[name]
    batch = {"image": tf.constant(np.random.RandomState(0).rand(3, res, res, 3), tf.float32)}
    model = Siren(seed=0, fast_sine=fast_sine, **STEP_MODEL)
    trainer = MetaTrainer(model, ImageTask(res), MetaConfig("maml", 2, mixed_precision=mixed),
                          1e-5, jit_compile=False)
    flops = matmul_flops(trainer._step.get_concrete_function(batch))  # pylint: disable=protected-access
    trainer.train_step(batch)["loss"].numpy()  # Compile.
    return lambda: trainer.train_step(batch)["loss"].numpy(), flops


def _text_data(split):
    from learnit_tf.kinds.image.text_images import text_images_examples  # pylint: disable=import-outside-toplevel
    return text_images_examples(split, "cpu64")


def _run_dir(precision, seed):
    return os.path.join(FLAGS.train_dir, f"seed{seed}", precision)


def _train(precision, seed):
    """Meta-trains one init for --train_steps (checkpoint every 25 steps; resumes)."""
    import numpy as np  # pylint: disable=import-outside-toplevel
    import tensorflow as tf  # pylint: disable=import-outside-toplevel
    from learnit_tf.data import meta_batches  # pylint: disable=import-outside-toplevel
    from learnit_tf.kinds.image import ImageTask  # pylint: disable=import-outside-toplevel
    from learnit_tf.meta import MetaConfig, MetaTrainer  # pylint: disable=import-outside-toplevel
    from learnit_tf.models import Siren  # pylint: disable=import-outside-toplevel

    r = dict(TRAIN_RECIPE, seed=seed)
    out = _run_dir(precision, seed)
    os.makedirs(out, exist_ok=True)
    model = Siren(width=r["width"], depth=r["depth"], w0=r["w0"], seed=r["seed"])
    trainer = MetaTrainer(model, ImageTask(r["resolution"]),
                          MetaConfig("maml", r["inner_steps"],
                                     mixed_precision=precision == "mixed"),
                          r["outer_adam"], jit_compile=False)
    step = tf.Variable(0, dtype=tf.int64)
    seconds = tf.Variable(0.0, dtype=tf.float64)
    ckpt = tf.train.Checkpoint(weights=list(model.trainable_variables),
                               optimizer=trainer.optimizer, step=step, seconds=seconds)
    manager = tf.train.CheckpointManager(ckpt, os.path.join(out, "ckpt"), max_to_keep=2)
    if manager.latest_checkpoint:
        ckpt.restore(manager.latest_checkpoint)
    batches = iter(meta_batches(_text_data("train"), r["meta_batch"], seed=r["seed"]))
    for _ in range(int(step.numpy())):  # The same batches as an uninterrupted run.
        next(batches)
    log = open(os.path.join(out, "log.txt"), "a", encoding="utf-8")  # pylint: disable=consider-using-with
    while int(step.numpy()) < FLAGS.train_steps:
        batch = next(batches)
        start = time.perf_counter()
        loss = float(trainer.train_step(batch)["loss"].numpy())
        seconds.assign_add(time.perf_counter() - start)
        step.assign_add(1)
        s = int(step.numpy())
        print(f"step {s} loss {loss:.5f} train_seconds {float(seconds.numpy()):.0f}", file=log,
              flush=True)
        if s % 25 == 0 or s == FLAGS.train_steps:
            manager.save()
    weights = {f"w{i}": v.numpy() for i, v in enumerate(model.trainable_variables)}
    np.savez(os.path.join(out, "weights.tmp.npz"), **weights)
    os.replace(os.path.join(out, "weights.tmp.npz"), os.path.join(out, "weights.npz"))
    info = {"precision": precision, "steps": int(step.numpy()),
            "train_seconds": round(float(seconds.numpy()), 1), "recipe": r,
            "command": " ".join(["python"] + sys.argv)}
    with open(os.path.join(out, "info.tmp.json"), "w", encoding="utf-8") as f:
        json.dump(info, f, indent=1)
    os.replace(os.path.join(out, "info.tmp.json"), os.path.join(out, "info.json"))
    print(json.dumps(info))


def _held_out_psnr(seed):
    """{precision: {info, psnr at steps 0 and 2}} of seed's finished trainings, or None."""
    import numpy as np  # pylint: disable=import-outside-toplevel
    from learnit_tf.data import take_examples  # pylint: disable=import-outside-toplevel
    from learnit_tf.kinds.image import ImageTask  # pylint: disable=import-outside-toplevel
    from learnit_tf.meta import Fitter, InnerOptimizer  # pylint: disable=import-outside-toplevel
    from learnit_tf.models import Siren  # pylint: disable=import-outside-toplevel

    r = dict(TRAIN_RECIPE, seed=seed)
    runs = {}
    for precision in ("float32", "mixed"):
        path = _run_dir(precision, seed)
        if not os.path.exists(os.path.join(path, "info.json")):
            return None
        with open(os.path.join(path, "info.json"), encoding="utf-8") as f:
            runs[precision] = {"info": json.load(f)}
        runs[precision]["weights"] = np.load(os.path.join(path, "weights.npz"))
    if len({run["info"]["steps"] for run in runs.values()}) != 1:
        return None
    held_out = take_examples(_text_data("test"), FLAGS.num_held_out)
    task = ImageTask(r["resolution"])
    for run in runs.values():
        model = Siren(width=r["width"], depth=r["depth"], w0=r["w0"], seed=r["seed"])
        saved = run.pop("weights")
        model.set_weights([saved[f"w{i}"] for i in range(2 * r["depth"])])
        fitter = Fitter(model, task, InnerOptimizer("sgd", r["inner_sgd"]), jit_compile=False)
        curves = np.array([fitter.fit(example, 2).psnr for example in held_out])
        run["psnr"] = {"step 0": float(curves[:, 0].mean()), "step 2": float(curves[:, 2].mean()),
                       "step 2 std": float(curves[:, 2].std())}
    return runs


def main(argv):
    del argv
    if FLAGS.train:
        _train(FLAGS.train, FLAGS.seed)
        return
    import tensorflow as tf  # pylint: disable=import-outside-toplevel
    if FLAGS.threads:
        tf.config.threading.set_intra_op_parallelism_threads(FLAGS.threads)
        tf.config.threading.set_inter_op_parallelism_threads(FLAGS.threads)
    started = time.time()
    load_start = os.getloadavg()
    peaks = _peak_jobs()
    steps, flops = {}, {}
    for res in [int(r) for r in FLAGS.res]:
        for name in CONTENDERS:
            steps[(res, name)], flops[(res, name)] = _step_job(name, res)
    wall = {k: [] for k in list(peaks) + list(steps)}
    cpu = {k: [] for k in wall}
    for r in range(FLAGS.rounds):
        for name, fn in peaks.items():
            for _ in range(3):
                w, c = _timed(fn)
                wall[name].append(w)
                cpu[name].append(c)
        for res in [int(r) for r in FLAGS.res]:
            for _ in range(FLAGS.steps_per_round):
                for name in CONTENDERS:  # Alternate step by step.
                    w, c = _timed(steps[(res, name)])
                    wall[(res, name)].append(w)
                    cpu[(res, name)].append(c)
        elapsed = time.time() - started
        print(f"round {r + 1}/{FLAGS.rounds} done, elapsed {elapsed:.0f} s, load "
              f"{os.getloadavg()[0]:.1f}", file=sys.stderr, flush=True)
    load_end = os.getloadavg()
    med = {k: statistics.median(v) for k, v in wall.items()}
    med_cpu = {k: statistics.median(v) for k, v in cpu.items()}
    peak_flop = 2 * PEAK**3
    peak_rate = {name: peak_flop / med[name] for name in peaks}
    # Per CPU-second: on a shared machine the wall-clock peak and the steps are timed at
    # different loads; CPU time measures the work of this process alone.
    peak_cpu_rate = {name: peak_flop / med_cpu[name] for name in peaks}
    utc = lambda t: time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(t))  # noqa: E731
    results = {
        "machine": _machine(), "tensorflow": tf.__version__,
        "timings_utc": [utc(started), utc(time.time())],
        "load_average_start": [round(x, 2) for x in load_start],
        "load_average_end": [round(x, 2) for x in load_end],
        "threads": FLAGS.threads or "default", "rounds": FLAGS.rounds, "steps_per_round": FLAGS.steps_per_round,
        "peak_gflops": {name: round(rate / 1e9, 1) for name, rate in peak_rate.items()},
        "peak_gflop_per_cpu_second": {name: round(rate / 1e9, 1)
                                      for name, rate in peak_cpu_rate.items()},
        "peak_bfloat16_over_float32": round(med["float32"] / med["bfloat16"], 3),
        "peak_bfloat16_over_float32_cpu_time": round(med_cpu["float32"] / med_cpu["bfloat16"], 3),
        "maml_step": {}}
    _say(f"\nTimings {results['timings_utc'][0]} to {results['timings_utc'][1]}.")
    _say(f"\n{results['machine']}; load average {load_start[0]:.1f} at the start, "
          f"{load_end[0]:.1f} at the end; medians of {FLAGS.rounds} rounds × "
          f"{FLAGS.steps_per_round} alternating steps\n")
    _say(f"| {PEAK}³ matmul | GFLOP/s (wall) | GFLOP per CPU-second |\n|---|---|---|")
    for name, rate in peak_rate.items():
        _say(f"| {name} | {rate / 1e9:.1f} | {peak_cpu_rate[name] / 1e9:.1f} |")
    _say("\nMAML step (K = 2, meta-batch 3), CPU time of this process (robust to other "
         "processes' load) and wall time; speed-up over the default float32 step; achieved "
         "matmul FLOP per CPU-second as a share of this run's 2048³ bfloat16 matmul:\n")
    _say("| grid | step | CPU ms | speed-up (CPU) | wall ms | speed-up (wall) "
         "| matmul GFLOP/step | GFLOP per CPU-s (% bf16 peak) |")
    _say("|---|---|---|---|---|---|---|---|")
    for res in [int(r) for r in FLAGS.res]:
        rows = {}
        for name in CONTENDERS:
            key = (res, name)
            gflop = flops[key] / 1e9
            rows[name] = {
                "cpu_ms": round(med_cpu[key] * 1e3, 1), "wall_ms": round(med[key] * 1e3, 1),
                "speedup_cpu_time": round(med_cpu[(res, "float32")] / med_cpu[key], 3),
                "speedup_wall": round(med[(res, "float32")] / med[key], 3),
                "matmul_gflop_per_step": round(gflop, 2),
                "gflop_per_cpu_second": round(gflop / med_cpu[key], 1),
                "share_of_bfloat16_peak_cpu_time": round(
                    flops[key] / med_cpu[key] / peak_cpu_rate["bfloat16"], 3),
                "share_of_bfloat16_peak_wall": round(flops[key] / med[key] / peak_rate["bfloat16"], 3)}
            row = rows[name]
            _say(f"| {res}×{res} | {LABELS[name]} | {row['cpu_ms']} | {row['speedup_cpu_time']:.2f}× "
                 f"| {row['wall_ms']} | {row['speedup_wall']:.2f}× | {row['matmul_gflop_per_step']} "
                 f"| {row['gflop_per_cpu_second']} ({row['share_of_bfloat16_peak_cpu_time']:.0%}) |")
        # The figure: the default mixed step (fast sine) over the default float32 one.
        results["maml_step"][f"{res}x{res}"] = dict(
            rows, speedup_cpu_time=rows["mixed"]["speedup_cpu_time"],
            speedup_wall=rows["mixed"]["speedup_wall"],
            fast_sine_gain_mixed_cpu_time=round(
                rows["mixed_tf_sine"]["cpu_ms"] / rows["mixed"]["cpu_ms"], 3),
            fast_sine_gain_float32_cpu_time=round(
                rows["float32"]["cpu_ms"] / rows["float32_fast_sine"]["cpu_ms"], 3))
    _psnr_report(results)
    _targets_report(results)
    os.makedirs(os.path.dirname(FLAGS.output), exist_ok=True)
    from learnit_tf.core.atomic import write_json  # pylint: disable=import-outside-toplevel
    write_json(FLAGS.output, results)
    markdown = os.path.splitext(FLAGS.output)[0] + ".md"
    from learnit_tf.core.atomic import write_text  # pylint: disable=import-outside-toplevel
    write_text(markdown, "\n".join(["# Mixed precision vs float32 (benchmarks/precision.py)", "",
                                     "Command: `python " + " ".join(sys.argv) + "`", ""]
                                    + _REPORT) + "\n")
    print(f"\nwrote {FLAGS.output} and {markdown}")


def _psnr_report(results):
    """Adds the held-out PSNR of every finished seed pair to results and the report."""
    by_seed = {}
    for seed in [int(s) for s in FLAGS.seeds]:
        runs = _held_out_psnr(seed)
        if runs is None:
            _say(f"\n(seed {seed}: no finished pair of trainings in "
                 f"{os.path.join(FLAGS.train_dir, f'seed{seed}')}: PSNR not measured)")
        else:
            by_seed[seed] = runs
    if not by_seed:
        return
    gaps = {seed: runs["mixed"]["psnr"]["step 2"] - runs["float32"]["psnr"]["step 2"]
            for seed, runs in by_seed.items()}
    results["held_out_psnr"] = {str(seed): runs for seed, runs in by_seed.items()}
    results["held_out_psnr_gap_db"] = {str(seed): round(g, 3) for seed, g in gaps.items()}
    results["held_out_psnr_gap_db_mean"] = round(statistics.mean(gaps.values()), 3)
    steps = sorted({run["info"]["steps"] for runs in by_seed.values() for run in runs.values()})
    recipe = {k: v for k, v in TRAIN_RECIPE.items() if k != "seed"}
    _say(f"\nInits meta-trained for {'/'.join(map(str, steps))} steps each "
         f"({json.dumps(recipe)}); held-out 2-step PSNR over {FLAGS.num_held_out} test "
         "images, float32 fits (SGD 1e-2):\n")
    _say("| seed | training precision | train seconds | PSNR step 0 | PSNR step 2 (± std over "
         "images) |")
    _say("|---|---|---|---|---|")
    for seed, runs in by_seed.items():
        for name, run in runs.items():
            p = run["psnr"]
            _say(f"| {seed} | {name} | {run['info']['train_seconds']} | {p['step 0']:.2f} | "
                 f"{p['step 2']:.2f} ± {p['step 2 std']:.2f} |")
    spread = (f" (std over seeds {statistics.stdev(gaps.values()):.2f} dB)"
              if len(gaps) > 1 else "")
    if len(gaps) > 1:
        results["held_out_psnr_gap_db_std"] = round(statistics.stdev(gaps.values()), 3)
        for precision in ("float32", "mixed"):
            values = [runs[precision]["psnr"]["step 2"] for runs in by_seed.values()]
            results[f"held_out_psnr_step2_{precision}_mean"] = round(statistics.mean(values), 3)
            results[f"held_out_psnr_step2_{precision}_std"] = round(statistics.stdev(values), 3)
    _say("\nGap (mixed − float32) at step 2 per seed: "
         + ", ".join(f"seed {seed} {g:+.2f} dB" for seed, g in gaps.items())
         + f"; mean {results['held_out_psnr_gap_db_mean']:+.2f} dB{spread}")


def _targets_report(results):
    """Issue 24's targets against this run's numbers, met or by how much not."""
    lines = []
    for key, row in results["maml_step"].items():
        got = row["speedup_cpu_time"]
        lines.append(f"MAML step {key}: {got:.2f}× (CPU time) vs ≥ {TARGET_SPEEDUP}× — "
                     + ("met" if got >= TARGET_SPEEDUP else f"short by {TARGET_SPEEDUP - got:.2f}×"))
    if "held_out_psnr_gap_db_mean" in results:
        gap = results["held_out_psnr_gap_db_mean"]
        lines.append(f"held-out 2-step PSNR, mixed − float32 training: {gap:+.2f} dB (mean over "
                     f"{len(results['held_out_psnr_gap_db'])} seeds) vs within ±{TARGET_GAP_DB} dB"
                     " — " + ("met" if abs(gap) <= TARGET_GAP_DB
                              else f"short by {abs(gap) - TARGET_GAP_DB:.2f} dB"))
    results["targets"] = lines
    _say("\nTargets (issue 24):\n")
    for line in lines:
        _say(f"- {line}")


def _machine():
    model = "unknown CPU"
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            names = [line.split(":", 1)[1].strip() for line in f if line.startswith("model name")]
        model = names[0] if names else model
    except OSError:
        pass
    from learnit_tf.meta.compile import bfloat16_hardware  # pylint: disable=import-outside-toplevel
    return f"{os.cpu_count()} CPUs ({model}; {bfloat16_hardware().reason})"


if __name__ == "__main__":
    app.run(main)
