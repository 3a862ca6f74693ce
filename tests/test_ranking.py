"""The ranking table: methods x metrics at one sparsity, intervals, paired differences."""

from __future__ import annotations

import pytest

from dashboard.figures import ranking as fr


def _g(method, sparsity, mean, diff=None, excludes=None, setting=""):
    record = {"n": 3, "mean": mean, "std": 0.01, "ci95": [mean - 0.01, mean + 0.01]}
    if diff is not None:
        record["vs_dense"] = {
            "n": 3,
            "mean": diff,
            "ci95": [diff - 0.005, diff + 0.005],
            "excludes_zero": excludes,
        }
    return {
        "method": method,
        "sparsity": sparsity,
        "setting_label": setting,
        "setting": {},
        "objective": "ce",
        "seeds": [0, 1, 2],
        "metrics": {"test_acc": record},
    }


SUMMARY = {
    "groups": [
        _g("dense", 0.0, 0.90),
        _g("magnitude", 0.9, 0.88, -0.02, True),
        _g("random", 0.9, 0.85, -0.05, True),
        _g("snip", 0.9, 0.899, -0.001, False),
        _g("magnitude", 0.5, 0.9, 0.0, False),
    ]
}


def test_one_row_per_method_at_the_sparsity_with_dense_first():
    table = fr.ranking_table(SUMMARY, 0.9, ["test_acc"])
    assert list(table["Method"]) == ["dense", "magnitude", "random", "snip"]
    name = "test accuracy (%)"  # in percent, as every page
    assert table[name].tolist() == pytest.approx([90.0, 88.0, 85.0, 89.9])
    assert table[f"{name}: vs dense"].tolist()[1:] == pytest.approx([-2.0, -5.0, -0.1])
    assert table[f"{name}: sig."].tolist() == ["", "*", "*", ""]
    assert table[f"{name}: 95%"][1] == "87 to 89"
    assert fr.sparsities(SUMMARY) == [0.5, 0.9]


def test_numbers_for_people_and_the_direction_of_better():
    assert [fr.human(v) for v in (11120.0, 2.3e6, 0.87312, 123.4, None)] == [
        "11.1k",
        "2.3M",
        "0.8731",
        "123.4",
        "—",
    ]
    assert fr.lower_is_better("mce") and fr.lower_is_better("barrier.weight.test.barrier_entezari")
    assert not fr.lower_is_better("test_acc")
    available = ["test_acc", "mce", "noise_acc@0.05", "noise_acc@0.2", "knn_acc"]
    assert fr.default_metrics(available) == ["test_acc", "mce", "noise_acc@0.2"]
