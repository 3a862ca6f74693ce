"""Connectivity and landscape figures, from hand-made summaries and arrays (no store, no torch)."""

from __future__ import annotations

import dataclasses
import math
import re

import numpy as np
import plotly.graph_objects as go
import pytest

from dashboard.figures import NORMAL, PRESENTATION
from dashboard.figures import connectivity as fc
from dashboard.figures import landscape as fl
from dashboard.figures.items import FigureItem
from dashboard.figures.pairs import STYLE_INK
from dashboard.figures.theme import method_color

ALPHAS = [0.0, 0.25, 0.5, 0.75, 1.0]


def barriers(height: float) -> dict:
    """Barriers of both splits, the accuracy ones a tenth of ``height``."""
    one = {
        "barrier_entezari": height,
        "barrier_rebasin": height + 0.01,
        "accuracy_barrier": height / 10,
        "error_barrier": height / 10,
    }
    return {"test": one, "train": {k: v / 2 for k, v in one.items()}}


def pair(method: str, sparsity: float, alignment: str, height: float, **extra) -> dict:
    """A cached pair record shaped like ``summarize_connectivity``'s."""
    pct = f" {100 * sparsity:g}%" if method != "dense" else ""
    kind = extra.pop("pair", "seeds")
    run_a = "dense s0" if kind == "same-init" else f"{method}{pct} s0"
    bump = [height * math.sin(math.pi * a) for a in ALPHAS]
    return {
        "label": f"connectivity ({alignment}): {run_a} ~ {method}{pct} s1",
        "key": f"{method}-{sparsity}-{alignment}-{kind}",
        "status": "cached",
        "pair": kind,
        "run_a": run_a,
        "run_b": f"{method}{pct} s{1 if kind == 'seeds' else 0}",
        "method": method,
        "sparsity": sparsity,
        "objective": "ce",
        "alignment": alignment,
        "repair": False,
        "bn": "none",
        "barriers": barriers(height),
        "curve": {
            "alphas": ALPHAS,
            "train_loss": [0.2 + b / 2 for b in bump],
            "train_acc": [0.95 - b / 20 for b in bump],
            "test_loss": [0.3 + b for b in bump],
            "test_acc": [0.9 - b / 10 for b in bump],
            "sparsity": [sparsity, *[sparsity * 0.8] * 3, sparsity],
        },
        "union_sparsity": sparsity * 0.8,
        **extra,
    }


def run(method: str, sparsity: float, seed: int) -> dict:
    """A run record (label, method, seed) as the sidebar passes them."""
    pct = f" {100 * sparsity:g}%" if method != "dense" else ""
    return {"label": f"{method}{pct} s{seed}", "method": method, "seed": seed, "key": method}


@pytest.fixture
def runs() -> list[dict]:
    """Dense and magnitude 90%, seeds 0 and 1."""
    return [run(m, s, seed) for seed in (0, 1) for m, s in (("dense", 0.0), ("magnitude", 0.9))]


@pytest.fixture
def conn() -> dict:
    """Two methods x three alignments over seeds, a same-init pair, an instability group."""
    pairs = [
        pair(m, s, a, h * (0.2 if a != "naive" else 1.0))
        for m, s, h in (("dense", 0.0, 1.0), ("magnitude", 0.9, 0.5))
        for a in ("naive", "weight", "activation")
    ]
    pairs.append(pair("magnitude", 0.9, "naive", 0.1, pair="same-init"))
    pairs.append({**pair("magnitude", 0.9, "weight", 0.1), "status": "missing", "key": "m"})
    points = [
        {"rewind_step": k, "status": "cached", "barriers": barriers(h), "label": f"p{k}"}
        for k, h in ((6, 0.05), (0, 0.4))
    ]
    return {
        "settings": {"alignments": ["naive", "weight", "activation"], "rewind_steps": [0, 6]},
        "repair": "n/a",
        "notes": ["REPAIR does not apply to mlp"],
        "pairs": pairs,
        "instability": [
            {"label": "dense s0", "method": "dense", "sparsity": 0.0, "seed": 0, "points": points}
        ],
    }


# -- connectivity ------------------------------------------------------------------------


