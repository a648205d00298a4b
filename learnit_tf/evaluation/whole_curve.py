"""Ahead at every PSNR level: comparing a meta init's whole fit curve with a standard init's.

An init is worth using only if, wherever a user stops fitting, it has reached at least
the PSNR the standard init would have reached by then. Two checks on mean PSNR curves
(index = test-time step):

* *Ahead at every level* (the zoo's criterion): every PSNR level the standard init
  reaches within the evaluated steps, the meta init reaches no later. Equivalently,
  the best PSNR so far (running maximum) of the meta curve is >= the standard curve's
  at every step. `level_deficit_db` is by how much it fails (0 when ahead).
* *Pointwise ahead* (stricter): meta PSNR >= standard PSNR at every step, so even a
  user who stops at any step without keeping the best weights is no worse off.
  `pointwise_deficit_db` is by how much it fails.

Both start at `from_step` = 1 by default: step 0 is the init itself, before any fit
step, which no fit recipe can change (its PSNR is reported separately).

`recipe_rank` scores a fit recipe's validation curve against the standard init's for
`select_ahead_recipe`: a recipe that falls behind anywhere (pointwise, the stricter
check) ranks below every recipe that never does, and among equals the higher mean PSNR
at the report steps (`evaluation.recipe_score`) wins.
"""

import keras
import numpy as np

from learnit_tf.evaluation.fit_cache import cached_fit
from learnit_tf.meta import FitPhase, FitRecipe, Fitter, InnerOptimizer

LEVELS_DB = (25.0, 30.0, 35.0, 40.0)


def _curves(meta, standard, from_step):
    meta = np.asarray(meta, np.float64).reshape(-1)
    standard = np.asarray(standard, np.float64).reshape(-1)
    last = min(len(meta), len(standard))
    if last <= from_step:
        raise ValueError(f"Curves of {len(meta)} and {len(standard)} points have no step "
                         f">= from_step={from_step} in common.")
    return meta[:last], standard[:last]


def level_deficit_db(meta, standard, from_step=1):
    """Largest amount (dB, >= 0) by which the standard init's best-so-far PSNR exceeds
    the meta init's at any step >= `from_step` (0: ahead at every level).

    >>> level_deficit_db([10, 30, 20, 31], [10, 12, 25, 32])
    1.0
    """
    meta, standard = _curves(meta, standard, from_step)
    gap = np.maximum.accumulate(standard)[from_step:] - np.maximum.accumulate(meta)[from_step:]
    return float(max(0.0, gap.max()))


def pointwise_deficit_db(meta, standard, from_step=1):
    """Largest amount (dB, >= 0) by which the standard curve exceeds the meta curve at
    any step >= `from_step` (0: ahead at every step).

    >>> pointwise_deficit_db([10, 30, 20, 31], [10, 12, 25, 32])
    5.0
    """
    meta, standard = _curves(meta, standard, from_step)
    return float(max(0.0, (standard[from_step:] - meta[from_step:]).max()))


def first_behind_step(meta, standard, from_step=1):
    """First step >= `from_step` at which the standard init's best-so-far PSNR exceeds
    the meta init's (it reached a level first), or None."""
    meta, standard = _curves(meta, standard, from_step)
    behind = np.nonzero(np.maximum.accumulate(standard)[from_step:]
                        > np.maximum.accumulate(meta)[from_step:])[0]
    return int(behind[0]) + from_step if behind.size else None


def steps_to_levels(curve, levels=LEVELS_DB):
    """{f"{level:g}": first step whose PSNR >= level, or None}."""
    curve = np.asarray(curve, np.float64)
    out = {}
    for level in levels:
        hits = np.nonzero(curve >= level)[0]
        out[f"{level:g}"] = int(hits[0]) if hits.size else None
    return out


