"""The single-view test protocol: fit on one view, PSNR on held-out views.

PAPER.md, "View synthesis": at test time a network is optimised on the rays of
**one** input view of a new object (1000 SGD steps at lr 0.5, 64 rays a step, from
the meta-learned init) and scored by PSNR on the object's held-out views; for
Phototourism, on the left half of a photo and scored on the right half. Standard
initialisations are optimised with Adam (the paper's finding: SGD works from the
meta init, standard inits need Adam).

`TestTimeFitter` runs the optimisation in compiled chunks and carries the
optimizer state across chunks, so PSNR can be measured at several step counts of
one run; `held_out_psnr` renders every held-out ray (chunked) with bin-centre
samples. `evaluate_inits` builds the table (init × step), `write_csv` and
`plot_protocol` save it.
"""

import dataclasses
import os
import time

import keras
import numpy as np
import tensorflow as tf

from learnit_tf import init_io
from learnit_tf.atomic import atomic_save
from learnit_tf.meta.compile import resolve_jit_compile
from learnit_tf.meta.inner import InnerOptimizer
from learnit_tf.kinds.nerf.rendering import RayRenderer, stratified_samples


@dataclasses.dataclass
class InitSpec:
    """A starting point of the protocol: a name, weights and the optimizer to fit with."""

    name: str
    weights: list
    optimizer: InnerOptimizer


class TestTimeFitter:
    """Optimises weights on one example's support rays, in compiled chunks of steps.

    Unlike `learnit_tf.meta.Fitter` it records no per-step metrics (rendering held-out
    views every step would dominate the cost) and keeps the optimizer state and the
    step counter between calls, so `fit` can stop at checkpoints of one run.

    Args:
        fmodel: a `FunctionalModel`.
        task: a `NerfTask` (its `inner_loss` draws the ray batch of each step).
        steps_per_call: steps per compiled call.
        jit_compile: compile with XLA.
    """

    def __init__(self, fmodel, task, steps_per_call=100, jit_compile="auto"):
        self.fmodel = fmodel
        self.task = task
        self.steps_per_call = int(steps_per_call)
        self._compiled = {}
        self.jit_compile = resolve_jit_compile(jit_compile)

    def _chunk_fn(self, optimizer):
        if optimizer not in self._compiled:
            def run(weights, state, example, start, num_steps):
                def body(k, ws, st, loss_sum):
                    with tf.GradientTape() as tape:
                        tape.watch(ws)
                        loss = self.task.inner_loss(self.fmodel, ws, example, start + k)
                    grads = tape.gradient(loss, ws)
                    ws, st = optimizer.apply(ws, grads, st)
                    return k + 1, ws, st, loss_sum + loss

                _, weights, state, loss_sum = tf.while_loop(
                    lambda k, *_: k < num_steps, body,
                    (tf.constant(0, tf.int32), list(weights), state, tf.constant(0.0)))
                return weights, state, loss_sum / tf.cast(tf.maximum(num_steps, 1), tf.float32)

            self._compiled[optimizer] = tf.function(run, jit_compile=self.jit_compile,
                                                    reduce_retracing=True)
        return self._compiled[optimizer]

    def fit(self, example, weights, optimizer, checkpoints, callback=None):
        """Fits from `weights`, calling `callback(step, weights)` at each checkpoint.

        Args:
            example: a task example (with "seed").
            weights: starting weight list.
            optimizer: an `InnerOptimizer`.
            checkpoints: increasing step counts (0 allowed) at which to call `callback`.
            callback: callable(step, weights).

        Returns:
            The weights after the last checkpoint.
        """
        checkpoints = sorted(int(c) for c in checkpoints)
        if not checkpoints or checkpoints[0] < 0:
            raise ValueError(f"checkpoints must be non-negative step counts, got {checkpoints}.")
        example = {k: tf.convert_to_tensor(v) for k, v in example.items()}
        weights = [tf.convert_to_tensor(w) for w in weights]
        state = optimizer.init_state(weights)
        run = self._chunk_fn(optimizer)
        done = 0
        for target in checkpoints:
            while done < target:
                n = min(self.steps_per_call, target - done)
                weights, state, _ = run(weights, state, example, tf.constant(done, tf.int32),
                                        tf.constant(n, tf.int32))
                done += n
            if callback is not None:
                callback(done, weights)
        return weights


