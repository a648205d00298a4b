"""The metric-vs-steps protocol (images, audio, 3D shapes: any task fitted by steps).

Every held-out signal is fitted from the meta init (its inner optimizer or fit recipe)
and from a standard init of the same architecture (Adam); the rows are the mean metric
at the report steps (`REPORT_STEPS`), the headline both inits' value at `match_step` and
the *steps to match*: how many standard-init steps reach the meta init's value there
(`steps_to_reach`), and the steps each init needs to reach the metric's levels
(`steps_to_targets`, e.g. 25/30/35/40 dB).

The metric is the protocol's (`Protocol.metric`, the kind's `SignalKind.metric`: PSNR
unless a kind says otherwise, e.g. the 3D kind's IoU); results, rows and summary keys
are named by its key (`psnr`: `meta_psnr_at_2`, `psnr_curve`, `steps_to_psnr`).
"""

import dataclasses
from typing import Optional

import keras
import numpy as np

from learnit_tf.core.registry import PSNR
from learnit_tf.evaluation.baselines import standard_init
from learnit_tf.evaluation.fit_cache import FitCache, cached_fit
from learnit_tf.evaluation.headlines import META, STANDARD, steps_headline
from learnit_tf.evaluation import held_out
from learnit_tf.evaluation.held_out import meta_optimizer_from_metadata, task_from_metadata
from learnit_tf.evaluation.protocol import Protocol, parse_numbers
from learnit_tf.evaluation.recipes import recipe_headline, select_fit_recipe
from learnit_tf.evaluation.report import (REPORT_STEPS, Report, per_example_table,
                                          report_row)
from learnit_tf.meta import FitRecipe, Fitter, InnerOptimizer


def steps_to_reach(curve, target):
    """First step at which `curve` (indexed by step) reaches `target`, or None."""
    hits = np.nonzero(np.asarray(curve) >= target)[0]
    return int(hits[0]) if hits.size else None


def compare_inits(inits, task, examples, steps, snapshot_steps=(), snapshot_examples=0,
                  progress=None, metric=PSNR, fit_cache=None):
    """Fits every example from every init and collects the metric's curves.

    Args:
        inits: dict label -> (model, InnerOptimizer, steps for that init or None).
        task: the task.
        examples: list of example dicts.
        steps: steps of inits that give None.
        snapshot_steps: steps at which to keep fitted weights for reconstruction grids.
        snapshot_examples: for how many of the first examples to keep snapshots.
        progress: optional callable(label, example_index, result).
        metric: the `Metric` whose curves (`FitResult.metrics[metric.key]`) are collected.
        fit_cache: optional `FitCache`: fits done before (same init, optimizer, task,
            example, steps) are read from it, new ones written to it.

    Returns:
        dict label -> {metric.key (e.g. "psnr"): (num_examples, steps+1) array,
        "snapshots": [dict step->weights], "model": model, "fitter": the Fitter}.
    """
    out = {}
    for label, (model, optimizer, init_steps) in inits.items():
        init_steps = steps if init_steps is None else init_steps
        fitter = Fitter(model, task, optimizer, steps_per_call=min(500, max(1, init_steps)))
        curves, snaps, seconds = [], [], []
        for i, example in enumerate(examples):
            snaps_here = snapshot_steps if i < snapshot_examples else ()
            result = cached_fit(fitter, example, init_steps, snaps_here, fit_cache)
            curves.append(result.metrics[metric.key])
            seconds.append(result.seconds)  # A cached fit's: as measured when it ran.
            if i < snapshot_examples:
                snaps.append(result.snapshots)
            if progress is not None:
                progress(label, i, result)
        out[label] = {metric.key: np.stack(curves), "snapshots": snaps, "model": model,
                      "fitter": fitter, "seconds_per_step": _seconds_per_step(seconds,
                                                                               init_steps)}
    return out


def _seconds_per_step(seconds, steps):
    """Wall time per fit step; the first fit (which traces and compiles) is left out
    when there are others."""
    if not steps or not seconds:
        return None
    timed = seconds[1:] or seconds
    return float(np.median(timed)) / steps


