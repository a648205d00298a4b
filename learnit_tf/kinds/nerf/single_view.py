"""The single-view protocol's fits and measurements: fit on one view, PSNR on held-out views.

`evaluate_inits` fits every held-out object's support rays from every init with the
shared `learnit_tf.meta.Fitter` (the task's `inner_loss` draws each step's ray batch),
stopping at the protocol's steps with the optimizer state carried on; at each stop
`held_out_psnr` renders every held-out ray (chunked) with bin-centre samples, the
metric measured apart from the fit (so the Fitter records no per-step metric).
`summarize` gives mean/std per init and step (`evaluation.mean_rows`),
`single_view_table` the table for a meta init vs a standard init, `plot_protocol` the
figure, `held_out_measure` the fit recipe score (`evaluation.select_fit_recipe`).
`learnit_tf.kinds.nerf.evaluation.NerfProtocol` turns the table into a `Report`.
"""

import dataclasses
import os
import time
from typing import Optional

import keras
import numpy as np

from learnit_tf import evaluation
from learnit_tf.meta import init_io
from learnit_tf.data.pipeline import take_examples
from learnit_tf.evaluation.plots import save_figure_atomic
from learnit_tf.kinds.nerf import sources
from learnit_tf.kinds.nerf.density import draw_standard_init
from learnit_tf.kinds.nerf.rendering import RayRenderer
from learnit_tf.meta.fit import Fitter
from learnit_tf.meta.inner import InnerOptimizer
from learnit_tf.models import FunctionalModel


@dataclasses.dataclass
class InitSpec:
    """A starting point of the protocol: a name, weights and how to fit from them (an
    `InnerOptimizer` or a `FitRecipe`). `model`: the network (same architecture) whose
    constants and learned inner rates the fit uses (a recipe phase with
    `learned_rates` steps with them); default: the architecture's model."""

    name: str
    weights: list
    optimizer: object
    model: Optional[object] = None


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
    checkpoints = sorted({int(c) for c in checkpoints})
    if not checkpoints or checkpoints[0] < 0:
        raise ValueError(f"checkpoints must be non-negative step counts, got {checkpoints}.")
    # One compiled fit per init; no per-step metric (held-out views are rendered at stops).
    fitters = [Fitter(fmodel.model, task, spec.optimizer,
                      steps_per_call=max(1, min(steps_per_call, checkpoints[-1] or 1)),
                      record_metrics=False) for spec in inits]
    rows, images = [], {}
    total = len(examples) * len(inits) * len(checkpoints)
    progbar = keras.utils.Progbar(total, verbose=verbose, stateful_metrics=["psnr"],
                                  unit_name="evaluation")
    count = 0
    for e, example in enumerate(examples):
        for spec, fitter in zip(inits, fitters):
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

            fitter.fit(example, checkpoints[-1], weights=spec.weights, model=spec.model,
                       stop_at=checkpoints, on_stop=record)
    return rows, images


def summarize(rows):
    """Mean and std of PSNR per (init, step) (`evaluation.mean_rows`, 3 decimals) and the
    mean PSNR of all held-out rays: dicts sorted by init order, then step."""
    order = list(dict.fromkeys(r["init"] for r in rows))
    groups = {}
    for r in sorted(rows, key=lambda r: (order.index(r["init"]), r["step"])):
        groups.setdefault((r["init"], r["step"]), []).append(r)
    means = evaluation.mean_rows({k: [g["psnr"] for g in group] for k, group in groups.items()},
                                 ("init", "step"), digits=3)
    return [{"init": m["init"], "step": m["step"], "psnr_mean": m["psnr_mean"],
             "psnr_std": m["psnr_std"],
             "psnr_all_mean": round(float(np.mean([g["psnr_all"] for g in group])), 3),
             "num_examples": m["num_examples"]} for m, group in zip(means, groups.values())]


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
    save_figure_atomic(fig, path, dpi=110)


def single_view_protocol(init_dir, out_dir=None, dataset="procedural_objects", split="test",
                         num_examples=10, steps=(0, 10, 100, 1000), rays_per_step=64,
                         num_samples=None, meta_optimizer=InnerOptimizer("sgd", 0.5),
                         standard_optimizer=InnerOptimizer("adam", 5e-4), standard_seed=1,
                         seed=0, chunk=4096, verbose=1, **dataset_kwargs):
    """Meta-learned vs standard init under the paper's test protocol; writes CSV + PNG.

    `single_view_table` for the init in `init_dir`; if `out_dir` is set, writes
    single_view_table.csv (mean/std per init and step), single_view_rows.csv (per
    example) and single_view.png. (`NerfProtocol` gives the same numbers as a `Report`.)

    Returns:
        The summary rows (dicts with init, step, psnr_mean, psnr_std, ..., optimizer).
    """
    table = single_view_table(
        init_io.load_init(init_dir), init_io.read_metadata(init_dir), dataset, split,
        num_examples, steps, rays_per_step, num_samples, meta_optimizer, standard_optimizer,
        standard_seed, seed, chunk, verbose, **dataset_kwargs)
    if out_dir is not None:
        evaluation.write_csv_atomic(table.rows, os.path.join(out_dir, "single_view_rows.csv"),
                                    columns=None)
        evaluation.write_csv_atomic(table.summary,
                                    os.path.join(out_dir, "single_view_table.csv"), columns=None)
        plot_protocol(os.path.join(out_dir, "single_view.png"), table.summary, table.images,
                      title=_title(dataset))
    return table.summary


