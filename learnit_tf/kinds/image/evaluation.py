"""The image protocol: PSNR against test-time steps, meta vs standard init (PAPER.md).

PAPER.md, "2D image regression" evaluation: the meta init is fitted with SGD at the
inner learning rate, a standard init of the same architecture with Adam 1e-4; the
report is PSNR after k steps and how many standard-init steps reach the meta init's
2-step PSNR (the paper: more than 30x on CelebA). `ImageProtocol` is the shared
`StepsProtocol` plus reconstruction grids and, with `baselines=True`, the paper's
baseline inits (standard, class mean, matched, shuffled; SGD 1e-2 and Adam 1e-4).
"""

import dataclasses
from typing import Optional

import numpy as np

from learnit_tf.evaluation import baselines, plots, whole_curve
from learnit_tf.evaluation import (META, REPORT_COLUMNS, STANDARD, StepsOptions, StepsProtocol,
                                   dataset_fn_from_metadata)
from learnit_tf.kinds.image.resolution import metadata_at_resolution


@dataclasses.dataclass
class ImageOptions(StepsOptions):
    """`StepsOptions` plus the resolution and the paper's baseline-init table."""

    resolution: Optional[int] = dataclasses.field(default=None, metadata={
        "help": "Fit and evaluate at this many pixels per side: the held-out images are "
                "rendered (or read) at R×R and fitted on the full R×R grid (default: the "
                "init's training resolution)."})

    baselines: bool = dataclasses.field(default=False, metadata={
        "help": "Also compare the paper's baseline inits (standard, mean, matched, shuffled), "
                "each with SGD 1e-2 and Adam 1e-4: baselines.csv and baselines.png."})
    baseline_steps: int = dataclasses.field(default=2, metadata={
        "help": "Test-time steps of the baseline table."})
    init_fit_steps: int = dataclasses.field(default=500, metadata={
        "help": "Adam steps that build the mean and matched inits."})
    mean_examples: int = dataclasses.field(default=200, metadata={
        "help": "Training signals averaged into the class mean."})
    recipe_ahead: bool = dataclasses.field(default=False, metadata={
        "help": "With --select_fit_recipe: rank candidates against the standard init on the "
                "same validation signals; one never behind it (steps 1..--recipe_steps) "
                "wins, then the higher mean PSNR (learnit_tf.evaluation.whole_curve)."})
    recipe_switch_steps: str = dataclasses.field(default="", metadata={
        "help": "With --recipe_ahead: learned inner steps before Adam, comma-separated "
                "(default: the init's inner steps)."})
    recipe_decay_steps: str = dataclasses.field(default="", metadata={
        "help": "With --recipe_ahead: also try Adam at each rate for these steps, then at "
                "a tenth of it (comma-separated; default: none)."})
    recipe_momenta: str = dataclasses.field(default="", metadata={
        "help": "With --recipe_ahead: also try the learned steps going on with heavy-ball "
                "momentum, one candidate per value (comma-separated; default: none)."})
    recipe_warmup_steps: str = dataclasses.field(default="", metadata={
        "help": "With --recipe_momenta: linear warm-up steps of the momentum phase, one "
                "candidate per value (comma-separated; default: 0)."})
    recipe_candidates: str = dataclasses.field(default="", metadata={
        "help": "With --recipe_ahead: a JSON file listing more fit recipes to try (each a "
                "FitRecipe record, e.g. several momentum phases; default: none)."})


