"""Group statistics in the summary: n, mean, std, Student-t intervals, paired differences."""

from __future__ import annotations

import math

import pytest
from scipy import stats

from analysis.group_stats import group_statistics, interval
from analysis.plan import summarize
from analysis.store import Store
from tests._tiny import compute, tiny_study


def test_interval_is_students_t():
    values = [0.81, 0.84, 0.80, 0.86]
    got = interval(values)
    lo, hi = stats.t.interval(0.95, len(values) - 1, loc=sum(values) / 4, scale=stats.sem(values))
    assert got["n"] == 4 and got["ci95"] == pytest.approx([lo, hi])
    assert got["std"] == pytest.approx(stats.tstd(values))
    assert interval([0.5]) == {"n": 1, "mean": 0.5, "std": None, "ci95": None}
    assert interval([])["mean"] is None


def _run(label, method, sparsity, seed, acc, setting=""):
    return {
        "label": label,
        "key": label,
        "method": method,
        "objective": "ce",
        "seed": seed,
        "requested_sparsity": sparsity,
        "setting": {"model.width": int(setting)} if setting else {},
        "setting_label": f"width {setting}" if setting else "",
        "status": "cached",
        "test_acc": acc,
    }


def _pair(method, sparsity, seeds, barrier, repair=False):
    return {
        "status": "cached",
        "pair": "seeds",
        "method": method,
        "sparsity": sparsity,
        "objective": "ce",
        "seeds": list(seeds),
        "setting_label": "",
        "alignment": "weight",
        "repair": repair,
        "barriers": {"test": {"barrier_entezari": barrier}},
    }


def test_paired_differences_against_dense_of_the_same_seed():
    dense = [0.90, 0.92, 0.88]
    pruned = [0.85, 0.86, 0.84]
    runs = [_run(f"d{s}", "dense", 0.0, s, a) for s, a in enumerate(dense)]
    runs += [_run(f"m{s}", "magnitude", 0.9, s, a) for s, a in enumerate(pruned)]
    pairs = [_pair("dense", 0.0, (0, 1), 0.2), _pair("dense", 0.0, (0, 2), 0.3)]
    pairs += [_pair("magnitude", 0.9, (0, 1), 0.5), _pair("magnitude", 0.9, (1, 2), 0.7)]
    groups = group_statistics({"runs": runs, "connectivity": {"pairs": pairs}})
    assert [(g["method"], g["sparsity"], g["seeds"]) for g in groups] == [
        ("dense", 0.0, [0, 1, 2]),
        ("magnitude", 0.9, [0, 1, 2]),
    ]
    acc = groups[1]["metrics"]["test_acc"]
    assert acc["n"] == 3 and acc["mean"] == pytest.approx(sum(pruned) / 3)
    diffs = [p - d for p, d in zip(pruned, dense, strict=True)]
    assert acc["vs_dense"]["mean"] == pytest.approx(sum(diffs) / 3)
    assert acc["vs_dense"]["std"] == pytest.approx(stats.tstd(diffs))
    assert acc["vs_dense"]["excludes_zero"] is True
    assert "vs_dense" not in groups[0]["metrics"]["test_acc"]
    barrier = groups[1]["metrics"]["barrier.weight.test.barrier_entezari"]
    assert barrier["n"] == 2
    # paired by the same seeds only: (0, 1) is in both, (1, 2) has no dense twin
    assert barrier["vs_dense"]["n"] == 1 and barrier["vs_dense"]["mean"] == pytest.approx(0.3)


def test_settings_are_grouped_apart():
    runs = [_run(f"a{s}", "dense", 0.0, s, 0.9, "64") for s in range(2)]
    runs += [_run(f"b{s}", "dense", 0.0, s, 0.8, "32") for s in range(2)]
    groups = group_statistics({"runs": runs})
    assert [(g["setting_label"], g["metrics"]["test_acc"]["mean"]) for g in groups] == [
        ("width 64", pytest.approx(0.9)),
        ("width 32", pytest.approx(0.8)),
    ]
    assert groups[0]["setting"] == {"model.width": 64}


def test_every_cached_metric_has_statistics_and_more_seeds_narrow_the_interval(tmp_path):
    widths = []
    for seeds in ((0, 1), (0, 1, 2, 3)):
        study = tiny_study(seeds=seeds, epochs=2)
        store = Store(tmp_path / "cache")
        compute(study, store, "runs", "robustness")
        doc = summarize(study, store)
        by = {(g["method"], g["sparsity"]): g for g in doc["groups"]}
        dense, pruned = by[("dense", 0.0)], by[("magnitude", 0.8)]
        assert pruned["seeds"] == list(seeds)
        for name in ("test_acc", "test_loss", "mce", "relative_mce", "clean_accuracy"):
            record = pruned["metrics"][name]
            assert record["n"] == len(seeds) and record["ci95"] is not None, name
            assert record["vs_dense"]["n"] == len(seeds), name
        assert any(name.startswith("noise_acc@") for name in dense["metrics"])
        ci = pruned["metrics"]["test_acc"]["ci95"]
        widths.append(ci[1] - ci[0])
        assert math.isfinite(widths[-1])
    assert widths[1] < widths[0]


@pytest.mark.slow  # trains four runs and embeds them with UMAP: about a minute
def test_cka_to_dense_has_group_statistics(tmp_path):
    """The summary's representation records name their dense run, so CKA to dense is grouped."""
    study = tiny_study(seeds=(0, 1), epochs=1)
    store = Store(tmp_path / "cache")
    compute(study, store, "runs", "representations")
    doc = summarize(study, store)
    assert all(r["flips_vs"] == f"dense s{r['seed']}" for r in doc["representations"][0]["runs"])
    by = {(g["method"], g["sparsity"]): g for g in doc["groups"]}
    dense, pruned = by[("dense", 0.0)]["metrics"], by[("magnitude", 0.8)]["metrics"]
    assert dense["cka_to_dense"]["n"] == 2 and dense["cka_to_dense"]["mean"] == pytest.approx(1.0)
    record = pruned["cka_to_dense"]
    assert record["n"] == 2 and 0.0 < record["mean"] <= 1.0 + 1e-6
    assert record["vs_dense"]["n"] == 2 and record["vs_dense"]["mean"] <= 1e-6