@dataclasses.dataclass
class SingleViewTable:
    """Outcome of `single_view_table`: per-example rows, the summary, first held-out views."""

    rows: list
    summary: list
    images: dict
    standard_seed: int


def protocol_examples(metadata, dataset, split, num_examples, seed, examples=None,
                      rays_per_step=64, num_samples=None, chunk=4096, **dataset_kwargs):
    """The examples of a split under the single-view protocol and the task that fits them.

    Reads `num_examples` of `split` of `dataset` (`sources.test_examples`, chosen with
    `seed`) unless `examples` are given; the task is the init's (`metadata`) with
    `rays_per_step`, `num_samples`, `chunk` and the dataset's near/far bounds; every
    example is validated against it.

    Returns:
        (list of examples, possibly empty; `NerfTask`).
    """
    overrides = {"rays_per_step": rays_per_step, "num_samples": num_samples, "chunk": chunk}
    if examples is None:
        examples_ds, near, far = sources.test_examples(dataset, split, **dataset_kwargs)
        if near is not None:
            overrides.update(near=near, far=far)
        examples = take_examples(examples_ds, num_examples, seed=seed)
    task = sources.task_from_metadata(metadata, **overrides)
    for i, example in enumerate(examples):
        task.validate_example(example, name=f"{dataset} {split} example {i}")
    return examples, task


def single_view_table(model, metadata, dataset="procedural_objects", split="test",
                      num_examples=10, steps=(0, 10, 100, 1000), rays_per_step=64,
                      num_samples=None, meta_optimizer=InnerOptimizer("sgd", 0.5),
                      standard_optimizer=InnerOptimizer("adam", 5e-4), standard_seed=1, seed=0,
                      chunk=4096, verbose=1, examples=None, **dataset_kwargs):
    """The single-view protocol for a meta-learned init: meta vs standard init, per step.

    Fits every test example on its support rays (one view; Phototourism: the left
    half) from `model` with `meta_optimizer` and from a freshly initialised network of
    the same architecture (seed `standard_seed`) with `standard_optimizer`, and
    measures held-out PSNR at each of `steps`.

    Args:
        model: the meta-learned init (a NerfMLP).
        metadata: its metadata (the task settings: samples, bounds, background).
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
        examples: test examples to use instead of reading `dataset`.
        **dataset_kwargs: passed to `sources.test_examples` (config, class_name,
            manual_dir, landmark, data_dir, single_view, num_held_out_views, downsample).

    Returns:
        A `SingleViewTable`; its summary rows carry "optimizer" and "init_seed".
    """
    steps = sorted({int(s) for s in steps})
    if not steps or steps[0] < 0:
        raise ValueError(f"steps must be non-negative step counts, got {steps}.")
    examples, task = protocol_examples(
        metadata, dataset, split, num_examples, seed, examples,
        rays_per_step=rays_per_step, num_samples=num_samples, chunk=chunk, **dataset_kwargs)
    if not examples:
        raise ValueError(f"Split {split!r} of {dataset} holds no test examples.")
    standard, standard_seed = draw_standard_init(type(model).__name__, model.get_config(),
                                                 standard_seed, examples[0], task)
    fmodel = FunctionalModel(model)
    inits = [InitSpec("meta", fmodel.initial_weights(), meta_optimizer, model),
             InitSpec("standard", FunctionalModel(standard).initial_weights(),
                      standard_optimizer, standard)]
    rows, images = evaluate_inits(fmodel, task, inits, examples, steps, chunk=chunk,
                                  verbose=verbose)
    summary = summarize(rows)
    for row in summary:
        opt = meta_optimizer if row["init"] == "meta" else standard_optimizer
        row["optimizer"] = opt.describe()  # "sgd 0.5", or a recipe's name.
        row["init_seed"] = "" if row["init"] == "meta" else standard_seed
    return SingleViewTable(rows=rows, summary=summary, images=images,
                           standard_seed=standard_seed)


def _title(dataset):
    return ("Phototourism: left half -> right half" if dataset == "phototourism" else
            f"{dataset}: 1 view -> held-out views")


def format_table(summary):
    """The summary as a fixed-width text table."""
    lines = [f"{'init':10s} {'optimizer':12s} {'step':>6s} {'PSNR (dB)':>16s}"]
    for row in summary:
        lines.append(f"{row['init']:10s} {row.get('optimizer', ''):12s} {row['step']:6d} "
                     f"{row['psnr_mean']:8.2f} ± {row['psnr_std']:5.2f}")
    return "\n".join(lines)


def held_out_measure(model, task, examples, chunk=4096, verbose=0):
    """measure(recipe, steps) for `evaluation.select_fit_recipe`: the mean held-out-view
    PSNR over `examples` at each of `steps`, fitting each example's support rays from
    `model` with `recipe`."""
    fmodel = FunctionalModel(model)

    def measure(recipe, steps):
        rows, _ = evaluate_inits(fmodel, task, [InitSpec(recipe.name, fmodel.initial_weights(),
                                                         recipe, model)],
                                 examples, steps, chunk=chunk, keep_images=0, verbose=verbose)
        return [np.mean([r["psnr"] for r in rows if r["step"] == step]) for step in steps]
    return measure