def density_alive_fraction(fmodel, weights, example, task, max_rays=1024):
    """Share of sample points of an example's support rays where the density σ > 0.

    A ReLU density that is zero at every sample ("dead") has zero gradients: no
    optimiser can leave it. With zero biases, a deep ReLU MLP's output has nearly the
    same sign everywhere, so a sizeable share of random NerfMLP inits start dead.
    """
    rays_o = np.asarray(example["rays_o"])
    idx = np.unique(np.linspace(0, len(rays_o) - 1, min(max_rays, len(rays_o))).astype(int))
    near = np.asarray(example["near"])[idx] if "near" in example else task.near
    far = np.asarray(example["far"])[idx] if "far" in example else task.far
    t = stratified_samples(near, far, len(idx), task.num_samples).numpy()
    points = rays_o[idx, None] + t[..., None] * np.asarray(example["rays_d"])[idx, None]
    raw = fmodel(weights, tf.constant(points.reshape(-1, 3), tf.float32))
    return float(np.mean(np.asarray(raw)[:, 3] > 0.0))


def draw_standard_init(class_name, config, seed, example, task, min_alive=0.01, max_tries=50):
    """A standard (random) init whose density is not dead on `example`'s rays.

    Draws the architecture's usual random init with seeds seed, seed + 1, ... and
    returns the first whose density is positive at >= `min_alive` of the sample
    points (see `density_alive_fraction`); a dead init would make the "standard"
    baseline a constant image whatever the optimiser.

    Returns:
        (model, seed used).
    """
    # pylint: disable=import-outside-toplevel
    from learnit_tf.models import FunctionalModel, model_from_config
    for k in range(max_tries):
        model = model_from_config(class_name, dict(config, seed=seed + k))
        fmodel = FunctionalModel(model)
        if density_alive_fraction(fmodel, fmodel.initial_weights(), example, task) >= min_alive:
            return model, seed + k
    raise RuntimeError(f"No standard init with a live density in {max_tries} seeds from {seed}.")


def _psnr(mse):
    return float(-10.0 * np.log10(max(float(mse), 1e-12)))


def held_out_psnr(renderer, weights, example, near, far):
    """PSNR of every held-out ray of an example.

    Args:
        renderer: a `RayRenderer`.
        weights: network weights.
        example: a task example with "test_rays_o", "test_rays_d", "test_rgb" and
            optionally "test_near"/"test_far" and "test_shape".
        near, far: default bounds (the task's).

    Returns:
        dict "psnr" (mean over held-out views of each view's PSNR, the usual NeRF
        convention), "psnr_all" (PSNR of the MSE over all held-out rays) and "images"
        (views, H, W, 3) rendered held-out views (or (1, 1, T, 3) if the rays do not
        form images).
    """
    if "test_rays_o" not in example:
        raise ValueError("held_out_psnr needs an example with held-out rays ('test_rays_o', "
                         "'test_rays_d', 'test_rgb').")
    near = np.asarray(example["test_near"]) if "test_near" in example else near
    far = np.asarray(example["test_far"]) if "test_far" in example else far
    out = renderer(weights, np.asarray(example["test_rays_o"]),
                   np.asarray(example["test_rays_d"]), near, far)
    target = np.asarray(example["test_rgb"])
    num_rays = target.shape[0]
    shape = (np.asarray(example["test_shape"]).tolist() if "test_shape" in example
             else [1, 1, num_rays])
    if int(np.prod(shape)) != num_rays:
        raise ValueError(f"test_shape {shape} does not match {num_rays} held-out rays.")
    rgb = out["rgb"].reshape(tuple(shape) + (3,))
    err = np.square(rgb - target.reshape(rgb.shape))
    per_view = [_psnr(e.mean()) for e in err]
    return {"psnr": float(np.mean(per_view)), "psnr_all": _psnr(err.mean()), "images": rgb,
            "targets": target.reshape(rgb.shape)}