def steps_to_targets(results, targets, metric=PSNR):
    """{init: {"steps": {target: first step reaching it or None}, "seconds": {...}}} of
    the mean curves of `metric` (seconds: steps × that init's wall time per step, same
    run)."""
    out = {}
    for label, res in results.items():
        curve = res[metric.key].mean(0)
        per_step = res.get("seconds_per_step")
        steps = {f"{t:g}": steps_to_reach(curve, t) for t in targets}
        out[label] = {"steps": steps, "seconds": {
            k: (None if v is None or per_step is None else round(v * per_step, 3))
            for k, v in steps.items()}}
    return out


def summarize(results, match_step=2, reference=META, baseline=STANDARD, metric=PSNR):
    """Rows (init, step, <key>_mean, <key>_std) at the report steps, and the steps-to-match.

    Args:
        metric: the `Metric` of the results (its key names them: `psnr_mean`, ...).

    Returns:
        (rows, summary) where summary has `meta_<key>_at_2`, `standard_<key>_at_2`,
        `steps_to_match` (standard-init steps to reach the meta init's value at
        `match_step`, None if not reached), `steps_to_match_ratio` and `<key>_curve`
        (the mean at the rows' steps, to one digit more than the metric shows).
    """
    key = metric.key
    rows = []
    for label, res in results.items():
        values = res[key]
        last = values.shape[1] - 1
        for step in sorted(set(s for s in REPORT_STEPS if s <= last) | {last}):
            rows.append({"init": label, "step": step,
                         f"{key}_mean": float(values[:, step].mean()),
                         f"{key}_std": float(values[:, step].std())})
    summary = {}
    if reference in results and baseline in results:
        ref = results[reference][key].mean(0)
        base = results[baseline][key].mean(0)
        target = float(ref[min(match_step, len(ref) - 1)])
        reached = steps_to_reach(base, target)
        summary = {
            f"{reference}_{key}_at_{match_step}": target,
            f"{baseline}_{key}_at_{match_step}": float(base[min(match_step, len(base) - 1)]),
            "steps_to_match": reached,
            "standard_steps_evaluated": int(len(base) - 1),
            "steps_to_match_ratio": (reached / match_step) if reached else None,
            "num_examples": int(results[reference][key].shape[0]),
        }
        summary[f"{key}_curve"] = {label: {str(r["step"]): round(r[f"{key}_mean"],
                                                                 metric.digits + 1)
                                           for r in rows if r["init"] == label}
                                   for label in results}
    return rows, summary


def evaluate_against_standard(init_dir_or_model, examples, task, meta_optimizer, meta_steps,
                              standard_steps, standard_optimizer=InnerOptimizer("adam", 1e-4),
                              standard_seed=1, snapshot_steps=(0, 1, 2, 5, 10),
                              snapshot_examples=3, progress=None, match_step=2, metric=PSNR,
                              fit_cache=None):
    """The paper's comparison for one init: curves, report rows and steps-to-match (of
    `metric`, PSNR by default).

    Returns:
        (results, rows, summary) as from `compare_inits` and `summarize`.
    """
    model = init_dir_or_model
    if isinstance(model, str):
        raise TypeError("evaluate_against_standard takes a built model; load an init "
                        "directory with learnit_tf.zoo.load first.")
    inits = {
        META: (model, meta_optimizer, meta_steps),
        STANDARD: (standard_init(model, seed=standard_seed), standard_optimizer,
                   standard_steps),
    }
    results = compare_inits(inits, task, examples, None, snapshot_steps, snapshot_examples,
                            progress, metric, fit_cache)
    rows, summary = summarize(results, match_step=match_step, metric=metric)
    summary["meta_optimizer"] = {"name": meta_optimizer.name,
                                 "learning_rate": meta_optimizer.learning_rate}
    if isinstance(meta_optimizer, FitRecipe):
        summary["meta_optimizer"]["fit_recipe"] = meta_optimizer.to_dict()
    summary["standard_optimizer"] = {"name": standard_optimizer.name,
                                     "learning_rate": standard_optimizer.learning_rate}
    return results, rows, summary



