"""The typed run configuration (`learnit_tf.training.config.RunConfig`, gin name `meta_train`).

Every shipped gin file parses and builds a valid `RunConfig`; every `meta_train.<name>`
binding written in the gin files, docs, README and tests is a field; a gin binding
reaches the field (and the run), a Python argument wins over it, an unknown name fails
naming it; the old import paths are the same objects.
"""

import dataclasses
import inspect
import re
from pathlib import Path

import gin
import pytest

from learnit_tf.training import MetaTrainConfigError, RunConfig, gin_config, meta_train
from learnit_tf.training.config import GIN_NAME
from tiny_runs import tiny_kwargs

REPO = Path(__file__).resolve().parents[1]
GIN_FILES = sorted(str(p.relative_to(REPO)) for p in (REPO / "gin").rglob("*.gin"))
BINDING = re.compile(r"\bmeta_train\.([a-z_]+)\s*=")


@pytest.fixture(autouse=True)
def _clear_gin():
    gin.clear_config()
    yield
    gin.clear_config()


def test_every_shipped_gin_file_builds_a_valid_run_config():
    assert len(GIN_FILES) >= 20, GIN_FILES  # The glob found the shipped experiments.
    for gin_file in GIN_FILES:
        gin.clear_config()
        text = (REPO / gin_file).read_text()
        # A folder experiment leaves the user's folder to a binding: give it one.
        required = re.findall(r"^([\w.]+)\s*=\s*%gin\.REQUIRED", text, re.M)
        gin_config.parse_config([str(REPO / gin_file)],
                                [f"{name} = '/a/folder'" for name in required])
        config = RunConfig("/tmp/unused")  # Every check passes, nothing is built or read.
        bound = gin.get_bindings(GIN_NAME)
        assert bound, f"{gin_file} binds no meta_train parameter"
        for name, value in bound.items():
            field = getattr(config, name)
            if name == "inner_rates":  # Stored normalized: the bound granularity is kept.
                assert field["granularity"] == value, gin_file
            elif name == "task":
                assert type(field) is type(value), gin_file
            else:
                assert field == value or field is value, (gin_file, name, field, value)


def _written_binding_names():
    names = {}
    for root in ("gin", "docs", "tests", "scripts", "README.md"):
        paths = [REPO / root] if root.endswith(".md") else sorted((REPO / root).rglob("*"))
        for path in paths:
            if path.suffix not in (".gin", ".md", ".py", ".sh") or path.name == Path(
                    __file__).name:
                continue
            for name in BINDING.findall(path.read_text(errors="replace")):
                names.setdefault(name, str(path.relative_to(REPO)))
    return names


def test_every_binding_written_in_gin_docs_and_tests_is_a_field():
    written = _written_binding_names()
    written.pop("no_such_parameter")  # The test of an unknown binding's message.
    assert {"num_steps", "warm_start", "seed", "model_fn"} <= set(written)
    unknown = {name: where for name, where in written.items()
               if name not in RunConfig.field_names()}
    assert not unknown, f"bindings of no RunConfig field (name: first file): {unknown}"


def _without(*names):
    return {k: v for k, v in tiny_kwargs().items() if k not in names}


def test_a_gin_binding_reaches_the_field_and_the_run(tmp_path):
    gin_config.parse_config([], ["meta_train.num_steps = 3", "meta_train.seed = 7",
                                 "meta_train.outer_decay = 'cosine'"])
    config = RunConfig("/tmp/unused", **_without("num_steps"))
    assert (config.num_steps, config.seed, config.outer_decay) == (3, 7, "cosine")
    result = meta_train(str(tmp_path / "run"), **_without("num_steps"))
    assert result["step"] == 3  # Not tiny_kwargs' 4, not the default 1000.
    assert "meta_train.num_steps = 3" in (tmp_path / "run" / "config.gin").read_text()


def test_a_python_argument_wins_over_the_gin_binding():
    gin_config.parse_config([], ["meta_train.num_steps = 3"])
    assert RunConfig("/tmp/unused", **_without("num_steps")).num_steps == 3
    assert RunConfig("/tmp/unused", **tiny_kwargs(num_steps=5)).num_steps == 5


def test_an_unset_field_takes_its_one_default():
    config = RunConfig("/tmp/unused", model_fn=print, task=None, dataset_fn=print)
    for field in dataclasses.fields(RunConfig):
        if field.default is not dataclasses.MISSING and field.default is not gin.REQUIRED:
            assert getattr(config, field.name) == field.default, field.name
    # meta_train shows the same parameters and defaults (read from the fields).
    parameters = inspect.signature(meta_train).parameters
    assert list(parameters) == ["model_dir"] + list(RunConfig.field_names())
    assert parameters["num_steps"].default == 1000 == RunConfig.__dataclass_fields__[
        "num_steps"].default


def test_an_unknown_name_fails_naming_it(tmp_path):
    with pytest.raises(ValueError, match=r"Invalid gin configuration.*'num_stepz'"):
        gin_config.parse_config([], ["meta_train.num_stepz = 3"])
    with pytest.raises(TypeError, match=r"unknown argument\(s\) \['num_stepz'\]"):
        meta_train(str(tmp_path / "run"), **tiny_kwargs(num_stepz=3))
    with pytest.raises(ValueError, match="denylisted kwarg 'model_dir'"):
        gin.parse_config("meta_train.model_dir = '/tmp/x'")  # A flag, never a binding.
    assert not (tmp_path / "run").exists()


def test_missing_required_bindings_are_named():
    with pytest.raises(RuntimeError, match=r"Required bindings for `meta_train` not provided "
                       r"in config: \['model_fn', 'task', 'dataset_fn'\]"):
        RunConfig("/tmp/unused")


def test_a_bad_bound_value_names_the_binding():
    gin_config.parse_config([], ["meta_train.checkpoint_every = 0"])
    with pytest.raises(MetaTrainConfigError, match=r"meta_train.checkpoint_every must be an "
                       r"integer >= 1, got 0"):
        RunConfig("/tmp/unused", **_without("checkpoint_every"))


def test_the_old_import_paths_are_the_same_objects():
    import learnit_tf.distribute  # pylint: disable=import-outside-toplevel
    import learnit_tf.gin_config  # pylint: disable=import-outside-toplevel
    import learnit_tf.train  # pylint: disable=import-outside-toplevel
    from learnit_tf import training  # pylint: disable=import-outside-toplevel

    assert learnit_tf.train.meta_train is meta_train
    assert learnit_tf.train.RunConfig is RunConfig
    assert learnit_tf.train.MetaTrainRunner is training.runner.MetaTrainRunner
    assert learnit_tf.distribute is training.distribute
    assert learnit_tf.gin_config is gin_config
