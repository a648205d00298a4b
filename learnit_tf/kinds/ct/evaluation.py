"""The paper's CT views table: PSNR against number of views, meta init vs standard init.

PAPER.md, "CT reconstruction": held-out phantoms are observed from V views evenly
spaced in [0, π); a network is fitted to those projections from the meta-learned
init (SGD at the meta-learning rate, as the authors' notebook) and from a standard
init of the same architecture (Adam, the paper's choice for standard inits); the
table reports the PSNR of the reconstructed image against the phantom. The claim:
the meta init with N views beats the standard init with 2N views.

`CtProtocol` is the kind's `learnit_tf.evaluation.Protocol`: it reads the held-out
phantoms of the init's dataset, runs `evaluate_views` and returns a `Report` (one row
per init and view count, observations = views) with the claim, per-phantom PSNRs and
the figures. `write_views_csv`, `plot_psnr_vs_views` and `plot_reconstruction_grid`
write the table's parts (atomically); `claim_rows` checks the claim.
"""

import dataclasses
import math
from typing import Optional

import keras
import numpy as np

from learnit_tf import evaluation
from learnit_tf.evaluation.baselines import standard_init
from learnit_tf.evaluation import meta_optimizer_from_metadata, write_csv_atomic
from learnit_tf.meta import Fitter, InnerOptimizer
from learnit_tf.evaluation.plots import pyplot, save_figure_atomic
from learnit_tf.models import FunctionalModel
from learnit_tf.kinds.ct.task import CtTask, make_eval_example

META, STANDARD = "meta", "standard"
CSV_COLUMNS = ("init", "views", "steps", "psnr_mean", "psnr_std", "num_examples")


@dataclasses.dataclass
class ViewsTable:
    """Outcome of `evaluate_views`.

    Attributes:
        rows: list of {"init", "views", "steps", "psnr_mean", "psnr_std", "num_examples"}.
        psnrs: {(init, views): np.ndarray (num_examples,)} final PSNR per phantom.
        reconstructions: {(init, views): list of (N, N) arrays} for the first phantoms.
        sinograms: {views: list of (V, N) arrays} observed by those phantoms.
        images: list of (N, N) ground-truth images of those phantoms.
    """

    rows: list
    psnrs: dict
    reconstructions: dict
    sinograms: dict
    images: list


def _as_images(examples):
    images = []
    for i, ex in enumerate(examples):
        image = ex["image"] if isinstance(ex, dict) else ex
        image = np.asarray(image, np.float32)
        if image.ndim == 3 and image.shape[-1] == 1:
            image = image[..., 0]
        if image.ndim != 2 or image.shape[0] != image.shape[1]:
            raise ValueError(f"Held-out example {i} must be a square (N, N[, 1]) image, got "
                             f"shape {image.shape}.")
        images.append(image)
    if not images:
        raise ValueError("evaluate_views needs at least one held-out example.")
    sizes = {im.shape for im in images}
    if len(sizes) != 1:
        raise ValueError(f"Held-out images must share one size, got {sorted(sizes)}.")
    return images


