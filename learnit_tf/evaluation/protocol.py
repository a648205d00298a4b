"""The evaluation protocol interface every signal kind implements.

PAPER.md: every signal kind is scored by fitting held-out signals from the meta init
(with the optimizer it was meta-trained for) and from a standard init of the same
architecture (Adam, the paper's choice for standard inits). What varies by kind is the
protocol: images report PSNR against test-time steps and how many standard-init steps
match the meta init's 2-step PSNR; CT reports PSNR against the number of views; NeRF
fits one view and reports PSNR on held-out views.

Each kind subclasses `Protocol` (in `learnit_tf/kinds/<kind>/evaluation.py`, named by
the kind's `SignalKind.protocol`); every protocol returns a `Report`
(`learnit_tf.evaluation.report`); `Protocol.headline` turns a report into the few
numbers the zoo table shows and `Protocol.headline_cells` formats them.
`learnit_tf.evaluation.steps.StepsProtocol` is the metric-vs-steps protocol for any task
whose examples are fitted by steps (images, audio); kinds specialise it.
"""

import abc
import dataclasses
import typing

import numpy as np

from learnit_tf.core.registry import PSNR
from learnit_tf.data.pipeline import add_example_seeds
from learnit_tf.evaluation.headlines import format_count, headline_values, steps_headline
from learnit_tf.evaluation.held_out import kind_of_metadata
from learnit_tf.evaluation.report import Report


def parse_numbers(text, name):
    """A comma-separated option of finite numbers as a tuple; a ValueError naming
    `--name` otherwise (shared by every protocol's list options).

    >>> parse_numbers("1e-4, 3e-4", "recipe_learning_rates")
    (0.0001, 0.0003)
    """
    try:
        values = tuple(float(v) for v in str(text).split(",") if v.strip())
    except ValueError:
        raise ValueError(f"--{name} must be comma-separated numbers, got {text!r}.") from None
    if not values or not all(np.isfinite(values)):
        raise ValueError(f"--{name} must be comma-separated finite numbers, got {text!r}.")
    return values


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
    `scripts/evaluate.py` flag) and implement `evaluate` and `headline`. `metric` is
    the kind's primary `Metric` (the same as its `SignalKind.metric`; PSNR by default):
    it names the report's value columns and the headline's keys
    (`meta_<key>_at_<point>`, `<key>_at`).

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
    metric = PSNR

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

    def fitted_metadata(self, metadata):
        """The metadata whose task and held-out data `evaluate` fits with these options.

        Default: `metadata` as given. A kind whose options change what is fitted (images:
        `resolution`) returns it changed, so that whatever recomputes a recorded evaluation
        from its settings (e.g. the zoo's headline checks) fits the same signals.
        """
        return metadata

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
            report = Report.from_json(evaluation, cls.metric)
            return cls.headline(report) if report.protocol == cls.name else {}
        return cls.legacy_headline(evaluation)

    # Formatting a headline for tables and cards.

    @classmethod
    def headline_values(cls, headline):
        """(meta value, standard value, where) of a headline's key point, e.g.
        (20.0, 12.9, "2 steps"); (None, None, "") if it records none.

        Reads the keys `meta_<metric>_at_<point>` / `standard_<metric>_at_<point>` and
        `<metric>_at` (older headlines without it name the step in the key).
        """
        return headline_values(headline, cls.metric)

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

        >>> Protocol.headline_cells({"meta_psnr_at_2": 35.1, "standard_psnr_at_2": 12.0,
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

