"""Figure builders: the traces each one draws from a small synthetic summary, and the themes."""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
import pytest

from dashboard.figures import (
    NORMAL,
    PRESENTATION,
    accuracy_vs_sparsity,
    layer_sparsity_heatmap,
    runs_table,
    status_table,
)
from dashboard.figures.theme import METHOD_COLORS, OKABE_ITO, method_color, method_symbol
from dashboard.figures.timeline import training_timeline

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
    assert len(training_timeline([], {}).data) == 0
    assert len(runs_table([])) == 0


# -- representations and robustness ------------------------------------------------

from dashboard.figures import representations as rfig  # noqa: E402
from dashboard.figures import robustness as bfig  # noqa: E402


@pytest.fixture
def rep() -> dict:
    """A representations entry of 3 runs (dense, two pruned) over 12 samples of 3 classes."""
    rng = np.random.default_rng(0)
    labels = np.arange(12) % 3
    preds = np.stack([labels, labels, labels.copy()])
    preds[1, :4] = (labels[:4] + 1) % 3  # run 1 loses samples 0-3
    runs = [
        {"label": name, "method": method, "flips_vs": "dense s0",
         "geometry": {"angle": [10.0, 20, 30], "norm": [1.0, 2, 3], "margin": [0.5, 1, 2]}}
        for name, method in (("dense s0", "dense"), ("magnitude 50% s0", "magnitude"),
                             ("magnitude 90% s0", "magnitude"))
    ]  # fmt: skip
    return {
        "embedding_2d": rng.normal(size=(3, 12, 2)) * [[[1.0]], [[3.0]], [[2.0]]],
        "embedding_3d": rng.normal(size=(3, 12, 3)),
        "preds": preds,
        "labels": labels,
        "indices": np.arange(100, 112),
        "images": rng.integers(0, 255, size=(12, 1, 8, 8), dtype=np.uint8),
        "summary": {
            "runs": runs,
            "labels_of_runs": [r["label"] for r in runs],
            "cka": [[1.0, 0.8, 0.6], [0.8, 1.0, 0.7], [0.6, 0.7, 1.0]],
            "classes": ["zero", "one", "two"],
            "reference": "dense s0",
        },
    }


def test_embedding_scatter_shares_one_frame(rep):
    fig = rfig.embedding_scatter(rep, [0, 1, 2], "class")
    assert len(fig.data) == 9  # 3 classes x 3 panels
    assert [t.showlegend for t in fig.data].count(True) == 3  # one legend entry per class
    ranges = {tuple(fig.layout[f"xaxis{i or ''}"].range) for i in (0, 2, 3)}
    assert len(ranges) == 1  # same x range in every panel
    lo, hi = next(iter(ranges))
    assert lo <= rep["embedding_2d"][..., 0].min() and hi >= rep["embedding_2d"][..., 0].max()
    assert fig.data[0].marker.color == rfig.CLASS_COLORS[0]
    assert fig.data[0].customdata[0][1] == 100 and "sample #" in fig.data[0].hovertemplate


def test_embedding_scatter_flips_and_3d(rep):
    flips = rfig.embedding_scatter(rep, [1], "flip")
    lost = next(t for t in flips.data if t.name.startswith("lost"))
    assert [c[1] for c in lost.customdata] == [100, 101, 102, 103]
    both = rfig.embedding_scatter(rep, [0, 1], "flip")  # dense loses nothing against itself
    assert [t.name for t in both.data if t.showlegend] == ["right in both", lost.name]
    correct = rfig.embedding_scatter(rep, [1, 2], "correct")
    assert {t.name for t in correct.data} == {"correct", "wrong"}
    cube = rfig.embedding_scatter(rep, [0, 1], "class", dims=3)
    assert all(isinstance(t, go.Scatter3d) for t in cube.data)
    assert cube.layout.scene.xaxis.range == cube.layout.scene2.xaxis.range


def test_cka_geometry_and_flip_grid(rep):
    heat = rfig.cka_heatmap(rep, [0, 2])
    assert heat.data[0].z.tolist() == [[1.0, 0.6], [0.6, 1.0]]
    assert heat.data[0].texttemplate
    bars = rfig.geometry_bars(rep, [0, 1, 2])
    assert len(bars.data) == 9 and bars.layout.barmode == "group"
    patterns = [t.marker.pattern.shape for t in bars.data if t.showlegend]
    assert patterns[1] != patterns[2]  # two magnitude runs stay apart
    grid = rfig.flipped_samples(rep, 1)
    assert len(grid.data) == 1 and isinstance(grid.data[0], go.Image)  # one mosaic
    assert grid.data[0].source.startswith("data:image/png;base64,")
    assert len(grid.layout.annotations) == 4  # a caption per flipped sample
    assert "true zero" in grid.layout.annotations[0].text and "4 samples" in grid.layout.title.text
    assert len(rfig.flipped_samples(rep, 2).data) == 0
    mosaic = decode_png(grid.data[0].source)
    assert mosaic.shape[1] == 4 * 8 + 3 * 1  # four 8-px tiles in a row, 1-px gutters


