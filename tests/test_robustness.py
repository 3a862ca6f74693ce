"""Robustness: corruption tables, mCE / relative mCE, weight-perturbation curves, the summary.

One tiny digits study (dense and magnitude 80%, seeds 0 and 1) is trained and its
robustness part computed once per module (the corruption suite dominates: ~20 s).
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from analysis import api
from analysis.corruptions import GRAY_CORRUPTIONS, SEVERITIES
from analysis.data import eval_subset, load
from analysis.errors import SpecError
from analysis.plan import summarize
from analysis.robustness import (
    CorruptedSpec,
    corruption_errors,
    mce,
    perturb,
    robustness_specs,
)
from analysis.specs import DataSpec, spec_key
from analysis.store import Store
from tests._tiny import compute, copy_entries, tiny_study, tiny_text

ROB = {"subset_size": 200, "sigmas": [0.0, 0.2, 0.5], "trials": 2}


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """(study, store) with the runs and the robustness part computed."""
    study = tiny_study(robustness=ROB)
    store = Store(tmp_path_factory.mktemp("rob") / "cache")
    compute(study, store, "runs", "robustness")
    return study, store


@pytest.fixture(scope="module")
def section(tiny):
    """The ``robustness`` section of the summary, by run label."""
    study, store = tiny
    return {item["label"]: item for item in summarize(study, store)["robustness"]}


@pytest.fixture(scope="module")
def docs(tiny):
    """robustness.json of every run, by run label."""
    study, store = tiny
    return {
        spec.run.label: api.get(spec, store=store, compute=False).read("robustness.json")
        for spec in robustness_specs(study)
    }


def clean_subset(size: int = 200, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """The fixed clean digits test subset, drawn here independently of analysis.robustness."""
    data = load(DataSpec(name="digits"))
    idx = eval_subset(min(size, len(data.test_x)), len(data.test_x), seed)
    return data.test_x[idx], data.test_y[idx]


# ---------------------------------------------------------------------------
# the summary


def test_summary_fields(section):
    assert list(section) == ["dense s0", "magnitude 80% s0", "dense s1", "magnitude 80% s1"]
    expected = {("clean", 0)} | {(c, s) for c in GRAY_CORRUPTIONS for s in SEVERITIES}
    for label, item in section.items():
        assert item["status"] == "cached"
        rows = item["corruption"]
        assert len(rows) == 15 * 5 + 1
        assert {(r["corruption"], r["severity"]) for r in rows} == expected
        assert all(0.0 <= r["accuracy"] <= 1.0 and math.isfinite(r["loss"]) for r in rows)
        assert set(item["ce"]) == set(GRAY_CORRUPTIONS)
        for key in ("mce", "relative_mce", "clean_accuracy", "mean_corruption_accuracy"):
            assert isinstance(item[key], float) and math.isfinite(item[key]), (label, key)
        assert [p["sigma"] for p in item["noise"]] == ROB["sigmas"]
        for point in item["noise"]:
            assert set(point) == {"sigma", "accuracy_mean", "accuracy_std", "loss_mean", "loss_std"}
            assert point["accuracy_std"] >= 0 and point["loss_std"] >= 0
    json.dumps(list(section.values()), allow_nan=False)  # what `show --json` prints


def test_dense_is_its_own_baseline(section):
    for seed in (0, 1):
        dense = section[f"dense s{seed}"]
        assert dense["mce"] == 1.0 and dense["relative_mce"] == 1.0
        assert set(dense["ce"].values()) == {1.0}
    # a pruned run is measured against the dense run of its own seed
    for seed in (0, 1):
        pruned, dense = section[f"magnitude 80% s{seed}"], section[f"dense s{seed}"]
        m, rm, ce = mce(
            corruption_errors(pruned["corruption"]), corruption_errors(dense["corruption"])
        )
        assert (pruned["mce"], pruned["relative_mce"], pruned["ce"]) == (m, rm, ce)
        assert pruned["mce"] != 1.0


def test_mce_follows_hendrycks():
    errors = {"clean": {0: 0.1}, "fog": {1: 0.2, 2: 0.4}, "zigzag": {1: 0.3, 2: 0.5}}
    base = {"clean": {0: 0.05}, "fog": {1: 0.1, 2: 0.3}, "zigzag": {1: 0.2, 2: 0.2}}
    m, rm, ce = mce(errors, base)
    # CE_c = sum_s E_sc / sum_s E^base_sc
    assert ce == pytest.approx({"fog": 0.6 / 0.4, "zigzag": 0.8 / 0.4})
    assert m == pytest.approx((1.5 + 2.0) / 2)
    # relative: sum_s (E_sc - E_clean) / sum_s (E^base_sc - E^base_clean)
    rel_fog = (0.1 + 0.3) / (0.05 + 0.25)
    rel_zig = (0.2 + 0.4) / (0.15 + 0.15)
    assert rm == pytest.approx((rel_fog + rel_zig) / 2)
    assert mce(base, base)[:2] == (1.0, 1.0)
    # a corruption that does not hurt the baseline at all has no relative CE: left out
    flat = {**base, "zigzag": {1: 0.05, 2: 0.05}}
    _, rm, _ = mce(errors, flat)
    assert rm == pytest.approx(rel_fog)
    # only the severities the model was evaluated at count
    assert mce({"clean": {0: 0.0}, "fog": {3: 0.5}}, {"clean": {0: 0.0}, "fog": {3: 0.25, 5: 0.9}})[
        0
    ] == pytest.approx(2.0)


def test_corruption_errors():
    rows = [
        {"corruption": "clean", "severity": 0, "accuracy": 0.9},
        {"corruption": "fog", "severity": 1, "accuracy": 0.75},
        {"corruption": "fog", "severity": 2, "accuracy": 0.5},
    ]
    assert corruption_errors(rows) == {
        "clean": {0: pytest.approx(0.1)},
        "fog": {1: 0.25, 2: 0.5},
    }


# ---------------------------------------------------------------------------
# corruptions


def test_corruption_hurts_more_with_severity(section):
    for label, item in section.items():
        by = {s: [] for s in range(6)}
        for r in item["corruption"]:
            by[r["severity"]].append(r["accuracy"])
        means = [float(np.mean(by[s])) for s in range(6)]
        assert all(a >= b for a, b in zip(means[1:], means[2:], strict=False)), (label, means)
        assert means[1] < means[0] == item["clean_accuracy"], (label, means)
        assert item["mean_corruption_accuracy"] == pytest.approx(np.mean(sum(by.values(), [])[1:]))


def test_clean_row_is_the_clean_accuracy_exactly(tiny, docs):
    study, store = tiny
    x, y = clean_subset()
    for run in study.runs():
        model = api.get(run, store=store, compute=False).model()
        with torch.no_grad():
            acc = int((model(x).argmax(1) == y).sum()) / len(y)
        doc = docs[run.label]
        (clean,) = [r for r in doc["corruption"] if r["severity"] == 0]
        assert clean["corruption"] == "clean"
        assert clean["accuracy"] == acc == doc["clean_accuracy"]


def test_stored_suite_is_the_subset(tiny):
    study, store = tiny
    (corrupted,) = {spec.corrupted for spec in robustness_specs(study)}
    arrays = api.get(corrupted, store=store, compute=False).read("corrupted.npz")
    x, y = clean_subset()
    assert arrays["images"].shape == (15, 5, 200, 1, 28, 28) and arrays["images"].dtype == np.uint8
    np.testing.assert_array_equal(arrays["labels"], y.numpy())
    np.testing.assert_array_equal(arrays["clean"], (x * 255).round().to(torch.uint8).numpy())
    # every corruption changes the images at every severity
    clean = arrays["clean"][None, None].astype(np.int16)
    changed = (arrays["images"].astype(np.int16) != clean).reshape(15, 5, -1).any(-1)
    assert changed.all()


def test_suite_is_cached_once_per_dataset(tiny):
    study, store = tiny
    specs = robustness_specs(study)
    assert len(specs) == 4
    assert len({spec_key(s.corrupted) for s in specs}) == 1
    assert len(list(store.root.glob("corrupted/*/*/meta.json"))) == 1
    assert len(list(store.root.glob("robustness/*/*/meta.json"))) == 4
    # other analysis settings that do not touch the suite keep its key
    other = tiny_study(robustness={**ROB, "sigmas": [0.1], "trials": 3})
    assert {spec_key(s.corrupted) for s in robustness_specs(other)} == {
        spec_key(specs[0].corrupted)
    }


def test_chosen_corruptions_and_severities():
    study = tiny_study(robustness={"corruptions": ["fog", "zigzag"], "severities": [1, 5]})
    (c,) = {s.corrupted for s in robustness_specs(study)}
    assert isinstance(c, CorruptedSpec) and c.names == ("fog", "zigzag") and c.severities == (1, 5)
    (c_all,) = {s.corrupted for s in robustness_specs(tiny_study())}
    assert c_all.names == GRAY_CORRUPTIONS and c_all.severities == SEVERITIES


# ---------------------------------------------------------------------------
# weight perturbation


def test_sigma_zero_is_the_clean_accuracy(section, docs):
    for label, item in section.items():
        zero = [r for r in docs[label]["noise"] if r["sigma"] == 0.0]
        assert len(zero) == ROB["trials"]
        assert {r["accuracy"] for r in zero} == {item["clean_accuracy"]}
        assert item["noise"][0]["accuracy_mean"] == item["clean_accuracy"]
        assert item["noise"][0]["accuracy_std"] == 0.0
        assert item["noise"][-1]["accuracy_mean"] < item["clean_accuracy"], label
        assert item["noise"][-1]["loss_mean"] > item["noise"][0]["loss_mean"], label


def test_pruned_weights_stay_zero_in_the_store(tiny, docs):
    study, store = tiny
    for label, doc in docs.items():
        assert len(doc["noise"]) == len(ROB["sigmas"]) * ROB["trials"]
        assert all(r["pruned_stay_zero"] is True for r in doc["noise"]), label
    pruned = next(r for r in study.runs() if r.sparsity.method == "magnitude")
    run = api.get(pruned, store=store, compute=False)
    assert run.masks and any((~m).any() for m in run.masks.values())
    names = [n for n, _ in run.model().named_parameters()]
    noisy = perturb(run.state, names, 0.5, torch.Generator().manual_seed(0))
    for name, mask in run.masks.items():
        assert (noisy[name][~mask] == 0).all() and (
            noisy[name][mask] != run.state[name][mask]
        ).any()


@settings(max_examples=60, deadline=None)
@given(
    shape=st.lists(st.integers(1, 6), min_size=1, max_size=3),
    zero_frac=st.floats(0.0, 1.0),
    sigma=st.floats(0.0, 10.0, allow_nan=False),
    seed=st.integers(0, 2**31 - 1),
)
def test_perturb_keeps_zeros_and_is_seeded(shape, zero_frac, sigma, seed):
    g = torch.Generator().manual_seed(seed)
    w = torch.randn(shape, generator=g) * 3
    w[torch.rand(shape, generator=g) < zero_frac] = 0.0
    b = torch.randn(shape[-1], generator=g)
    state = {"w": w, "b": b, "buffer": torch.ones(2)}
    out = perturb(state, ["w", "b"], sigma, torch.Generator().manual_seed(seed))
    again = perturb(state, ["w", "b"], sigma, torch.Generator().manual_seed(seed))
    assert (out["w"][w == 0] == 0).all()
    assert torch.equal(out["w"], again["w"]) and torch.equal(out["b"], again["b"])
    assert out["buffer"] is state["buffer"]  # only the named tensors are touched
    assert torch.equal(state["w"], w)  # the input is not modified
    if sigma == 0.0:
        assert torch.equal(out["w"], w) and torch.equal(out["b"], b)


def test_noise_is_seeded(tiny, docs, tmp_path):
    """Recomputing one run's robustness in a fresh store gives the same curve, draw for draw."""
    study, store = tiny
    spec = robustness_specs(study)[1]  # magnitude 80% s0
    fresh = Store(tmp_path / "cache")
    copy_entries([spec.run, spec.corrupted], store, fresh)
    doc = api.get(spec, store=fresh).read("robustness.json")
    assert doc == docs[spec.run.label]
    # and the trials are different draws
    losses = {(r["sigma"], r["trial"]): r["loss"] for r in doc["noise"]}
    assert losses[(0.5, 0)] != losses[(0.5, 1)]
    # a different noise seed gives a different curve
    other = type(spec)(
        run=spec.run,
        corrupted=spec.corrupted,
        sigmas=spec.sigmas,
        trials=spec.trials,
        noise_seed=1,
    )
    doc1 = api.get(other, store=fresh).read("robustness.json")
    assert doc1["corruption"] == doc["corruption"]
    assert [r["loss"] for r in doc1["noise"] if r["sigma"] > 0] != [
        r["loss"] for r in doc["noise"] if r["sigma"] > 0
    ]