def test_shown_pairs_follow_the_sidebar(conn, runs):
    assert len(fc.shown_pairs(conn, runs)) == 7  # the missing pair is never drawn
    only_dense = [r for r in runs if r["method"] == "dense"]
    assert {p["method"] for p in fc.shown_pairs(conn, only_dense)} == {"dense"}
    # a same-init pair needs its pruned run B, not its dense A
    magnitude_s0 = [run("magnitude", 0.9, 0)]
    assert [p["pair"] for p in fc.shown_pairs(conn, magnitude_s0)] == ["same-init"]


def test_path_curves_draw_loss_and_accuracy_per_alignment(conn, runs):
    fig = fc.path_curves(conn, runs, "test")
    # 3 panels (dense seeds, magnitude seeds, same-init), loss + accuracy per line
    drawn = [t for t in fig.data if t.showlegend is False]
    assert len(drawn) == 2 * 7
    keys = [t for t in fig.data if t.showlegend is not False]  # the legend explains styles
    assert [t.name for t in keys] == [
        "naive (no alignment)",
        "weight matching",
        "activation matching",
    ]
    assert {t.line.color for t in keys} == {STYLE_INK}  # no method's colour
    assert [t.line.dash for t in keys] == ["dot", "solid", "dash"]
    naive = [t for t in drawn if t.name.startswith("naive")]
    assert {t.line.color for t in naive} == {method_color("dense"), method_color("magnitude")}
    assert {t.line.dash for t in naive} == {"dot"}  # alignment told by line style
    loss = next(t for t in fig.data if t.name.startswith("naive") and t.yaxis == "y")
    assert max(loss.y) == pytest.approx(1.3)  # test loss: 0.3 + the bump
    acc = next(t for t in fig.data if t.name.startswith("naive") and t.yaxis != "y")
    assert max(acc.y) == pytest.approx(90.0)  # accuracy in %
    train = fc.path_curves(conn, runs, "train")
    assert max(train.data[0].y) == pytest.approx(0.7)
    titles = [a.text for a in fig.layout.annotations if a.text]
    assert any("dense ~ magnitude 90%" in t for t in titles)
    assert any(method_color("magnitude") in t for t in titles)  # panel named in its colour


def test_barrier_bars_per_method_and_alignment(conn, runs):
    fig = fc.barrier_bars(conn, runs, "barrier_entezari", "test")
    by_name = {t.name: t for t in fig.data if t.showlegend is False}
    assert set(by_name) == {"naive (no alignment)", "weight matching", "activation matching"}
    naive = by_name["naive (no alignment)"]
    assert list(naive.marker.color) == [
        method_color(p) for p in ("dense", "magnitude", "magnitude")
    ]
    assert (
        naive.marker.pattern.shape == "x" and by_name["weight matching"].marker.pattern.shape == ""
    )
    assert dict(zip(naive.y, naive.x, strict=True)) == {
        "dense · seeds": pytest.approx(1.0),
        "magnitude 90% · seeds": pytest.approx(0.5),
        "dense ~ magnitude 90%": pytest.approx(0.1),
    }
    acc = fc.barrier_bars(conn, runs, "accuracy_barrier", "train")
    drawn = [t for t in acc.data if t.showlegend is False]
    assert max(drawn[-1].x) == pytest.approx(100 * 1.0 / 10 / 2)  # pp, train halves
    assert "Accuracy" in acc.layout.title.text


def test_connectivity_grouped_by_method_over_pairs(conn, runs):
    fig = fc.path_curves(conn, runs, "test", grouped=True)
    assert "mean over the pairs of seeds" in fig.layout.title.text
    lines = [t for t in fig.data if t.showlegend is False and t.mode == "lines+markers"]
    assert len(lines) == 2 * 7  # one pair per panel and alignment here: a mean line each
    bars = fc.barrier_bars(conn, runs, "barrier_entezari", "test", grouped=True)
    naive = next(t for t in bars.data if t.name.startswith("naive") and t.showlegend is False)
    assert naive.error_x.visible and dict(zip(naive.y, naive.x, strict=True))[
        "magnitude 90% · seeds"
    ] == pytest.approx(0.5)


