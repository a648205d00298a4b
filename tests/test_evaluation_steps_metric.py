"""The steps protocol keyed by a kind's metric (`Protocol.metric`): results, rows and
summary keys take the metric's key; PSNR (the default) keeps its names (`psnr_mean`,
`meta_psnr_at_2`, `psnr_curve`, `steps_to_psnr`)."""

import numpy as np
import pytest

from learnit_tf import evaluation
from learnit_tf.core.registry import PSNR, Metric

SCORE = Metric(key="score", label="Score", levels=(0.5, 0.9), digits=3)


def _results(key):
    # Two signals; meta reaches 0.6 at step 2, standard first reaches it at step 3.
    return {"meta": {key: np.array([[0.1, 0.4, 0.6], [0.1, 0.4, 0.6]]),
                     "seconds_per_step": 0.5},
            "standard": {key: np.array([[0.0, 0.2, 0.3, 0.7, 0.95]] * 2),
                         "seconds_per_step": 0.25}}


def test_summarize_names_everything_by_the_metric_key():
    rows, summary = evaluation.summarize(_results("score"), metric=SCORE)
    assert rows[0] == {"init": "meta", "step": 0, "score_mean": pytest.approx(0.1),
                       "score_std": 0.0}
    assert [(r["init"], r["step"]) for r in rows] == (
        [("meta", s) for s in range(3)] + [("standard", s) for s in range(5)])
    assert summary["meta_score_at_2"] == pytest.approx(0.6)
    assert summary["standard_score_at_2"] == pytest.approx(0.3)
    assert (summary["steps_to_match"], summary["steps_to_match_ratio"],
            summary["standard_steps_evaluated"], summary["num_examples"]) == (3, 1.5, 4, 2)
    assert summary["score_curve"]["standard"] == {"0": 0.0, "1": 0.2, "2": 0.3, "3": 0.7,
                                                  "4": 0.95}
    assert not any("psnr" in k for k in summary)
    reach = evaluation.steps_to_targets(_results("score"), SCORE.levels, SCORE)
    assert reach["standard"] == {"steps": {"0.5": 3, "0.9": 4},
                                 "seconds": {"0.5": 0.75, "0.9": 1.0}}
    assert reach["meta"]["steps"] == {"0.5": 2, "0.9": None}


def test_psnr_keeps_its_names_by_default():
    rows, summary = evaluation.summarize(_results("psnr"))
    assert {"psnr_mean", "psnr_std"} <= set(rows[0])
    assert {"meta_psnr_at_2", "standard_psnr_at_2", "psnr_curve"} <= set(summary)
    assert evaluation.steps_to_targets(_results("psnr"), (0.5,))["standard"]["steps"] == {
        "0.5": 3}
    with pytest.raises(KeyError):
        evaluation.summarize(_results("score"))  # PSNR results are read under "psnr".


def test_targets_are_the_metric_s_option_or_its_levels():
    assert evaluation.StepsProtocol().targets() == (25.0, 30.0, 35.0, 40.0)
    assert evaluation.StepsProtocol(psnr_targets="20,30").targets() == (20.0, 30.0)

    class ScoreProtocol(evaluation.StepsProtocol):
        name = "score_vs_steps"
        metric = SCORE

    assert ScoreProtocol().targets() == SCORE.levels  # No --score_targets option.
    assert evaluation.StepsProtocol.metric is PSNR
