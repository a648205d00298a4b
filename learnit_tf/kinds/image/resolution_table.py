"""Image inits at several resolutions: meta 2-step PSNR and standard steps to match.

For each init (zoo name[@version] or directory) and resolution R, the first
`num_examples` signals of its class's test split are rendered (or read) at R×R
(`resolution.metadata_at_resolution`) and fitted on the full R×R grid: from the meta
init with its own fit recipe (`evaluation.meta_optimizer_from_metadata`) for
`meta_steps`, and from a standard init of the same architecture with Adam 1e-4 (the
paper's protocol) for at most `standard_steps`. The standard curve depends only on the
architecture, the class and R, so it is fitted once per (architecture, class, R) and
shared by every version of a class. `scripts/resolution_table.py` is the command.
"""

import dataclasses
import inspect
import json
import time

import keras

from learnit_tf import evaluation, kinds
from learnit_tf.evaluation.baselines import standard_init
from learnit_tf.data.pipeline import take_examples
from learnit_tf.kinds.image.resolution import first_examples_config, metadata_at_resolution
from learnit_tf.kinds.image.sdf_2d import Sdf2d
from learnit_tf.kinds.image.text_images import TextImages
from learnit_tf.meta.inner import InnerOptimizer

def procedural_builders():
    """{dataset function name: builder class} of the classes whose signals are drawn
    from (seed, split, index) alone (`first_examples_config` applies)."""
    return {"text_images_examples": TextImages, "sdf_2d_examples": Sdf2d}


COLUMNS = ("init", "signal_class", "trained_at", "resolution", "num_examples",
           "meta_steps", "meta_psnr_at_match", "standard_psnr_at_match", "steps_to_match",
           "standard_steps_evaluated", "ratio", "fit_recipe")


@dataclasses.dataclass
class Loaded:
    """One init: its name, model and metadata."""
    name: str
    model: object
    metadata: dict


def trained_resolution(metadata):
    """The side of the grid an init's task was meta-trained on."""
    config = (metadata.get("task") or {}).get("config") or {}
    res = config.get("resolution")
    return int(res[0] if isinstance(res, (list, tuple)) else res)


def held_out_at(metadata, resolution, count, data_dir=None):
    """The first `count` test signals of an init's class at `resolution` (its metadata
    already at that resolution). Procedural classes are rendered from a config holding
    only those signals (`first_examples_config`): the same images as the full config's."""
    dataset = metadata.get("dataset") or {}
    builder = procedural_builders().get(dataset.get("function"))
    overrides = {}
    if builder is not None:
        config = (dataset.get("bindings") or {}).get("config")
        if config is None:  # The function's default config.
            fn = kinds.dataset_function(dataset["function"])
            config = inspect.signature(fn).parameters["config"].default
        overrides = {"config": first_examples_config(builder, config, resolution, count),
                     "resolution": None}
    fn = evaluation.dataset_fn_from_metadata(metadata, data_dir, **overrides)
    return take_examples(fn("test"), count, seed=12345)


def _architecture_key(model, metadata):
    config = {k: v for k, v in model.get_config().items()
              if k not in ("name", "seed", "inner_rates", "trainable", "dtype")}
    dataset = metadata.get("dataset") or {}
    return json.dumps([type(model).__name__, config, dataset.get("function"),
                       dataset.get("bindings")], sort_keys=True, default=str)


