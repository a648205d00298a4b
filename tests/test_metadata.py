"""The init metadata schema (learnit_tf.core.metadata): every shipped version, validation."""

import json
from pathlib import Path

import pytest

from learnit_tf import evaluation, zoo
from learnit_tf.meta import init_io
from learnit_tf.core.metadata import (SCHEMA_VERSION, InitMetadata, MetadataError, TaskSpec,
                                     algorithm_of)

REPO = Path(__file__).resolve().parents[1]
# The legacy (schema version 1: no `schema_version` key) files shipped in zoo/.
SHIPPED = sorted(p for p in (REPO / "zoo").glob("*/1/metadata.json")
                 if "schema_version" not in json.loads(p.read_text()))

# name -> (kind, algorithm, task class, dataset function, bindings, inner lr) of the shipped files.
SHIPPED_EXPECTED = {
    "procedural_chairs_nerf": ("nerf", "reptile", "NerfTask", "procedural_objects_examples",
                               {"config": "small", "num_held_out_views": 5, "views": "all"}, 0.5),
    "sdf_siren": ("image", "maml", "ImageTask", "sdf_2d_examples", {"config": "cpu64"}, 0.01),
    "shepp_logan_ct": ("ct", "reptile", "CtTask", "shepp_logan_examples", {"config": "small"},
                       10.0),
    "text_siren": ("image", "maml", "ImageTask", "text_images_examples", {"config": "cpu64"},
                   0.01),
}


def test_reads_every_shipped_legacy_file():
    assert sorted(p.parent.parent.name for p in SHIPPED) == sorted(SHIPPED_EXPECTED)
    for path in SHIPPED:
        kind, algorithm, task, function, bindings, lr = SHIPPED_EXPECTED[path.parent.parent.name]
        meta = init_io.read_init_metadata(str(path.parent))
        assert meta.kind is None and meta.kind_name() == kind  # Version 1 has no kind.
        assert meta.algorithm == algorithm
        assert meta.task.class_name == task
        assert meta.dataset.function == function
        assert meta.dataset.bindings == bindings  # Version 1 keeps them under gin_bindings.
        assert meta.dataset.train_split == "train" and meta.dataset.eval_split == "validation"
        assert meta.hyperparameters.inner_learning_rate == lr
        assert meta.evaluation["meta_psnr_at_2"] > meta.evaluation["standard_psnr_at_2"]
        assert meta.extra == {}
        # The raw reader still returns the file as written.
        assert init_io.read_metadata(str(path.parent)) == json.loads(path.read_text())


def test_round_trip_writes_the_current_version(tmp_path):
    for path in SHIPPED:
        meta = InitMetadata.read(str(path))
        written = meta.to_dict()
        assert written["schema_version"] == SCHEMA_VERSION
        assert "gin_bindings" not in written["dataset"]
        meta.write(tmp_path / "metadata.json")
        again = InitMetadata.read(str(tmp_path / "metadata.json"))
        assert again == meta


def test_converter_format():
    # What learnit_tf.convert.convert_checkpoint writes: "task" is the kind's name.
    data = {"source": {"file": "x.pkl"}, "converted_by": "learnit_tf.convert.convert_checkpoint",
            "architecture": {"class_name": "Siren"}, "task": "image", "paper": "arXiv:2012.02189",
            "signal_class": "celeb_a", "algorithm": "maml", "outer_steps": 150000}
    meta = InitMetadata.from_dict(data)
    assert meta.kind == "image" and meta.task is None
    assert meta.algorithm == "maml" and meta.signal_class == "celeb_a"
    assert meta.extra["outer_steps"] == 150000 and meta.extra["source"] == {"file": "x.pkl"}
    assert InitMetadata.from_dict(meta.to_dict()) == meta


def test_legacy_algorithm_paths():
    for data in ({"algorithm": "maml"}, {"meta_config": {"algorithm": "maml"}},
                 {"meta": {"algorithm": "maml"}}, {"training": {"algorithm": "maml"}},
                 {"hyperparameters": {"algorithm": "maml"}}):
        assert algorithm_of(data) == "maml"
        assert InitMetadata.from_dict(data).algorithm == "maml"
        assert zoo.headline_from_metadata(data)["algorithm"] == "maml"
    assert algorithm_of({"evaluation": "n/a"}) is None
    # Version 2 records it in one place only.
    assert InitMetadata.from_dict({"schema_version": 2, "training": {"algorithm": "x"}}
                                  ).algorithm is None


