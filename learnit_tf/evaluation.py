"""Evaluating an init against a standard init on held-out signals: one protocol interface.

PAPER.md: every signal kind is scored by fitting held-out signals from the meta init
(with the optimizer it was meta-trained for) and from a standard init of the same
architecture (Adam, the paper's choice for standard inits). What varies by kind is the
protocol: images report PSNR against test-time steps and how many standard-init steps
match the meta init's 2-step PSNR; CT reports PSNR against the number of views; NeRF
fits one view and reports PSNR on held-out views.

Each kind subclasses `Protocol` (in `learnit_tf/kinds/<kind>/evaluation.py`, named by
the kind's `SignalKind.protocol`); every protocol returns a `Report`: rows with the
columns `REPORT_COLUMNS`, a JSON `summary`, optional extra tables and PNG figures, all
written by `write_report`. `Protocol.headline` turns a report into the few numbers the
zoo table shows. `StepsProtocol` is the PSNR-vs-steps protocol for any task whose
examples are fitted by steps (images, audio); kinds specialise it.

This module names no kind: it looks kinds up in `learnit_tf.kinds`.
"""

import abc
import dataclasses
import json
import os
import shutil
import tempfile
import typing
from typing import Optional

import keras
import numpy as np

from learnit_tf import init_io, kinds
from learnit_tf.baselines import standard_init
from learnit_tf.data.pipeline import add_example_seeds, take_examples
from learnit_tf.meta import FitPhase, FitRecipe, Fitter, InnerOptimizer
from learnit_tf.headline import finite_number, headline_from_metadata, steps_headline  # noqa: F401
from learnit_tf.core.registry import PSNR
from learnit_tf.metadata import DatasetSpec, TaskSpec, as_init_metadata

REPORT_STEPS = (0, 1, 2, 3, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000)
REPORT_COLUMNS = ("init", "optimizer", "learning_rate", "steps", "observations", "psnr_mean",
                  "psnr_std", "count")
REPORT_CSV, REPORT_JSON = "report.csv", "report.json"
META, STANDARD = "meta", "standard"


# -- init metadata -> task, data, optimizer ------------------------------------------------

def format_count(value):
    """A count of steps/views for tables: 3 significant digits ("43", "1e+03", "> 300"),
    a ratio dict as "21.5×"."""
    if isinstance(value, dict):
        for key in ("ratio", "speedup"):
            if finite_number(value.get(key)) is not None:
                return f"{finite_number(value[key]):.3g}×"
        return json.dumps(value, sort_keys=True, separators=(",", ":"))
    number = finite_number(value)
    if number is not None:
        return f"{number:.3g}"
    return "" if value is None else str(value)


def task_from_metadata(metadata):
    """Rebuilds the task recorded in an init's metadata (an `InitMetadata` or its dict)."""
    spec = as_init_metadata(metadata).task or TaskSpec()
    cls = kinds.task_class(spec.class_name)
    return cls(**spec.config)


def dataset_fn_from_metadata(metadata, data_dir=None, **overrides):
    """callable(split) -> examples for the dataset recorded in an init's metadata."""
    spec = as_init_metadata(metadata).dataset or DatasetSpec()
    fn = kinds.dataset_function(spec.function)
    kwargs = dict(spec.bindings)  # Version-1 files: `gin_bindings` (learnit_tf.metadata).
    if data_dir is not None:
        kwargs["data_dir"] = data_dir
    kwargs.update(overrides)
    return lambda split: fn(split=split, **kwargs)


def held_out_examples(metadata, count, split="test", data_dir=None, seed=12345):
    """`count` held-out examples of the signal class an init was trained on."""
    return take_examples(dataset_fn_from_metadata(metadata, data_dir)(split), count, seed=seed)


