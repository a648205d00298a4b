"""Every published zoo version's headline numbers, recomputed (default run).

What `zoo list` and README's zoo table show for each version (`index.json`'s headline):
meta and standard PSNR at the headline point, and the steps or views a standard init
needs to match. How each kind of headline is recomputed, on which signals and to which
tolerance: `headlines.py`. The parametrization reads `zoo/index.json`, so a newly
published version is checked without editing this file; `test_every_version_is_checked`
fails if a version's headline is of a kind no check understands.
"""
import json
import os

import numpy as np
import pytest

import headlines
from headlines import NOISE_DB

VERSIONS = headlines.published_versions()


def _raw_metadata(record):
    """metadata.json and config.json of a local entry, unverified: collection only
    (the tests read them through the verified zoo)."""
    root = os.path.join(os.path.dirname(headlines.INDEX), record["path"])
    with open(os.path.join(root, "metadata.json")) as f:
        metadata = json.load(f)
    with open(os.path.join(root, "config.json")) as f:
        return metadata, json.load(f)


def _steps_groups():
    groups = {}
    for name, version, record in VERSIONS:
        if headlines.claim(record["headline"])[0] == "steps":
            key = headlines.steps_group_key(name, *_raw_metadata(record))
            groups.setdefault(key, []).append((name, version, record))
    return list(groups.values())


STEPS_GROUPS = _steps_groups()
OTHERS = [v for v in VERSIONS
          if headlines.claim(v[2]["headline"])[0] in ("views", "single_view")]
OTHER_METRICS = [v for v in VERSIONS
                 if headlines.claim(v[2]["headline"])[0] == "other_metric"]


def test_every_version_is_checked():
    checked = {(n, v) for group in STEPS_GROUPS for n, v, _ in group}
    checked |= {(n, v) for n, v, _ in OTHERS}
    checked |= {(n, v) for n, v, _ in OTHER_METRICS}
    assert checked == {(n, v) for n, v, _ in VERSIONS}
    assert len(VERSIONS) >= 13  # what was published when this test was written


def test_steps_versions_are_refitted_on_what_their_evaluation_fitted():
    """An image version evaluated at another resolution than its dataset renders by
    default (emoji_siren@7 and @8: 128², trained on 256² renders) is refitted at the
    recorded resolution, and does not share the standard-init curves of versions
    evaluated at another one (before this test, @7/@8 were refitted at 256², where
    their numbers happen to lie within NOISE_DB of the 128² ones)."""
    checked = 0
    for group in STEPS_GROUPS:
        resolutions = set()
        for name, version, record in group:
            metadata, _ = _raw_metadata(record)
            recorded = (metadata["evaluation"].get("settings") or {}).get("resolution")
            fitted = headlines.fitted_metadata(metadata)
            if recorded is not None:
                assert fitted["task"]["config"]["resolution"] == [recorded, recorded], (
                    name, version, fitted["task"])
                assert fitted["dataset"]["bindings"]["resolution"] == recorded
                checked += 1
            resolutions.add(str(fitted["task"]["config"].get("resolution")))
        assert len(resolutions) == 1, (group, resolutions)
    assert checked >= 10  # Image versions recording a resolution when this was written.


def _check_index_matches_metadata(name, version, record, metadata, config, fields):
    """The index's headline numbers are the metadata's (where the metadata's recorded
    evaluation gives them: a NeRF version 1 evaluation predates the single-view
    protocol, and its index headline comes from the saved per-signal file)."""
    from learnit_tf import zoo  # pylint: disable=import-outside-toplevel
    derived = zoo.headline_from_metadata(metadata, config)
    for field in fields.values():
        if field in derived:
            assert derived[field] == record["headline"][field], (
                f"{name}@{version}: index.json headline {field}={record['headline'][field]!r} "
                f"but its metadata.json's evaluation gives {derived[field]!r}.")


