"""Fit recipes for a meta init: the candidates, how one is scored, and the selection.

A fit recipe (`learnit_tf.meta.FitRecipe`) says how to fit from an init: its
meta-trained inner steps, then Adam for the long run, for example. `select_fit_recipe`
tries `fit_recipe_candidates` on validation signals and keeps the one with the best
`recipe_score` (mean metric at the report steps). How a candidate's curve is measured is
the protocol's: by default the metric the `Fitter` records at every step; a protocol
whose metric is measured apart from the fit (NeRF: rendering held-out views) passes its
own `measure`.
"""

import keras
import numpy as np

from learnit_tf.core.registry import PSNR
from learnit_tf.evaluation.fit_cache import cached_fit
from learnit_tf.evaluation.held_out import meta_optimizer_from_metadata
from learnit_tf.evaluation.report import REPORT_STEPS
from learnit_tf.meta import FitPhase, FitRecipe, Fitter, InnerOptimizer
from learnit_tf.core.metadata import as_init_metadata


def recipe_score_steps(last):
    """The steps a fit recipe is scored at: the report steps 1, 2, 3, 5, 10, … up to
    `last`, and `last` (every decade counts, not only the end).

    >>> recipe_score_steps(12)
    [1, 2, 3, 5, 10, 12]
    """
    return sorted({s for s in REPORT_STEPS if 0 < s <= last} | {int(last)})


def recipe_score(psnr_curve):
    """How well a fit recipe serves the whole curve: the mean value over
    `recipe_score_steps` of the curve's last step."""
    psnr_curve = np.asarray(psnr_curve)
    return float(np.mean(psnr_curve[recipe_score_steps(len(psnr_curve) - 1)]))


def recipe_headline(report):
    """{"fit_recipe": its name} if the report chose a fit recipe (--select_fit_recipe),
    else {}: every protocol's headline shows it."""
    if "fit_recipe" not in report.summary:
        return {}
    return {"fit_recipe": FitRecipe.from_dict(report.summary["fit_recipe"]).name}


def fit_recipe_candidates(metadata, learning_rates, default_learning_rate=1e-2):
    """The fit recipes `select_fit_recipe` tries for a meta init.

    The init's own inner optimizer for every step (the paper's protocol), and its
    meta-trained inner steps (with their learned rates, if any) followed by Adam at each
    of `learning_rates`, so the first inner steps, which meta-training shaped, stay as
    trained. `default_learning_rate`: the inner rate where the metadata records none
    (see `meta_optimizer_from_metadata`).

    Example:

    >>> meta = {"hyperparameters": {"inner_optimizer": "sgd", "inner_learning_rate": 0.5,
    ...                             "inner_steps": 16}}
    >>> [r.name for r in fit_recipe_candidates(meta, [5e-4])]
    ['sgd(0.5)', 'sgd(0.5)x16 then adam(0.0005)']
    """
    inner = FitRecipe.of(meta_optimizer_from_metadata(
        metadata, default_learning_rate=default_learning_rate))
    first = inner.phases[0]
    k = as_init_metadata(metadata).hyperparameters.inner_steps or 2
    return [inner] + [
        FitRecipe((FitPhase(first.optimizer, steps=int(k), learned_rates=first.learned_rates),
                   FitPhase(InnerOptimizer("adam", float(lr))))) for lr in learning_rates]


def best_fit_recipe(scored):
    """(best recipe, rows) from [(FitRecipe, score, final value)]: the first of the
    highest score wins; rows are `select_fit_recipe`'s trial rows."""
    rows = [{"recipe": recipe.name, "score": round(float(score), 4),
             "psnr_final": round(float(final), 4), "fit_recipe": recipe.to_dict()}
            for recipe, score, final in scored]
    best = max(range(len(rows)), key=lambda i: (rows[i]["score"], -i))
    return scored[best][0], rows


def fitted_curve_measure(model, task, examples, progress=False, metric=PSNR, fits=None,
                         fit_cache=None):
    """measure(recipe, steps) for `select_fit_recipe`: the mean over `examples` of the
    metric the `Fitter` records, at each of `steps`, fitting from `model` with `recipe`.

    `fits`: how many fits the progress bar counts (default: one recipe's).
    `fit_cache`: optional `FitCache` the fits are read from and written to.
    """
    bar = keras.utils.Progbar(fits or len(examples), verbose=1 if progress else 0,
                              unit_name="fit")

    def measure(recipe, steps):
        last = int(max(steps))
        fitter = Fitter(model, task, recipe, steps_per_call=max(1, min(500, last)))
        curves = []
        for example in examples:
            curves.append(cached_fit(fitter, example, last, cache=fit_cache)
                          .metrics[metric.key])
            bar.add(1, values=[(f"{metric.key}_final", float(curves[-1][-1]))])
        return np.mean(curves, axis=0)[list(steps)]
    return measure


def select_fit_recipe(model, metadata, task, examples, steps, learning_rates, progress=False,
                      default_learning_rate=1e-2, measure=None, fit_cache=None):
    """The fit recipe that serves a meta init best on `examples` (validation signals).

    Candidates: `fit_recipe_candidates`. Each is fitted for `steps` steps and scored by
    the mean of its mean metric curve at `recipe_score_steps(steps)` (`recipe_score`).

    Args:
        measure: callable(recipe, score steps) -> the mean metric over `examples` at
            each of those steps, fitting from `model` with `recipe`; default
            `fitted_curve_measure` (the metric the Fitter records every step).
        fit_cache: optional `FitCache` for the default measure's fits.

    Returns:
        (best FitRecipe, rows [{"recipe", "score", "psnr_final"}] for every candidate).
    """
    candidates = fit_recipe_candidates(metadata, learning_rates, default_learning_rate)
    score_steps = recipe_score_steps(int(steps))
    if measure is None:
        measure = fitted_curve_measure(model, task, examples, progress,
                                       fits=len(candidates) * len(examples),
                                       fit_cache=fit_cache)
    scored = []
    for recipe in candidates:
        values = np.asarray(measure(recipe, score_steps))
        scored.append((recipe, float(np.mean(values)), values[-1]))
    return best_fit_recipe(scored)