def test_instability_curve_is_sorted_by_rewind_step(conn, runs):
    fig = fc.instability_curve(conn, runs, "error_barrier", "test")
    (trace,) = fig.data
    assert list(trace.x) == [0, 6]
    assert list(trace.y) == pytest.approx([4.0, 0.5])  # percentage points
    assert trace.line.color == method_color("dense")
    hidden = fc.instability_curve(conn, [run("magnitude", 0.9, 0)])
    assert not hidden.data and "No instability" in hidden.layout.annotations[0].text


def test_sparsity_paths_only_for_sparse_pairs(conn, runs):
    assert {p["method"] for p in fc.sparse_pairs(conn, runs)} == {"magnitude"}
    fig = fc.sparsity_paths(conn, runs)
    assert len(fig.data) == 4  # magnitude: 3 alignments over seeds + 1 same-init
    assert list(fig.data[0].y) == pytest.approx([90.0, 72.0, 72.0, 72.0, 90.0])


def test_no_pairs_says_why(conn, runs):
    lonely = {**conn, "pairs": [], "notes": ["pairs of seeds need a study with 2 or more seeds"]}
    for fig in (fc.path_curves(lonely, runs), fc.barrier_bars(lonely, runs)):
        assert not fig.data
        assert "2 or more seeds" in fig.layout.annotations[0].text
    assert "pick runs" in fc.no_pairs_message(conn).lower() or fc.shown_pairs(conn, runs)
    assert "pick runs" in fc.no_pairs_message({**conn, "notes": []}).lower()


def test_connectivity_catalogue(conn, runs):
    summary = {"connectivity": conn, "runs": runs}
    items = fc.catalogue(summary, None, NORMAL)
    assert all(isinstance(i, FigureItem) and i.section == "Connectivity" for i in items)
    names = [i.name for i in items]
    assert len(set(names)) == len(names) == 4
    assert all(re.fullmatch(r"[a-z0-9-]+", n) for n in names)
    assert all(i.caption.endswith(".") and i.title for i in items)
    empty = {"connectivity": {**conn, "pairs": [], "instability": []}, "runs": runs}
    assert fc.catalogue(empty, None) == []


# -- landscape ---------------------------------------------------------------------------


def bowl(scale: float, grid: int = 5) -> dict:
    """A 2-D surface: loss = 0.1 + scale * (x^2 + y^2) on [-1, 1]^2."""
    x = np.linspace(-1, 1, grid)
    xx, yy = np.meshgrid(x, x)
    loss = 0.1 + scale * (xx**2 + yy**2)
    return {"x": x, "y": x.copy(), "loss": loss, "acc": 1.0 - loss / loss.max()}


def line(scale: float) -> dict:
    """A 1-D surface."""
    x = np.linspace(-1, 1, 7)
    loss = 0.2 + scale * x**2
    return {"x": x, "loss": loss, "acc": 1.0 - loss / 10}


#: What a cached surface or plane record says about its loss and BatchNorm statistics.
SAID = {"split": "train", "n": 200, "bn": "reset", "bn_rule": {"rule": "reset", "samples": 200}}


def surface_item(key: str, dims: int, status: str = "cached") -> dict:
    """A surface record of the landscape summary."""
    return {"label": key, "key": key, "status": status, "dims": dims, **SAID}


def land_run(method: str, sparsity: float, eig: list[float], trace: float) -> dict:
    """A landscape run record with 1-D and 2-D surfaces and sharpness."""
    label = run(method, sparsity, 0)["label"]
    return {
        "label": label,
        "method": method,
        "sparsity": sparsity,
        "objective": "ce",
        "seed": 0,
        "surfaces": [surface_item(f"{label}/1", 1), surface_item(f"{label}/2", 2)],
        "sharpness": {
            "label": f"sharpness: {label}",
            "key": f"{label}/sharp",
            "status": "cached",
            "eigenvalues": eig,
            "trace": trace,
            "trace_stderr": 0.1 * trace if math.isfinite(trace) else math.nan,
            "trace_rel_error": 0.1 if math.isfinite(trace) else None,
            "trace_probes": 40,
            "n": 200,
            "split": "train",
        },
    }