def meta_optimizer_from_metadata(metadata, learning_rate=None, optimizer=None,
                                 default_learning_rate=1e-2):
    """How to fit from a meta init: the one rule `fit.py`, `evaluate.py` and every
    kind's protocol follow.

    With neither `learning_rate` nor `optimizer`: the init's recorded `fit_recipe` if
    any; else the inner optimizer it was meta-trained with (the paper's protocol),
    stepping with its learned inner rates if it has them (Meta-SGD). Either argument
    asks for a plain optimizer instead (no recipe, no learned rates): `optimizer`
    ("sgd"/"adam", default the init's inner optimizer) at `learning_rate` (default
    the init's inner learning rate). `default_learning_rate` stands in where the
    metadata records no inner learning rate (images: the paper's SGD 1e-2; CT: 10;
    NeRF: 0.5).

    Example:

    >>> meta = {"hyperparameters": {"inner_optimizer": "sgd", "inner_learning_rate": 0.5}}
    >>> meta_optimizer_from_metadata(meta).describe()
    'sgd 0.5'
    >>> meta_optimizer_from_metadata(meta, optimizer="adam", learning_rate=1e-3).describe()
    'adam 0.001'
    """
    meta = as_init_metadata(metadata)
    hp = meta.hyperparameters
    own = learning_rate is None and optimizer is None
    if own and meta.fit_recipe is not None:
        return FitRecipe.from_dict(meta.fit_recipe, source="metadata fit_recipe")
    if learning_rate is None:
        learning_rate = (default_learning_rate if hp.inner_learning_rate is None
                         else hp.inner_learning_rate)
    plain = InnerOptimizer(optimizer or hp.inner_optimizer or "sgd", learning_rate)
    if own and "inner_rates" in hp.extra:
        return FitRecipe((FitPhase(plain, learned_rates=True),))
    return plain


def kind_of_metadata(metadata):
    """The `SignalKind` of the task recorded in an init's metadata."""
    name = as_init_metadata(metadata).kind_name()
    if not name:
        raise ValueError("The init's metadata records no known task (metadata['task']"
                         "['class_name']); its signal kind is unknown.")
    return kinds.get_kind(name)


def protocol_for(metadata, **options):
    """The evaluation protocol of an init's kind, with `options` (see its `Options`)."""
    return kind_of_metadata(metadata).protocol_class()(**options)


# -- fitting and curves --------------------------------------------------------------------

def steps_to_reach(curve, target):
    """First step at which `curve` (indexed by step) reaches `target`, or None."""
    hits = np.nonzero(np.asarray(curve) >= target)[0]
    return int(hits[0]) if hits.size else None


def compare_inits(inits, task, examples, steps, snapshot_steps=(), snapshot_examples=0,
                  progress=None):
    """Fits every example from every init and collects PSNR curves.

    Args:
        inits: dict label -> (model, InnerOptimizer, steps for that init or None).
        task: the task.
        examples: list of example dicts.
        steps: steps of inits that give None.
        snapshot_steps: steps at which to keep fitted weights for reconstruction grids.
        snapshot_examples: for how many of the first examples to keep snapshots.
        progress: optional callable(label, example_index, result).

    Returns:
        dict label -> {"psnr": (num_examples, steps+1) array, "snapshots": [dict step->weights],
        "model": model, "fitter": the Fitter}.
    """
    out = {}
    for label, (model, optimizer, init_steps) in inits.items():
        init_steps = steps if init_steps is None else init_steps
        fitter = Fitter(model, task, optimizer, steps_per_call=min(500, max(1, init_steps)))
        curves, snaps, seconds = [], [], []
        for i, example in enumerate(examples):
            result = fitter.fit(example, init_steps,
                                snapshot_steps=snapshot_steps if i < snapshot_examples else ())
            curves.append(result.metrics["psnr"])
            seconds.append(result.seconds)
            if i < snapshot_examples:
                snaps.append(result.snapshots)
            if progress is not None:
                progress(label, i, result)
        out[label] = {"psnr": np.stack(curves), "snapshots": snaps, "model": model,
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


def steps_to_targets(results, targets):
    """{init: {"steps": {target: first step reaching it or None}, "seconds": {...}}} of
    the mean PSNR curves (seconds: steps × that init's wall time per step, same run)."""
    out = {}
    for label, res in results.items():
        curve = res["psnr"].mean(0)
        per_step = res.get("seconds_per_step")
        steps = {f"{t:g}": steps_to_reach(curve, t) for t in targets}
        out[label] = {"steps": steps, "seconds": {
            k: (None if v is None or per_step is None else round(v * per_step, 3))
            for k, v in steps.items()}}
    return out


def summarize(results, match_step=2, reference=META, baseline=STANDARD):
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
                              snapshot_examples=3, progress=None, match_step=2):
    """The paper's comparison for one init: curves, report rows and steps-to-match.

    Returns:
        (results, rows, summary) as from `compare_inits` and `summarize`.
    """
    model = init_dir_or_model
    if isinstance(model, str):
        model = init_io.load_init(model)
    inits = {
        META: (model, meta_optimizer, meta_steps),
        STANDARD: (standard_init(model, seed=standard_seed), standard_optimizer,
                   standard_steps),
    }
    results = compare_inits(inits, task, examples, None, snapshot_steps, snapshot_examples,
                            progress)
    rows, summary = summarize(results, match_step=match_step)
    summary["meta_optimizer"] = {"name": meta_optimizer.name,
                                 "learning_rate": meta_optimizer.learning_rate}
    if isinstance(meta_optimizer, FitRecipe):
        summary["meta_optimizer"]["fit_recipe"] = meta_optimizer.to_dict()
    summary["standard_optimizer"] = {"name": standard_optimizer.name,
                                     "learning_rate": standard_optimizer.learning_rate}
    return results, rows, summary


