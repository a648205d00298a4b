"""The registry of signal kinds: what each kind provides, looked up by name.

A *signal kind* (images, CT, NeRF views, ...) is a package under `learnit_tf/kinds/`
holding everything that belongs to it: its task (measurement operator + loss), its
dataset functions (TFDS builders and pipelines), readers of a user's own files, its
evaluation protocol and its plots. The package registers itself once, with
`register_kind` in its `kind.py`; `learnit_tf.kinds.registrants` imports every
registrant. Shared layers (gin registration, init metadata -> task/data, scripts)
look kinds up here and name none of them.

Kind modules are imported lazily (by `load_all`), so this module imports nothing of
any kind and the shared layers stay free of import cycles.
"""

import dataclasses
import importlib
from typing import Any, Callable, Mapping, Optional, Tuple

_KINDS = {}
_LOADED = False
REGISTRANTS_MODULE = "learnit_tf.kinds.registrants"


@dataclasses.dataclass(frozen=True)
class Metric:
    """A kind's primary metric: what its evaluation report, headline, zoo table and card show.

    Attributes:
        key: short name used in report columns and headline keys
            (`meta_<key>_at_<point>`), e.g. "psnr", "iou".
        label: how people read it, e.g. "PSNR", "IoU".
        unit: e.g. "dB"; "" for unitless metrics.
        higher_is_better: False for errors such as a Chamfer distance.
        levels: levels at which "steps to reach" is reported (e.g. 25/30/35/40 dB).
        digits: decimals when formatted.
    """

    key: str
    label: str
    unit: str = ""
    higher_is_better: bool = True
    levels: Tuple[float, ...] = ()
    digits: int = 2

    def format(self, value):
        """`value` with the metric's digits and unit ("?" when missing)."""
        if value is None:
            return "?"
        text = f"{float(value):.{self.digits}f}"
        return f"{text} {self.unit}" if self.unit else text

    def better(self, a, b):
        """True when value `a` is better than `b`."""
        return a > b if self.higher_is_better else a < b


PSNR = Metric(key="psnr", label="PSNR", unit="dB", levels=(25.0, 30.0, 35.0, 40.0))


@dataclasses.dataclass(frozen=True)
class ReaderOption:
    """One option of a kind's reader of a user's own files, offered as a command flag.

    The fit and evaluate commands define `--<name>` for every option of every
    registered kind (two kinds may share an option name only with the same type and
    choices; `learnit_tf.core.cli.define_reader_flags`) and pass the values that were
    set to the reader as keyword arguments.

    Attributes:
        name: flag and keyword name, e.g. "angles".
        type: one of "string", "integer", "float", "boolean", "list" (comma-separated
            strings), "float_list" (comma-separated numbers).
        default: passed when the flag is not given (None: not passed, the reader's own
            default applies).
        help: the flag's help text; say what the value means and its convention.
        choices: for "string" options, the values allowed (empty: any).
        from_input: "module:attribute" of callable(path, task) -> the value to use when
            the flag is not given, read from the user's file (None: the default applies),
            e.g. an image's own size for `resolution`; empty: none.

    >>> ReaderOption("num_angles", "integer", help="V evenly spaced views.").type
    'integer'
    >>> ReaderOption("angles", "path")
    Traceback (most recent call last):
    ...
    ValueError: ReaderOption 'angles': type must be one of ('string', 'integer', 'float', \
'boolean', 'list', 'float_list'), got 'path'.
    """

    name: str
    type: str
    default: Any = None
    help: str = ""
    choices: Tuple[str, ...] = ()
    from_input: str = ""

    TYPES = ("string", "integer", "float", "boolean", "list", "float_list")

    def __post_init__(self):
        if not (isinstance(self.name, str) and self.name.isidentifier()):
            raise ValueError(f"ReaderOption name must be a Python identifier (it is a keyword "
                             f"argument of the reader and a flag), got {self.name!r}.")
        if self.type not in self.TYPES:
            raise ValueError(f"ReaderOption {self.name!r}: type must be one of {self.TYPES}, "
                             f"got {self.type!r}.")
        if self.choices and self.type != "string":
            raise ValueError(f"ReaderOption {self.name!r}: choices are for 'string' options, "
                             f"not {self.type!r}.")
        if self.from_input and self.from_input.count(":") != 1:
            raise ValueError(f"ReaderOption {self.name!r}: from_input must be "
                             f"'module:attribute', got {self.from_input!r}.")
        if self.choices and self.default is not None and self.default not in self.choices:
            raise ValueError(f"ReaderOption {self.name!r}: default {self.default!r} is not one "
                             f"of its choices {tuple(self.choices)}.")

    def value_from_input(self, path, task):
        """The option's value read from the user's input `path` for `task` (`from_input`),
        or None: not given, so the default applies."""
        return _resolve(self.from_input)(path, task) if self.from_input else None