def comparison(meta, standard, from_step=1):
    """The whole-curve comparison recorded in an evaluation's summary."""
    meta_c, standard_c = _curves(meta, standard, from_step)
    level = level_deficit_db(meta_c, standard_c, from_step)
    return {
        "steps": int(len(meta_c) - 1),
        "from_step": int(from_step),
        "ahead_at_every_level": level == 0.0,
        "level_deficit_db": round(level, 4),
        "first_behind_step": first_behind_step(meta_c, standard_c, from_step),
        "ahead_at_every_step": pointwise_deficit_db(meta_c, standard_c, from_step) == 0.0,
        "pointwise_deficit_db": round(pointwise_deficit_db(meta_c, standard_c, from_step), 4),
        "psnr_at_step_0": {"meta": round(float(meta_c[0]), 3),
                           "standard": round(float(standard_c[0]), 3)},
        "psnr_at_last_step": {"meta": round(float(meta_c[-1]), 3),
                              "standard": round(float(standard_c[-1]), 3)},
    }


def recipe_rank(meta, standard, from_step=1):
    """(pointwise deficit dB, mean PSNR at the report steps) of a recipe's mean validation
    curve against the standard init's; `best_ahead_recipe` wants the smallest deficit,
    then the largest mean."""
    from learnit_tf.evaluation import recipe_score  # pylint: disable=import-outside-toplevel
    return pointwise_deficit_db(meta, standard, from_step), recipe_score(meta)


def best_ahead_recipe(scored):
    """(best recipe, rows) from [(FitRecipe, mean meta curve, mean standard curve)]:
    the smallest pointwise deficit wins, then the highest mean PSNR (`recipe_rank`),
    then the earlier candidate."""
    rows, keys = [], []
    for recipe, meta, standard in scored:
        deficit, score = recipe_rank(meta, standard)
        rows.append({"recipe": recipe.name, "score": round(score, 4),
                     "pointwise_deficit_db": round(deficit, 4),
                     "level_deficit_db": round(level_deficit_db(meta, standard), 4),
                     "psnr_final": round(float(np.asarray(meta)[-1]), 4),
                     "fit_recipe": recipe.to_dict()})
        keys.append((round(deficit, 4), -round(score, 4)))
    best = min(range(len(rows)), key=lambda i: (keys[i], i))
    return scored[best][0], rows


def ahead_candidates(inner, switch_steps, learning_rates, decay_steps=(), decay_factor=0.1,
                     momenta=(), warmup_steps=(0,)):
    """Fit recipes that keep an init's learned inner steps, then switch to Adam (or go on
    with the same steps and heavy-ball momentum).

    For every k in `switch_steps` and lr in `learning_rates`: `inner`'s first phase for k
    steps, then Adam at lr to the end; and for every D in `decay_steps`, the same with
    Adam at lr for D steps, then Adam at lr × `decay_factor` (a step schedule; each
    phase starts Adam afresh). For every k, m in `momenta` and W in `warmup_steps`:
    `inner`'s first phase for k steps, then that phase's optimizer (its learned rates)
    with momentum m and a W-step linear warm-up to the end (`FitPhase`). `inner` (the
    init's own recipe) is the first candidate.

    >>> sgd = FitRecipe((FitPhase(InnerOptimizer("sgd", 0.01), learned_rates=True),))
    >>> [r.name for r in ahead_candidates(sgd, [2], [1e-4], decay_steps=[300])]
    ['sgd(learned rates)', 'sgd(learned rates)x2 then adam(0.0001)', \
'sgd(learned rates)x2 then adam(0.0001)x300 then adam(1e-05)']
    >>> [r.name for r in ahead_candidates(sgd, [20], [], momenta=[0.98], warmup_steps=[100])]
    ['sgd(learned rates)', 'sgd(learned rates)x20 then sgd(learned rates, momentum 0.98, \
warm-up 100)']
    """
    inner = FitRecipe.of(inner)
    first = inner.phases[0]
    out = [inner]
    for k in switch_steps:
        if int(k) < 1:
            raise ValueError(f"Switch steps must be >= 1, got {k!r}.")
        head = FitPhase(first.optimizer, steps=int(k), learned_rates=first.learned_rates)
        for lr in learning_rates:
            adam = InnerOptimizer("adam", float(lr))
            out.append(FitRecipe((head, FitPhase(adam))))
            for d in decay_steps:
                out.append(FitRecipe((head, FitPhase(adam, steps=int(d)), FitPhase(
                    InnerOptimizer("adam", float(lr) * decay_factor)))))
        for m in momenta:
            for w in warmup_steps:
                out.append(FitRecipe((head, FitPhase(
                    first.optimizer, learned_rates=first.learned_rates, momentum=float(m),
                    warmup_steps=int(w)))))
    return out