# ---------------------------------------------------------------------------
# bad input


def test_unknown_corruption_lists_the_suite():
    with pytest.raises(SpecError) as err:  # refused when the study loads
        tiny_study(robustness={"corruptions": ["not_a_corruption"]})
    msg = str(err.value)
    assert err.value.param.endswith("corruptions") and "'not_a_corruption'" in msg
    for name in GRAY_CORRUPTIONS:
        assert f"'{name}'" in msg
    assert "'frost'" not in msg  # the colour suite is not offered for a grayscale dataset


@pytest.mark.parametrize(
    ("table", "field"),
    [
        ({"severities": [7]}, "severities"),
        ({"severities": [0]}, "severities"),
        ({"severities": []}, "severities"),
        ({"sigmas": []}, "sigmas"),
        ({"sigmas": [-0.1]}, "sigmas"),
        ({"trials": 0}, "trials"),
        ({"subset_size": 0}, "subset_size"),
        ({"sigma": [0.1]}, "sigma"),
    ],
)
def test_bad_settings_name_the_field(table, field):
    with pytest.raises(SpecError) as err:
        tiny_study(robustness=table)
    assert err.value.param.endswith(field) and f"'{err.value.param}'" in str(err.value)


def test_bool_severity_is_refused():
    with pytest.raises(SpecError) as err:
        tiny_study(robustness={"severities": [True]})
    assert err.value.param.endswith("severities")


