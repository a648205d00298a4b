"""The single-view test protocol: fit on one view, PSNR on held-out views.

PAPER.md, "View synthesis": at test time a network is optimised on the rays of
**one** input view of a new object (1000 SGD steps at lr 0.5, 64 rays a step, from
the meta-learned init) and scored by PSNR on the object's held-out views; for
Phototourism, on the left half of a photo and scored on the right half. Standard
initialisations are optimised with Adam (the paper's finding: SGD works from the
meta init, standard inits need Adam).

The fits are the shared `learnit_tf.meta.Fitter`'s (the task's `inner_loss` draws
each step's ray batch), stopping at the protocol's steps with the optimizer state
carried on; at each stop `held_out_psnr` renders every held-out ray (chunked) with
bin-centre samples, the metric this protocol measures apart from the fit (so the
Fitter records no per-step metric). `evaluate_inits` builds the table (init × step),
the shared report helpers summarize and write it, `plot_protocol` draws it.
"""

import dataclasses
import os
import time
from typing import Optional

import keras
import numpy as np
import tensorflow as tf

from learnit_tf import evaluation, init_io
from learnit_tf.data.pipeline import take_examples
from learnit_tf.kinds.nerf import sources
from learnit_tf.kinds.nerf.density import density_alive_fraction, draw_standard_init
from learnit_tf.kinds.nerf.rendering import RayRenderer
from learnit_tf.evaluation.plots import save_figure_atomic
from learnit_tf.meta.fit import Fitter
from learnit_tf.meta.inner import InnerOptimizer
from learnit_tf.models import FunctionalModel

__all__ = ["InitSpec", "NerfOptions", "NerfProtocol", "density_alive_fraction",
           "draw_standard_init", "evaluate_inits", "format_table", "held_out_measure",
           "held_out_psnr", "plot_protocol", "protocol_examples", "report_rows",
           "single_view_protocol", "single_view_table", "summarize"]


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


# -- the protocol --------------------------------------------------------------------------

def report_rows(example_rows, optimizers, observations=1):
    """`Report` rows (mean and std over examples per init and step) from per-example rows.

    Args:
        example_rows: dicts with "init", "step", "psnr" (as `evaluate_inits` returns, or
            read back from single_view_rows.csv).
        optimizers: {init: `InnerOptimizer`}.
        observations: 1 (views fitted) or "left half" (Phototourism).
    """
    per_init_step = {}
    for row in example_rows:
        per_init_step.setdefault((row["init"], int(row["step"])), []).append(float(row["psnr"]))
    return [evaluation.report_row(init, optimizers[init], step, values, observations)
            for (init, step), values in sorted(per_init_step.items(),
                                               key=lambda kv: (kv[0][0] != "meta", kv[0]))]