def select_ahead_recipe(model, task, examples, steps, candidates, standard_model,
                        standard_optimizer, progress=False, fit_cache=None):
    """The candidate fit recipe that stays ahead of the standard init on `examples`
    (validation signals only), by `best_ahead_recipe` over `steps` steps.

    The standard init (`standard_model` with `standard_optimizer`) is fitted on the same
    examples for the same steps, and each candidate's mean curve is ranked against its.
    With `fit_cache` (a `FitCache`) every one of these fits is read from it when it was
    done before and written to it when not (an interrupted selection resumes).

    Returns:
        (best FitRecipe, rows for every candidate, the standard init's mean curve).
    """
    if not examples:
        raise ValueError("select_ahead_recipe needs at least one validation example.")
    bar = keras.utils.Progbar((len(candidates) + 1) * len(examples),
                              verbose=1 if progress else 0, unit_name="fit")

    def mean_curve(fit_model, recipe):
        fitter = Fitter(fit_model, task, recipe, steps_per_call=max(1, min(500, steps)))
        curves = []
        for example in examples:
            curves.append(cached_fit(fitter, example, steps, cache=fit_cache).metrics["psnr"])
            bar.add(1, values=[("psnr_final", float(curves[-1][-1]))])
        return np.mean(curves, axis=0)

    standard = mean_curve(standard_model, standard_optimizer)
    scored = [(recipe, mean_curve(model, recipe), standard) for recipe in candidates]
    best, rows = best_ahead_recipe(scored)
    return best, rows, standard


# -- the steps protocol's glue (--select_fit_recipe --recipe_ahead) -------------------------

def _listed(text, name, default):
    """Option `--name`'s comma-separated numbers (`protocol.parse_numbers`), or
    `default` when it is empty."""
    from learnit_tf.evaluation.protocol import parse_numbers  # pylint: disable=import-outside-toplevel
    return parse_numbers(text, name) if str(text).strip() else default


def read_candidates(path):
    """The fit recipes listed in the JSON file `path` (a list of `FitRecipe.to_dict`
    records, e.g. multi-phase recipes the generated candidates do not cover); [] for an
    empty path. Anything else is a ValueError naming the file and the entry.

    >>> import json, os, tempfile
    >>> path = os.path.join(tempfile.mkdtemp(), "candidates.json")
    >>> with open(path, "w") as f:
    ...     json.dump([{"phases": [{"optimizer": {"name": "sgd", "learning_rate": 0.01},
    ...                             "steps": 20, "learned_rates": True},
    ...                            {"optimizer": {"name": "sgd", "learning_rate": 0.01},
    ...                             "steps": None, "learned_rates": True, "momentum": 0.97,
    ...                             "rate_scale": 2.0}]}], f)
    >>> [r.name for r in read_candidates(path)]
    ['sgd(learned rates)x20 then sgd(learned rates x 2, momentum 0.97)']
    """
    import json  # pylint: disable=import-outside-toplevel
    if not str(path or "").strip():
        return []
    with open(path) as f:
        data = json.load(f)
    if not isinstance(data, list) or not data:
        raise ValueError(f"{path}: expected a non-empty JSON list of fit recipes, got "
                         f"{type(data).__name__}.")
    return [FitRecipe.from_dict(item, source=f"{path} entry {i}")
            for i, item in enumerate(data)]


