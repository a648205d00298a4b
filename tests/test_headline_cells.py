"""`Protocol.headline_cells`: the headline as the zoo table's and the cards' text cells.

The expected strings are the zoo table's text before the cells moved into the protocols
(learnit_tf/zoo.py `table_rows` at a649ed7): 2 decimals, "?" for a missing value,
3 significant digits for counts, "views" for CT's `views_to_match`.
"""
import json
import os

import pytest

from learnit_tf.kinds import registry

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def cells(kind, headline):
    return registry.get_kind(kind).protocol_class().headline_cells(headline)


def test_steps_headline_cells():
    out = cells("image", {"meta_psnr_at_2": 35.104, "standard_psnr_at_2": 11.996,
                          "psnr_at": "2 steps", "steps_to_match": 43})
    assert out["metric"] == "PSNR (dB)"
    assert (out["meta"], out["standard"], out["at"], out["match"]) == (
        "35.10", "12.00", "2 steps", "43 steps")
    assert out["comparison"] == "35.10 vs 12.00 dB"


@pytest.mark.parametrize("headline,match", [
    ({"steps_to_match": "> 1000"}, "> 1000 steps"),
    ({"steps_to_match": 12345}, "1.23e+04 steps"),
    ({"steps_to_match": {"ratio": 21.54}}, "21.5×"),
    ({}, ""),
])
def test_steps_to_match_text(headline, match):
    assert cells("audio", dict(headline, meta_psnr_at_2=20.0))["match"] == match


def test_older_headline_names_the_step_in_its_key():
    out = cells("image", {"meta_psnr_at_5": 20.0})
    assert (out["meta"], out["standard"], out["at"]) == ("20.00", "?", "5 steps")
    assert out["comparison"] == "20.00 vs ? dB"


def test_no_values_gives_empty_cells():
    out = cells("image", {"steps_to_match": 4})
    assert (out["meta"], out["standard"], out["at"], out["comparison"]) == ("", "", "", "")
    assert out["match"] == "4 steps"


def test_ct_matches_in_views_and_legacy_ct_in_steps():
    ct = {"meta_psnr_at_1_view": 25.5, "standard_psnr_at_1_view": 14.25,
          "psnr_at": "1 view, 200 steps", "views_to_match": 4}
    out = cells("ct", ct)
    assert (out["meta"], out["standard"], out["at"], out["match"]) == (
        "25.50", "14.25", "1 view, 200 steps", "4 views")
    assert cells("ct", {"views_to_match": "> 16"})["match"] == "> 16 views"
    # Version-1 CT evaluations were steps summaries.
    assert cells("ct", {"meta_psnr_at_2": 20.0, "steps_to_match": 7})["match"] == "7 steps"
    # A steps protocol does not read views.
    assert cells("image", ct)["match"] == ""


def test_every_published_headline_formats():
    """Every shipped version's headline gives its values and a match cell."""
    with open(os.path.join(REPO, "zoo", "index.json")) as f:
        index = json.load(f)
    for name, entry in index["entries"].items():
        for version, record in entry["versions"].items():
            headline = record.get("headline") or {}
            task = headline.get("task")
            kind = registry.kind_of_task(task) if task else registry.get_kind("image")
            out = kind.protocol_class().headline_cells(headline)
            metric = kind.metric
            assert out["metric"] == (f"{metric.label} ({metric.unit})" if metric.unit
                                     else metric.label), (name, version)
            if any(k.startswith(f"meta_{metric.key}_at_") for k in headline):
                assert out["meta"] not in ("", "?") and out["at"], (name, version, out)


def test_published_ct_and_nerf_rows():
    """Two shipped versions' cells as the zoo table showed them before the move."""
    with open(os.path.join(REPO, "zoo", "index.json")) as f:
        entries = json.load(f)["entries"]
    ct = cells("ct", entries["shepp_logan_ct"]["versions"]["2"]["headline"])
    assert (ct["comparison"], ct["at"], ct["match"]) == (
        "15.57 vs 13.92 dB", "1 view, 200 steps", "4 views")
    nerf = cells("nerf", entries["procedural_chairs_nerf"]["versions"]["1"]["headline"])
    assert (nerf["comparison"], nerf["at"], nerf["match"]) == (
        "14.48 vs 10.32 dB", "0 steps, fit on 1 view", "> 1000 steps")


def test_every_kinds_protocol_formats_its_declared_metric():
    """The headline cells use the protocol's `metric`: it must be the kind's `Metric`."""
    for kind in registry.all_kinds():
        if kind.protocol:
            assert kind.protocol_class().metric == kind.metric, kind.name
