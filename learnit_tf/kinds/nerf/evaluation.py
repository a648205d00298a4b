"""The single-view test protocol as a `Report`: fit on one view, PSNR on held-out views.

PAPER.md, "View synthesis": at test time a network is optimised on the rays of
**one** input view of a new object (1000 SGD steps at lr 0.5, 64 rays a step, from
the meta-learned init) and scored by PSNR on the object's held-out views; for
Phototourism, on the left half of a photo and scored on the right half. Standard
initialisations are optimised with Adam (the paper's finding: SGD works from the
meta init, standard inits need Adam).

`NerfProtocol` is the kind's `learnit_tf.evaluation.Protocol`; the fits and
measurements are in `learnit_tf.kinds.nerf.single_view` (the shared Fitter, stopped
at the protocol's steps), whose names this module re-exports.
"""

import dataclasses
from typing import Optional

from learnit_tf import evaluation
from learnit_tf.data.pipeline import take_examples  # noqa: F401 (re-exported)
from learnit_tf.kinds.nerf import sources
from learnit_tf.kinds.nerf.density import density_alive_fraction, draw_standard_init  # noqa: F401
from learnit_tf.kinds.nerf.rendering import RayRenderer  # noqa: F401 (re-exported)
from learnit_tf.kinds.nerf.single_view import (InitSpec, SingleViewTable, _title,  # noqa: F401
                                               evaluate_inits, format_table, held_out_measure,
                                               held_out_psnr, plot_protocol, protocol_examples,
                                               single_view_protocol, single_view_table,
                                               summarize)
from learnit_tf.meta.inner import InnerOptimizer

__all__ = ["InitSpec", "NerfOptions", "NerfProtocol", "density_alive_fraction",
           "draw_standard_init", "evaluate_inits", "format_table", "held_out_measure",
           "held_out_psnr", "plot_protocol", "protocol_examples", "report_rows",
           "single_view_protocol", "single_view_table", "summarize"]


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