@pytest.fixture
def land() -> dict:
    """Three runs, a trajectory plane and a model plane (the arrays live in ``arrays``)."""
    runs = [
        land_run("dense", 0.0, [9.0, 5.0, 3.0], 50.0),
        land_run("magnitude", 0.9, [14.0, 8.0, 6.0], 70.0),
        land_run("snip", 0.9, [20.0, 10.0], math.nan),
    ]
    runs[2]["surfaces"][1]["status"] = "missing"
    planes = [
        {"label": "t", "key": "plane/t", "status": "cached", "plane": "trajectory",
         "runs": ["dense s0"], "align": False, "explained_variance": [0.9, 0.05], **SAID},
        {"label": "m", "key": "plane/m", "status": "cached", "plane": "models",
         "runs": ["dense s0", "dense s1"], "align": True, "network_loss": [0.1, 0.12, 0.12],
         **SAID},
    ]  # fmt: skip
    return {"settings": {"dims": [1, 2]}, "runs": runs, "planes": planes}


@pytest.fixture
def arrays() -> dict:
    """The arrays of every computed entry of ``land``, by key."""
    out = {}
    for k, (label, scale) in enumerate(
        (("dense s0", 1.0), ("magnitude 90% s0", 3.0), ("snip 90% s0", 2.0))
    ):
        out[f"{label}/2"] = bowl(scale)
        out[f"{label}/1"] = line(scale + k)
    out["plane/t"] = {**bowl(0.5, 6), "coords": np.array([[-3.0, 1.0], [-1.0, -0.5], [0.0, 0.0]])}
    out["plane/m"] = {**bowl(0.7), "coords": np.array([[0.0, 0.0], [1.0, 0.0], [0.4, 0.8]])}
    return out


class FakeReader:
    """Stands in for ``dashboard.results.Reader``: surfaces from a dict."""

    def __init__(self, arrays: dict):
        self.arrays = arrays

    def surface(self, key: str) -> dict | None:
        return self.arrays.get(key)


def panels_of(land: dict, arrays: dict) -> list[fl.Panel]:
    """The run panels of every run with a 2-D surface."""
    labels = [r["label"] for r in fl.surface_runs(land, None, 2)]
    return [p for _, p in fl.run_panels(land, labels, arrays.get)]


def test_surfaces_share_one_z_range_and_one_coloraxis(land, arrays):
    panels = panels_of(land, arrays)
    assert [p.title for p in panels] == ["dense s0", "magnitude 90% s0"]  # snip's 2-D is missing
    fig = fl.surfaces_3d(panels, "loss")
    surfaces = [t for t in fig.data if isinstance(t, go.Surface)]
    assert len(surfaces) == 2
    assert {t.coloraxis for t in surfaces} == {"coloraxis"}
    assert "coloraxis2" not in fig.layout
    lo, hi = 0.1, 0.1 + 3.0 * 2  # the steeper bowl sets the top for both
    scenes = [fig.layout[name] for name in fl.scene_names(2)]
    assert all(list(s.zaxis.range) == pytest.approx([lo, hi]) for s in scenes)
    assert (fig.layout.coloraxis.cmin, fig.layout.coloraxis.cmax) == pytest.approx((lo, hi))
    assert scenes[0].camera.eye == scenes[1].camera.eye  # they start together
    centre = [t for t in fig.data if isinstance(t, go.Scatter3d)]
    assert len(centre) == 2 and sum(bool(t.showlegend) for t in centre) == 1


def test_log_and_accuracy_heights(land, arrays):
    panels = panels_of(land, arrays)
    log = fl.surfaces_3d(panels, "log")
    assert np.allclose(log.data[0].z, np.log10(arrays["dense s0/2"]["loss"]))
    assert log.layout.scene.zaxis.range[0] == pytest.approx(math.log10(0.1))
    acc = fl.surfaces_3d(panels, "acc")
    top = 100 * (1 - 0.1 / 6.1)  # the higher accuracy of the two
    assert acc.layout.scene.zaxis.range[1] == pytest.approx(top)
    assert acc.layout.coloraxis.reversescale is True