def _recorded_row(metadata, init, steps=None, observations=None):
    for row in (metadata.get("evaluation") or {}).get("rows") or []:
        if row["init"] == init and (steps is None or int(row["steps"]) == steps) and (
                observations is None or row["observations"] == observations):
            return row
    return None


def _steps_needed(headline):
    """The standard-curve length a steps headline is checked with: its point or its
    steps to match, whichever is later."""
    _, point, fields = headlines.claim(headline)
    match = headline.get(fields["match"])
    return max(point, match) if isinstance(match, int) else point


@pytest.mark.parametrize("group", STEPS_GROUPS,
                         ids=["+".join(f"{n}@{v}" for n, v, _ in g) for g in STEPS_GROUPS])
def test_steps_headlines_reproduce_on_all_recorded_signals(group):
    """Meta and standard PSNR at the headline step, recomputed on all N recorded
    held-out signals, equal the headline to within NOISE_DB; so does each init's spread
    across signals where recorded; the steps to match are the first step at which the
    recomputed standard-init mean curve reaches the meta init's PSNR."""
    from learnit_tf import zoo  # pylint: disable=import-outside-toplevel
    from learnit_tf.evaluation.baselines import standard_init  # pylint: disable=import-outside-toplevel
    shared = {}
    # The standard curves are shared by the group: computed once, to the longest step any
    # version's headline needs (versions in index order need ever longer ones).
    longest = max(_steps_needed(record["headline"]) for _, _, record in group)
    for name, version, record in group:
        label = f"{name}@{version}"
        headline = record["headline"]
        _, point, fields = headlines.claim(headline)
        metadata, config = headlines.read_metadata(name, version)
        _check_index_matches_metadata(name, version, record, metadata, config, fields)
        _, _, meta_opt, _, seed = headlines.steps_settings(metadata)
        recorded_name = headlines.recorded_optimizer_name(metadata)
        if recorded_name is not None:  # The recorded recipe is the one refitted.
            assert meta_opt.name == recorded_name, (label, meta_opt.name, recorded_name)
        model = zoo.load(name, version, index=headlines.INDEX)
        if "standard_model" not in shared:
            shared["standard_model"] = standard_init(model, seed=seed)
        match = headline.get(fields["match"])
        out = headlines.reproduce_steps(model, metadata, shared["standard_model"], shared,
                                        point, longest)
        meta, curves = out["meta"], out["standard_curves"]
        standard = curves[:, point]
        for init, values, field in (("meta", meta, fields["meta"]),
                                    ("standard", standard, fields["standard"])):
            headlines.log_deviation(label, f"{init} mean", values.mean(), headline[field])
            assert abs(values.mean() - headline[field]) <= NOISE_DB, (
                f"{label}: {init} PSNR at {point} steps recomputed on {len(values)} held-out "
                f"signals is {values.mean():.4f} dB, the headline says {headline[field]:.4f} "
                f"(tolerance {NOISE_DB} dB).")
            row = _recorded_row(metadata, init, steps=point)
            if row is not None:
                assert abs(values.std() - row["psnr_std"]) <= NOISE_DB, (label, init, row)
                assert row["count"] == len(values), (label, row)
        if isinstance(match, int):
            earliest, latest = headlines.first_step_reaching(curves.mean(0), meta.mean())
            assert earliest is not None and earliest <= match and (
                latest is None or match <= latest), (
                f"{label}: the headline says a standard init needs {match} steps to reach "
                f"{meta.mean():.3f} dB; recomputed, its mean curve first gets within "
                f"{NOISE_DB} dB of it at step {earliest} and clearly above at {latest}.")
        else:
            # "not reached": the recorded standard curve stays below the meta PSNR.
            evaluated = [r["psnr_mean"] for r in (metadata["evaluation"].get("rows") or [])
                         if r["init"] == "standard"]
            assert match is None or not evaluated or max(evaluated) < meta.mean(), label


