"""The sweep figure: a metric against sparsity or an axis, per method, with 95% bands."""

from __future__ import annotations

import pytest

from dashboard.figures import sweeps as fs


def _group(method, sparsity, width, mean, ci=None, metric="test_acc"):
    return {
        "method": method,
        "sparsity": sparsity,
        "objective": "ce",
        "setting": {"model.width": width} if width else {},
        "setting_label": f"width {width}" if width else "",
        "seeds": [0, 1, 2],
        "metrics": {metric: {"n": 3, "mean": mean, "std": 0.01, "ci95": ci}},
    }


def summary(groups, axes=None):
    return {"study": {"axes": axes or {}}, "groups": groups}


def test_a_width_sweep_draws_a_line_per_method_with_bands():
    b = "barrier.weight.test.barrier_entezari"
    groups = [
        _group(m, s, w, 0.5 / w, [0.4 / w, 0.6 / w], metric=b)
        for w in (32, 128, 512)
        for m, s in (("dense", 0.0), ("magnitude", 0.9))
    ]
    doc = summary(groups, {"model.width": [32, 128, 512]})
    assert fs.axes_of(doc) == ["model.width"]
    fig = fs.metric_vs_axis(doc, [b], "model.width")
    lines = [t for t in fig.data if t.mode == "lines+markers"]
    assert sorted(t.name for t in lines) == ["dense", "magnitude (90%)"]
    assert list(lines[0].x) == [32, 128, 512]
    assert sum(t.fill == "toself" for t in fig.data) == 2  # one band per line
    assert fig.layout.xaxis.type == "log"  # 32 to 512 spans 16x
    assert "against width" in fig.layout.title.text


def test_a_sparsity_ladder_uses_a_log_density_axis_labelled_in_sparsity():
    levels = [0.5, 0.8, 0.9, 0.95, 0.98]
    groups = [_group("dense", 0.0, None, 0.9, [0.88, 0.92])]
    groups += [_group("magnitude", s, None, 0.9 - s / 10, [0.8, 0.9]) for s in levels]
    doc = summary(groups)
    assert fs.axes_of(doc) == ["sparsity"]
    fig = fs.metric_vs_axis(doc, ["test_acc"], "sparsity")
    assert fig.layout.xaxis.type == "log" and fig.layout.xaxis.autorange == "reversed"
    assert list(fig.layout.xaxis.ticktext) == ["50%", "80%", "90%", "95%", "98%"]
    dense = next(t for t in fig.data if t.name == "dense" and t.mode == "lines+markers")
    assert len(dense.x) == len(levels)  # the reference spans the ladder


def test_naive_and_aligned_barriers_together_are_told_by_line_style():
    metrics = ["barrier.naive.test.barrier_entezari", "barrier.weight.test.barrier_entezari"]
    groups = []
    for w in (32, 512):
        g = _group("dense", 0.0, w, 1.0, metric=metrics[0])
        g["metrics"][metrics[1]] = {"n": 1, "mean": 0.2, "std": None, "ci95": None}
        groups.append(g)
    fig = fs.metric_vs_axis(summary(groups, {"model.width": [32, 512]}), metrics, "model.width")
    lines = {t.name: t.line.dash for t in fig.data if t.mode == "lines+markers"}
    assert lines == {"dense · naive": "solid", "dense · weight": "dash"}
    assert not any(t.fill == "toself" for t in fig.data)  # one member: no band


def test_names_of_metrics():
    assert fs.metric_name("barrier.weight+repair.test.barrier_entezari") == (
        "entezari barrier (weight + REPAIR, test)"
    )
    assert fs.metric_name("noise_acc@0.1").endswith("(sigma 0.1)")


def test_a_lone_point_shows_its_interval_as_an_error_bar():
    groups = [_group("dense", 0.0, None, 0.9, [0.88, 0.93]), _group("magnitude", 0.9, None, 0.85)]
    groups.append(_group("magnitude", 0.5, None, 0.88))
    fig = fs.metric_vs_axis(summary(groups), ["test_acc"], "sparsity")
    dense = next(t for t in fig.data if t.name == "dense" and t.mode == "lines+markers")
    assert dense.error_y.array[0] == pytest.approx(3.0)  # in percent, as every page
    assert dense.error_y.arrayminus[0] == pytest.approx(2.0)
    assert fig.layout.yaxis.title.text == "test accuracy (%)"
    pruned = next(t for t in fig.data if t.name == "magnitude" and t.mode == "lines+markers")
    assert pruned.error_y.visible is False  # no interval: one seed


def test_one_sparsity_draws_a_dot_per_method():
    groups = [_group("dense", 0.0, None, 0.9, [0.88, 0.93]), _group("snip", 0.9, None, 0.85)]
    fig = fs.metric_vs_axis(summary(groups), ["test_acc"], "sparsity")
    assert [t.x[0] for t in fig.data] == ["dense", "snip"]
    assert "at 90% sparsity" in fig.layout.title.text


def test_methods_at_one_sparsity_stand_apart_and_accuracy_stays_in_0_100():
    groups = [_group("dense", 0.0, None, 0.98, [0.93, 1.04])]
    groups += [_group(m, s, None, 0.9, [0.85, 0.95]) for m in ("snip", "gmp") for s in (0.5, 0.8)]
    fig = fs.metric_vs_axis(summary(groups), ["test_acc"], "sparsity")
    lines = {t.name: t for t in fig.data if t.mode == "lines+markers"}
    assert lines["snip"].x[0] != lines["gmp"].x[0]  # dodged apart
    assert lines["snip"].x[0] == pytest.approx(0.5, rel=0.05)
    assert lines["dense"].line.dash == "dot"
    assert lines["dense"].error_y.array[0] == pytest.approx(100 - 98)  # clipped at 100%
