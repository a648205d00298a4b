"""The init metadata schema: what `metadata.json` of an init directory records.

One versioned, frozen dataclass, `InitMetadata`, written by training
(`learnit_tf.train`) and read by the zoo, evaluation and fit. A metadata.json is read
once (`InitMetadata.read`) into this one typed object, which also keeps the JSON as
read (`file_dict()`), so code that needs the file's own keys does not read it again.
Reading validates every known field and names the file and the field of the first
problem (`MetadataError`); unknown top-level keys (a converter's provenance, a
description) are kept in `extra` and written back unchanged.

Versions:
- 1 (no `schema_version` key): the shipped zoo inits (zoo/*/1/metadata.json) and
  converted checkpoints (`learnit_tf.convert`). Read as is; differences from 2: the
  dataset's bindings are under `gin_bindings`, `algorithm` may sit under
  `meta_config`, `meta`, `training` or `hyperparameters`, `task` may be a bare string
  (the converter's `"image"`), and there is no `kind`.
- 2: adds `schema_version` and `kind` (the signal kind's registry name); the dataset's
  bindings are under `bindings`.

Example:

>>> meta = InitMetadata.from_dict({"signal_class": "text_images", "algorithm": "maml",
...                                "hyperparameters": {"inner_steps": 2}})
>>> meta.hyperparameters.inner_steps, meta.schema_version
(2, 2)
>>> try:
...     InitMetadata.from_dict({"steps": -1}, source="x/metadata.json")
... except MetadataError as e:
...     print(e)
x/metadata.json: field 'steps' must be an integer >= 0, got -1.
"""

import copy
import dataclasses
import json
import math
import os
from typing import Any, Dict, Optional

from learnit_tf.core import atomic

SCHEMA_VERSION = 2
LEGACY_SCHEMA_VERSION = 1  # Files without a `schema_version` key.

# Where unversioned files have kept the algorithm name, in the order they are tried.
LEGACY_ALGORITHM_PATHS = (("algorithm",), ("meta_config", "algorithm"), ("meta", "algorithm"),
                          ("training", "algorithm"), ("hyperparameters", "algorithm"))


class MetadataError(ValueError):
    """An init's metadata does not follow the schema (the message names file and field)."""


def _fail(source, field, expected, value):
    raise MetadataError(f"{source}: field {field!r} must be {expected}, got {value!r}.")


def _optional(value, source, field, expected, check):
    if value is not None and not check(value):
        _fail(source, field, expected, value)
    return value


def _is_int(value):
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value):
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _is_str(value):
    return isinstance(value, str)


def _is_mapping(value):
    return isinstance(value, dict)


def _int_at_least(minimum):
    return lambda value: _is_int(value) and value >= minimum


