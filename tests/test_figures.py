"""Figure builders: the traces each one draws from a small synthetic summary, and the themes."""

from __future__ import annotations

import plotly.graph_objects as go
import pytest

from dashboard.figures import (
    NORMAL,
    PRESENTATION,
    accuracy_vs_sparsity,
    layer_sparsity_heatmap,
    runs_table,
    status_table,
    training_curves,
)
from dashboard.figures.theme import METHOD_COLORS, OKABE_ITO, method_color, method_symbol

LAYERS = ("body.fc0.weight", "head.weight")


def record(method: str, sparsity: float, seed: int, acc: float, **extra) -> dict:
    """A cached run record shaped like ``prunescope show --json``'s."""
    label = f"{method} {100 * sparsity:g}% s{seed}" if method != "dense" else f"dense s{seed}"
    return {
        "label": label,
        "key": f"{method}-{sparsity}-{seed}",
        "method": method,
        "objective": "ce",
        "seed": seed,
        "requested_sparsity": sparsity,
        "status": "cached",
        "achieved_sparsity": sparsity + 0.001 * seed,
        "sparsity_unit": "weights",
        "layer_sparsity": {name: sparsity for name in LAYERS},
        "test_acc": acc,
        "test_loss": 1.0 - acc,
        "nonzero_params": int(1000 * (1 - sparsity)),
        **extra,
    }


@pytest.fixture
def runs() -> list[dict]:
    """Dense and magnitude (two levels) over two seeds, plus one missing run."""
    out = []
    for seed in (0, 1):
        out.append(record("dense", 0.0, seed, 0.97 + 0.01 * seed))
        out.append(record("magnitude", 0.5, seed, 0.96))
        out.append(record("magnitude", 0.9, seed, 0.90 + 0.02 * seed))
    out.append(
        {
            "label": "snip 90% s0",
            "key": "snip",
            "method": "snip",
            "objective": "ce",
            "seed": 0,
            "requested_sparsity": 0.9,
            "status": "missing",
        }
    )
    return out


def test_runs_table_has_a_row_per_run_in_percent(runs):
    frame = runs_table(runs)
    assert len(frame) == len(runs)
    assert list(frame.columns)[:3] == ["Run", "Method", "Seed"]  # one objective: no column
    row = frame.set_index("Run").loc["magnitude 90% s1"]
    assert row["Requested sparsity (%)"] == pytest.approx(90.0)
    assert row["Test accuracy (%)"] == pytest.approx(92.0)
    missing = frame.set_index("Run").loc["snip 90% s0"]
    assert missing["Status"] == "missing" and missing.isna()["Test accuracy (%)"]


def test_runs_table_says_failures_and_channel_units(runs):
    runs[1] = dict(runs[1], status="failed", error="RuntimeError: boom")
    runs[2] = dict(runs[2], sparsity_unit="channels")
    frame = runs_table(runs)
    assert frame["Status"].iloc[1] == "failed: RuntimeError: boom"
    assert "Sparsity of" in frame and frame["Sparsity of"].iloc[2] == "channels"
    runs[0] = dict(runs[0], objective="supcon")
    assert "Objective" in runs_table(runs)


def test_status_table():
    frame = status_table([{"label": "a", "kind": "run", "status": "failed", "error": "x"}])
    assert frame.to_dict("records") == [
        {"Result": "a", "Kind": "run", "Status": "failed", "Reason": "x"}
    ]


def test_accuracy_vs_sparsity_traces(runs):
    fig = accuracy_vs_sparsity(runs)
    assert isinstance(fig, go.Figure)
    names = [t.name for t in fig.data]
    assert names[0] == "dense range" and names[1].startswith("dense (mean")
    mean = next(t for t in fig.data if t.name == "magnitude")
    assert mean.mode == "lines+markers"
    assert list(mean.x) == pytest.approx([50.05, 90.05])  # mean achieved sparsity per level
    assert list(mean.y) == pytest.approx([96.0, 91.0])  # mean accuracy across seeds
    seeds = next(t for t in fig.data if t.name == "magnitude seeds")
    assert len(seeds.x) == 4 and "magnitude 90% s1" in [c[0] for c in seeds.customdata]
    band = fig.data[0]
    assert min(band.y) == pytest.approx(97.0) and max(band.y) == pytest.approx(98.0)
    assert not any(t.name.startswith("snip") for t in fig.data)  # missing runs are not drawn
    assert mean.line.color == METHOD_COLORS["magnitude"]
    assert "%" in fig.layout.xaxis.title.text and "%" in fig.layout.yaxis.title.text
    assert fig.layout.title.text


def test_accuracy_vs_sparsity_single_seed_has_no_seed_markers(runs):
    fig = accuracy_vs_sparsity([r for r in runs if r["seed"] == 0])
    assert "magnitude seeds" not in [t.name for t in fig.data]
    assert next(t for t in fig.data if t.name == "magnitude").customdata[0][0] == "magnitude 50% s0"


def test_layer_sparsity_heatmap_is_runs_by_layers(runs):
    fig = layer_sparsity_heatmap(runs)
    (heat,) = fig.data
    assert isinstance(heat, go.Heatmap)
    assert list(heat.x) == ["body.fc0", "head"]
    assert len(heat.y) == 6 and heat.y[2] == "magnitude 90% s0"
    assert heat.z[2] == pytest.approx([90.0, 90.0])
    assert (heat.zmin, heat.zmax) == (0, 100)


def test_training_curves_one_line_per_run(runs):
    histories = {
        r["key"]: [
            {"epoch": e, "test_acc": r["test_acc"] - 0.1 / e, "test_loss": 1 / e} for e in (1, 2, 3)
        ]
        for r in runs
        if r["status"] == "cached"
    }
    fig = training_curves(runs, histories, "acc")
    assert len(fig.data) == 6
    assert [t.showlegend for t in fig.data].count(True) == 2  # one legend entry per method
    by_label = {t.customdata[0][0]: t for t in fig.data}
    assert list(by_label["dense s1"].y) == pytest.approx([88.0, 93.0, 94.666667])
    assert by_label["dense s0"].line.dash != by_label["dense s1"].line.dash
    loss = training_curves(runs, histories, "loss")
    assert list(loss.data[0].y) == pytest.approx([1.0, 0.5, 1 / 3])
    assert "loss" in loss.layout.yaxis.title.text.lower()


def test_presentation_theme_is_larger(runs):
    for build in (accuracy_vs_sparsity, layer_sparsity_heatmap):
        normal, big = build(runs, NORMAL), build(runs, PRESENTATION)
        assert big.layout.font.size > normal.layout.font.size
        assert big.layout.title.font.size > normal.layout.title.font.size
        assert big.layout.plot_bgcolor == "#FFFFFF"
    normal = accuracy_vs_sparsity(runs, NORMAL)
    big = accuracy_vs_sparsity(runs, PRESENTATION)
    assert big.data[-1].line.width > normal.data[-1].line.width


def test_method_colours_are_okabe_ito_and_stable():
    palette = set(OKABE_ITO.values())
    assert method_color("magnitude") in palette and method_color("lottery") in palette
    assert len(set(METHOD_COLORS.values())) == len(METHOD_COLORS)  # every method its own colour
    assert method_color("new-method") == method_color("new-method")  # stable, not hash()-salted
    assert method_symbol("dense") != method_symbol("magnitude")


def test_empty_input_gives_empty_figures():
    assert len(accuracy_vs_sparsity([]).data) == 0
    assert len(training_curves([], {}).data) == 0
    assert len(runs_table([])) == 0