# -- the report ----------------------------------------------------------------------------

def report_row(init, optimizer, steps, psnr, observations=""):
    """One row of a `Report` from the final PSNRs (one per held-out signal) of a fit.

    Args:
        init: "meta", "standard" or another init's label.
        optimizer: the `InnerOptimizer` it was fitted with.
        steps: test-time steps.
        psnr: PSNR per held-out signal (array-like, at least one value).
        observations: what each signal was observed through (e.g. a number of views),
            "" where the protocol has no such axis.
    """
    psnr = np.asarray(psnr, np.float64).reshape(-1)
    if psnr.size == 0:
        raise ValueError(f"A report row of init {init!r} needs at least one PSNR value.")
    return {"init": init, "optimizer": optimizer.name,
            "learning_rate": float(optimizer.learning_rate), "steps": int(steps),
            "observations": observations, "psnr_mean": float(psnr.mean()),
            "psnr_std": float(psnr.std()), "count": int(psnr.size)}


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
        rows: dicts with the columns `REPORT_COLUMNS` (written as report.csv).
        summary: JSON-able numbers of the protocol (the headline is computed from
            `rows` and `summary` by the protocol's `headline`).
        settings: JSON-able options the protocol ran with.
        tables: extra CSVs: {filename: (columns, rows)}, e.g. per-signal PSNRs.
        figures: PNGs: {filename: callable(path) writing the figure to `path`}.
    """

    protocol: str
    init: str
    rows: list
    summary: dict = dataclasses.field(default_factory=dict)
    settings: dict = dataclasses.field(default_factory=dict)
    tables: dict = dataclasses.field(default_factory=dict)
    figures: dict = dataclasses.field(default_factory=dict)

    def __post_init__(self):
        for i, row in enumerate(self.rows):
            missing = [c for c in REPORT_COLUMNS if c not in row]
            if missing:
                raise ValueError(f"Report row {i} of protocol {self.protocol!r} lacks columns "
                                 f"{missing}; expected {list(REPORT_COLUMNS)}.")

    def to_json(self):
        """The JSON form (report.json, metadata['evaluation']): everything but the figures."""
        return {"protocol": self.protocol, "init": self.init, "columns": list(REPORT_COLUMNS),
                "rows": [{c: row[c] for c in REPORT_COLUMNS} for row in self.rows],
                "summary": self.summary, "settings": self.settings}

    @classmethod
    def from_json(cls, data):
        """Reads `to_json` output back (figures and extra tables are not stored)."""
        if not isinstance(data, dict) or "protocol" not in data or "rows" not in data:
            raise ValueError("An evaluation report needs 'protocol' and 'rows'; got "
                             f"{sorted(data) if isinstance(data, dict) else type(data).__name__}.")
        return cls(protocol=data["protocol"], init=data.get("init", ""),
                   rows=list(data["rows"]), summary=dict(data.get("summary") or {}),
                   settings=dict(data.get("settings") or {}))

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
        init_io.write_csv_atomic(report.rows, os.path.join(staging, REPORT_CSV), REPORT_COLUMNS)
        init_io.write_json_atomic(os.path.join(staging, REPORT_JSON), report.to_json())
        for name, (columns, rows) in report.tables.items():
            init_io.write_csv_atomic(rows, os.path.join(staging, _check_file_name(name)),
                                     columns)
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


# -- the protocol interface ----------------------------------------------------------------

def _coerce(value, annotation, default, name):
    """`value` (a flag string, a list of strings or a Python value) as the option's type."""
    if value is None:
        return None
    args = [a for a in typing.get_args(annotation) if a is not type(None)]
    target = args[0] if typing.get_origin(annotation) is typing.Union and args else annotation
    if typing.get_origin(target) is tuple or isinstance(default, tuple):
        items = value.split(",") if isinstance(value, str) else list(value)
        item_type = (typing.get_args(target) or (int,))[0]
        return tuple(_coerce(v, item_type, None, name) for v in items if str(v).strip() != "")
    if not isinstance(value, (str, list, tuple)):
        return value  # A Python value (e.g. a dataset config object) is used as given.
    if isinstance(value, (list, tuple)):
        if len(value) != 1:
            raise ValueError(f"Option {name!r} takes one value, got {list(value)}.")
        value = value[0]
    try:
        if target is bool:
            if isinstance(value, str):
                if value.lower() not in ("true", "false", "1", "0"):
                    raise ValueError(value)
                return value.lower() in ("true", "1")
            return bool(value)
        if target in (int, float):
            number = target(float(value)) if target is int and isinstance(value, str) and (
                "e" in value.lower()) else target(value)
            if target is int and float(value) != number:
                raise ValueError(value)
            return number
        return target(value)
    except (TypeError, ValueError) as e:
        raise ValueError(f"Option {name!r} expects {getattr(target, '__name__', target)}, "
                         f"got {value!r}.") from e


class Protocol(abc.ABC):
    """A kind's evaluation protocol: held-out signals, meta vs standard init, a `Report`.

    Subclasses set `name` and `Options` (a dataclass of absl-free options with
    defaults; a field's `metadata={"help": ...}` becomes the help of the matching
    `scripts/evaluate.py` flag) and implement `evaluate` and `headline`.

    Usage (any kind; the protocol comes from the init's metadata):

    >>> from learnit_tf import evaluation, zoo
    >>> metadata = zoo.describe("text_siren")
    >>> protocol = evaluation.protocol_for(metadata, num_examples=2, meta_steps=2,
    ...                                    standard_steps=3)
    >>> type(protocol).__name__, protocol.options.meta_steps
    ('ImageProtocol', 2)

    then `report = protocol.evaluate(zoo.load("text_siren"), metadata)`,
    `report.write(output_dir)` and `protocol.headline(report)`.
    """

    name = "protocol"

    @dataclasses.dataclass
    class Options:
        """No options; subclasses define their own."""

    def __init__(self, options=None, **overrides):
        if options is None:
            options = self.make_options(**overrides)
        elif overrides:
            options = dataclasses.replace(options, **self.coerce_options(**overrides))
        if not isinstance(options, self.Options):
            raise TypeError(f"{type(self).__name__} expects {self.Options.__qualname__} options, "
                            f"got {type(options).__name__}.")
        self.options = options

    @classmethod
    def option_fields(cls):
        """The dataclass fields of `Options` (name, type, default, help)."""
        return dataclasses.fields(cls.Options)

    @classmethod
    def make_options(cls, **values):
        """`Options` from keyword values, converting flag strings/lists to each field's type.

        Values that are None keep the field's default; unknown names are an error.
        """
        return cls.Options(**cls.coerce_options(**values))

    @classmethod
    def coerce_options(cls, **values):
        """{name: value converted to the field's type} for the values that are not None."""
        fields = {f.name: f for f in cls.option_fields()}
        unknown = sorted(set(values) - set(fields))
        if unknown:
            raise ValueError(f"{cls.__name__} has no options {unknown}; expected some of "
                             f"{sorted(fields)}.")
        hints = typing.get_type_hints(cls.Options)
        kwargs = {}
        for key, value in values.items():
            default = fields[key].default
            value = _coerce(value, hints.get(key, type(default)), default, key)
            if value is not None:
                kwargs[key] = value
        return kwargs

    @abc.abstractmethod
    def evaluate(self, model, metadata, init_name="", examples=None):
        """Fits held-out signals from `model` and a standard init; returns a `Report`.

        Args:
            model: the meta-learned init (a built Keras coordinate network).
            metadata: the init's metadata (task, dataset, hyperparameters).
            init_name: how the report names the init (zoo name or directory).
            examples: held-out examples to use instead of the metadata's dataset.
        """

    @classmethod
    @abc.abstractmethod
    def headline(cls, report):
        """The zoo's headline of a report: {"meta_psnr_at_K", "standard_psnr_at_K", ...}.

        Keys `meta_psnr_at_<point>` / `standard_psnr_at_<point>` give the PSNR of both
        inits at the protocol's key point, `psnr_at` says in words where that is, and
        `steps_to_match` (where meaningful) how many standard-init steps reach the meta
        init's PSNR there (a string "> N" if none of the N evaluated did).
        """

    @classmethod
    def legacy_headline(cls, evaluation):
        """Headline of an evaluation recorded before reports (PSNR-vs-steps summaries)."""
        return steps_headline(evaluation)

    @classmethod
    def headline_from_evaluation(cls, evaluation):
        """Headline of a recorded `metadata['evaluation']`: a report, or a legacy summary."""
        if not isinstance(evaluation, dict):
            return {}
        if "protocol" in evaluation and "rows" in evaluation:
            report = Report.from_json(evaluation)
            return cls.headline(report) if report.protocol == cls.name else {}
        return cls.legacy_headline(evaluation)

    # Formatting a headline for tables and cards.

    metric = PSNR

    @classmethod
    def headline_values(cls, headline):
        """(meta value, standard value, where) of a headline's key point, e.g.
        (20.0, 12.9, "2 steps"); (None, None, "") if it records none.

        Reads the keys `meta_<metric>_at_<point>` / `standard_<metric>_at_<point>` and
        `<metric>_at` (older headlines without it name the step in the key).
        """
        key = cls.metric.key
        prefix = f"meta_{key}_at_"
        for name in sorted(headline or {}):
            if name.startswith(prefix):
                point = name[len(prefix):]
                where = headline.get(f"{key}_at") or (
                    f"{point} steps" if point.isdigit() else point.replace("_", " "))
                return (finite_number(headline[name]),
                        finite_number(headline.get(f"standard_{key}_at_{point}")), where)
        return None, None, ""

    @classmethod
    def match_cell(cls, headline):
        """How much the standard init needs to match the meta init, in words
        ("43 steps", "> 1000 steps", "21.5×"); "" if the headline does not say."""
        value = (headline or {}).get("steps_to_match")
        if value is None:
            return ""
        text = format_count(value)
        return text if text.endswith("×") else f"{text} steps"

    @classmethod
    def headline_cells(cls, headline):
        """The headline as the text cells of the zoo table and the model cards.

        Example:

        >>> StepsProtocol.headline_cells({"meta_psnr_at_2": 35.1, "standard_psnr_at_2": 12.0,
        ...                               "psnr_at": "2 steps", "steps_to_match": 43})
        ... # doctest: +NORMALIZE_WHITESPACE
        {'metric': 'PSNR (dB)', 'meta': '35.10', 'standard': '12.00', 'at': '2 steps',
         'match': '43 steps', 'unit': 'dB', 'comparison': '35.10 vs 12.00 dB'}

        Returns:
            {"metric": label with unit, "meta", "standard": the values at the key point
            ("?" where one is missing, "" where both are), "at": where that point is,
            "match": `match_cell`, "unit", "comparison": "<meta> vs <standard> <unit>"
            (the zoo table's cell; "" without values)}.
        """
        metric = cls.metric
        meta, standard, where = cls.headline_values(headline or {})
        shown = meta is not None or standard is not None

        def value(v):
            if not shown:
                return ""
            return "?" if v is None else f"{v:.{metric.digits}f}"

        comparison = ""
        if shown:
            comparison = f"{value(meta)} vs {value(standard)}" + (
                f" {metric.unit}" if metric.unit else "")
        return {"metric": f"{metric.label} ({metric.unit})" if metric.unit else metric.label,
                "meta": value(meta), "standard": value(standard),
                "at": where if shown else "", "match": cls.match_cell(headline or {}),
                "unit": metric.unit, "comparison": comparison}

    # Helpers for subclasses.

    def folder_examples(self, metadata, directory, split, count, task):
        """`count` examples of the user's own folder, read by the kind's folder reader."""
        kind = kind_of_metadata(metadata)
        if not kind.folder_dataset:
            raise ValueError(f"Signal kind {kind.name!r} has no reader for a folder of your "
                             "own files (--directory).")
        fn = kind.datasets[kind.folder_dataset]
        # A small folder may hold fewer than `count` signals in a split: use them all.
        examples = list(add_example_seeds(fn(directory=directory, split=split,
                                             **self.folder_options(task)).take(int(count)), 0))
        if not examples:
            raise ValueError(f"Folder {directory!r} gave no {split!r} examples.")
        return examples

    def folder_options(self, task):
        """Extra keyword arguments of the kind's folder reader for `task` (e.g. resolution)."""
        del task
        return {}


# -- PSNR against steps (images, audio: any task whose examples are fitted by steps) -------

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
        "help": "Comma-separated PSNRs (dB) whose steps and seconds to reach are reported."})
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