def resolution_table(inits, resolutions, num_examples=3, meta_steps=2, standard_steps=100,
                     match_step=2, data_dir=None, standard_seed=1, progress=True,
                     on_row=None):
    """Rows of `COLUMNS`, one per (init, resolution), and the standard curves.

    Args:
        inits: `Loaded` inits.
        resolutions: sides R of the grids to fit at.
        num_examples: held-out test signals per (init, R) (the first of the split).
        meta_steps: steps from the meta init (>= match_step).
        standard_steps: the standard init's cap; steps_to_match is None beyond it. One
            number, or one per resolution (e.g. 40 at 128 and 256: enough to show the
            20× criterion at 2 steps, and a 256×256 step costs 16 of a 64×64 one).
        match_step: the meta step whose PSNR the standard init must reach.
        on_row: optional callable(rows so far, standard curves) after each row (e.g. to
            write the table as it grows).
    """
    if meta_steps < match_step:
        raise ValueError(f"meta_steps={meta_steps} must be >= match_step={match_step}.")
    if isinstance(standard_steps, int):
        standard_steps = [standard_steps] * len(resolutions)
    if len(standard_steps) != len(resolutions):
        raise ValueError(f"standard_steps {list(standard_steps)} must give one cap per "
                         f"resolution {list(resolutions)}.")
    caps = dict(zip(resolutions, standard_steps))
    total = len(inits) * len(resolutions) * num_examples * meta_steps
    keys = {(_architecture_key(i.model, i.metadata), r) for i in inits for r in resolutions}
    total += sum(num_examples * caps[r] for _, r in keys)
    bar = keras.utils.Progbar(total, verbose=1 if progress else 0, unit_name="step")
    done = [0]

    def tick(label, index, result):  # compare_inits' progress: one fit finished.
        del label, index
        done[0] += len(result.metrics["psnr"]) - 1
        bar.update(done[0])

    standard_curves, rows = {}, []
    for init in inits:
        for res in resolutions:
            metadata = metadata_at_resolution(init.metadata, res)
            task = evaluation.task_from_metadata(metadata)
            examples = held_out_at(metadata, res, num_examples, data_dir)
            optimizer = evaluation.meta_optimizer_from_metadata(metadata)
            meta = evaluation.compare_inits({"meta": (init.model, optimizer, meta_steps)},
                                            task, examples, None, progress=tick)["meta"]
            key = (_architecture_key(init.model, init.metadata), res)
            if key not in standard_curves:
                standard = standard_init(init.model, seed=standard_seed)
                start = time.perf_counter()
                result = evaluation.compare_inits(
                    {"standard": (standard, InnerOptimizer("adam", 1e-4), caps[res])},
                    task, examples, None, progress=tick)["standard"]
                standard_curves[key] = {"psnr": result["psnr"],
                                        "seconds": time.perf_counter() - start}
            base = standard_curves[key]["psnr"].mean(0)
            target = float(meta["psnr"].mean(0)[match_step])
            reached = evaluation.steps_to_reach(base, target)
            rows.append({
                "init": init.name, "signal_class": init.metadata.get("signal_class"),
                "trained_at": trained_resolution(init.metadata), "resolution": res,
                "num_examples": len(examples), "meta_steps": meta_steps,
                "meta_psnr_at_match": round(target, 3),
                "standard_psnr_at_match": round(float(base[match_step]), 3),
                "steps_to_match": reached, "standard_steps_evaluated": caps[res],
                "ratio": None if reached is None else round(reached / match_step, 2),
                "fit_recipe": optimizer.describe()})
            if on_row is not None:
                on_row(rows, standard_curves)
    return rows, standard_curves


def steps_cell(row):
    """'43 (21.5×)' or '> 100' for a row's standard steps to match."""
    if row["steps_to_match"] is None:
        return f"> {row['standard_steps_evaluated']}"
    return f"{row['steps_to_match']} ({row['ratio']:g}×)"


def markdown_table(rows, resolutions):
    """One line per init: meta 2-step PSNR and standard steps to match at each R."""
    header = ["init", "trained at"] + [f"{r}²: meta dB / standard steps" for r in resolutions]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    by_init = {}
    for row in rows:
        by_init.setdefault(row["init"], {})[row["resolution"]] = row
    for name, cells in by_init.items():
        first = next(iter(cells.values()))
        values = [f"{cells[r]['meta_psnr_at_match']:.2f} / {steps_cell(cells[r])}"
                  if r in cells else "" for r in resolutions]
        lines.append(f"| {name} | {first['trained_at']}² | " + " | ".join(values) + " |")
    return "\n".join(lines) + "\n"


def evaluations_by_resolution(rows, name):
    """{R: {meta_psnr_at_2, standard_psnr_at_2, steps_to_match, ...}} of one init's rows
    (what its metadata's `evaluated_resolutions` records)."""
    out = {}
    for row in rows:
        if row["init"] == name:
            out[str(row["resolution"])] = {k: row[k] for k in (
                "meta_psnr_at_match", "standard_psnr_at_match", "steps_to_match",
                "standard_steps_evaluated", "num_examples", "fit_recipe")}
    return out


def standard_psnr_rows(standard_curves):
    """Mean standard-init PSNR at a few steps per (architecture, R), for the docs."""
    out = []
    for (key, res), curve in standard_curves.items():
        mean = curve["psnr"].mean(0)
        function, bindings = json.loads(key)[2:4]
        out.append({"dataset": function, "bindings": bindings, "resolution": res,
                    **{f"step_{s}": round(float(mean[s]), 2)
                       for s in (0, 2, 10, 50, len(mean) - 1) if s < len(mean)},
                    "seconds": round(curve["seconds"], 1)})
    return out
