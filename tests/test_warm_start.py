"""`meta_train(warm_start=...)`: training an existing init further.

The run must start from the parent's exact weights and learned rates (not model_fn's
random ones), record the parent, refuse a parent of another architecture before
writing anything, and resume from its own checkpoint rather than warm-starting again.
Tiny in-memory runs (tests/tiny_runs.py), graph mode.
"""

import json
from pathlib import Path

import numpy as np
import pytest

from learnit_tf import kinds, zoo
from learnit_tf.meta import init_io
from learnit_tf.models import Siren
from learnit_tf.models.inner_rates import inner_rates_of
from learnit_tf.training import MetaTrainConfigError, MetaTrainRunner, RunConfig, meta_train
from tiny_runs import tiny_kwargs

REPO = Path(__file__).resolve().parents[1]


def _siren(width=8):
    return lambda seed, inner_rates=None: Siren(out_features=3, width=width, depth=2, seed=seed,
                                                inner_rates=inner_rates)


def _metasgd_kwargs(**overrides):
    return tiny_kwargs(**{**dict(model_fn=_siren(), algorithm="maml", inner_steps=2,
                                 inner_rates="tensor", inner_rate_bounds=(0.0, 0.5),
                                 outer_learning_rate=1e-2), **overrides})


def _values(variables):
    return [np.asarray(v) for v in variables]


def _started_model(model_dir, **kwargs):
    """The runner's model after its restore phase (step 0: where training starts)."""
    runner = MetaTrainRunner(RunConfig(model_dir=str(model_dir), **kwargs))
    with runner._locked_out_dir():  # pylint: disable=protected-access
        runner.check_data()
        runner.build()
        runner.restore()
    return runner


@pytest.fixture(scope="module")
def parent_init(tmp_path_factory):
    """A trained Meta-SGD init (4 steps, seed 0) whose rates moved off their start."""
    model_dir = tmp_path_factory.mktemp("parent")
    return meta_train(str(model_dir), **_metasgd_kwargs())["init_dir"]


def test_starts_from_the_parents_weights_and_rates(tmp_path, parent_init):
    parent = init_io.load_init(parent_init)
    runner = _started_model(tmp_path / "child", **_metasgd_kwargs(seed=1,
                                                                 warm_start=parent_init))
    for mine, theirs in zip(_values(runner.model.trainable_variables),
                            _values(parent.trainable_variables)):
        np.testing.assert_array_equal(mine, theirs)
    mine, theirs = _values(runner.trainer.rates_layer.rates), _values(inner_rates_of(parent).rates)
    np.testing.assert_array_equal(mine, theirs)
    assert not np.allclose(theirs, 1e-2), "the parent's rates never moved: the test is blind"
    # Without warm_start, seed 1 starts elsewhere (so the equality above is not a given).
    fresh = _started_model(tmp_path / "fresh", **_metasgd_kwargs(seed=1))
    assert not np.allclose(_values(fresh.model.trainable_variables)[0],
                           _values(parent.trainable_variables)[0])


def test_fixed_fourier_features_come_with_the_weights(tmp_path):
    """A Fourier-feature MLP's B matrix is drawn from the seed and not trained: a child with
    another seed must take the parent's B, or the copied weights compute another function."""
    from learnit_tf.models import FourierFeatureMLP  # pylint: disable=import-outside-toplevel

    def fourier(seed, inner_rates=None):
        return FourierFeatureMLP(out_features=3, num_features=8, scale=10.0, width=8,
                                 hidden_layers=1, seed=seed, inner_rates=inner_rates)

    parent = meta_train(str(tmp_path / "parent"),
                        **_metasgd_kwargs(model_fn=fourier, num_steps=2))["init_dir"]
    runner = _started_model(tmp_path / "child",
                            **_metasgd_kwargs(model_fn=fourier, seed=1, warm_start=parent))
    loaded = init_io.load_init(parent)
    np.testing.assert_array_equal(np.asarray(runner.model.b_matrix), np.asarray(loaded.b_matrix))
    assert not np.array_equal(np.asarray(fourier(1).b_matrix), np.asarray(loaded.b_matrix))
    coords = np.random.RandomState(0).rand(5, 2).astype(np.float32)
    np.testing.assert_allclose(np.asarray(runner.model(coords)), np.asarray(loaded(coords)),
                               rtol=1e-6, atol=1e-6)


def test_records_the_parent_and_trains_on(tmp_path, parent_init):
    parent = init_io.load_init(parent_init)
    parent_meta = init_io.read_init_metadata(parent_init)
    result = meta_train(str(tmp_path / "child"), **_metasgd_kwargs(seed=1,
                                                                    warm_start=parent_init))
    meta = init_io.read_init_metadata(result["init_dir"])
    record = meta.hyperparameters.extra["warm_start"]
    assert record["init"] == parent_init
    assert record["steps"] == parent_meta.steps == 4
    assert record["wall_time_seconds"] == parent_meta.wall_time_seconds
    assert len(record["weights_sha256"]) == 64
    assert meta.steps == 4  # This run's own steps; the parent's are in the record.
    child = init_io.load_init(result["init_dir"])
    assert not np.allclose(_values(child.trainable_variables)[0],
                           _values(parent.trainable_variables)[0])


