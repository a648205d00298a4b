"""The report's value columns come from the kind's Metric; PSNR kinds keep today's names."""
import csv
import json
import os

import pytest

from learnit_tf import evaluation
from learnit_tf.core.registry import PSNR, Metric
from learnit_tf.meta import InnerOptimizer

IOU = Metric(key="iou", label="IoU", levels=(0.5, 0.9), digits=3)
ADAM = InnerOptimizer("adam", 1e-4)


def read_csv(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_psnr_report_keeps_the_published_columns(tmp_path):
    row = evaluation.report_row("meta", ADAM, 2, [20.0, 22.0])
    report = evaluation.Report("psnr_vs_steps", "x", [row])
    report.write(str(tmp_path))
    rows = read_csv(tmp_path / "report.csv")
    assert list(rows[0]) == ["init", "optimizer", "learning_rate", "steps", "observations",
                             "psnr_mean", "psnr_std", "count"]
    assert (float(rows[0]["psnr_mean"]), float(rows[0]["psnr_std"])) == (21.0, 1.0)
    assert evaluation.REPORT_COLUMNS == tuple(rows[0])


def test_another_metric_names_the_columns_and_round_trips(tmp_path):
    row = evaluation.report_row("meta", ADAM, 2, [0.5, 0.7], metric=IOU)
    assert row["iou_mean"] == pytest.approx(0.6) and "psnr_mean" not in row
    report = evaluation.Report("shape", "x", [row], metric=IOU)
    report.write(str(tmp_path))
    assert list(read_csv(tmp_path / "report.csv")[0])[-3:] == ["iou_mean", "iou_std", "count"]
    with open(tmp_path / "report.json") as f:
        data = json.load(f)
    assert data["columns"][-3:] == ["iou_mean", "iou_std", "count"]
    back = evaluation.Report.from_json(data)
    assert back.metric.key == "iou" and back.row("meta")["iou_mean"] == pytest.approx(0.6)
    assert evaluation.Report.from_json(data, IOU).metric is IOU
    # A PSNR report's JSON reads back as PSNR.
    psnr = evaluation.Report("p", "x", [evaluation.report_row("meta", ADAM, 0, [1.0])])
    assert evaluation.Report.from_json(psnr.to_json()).metric is PSNR


def test_rows_lacking_the_metrics_columns_are_refused():
    row = evaluation.report_row("meta", ADAM, 2, [20.0])
    with pytest.raises(ValueError, match=r"lacks columns \['iou_mean', 'iou_std'\]"):
        evaluation.Report("shape", "x", [row], metric=IOU)


def test_mean_rows_groups_in_order():
    rows = evaluation.mean_rows({("standard", 1): [10.0, 14.0], ("meta", 1): [20.0]},
                                ("init", "views"), metric=IOU, digits=1)
    assert rows == [{"init": "standard", "views": 1, "iou_mean": 12.0, "iou_std": 2.0,
                     "num_examples": 2},
                    {"init": "meta", "views": 1, "iou_mean": 20.0, "iou_std": 0.0,
                     "num_examples": 1}]


def test_metric_headline_cells():
    class ShapeProtocol(evaluation.Protocol):
        metric = IOU

        def evaluate(self, model, metadata, init_name="", examples=None):
            raise NotImplementedError

        @classmethod
        def headline(cls, report):
            return {}

    cells = ShapeProtocol.headline_cells({"meta_iou_at_2": 0.81234, "standard_iou_at_2": 0.2,
                                          "iou_at": "2 steps", "steps_to_match": 40})
    assert (cells["metric"], cells["meta"], cells["standard"], cells["comparison"],
            cells["match"]) == ("IoU", "0.812", "0.200", "0.812 vs 0.200", "40 steps")
    # A PSNR key is not this protocol's headline.
    assert ShapeProtocol.headline_cells({"meta_psnr_at_2": 30.0})["meta"] == ""