@dataclasses.dataclass
class NerfOptions:
    """Options of `NerfProtocol` (defaults: the paper's single-view protocol)."""

    num_examples: int = dataclasses.field(default=10, metadata={
        "help": "Held-out signals to average over."})
    split: str = dataclasses.field(default="test", metadata={
        "help": "Held-out split of the init's signal class (or of --directory)."})
    steps: tuple = dataclasses.field(default=(0, 10, 100, 1000), metadata={
        "help": "Comma-separated test-time step counts at which held-out PSNR is measured "
                "(paper: 1000)."})
    dataset: Optional[str] = dataclasses.field(default=None, metadata={
        "help": "procedural_objects, shapenet or phototourism (default: the init's)."})
    config: Optional[str] = dataclasses.field(default=None, metadata={
        "help": "procedural_objects config: tiny, small or paper (default: the init's)."})
    class_name: Optional[str] = dataclasses.field(default=None, metadata={
        "help": "ShapeNet class: chairs, cars or lamps (default: the init's, else chairs)."})
    landmark: Optional[str] = dataclasses.field(default=None, metadata={
        "help": "Phototourism landmark (default: the init's, else sacre)."})
    manual_dir: Optional[str] = dataclasses.field(default=None, metadata={
        "help": "Manual download directory (shapenet, phototourism)."})
    data_dir: Optional[str] = dataclasses.field(default=None, metadata={
        "help": "TFDS data_dir (default: TFDS's)."})
    single_view: Optional[int] = dataclasses.field(default=None, metadata={
        "help": "Support view index (default: one per object)."})
    num_held_out_views: Optional[int] = dataclasses.field(default=None, metadata={
        "help": "Use only the first k held-out views."})
    downsample: int = dataclasses.field(default=1, metadata={
        "help": "Phototourism: keep every k-th pixel."})
    rays_per_step: int = dataclasses.field(default=64, metadata={
        "help": "Random rays per test-time step (paper: 64)."})
    num_samples: Optional[int] = dataclasses.field(default=None, metadata={
        "help": "Samples per ray (default: the init's task)."})
    chunk: int = dataclasses.field(default=4096, metadata={
        "help": "Rays per rendering call."})
    seed: int = dataclasses.field(default=0, metadata={
        "help": "Seed of the test-time ray batches (and of the choice of test objects)."})
    meta_optimizer: Optional[str] = dataclasses.field(default=None, metadata={
        "help": "Optimizer from the meta init (sgd or adam; default: the init's fit recipe "
                "or inner optimizer; the paper: sgd). Given, it is used plainly."})
    meta_learning_rate: Optional[float] = dataclasses.field(default=None, metadata={
        "help": "Learning rate from the meta init (default: the init's inner learning rate)."})
    standard_optimizer: str = dataclasses.field(default="adam", metadata={
        "help": "Optimizer of the standard init (sgd or adam; the paper: adam)."})
    standard_learning_rate: float = dataclasses.field(default=5e-4, metadata={
        "help": "Learning rate of the standard init."})
    standard_seed: int = dataclasses.field(default=1, metadata={
        "help": "Seed of the standard init (NeRF: the first seed tried; seeds whose ReLU "
                "density is dead on the first object's rays are skipped)."})
    directory: Optional[str] = dataclasses.field(default=None, metadata={
        "help": "Evaluate on a folder of your own files of the init's kind instead."})
    select_fit_recipe: bool = dataclasses.field(default=False, metadata={
        "help": "Choose the meta init's fit recipe on the validation split first (its "
                "inner SGD throughout, or its inner steps then Adam at each of "
                "--recipe_learning_rates), scored by held-out-view PSNR, and evaluate "
                "with it."})
    recipe_learning_rates: str = dataclasses.field(default="1e-4,5e-4,1e-3", metadata={
        "help": "Adam learning rates tried by --select_fit_recipe."})
    recipe_steps: Optional[int] = dataclasses.field(default=None, metadata={
        "help": "Steps of each --select_fit_recipe trial fit (default: the largest of "
                "--steps)."})
    recipe_examples: int = dataclasses.field(default=2, metadata={
        "help": "Validation objects (photos) of each --select_fit_recipe trial."})
    progress: bool = dataclasses.field(default=True, metadata={
        "help": "Show a progress bar with ETA."})


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