def test_camera_link_script_names_the_scenes(land, arrays):
    script = fl.camera_link_script(fl.scene_names(3))
    assert '["scene", "scene2", "scene3"]' in script
    assert "{plot_id}" in script and "plotly_relayout" in script
    fig = fl.surfaces_3d(panels_of(land, arrays), "loss")
    html = fl.linked_html(fig)
    assert '["scene", "scene2"]' in html
    assert "{plot_id}" not in html  # plotly filled in the div's id
    div = re.search(r'<div id="([^"]+)" class="plotly-graph-div"', html).group(1)
    assert f"document.getElementById('{div}')" in html
    assert '<script src="http' not in html and len(html) > 1_000_000  # plotly.js inlined


def test_contours_mark_the_network_the_path_and_the_models(land, arrays):
    runs_fig = fl.contours(panels_of(land, arrays), "loss")
    contours = [t for t in runs_fig.data if isinstance(t, go.Contour)]
    assert len(contours) == 2 and {t.coloraxis for t in contours} == {"coloraxis"}
    assert runs_fig.layout.coloraxis.cmax == pytest.approx(6.1)
    stars = [t for t in runs_fig.data if t.name == "trained network"]
    assert len(stars) == 2 and sum(bool(t.showlegend) for t in stars) == 1

    methods = {"dense s0": "dense"}
    (traj,) = fl.plane_panels(fl.plane_records(land, None, "trajectory"), arrays.get, methods)
    fig = fl.contours([traj], "loss")
    path = next(t for t in fig.data if t.name == "training path")
    assert list(path.x) == [-3.0, -1.0, 0.0, 0.0] and list(path.y) == [1.0, -0.5, 0.0, 0.0]
    assert "90%" in traj.title  # the explained variance

    (models,) = fl.plane_panels(fl.plane_records(land, None, "models"), arrays.get, methods)
    fig = fl.contours([models], "loss")
    nets = next(t for t in fig.data if t.name == "networks")
    assert list(nets.text) == ["A", "B", "C"]
    assert list(nets.customdata) == ["dense s0", "dense s1", "B aligned to A"]


def test_planes_follow_the_shown_runs(land):
    assert fl.plane_records(land, [run("magnitude", 0.9, 0)], "trajectory") == []
    assert len(fl.plane_records(land, [run("dense", 0.0, 0)], "models")) == 1


def test_slices_one_line_per_run(land, arrays):
    lines = fl.slice_lines(land, None, arrays.get)
    fig = fl.slices(lines, "acc")
    assert [t.name for t in fig.data] == ["dense s0", "magnitude 90% s0", "snip 90% s0"]
    assert [t.line.color for t in fig.data] == [
        method_color(m) for m in ("dense", "magnitude", "snip")
    ]
    assert max(fig.data[0].y) == pytest.approx(100 * (1 - 0.2 / 10))


def test_sharpness_eigenvalues_and_trace_with_error_bars(land):
    fig = fl.sharpness(land, None)
    eig = [t for t in fig.data if t.name.startswith("λ")]
    assert [t.name for t in eig] == ["λ1", "λ2", "λ3"]
    assert list(eig[0].x) == [9.0, 14.0, 20.0]
    assert list(eig[2].x) == [3.0, 6.0, None]  # snip has only two eigenvalues
    (trace,) = [t for t in fig.data if t.name == "trace"]
    assert list(trace.x) == [50.0, 70.0, None]  # a NaN trace is a gap, not a zero
    assert list(trace.error_x.array) == pytest.approx([5.0, 7.0, 0.0])
    assert list(trace.text)[:2] == ["±10.0%<br>40 probes"] * 2  # the error reached, beside it
    assert "training loss on 200 samples" in fig.layout.title.text


def test_every_landscape_figure_says_which_loss_and_which_statistics(land, arrays):
    rule = "training loss on 200 samples; BatchNorm statistics recomputed at every point"
    assert fl.data_note(SAID).startswith(rule)
    assert (
        fl.data_note({**SAID, "split": "test", "bn": "none"})
        == "test loss on 200 samples; no BatchNorm"
    )
    assert fl.data_note({}) == ""
    for item in fl.catalogue({"landscape": land}, FakeReader(arrays), NORMAL):
        title = item.figure.layout.title.text
        assert "training loss" in title, item.name
        if item.name != "landscape-sharpness":  # sharpness: the network's own statistics
            assert rule in title and "recomputed at every point" in item.caption, item.name
        else:
            assert "own BatchNorm statistics" in title


