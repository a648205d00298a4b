"""The zoo package's own modules (issue 25): metadata read once into one frozen object,
the table's cells from each kind's protocol (a generic reading for unknown kinds), the
resolution warning decided by the kind's reader, not by a task's name."""

import builtins
import dataclasses
import json
import os

import pytest

from learnit_tf import zoo
from learnit_tf.core import registry
from learnit_tf.models import Siren
from learnit_tf.zoo import resolution, table
from learnit_tf.meta import init_io
from learnit_tf.core import metadata


@pytest.fixture(name="init_dir")
def _init_dir(tmp_path):
    meta = {"signal_class": "demo", "algorithm": "maml",
            "task": {"class_name": "ImageTask", "config": {"resolution": [8, 8]}},
            "fit_recipe": {"phases": [{"optimizer": {"name": "sgd", "learning_rate": 0.01},
                                       "steps": None, "learned_rates": False}]},
            "evaluation": {"meta_psnr_at_2": 20.0, "standard_psnr_at_2": 11.0,
                           "steps_to_match": 30}}
    return init_io.save_init(Siren(out_features=3, width=8, depth=2, seed=0),
                             str(tmp_path / "init"), meta)


@pytest.fixture(name="metadata_reads")
def _metadata_reads(monkeypatch):
    """Paths of metadata.json files opened for reading as text (hashing opens them as
    bytes, which is not reading the metadata)."""
    opened = []
    real_open = builtins.open

    def counting_open(file, mode="r", *args, **kwargs):
        if str(file).endswith(init_io.METADATA_FILE) and "b" not in mode and "r" in mode:
            opened.append(str(file))
        return real_open(file, mode, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", counting_open)
    return opened


def test_an_init_s_metadata_is_read_once_per_load_and_publish(init_dir, tmp_path,
                                                               metadata_reads):
    model = zoo.load(init_dir)
    assert len(metadata_reads) == 1, metadata_reads
    assert model.fit_recipe is not None  # The one read also gave the model its recipe.
    metadata_reads.clear()
    record = zoo.publish(init_dir, "demo", "1", str(tmp_path / "zoo"))
    assert len(metadata_reads) == 1, metadata_reads
    assert record["headline"]["meta_psnr_at_2"] == 20.0
    metadata_reads.clear()
    zoo.load("demo", index=str(tmp_path / "zoo"), cache_dir=str(tmp_path / "cache"))
    assert len(metadata_reads) == 1, metadata_reads
    metadata_reads.clear()
    described = zoo.describe("demo@1", index=str(tmp_path / "zoo"))
    assert len(metadata_reads) == 1, metadata_reads
    with open(os.path.join(init_dir, init_io.METADATA_FILE), encoding="utf-8") as f:
        assert described == json.load(f)  # The file as written, not the current schema.


def test_init_metadata_is_frozen_and_keeps_the_file_as_read(tmp_path):
    legacy = {"meta_config": {"algorithm": "reptile"}, "task": "image", "note": "kept"}
    path = tmp_path / "metadata.json"
    path.write_text(json.dumps(legacy))
    meta = metadata.InitMetadata.read(str(path))
    assert (meta.algorithm, meta.kind, meta.task) == ("reptile", "image", None)
    assert meta.file_dict() == legacy
    meta.file_dict()["note"] = "changed"  # A copy: the object does not change.
    assert meta.file_dict()["note"] == "kept"
    assert meta.to_dict()["schema_version"] == metadata.SCHEMA_VERSION
    with pytest.raises(dataclasses.FrozenInstanceError):
        meta.algorithm = "maml"
    # Built in code (no file): its JSON form; `raw` does not take part in equality.
    built = metadata.InitMetadata(algorithm="reptile", kind="image")
    assert built.file_dict() == built.to_dict()
    assert metadata.InitMetadata.from_dict(built.to_dict()) == built


def _row(name, headline):
    return {"name": name, "version": "1", "size": 10, "headline": headline}


def test_table_cells_come_from_the_kind_s_protocol(monkeypatch):
    iou = registry.Metric(key="iou", label="IoU", unit="", digits=3)

    class VolumeProtocol:  # What a kind with another metric provides.
        metric = iou

        @classmethod
        def headline_cells(cls, headline):
            return {"metric": "IoU", "meta": "0.900", "standard": "0.400", "at": "2 steps",
                    "match": f"{headline['shapes_to_match']} shapes", "unit": "",
                    "comparison": "0.900 vs 0.400"}

    real = table._protocol_of  # pylint: disable=protected-access
    monkeypatch.setattr(table, "_protocol_of", lambda h: VolumeProtocol if h.get(
        "kind") == "volume" else real(h))
    volume = _row("vol", {"kind": "volume", "shapes_to_match": 40})
    text = table.format_table([volume])
    assert text.splitlines()[0].split("  ")[5] == "IoU meta vs standard"
    assert "0.900 vs 0.400" in text and "40 shapes" in text
    image = _row("img", {"task": "ImageTask", "meta_psnr_at_2": 30.0,
                         "standard_psnr_at_2": 12.5, "steps_to_match": 7})
    mixed = table.format_table([volume, image], markdown=True).splitlines()
    assert "| PSNR/IoU meta vs standard |" in mixed[0]  # Two metrics: the header names both,
    assert "| IoU 0.900 vs 0.400 |" in mixed[2]  # the other metric's cells name theirs,
    assert "| 30.00 vs 12.50 dB | 2 steps | 7 steps |" in mixed[3]  # PSNR's stay as they were.
    only_image = table.format_table([image], markdown=True).splitlines()
    assert only_image[0] == "| " + " | ".join(table.TABLE_COLUMNS) + " |"


def test_a_headline_of_an_unknown_kind_is_read_generically():
    cells = table.table_rows([
        _row("a", {"kind": "not_registered", "meta_psnr_at_3_views": 21.0,
                   "standard_psnr_at_3_views": 15.25, "views_to_match": 12}),
        _row("b", {"task": "NoSuchTask", "meta_psnr_at_2": 20.0,
                   "steps_to_match": {"ratio": 21.54}}),
        _row("c", {"samples_to_match": 5})])
    assert cells[0][5:8] == ["21.00 vs 15.25 dB", "3 views", "12 views"]
    assert cells[1][5:8] == ["20.00 vs ? dB", "2 steps", "21.5×"]
    assert cells[2][5:8] == ["", "", "5 samples"]


def test_the_resolution_warning_asks_the_kind_not_the_task_name():
    at_8 = {"config": {"resolution": [8, 8]}}
    image = {"task": {"class_name": "ImageTask", **at_8},
             "evaluation": {"summary": {"meta_psnr_at_2": 30.0, "steps_to_match": 9}}}
    assert resolution.fits_at_a_resolution(image)  # The image reader takes `resolution`.
    assert "not evaluated at 16×16" in resolution.resolution_warning("x", image, 16)
    assert resolution.resolution_warning("x", image, 8) is None
    # CT's task records a grid side too, but its reader does not fit at another one.
    ct = {"task": {"class_name": "CtTask", "config": {"resolution": 64}}}
    assert not resolution.fits_at_a_resolution(ct)
    assert resolution.resolution_warning("x", ct, 128) is None
    # A task whose class name says nothing, with measured resolutions: warned.
    measured = {"task": {"class_name": "GridTask", **at_8}, "evaluated_resolutions": {
        "8": {"meta_psnr_at_match": 30.0, "steps_to_match": 9}}}
    text = resolution.resolution_warning("x", measured, 32)
    assert "8×8: 30.00 dB after 2 steps, 9 standard steps to match" in text
