"""Runs grouped by method: the pointwise interval, and figures that draw one line per method."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from dashboard.figures import bands, theme
from dashboard.figures import robustness as fr


def _run(method: str, sparsity: float, seed: int) -> dict:
    label = f"{method} {100 * sparsity:g}% s{seed}" if method != "dense" else f"dense s{seed}"
    return {"label": label, "key": label, "method": method, "requested_sparsity": sparsity,
            "seed": seed, "objective": "ce", "status": "cached"}  # fmt: skip


def _item(run: dict, acc: float) -> dict:
    rows = [{"corruption": "clean", "severity": 0, "accuracy": acc}]
    rows += [{"corruption": "fog", "severity": s, "accuracy": acc - 0.1 * s} for s in (1, 2)]
    noise = [{"sigma": s, "accuracy_mean": acc - s, "accuracy_std": 0.01} for s in (0.0, 0.2)]
    return {"key": run["key"], "corruption": rows, "mce": acc, "relative_mce": acc,
            "ce": {"fog": acc}, "noise": noise}  # fmt: skip


@pytest.fixture
def study():
    runs = [_run(m, s, seed) for m, s in (("dense", 0.0), ("magnitude", 0.9)) for seed in (0, 1, 2)]
    accs = [0.90, 0.92, 0.94, 0.80, 0.81, 0.85]
    return runs, [_item(r, a) for r, a in zip(runs, accs, strict=True)]


def test_interval_is_the_student_t_interval_per_point():
    values = np.array([[1.0, 2.0], [2.0, np.nan], [4.0, 6.0]])
    mean, low, high = bands.interval(values)
    col = values[:, 0]
    expected = stats.t.interval(0.95, 2, loc=col.mean(), scale=stats.sem(col))
    assert mean[0] == pytest.approx(col.mean())
    assert (low[0], high[0]) == pytest.approx(expected)
    assert mean[1] == pytest.approx(4.0)  # the NaN is left out: two values
    assert high[1] - low[1] == pytest.approx(
        2 * stats.t.ppf(0.975, 1) * np.std([2, 6], ddof=1) / 2**0.5
    )
    one = bands.interval(np.array([[3.0, 5.0]]))
    assert list(one[1]) == list(one[2]) == [3.0, 5.0]  # one run: no spread


def test_group_names_say_only_what_varies():
    keys = [bands.GroupKey("", "dense", 0.0, "ce"), bands.GroupKey("", "magnitude", 0.9, "ce")]
    assert [bands.group_name(k, keys) for k in keys] == ["dense", "magnitude 90%"]
    wide = [k._replace(setting=f"width {w}") for k, w in zip(keys, (32, 64), strict=True)]
    assert bands.group_name(wide[1], wide) == "width 64 · magnitude 90%"


def test_grouped_robustness_draws_one_line_per_method_with_its_band(study):
    runs, items = study
    assert bands.several_seeds(runs)
    curves = fr.corruption_curves(runs, items, grouped=True)
    lines = [t for t in curves.data if t.mode == "lines+markers"]
    fills = [t for t in curves.data if t.fill == "toself"]
    assert [t.name for t in lines] == ["dense", "magnitude 90%"]  # one corruption panel
    assert len(fills) == 2
    assert lines[1].y[0] == pytest.approx(100 * np.mean([0.80, 0.81, 0.85]))
    assert "mean over 3 seeds" in curves.layout.title.text
    per_run = fr.corruption_curves(runs, items)
    assert len([t for t in per_run.data if t.mode == "lines+markers"]) == 6
    assert not [t for t in per_run.data if t.fill == "toself"]  # one run: nothing to band

    heat = fr.corruption_heatmap(runs, items, grouped=True)
    assert list(heat.data[0].y) == ["dense", "magnitude 90%"]
    assert heat.data[0].z[1][0] == pytest.approx(100 * (np.mean([0.80, 0.81, 0.85]) - 0.15))

    bars = fr.mce_bars(runs, items, grouped=True)
    mce = bars.data[0]
    assert list(mce.x) == ["dense", "magnitude 90%"] and mce.error_y.visible
    half = stats.t.ppf(0.975, 2) * stats.sem([80, 81, 85])
    assert mce.error_y.array[1] == pytest.approx(half)

    noise = fr.noise_curves(runs, items, grouped=True)
    assert "95% interval over seeds" in noise.layout.title.text
    single = fr.noise_curves(runs[:1], items[:1])
    band = next(t for t in single.data if t.fill == "toself")
    assert max(band.y) == pytest.approx(100 * 0.90 + 1.0)  # ±1 std over draws


def _luma(hex_color: str) -> float:
    r, g, b = (int(hex_color[i : i + 2], 16) for i in (1, 3, 5))
    return 0.299 * r + 0.587 * g + 0.114 * b


def test_a_sparsity_ladder_of_one_method_deepens_in_its_hue():
    ladder = [bands.GroupKey("", "magnitude", s, "ce") for s in (0.5, 0.8, 0.9, 0.95)]
    dense = bands.GroupKey("", "dense", 0.0, "ce")
    keys = [dense, *ladder]
    colors = [bands.group_color(k, keys) for k in ladder]
    assert len(set(colors)) == 4
    lumas = [_luma(c) for c in colors]
    assert lumas == sorted(lumas, reverse=True)  # sparser: darker
    assert lumas[0] - lumas[-1] > 60  # apart in greyscale too
    blue = theme.method_color("magnitude")
    assert bands.group_color(ladder[2], [dense, ladder[2]]) == blue  # one sparsity: its colour
    assert bands.group_color(dense, keys) == theme.method_color("dense")
    assert bands.shade("#0072B2", 0.0) == "#0072B2"
    assert bands.shade("#0072B2", -1.0) == "#FFFFFF" and bands.shade("#0072B2", 1.0) == "#000000"


def test_figures_tell_sparsities_of_one_method_apart_by_colour():
    runs = [_run("magnitude", s, seed) for s in (0.5, 0.9) for seed in (0, 1)]
    items = [_item(r, a) for r, a in zip(runs, (0.9, 0.91, 0.8, 0.82), strict=True)]
    for grouped in (True, False):
        for fig in (
            fr.noise_curves(runs, items, grouped=grouped),
            fr.corruption_curves(runs, items, grouped=grouped),
        ):
            lines = [t for t in fig.data if t.mode == "lines+markers" and t.showlegend is not False]
            by_sparsity = {"50%" in t.name: t.line.color for t in lines}
            assert len(set(by_sparsity.values())) == 2, fig.layout.title.text
    bars = fr.mce_bars(runs, items, grouped=True).data[0]
    assert len(set(bars.marker.color)) == 2