# ---------------------------------------------------------------------------
# the command line


def test_cli_compute_only_robustness_and_show_json(tiny, tmp_path, capsys):
    from dashboard.cli import main

    study, store = tiny
    path = tmp_path / "tiny.toml"
    path.write_text(tiny_text(robustness=ROB))
    cache = str(store.root)
    # the study read from the file asks for exactly what was computed in-process
    assert main(["compute", str(path), "--only", "robustness", "--cache-dir", cache, "-q"]) == 0
    assert "0 computed, 4 cached, 0 failed" in capsys.readouterr().out
    assert main(["show", str(path), "--cache-dir", cache, "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert {"schema", "study", "counts", "runs", "representations", "robustness"} <= set(doc)
    assert [r["label"] for r in doc["robustness"]] == [r.label for r in study.runs()]
    for item in doc["robustness"]:
        assert item["status"] == "cached"
        assert {
            "label",
            "key",
            "status",
            "mce",
            "relative_mce",
            "ce",
            "clean_accuracy",
            "mean_corruption_accuracy",
            "corruption",
            "noise",
        } <= set(item)
    (rep,) = doc["representations"]
    assert rep["status"] == "missing" and set(rep) == {
        "objective",
        "setting_label",
        "status",
        "key",
    }
    # before any robustness result exists, every record says missing
    empty = str(tmp_path / "empty")
    assert main(["show", str(path), "--cache-dir", empty, "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert {item["status"] for item in doc["robustness"]} == {"missing"}
    assert all("mce" not in item for item in doc["robustness"])