@dataclasses.dataclass
class StepsOptions:
    """Options of `StepsProtocol` (defaults: the paper's image protocol on a CPU budget)."""

    num_examples: int = dataclasses.field(default=8, metadata={
        "help": "Held-out signals to average over."})
    split: str = dataclasses.field(default="test", metadata={
        "help": "Held-out split of the init's signal class (or of --directory)."})
    meta_steps: int = dataclasses.field(default=20, metadata={
        "help": "Test-time steps from the meta init (its inner optimizer)."})
    standard_steps: int = dataclasses.field(default=1000, metadata={
        "help": "Test-time steps from the standard init."})
    meta_learning_rate: Optional[float] = dataclasses.field(default=None, metadata={
        "help": "Learning rate from the meta init (default: the init's inner learning rate)."})
    standard_optimizer: str = dataclasses.field(default="adam", metadata={
        "help": "Optimizer of the standard init (sgd or adam; the paper: adam)."})
    standard_learning_rate: float = dataclasses.field(default=1e-4, metadata={
        "help": "Learning rate of the standard init."})
    standard_seed: int = dataclasses.field(default=1, metadata={
        "help": "Seed of the standard init."})
    match_step: int = dataclasses.field(default=2, metadata={
        "help": "Meta-init step whose PSNR the standard init must reach (steps to match)."})
    data_dir: Optional[str] = dataclasses.field(default=None, metadata={
        "help": "TFDS data_dir (default: TFDS's)."})
    directory: Optional[str] = dataclasses.field(default=None, metadata={
        "help": "Evaluate on a folder of your own files of the init's kind instead."})
    snapshot_examples: int = dataclasses.field(default=3, metadata={
        "help": "Held-out signals whose reconstructions are drawn."})
    psnr_targets: str = dataclasses.field(default="25,30,35,40", metadata={
        "help": "Comma-separated PSNRs (dB) whose steps and seconds to reach are reported "
                "(kinds measured by PSNR; a kind with another metric has its own "
                "<metric>_targets, e.g. --iou_targets for 3D shapes)."})
    select_fit_recipe: bool = dataclasses.field(default=False, metadata={
        "help": "Choose the meta init's fit recipe on the validation split first (its "
                "inner steps, then Adam at the best of --recipe_learning_rates) and "
                "evaluate with it."})
    recipe_learning_rates: str = dataclasses.field(default="1e-5,3e-5,1e-4,3e-4,1e-3", metadata={
        "help": "Adam learning rates tried by --select_fit_recipe."})
    recipe_steps: int = dataclasses.field(default=300, metadata={
        "help": "Steps of each --select_fit_recipe trial fit."})
    recipe_examples: int = dataclasses.field(default=4, metadata={
        "help": "Validation signals of each --select_fit_recipe trial."})
    progress: bool = dataclasses.field(default=True, metadata={
        "help": "Show a progress bar with ETA."})
    fit_cache_dir: str = dataclasses.field(default="", metadata={
        "help": "Keep every finished fit (the evaluation's and --select_fit_recipe's) in "
                "this folder and reuse it in a later run with the same init, optimizer, "
                "signal and steps (an interrupted evaluation or selection resumes; see "
                "learnit_tf.evaluation.fit_cache). Default: no cache."})



