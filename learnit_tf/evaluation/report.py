"""An evaluation's `Report`: rows, a summary, extra tables and figures, written all or nothing.

A report's rows have the columns `report_columns(metric)`: the init, how it was fitted
(optimizer, learning rate, steps, observations) and the mean, spread and count of the
kind's primary `Metric` (`SignalKind.metric`) over the held-out signals. For PSNR kinds
these are `REPORT_COLUMNS`, the column names of every published report.csv
(`psnr_mean`, `psnr_std`). Every file is written atomically (`learnit_tf.core.atomic`).
"""

import dataclasses
import os
import shutil
import tempfile

import numpy as np

from learnit_tf.core import atomic
from learnit_tf.core.atomic import write_json_atomic
from learnit_tf.core.registry import PSNR, Metric
from learnit_tf.meta import FitRecipe

#: Steps at which the rows of a steps protocol are reported (and fit recipes scored).
REPORT_STEPS = (0, 1, 2, 3, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000)
REPORT_CSV, REPORT_JSON = "report.csv", "report.json"
META, STANDARD = "meta", "standard"
_FIT_COLUMNS = ("init", "optimizer", "learning_rate", "steps", "observations")


def report_columns(metric=PSNR):
    """The columns of a report's rows for a kind whose primary metric is `metric`.

    >>> report_columns()[-3:]
    ('psnr_mean', 'psnr_std', 'count')
    >>> report_columns(Metric("iou", "IoU"))[-3:]
    ('iou_mean', 'iou_std', 'count')
    """
    return _FIT_COLUMNS + (f"{metric.key}_mean", f"{metric.key}_std", "count")


REPORT_COLUMNS = report_columns(PSNR)


def write_csv_atomic(rows, path, columns=None):
    """Writes rows (dicts) as CSV to `path`, atomically (`learnit_tf.core.atomic.write_csv`,
    rows first for the callers of earlier releases)."""
    return atomic.write_csv(path, rows, columns)


def mean_rows(values, keys, metric=PSNR, digits=None):
    """Mean, spread and count of a metric per group: the summary of per-signal values.

    Args:
        values: {group tuple: list of per-signal values}, in the order rows should have.
        keys: names of the group tuple's parts, e.g. ("init", "step").
        metric: the metric (column names `<key>_mean`, `<key>_std`).
        digits: round means and spreads to this many decimals (None: no rounding).

    Returns:
        [{**group, "<key>_mean", "<key>_std", "num_examples"}].

    >>> mean_rows({("meta", 2): [20.0, 22.0]}, ("init", "step"))
    [{'init': 'meta', 'step': 2, 'psnr_mean': 21.0, 'psnr_std': 1.0, 'num_examples': 2}]
    """
    out = []
    for group, group_values in values.items():
        array = np.asarray(group_values, np.float64)
        mean, std = float(array.mean()), float(array.std())
        if digits is not None:
            mean, std = round(mean, digits), round(std, digits)
        out.append(dict(zip(keys, group), **{f"{metric.key}_mean": mean,
                                              f"{metric.key}_std": std,
                                              "num_examples": int(array.size)}))
    return out


def per_example_table(results, metric=PSNR):
    """(columns, rows): the final value of every held-out signal from every init of
    `steps.compare_inits` results."""
    rows = []
    for label, res in results.items():
        curves = np.asarray(res[metric.key])
        for i, curve in enumerate(curves):
            rows.append({"init": label, "example": i, "steps": len(curve) - 1,
                         metric.key: float(curve[-1])})
    return ("init", "example", "steps", metric.key), rows


def report_row(init, optimizer, steps, psnr, observations="", metric=PSNR):
    """One row of a `Report` from the final metric values (one per held-out signal) of a fit.

    Args:
        init: "meta", "standard" or another init's label.
        optimizer: the `InnerOptimizer` it was fitted with.
        steps: test-time steps.
        psnr: the metric's value per held-out signal (array-like, at least one value).
        observations: what each signal was observed through (e.g. a number of views),
            "" where the protocol has no such axis.
        metric: the kind's primary `Metric` (PSNR: columns psnr_mean, psnr_std).
    """
    psnr = np.asarray(psnr, np.float64).reshape(-1)
    if psnr.size == 0:
        raise ValueError(f"A report row of init {init!r} needs at least one "
                         f"{metric.label} value.")
    return {"init": init, "optimizer": optimizer.name,
            "learning_rate": float(optimizer.learning_rate), "steps": int(steps),
            "observations": observations, f"{metric.key}_mean": float(psnr.mean()),
            f"{metric.key}_std": float(psnr.std()), "count": int(psnr.size)}


def optimizer_setting(optimizer):
    """A report's settings entry for a test-time optimizer: {"name", "learning_rate"}, or
    a fit recipe's `record()` (its name and phases)."""
    if isinstance(optimizer, FitRecipe):
        return optimizer.record()
    return {"name": optimizer.name, "learning_rate": optimizer.learning_rate}