def parse_numbers(text, name):
    """A comma-separated option of finite numbers as a tuple; a ValueError naming
    `--name` otherwise (shared by every protocol's list options)."""
    try:
        values = tuple(float(v) for v in str(text).split(",") if v.strip())
    except ValueError:
        raise ValueError(f"--{name} must be comma-separated numbers, got {text!r}.") from None
    if not values or not all(np.isfinite(values)):
        raise ValueError(f"--{name} must be comma-separated finite numbers, got {text!r}.")
    return values


def recipe_score_steps(last):
    """The steps a fit recipe is scored at: the report steps 1, 2, 3, 5, 10, … up to
    `last`, and `last` (every decade counts, not only the end)."""
    return sorted({s for s in REPORT_STEPS if 0 < s <= last} | {int(last)})


def recipe_score(psnr_curve):
    """How well a fit recipe serves the whole curve: the mean PSNR over
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
    """(best recipe, rows) from [(FitRecipe, score, final PSNR)]: the first of the
    highest score wins; rows are `select_fit_recipe`'s trial rows."""
    rows = [{"recipe": recipe.name, "score": round(float(score), 4),
             "psnr_final": round(float(final), 4), "fit_recipe": recipe.to_dict()}
            for recipe, score, final in scored]
    best = max(range(len(rows)), key=lambda i: (rows[i]["score"], -i))
    return scored[best][0], rows


