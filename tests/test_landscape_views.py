"""The landscape figures as issue 15 asks: square contours, named reversed scales, the camera
in the URL, plotly.js referenced not inlined, and slices and sharpness grouped by method."""

from __future__ import annotations

import re

import numpy as np
import plotly.graph_objects as go
import pytest

from analysis.errors import SpecError
from dashboard.figures import landscape as fl
from dashboard.figures.bands import interval
from dashboard.figures.theme import method_color

SEEDS = (0, 1, 2)


def bowl(scale: float, n: int = 5) -> dict:
    """A (n, n) bowl over [-1, 1]^2: loss 0.1 + scale * r^2."""
    x = np.linspace(-1, 1, n)
    loss = 0.1 + scale * (x[None, :] ** 2 + x[:, None] ** 2)
    return {"x": x, "y": x, "loss": loss, "acc": 1 - loss / loss.max()}


def line(scale: float, n: int = 7) -> dict:
    """A 1-D slice over [-1, 1]: loss 0.1 + scale * x^2."""
    x = np.linspace(-1, 1, n)
    return {"x": x, "loss": 0.1 + scale * x**2, "acc": 1 - 0.1 * x**2}


def summary_run(method: str, sparsity: float, seed: int) -> dict:
    """A summary run record (what ``view.runs`` holds)."""
    pct = f" {100 * sparsity:g}%" if method != "dense" else ""
    return {"label": f"{method}{pct} s{seed}", "method": method, "seed": seed,
            "requested_sparsity": sparsity, "objective": "ce"}  # fmt: skip


def land_record(run: dict, eig: list[float], trace: float) -> dict:
    """The landscape record of ``run``: a 1-D and a 2-D surface and sharpness."""
    label = run["label"]
    return {
        "label": label, "method": run["method"], "sparsity": run["requested_sparsity"],
        "objective": "ce", "seed": run["seed"],
        "surfaces": [{"dims": d, "status": "cached", "key": f"{label}/{d}"} for d in (1, 2)],
        "sharpness": {"status": "cached", "eigenvalues": eig, "trace": trace,
                      "trace_stderr": 1.0, "trace_rel_error": 0.02, "trace_probes": 40},
    }  # fmt: skip


@pytest.fixture
def study() -> tuple[list[dict], dict, dict]:
    """Dense and magnitude 90% over three seeds: (summary runs, landscape section, arrays)."""
    runs = [
        summary_run(m, s, seed) for m, s in (("dense", 0.0), ("magnitude", 0.9)) for seed in SEEDS
    ]
    records, arrays = [], {}
    for run in runs:
        scale = (1.0 if run["method"] == "dense" else 3.0) + 0.1 * run["seed"]
        records.append(land_record(run, [10 * scale, 5 * scale], 50 * scale))
        arrays[f"{run['label']}/1"] = line(scale)
        arrays[f"{run['label']}/2"] = bowl(scale)
    return runs, {"runs": records, "planes": []}, arrays


def panels(land: dict, arrays: dict, n: int = 2) -> list[fl.Panel]:
    """The first ``n`` runs' 2-D panels."""
    labels = [r["label"] for r in land["runs"][:n]]
    return [p for _, p in fl.run_panels(land, labels, arrays.get)]


def test_contour_panels_have_equal_axis_scales(study):
    _, land, arrays = study
    fig = fl.contours(panels(land, arrays, 3), "loss")
    for k, (xname, yname) in enumerate([("xaxis", "yaxis"), ("xaxis2", "yaxis2"),
                                        ("xaxis3", "yaxis3")], 1):  # fmt: skip
        y = fig.layout[yname]
        assert y.scaleanchor == ("x" if k == 1 else f"x{k}") and y.scaleratio == 1
        assert y.constrain == "domain" and fig.layout[xname].constrain == "domain"


def test_a_reversed_colour_scale_says_so(study):
    _, land, arrays = study
    acc = fl.surfaces_3d(panels(land, arrays), "acc").layout.coloraxis
    assert acc.reversescale is True and "reversed" in acc.colorbar.title.text
    loss = fl.contours(panels(land, arrays), "loss").layout.coloraxis
    assert not loss.reversescale and "reversed" not in loss.colorbar.title.text


def test_3d_axes_have_short_readable_titles(study):
    _, land, arrays = study
    fig = fl.surfaces_3d(panels(land, arrays), "log")
    for name in fl.scene_names(2):
        scene = fig.layout[name]
        titles = [scene[a].title.text for a in ("xaxis", "yaxis", "zaxis")]
        assert titles == ["d1", "d2", "log10 loss"]
        assert all(scene[a].title.font.size >= 13 for a in ("xaxis", "yaxis", "zaxis"))


