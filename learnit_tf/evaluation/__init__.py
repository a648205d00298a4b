"""Evaluating an init against a standard init on held-out signals (layer 5, issue 25).

- `protocol`: the `Protocol` interface every kind implements (`evaluate` -> `Report`,
  `headline`, `headline_cells`), and `parse_numbers` for list options.
- `report`: the `Report` (rows with the kind's metric columns, summary, tables,
  figures), written atomically, all or nothing.
- `steps`: the metric-vs-steps protocol (`StepsProtocol`), steps to match and steps to
  reach the metric's levels.
- `recipes`: fit recipes for a meta init, their scores and `select_fit_recipe`.
- `held_out`: the task, held-out signals and meta optimizer an init's metadata records.
- `headlines`: reading headline numbers out of summaries (no TensorFlow).
- `whole_curve`, `baselines`, `plots`: the whole-curve check, the paper's baseline
  inits, figures.

The names below are importable from `learnit_tf.evaluation` as before the split; they
are loaded on first use, so `learnit_tf.evaluation.headlines` can be read without
TensorFlow. This package names no kind: it looks kinds up in the registry.
"""

import importlib

_EXPORTS = {
    "fit_cache": ("FitCache", "FitCacheError"),
    "headlines": ("META", "STANDARD", "finite_number", "format_count", "steps_headline"),
    "held_out": ("task_from_metadata", "dataset_fn_from_metadata", "held_out_examples",
                 "meta_optimizer_from_metadata", "kind_of_metadata", "protocol_for",
                 "recorded_protocol",
                 "as_init_metadata", "kinds"),
    "report": ("REPORT_STEPS", "REPORT_COLUMNS", "REPORT_CSV", "REPORT_JSON", "Report",
               "mean_rows", "optimizer_setting", "per_example_table", "report_columns",
               "report_row", "write_csv_atomic", "write_report"),
    "protocol": ("Protocol", "parse_numbers"),
    "recipes": ("best_fit_recipe", "fit_recipe_candidates", "fitted_curve_measure",
                "recipe_headline", "recipe_score", "recipe_score_steps", "select_fit_recipe"),
    "steps": ("StepsOptions", "StepsProtocol", "compare_inits", "evaluate_against_standard",
              "steps_to_reach", "steps_to_targets", "summarize"),
}
_WHERE = {name: module for module, names in _EXPORTS.items() for name in names}
_SUBMODULES = ("baselines", "fit_cache", "headlines", "held_out", "plots", "protocol", "recipes", "report",
               "steps", "whole_curve")

__all__ = sorted(_WHERE)


def __getattr__(name):
    if name in _WHERE:
        value = getattr(importlib.import_module(f"{__name__}.{_WHERE[name]}"), name)
    elif name in _SUBMODULES:
        value = importlib.import_module(f"{__name__}.{name}")
    else:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    globals()[name] = value  # Later look-ups (and mock.patch.object) see a plain attribute.
    return value


def __dir__():
    return sorted(set(globals()) | set(_WHERE) | set(_SUBMODULES))