def _per_signal_comparison(label, kind, point, headline, fields, recomputed, match=None):
    """Compares recomputed per-signal values with the saved per-signal file (whose means
    must be the headline's), else with the recorded mean and spread."""
    found = headlines.per_signal_file(kind, point, headline[fields["meta"]],
                                      headline[fields["standard"]])
    assert found is not None, (
        f"{label}: no saved per-signal CSV under docs/ has the headline's means "
        f"({headline[fields['meta']]}, {headline[fields['standard']]}) at {point}.")
    path, saved = found
    for key, values in sorted(recomputed.items()):
        assert key in saved, f"{label}: {path} has no values for {key}."
        expected = saved[key][:len(values)]
        headlines.log_deviation(label, f"{key} per signal", values, expected)
        np.testing.assert_allclose(
            values, expected, rtol=0, atol=NOISE_DB,
            err_msg=f"{label}: {key} recomputed on the first {len(values)} held-out signals "
                    f"vs the values {path} saved")
    return path, saved


@pytest.mark.parametrize("name,version,record", OTHERS,
                         ids=[f"{n}@{v}" for n, v, _ in OTHERS])
def test_views_and_single_view_headlines_reproduce_on_a_subset(name, version, record):
    """CT views and NeRF single-view headlines: the first SUBSET_SIGNALS held-out
    signals recomputed equal the saved per-signal values to within NOISE_DB; the saved
    file's means are the headline's, and the views to match follow from the recorded
    means (the standard init reaches the meta PSNR at `views_to_match`, not before)."""
    from learnit_tf import zoo  # pylint: disable=import-outside-toplevel
    label = f"{name}@{version}"
    headline = record["headline"]
    kind, point, fields = headlines.claim(headline)
    metadata, config = headlines.read_metadata(name, version)
    _check_index_matches_metadata(name, version, record, metadata, config, fields)
    model = zoo.load(name, version, index=headlines.INDEX)
    match = headline.get(fields["match"])
    found = headlines.per_signal_file(kind, point, headline[fields["meta"]],
                                      headline[fields["standard"]])
    if kind == "views":
        recomputed = headlines.reproduce_views(model, metadata, name, point, match)
    else:
        recomputed = headlines.reproduce_single_view(model, metadata, name, point,
                                                     per_signal_path=found and found[0])
    _, saved = _per_signal_comparison(label, kind, point, headline, fields, recomputed)
    means = {key: float(np.mean(values)) for key, values in saved.items()}
    meta_value = headline[fields["meta"]]
    standard_points = sorted(p for init, p in means if init == "standard")
    reached = [p for p in standard_points if means[("standard", p)] >= meta_value]
    if isinstance(match, int):
        assert reached and reached[0] == match, (label, match, means)
    else:  # "> N": never reached at any evaluated point.
        assert not reached and str(match) == f"> {standard_points[-1]}", (label, match, means)
    # The saved means are the recorded report's (where the metadata has one).
    for (init, p), mean in means.items():
        row = (_recorded_row(metadata, init, observations=p) if kind == "views"
               else _recorded_row(metadata, init, steps=p))
        if row is not None:
            assert abs(row["psnr_mean"] - mean) < 1e-5, (label, init, p, row, mean)


@pytest.mark.parametrize("name,version,record", OTHER_METRICS,
                         ids=[f"{n}@{v}" for n, v, _ in OTHER_METRICS])
def test_other_metric_headlines_are_their_metadata_s(name, version, record):
    """Headlines of kinds with another primary metric (e.g. the 3D kind's IoU): the
    index's numbers are those of the init's recorded evaluation, through its kind's
    protocol. (Refitting them is the kind's own test.)"""
    _, _, fields = headlines.claim(record["headline"])
    metadata, config = headlines.read_metadata(name, version)
    from learnit_tf import zoo  # pylint: disable=import-outside-toplevel
    derived = zoo.headline_from_metadata(metadata, config)
    assert fields["meta"] in derived and fields["standard"] in derived, (name, version, derived)
    _check_index_matches_metadata(name, version, record, metadata, config, fields)