class NerfProtocol(evaluation.Protocol):
    """The paper's single-view protocol as a `Report` (Phototourism: half-image).

    Each held-out object is fitted on ONE view (a photo's left half) from the meta
    init (SGD 0.5, 64 rays a step) and from a standard init (Adam 5e-4); rows give the
    PSNR on its held-out views (the right half) after each of `steps`, observations =
    1 (views fitted) or "left half". Headline: both inits' PSNR at the first reported
    step and the first reported step at which the standard init reaches the meta
    init's PSNR there (`steps_to_match`, "> N" if none).

    Example:

    >>> NerfProtocol(steps="0,2", num_examples=1).options.steps
    (0, 2)
    """

    name = "nerf_single_view"
    Options = NerfOptions

    def folder_options(self, task):
        o = self.options
        bounds = {} if task is None else {"near": task.near, "far": task.far}
        return {"views": "single", "single_view": o.single_view, "held_out": True,
                "num_held_out_views": o.num_held_out_views, **bounds}

    def _dataset_arguments(self, metadata):
        o = self.options
        dataset, bindings = sources.dataset_from_metadata(metadata)
        dataset = o.dataset or dataset
        kwargs = {"config": o.config or bindings.get("config", "small"),
                  "class_name": o.class_name or bindings.get("class_name", "chairs"),
                  "landmark": o.landmark or bindings.get("landmark", "sacre"),
                  "manual_dir": o.manual_dir, "data_dir": o.data_dir,
                  "single_view": o.single_view, "num_held_out_views": o.num_held_out_views,
                  "downsample": o.downsample}
        return dataset, kwargs

    def choose_fit_recipe(self, model, metadata, dataset, kwargs):
        """`evaluation.select_fit_recipe` on the validation split (or the folder's
        validation/), scored by held-out-view PSNR: the recipe and its trial rows."""
        o = self.options
        if o.meta_learning_rate is not None or o.meta_optimizer is not None:
            raise ValueError("--select_fit_recipe chooses the meta init's optimizer; do not "
                             "also pass --meta_optimizer or --meta_learning_rate.")
        examples = (self.folder_examples(metadata, o.directory, "validation",
                                         o.recipe_examples, sources.task_from_metadata(metadata))
                    if o.directory else None)
        examples, task = protocol_examples(
            metadata, dataset, "validation", o.recipe_examples, o.seed, examples,
            rays_per_step=o.rays_per_step, num_samples=o.num_samples, chunk=o.chunk, **kwargs)
        if not examples:
            raise ValueError("--select_fit_recipe needs validation signals; the validation "
                             f"split of {dataset} holds none.")
        steps = max(o.steps) if o.recipe_steps is None else o.recipe_steps
        if steps < 1:
            raise ValueError(f"--recipe_steps must be >= 1, got {steps}.")
        print(f"Choosing the fit recipe on {len(examples)} validation objects, {steps} "
              "steps per trial:")
        return evaluation.select_fit_recipe(
            model, metadata, task, examples, steps,
            evaluation.parse_numbers(o.recipe_learning_rates, "recipe_learning_rates"),
            default_learning_rate=0.5,
            measure=held_out_measure(model, task, examples, o.chunk, 1 if o.progress else 0))

    def evaluate(self, model, metadata, init_name="", examples=None):
        o = self.options
        dataset, kwargs = self._dataset_arguments(metadata)
        if examples is None and o.directory:
            dataset = "posed-views folder"
            examples = self.folder_examples(metadata, o.directory, o.split, o.num_examples,
                                            sources.task_from_metadata(metadata))
        # The init's own recipe (or its inner SGD, with its learned rates if any; the
        # paper: SGD 0.5), or the plain optimizer the flags ask for.
        meta_opt = evaluation.meta_optimizer_from_metadata(
            metadata, o.meta_learning_rate, optimizer=o.meta_optimizer,
            default_learning_rate=0.5)
        selection = None
        if o.select_fit_recipe:
            meta_opt, selection = self.choose_fit_recipe(model, metadata, dataset, kwargs)
        standard_opt = InnerOptimizer(o.standard_optimizer, o.standard_learning_rate)
        table = single_view_table(
            model, metadata, dataset, o.split, o.num_examples, o.steps, o.rays_per_step,
            o.num_samples, meta_opt, standard_opt, o.standard_seed, o.seed, o.chunk,
            1 if o.progress else 0, examples=examples, **kwargs)
        observations = "left half" if dataset == "phototourism" else 1
        rows = report_rows(table.rows, {"meta": meta_opt, "standard": standard_opt},
                           observations)
        settings = dict(dataclasses.asdict(o), steps=list(o.steps), dataset=dataset,
                        standard_seed_used=table.standard_seed,
                        meta_optimizer=evaluation.optimizer_setting(meta_opt),
                        standard_optimizer=evaluation.optimizer_setting(standard_opt),
                        **{k: v for k, v in kwargs.items() if k not in ("config",)})
        settings["config"] = kwargs["config"] if isinstance(kwargs["config"], str) else str(
            getattr(kwargs["config"], "name", kwargs["config"]))
        summary = {"single_view_table": table.summary}
        if selection is not None:  # evaluate.py --write_metadata records it with the init.
            summary["fit_recipe"] = meta_opt.to_dict()
            summary["fit_recipe_selection"] = selection
        return evaluation.Report(
            protocol=self.name, init=init_name, rows=rows, summary=summary, settings=settings,
            tables={"per_example.csv": (("init", "example", "step", "psnr", "psnr_all",
                                         "seconds"), table.rows)},
            figures={"single_view.png": lambda path: plot_protocol(
                path, table.summary, table.images, title=_title(dataset))})

    @classmethod
    def headline(cls, report):
        steps = sorted({int(r["steps"]) for r in report.rows if r["init"] == "meta"})
        if not steps:
            return {}
        meta = report.row("meta", steps=steps[0])
        standard = report.row("standard", steps=steps[0])
        fitted_on = ("the left half" if meta["observations"] == "left half"
                     else f"{meta['observations']} view")
        headline = {"psnr_at": f"{steps[0]} step{'s' if steps[0] != 1 else ''}, fit on "
                               f"{fitted_on}",
                    f"meta_psnr_at_{steps[0]}": meta["psnr_mean"]}
        if standard is not None:
            headline[f"standard_psnr_at_{steps[0]}"] = standard["psnr_mean"]
            standard_rows = sorted((r for r in report.rows if r["init"] == "standard"),
                                   key=lambda r: r["steps"])
            reached = [r["steps"] for r in standard_rows if r["psnr_mean"] >= meta["psnr_mean"]]
            headline["steps_to_match"] = (reached[0] if reached
                                          else f"> {standard_rows[-1]['steps']}")
        headline.update(evaluation.recipe_headline(report))
        return headline

    @classmethod
    def legacy_headline(cls, evaluation_summary):
        """None: NeRF evaluations recorded before reports used the image protocol, not this."""
        del evaluation_summary
        return {}