def evaluate_inits(fmodel, task, inits, examples, checkpoints, chunk=4096, steps_per_call=100,
                   keep_images=1, verbose=1):
    """The single-view protocol table for several inits.

    Args:
        fmodel: `FunctionalModel` of the architecture shared by all inits.
        task: the `NerfTask` used for fitting (rays_per_step, samples, background).
        inits: list of `InitSpec`.
        examples: list of example dicts with held-out rays and "seed".
        checkpoints: test-time step counts at which held-out PSNR is measured.
        chunk: rays per rendering call.
        steps_per_call: fitting steps per compiled call.
        keep_images: keep the rendered first held-out view of this many examples.
        verbose: show a progress bar with ETA.

    Returns:
        (rows: list of dicts {"init", "example", "step", "psnr", "psnr_all",
         "seconds"}, images: dict (init, example index, step) -> (H, W, 3) first held-out
         view, plus ("target", example index) -> ground truth).
    """
    renderer = RayRenderer(fmodel, task.eval_num_samples, task.white_background, chunk)
    fitter = TestTimeFitter(fmodel, task, steps_per_call)
    rows, images = [], {}
    total = len(examples) * len(inits) * len(checkpoints)
    progbar = keras.utils.Progbar(total, verbose=verbose, stateful_metrics=["psnr"],
                                  unit_name="evaluation")
    count = 0
    for e, example in enumerate(examples):
        for spec in inits:
            start = time.perf_counter()

            def record(step, weights, spec=spec, e=e, start=start):
                nonlocal count
                result = held_out_psnr(renderer, weights, example, task.near, task.far)
                rows.append({"init": spec.name, "example": e, "step": step,
                             "psnr": result["psnr"], "psnr_all": result["psnr_all"],
                             "seconds": round(time.perf_counter() - start, 3)})
                if e < keep_images:
                    images[(spec.name, e, step)] = result["images"][0]
                    images[("target", e)] = result["targets"][0]
                count += 1
                progbar.update(count, values=[("psnr", result["psnr"])])

            fitter.fit(example, spec.weights, spec.optimizer, checkpoints, record)
    return rows, images


def summarize(rows):
    """Mean and std of PSNR per (init, step): list of dicts sorted by init order, step."""
    order = list(dict.fromkeys(r["init"] for r in rows))
    groups = {}
    for r in rows:
        groups.setdefault((r["init"], r["step"]), []).append(r)
    summary = []
    for (init, step), group in sorted(groups.items(), key=lambda kv: (order.index(kv[0][0]),
                                                                        kv[0][1])):
        psnr = np.array([g["psnr"] for g in group])
        summary.append({"init": init, "step": step, "psnr_mean": round(float(psnr.mean()), 3),
                        "psnr_std": round(float(psnr.std()), 3),
                        "psnr_all_mean": round(float(np.mean([g["psnr_all"] for g in group])),
                                               3),
                        "num_examples": len(group)})
    return summary


def write_csv(path, rows):
    """Writes a list of dicts as CSV, atomically."""
    if not rows:
        raise ValueError(f"No rows to write to {path}.")
    return init_io.write_csv_atomic(rows, path)


def save_figure(fig, path):
    """Saves a matplotlib figure as PNG atomically."""
    return atomic_save(path, lambda tmp: fig.savefig(tmp, format="png", dpi=110,
                                                     bbox_inches="tight"), ".png")


def plot_protocol(path, summary, images=None, title="Single-view protocol"):
    """PSNR-vs-steps curves per init, and (if given) the first held-out view of example 0."""
    import matplotlib  # pylint: disable=import-outside-toplevel
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # pylint: disable=import-outside-toplevel

    inits = list(dict.fromkeys(s["init"] for s in summary))
    steps = sorted({s["step"] for s in summary})
    shown = []
    if images:
        shown = [("target", images[("target", 0)])] + [
            (f"{name} @ {steps[-1]}", images[(name, 0, steps[-1])]) for name in inits
            if (name, 0, steps[-1]) in images]
    fig, axes = plt.subplots(1, 1 + len(shown), figsize=(4.5 + 2.2 * len(shown), 3.4),
                             gridspec_kw={"width_ratios": [2.2] + [1] * len(shown)})
    axes = np.atleast_1d(axes)
    ax = axes[0]
    for name in inits:
        pts = [s for s in summary if s["init"] == name]
        x = [max(s["step"], 0.5) for s in pts]  # step 0 drawn at 0.5 on the log axis
        y = [s["psnr_mean"] for s in pts]
        err = [s["psnr_std"] for s in pts]
        ax.errorbar(x, y, yerr=err, marker="o", capsize=3, label=name)
    ax.set_xscale("log")
    ax.set_xticks([max(s, 0.5) for s in steps], [str(s) for s in steps])
    ax.minorticks_off()
    ax.set_xlabel("test-time steps")
    ax.set_ylabel("held-out PSNR (dB)")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend()
    for axis, (label, image) in zip(axes[1:], shown):
        axis.imshow(np.clip(image, 0.0, 1.0))
        axis.set_title(label, fontsize=9)
        axis.axis("off")
    save_figure(fig, path)
    plt.close(fig)