def _json_value(value):
    """A copy of `value` made of JSON types (numpy scalars become Python numbers)."""
    if isinstance(value, dict):
        return {str(k): _json_value(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_value(v) for v in value]
    if hasattr(value, "item") and callable(value.item) and getattr(value, "shape", None) == ():
        return value.item()  # numpy scalar
    return value


class _DictAccess:
    """Read-only dict-style access (`meta["steps"]`, `meta.get("task", {})`) on the JSON form.

    Kept so code written against the parsed JSON keeps working; new code uses attributes.
    """

    def to_dict(self):
        raise NotImplementedError

    def __getitem__(self, key):
        return self.to_dict()[key]

    def get(self, key, default=None):
        value = self.to_dict().get(key)
        return default if value is None else value

    def __contains__(self, key):
        return self.to_dict().get(key) is not None

    def keys(self):
        return [k for k, v in self.to_dict().items() if v is not None]


@dataclasses.dataclass(frozen=True)
class TaskSpec(_DictAccess):
    """The task an init was trained for: `kinds.task_class(class_name)(**config)`."""

    class_name: Optional[str] = None
    config: Dict[str, Any] = dataclasses.field(default_factory=dict)

    @classmethod
    def from_dict(cls, data, source, field="task"):
        if not _is_mapping(data):
            _fail(source, field, "an object with 'class_name' and 'config'", data)
        unknown = sorted(set(data) - {"class_name", "config"})
        if unknown:
            raise MetadataError(f"{source}: field {field!r} has unknown keys {unknown}; "
                                "expected 'class_name' and 'config'.")
        return cls(_optional(data.get("class_name"), source, f"{field}.class_name",
                             "a string", _is_str),
                   dict(_optional(data.get("config"), source, f"{field}.config", "an object",
                                  _is_mapping) or {}))

    def to_dict(self):
        return {"class_name": self.class_name, "config": _json_value(self.config)}


@dataclasses.dataclass(frozen=True)
class DatasetSpec(_DictAccess):
    """The dataset function an init was trained on, its splits and its gin bindings."""

    function: Optional[str] = None
    train_split: Optional[str] = None
    eval_split: Optional[str] = None
    bindings: Dict[str, Any] = dataclasses.field(default_factory=dict)
    extra: Dict[str, Any] = dataclasses.field(default_factory=dict)

    @classmethod
    def from_dict(cls, data, source, field="dataset"):
        if not _is_mapping(data):
            _fail(source, field, "an object with 'function', 'train_split', 'eval_split' and "
                  "'bindings'", data)
        data = dict(data)
        if "gin_bindings" in data:  # Version 1.
            if data.get("bindings") is not None:
                raise MetadataError(f"{source}: field {field!r} has both 'bindings' and "
                                    "'gin_bindings'; keep one.")
            data["bindings"] = data.pop("gin_bindings")
        strings = {name: _optional(data.pop(name, None), source, f"{field}.{name}", "a string",
                                   _is_str) for name in ("function", "train_split", "eval_split")}
        bindings = _optional(data.pop("bindings", None), source, f"{field}.bindings",
                             "an object (parameter -> value)", _is_mapping)
        return cls(bindings=dict(bindings or {}), extra=data, **strings)

    def to_dict(self):
        return {**_json_value(self.extra), "function": self.function,
                "train_split": self.train_split, "eval_split": self.eval_split,
                "bindings": _json_value(self.bindings)}


_HYPERPARAMETER_CHECKS = {
    "inner_steps": ("an integer >= 1", _int_at_least(1)),
    "inner_optimizer": ("a string", _is_str),
    "inner_learning_rate": ("a number", _is_number),
    "outer_optimizer": ("a string", _is_str),
    "outer_learning_rate": ("a number", _is_number),
    "meta_batch_size": ("an integer >= 1", _int_at_least(1)),
    "seed": ("an integer", _is_int),
    "remat": ("true or false", lambda v: isinstance(v, bool)),
    "share_first_forward": ("true or false", lambda v: isinstance(v, bool)),
}


@dataclasses.dataclass(frozen=True)
class Hyperparameters(_DictAccess):
    """Meta-training settings (None: not recorded). `extra` keeps unknown keys."""

    inner_steps: Optional[int] = None
    inner_optimizer: Optional[str] = None
    inner_learning_rate: Optional[float] = None
    outer_optimizer: Optional[str] = None
    outer_learning_rate: Optional[float] = None
    meta_batch_size: Optional[int] = None
    seed: Optional[int] = None
    remat: Optional[bool] = None
    share_first_forward: Optional[bool] = None
    extra: Dict[str, Any] = dataclasses.field(default_factory=dict)

    @classmethod
    def from_dict(cls, data, source, field="hyperparameters"):
        if not _is_mapping(data):
            _fail(source, field, "an object", data)
        known = {name: _optional(data.get(name), source, f"{field}.{name}", expected, check)
                 for name, (expected, check) in _HYPERPARAMETER_CHECKS.items()}
        extra = {k: v for k, v in data.items() if k not in _HYPERPARAMETER_CHECKS}
        return cls(extra=extra, **known)

    def to_dict(self):
        out = {name: getattr(self, name) for name in _HYPERPARAMETER_CHECKS
               if getattr(self, name) is not None}
        return {**_json_value(self.extra), **_json_value(out)}


def _nested(data, path):
    for key in path:
        data = data.get(key) if isinstance(data, dict) else None
    return data


def algorithm_of(data):
    """The algorithm name recorded in parsed metadata of any version (None if absent).

    Tolerant of any input (the zoo's headline reads whatever a file holds).

    >>> algorithm_of({"training": {"algorithm": "reptile"}})
    'reptile'
    """
    for path in LEGACY_ALGORITHM_PATHS:
        value = _nested(data, path)
        if value is not None:
            return value
    return None


_FIELDS = ("schema_version", "signal_class", "kind", "task", "dataset", "algorithm",
           "hyperparameters", "steps", "wall_time_seconds", "num_replicas", "command",
           "final_train_metrics", "library_versions", "evaluation", "fit_recipe")


@dataclasses.dataclass(frozen=True)
class InitMetadata(_DictAccess):
    """The contents of an init's `metadata.json` (see the module docstring for versions).

    Attributes:
        schema_version: the version this object follows when written (`SCHEMA_VERSION`).
        signal_class: the signal class trained on (e.g. "text_images").
        kind: the signal kind's registry name (`learnit_tf.kinds`), e.g. "image".
        task: the task (class name and constructor config), or None.
        dataset: the dataset function, splits and gin bindings, or None.
        algorithm: "maml", "fomaml" or "reptile" (None if not recorded).
        hyperparameters: meta-training settings.
        steps: outer steps trained.
        wall_time_seconds: accumulated training time.
        num_replicas: replicas of the distribution strategy.
        command: the command line that trained it.
        final_train_metrics: metrics of the last training step.
        library_versions: library name -> version.
        evaluation: the evaluation summary (free-form object), or None.
        fit_recipe: the test-time optimization that serves the init best
            (`learnit_tf.meta.FitRecipe.to_dict()`), used by default by fit and
            evaluate; None: the inner optimizer it was meta-trained with.
        extra: any other top-level keys, kept as read.
        raw: the JSON object this was parsed from (None when built in code); see
            `file_dict`. Not compared: two objects with the same fields are equal.
    """

    schema_version: int = SCHEMA_VERSION
    signal_class: Optional[str] = None
    kind: Optional[str] = None
    task: Optional[TaskSpec] = None
    dataset: Optional[DatasetSpec] = None
    algorithm: Optional[str] = None
    hyperparameters: Hyperparameters = dataclasses.field(default_factory=Hyperparameters)
    steps: Optional[int] = None
    wall_time_seconds: Optional[float] = None
    num_replicas: Optional[int] = None
    command: Optional[str] = None
    final_train_metrics: Dict[str, float] = dataclasses.field(default_factory=dict)
    library_versions: Dict[str, str] = dataclasses.field(default_factory=dict)
    evaluation: Optional[Dict[str, Any]] = None
    fit_recipe: Optional[Dict[str, Any]] = None
    extra: Dict[str, Any] = dataclasses.field(default_factory=dict)
    raw: Optional[Dict[str, Any]] = dataclasses.field(default=None, compare=False, repr=False)

    @classmethod
    def from_dict(cls, data, source="metadata"):
        """Parses and validates metadata of any known version; `source` names it in errors."""
        if isinstance(data, InitMetadata):
            return data
        if not _is_mapping(data):
            raise MetadataError(f"{source}: must hold a JSON object, got "
                                f"{type(data).__name__}.")
        version = data.get("schema_version", LEGACY_SCHEMA_VERSION)
        if not _is_int(version) or version < LEGACY_SCHEMA_VERSION:
            _fail(source, "schema_version", f"an integer >= {LEGACY_SCHEMA_VERSION}", version)
        if version > SCHEMA_VERSION:
            raise MetadataError(f"{source}: schema_version {version} is newer than this "
                                f"learnit_tf reads ({SCHEMA_VERSION}); upgrade learnit_tf.")
        fields = _top_level_fields(data, source, legacy=version == LEGACY_SCHEMA_VERSION)
        return cls(schema_version=SCHEMA_VERSION,
                   extra={k: v for k, v in data.items() if k not in _FIELDS},
                   raw=copy.deepcopy(data), **fields)

    def file_dict(self):
        """The JSON object as read (version-1 keys where that file kept them), a copy;
        for an object built in code, its JSON form (`to_dict`).

        >>> meta = InitMetadata.from_dict({"meta_config": {"algorithm": "reptile"}})
        >>> meta.algorithm, meta.file_dict(), meta.to_dict()["algorithm"]
        ('reptile', {'meta_config': {'algorithm': 'reptile'}}, 'reptile')
        """
        return copy.deepcopy(self.raw) if self.raw is not None else self.to_dict()

    def to_dict(self):
        """The JSON form (always the current schema version)."""
        out = _json_value(self.extra)
        out.update({
            "schema_version": SCHEMA_VERSION, "signal_class": self.signal_class,
            "kind": self.kind, "task": self.task.to_dict() if self.task else None,
            "dataset": self.dataset.to_dict() if self.dataset else None,
            "algorithm": self.algorithm, "hyperparameters": self.hyperparameters.to_dict(),
            "steps": self.steps, "wall_time_seconds": self.wall_time_seconds,
            "num_replicas": self.num_replicas, "command": self.command,
            "final_train_metrics": _json_value(self.final_train_metrics),
            "library_versions": dict(self.library_versions),
            "evaluation": _json_value(self.evaluation),
        })
        if self.fit_recipe is not None:  # Absent rather than null: older readers ignore it.
            out["fit_recipe"] = _json_value(self.fit_recipe)
        return out

    def kind_name(self):
        """`kind`, or for version-1 files the kind that owns the recorded task class."""
        if self.kind is not None:
            return self.kind
        if self.task is None or self.task.class_name is None:
            return None
        from learnit_tf.core import registry as kinds  # pylint: disable=import-outside-toplevel
        try:
            return kinds.kind_of_task(self.task.class_name).name
        except ValueError:
            return None

    @classmethod
    def read(cls, path):
        """Reads and validates a metadata.json file (errors name `path`)."""
        try:
            with open(path, encoding="utf-8") as f:
                data = json.load(f, parse_constant=NonFiniteConstant)
        except (UnicodeDecodeError, json.JSONDecodeError) as e:
            raise MetadataError(f"{path}: not a valid JSON metadata file ({e}).") from e
        except FileNotFoundError:
            raise
        except OSError as e:  # A directory, no permission, ...
            raise MetadataError(f"{path}: cannot be read as a metadata file "
                                f"({e.strerror or e}).") from e
        for field, constant in non_finite_fields(data):
            raise MetadataError(f"{path}: field {field!r} must be a finite number, got "
                                f"{constant} (NaN/Infinity are not JSON; they would be copied "
                                "into every output).")
        return cls.from_dict(data, source=path)

    def write(self, path):
        """Writes the JSON form atomically."""
        return atomic.write_json_atomic(os.fspath(path), self.to_dict())


class NonFiniteConstant(str):
    """What `json.load(f, parse_constant=NonFiniteConstant)` makes of NaN / Infinity /
    -Infinity (which are not JSON), so that `non_finite_fields` can name the field."""


def non_finite_fields(data, prefix=""):
    """(dotted field, constant) of every NaN/Infinity that `NonFiniteConstant` marked in `data`."""
    items = (data.items() if isinstance(data, dict) else
             enumerate(data) if isinstance(data, list) else ())
    for key, value in items:
        field = f"{prefix}.{key}" if prefix else str(key)
        if isinstance(value, NonFiniteConstant):
            yield field, str(value)
        else:
            yield from non_finite_fields(value, field)


def _top_level_fields(data, source, legacy):
    """The validated known top-level fields of parsed metadata, as constructor kwargs."""
    def string(name):
        return _optional(data.get(name), source, name, "a string", _is_str)

    task = data.get("task")
    kind = string("kind")
    if legacy and isinstance(task, str):  # The converter's `"task": "image"`: a kind name.
        kind, task = task, None
    finite = lambda v: _is_number(v) and math.isfinite(v) and v >= 0  # noqa: E731
    metrics = _optional(data.get("final_train_metrics"), source, "final_train_metrics",
                        "an object (name -> number)", _is_mapping) or {}
    for name, value in metrics.items():
        _optional(value, source, f"final_train_metrics.{name}", "a number", _is_number)
    versions = _optional(data.get("library_versions"), source, "library_versions",
                         "an object (library -> version string)", _is_mapping) or {}
    for name, value in versions.items():
        _optional(value, source, f"library_versions.{name}", "a string", _is_str)
    hyperparameters = data.get("hyperparameters")
    algorithm = algorithm_of(data) if legacy else data.get("algorithm")
    recipe = _optional(data.get("fit_recipe"), source, "fit_recipe",
                       'an object {"phases": [...]} (learnit_tf.meta.FitRecipe)',
                       lambda v: _is_mapping(v) and isinstance(v.get("phases"), list))
    return {
        "signal_class": string("signal_class"), "kind": kind,
        "task": None if task is None else TaskSpec.from_dict(task, source),
        "dataset": (None if data.get("dataset") is None
                    else DatasetSpec.from_dict(data["dataset"], source)),
        "algorithm": _optional(algorithm, source, "algorithm", "a string", _is_str),
        "hyperparameters": (Hyperparameters() if hyperparameters is None
                            else Hyperparameters.from_dict(hyperparameters, source)),
        "steps": _optional(data.get("steps"), source, "steps", "an integer >= 0",
                           _int_at_least(0)),
        "wall_time_seconds": _optional(data.get("wall_time_seconds"), source,
                                       "wall_time_seconds", "a finite number >= 0", finite),
        "num_replicas": _optional(data.get("num_replicas"), source, "num_replicas",
                                  "an integer >= 1", _int_at_least(1)),
        "command": string("command"),
        "final_train_metrics": dict(metrics),
        "fit_recipe": recipe,
        "library_versions": dict(versions),
        "evaluation": _optional(data.get("evaluation"), source, "evaluation", "an object",
                                _is_mapping),
    }


def as_init_metadata(metadata, source="metadata"):
    """`metadata` as an `InitMetadata` (parsing and validating a dict)."""
    return InitMetadata.from_dict(metadata, source=source)