def test_camera_round_trips_through_the_url_text(study):
    _, land, arrays = study
    camera = fl.camera_from_url("0.5,-2,1.25")
    assert camera["eye"] == {"x": 0.5, "y": -2.0, "z": 1.25} and camera["up"] == fl.CAMERA["up"]
    assert fl.camera_text(camera) == "0.5,-2,1.25"
    assert fl.camera_from_url(fl.camera_text(fl.CAMERA))["eye"] == fl.CAMERA["eye"]
    assert fl.camera_from_url(None) is None and fl.camera_from_url("") is None
    fig = fl.surfaces_3d(panels(land, arrays), camera=camera)
    assert all(fig.layout[n].camera.eye.y == -2.0 for n in fl.scene_names(2))


@pytest.mark.parametrize("text", ["1,2", "a,b,c", "0,0,0", "1,1,nan", "1,1,1000", "1,2,3,4"])
def test_a_bad_camera_in_the_url_names_the_parameter(text):
    with pytest.raises(SpecError, match="camera"):
        fl.camera_from_url(text)


def test_linked_html_references_a_served_plotly_js_and_mirrors_the_camera(study):
    _, land, arrays = study
    fig = fl.surfaces_3d(panels(land, arrays))
    src = "/app/static/plotly-9.9.9.min.js"
    html = fl.linked_html(fig, plotly_src=src, camera_in_url=True)
    assert f'<script charset="utf-8" src="{src}"></script>' in html
    assert len(html) < 200_000  # the figure, not 4.6 MB of plotly.js
    assert "plotly_relayout" in html and "history.replaceState" in html
    assert f"'{fl.CAMERA_PARAM}'" in html and "__PARAM__" not in html
    div = re.search(r'<div id="([^"]+)" class="plotly-graph-div"', html).group(1)
    assert html.count(f"document.getElementById('{div}')") == 2  # linking and the URL
    assert "parent.history" not in fl.linked_html(fig)  # the export's page leaves URLs alone


def test_slices_by_method_draw_a_mean_and_band_per_group(study):
    runs, land, arrays = study
    lines = fl.slice_lines(land, runs, arrays.get)
    fig = fl.slices(lines, "loss", by_method=runs)
    means = [t for t in fig.data if t.showlegend is not False]
    assert [t.name for t in means] == ["dense", "magnitude 90%"]
    assert [t.line.color for t in means] == [method_color("dense"), method_color("magnitude")]
    bands = [t for t in fig.data if t.fill == "toself"]
    assert len(bands) == 2
    dense = np.stack([arrays[f"dense s{s}/1"]["loss"] for s in SEEDS])
    mean, low, high = interval(dense)
    assert np.allclose(means[0].y, mean)
    assert np.allclose(bands[0].y, np.concatenate([high, low[::-1]]))
    assert "mean over 3 seeds" in fig.layout.title.text
    per_run = fl.slices(lines, "loss")
    assert len(per_run.data) == len(runs) and not any(t.fill for t in per_run.data)


def test_slices_on_other_steps_are_interpolated_onto_the_first(study):
    runs, land, arrays = study
    arrays["dense s2/1"] = line(1.2, n=13)  # a finer grid: same curve, more points
    fig = fl.slices(fl.slice_lines(land, runs, arrays.get), "loss", by_method=runs)
    dense = next(t for t in fig.data if t.name == "dense" and t.showlegend is not False)
    assert len(dense.x) == 7 and np.all(np.isfinite(dense.y))


def test_sharpness_by_method_has_a_row_per_group_with_intervals(study):
    runs, land, _ = study
    fig = fl.sharpness(land, runs, by_method=True)
    trace = next(t for t in fig.data if t.name == "trace")
    assert list(trace.y) == ["dense", "magnitude 90%"]
    dense = [50 * (1.0 + 0.1 * s) for s in SEEDS]
    mean, low, high = interval(np.array(dense)[:, None])
    assert trace.x[0] == pytest.approx(mean[0])
    assert trace.error_x.array[0] == pytest.approx(high[0] - mean[0])
    assert trace.error_x.arrayminus[0] == pytest.approx(mean[0] - low[0])
    assert "mean over 3 seeds" in fig.layout.title.text
    lam1 = next(t for t in fig.data if t.name == "λ1")
    assert lam1.x[1] == pytest.approx(np.mean([10 * (3.0 + 0.1 * s) for s in SEEDS]))
    assert lam1.error_x.array[1] > 0
    assert "error bars: 95% interval" in fig.layout.title.text
    per_run = next(t for t in fl.sharpness(land, runs).data if t.name == "trace")
    assert len(per_run.y) == len(runs) and list(per_run.error_x.array) == [1.0] * len(runs)


def test_grouping_keeps_settings_apart(study):
    runs, land, _ = study
    wide = [{**r, "setting_label": "width 64"} for r in runs[:3]]
    groups = fl.group_records(land["runs"][:6], wide + runs[3:])
    assert [len(g) for g in groups.values()] == [3, 3]
    assert isinstance(fl.sharpness(land, wide, by_method=True), go.Figure)