@dataclasses.dataclass(frozen=True)
class SignalKind:
    """What one signal kind provides to the shared layers.

    Attributes:
        name: short name ("image", "ct", "nerf"), recorded in init metadata.
        description: one line for listings.
        tasks: task class name -> `learnit_tf.core.task.Task` subclass.
        datasets: dataset function name -> callable(split, **kwargs) returning an
            unbatched `tf.data.Dataset` of examples (gin-configurable by that name).
        folder_dataset: name (in `datasets`) of the function that reads a folder of
            the user's own files; its folder argument is named `directory`.
        protocol: "module:attribute" of the kind's `learnit_tf.evaluation.Protocol`
            subclass (imported when first needed).
        fit_input: "module:attribute" of callable(path, task, **options) ->
            `learnit_tf.core.fit_input.FitInput` (task, example, pictures), the reader
            of one user signal for `scripts/fit.py --input=PATH`.
        default_init: a zoo init name shown in examples and used by the tests.
        metric: the kind's primary `Metric` (report columns, headline, zoo table, card).
        reader_options: `ReaderOption`s of `fit_input` (offered as fit/evaluate flags).
        models: Keras model/layer classes only this kind uses, by name (registered as
            serializable when the kind is loaded, e.g. NeRF's `NerfMLP`).
        commands: extra command name -> "module:attribute" of an absl `main(argv)`
            (e.g. NeRF's "render"), reachable through `learnit-<name>`/`learnit_tf.commands`.
    """

    name: str
    description: str
    tasks: Mapping[str, type]
    datasets: Mapping[str, Callable]
    folder_dataset: Optional[str] = None
    protocol: Optional[str] = None
    fit_input: Optional[str] = None
    default_init: Optional[str] = None
    metric: Metric = PSNR
    reader_options: Tuple[ReaderOption, ...] = ()
    models: Mapping[str, type] = dataclasses.field(default_factory=dict)
    commands: Mapping[str, str] = dataclasses.field(default_factory=dict)

    def __post_init__(self):
        names = [option.name for option in self.reader_options]
        repeated = sorted({name for name in names if names.count(name) > 1})
        if repeated:
            raise ValueError(f"Signal kind {self.name!r} declares reader options {repeated} "
                             "more than once.")

    def task_class(self, class_name):
        if class_name not in self.tasks:
            raise ValueError(f"Signal kind {self.name!r} has no task {class_name!r}; expected "
                             f"one of {sorted(self.tasks)}.")
        return self.tasks[class_name]

    def protocol_class(self):
        """The kind's evaluation protocol class."""
        if not self.protocol:
            raise ValueError(f"Signal kind {self.name!r} has no evaluation protocol.")
        return _resolve(self.protocol)

    def fit_input_reader(self):
        """callable(path, task, **options) -> `FitInput` for one user signal."""
        if not self.fit_input:
            raise ValueError(f"Signal kind {self.name!r} has no reader for fit inputs.")
        return _resolve(self.fit_input)


def _resolve(spec):
    module_name, attribute = spec.split(":")
    return getattr(importlib.import_module(module_name), attribute)


def register_kind(kind):
    """Registers a `SignalKind` (once per name; re-registering the same kind is a no-op)."""
    if not isinstance(kind, SignalKind):
        raise TypeError(f"register_kind expects a SignalKind, got {type(kind).__name__}.")
    previous = _KINDS.get(kind.name)
    if previous is not None and previous != kind:
        raise ValueError(f"Signal kind {kind.name!r} is already registered differently.")
    for other in _KINDS.values():
        if other.name == kind.name:
            continue
        for what, mine, theirs in (("task", kind.tasks, other.tasks),
                                   ("dataset function", kind.datasets, other.datasets)):
            clash = set(mine) & set(theirs)
            if clash:
                raise ValueError(f"Signal kind {kind.name!r} registers {what} {sorted(clash)}, "
                                 f"already registered by kind {other.name!r}.")
    _KINDS[kind.name] = kind
    return kind


def load_all():
    """Imports every registrant (idempotent); returns {name: SignalKind}."""
    global _LOADED
    if not _LOADED:
        importlib.import_module(REGISTRANTS_MODULE)
        _LOADED = True
    return dict(_KINDS)


def all_kinds():
    """Every registered kind, sorted by name."""
    return [kind for _, kind in sorted(load_all().items())]


def get_kind(name):
    """The kind registered as `name`, or a ValueError listing the known kinds."""
    kinds = load_all()
    if name not in kinds:
        raise ValueError(f"Unknown signal kind {name!r}; expected one of {sorted(kinds)}.")
    return kinds[name]


def _owner(field, name, what):
    """The kind whose mapping `field` ("tasks" or "datasets") has `name`."""
    kinds = all_kinds()
    for kind in kinds:
        if name in getattr(kind, field):
            return kind
    raise ValueError(f"Unknown {what} {name!r}; expected one of "
                     f"{sorted(n for k in kinds for n in getattr(k, field))}.")


def kind_of_task(class_name):
    """The kind that owns task class `class_name`."""
    return _owner("tasks", class_name, "task")


def kind_of_dataset(function_name):
    """The kind that owns dataset function `function_name`."""
    return _owner("datasets", function_name, "dataset function")


def task_class(class_name):
    return kind_of_task(class_name).tasks[class_name]


def dataset_function(function_name):
    return kind_of_dataset(function_name).datasets[function_name]