class StepsProtocol(Protocol):
    """The metric (PSNR) against test-time steps, meta init vs standard init, steps to match.

    The paper's image protocol, for any task whose examples are fitted by steps: the
    meta init is fitted with its inner optimizer for `meta_steps`, a standard init of
    the same architecture with Adam for `standard_steps`; rows are the mean metric at the
    report steps (`REPORT_STEPS`), the headline the metric of both at `match_step` and how
    many standard-init steps reach the meta init's value there. Subclasses add figures
    and tables in `extend_report` and folder-reader options in `folder_options`; one of
    a kind with another `metric` (e.g. the 3D kind's IoU) names its level option
    `<key>_targets` and draws its curves in `plot_curves`.

    Example (a kind's protocol, e.g. audio, is a subclass with its own name):

    >>> class WaveProtocol(StepsProtocol):
    ...     name = "wave_psnr_vs_steps"
    >>> WaveProtocol(meta_steps=2, standard_steps=4).options.standard_steps
    4

    `WaveProtocol(...).evaluate(model, metadata)` returns a `Report` whose rows are
    (init, optimizer, learning_rate, steps, "", psnr_mean, psnr_std, count) and whose
    figure psnr_curves.png shows both curves.
    """

    name = "psnr_vs_steps"
    Options = StepsOptions

    def held_out(self, metadata, task):
        """The held-out examples: the user's folder (`directory`) or the init's dataset."""
        o = self.options
        if o.directory:
            return self.folder_examples(metadata, o.directory, o.split, o.num_examples, task)
        examples = held_out.held_out_examples(metadata, o.num_examples, o.split, o.data_dir)
        if not examples:
            raise ValueError(f"Split {o.split!r} of the init's dataset holds no examples.")
        return examples

    def optimizers(self, metadata):
        """(meta optimizer, standard optimizer) of the protocol."""
        o = self.options
        return (meta_optimizer_from_metadata(metadata, o.meta_learning_rate),
                InnerOptimizer(o.standard_optimizer, o.standard_learning_rate))

    def choose_fit_recipe(self, model, metadata, task):
        """`select_fit_recipe` on the init's validation split (or the folder's): the
        recipe and its trial rows."""
        o = self.options
        if o.meta_learning_rate is not None:
            raise ValueError("--select_fit_recipe chooses the meta init's optimizer; do not "
                             "also pass --meta_learning_rate.")
        if self.metric.key != PSNR.key:
            raise ValueError(f"--select_fit_recipe scores candidates by PSNR; {self.name} "
                             f"reports {self.metric.label}.")
        if o.directory:
            examples = self.folder_examples(metadata, o.directory, "validation",
                                            o.recipe_examples, task)
        else:
            examples = held_out.held_out_examples(metadata, o.recipe_examples, "validation",
                                         o.data_dir)
        if not examples:
            raise ValueError("--select_fit_recipe needs validation signals; the validation "
                             "split holds none.")
        print(f"Choosing the fit recipe on {len(examples)} validation signals "
              f"({o.recipe_steps} steps per trial):")
        return select_fit_recipe(model, metadata, task, examples, o.recipe_steps,
                                 parse_numbers(o.recipe_learning_rates, "recipe_learning_rates"),
                                 progress=o.progress, fit_cache=self.fit_cache())

    def fit_cache(self):
        """The `FitCache` of --fit_cache_dir (the evaluation's and the fit-recipe
        selection's fits), or None. One per protocol and folder: the package source is
        hashed once, when the run first uses the cache, so the selection's and the
        evaluation's fits of one run are keyed by the same source."""
        directory = self.options.fit_cache_dir
        if not directory:
            return None
        made = getattr(self, "_fit_cache", None)
        if made is None or made[0] != directory:
            made = self._fit_cache = (directory, FitCache(directory))
        return made[1]

    def snapshot_steps(self):
        """Steps whose fitted weights are kept for reconstruction figures."""
        o = self.options
        return sorted({0, 1, 2, 5, 10, o.meta_steps} & set(range(o.meta_steps + 1))
                      | {s for s in (100, 1000) if s <= o.standard_steps})

    def snapshot_count(self, examples):
        """For how many of the first `examples` fitted weights are kept."""
        del examples
        return self.options.snapshot_examples if self.draws_reconstructions() else 0

    def targets(self):
        """The metric's levels whose steps to reach are reported: the `<key>_targets`
        option (e.g. --psnr_targets), else the metric's own levels."""
        for field in dataclasses.fields(self.options):  # e.g. --psnr_targets of an IoU kind
            if (field.name.endswith("_targets") and field.name != f"{self.metric.key}_targets"
                    and getattr(self.options, field.name) != field.default):
                raise ValueError(f"--{field.name} does not apply to {self.name}, which reports "
                                 f"{self.metric.label} (--{self.metric.key}_targets).")
        text = getattr(self.options, f"{self.metric.key}_targets", None)
        if text is None:
            return tuple(self.metric.levels)
        return parse_numbers(text, f"{self.metric.key}_targets")

    def evaluate(self, model, metadata, init_name="", examples=None):
        o = self.options
        task = task_from_metadata(metadata)
        if examples is None:
            examples = self.held_out(metadata, task)
        metric, key = self.metric, self.metric.key
        targets = self.targets()
        meta_opt, standard_opt = self.optimizers(metadata)
        selection = None
        if o.select_fit_recipe:
            meta_opt, selection = self.choose_fit_recipe(model, metadata, task)
        progress = _StepsProgress(len(examples) * (o.meta_steps + o.standard_steps), o.progress,
                                  key)
        results, curve_rows, summary = evaluate_against_standard(
            model, examples, task, meta_opt, o.meta_steps, o.standard_steps, standard_opt,
            o.standard_seed, snapshot_steps=self.snapshot_steps(),
            snapshot_examples=self.snapshot_count(examples), progress=progress,
            match_step=o.match_step, metric=metric,
            fit_cache=self.fit_cache())
        summary[f"steps_to_{key}"] = steps_to_targets(results, targets, metric)
        if selection is not None:
            summary["fit_recipe"] = meta_opt.to_dict()
            summary["fit_recipe_selection"] = selection
        optimizers = {META: meta_opt, STANDARD: standard_opt}
        rows = [report_row(r["init"], optimizers[r["init"]], r["step"],
                           results[r["init"]][key][:, r["step"]], metric=metric)
                for r in curve_rows]
        title = f"{metadata.get('signal_class', init_name)}: held-out {metric.label}"
        report = Report(
            protocol=self.name, init=init_name, rows=rows, summary=summary,
            settings=dict(dataclasses.asdict(o), num_examples=len(examples)),
            figures={f"{key}_curves.png": lambda path: self.plot_curves(results, path, title,
                                                                        summary)},
            metric=metric)
        report.tables["per_example.csv"] = per_example_table(results, metric)
        self.extend_report(report, model=model, metadata=metadata, task=task,
                           examples=examples, results=results)
        return report

    def draws_reconstructions(self):
        """Whether `extend_report` draws reconstructions (then snapshots are kept)."""
        return False

    def extend_report(self, report, model, metadata, task, examples, results):
        """Hook for subclasses: add figures, tables or summary entries to `report`."""

    def plot_curves(self, results, path, title, summary):
        """Draws both inits' mean curves of the metric (`<key>_curves.png`): PSNR's figure;
        a kind with another metric draws its own."""
        from learnit_tf.evaluation import plots  # pylint: disable=import-outside-toplevel
        return plots.plot_psnr_curves(results, path, title=title, summary=summary)

    @classmethod
    def headline(cls, report):
        match_step = int(report.settings.get("match_step", 2))
        headline = steps_headline(report.summary, match_step)
        if headline:
            headline["psnr_at"] = f"{match_step} steps"
            reach = report.summary.get("steps_to_psnr")
            if reach:  # Steps (and seconds) each init needs to reach 25/30/35/40 dB.
                headline["steps_to_psnr"] = reach
            headline.update(recipe_headline(report))
        return headline


class _StepsProgress:
    """Progress of `StepsProtocol` fits: a bar over all optimization steps, with ETA."""

    def __init__(self, total_steps, verbose, key="psnr"):
        self.bar = keras.utils.Progbar(max(1, int(total_steps)), verbose=1 if verbose else 0,
                                       unit_name="step")
        self.done = 0
        self.key = key

    def __call__(self, label, index, result):
        del index
        self.done += len(result.losses) - 1
        self.bar.update(self.done, values=[(f"{label}_{self.key}",
                                            float(result.metrics[self.key][-1]))])