def choose_ahead_recipe(protocol, model, metadata, task):
    """`select_ahead_recipe` for a `StepsProtocol` whose options have `recipe_ahead`:
    candidates from `ahead_candidates` (the init's own recipe; its learned steps for each
    of --recipe_switch_steps, default the init's inner steps, then Adam at each of
    --recipe_learning_rates, with --recipe_decay_steps schedules; and then its learned
    steps with each of --recipe_momenta and --recipe_warmup_steps; and the recipes listed
    in the --recipe_candidates JSON file), ranked against the
    protocol's standard init on --recipe_examples signals of the VALIDATION split (or
    the folder's) for --recipe_steps steps.

    Returns:
        (best FitRecipe, selection record for the report summary).
    """
    from learnit_tf import evaluation  # pylint: disable=import-outside-toplevel
    # pylint: disable-next=import-outside-toplevel
    from learnit_tf.evaluation.baselines import standard_init
    o = protocol.options
    if o.meta_learning_rate is not None:
        raise ValueError("--select_fit_recipe chooses the meta init's optimizer; do not "
                         "also pass --meta_learning_rate.")
    if o.directory:
        examples = protocol.folder_examples(metadata, o.directory, "validation",
                                            o.recipe_examples, task)
    else:
        examples = evaluation.held_out.held_out_examples(metadata, o.recipe_examples, "validation",
                                                o.data_dir)
    if not examples:
        raise ValueError("--select_fit_recipe needs validation signals; the validation "
                         "split holds none.")
    inner_steps = evaluation.as_init_metadata(metadata).hyperparameters.inner_steps or 2
    switch = _listed(o.recipe_switch_steps, "recipe_switch_steps", (inner_steps,))
    decay = _listed(o.recipe_decay_steps, "recipe_decay_steps", ())
    momenta = _listed(o.recipe_momenta, "recipe_momenta", ())
    warmups = _listed(o.recipe_warmup_steps, "recipe_warmup_steps", (0,))
    listed = read_candidates(o.recipe_candidates)
    # An empty --recipe_learning_rates means no Adam candidates when other candidates
    # (momenta, a candidates file) are asked for.
    rates = (evaluation.parse_numbers(o.recipe_learning_rates, "recipe_learning_rates")
             if str(o.recipe_learning_rates).strip() or not (momenta or listed) else ())
    inner = FitRecipe.of(evaluation.meta_optimizer_from_metadata(metadata))
    candidates = ahead_candidates(inner, [int(k) for k in switch], rates,
                                  [int(d) for d in decay], momenta=momenta,
                                  warmup_steps=[int(w) for w in warmups]) + listed
    print(f"Choosing the fit recipe that stays ahead of the standard init: {len(candidates)} "
          f"candidates on {len(examples)} validation signals ({o.recipe_steps} steps each):")
    standard_opt = InnerOptimizer(o.standard_optimizer, o.standard_learning_rate)
    best, rows, standard = select_ahead_recipe(
        model, task, examples, o.recipe_steps, candidates,
        standard_init(model, seed=o.standard_seed), standard_opt, progress=o.progress,
        fit_cache=protocol.fit_cache())
    return best, {"split": "validation" if not o.directory else "folder validation",
                  "num_examples": len(examples), "steps": int(o.recipe_steps),
                  "rank": "smallest pointwise_deficit_db (standard minus meta PSNR, worst "
                          "step 1..steps), then highest score (mean PSNR at the report "
                          "steps)",
                  "standard_curve": {str(s): round(float(standard[s]), 3) for s in
                                     evaluation.recipe_score_steps(len(standard) - 1)},
                  "candidates": rows}


def add_whole_curve(report, results):
    """Records both inits' full mean curves and their `comparison` in `report.summary`
    (the zoo's "ahead at every level" check is recomputed from these)."""
    from learnit_tf.evaluation import META, STANDARD  # pylint: disable=import-outside-toplevel
    if META not in results or STANDARD not in results:
        return
    curves = {label: np.asarray(results[label]["psnr"], np.float64).mean(0)
              for label in (META, STANDARD)}
    report.summary["mean_psnr_by_step"] = {label: [round(float(v), 3) for v in curve]
                                           for label, curve in curves.items()}
    report.summary["whole_curve"] = comparison(curves[META], curves[STANDARD])


def whole_curve_headline(report):
    """{"whole_curve": {"steps", "ahead_at_every_level", "first_behind_step"}} of a report
    that recorded `add_whole_curve`, else {}."""
    record = report.summary.get("whole_curve")
    if not isinstance(record, dict):
        return {}
    return {"whole_curve": {k: record.get(k) for k in
                            ("steps", "ahead_at_every_level", "first_behind_step")}}