def test_resume_continues_from_the_checkpoint_not_the_parent(tmp_path, parent_init):
    kwargs = _metasgd_kwargs(seed=1, warm_start=parent_init)
    straight = meta_train(str(tmp_path / "straight"), **kwargs)
    first = meta_train(str(tmp_path / "resumed"), **kwargs, stop_after_steps=2)
    assert first["init_dir"] is None
    resumed = meta_train(str(tmp_path / "resumed"), **kwargs)
    for a, b in zip(_values(init_io.load_init(straight["init_dir"]).weights),
                    _values(init_io.load_init(resumed["init_dir"]).weights)):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)


def test_adding_warm_start_to_a_started_run_is_refused(tmp_path, parent_init):
    """Its checkpoint would win, so recording the parent would be false."""
    kwargs = _metasgd_kwargs(seed=1)
    meta_train(str(tmp_path / "run"), **kwargs, stop_after_steps=2)
    with pytest.raises(MetaTrainConfigError, match=r"was not warm-started"):
        meta_train(str(tmp_path / "run"), **{**kwargs, "warm_start": parent_init})


def test_another_architecture_is_refused_before_writing(tmp_path, parent_init):
    model_dir = tmp_path / "child"
    with pytest.raises(MetaTrainConfigError, match=r"warm_start=.*must match"):
        meta_train(str(model_dir), **_metasgd_kwargs(model_fn=_siren(width=16),
                                                     warm_start=parent_init))
    assert not model_dir.exists()


def test_rates_are_not_dropped_silently(tmp_path, parent_init):
    with pytest.raises(MetaTrainConfigError, match=r"carries learned inner rates per 'tensor'"):
        meta_train(str(tmp_path / "child"), **_metasgd_kwargs(inner_rates=None,
                                                               warm_start=parent_init))


def test_unknown_source_names_the_binding(tmp_path):
    with pytest.raises(MetaTrainConfigError, match=r"meta_train.warm_start='no_such_init'"):
        meta_train(str(tmp_path / "child"), **_metasgd_kwargs(warm_start="no_such_init"))


def test_a_zoo_entry_is_verified_and_recorded_with_its_version(tmp_path):
    """`warm_start="text_siren"` resolves the latest version and records it."""
    latest = zoo.Zoo().resolve_version("text_siren")
    kwargs = _metasgd_kwargs(
        model_fn=lambda seed, inner_rates=None: Siren(out_features=3, width=256, depth=5,
                                                      w0=200.0, seed=seed,
                                                      inner_rates=inner_rates),
        inner_rates="parameter", warm_start="text_siren")
    runner = _started_model(tmp_path / "child", **kwargs)
    assert runner.warm_start_record["init"] == f"text_siren@{latest}"
    shipped = zoo.load("text_siren", latest)
    np.testing.assert_array_equal(_values(runner.model.trainable_variables)[-1],
                                  _values(shipped.trainable_variables)[-1])


LONG_GIN_FILES = sorted(str(p.relative_to(REPO)) for p in (REPO / "gin").rglob("*_long.gin"))


@pytest.mark.parametrize("gin_file", LONG_GIN_FILES)
def test_long_gin_files_continue_a_shipped_init_of_their_architecture(gin_file):
    """Each *_long.gin warm-starts from a shipped entry whose network, task and data it
    repeats (a mismatch would only surface when the run starts, hours in the queue)."""
    import gin  # pylint: disable=import-outside-toplevel
    from learnit_tf.training import gin_config  # pylint: disable=import-outside-toplevel
    try:
        gin_config.parse_config([str(REPO / gin_file)])
        parent = gin.query_parameter("meta_train.warm_start")
        assert gin.query_parameter("meta_train.seed") != 0, "the parent's data order again"
        name, version = zoo.split_name(parent)
        assert version, f"{gin_file}: pin the parent's version ({parent!r})"
        directory = zoo.Zoo().download(name, version)
        config = init_io.read_config(directory)
        metadata = init_io.read_init_metadata(directory)
        model_class, checked = config["class_name"], 0
        for key, value in config["config"].items():
            try:
                bound = gin.query_parameter(f"{model_class}.{key}")
            except ValueError:
                continue  # Unbound: the class default (the run's own check covers it).
            assert bound == value, (f"{gin_file}: {model_class}.{key} = {bound!r}, the "
                                    f"parent has {value!r}")
            checked += 1
        assert checked >= 4, f"{gin_file}: only {checked} network bindings compared"
        task = metadata.task  # The task the gin file builds, against the parent's.
        task_class = kinds.kind_of_task(task.class_name).task_class(task.class_name)
        built = task_class(**gin.get_bindings(task.class_name)).get_config()
        assert json.loads(json.dumps(built)) == task.config, gin_file
        dataset_fn = gin.query_parameter("meta_train.dataset_fn")
        assert dataset_fn.selector.endswith(metadata.dataset.function), gin_file
        assert gin.query_parameter("meta_train.algorithm") == metadata.algorithm
        assert (gin.query_parameter("meta_train.inner_steps")
                == metadata.hyperparameters.inner_steps)
    finally:
        gin.clear_config()