class ImageProtocol(StepsProtocol):
    """PSNR vs steps on held-out images, steps to match at 2 steps, optional baselines.

    Example (one random 64×64 image instead of the init's held-out split):

    >>> from learnit_tf import zoo
    >>> image = np.random.default_rng(0).random((64, 64, 3)).astype("float32")
    >>> protocol = ImageProtocol(meta_steps=2, standard_steps=2, progress=False)
    >>> report = protocol.evaluate(zoo.load("text_siren"), zoo.describe("text_siren"),
    ...                            "text_siren", examples=[{"image": image}])
    >>> [(r["init"], r["steps"]) for r in report.rows][:3]
    [('meta', 0), ('meta', 1), ('meta', 2)]
    >>> sorted(ImageProtocol.headline(report))
    ['meta_psnr_at_2', 'psnr_at', 'standard_psnr_at_2', 'steps_to_match', 'steps_to_psnr',
     'whole_curve']
    >>> report.summary["steps_to_psnr"]["standard"]["steps"]  # 2 steps reach no target.
    {'25': None, '30': None, '35': None, '40': None}
    """

    name = "image_psnr_vs_steps"
    Options = ImageOptions

    def evaluate(self, model, metadata, init_name="", examples=None):
        """`StepsProtocol.evaluate` on the full grid at `resolution` (the report's settings
        record it; an init trained on pixel subsets is fitted on the full grid too)."""
        metadata = self.fitted_metadata(metadata)
        report = super().evaluate(model, metadata, init_name=init_name, examples=examples)
        task = metadata["task"]["config"]["resolution"]
        report.settings["resolution"] = int(task[0])
        report.summary["resolution"] = int(task[0])
        return report

    def fitted_metadata(self, metadata):
        """`metadata` with a full-grid task and held-out images at `resolution`."""
        return metadata_at_resolution(metadata, self.options.resolution)

    def folder_options(self, task):
        return {"resolution": int(task.height)}

    def choose_fit_recipe(self, model, metadata, task):
        if self.options.recipe_ahead:
            return whole_curve.choose_ahead_recipe(self, model, metadata, task)
        return super().choose_fit_recipe(model, metadata, task)

    @classmethod
    def headline(cls, report):
        headline = super().headline(report)
        if headline:
            headline.update(whole_curve.whole_curve_headline(report))
        return headline

    def draws_reconstructions(self):
        return True

    def extend_report(self, report, model, metadata, task, examples, results):
        whole_curve.add_whole_curve(report, results)
        if results[META]["snapshots"]:
            report.figures["reconstructions.png"] = (
                lambda path: plot_reconstructions(results, examples, task, path))
        if self.options.baselines:
            self._add_baselines(report, model, metadata, task, examples)

    def _add_baselines(self, report, model, metadata, task, examples):
        """The paper's baseline comparison: baselines.csv, baselines.png, summary['baselines']."""
        o = self.options
        train = dataset_fn_from_metadata(metadata, o.data_dir)("train")
        mean_image = baselines.class_mean_image(train, o.mean_examples)
        rows = baselines.evaluate_baselines(model, task, examples, o.baseline_steps,
                                            mean_image=mean_image,
                                            init_fit_steps=o.init_fit_steps,
                                            progress=o.progress)
        table = [{"init": r["init"], "optimizer": r["optimizer"],
                  "learning_rate": r["learning_rate"], "steps": r["step"], "observations": "",
                  "psnr_mean": r["psnr_mean"], "psnr_std": r["psnr_std"],
                  "count": r["num_examples"]} for r in rows]
        report.tables["baselines.csv"] = (REPORT_COLUMNS, table)
        last = [r for r in table if r["steps"] == o.baseline_steps]
        values = {}
        for r in last:
            values.setdefault(r["init"], {})[f"{r['optimizer']} {r['learning_rate']:g}"] = (
                r["psnr_mean"])
        title = (f"{metadata.get('signal_class', '')}: PSNR after {o.baseline_steps} steps "
                 "from each init")
        report.figures["baselines.png"] = (
            lambda path: plots.plot_grouped_bars(values, path, title=title))
        report.summary["baselines"] = {f"{r['init']}/{r['optimizer']}": round(r["psnr_mean"], 3)
                                       for r in last}


def plot_reconstructions(results, examples, task, path):
    """A grid of the target and the fit at each kept step, from each init, per example."""
    grid = []
    for i, example in enumerate(examples[:len(results[META]["snapshots"])]):
        for label in (META, STANDARD):
            fitter = results[label]["fitter"]
            snaps = results[label]["snapshots"][i]
            cols = [("target", np.asarray(example["image"]))] if "image" in example else []
            psnr = results[label]["psnr"][i]
            cols += [(f"step {s}: {psnr[s]:.1f} dB", task.render(fitter.fmodel, w).numpy())
                     for s, w in sorted(snaps.items())]
            grid.append((f"#{i} {label}", cols))
    return plots.plot_reconstruction_grid(grid, path)