# (metadata, field named in the error): every known field's type is checked.
BAD_METADATA = [
    ({"schema_version": 99}, "schema_version 99 is newer"),
    ({"schema_version": "2"}, "'schema_version'"),
    ({"schema_version": 0}, "'schema_version'"),
    ({"signal_class": 3}, "'signal_class' must be a string"),
    ({"kind": ["image"]}, "'kind' must be a string"),
    ({"task": 3}, "'task' must be an object"),
    ({"schema_version": 2, "task": "image"}, "'task' must be an object"),
    ({"task": {"class_name": 1}}, "'task.class_name' must be a string"),
    ({"task": {"class_name": "ImageTask", "config": [64]}}, "'task.config' must be an object"),
    ({"task": {"clas_name": "ImageTask"}}, "'task' has unknown keys \\['clas_name'\\]"),
    ({"dataset": "text"}, "'dataset' must be an object"),
    ({"dataset": {"function": 3}}, "'dataset.function' must be a string"),
    ({"dataset": {"train_split": None, "eval_split": 1}}, "'dataset.eval_split'"),
    ({"dataset": {"gin_bindings": [1]}}, "'dataset.bindings' must be an object"),
    ({"dataset": {"gin_bindings": {}, "bindings": {"a": 1}}}, "both 'bindings' and"),
    ({"algorithm": 1}, "'algorithm' must be a string"),
    ({"hyperparameters": []}, "'hyperparameters' must be an object"),
    ({"hyperparameters": {"inner_steps": 0}}, "'hyperparameters.inner_steps' must be an "
                                              "integer >= 1, got 0"),
    ({"hyperparameters": {"inner_steps": 2.0}}, "'hyperparameters.inner_steps'"),
    ({"hyperparameters": {"inner_learning_rate": "1e-2"}}, "'hyperparameters.inner_learning_"),
    ({"hyperparameters": {"meta_batch_size": True}}, "'hyperparameters.meta_batch_size'"),
    ({"hyperparameters": {"remat": 1}}, "'hyperparameters.remat' must be true or false"),
    ({"steps": -1}, "'steps' must be an integer >= 0, got -1"),
    ({"steps": "300"}, "'steps'"),
    ({"wall_time_seconds": float("nan")}, "'wall_time_seconds' must be a finite number"),
    ({"num_replicas": 0}, "'num_replicas' must be an integer >= 1"),
    ({"command": ["python"]}, "'command' must be a string"),
    ({"final_train_metrics": {"loss": "low"}}, "'final_train_metrics.loss' must be a number"),
    ({"library_versions": {"keras": 3}}, "'library_versions.keras' must be a string"),
    ({"evaluation": "n/a"}, "'evaluation' must be an object"),
]


@pytest.mark.parametrize("data,message", BAD_METADATA)
def test_invalid_fields_are_named_with_the_file(tmp_path, data, message):
    path = tmp_path / "metadata.json"
    path.write_text(json.dumps(data))
    with pytest.raises(MetadataError, match=message) as info:
        InitMetadata.read(str(path))
    assert str(info.value).startswith(f"{path}: ")
    with pytest.raises(MetadataError, match=message):  # The dict reader validates too.
        init_io.read_metadata(str(tmp_path))


def test_not_json_or_not_an_object(tmp_path):
    path = tmp_path / "metadata.json"
    path.write_text("not json {")
    with pytest.raises(MetadataError, match=f"{path}: not a valid JSON metadata file"):
        init_io.read_init_metadata(str(tmp_path))
    path.write_bytes(b"\xff\xfe\x00")
    with pytest.raises(MetadataError, match="not a valid JSON"):
        init_io.read_metadata(str(tmp_path))
    path.write_text("[1, 2]")
    with pytest.raises(MetadataError, match="must hold a JSON object, got list"):
        init_io.read_init_metadata(str(tmp_path))
    path.unlink()
    path.mkdir()
    with pytest.raises(MetadataError, match=f"{path}: cannot be read as a metadata file"):
        InitMetadata.read(str(path))
    path.rmdir()
    assert init_io.read_init_metadata(str(tmp_path)) == InitMetadata()
    assert init_io.read_metadata(str(tmp_path)) == {}


def test_dict_access_shim():
    meta = InitMetadata(steps=3, algorithm="maml", task=TaskSpec("ImageTask", {"resolution": 8}))
    assert meta["steps"] == 3 and meta.get("algorithm") == "maml"
    assert meta["task"]["class_name"] == "ImageTask"
    assert meta.get("evaluation", {}) == {}
    assert "steps" in meta and "evaluation" not in meta
    assert meta.get("hyperparameters", {}).get("inner_optimizer", "sgd") == "sgd"


def test_evaluation_readers_take_either_form(monkeypatch):
    path = REPO / "zoo" / "text_siren" / "1"
    raw, meta = init_io.read_metadata(str(path)), init_io.read_init_metadata(str(path))
    for metadata in (raw, meta, meta.to_dict()):
        task = evaluation.task_from_metadata(metadata)
        assert type(task).__name__ == "ImageTask" and (task.height, task.width) == (64, 64)
        optimizer = evaluation.meta_optimizer_from_metadata(metadata)
        assert (optimizer.name, optimizer.learning_rate) == ("sgd", 0.01)
    seen = {}

    def fake_dataset(split, **kwargs):
        seen.update(split=split, **kwargs)

    monkeypatch.setattr(evaluation.kinds, "dataset_function",
                        {"text_images_examples": fake_dataset}.__getitem__)
    for metadata in (raw, meta, meta.to_dict()):
        seen.clear()
        evaluation.dataset_fn_from_metadata(metadata, data_dir="/d")("test")
        assert seen == {"split": "test", "config": "cpu64", "data_dir": "/d"}
    default = evaluation.meta_optimizer_from_metadata({})
    assert (default.name, default.learning_rate) == ("sgd", 0.01)
