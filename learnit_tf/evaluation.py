"""Evaluating an init against a standard init on held-out signals (the paper's protocol).

PAPER.md, "2D image regression" evaluation: the meta init is fitted with SGD at the
inner learning rate, a standard init of the same architecture with Adam 1e-4; the
report is PSNR after k steps and how many standard-init steps reach the meta init's
2-step PSNR (the paper: more than 30× on CelebA).
"""

import numpy as np

from learnit_tf import init_io, kinds
from learnit_tf.baselines import standard_init
from learnit_tf.data.pipeline import take_examples
from learnit_tf.meta import Fitter, InnerOptimizer

REPORT_STEPS = (0, 1, 2, 3, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000)


def task_from_metadata(metadata):
    """Rebuilds the task recorded in an init's metadata."""
    spec = metadata.get("task") or {}
    cls = kinds.task_class(spec.get("class_name"))
    return cls(**spec.get("config", {}))


def dataset_fn_from_metadata(metadata, data_dir=None, **overrides):
    """callable(split) -> examples for the dataset recorded in an init's metadata."""
    spec = metadata.get("dataset") or {}
    fn = kinds.dataset_function(spec.get("function"))
    kwargs = dict(spec.get("gin_bindings") or {})
    if data_dir is not None:
        kwargs["data_dir"] = data_dir
    kwargs.update(overrides)
    return lambda split: fn(split=split, **kwargs)


def held_out_examples(metadata, count, split="test", data_dir=None, seed=12345):
    """`count` held-out examples of the signal class an init was trained on."""
    return take_examples(dataset_fn_from_metadata(metadata, data_dir)(split), count, seed=seed)


def meta_optimizer_from_metadata(metadata):
    """The paper's test-time optimizer for a meta init: the inner optimizer it was trained for."""
    hp = metadata.get("hyperparameters", {})
    return InnerOptimizer(hp.get("inner_optimizer", "sgd"), hp.get("inner_learning_rate", 1e-2))


def steps_to_reach(curve, target):
    """First step at which `curve` (indexed by step) reaches `target`, or None."""
    hits = np.nonzero(np.asarray(curve) >= target)[0]
    return int(hits[0]) if hits.size else None


def compare_inits(inits, task, examples, steps, snapshot_steps=(), snapshot_examples=0,
                  progress=None):
    """Fits every example from every init and collects PSNR curves.

    Args:
        inits: dict label -> (model, InnerOptimizer, steps for that init).
        task: the task.
        examples: list of example dicts.
        steps: unused when each init gives its own steps; kept for symmetry (default steps).
        snapshot_steps: steps at which to keep fitted weights for reconstruction grids.
        snapshot_examples: for how many of the first examples to keep snapshots.
        progress: optional callable(label, example_index, result).

    Returns:
        dict label -> {"psnr": (num_examples, steps+1) array, "snapshots": [dict step->weights],
        "model": model}.
    """
    out = {}
    for label, (model, optimizer, init_steps) in inits.items():
        init_steps = steps if init_steps is None else init_steps
        fitter = Fitter(model, task, optimizer, steps_per_call=min(500, max(1, init_steps)))
        curves, snaps = [], []
        for i, example in enumerate(examples):
            result = fitter.fit(example, init_steps,
                                snapshot_steps=snapshot_steps if i < snapshot_examples else ())
            curves.append(result.metrics["psnr"])
            if i < snapshot_examples:
                snaps.append(result.snapshots)
            if progress is not None:
                progress(label, i, result)
        out[label] = {"psnr": np.stack(curves), "snapshots": snaps, "model": model,
                      "fitter": fitter}
    return out


def summarize(results, match_step=2, reference="meta", baseline="standard"):
    """Rows (init, step, psnr_mean, psnr_std) at the report steps, and the steps-to-match.

    Returns:
        (rows, summary) where summary has `meta_psnr_at_2`, `standard_psnr_at_2`,
        `steps_to_match` (standard-init steps to reach the meta init's PSNR at
        `match_step`, None if not reached) and `steps_to_match_ratio`.
    """
    rows = []
    for label, res in results.items():
        psnr = res["psnr"]
        last = psnr.shape[1] - 1
        for step in sorted(set(s for s in REPORT_STEPS if s <= last) | {last}):
            rows.append({"init": label, "step": step,
                         "psnr_mean": float(psnr[:, step].mean()),
                         "psnr_std": float(psnr[:, step].std())})
    summary = {}
    if reference in results and baseline in results:
        ref = results[reference]["psnr"].mean(0)
        base = results[baseline]["psnr"].mean(0)
        target = float(ref[min(match_step, len(ref) - 1)])
        reached = steps_to_reach(base, target)
        summary = {
            f"{reference}_psnr_at_{match_step}": target,
            f"{baseline}_psnr_at_{match_step}": float(base[min(match_step, len(base) - 1)]),
            "steps_to_match": reached,
            "standard_steps_evaluated": int(len(base) - 1),
            "steps_to_match_ratio": (reached / match_step) if reached else None,
            "num_examples": int(results[reference]["psnr"].shape[0]),
        }
        summary["psnr_curve"] = {label: {str(r["step"]): round(r["psnr_mean"], 3)
                                         for r in rows if r["init"] == label}
                                 for label in results}
    return rows, summary


def write_csv_atomic(rows, path, columns=("init", "step", "psnr_mean", "psnr_std")):
    """Writes report rows as CSV, atomically (`init_io.write_csv_atomic`)."""
    return init_io.write_csv_atomic(rows, path, columns)


def evaluate_against_standard(init_dir_or_model, examples, task, meta_optimizer, meta_steps,
                              standard_steps, standard_optimizer=InnerOptimizer("adam", 1e-4),
                              standard_seed=1, snapshot_steps=(0, 1, 2, 5, 10),
                              snapshot_examples=3, progress=None):
    """The paper's comparison for one init: curves, report rows and steps-to-match.

    Returns:
        (results, rows, summary) as from `compare_inits` and `summarize`.
    """
    model = init_dir_or_model
    if isinstance(model, str):
        model = init_io.load_init(model)
    inits = {
        "meta": (model, meta_optimizer, meta_steps),
        "standard": (standard_init(model, seed=standard_seed), standard_optimizer,
                     standard_steps),
    }
    results = compare_inits(inits, task, examples, None, snapshot_steps, snapshot_examples,
                            progress)
    rows, summary = summarize(results)
    summary["meta_optimizer"] = {"name": meta_optimizer.name,
                                 "learning_rate": meta_optimizer.learning_rate}
    summary["standard_optimizer"] = {"name": standard_optimizer.name,
                                     "learning_rate": standard_optimizer.learning_rate}
    return results, rows, summary