def test_models_plane_hover_gives_each_networks_own_loss(land, arrays):
    (models,) = fl.plane_panels(fl.plane_records(land, None, "models"), arrays.get, {})
    nets = next(t for t in fl.contours([models], "loss").data if t.name == "networks")
    assert "loss at its own point 0.12" in nets.hovertext[1]


def test_landscape_catalogue(land, arrays):
    items = fl.catalogue({"landscape": land}, FakeReader(arrays), NORMAL)
    names = [i.name for i in items]
    assert names == [
        "landscape-surfaces-3d",
        "landscape-contours",
        "landscape-plane-trajectory",
        "landscape-plane-models",
        "landscape-slices",
        "landscape-sharpness",
    ]
    assert all(i.section == "Landscape" and i.caption.endswith(".") for i in items)
    (linked,) = [i for i in items if i.post_script]
    assert linked.name == "landscape-surfaces-3d" and '"scene2"' in linked.post_script
    no_arrays = fl.catalogue({"landscape": land}, FakeReader({}), NORMAL)
    assert [i.name for i in no_arrays] == ["landscape-sharpness"]  # from the summary alone
    assert fl.catalogue({}, FakeReader(arrays)) == []


def test_catalogue_splits_more_than_four_surfaces(land, arrays):
    extra = []
    for k in range(4):
        r = land_run("random", 0.1 * (k + 1), [1.0], 1.0)
        extra.append(r)
        arrays[f"{r['label']}/2"] = bowl(1.0 + k)
        arrays[f"{r['label']}/1"] = line(1.0)
    land = {**land, "runs": land["runs"] + extra}
    items = fl.catalogue({"landscape": land}, FakeReader(arrays), NORMAL)
    surf = [i for i in items if i.name.startswith("landscape-surfaces-3d")]
    assert [i.name for i in surf] == ["landscape-surfaces-3d-1", "landscape-surfaces-3d-2"]
    assert len(set(i.name for i in items)) == len(items)
    assert sum(isinstance(t, go.Surface) for t in surf[0].figure.data) == 4


def test_missing_arrays_and_empty_input(land):
    assert fl.run_panels(land, ["dense s0"], lambda key: None) == []
    for fig in (
        fl.surfaces_3d([], "loss"),
        fl.contours([], "loss"),
        fl.slices([], "loss"),
        fl.sharpness({"runs": []}, None),
    ):
        assert isinstance(fig, go.Figure)


def test_presentation_theme_enlarges_every_figure(conn, runs, land, arrays):
    panels = panels_of(land, arrays)
    figures = [
        lambda t: fc.path_curves(conn, runs, "test", t),
        lambda t: fc.barrier_bars(conn, runs, "barrier_entezari", "test", t),
        lambda t: fc.instability_curve(conn, runs, "error_barrier", "test", t),
        lambda t: fc.sparsity_paths(conn, runs, t),
        lambda t: fl.surfaces_3d(panels, "loss", t),
        lambda t: fl.contours(panels, "loss", t),
        lambda t: fl.sharpness(land, None, t),
    ]
    for build in figures:
        small, large = build(NORMAL), build(PRESENTATION)
        assert large.layout.font.size > small.layout.font.size
        assert large.layout.height > small.layout.height


def test_four_surfaces_stand_two_by_two_and_keep_their_width(land, arrays):
    from dashboard.figures.landscape.surfaces import scene_grid
    from dashboard.figures.theme import PRESENTATION

    assert [scene_grid(n) for n in (1, 2, 3, 4)] == [(1, 1), (1, 2), (1, 3), (2, 2)]
    assert scene_grid(3, PRESENTATION) == (2, 2)  # a projector: two per row
    panels = panels_of(land, arrays)
    four = [*panels, *[dataclasses.replace(p, title=p.title + " b") for p in panels]]
    fig = fl.surfaces_3d(four, "loss")
    domains = [fig.layout[name].domain for name in fl.scene_names(4)]
    assert len({tuple(d.y) for d in domains}) == 2 and len({tuple(d.x) for d in domains}) == 2
    assert all(d.x[1] - d.x[0] > 0.45 for d in domains)  # each about half the width
    assert fig.layout.height > fl.surfaces_3d(panels, "loss").layout.height