def single_view_protocol(init_dir, out_dir=None, dataset="procedural_objects", split="test",
                         num_examples=10, steps=(0, 10, 100, 1000), rays_per_step=64,
                         num_samples=None, meta_optimizer=InnerOptimizer("sgd", 0.5),
                         standard_optimizer=InnerOptimizer("adam", 5e-4), standard_seed=1,
                         seed=0, chunk=4096, verbose=1, **dataset_kwargs):
    """Meta-learned vs standard init under the paper's test protocol; writes CSV + PNG.

    Fits every test example on its support rays (one view; Phototourism: the left
    half) from the init in `init_dir` with `meta_optimizer` and from a freshly
    initialised network of the same architecture (seed `standard_seed`) with
    `standard_optimizer`, and measures held-out PSNR at each of `steps`.

    Args:
        init_dir: meta-learned init directory.
        out_dir: if set, writes single_view_table.csv (mean/std per init and step),
            single_view_rows.csv (per example) and single_view.png.
        dataset: "procedural_objects", "shapenet" or "phototourism".
        split: split of the test objects.
        num_examples: objects (photos) evaluated.
        steps: test-time step counts (paper: 1000).
        rays_per_step: random rays per step (paper: 64).
        num_samples: samples per ray (default: the init's task).
        meta_optimizer, standard_optimizer: `InnerOptimizer`s (paper: SGD 0.5; Adam).
        standard_seed: first seed tried for the standard init (see `draw_standard_init`:
            seeds whose density is dead on the first example's rays are skipped).
        seed: seed of the test-time ray batches.
        chunk: rays per rendering call.
        verbose: progress bar.
        **dataset_kwargs: passed to `sources.test_examples` (config, class_name,
            manual_dir, landmark, data_dir, single_view, num_held_out_views, downsample).

    Returns:
        The summary rows (dicts with init, step, psnr_mean, psnr_std, ..., optimizer).
    """
    # pylint: disable=import-outside-toplevel
    from learnit_tf.data.pipeline import take_examples
    from learnit_tf.models import FunctionalModel
    from learnit_tf.kinds.nerf import sources

    steps = sorted({int(s) for s in steps})
    if not steps or steps[0] < 0:
        raise ValueError(f"steps must be non-negative step counts, got {steps}.")
    model = init_io.load_init(init_dir)
    config = init_io.read_config(init_dir)
    examples_ds, near, far = sources.test_examples(dataset, split, **dataset_kwargs)
    overrides = {"rays_per_step": rays_per_step, "num_samples": num_samples, "chunk": chunk}
    if near is not None:
        overrides.update(near=near, far=far)
    task = sources.task_from_init(init_dir, **overrides)
    examples = take_examples(examples_ds, num_examples, seed=seed)
    for i, example in enumerate(examples):
        task.validate_example(example, name=f"{dataset} {split} example {i}")
    standard, standard_seed = draw_standard_init(config["class_name"], config["config"],
                                                 standard_seed, examples[0], task)
    fmodel = FunctionalModel(model)
    inits = [InitSpec("meta", fmodel.initial_weights(), meta_optimizer),
             InitSpec("standard", FunctionalModel(standard).initial_weights(),
                      standard_optimizer)]
    rows, images = evaluate_inits(fmodel, task, inits, examples, steps, chunk=chunk,
                                  verbose=verbose)
    summary = summarize(rows)
    for row in summary:
        opt = meta_optimizer if row["init"] == "meta" else standard_optimizer
        row["optimizer"] = f"{opt.name} {opt.learning_rate:g}"
        row["init_seed"] = "" if row["init"] == "meta" else standard_seed
    if out_dir is not None:
        write_csv(os.path.join(out_dir, "single_view_rows.csv"), rows)
        write_csv(os.path.join(out_dir, "single_view_table.csv"), summary)
        title = ("Phototourism: left half -> right half" if dataset == "phototourism" else
                 f"{dataset}: 1 view -> held-out views")
        plot_protocol(os.path.join(out_dir, "single_view.png"), summary, images, title=title)
    return summary


def format_table(summary):
    """The summary as a fixed-width text table."""
    lines = [f"{'init':10s} {'optimizer':12s} {'step':>6s} {'PSNR (dB)':>16s}"]
    for row in summary:
        lines.append(f"{row['init']:10s} {row.get('optimizer', ''):12s} {row['step']:6d} "
                     f"{row['psnr_mean']:8.2f} ± {row['psnr_std']:5.2f}")
    return "\n".join(lines)