def evaluate_views(meta_model, examples, views=(1, 2, 4, 8, 16), steps=1000,
                   meta_optimizer=InnerOptimizer("sgd", 10.0),
                   standard_optimizer=InnerOptimizer("adam", 1e-3), standard_seed=1,
                   standard_model=None, interpolation="bilinear", num_reconstructions=1,
                   steps_per_call=100, jit_compile="auto", progress=True):
    """PSNR after test-time fitting from the meta init and a standard init, per view count.

    Args:
        meta_model: the meta-learned init (a built Keras coordinate network).
        examples: held-out phantoms: (N, N[, 1]) arrays or dicts with an "image".
        views: numbers of evenly spaced views in [0, π).
        steps: test-time optimizer steps; an int or {"meta": int, "standard": int}.
        meta_optimizer: optimizer from the meta init (authors: SGD at the inner lr, 10).
        standard_optimizer: optimizer from the standard init (paper: Adam).
        standard_seed: seed of the standard init
            (`learnit_tf.evaluation.baselines.standard_init`; meta-training starts from
            seed 0, so 1 gives an init the meta-learner never saw).
        standard_model: use this model as the standard init instead.
        interpolation: projector interpolation for both the observations and the fit.
        num_reconstructions: keep the reconstructions of this many first phantoms.
        steps_per_call: optimizer steps compiled into one call.
        jit_compile: compile the fits with XLA (False trades speed for no compile time).
        progress: show a progress bar with ETA.

    Returns:
        A `ViewsTable`.

    Example:

    >>> from learnit_tf.models import FourierFeatureMLP
    >>> m = FourierFeatureMLP(num_features=8, width=16, hidden_layers=1,
    ...                       output_activation="sigmoid", seed=0)
    >>> t = evaluate_views(m, [np.zeros((8, 8))], views=(1,), steps=2, progress=False)
    >>> [(r["init"], r["views"]) for r in t.rows]
    [('meta', 1), ('standard', 1)]
    """
    images = _as_images(examples)
    views = [int(v) for v in views]
    if not views or min(views) < 1:
        raise ValueError(f"views must be positive view counts, got {views}.")
    steps = steps if isinstance(steps, dict) else {META: steps, STANDARD: steps}
    steps = {k: int(v) for k, v in steps.items()}
    if set(steps) != {META, STANDARD} or min(steps.values()) < 0:
        raise ValueError(f"steps must be an int >= 0 or {{'meta': int, 'standard': int}}, "
                         f"got {steps}.")
    n = images[0].shape[0]
    task = CtTask(n, interpolation=interpolation)
    if standard_model is None:
        standard_model = standard_init(meta_model, standard_seed)
    inits = {META: (meta_model, meta_optimizer), STANDARD: (standard_model, standard_optimizer)}
    fitters = {name: Fitter(model, task, opt, jit_compile=jit_compile,
                            steps_per_call=max(1, min(steps_per_call, steps[name] or 1)))
               for name, (model, opt) in inits.items()}
    start = {name: FunctionalModel(model).initial_weights()
             for name, (model, _) in inits.items()}

    total = len(views) * len(images) * len(inits)
    bar = keras.utils.Progbar(total, verbose=1 if progress else 0, unit_name="fit")
    psnrs, recons, sinos = {}, {}, {}
    done = 0
    keep = max(0, int(num_reconstructions))
    for v in views:
        for i, image in enumerate(images):
            example = make_eval_example(image, num_views=v, interpolation=interpolation)
            if i < keep:
                sinos.setdefault(v, []).append(example["sinogram"])
            for name in inits:
                result = fitters[name].fit(example, steps[name], weights=start[name])
                psnrs.setdefault((name, v), []).append(float(result.psnr[-1]))
                if i < keep:
                    image_out = task.render(fitters[name].fmodel, result.weights).numpy()
                    recons.setdefault((name, v), []).append(image_out[..., 0])
                done += 1
                bar.update(done)
    rows = evaluation.mean_rows({(name, v, steps[name]): psnrs[(name, v)]
                                 for name in inits for v in views}, ("init", "views", "steps"))
    return ViewsTable(rows=rows, psnrs={k: np.asarray(x) for k, x in psnrs.items()},
                      reconstructions=recons, sinograms=sinos, images=images[:keep])


def claim_rows(rows):
    """The paper's claim per N: meta PSNR with N views vs standard PSNR with 2N views.

    Returns:
        list of {"views": N, "meta_psnr": ..., "standard_psnr_2x_views": ..., "holds": bool}
        for every N whose 2N is also in the table.
    """
    table = {(r["init"], int(r["views"])): float(r["psnr_mean"]) for r in rows}
    out = []
    for (init, v), value in sorted(table.items(), key=lambda kv: kv[0][1]):
        if init == META and (STANDARD, 2 * v) in table:
            other = table[(STANDARD, 2 * v)]
            out.append({"views": v, "meta_psnr": value, "standard_psnr_2x_views": other,
                        "holds": bool(value >= other)})
    return out


def write_views_csv(rows, path):
    """Writes the table rows to `path` as CSV (via a temporary file and rename)."""
    write_csv_atomic(rows, path, columns=CSV_COLUMNS)
    return path


