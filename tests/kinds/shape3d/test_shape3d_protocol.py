"""The 3D protocol is the shared steps protocol keyed by IoU: its rows, summary, Chamfer
distances and headline on two tiny procedural shapes, against fits computed here with
the `Fitter` directly (examples given, no dataset)."""

import csv
import os

import numpy as np
import pytest

from learnit_tf import evaluation
from learnit_tf.evaluation.baselines import standard_init
from learnit_tf.kinds.shape3d.evaluation import ShapeOptions, ShapeProtocol
from learnit_tf.kinds.shape3d.metrics import network_grid_sdf, surface_chamfer
from learnit_tf.kinds.shape3d.procedural import shape_example
from learnit_tf.kinds.shape3d.task import ShapeSdfTask
from learnit_tf.meta import Fitter, InnerOptimizer
from learnit_tf.models import Siren

META_STEPS, STANDARD_STEPS, CHAMFER_RES = 3, 5, 12
#: The report steps of each fit (evaluation.REPORT_STEPS up to its steps, and its last).
KEPT = {"meta": [0, 1, 2, 3], "standard": [0, 1, 2, 3, 5]}


@pytest.fixture(scope="module")
def setup():
    task = ShapeSdfTask(num_points=64, grid_resolution=6, num_surface=32)
    examples = [shape_example(np.random.RandomState([0, 2, i]), 64, 0.02, 6, 32)
                for i in range(2)]
    metadata = {"signal_class": "tiny_shapes",
                "task": {"class_name": "ShapeSdfTask", "config": task.get_config()},
                "hyperparameters": {"inner_optimizer": "sgd", "inner_learning_rate": 1e-2}}
    model = Siren(out_features=1, width=16, depth=2, w0=30.0, output_offset=0.0, in_features=3,
                  seed=0)
    protocol = ShapeProtocol(meta_steps=META_STEPS, standard_steps=STANDARD_STEPS,
                             chamfer_resolution=CHAMFER_RES, snapshot_examples=1,
                             progress=False)
    report = protocol.evaluate(model, metadata, "tiny", examples=examples)
    # The same fits, here: meta with SGD 1e-2, a standard init (seed 1) with Adam 3e-4.
    direct = {}
    for label, fit_model, optimizer, steps in (
            ("meta", model, InnerOptimizer("sgd", 1e-2), META_STEPS),
            ("standard", standard_init(model, seed=1), InnerOptimizer("adam", 3e-4),
             STANDARD_STEPS)):
        fitter = Fitter(fit_model, task, optimizer)
        results = [fitter.fit(e, steps, snapshot_steps=range(steps + 1)) for e in examples]
        direct[label] = {
            "iou": np.stack([r.metrics["iou"] for r in results]),
            "chamfer": {s: [surface_chamfer(network_grid_sdf(fitter.fmodel, r.snapshots[s],
                                                             CHAMFER_RES),
                                            CHAMFER_RES, e["surface"], seed=i)
                            for i, (r, e) in enumerate(zip(results, examples))]
                        for s in range(steps + 1)}}
    return report, direct


def test_rows_are_the_iou_of_both_inits_at_every_report_step(setup):
    report, direct = setup
    assert report.protocol == "shape_iou_vs_steps" and report.metric.key == "iou"
    assert [(r["init"], r["steps"]) for r in report.rows] == [
        (label, s) for label in ("meta", "standard") for s in KEPT[label]]
    for row in report.rows:
        curve = direct[row["init"]]["iou"][:, row["steps"]]
        assert row["count"] == 2 and "psnr_mean" not in row
        np.testing.assert_allclose([row["iou_mean"], row["iou_std"]],
                                   [curve.mean(), curve.std()], atol=1e-6)
    assert {(r["optimizer"], r["learning_rate"]) for r in report.rows} == {
        ("sgd", 1e-2), ("adam", 3e-4)}


def test_summary_steps_to_match_chamfer_and_headline(setup):
    report, direct = setup
    s = report.summary
    meta, standard = direct["meta"]["iou"].mean(0), direct["standard"]["iou"].mean(0)
    np.testing.assert_allclose([s["meta_iou_at_2"], s["standard_iou_at_2"]],
                               [meta[2], standard[2]], atol=1e-6)
    reached = [k for k, v in enumerate(standard) if v >= s["meta_iou_at_2"]]
    assert s["steps_to_match"] == (reached[0] if reached else None)
    assert s["standard_steps_evaluated"] == STANDARD_STEPS and s["num_examples"] == 2
    assert s["iou_curve"]["meta"] == {str(k): round(float(v), 4) for k, v in enumerate(meta)}
    assert set(s["steps_to_iou"]["standard"]["steps"]) == {"0.5", "0.7", "0.8", "0.9"}
    assert set(s["steps_to_iou"]["meta"]) == {"steps", "seconds"}
    for label in ("meta", "standard"):
        assert list(s["chamfer_curve"][label]) == [str(k) for k in KEPT[label]]
        for step in KEPT[label]:
            assert s["chamfer_curve"][label][str(step)] == pytest.approx(
                round(float(np.nanmean(direct[label]["chamfer"][step])), 5), nan_ok=True)
    np.testing.assert_allclose(s["meta_chamfer_at_2"],
                               np.nanmean(direct["meta"]["chamfer"][2]), atol=1e-6)
    assert s["target_grid_chamfer"] > 0
    headline = ShapeProtocol.headline(report)
    assert headline["iou_at"] == "2 steps"
    assert headline["meta_iou_at_2"] == s["meta_iou_at_2"]
    assert ShapeProtocol.headline_from_evaluation(report.to_json()) == headline


def test_report_files(setup, tmp_path):
    report, direct = setup
    report.write(str(tmp_path))
    assert sorted(os.listdir(tmp_path)) == [
        "iou_curves.png", "per_example.csv", "per_step.csv", "reconstructions.png",
        "report.csv", "report.json"]
    with open(tmp_path / "per_step.csv") as f:
        per_step = list(csv.DictReader(f))
    assert len(per_step) == 2 * (len(KEPT["meta"]) + len(KEPT["standard"]))
    for row in per_step:
        expected = direct[row["init"]]["chamfer"][int(row["step"])][int(row["example"])]
        assert float(row["chamfer"]) == pytest.approx(expected, abs=1e-6, nan_ok=True)


def test_options_are_the_steps_protocol_s_with_the_kind_s_defaults():
    options = ShapeOptions()
    assert isinstance(options, evaluation.StepsOptions)
    assert (options.standard_learning_rate, options.iou_targets, options.chamfer_resolution,
            options.standard_steps, options.match_step) == (3e-4, "0.5,0.7,0.8,0.9", 64,
                                                             1000, 2)
    assert ShapeProtocol(iou_targets="0.25,0.5").targets() == (0.25, 0.5)
    with pytest.raises(ValueError, match="--psnr_targets does not apply"):
        ShapeProtocol(psnr_targets="20,30").targets()
    with pytest.raises(ValueError, match="scores candidates by PSNR"):
        ShapeProtocol(select_fit_recipe=True).choose_fit_recipe(None, {}, None)