@dataclasses.dataclass
class Report:
    """What an evaluation protocol found: rows, a summary, extra tables and figures.

    Attributes:
        protocol: the protocol's name (`Protocol.name`), e.g. "psnr_vs_steps".
        init: the init evaluated (zoo name or directory).
        rows: dicts with the columns `report_columns(metric)` (written as report.csv).
        summary: JSON-able numbers of the protocol (the headline is computed from
            `rows` and `summary` by the protocol's `headline`).
        settings: JSON-able options the protocol ran with.
        tables: extra CSVs: {filename: (columns, rows)}, e.g. per-signal PSNRs.
        figures: PNGs: {filename: callable(path) writing the figure to `path`}.
        metric: the kind's primary `Metric` (its key names the value columns).
    """

    protocol: str
    init: str
    rows: list
    summary: dict = dataclasses.field(default_factory=dict)
    settings: dict = dataclasses.field(default_factory=dict)
    tables: dict = dataclasses.field(default_factory=dict)
    figures: dict = dataclasses.field(default_factory=dict)
    metric: Metric = PSNR

    def __post_init__(self):
        for i, row in enumerate(self.rows):
            missing = [c for c in self.columns if c not in row]
            if missing:
                raise ValueError(f"Report row {i} of protocol {self.protocol!r} lacks columns "
                                 f"{missing}; expected {list(self.columns)}.")

    @property
    def columns(self):
        """The row columns (`report_columns(self.metric)`)."""
        return report_columns(self.metric)

    def to_json(self):
        """The JSON form (report.json, metadata['evaluation']): everything but the figures."""
        return {"protocol": self.protocol, "init": self.init, "columns": list(self.columns),
                "rows": [{c: row[c] for c in self.columns} for row in self.rows],
                "summary": self.summary, "settings": self.settings}

    @classmethod
    def from_json(cls, data, metric=None):
        """Reads `to_json` output back (figures and extra tables are not stored).

        `metric`: the kind's `Metric`; default: PSNR, or the metric whose key the
        recorded columns name (`<key>_mean`).
        """
        if not isinstance(data, dict) or "protocol" not in data or "rows" not in data:
            raise ValueError("An evaluation report needs 'protocol' and 'rows'; got "
                             f"{sorted(data) if isinstance(data, dict) else type(data).__name__}.")
        if metric is None:
            metric = _metric_of_columns(data.get("columns"))
        return cls(protocol=data["protocol"], init=data.get("init", ""),
                   rows=list(data["rows"]), summary=dict(data.get("summary") or {}),
                   settings=dict(data.get("settings") or {}), metric=metric)

    def row(self, init, steps=None, observations=None):
        """The row of `init` (at `steps` / `observations` if given), or None."""
        for row in self.rows:
            if row["init"] == init and (steps is None or row["steps"] == steps) and (
                    observations is None or row["observations"] == observations):
                return row
        return None

    def write(self, output_dir):
        """Writes the report to `output_dir` (see `write_report`)."""
        return write_report(self, output_dir)


def write_report(report, output_dir):
    """Writes report.csv, report.json, the extra tables and the figures, all or nothing.

    Every file is first written into a hidden staging directory inside `output_dir`;
    only when all of them were written are they renamed into place (each rename is
    atomic), so a failing figure or table leaves no new file behind.

    Returns:
        The written paths, report.csv and report.json first.
    """
    created = not os.path.isdir(output_dir)
    os.makedirs(output_dir, exist_ok=True)
    staging = tempfile.mkdtemp(prefix=".report-", dir=output_dir)
    try:
        names = [REPORT_CSV, REPORT_JSON]
        write_csv_atomic(report.rows, os.path.join(staging, REPORT_CSV), report.columns)
        write_json_atomic(os.path.join(staging, REPORT_JSON), report.to_json())
        for name, (columns, rows) in report.tables.items():
            write_csv_atomic(rows, os.path.join(staging, _check_file_name(name)), columns)
            names.append(name)
        for name, draw in report.figures.items():
            draw(os.path.join(staging, _check_file_name(name)))
            names.append(name)
        for name in names:
            if not os.path.isfile(os.path.join(staging, name)):
                raise RuntimeError(f"The report's writer for {name!r} wrote no file.")
        paths = []
        for name in names:
            paths.append(os.path.join(output_dir, name))
            os.replace(os.path.join(staging, name), paths[-1])
        return paths
    finally:
        shutil.rmtree(staging, ignore_errors=True)
        if created and not os.listdir(output_dir):
            os.rmdir(output_dir)


def _check_file_name(name):
    if not name or os.path.basename(name) != name or name.startswith("."):
        raise ValueError(f"Report file names must be plain file names, got {name!r}.")
    return name



def _metric_of_columns(columns):
    """PSNR, or a `Metric` keyed as the recorded `<key>_mean` column names it."""
    for column in columns or ():
        if isinstance(column, str) and column.endswith("_mean"):
            key = column[:-len("_mean")]
            return PSNR if key == PSNR.key else Metric(key=key, label=key)
    return PSNR