def plot_psnr_vs_views(rows, path, title="CT reconstruction: PSNR vs number of views"):
    """Writes a PNG of mean ± std PSNR against the number of views, one line per init."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(5.5, 4))
    for init in sorted({r["init"] for r in rows}):
        rs = sorted((r for r in rows if r["init"] == init), key=lambda r: r["views"])
        x = [r["views"] for r in rs]
        ax.errorbar(x, [r["psnr_mean"] for r in rs], yerr=[r["psnr_std"] for r in rs],
                    marker="o", capsize=3, label=f"{init} init ({rs[0]['steps']} steps)")
    ax.set_xscale("log", base=2)
    views = sorted({r["views"] for r in rows})
    ax.set_xticks(views)
    ax.set_xticklabels([str(v) for v in views])
    ax.set_xlabel("number of views (evenly spaced in [0, π))")
    ax.set_ylabel("PSNR of the reconstruction (dB)")
    ax.set_title(title)
    ax.grid(True, alpha=0.3)
    ax.legend()
    return save_figure_atomic(fig, path)


def plot_reconstruction_grid(table, path, example=0):
    """Writes a PNG: per view count, the sinogram and both reconstructions of one phantom.

    Columns are view counts; rows are the observed sinogram, the meta-init and the
    standard-init reconstructions; the ground truth is in the first column.
    """
    plt = pyplot()
    if example >= len(table.images):
        raise ValueError(f"The table keeps {len(table.images)} reconstructions; example "
                         f"{example} is not among them (raise num_reconstructions).")
    views = sorted(table.sinograms)
    inits = [name for name in (META, STANDARD) if (name, views[0]) in table.reconstructions]
    nrows, ncols = 1 + len(inits), 1 + len(views)
    fig, axes = plt.subplots(nrows, ncols, figsize=(2.2 * ncols, 2.3 * nrows), squeeze=False)
    truth = table.images[example]
    for ax in axes.flat:
        ax.set_xticks([])
        ax.set_yticks([])
    axes[0, 0].imshow(truth, cmap="gray", vmin=0, vmax=1)
    axes[0, 0].set_title("phantom")
    for r in range(1, nrows):
        axes[r, 0].axis("off")
    for c, v in enumerate(views, start=1):
        sino = table.sinograms[v][example]
        axes[0, c].imshow(sino, cmap="gray", aspect="auto", interpolation="nearest")
        axes[0, c].set_title(f"sinogram, {v} view{'s' if v > 1 else ''}")
        for r, name in enumerate(inits, start=1):
            recon = table.reconstructions[(name, v)][example]
            mse = float(np.mean((recon - truth) ** 2))
            psnr = 10 * math.log10(1.0 / mse) if mse > 0 else float("inf")
            axes[r, c].imshow(np.clip(recon, 0, 1), cmap="gray", vmin=0, vmax=1)
            axes[r, c].set_title(f"{name}: {psnr:.1f} dB", fontsize=9)
            if c == 1:
                axes[r, c].set_ylabel(f"{name} init")
    return save_figure_atomic(fig, path)


# -- the protocol --------------------------------------------------------------------------

@dataclasses.dataclass
class CtOptions:
    """Options of `CtProtocol` (defaults: the paper's views table on a CPU budget)."""

    num_examples: int = dataclasses.field(default=8, metadata={
        "help": "Held-out signals to average over."})
    split: str = dataclasses.field(default="test", metadata={
        "help": "Held-out split of the init's signal class (or of --directory)."})
    views: tuple = dataclasses.field(default=(1, 2, 4, 8, 16), metadata={
        "help": "Numbers of evenly spaced views in [0, pi) (comma-separated)."})
    steps: int = dataclasses.field(default=1000, metadata={
        "help": "Test-time steps of both inits (authors' notebook: 1000)."})
    standard_steps: Optional[int] = dataclasses.field(default=None, metadata={
        "help": "Test-time steps from the standard init (CT default: --steps)."})
    meta_learning_rate: Optional[float] = dataclasses.field(default=None, metadata={
        "help": "Learning rate from the meta init (default: the init's inner learning rate)."})
    standard_optimizer: str = dataclasses.field(default="adam", metadata={
        "help": "Optimizer of the standard init (sgd or adam; the paper: adam)."})
    standard_learning_rate: float = dataclasses.field(default=1e-3, metadata={
        "help": "Learning rate of the standard init."})
    standard_seed: int = dataclasses.field(default=1, metadata={
        "help": "Seed of the standard init."})
    config: Optional[str] = dataclasses.field(default=None, metadata={
        "help": "shepp_logan config: small (64x64) or paper (256x256); default: the init's."})
    interpolation: Optional[str] = dataclasses.field(default=None, metadata={
        "help": "Projector interpolation, bilinear or nearest (default: the init's)."})
    num_reconstructions: int = dataclasses.field(default=1, metadata={
        "help": "Phantoms whose reconstructions are kept and drawn."})
    data_dir: Optional[str] = dataclasses.field(default=None, metadata={
        "help": "TFDS data_dir (default: TFDS's)."})
    directory: Optional[str] = dataclasses.field(default=None, metadata={
        "help": "Evaluate on a folder of your own files of the init's kind instead."})
    select_fit_recipe: bool = dataclasses.field(default=False, metadata={
        "help": "Choose the meta init's fit recipe on the validation split first (its "
                "inner SGD throughout, or its inner steps then Adam at each of "
                "--recipe_learning_rates), fitting --recipe_views views, and evaluate "
                "with it."})
    recipe_learning_rates: str = dataclasses.field(default="1e-4,3e-4,1e-3", metadata={
        "help": "Adam learning rates tried by --select_fit_recipe."})
    recipe_steps: Optional[int] = dataclasses.field(default=None, metadata={
        "help": "Steps of each --select_fit_recipe trial fit (default: --steps)."})
    recipe_examples: int = dataclasses.field(default=4, metadata={
        "help": "Validation phantoms of each --select_fit_recipe trial."})
    recipe_views: int = dataclasses.field(default=4, metadata={
        "help": "Views of the --select_fit_recipe trial fits."})
    progress: bool = dataclasses.field(default=True, metadata={
        "help": "Show a progress bar with ETA."})


class CtProtocol(evaluation.Protocol):
    """The paper's CT views table as a `Report`: PSNR vs number of views, meta vs standard.

    Rows: one per (init, views), `steps` test-time steps each, `observations` = views.
    Headline: PSNR of both inits at the fewest views, and how many views the standard
    init needs to reach the meta init's PSNR there (`views_to_match`).

    Example:

    >>> from learnit_tf.models import FourierFeatureMLP
    >>> m = FourierFeatureMLP(num_features=8, width=16, hidden_layers=1,
    ...                       output_activation="sigmoid", seed=0)
    >>> metadata = {"task": {"class_name": "CtTask", "config": {"resolution": 8}}}
    >>> report = CtProtocol(views=(1, 2), steps=1, progress=False).evaluate(
    ...     m, metadata, "tiny", examples=[np.zeros((8, 8))])
    >>> [(r["init"], r["observations"], r["count"]) for r in report.rows]
    [('meta', 1, 1), ('meta', 2, 1), ('standard', 1, 1), ('standard', 2, 1)]
    """

    name = "ct_views"
    Options = CtOptions

    def folder_options(self, task):
        return {"resolution": int(task.resolution)}

    def held_out(self, metadata, split=None, num_examples=None):
        """The first `num_examples` phantoms of the split (in the dataset's order)."""
        o = self.options
        split = o.split if split is None else split
        num_examples = o.num_examples if num_examples is None else num_examples
        if o.directory:
            return self.folder_examples(metadata, o.directory, split, num_examples,
                                        evaluation.task_from_metadata(metadata))
        overrides = {"config": o.config} if o.config else {}
        ds = evaluation.dataset_fn_from_metadata(metadata, o.data_dir, **overrides)(split)
        examples = list(ds.take(num_examples).as_numpy_iterator())
        if len(examples) < num_examples:
            raise ValueError(f"num_examples={num_examples} but split {split!r} holds "
                             f"{len(examples)} phantoms.")
        return examples

    def choose_fit_recipe(self, model, metadata, interpolation):
        """`evaluation.select_fit_recipe` on validation phantoms seen from
        `recipe_views` views: the recipe and its trial rows."""
        o = self.options
        if o.meta_learning_rate is not None:
            raise ValueError("--select_fit_recipe chooses the meta init's optimizer; do not "
                             "also pass --meta_learning_rate.")
        images = _as_images(self.held_out(metadata, "validation", o.recipe_examples))
        examples = [make_eval_example(image, num_views=o.recipe_views,
                                      interpolation=interpolation) for image in images]
        task = CtTask(images[0].shape[0], interpolation=interpolation)
        steps = o.steps if o.recipe_steps is None else o.recipe_steps
        print(f"Choosing the fit recipe on {len(examples)} validation phantoms, "
              f"{o.recipe_views} views, {steps} steps per trial:")
        return evaluation.select_fit_recipe(
            model, metadata, task, examples, steps,
            evaluation.parse_numbers(o.recipe_learning_rates, "recipe_learning_rates"),
            progress=o.progress, default_learning_rate=10.0)

    def evaluate(self, model, metadata, init_name="", examples=None):
        o = self.options
        if o.num_examples < 1:
            raise ValueError(f"num_examples must be >= 1, got {o.num_examples}.")
        if examples is None:
            examples = self.held_out(metadata)
        task_config = (metadata.get("task") or {}).get("config") or {}
        interpolation = o.interpolation or task_config.get("interpolation", "bilinear")
        # Its fit recipe, else the authors' CT test-time optimizer: its inner SGD at the
        # inner learning rate (paper: 10), with its learned Meta-SGD rates if any.
        meta_opt = meta_optimizer_from_metadata(metadata, o.meta_learning_rate,
                                                default_learning_rate=10.0)
        selection = None
        if o.select_fit_recipe:
            meta_opt, selection = self.choose_fit_recipe(model, metadata, interpolation)
        standard_opt = InnerOptimizer(o.standard_optimizer, o.standard_learning_rate)
        steps = {META: o.steps, STANDARD: o.steps if o.standard_steps is None
                 else o.standard_steps}
        table = evaluate_views(model, examples, views=o.views, steps=steps,
                               meta_optimizer=meta_opt, standard_optimizer=standard_opt,
                               standard_seed=o.standard_seed, interpolation=interpolation,
                               num_reconstructions=o.num_reconstructions, progress=o.progress)
        optimizers = {META: meta_opt, STANDARD: standard_opt}
        rows = [evaluation.report_row(r["init"], optimizers[r["init"]], r["steps"],
                                      table.psnrs[(r["init"], r["views"])], r["views"])
                for r in table.rows]
        per_example = [{"init": init, "views": v, "example": i, "psnr": float(p)}
                       for (init, v), values in table.psnrs.items()
                       for i, p in enumerate(values)]
        settings = dict(dataclasses.asdict(o), views=list(o.views), steps=steps,
                        num_examples=len(table.psnrs[(META, table.rows[0]["views"])]),
                        interpolation=interpolation,
                        meta_optimizer=evaluation.optimizer_setting(meta_opt),
                        standard_optimizer=evaluation.optimizer_setting(standard_opt))
        summary = {"claim_meta_n_vs_standard_2n": claim_rows(table.rows)}
        if selection is not None:  # evaluate.py --write_metadata records it with the init.
            summary["fit_recipe"] = meta_opt.to_dict()
            summary["fit_recipe_selection"] = selection
        report = evaluation.Report(
            protocol=self.name, init=init_name, rows=rows, summary=summary, settings=settings,
            tables={"per_example.csv": (("init", "views", "example", "psnr"), per_example)},
            figures={"psnr_vs_views.png": lambda path: plot_psnr_vs_views(table.rows, path)})
        if table.images:
            report.figures["reconstructions.png"] = (
                lambda path: plot_reconstruction_grid(table, path))
        return report

    @classmethod
    def match_cell(cls, headline):
        """"4 views": how many views the standard init needs (legacy steps summaries:
        steps)."""
        views = (headline or {}).get("views_to_match")
        if views is None:
            return super().match_cell(headline)
        return f"{evaluation.format_count(views)} views"

    @classmethod
    def headline(cls, report):
        views = sorted({int(r["observations"]) for r in report.rows if r["init"] == META})
        if not views:
            return {}
        meta, standard = report.row(META, observations=views[0]), report.row(
            STANDARD, observations=views[0])
        headline = {"psnr_at": f"{views[0]} view{'s' if views[0] > 1 else ''}, "
                               f"{meta['steps']} step{'s' if meta['steps'] != 1 else ''}",
                    f"meta_psnr_at_{views[0]}_view{'s' if views[0] > 1 else ''}":
                        meta["psnr_mean"]}
        if standard is not None:
            headline[f"standard_psnr_at_{views[0]}_view{'s' if views[0] > 1 else ''}"] = (
                standard["psnr_mean"])
            reached = [int(r["observations"]) for r in report.rows if r["init"] == STANDARD
                       and r["psnr_mean"] >= meta["psnr_mean"]]
            standard_views = [int(r["observations"]) for r in report.rows
                              if r["init"] == STANDARD]
            headline["views_to_match"] = (min(reached) if reached
                                          else f"> {max(standard_views)}")
        headline.update(evaluation.recipe_headline(report))
        return headline
