"""A CT init's fit recipe chosen for robustness across view counts (issue 24, item 1).

`evaluate.py --select_fit_recipe` scores each candidate recipe at one view count. The
real-CT goal is a win at 2, 4 and 8 views at once, so `select_recipe_across_views`
fits every candidate (`learnit_tf.evaluation.recipes.fit_recipe_candidates`: the init's
inner SGD throughout, or its inner steps then Adam at each learning rate) and a
standard init (Adam 1e-3, as the views table) on VALIDATION slices at each view count,
and keeps the candidate whose worst margin over the standard init (final PSNR after
`steps` steps, the quantity the views table reports) is largest. Only validation
slices of the init's own class may be passed: the real-CT check stays out of every
choice (`learnit_tf.kinds.ct.anatomy_real_check`).
"""

import numpy as np

from learnit_tf.core.registry import PSNR
from learnit_tf.evaluation.baselines import standard_init
from learnit_tf.evaluation.recipes import fit_recipe_candidates
from learnit_tf.meta import FitRecipe, Fitter, InnerOptimizer
from learnit_tf.kinds.ct.task import CtTask, make_eval_example

STANDARD_RECIPE = FitRecipe.of(InnerOptimizer("adam", 1e-3))


def final_psnrs(model, recipe, images, views, steps, interpolation="bilinear"):
    """Final PSNR (dB) of fits from `model` with `recipe`: {views: [per image]}."""
    task = CtTask(images[0].shape[0], interpolation=interpolation)
    fitter = Fitter(model, task, recipe, steps_per_call=max(1, min(100, int(steps))))
    out = {}
    for v in views:
        out[int(v)] = [float(fitter.fit(make_eval_example(image, num_views=int(v),
                                                          interpolation=interpolation),
                                        int(steps)).metrics[PSNR.key][-1])
                       for image in images]
    return out


def worst_margin(psnrs, standard):
    """min over view counts of (mean PSNR − the standard init's mean PSNR).

    >>> worst_margin({2: [17.0, 19.0], 4: [20.0]}, {2: [17.0, 17.0], 4: [21.0]})
    -1.0
    """
    return float(min(np.mean(psnrs[v]) - np.mean(standard[v]) for v in psnrs))


def select_recipe_across_views(model, metadata, images, views=(2, 4, 8), steps=200,
                               learning_rates=(1e-4, 3e-4, 1e-3), interpolation="bilinear",
                               standard_seed=1, progress=print):
    """The candidate fit recipe with the largest worst-case margin over a standard init.

    Args:
        model: the meta init (built Keras model).
        metadata: its metadata (inner optimizer, inner steps: the candidates).
        images: VALIDATION slices of the init's class, (N, N) arrays.
        views: view counts the margin is taken over (the goal's 2, 4, 8).
        steps: fit steps (the views table's 200).
        learning_rates: Adam rates after the inner steps (`fit_recipe_candidates`).
        standard_seed: seed of the standard init (`standard_init`, as the views table).
        progress: callable(str) for a line per candidate, or None.

    Returns:
        (best FitRecipe, rows): one row per candidate, and one for the standard init,
        {"recipe", "psnr": {views: mean}, "worst_margin"} (the standard's margin is 0).
    """
    images = [np.asarray(im, np.float32).reshape(im.shape[0], im.shape[1]) for im in images]
    standard = final_psnrs(standard_init(model, standard_seed), STANDARD_RECIPE, images,
                           views, steps, interpolation)
    rows = [{"recipe": "standard: " + STANDARD_RECIPE.name, "worst_margin": 0.0,
             "psnr": {v: round(float(np.mean(p)), 4) for v, p in standard.items()}}]
    if progress:
        progress(f"{rows[0]['recipe']}: {rows[0]['psnr']}")
    best = None
    for recipe in fit_recipe_candidates(metadata, learning_rates, default_learning_rate=10.0):
        psnrs = final_psnrs(model, recipe, images, views, steps, interpolation)
        row = {"recipe": recipe.name, "fit_recipe": recipe.to_dict(),
               "worst_margin": round(worst_margin(psnrs, standard), 4),
               "psnr": {v: round(float(np.mean(p)), 4) for v, p in psnrs.items()}}
        rows.append(row)
        if progress:
            progress(f"{row['recipe']}: {row['psnr']} worst margin {row['worst_margin']:+.3f}")
        if best is None or row["worst_margin"] > best[1]:
            best = (recipe, row["worst_margin"])
    return best[0], rows