def select_fit_recipe(model, metadata, task, examples, steps, learning_rates, progress=False,
                      default_learning_rate=1e-2):
    """The fit recipe that serves a meta init best on `examples` (validation signals).

    Candidates: `fit_recipe_candidates`. Each is scored by `recipe_score` of the mean
    PSNR curve over `examples`, fitted for `steps` steps.

    Returns:
        (best FitRecipe, rows [{"recipe", "score", "psnr_final"}] for every candidate).
    """
    candidates = fit_recipe_candidates(metadata, learning_rates, default_learning_rate)
    scored = []
    bar = keras.utils.Progbar(len(candidates) * len(examples), verbose=1 if progress else 0,
                              unit_name="fit")
    for recipe in candidates:
        fitter = Fitter(model, task, recipe, steps_per_call=max(1, min(500, steps)))
        curves = []
        for example in examples:
            curves.append(fitter.fit(example, steps).metrics["psnr"])
            bar.add(1, values=[("psnr_final", float(curves[-1][-1]))])
        curve = np.mean(curves, axis=0)
        scored.append((recipe, recipe_score(curve), curve[-1]))
    return best_fit_recipe(scored)


class StepsProtocol(Protocol):
    """PSNR against test-time steps, meta init vs standard init, and steps to match.

    The paper's image protocol, for any task whose examples are fitted by steps: the
    meta init is fitted with its inner optimizer for `meta_steps`, a standard init of
    the same architecture with Adam for `standard_steps`; rows are the mean PSNR at the
    report steps (`REPORT_STEPS`), the headline the PSNR of both at `match_step` and how
    many standard-init steps reach the meta init's PSNR there. Subclasses add figures
    and tables in `extend_report` and folder-reader options in `folder_options`.

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
        examples = held_out_examples(metadata, o.num_examples, o.split, o.data_dir)
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
        if o.directory:
            examples = self.folder_examples(metadata, o.directory, "validation",
                                            o.recipe_examples, task)
        else:
            examples = held_out_examples(metadata, o.recipe_examples, "validation",
                                         o.data_dir)
        if not examples:
            raise ValueError("--select_fit_recipe needs validation signals; the validation "
                             "split holds none.")
        print(f"Choosing the fit recipe on {len(examples)} validation signals "
              f"({o.recipe_steps} steps per trial):")
        return select_fit_recipe(model, metadata, task, examples, o.recipe_steps,
                                 parse_numbers(o.recipe_learning_rates, "recipe_learning_rates"),
                                 progress=o.progress)

    def snapshot_steps(self):
        """Steps whose fitted weights are kept for reconstruction figures."""
        o = self.options
        return sorted({0, 1, 2, 5, 10, o.meta_steps} & set(range(o.meta_steps + 1))
                      | {s for s in (100, 1000) if s <= o.standard_steps})

    def evaluate(self, model, metadata, init_name="", examples=None):
        o = self.options
        task = task_from_metadata(metadata)
        if examples is None:
            examples = self.held_out(metadata, task)
        targets = parse_numbers(o.psnr_targets, "psnr_targets")
        meta_opt, standard_opt = self.optimizers(metadata)
        selection = None
        if o.select_fit_recipe:
            meta_opt, selection = self.choose_fit_recipe(model, metadata, task)
        progress = _StepsProgress(len(examples) * (o.meta_steps + o.standard_steps), o.progress)
        results, curve_rows, summary = evaluate_against_standard(
            model, examples, task, meta_opt, o.meta_steps, o.standard_steps, standard_opt,
            o.standard_seed, snapshot_steps=self.snapshot_steps(),
            snapshot_examples=o.snapshot_examples if self.draws_reconstructions() else 0,
            progress=progress, match_step=o.match_step)
        summary["steps_to_psnr"] = steps_to_targets(results, targets)
        if selection is not None:
            summary["fit_recipe"] = meta_opt.to_dict()
            summary["fit_recipe_selection"] = selection
        optimizers = {META: meta_opt, STANDARD: standard_opt}
        rows = [report_row(r["init"], optimizers[r["init"]], r["step"],
                           results[r["init"]]["psnr"][:, r["step"]]) for r in curve_rows]
        title = f"{metadata.get('signal_class', init_name)}: held-out PSNR"
        report = Report(
            protocol=self.name, init=init_name, rows=rows, summary=summary,
            settings=dict(dataclasses.asdict(o), num_examples=len(examples)),
            figures={"psnr_curves.png": lambda path: _plot_curves(results, path, title,
                                                                  summary)})
        report.tables["per_example.csv"] = _per_example_table(results)
        self.extend_report(report, model=model, metadata=metadata, task=task,
                           examples=examples, results=results)
        return report

    def draws_reconstructions(self):
        """Whether `extend_report` draws reconstructions (then snapshots are kept)."""
        return False

    def extend_report(self, report, model, metadata, task, examples, results):
        """Hook for subclasses: add figures, tables or summary entries to `report`."""

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

    def __init__(self, total_steps, verbose):
        self.bar = keras.utils.Progbar(max(1, int(total_steps)), verbose=1 if verbose else 0,
                                       unit_name="step")
        self.done = 0

    def __call__(self, label, index, result):
        del index
        self.done += len(result.losses) - 1
        self.bar.update(self.done, values=[(f"{label}_psnr", float(result.psnr[-1]))])


def _per_example_table(results):
    """(columns, rows): the final PSNR of every held-out signal from every init."""
    rows = []
    for label, res in results.items():
        psnr = np.asarray(res["psnr"])
        for i, curve in enumerate(psnr):
            rows.append({"init": label, "example": i, "steps": len(curve) - 1,
                         "psnr": float(curve[-1])})
    return ("init", "example", "steps", "psnr"), rows


def _plot_curves(results, path, title, summary):
    from learnit_tf import plots  # pylint: disable=import-outside-toplevel
    return plots.plot_psnr_curves(results, path, title=title, summary=summary)