def decode_png(uri: str) -> np.ndarray:
    """The pixels of a PNG data URI."""
    import base64
    import io

    from PIL import Image

    return np.asarray(Image.open(io.BytesIO(base64.b64decode(uri.split(",", 1)[1]))))


def robust_item(run: dict, drop: float) -> dict:
    """A robustness item: two corruptions x 2 severities, a 3-sigma noise curve."""
    rows = [{"corruption": "clean", "severity": 0, "accuracy": run["test_acc"]}]
    rows += [
        {"corruption": c, "severity": s, "accuracy": run["test_acc"] - drop * s}
        for c in ("shot_noise", "fog")
        for s in (1, 2)
    ]
    noise = [
        {"sigma": s, "accuracy_mean": run["test_acc"] - s, "accuracy_std": 0.02}
        for s in (0, 0.1, 0.3)
    ]
    return {"label": run["label"], "key": run["key"], "status": "cached", "corruption": rows,
            "mce": 1.0 + drop, "relative_mce": 1.0 + 2 * drop,
            "ce": {"shot_noise": 1.0 + drop, "fog": 1.0}, "noise": noise}  # fmt: skip


def test_robustness_figures(runs):
    done = [r for r in runs if r["status"] == "cached" and r["seed"] == 0]
    items = [robust_item(r, 0.1 * i) for i, r in enumerate(done)]
    curves = bfig.corruption_curves(runs, items)
    assert len(curves.data) == 2 * len(done)  # one line per run per corruption
    assert list(curves.data[0].x) == [0, 1, 2]
    assert [a.text for a in curves.layout.annotations] == ["shot noise", "fog"]
    heat = bfig.corruption_heatmap(runs, items, "accuracy")
    assert len(heat.data[0].y) == len(done) and heat.data[0].z[0][0] == pytest.approx(97 - 0)
    ce = bfig.corruption_heatmap(runs, items, "ce")
    assert ce.data[0].zmid == 100 and ce.data[0].z[1][0] == pytest.approx(110.0)
    bars = bfig.mce_bars(runs, items)
    assert [t.name for t in bars.data] == ["mCE", "relative mCE"]
    assert list(bars.data[1].y) == pytest.approx([100.0, 120.0, 140.0])
    noise = bfig.noise_curves(runs, items)
    assert len(noise.data) == 2 * len(done)  # a band and a mean line per run
    band, line = noise.data[0], noise.data[1]
    assert band.fill == "toself" and max(band.y) == pytest.approx(99.0)
    assert line.line.color == METHOD_COLORS["dense"]
    images = np.zeros((2, 3, 1, 8, 8), dtype=np.uint8)
    images[1, 2] = 200  # zigzag at severity 3: the last tile of the second row
    grid = bfig.corruption_examples(images, images[0, 0], ["fog", "zigzag"], [1, 2, 3])
    captions = [a.text for a in grid.layout.annotations]
    assert len(captions) == 8 and captions[4] == "zigzag · clean"  # 2 x (clean + 3 severities)
    mosaic = decode_png(grid.data[0].source)
    assert (mosaic == 200).all(axis=2).sum() == 8 * 8  # that one tile's pixels, drawn once
    assert (mosaic[:, -8:] == 200).all(axis=2).sum() == 8 * 8  # in the last column


def test_new_figures_take_the_presentation_theme(rep, runs):
    items = [robust_item(r, 0.1) for r in runs if r["status"] == "cached"]
    builds = [
        lambda t: rfig.embedding_scatter(rep, [0, 1], "class", t),
        lambda t: rfig.cka_heatmap(rep, None, t),
        lambda t: rfig.geometry_bars(rep, [0, 1], t),
        lambda t: bfig.corruption_curves(runs, items, t),
        lambda t: bfig.noise_curves(runs, items, t),
        lambda t: bfig.mce_bars(runs, items, t),
    ]
    for build in builds:
        normal, big = build(NORMAL), build(PRESENTATION)
        assert big.layout.font.size > normal.layout.font.size
        assert big.layout.title.font.size > normal.layout.title.font.size


def test_new_figures_accept_empty_input(rep):
    assert len(rfig.embedding_scatter(rep, []).data) == 0
    assert len(bfig.corruption_curves([], []).data) == 0
    assert len(bfig.noise_curves([], []).data) == 0


def test_ten_classes_get_ten_colours_none_of_them_a_methods():
    from dashboard.figures.theme import METHOD_COLORS

    colours = [rfig.class_style(c)[0] for c in range(10)]
    assert len(set(colours)) == 10
    assert not set(colours) & set(METHOD_COLORS.values())
