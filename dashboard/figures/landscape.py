"""Figures of loss landscapes: 3-D surfaces side by side, contours and planes, slices, sharpness.

Inputs are the summary's ``landscape`` section (``land``: ``runs`` with their
``surfaces`` and ``sharpness``, ``planes``; see
``analysis.landscape.summarize_landscape`` and docs/summary.md) and the grid
arrays of a surface or plane entry (``surface.npz``: ``x`` (X,), ``y`` (Y,),
``loss``/``acc`` (Y, X) for a surface or (X,) for a line, ``coords`` (K, 2) for
planes), fetched by content key through a ``load(key) -> dict | None`` the
caller passes (the dashboard's cached reader, or :class:`dashboard.results.Reader`).

Surfaces drawn side by side share ONE z range and ONE colour axis, so equal
heights and colours mean equal loss in every panel. Plotly does not link the
cameras of several 3-D scenes; :func:`camera_link_script` is the small
JavaScript that does, for pages (``components.html``) and the HTML export.
No streamlit here.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from dashboard.figures.items import FigureItem
from dashboard.figures.theme import (
    GREY,
    NORMAL,
    OKABE_ITO,
    SEED_DASHES,
    Theme,
    apply,
    method_color,
)

if TYPE_CHECKING:  # the reader pulls in the analysis library; figures stay light
    from dashboard.results import Reader

METRICS = {"loss": "Loss", "log": "log10 loss", "acc": "Accuracy (%)"}
PLANES = {"trajectory": "Training trajectory (PCA plane)", "models": "Plane through two seeds"}
#: Perceptually uniform and readable under colour-vision deficiencies.
COLORSCALE = "Viridis"
#: Most surfaces shown side by side (beyond that a panel is too small to read).
MOST = 4
#: The camera every scene starts from (looking at the minimum from a corner, above).
CAMERA = {"eye": {"x": 1.3, "y": -1.3, "z": 0.85}, "up": {"x": 0, "y": 0, "z": 1}}
#: Pattern and opacity per eigenvalue rank in the sharpness bars.
RANK_PATTERNS = ["", "/", ".", "x", "-"]

Load = Callable[[str], "dict | None"]


@dataclass
class Panel:
    """One surface to draw: its title, arrays and what to mark on it.

    ``kind`` is "run" (a surface around a trained run: its centre is marked),
    "trajectory" (the training path is drawn) or "models" (the networks are
    marked; ``names`` are their labels).
    """

    title: str
    arrays: dict
    kind: str = "run"
    method: str = "dense"
    names: list[str] = field(default_factory=list)
    axes: tuple[str, str] = ("direction 1", "direction 2")


def z_of(arrays: dict, metric: str) -> np.ndarray:
    """The drawn values: loss, log10 loss, or accuracy in %."""
    if metric == "acc":
        return 100 * np.asarray(arrays["acc"], dtype=float)
    loss = np.asarray(arrays["loss"], dtype=float)
    return np.log10(np.maximum(loss, 1e-12)) if metric == "log" else loss


def shared_range(panels: Sequence[Panel], metric: str) -> list[float]:
    """[lo, hi] of the drawn values over every panel (finite values only)."""
    values = np.concatenate([z_of(p.arrays, metric).ravel() for p in panels] or [np.zeros(1)])
    values = values[np.isfinite(values)]
    if not len(values):
        return [0.0, 1.0]
    lo, hi = float(values.min()), float(values.max())
    return [lo, hi if hi > lo else lo + 1e-9]


# -- what is computed ------------------------------------------------------------------


def _shown(land: dict, runs: Sequence[dict] | None) -> list[dict]:
    """The landscape run records of the shown runs (all when ``runs`` is None)."""
    records = land.get("runs", []) if land else []
    if runs is None:
        return list(records)
    labels = {r["label"] for r in runs}
    return [r for r in records if r["label"] in labels]


def surface_runs(land: dict, runs: Sequence[dict] | None, dims: int = 2) -> list[dict]:
    """Labels order: the shown run records with a cached ``dims``-D surface."""
    return [
        r
        for r in _shown(land, runs)
        if any(s["dims"] == dims and s.get("status") == "cached" for s in r["surfaces"])
    ]


def _surface_item(record: dict, dims: int) -> dict | None:
    """The cached ``dims``-D surface record of a landscape run record."""
    return next(
        (s for s in record["surfaces"] if s["dims"] == dims and s.get("status") == "cached"), None
    )


def run_panels(
    land: dict, labels: Sequence[str], load: Load, dims: int = 2
) -> list[tuple[dict, Panel]]:
    """(run record, panel) of each labelled run whose ``dims``-D surface can be read."""
    by_label = {r["label"]: r for r in land.get("runs", [])}
    out = []
    for label in labels:
        record = by_label.get(label)
        item = _surface_item(record, dims) if record else None
        arrays = load(item["key"]) if item else None
        if arrays is not None:
            out.append((record, Panel(label, arrays, "run", record["method"])))
    return out


def plane_records(land: dict, runs: Sequence[dict] | None, plane: str) -> list[dict]:
    """The cached planes of kind ``plane`` whose first run is shown."""
    labels = None if runs is None else {r["label"] for r in runs}
    return [
        p
        for p in (land.get("planes", []) if land else [])
        if p["plane"] == plane
        and p.get("status") == "cached"
        and (labels is None or p["runs"][0] in labels)
    ]


def plane_panels(records: Sequence[dict], load: Load, methods: dict[str, str]) -> list[Panel]:
    """A panel per plane record whose arrays can be read (``methods``: run label -> method)."""
    out = []
    for p in records:
        arrays = load(p["key"])
        if arrays is None:
            continue
        if p["plane"] == "trajectory":
            ev = p.get("explained_variance") or [math.nan, math.nan]
            axes = ("PC1", "PC2")
            names = [p["runs"][0]]
            title = f"{p['runs'][0]}<br><sup>PC1 {100 * ev[0]:.0f}%, PC2 {100 * ev[1]:.0f}%"
            title += " of the path's variance</sup>"
        else:
            axes = ("along B − A (units of ‖B − A‖)", "towards C")
            names = list(p["runs"]) + (["B aligned to A"] if p.get("align") else [])
            title = " / ".join(p["runs"][:2])
            if p.get("align"):
                title += "<br><sup>C: B aligned to A by weight matching</sup>"
        out.append(
            Panel(title, arrays, p["plane"], methods.get(p["runs"][0], "dense"), names, axes)
        )
    return out


# -- 3-D surfaces ------------------------------------------------------------------------


def scene_names(n: int) -> list[str]:
    """Plotly's names of the first ``n`` 3-D scenes: scene, scene2, ..."""
    return ["scene" + (str(i) if i > 1 else "") for i in range(1, n + 1)]


def _centre(panel: Panel, z: np.ndarray) -> tuple[float, float, float]:
    """(x, y, z) of the grid point nearest the trained network (the origin)."""
    x, y = np.asarray(panel.arrays["x"]), np.asarray(panel.arrays["y"])
    i, j = int(np.argmin(np.abs(y))), int(np.argmin(np.abs(x)))
    return float(x[j]), float(y[i]), float(z[i, j])


def surfaces_3d(panels: Sequence[Panel], metric: str = "loss", theme: Theme = NORMAL) -> go.Figure:
    """2-4 surfaces side by side: one z range, one colour axis, the same starting camera."""
    n = max(len(panels), 1)
    fig = make_subplots(
        rows=1, cols=n, specs=[[{"type": "scene"}] * n],
        subplot_titles=[p.title for p in panels] or None, horizontal_spacing=0.01,
    )  # fmt: skip
    zrange = shared_range(panels, metric)
    for k, p in enumerate(panels, 1):
        z = z_of(p.arrays, metric)
        fig.add_trace(
            go.Surface(
                x=p.arrays["x"], y=p.arrays["y"], z=z, coloraxis="coloraxis", name=p.title,
                contours={"z": {"show": True, "usecolormap": True, "project": {"z": True},
                                "width": 1}},
                hovertemplate=f"<b>{p.title}</b><br>(%{{x:.2f}}, %{{y:.2f}})"
                f"<br>{METRICS[metric]} %{{z:.3f}}<extra></extra>",
            ),
            row=1, col=k,
        )  # fmt: skip
        if p.kind == "run":
            cx, cy, cz = _centre(p, z)
            lift = 0.03 * (zrange[1] - zrange[0])  # just above the surface, so it stays in sight
            fig.add_trace(
                go.Scatter3d(
                    x=[cx], y=[cy], z=[cz + lift], mode="markers", name="trained network",
                    legendgroup="centre", showlegend=k == 1,
                    marker={"color": OKABE_ITO["vermillion"], "size": theme.marker_size * 0.6,
                            "symbol": "diamond", "line": {"color": "white", "width": 2}},
                    hovertemplate=f"<b>{p.title}</b><br>trained network"
                    f"<br>{METRICS[metric]} {cz:.3f}<extra></extra>",
                ),
                row=1, col=k,
            )  # fmt: skip
    apply(fig, theme, title=_surface_title(metric), height=int(theme.height * 1.25))
    axis = {"title": {"text": ""}, "backgroundcolor": "#F7F8FA", "gridcolor": theme.grid_color,
            "showbackground": True}  # fmt: skip
    fig.update_scenes(
        xaxis={**axis, "title": {"text": "d1"}},
        yaxis={**axis, "title": {"text": "d2"}},
        zaxis={**axis, "range": zrange},  # the colour bar names the height
        aspectmode="manual", aspectratio={"x": 1, "y": 1, "z": 0.75}, camera=CAMERA,
    )  # fmt: skip
    fig.update_layout(
        coloraxis=_coloraxis(zrange, metric, theme),
        legend={"y": -0.02},
        margin={"l": 0, "r": 0, "b": 0, "t": theme.title_size * 5},
    )
    fig.update_annotations(font={"size": theme.font_size + 1})
    return fig


def _surface_title(metric: str) -> str:
    """The title of the 3-D surfaces."""
    return (
        f"{METRICS[metric]} around each trained network<br><sup>filter-normalised random "
        "directions (Li et al. 2018), shared by every run; one z range and colour scale</sup>"
    )


def _coloraxis(zrange: list[float], metric: str, theme: Theme) -> dict:
    """The one colour axis every surface and contour of a figure uses."""
    return {
        "colorscale": COLORSCALE,
        "reversescale": metric == "acc",  # dark = bad for loss and accuracy alike
        "cmin": zrange[0],
        "cmax": zrange[1],
        "colorbar": {"title": {"text": METRICS[metric], "side": "right"}, "thickness": 14,
                     "len": 0.8, "tickfont": {"size": theme.font_size - 1}},
    }  # fmt: skip


#: The camera-linking script (see :func:`camera_link_script`); ``__SCENES__`` is filled in.
_LINK_JS = """(function () {
  var gd = document.getElementById('{plot_id}');
  var scenes = __SCENES__;
  if (!gd || !gd.on || scenes.length < 2) { return; }
  var busy = false, pending = null, sent = null;
  /* a scene reports the camera it was given back with rounding noise: compare at 1e-6 */
  function rounded(key, v) { return typeof v === 'number' ? Math.round(v * 1e6) / 1e6 : v; }
  function changed(event) {
    for (var key in event) {
      var m = /^(scene\\d*)\\.camera/.exec(key);
      if (m && scenes.indexOf(m[1]) >= 0) {
        var value = event[m[1] + '.camera'];
        var layout = gd.layout[m[1]];
        var camera = value && typeof value === 'object' ? value : layout && layout.camera;
        if (camera) { return {source: m[1], camera: JSON.stringify(camera, rounded)}; }
      }
    }
    return null;
  }
  /* While dragging: turn the other scenes' views directly. Plotly.relayout here would
     also reset the dragged scene to its not-yet-saved camera and make it jump. */
  function turn(source, camera) {
    scenes.forEach(function (name) {
      var full = gd._fullLayout && gd._fullLayout[name];
      if (name === source || !full || !full._scene || !full._scene.setViewport) { return; }
      var copy = JSON.parse(camera);
      copy.projection = copy.projection || {type: 'perspective'};
      try { full._scene.setViewport({camera: copy, aspectratio: full.aspectratio}); } catch (e) {}
    });
  }
  var timer = null;
  function follow(event) {
    var found = event && changed(event);
    if (!found) { return; }
    turn(found.source, found.camera);
    /* the dragged view glides on a little after the last mouse move: follow it to rest */
    var source = gd._fullLayout && gd._fullLayout[found.source], last = found.camera, left = 20;
    clearTimeout(timer);
    function settle() {
      if (!source || !source._scene || !source._scene.getCamera || --left < 0) { return; }
      var now = JSON.stringify(source._scene.getCamera(), rounded);
      if (now !== last) { last = now; turn(found.source, now); }
      timer = setTimeout(settle, 50);
    }
    timer = setTimeout(settle, 50);
  }
  function done() {
    busy = false;
    if (pending) { var next = pending; pending = null; link(next); }
  }
  /* After the drag (the dragged scene has saved its camera): make it every scene's camera. */
  function link(event) {
    var found = event && changed(event);
    if (!found || found.camera === sent) { return; }  /* our own update coming back */
    if (busy) { pending = event; return; }  /* keep the latest; apply it when this one is done */
    var update = {};
    scenes.forEach(function (name) {
      if (name !== found.source) { update[name + '.camera'] = JSON.parse(found.camera); }
    });
    busy = true;
    sent = found.camera;
    try { Promise.resolve(Plotly.relayout(gd, update)).then(done, done); } catch (err) { done(); }
  }
  gd.on('plotly_relayouting', follow);
  gd.on('plotly_relayout', link);
})();"""


def camera_link_script(scenes: Sequence[str]) -> str:
    """JavaScript for ``fig.to_html(post_script=...)``: rotating one scene rotates the others.

    Plotly has no built-in camera linking. While one scene is dragged
    (``plotly_relayouting``) the others' views follow directly (a
    ``Plotly.relayout`` there would also reset the dragged scene to its unsaved
    camera); when the drag ends (``plotly_relayout``) the camera is written into
    every other scene's layout with ``Plotly.relayout``. No loops: the event our
    own update raises carries the camera we just sent and is ignored; an event
    arriving during an update is applied after it. ``{plot_id}`` is the div's id,
    filled by plotly.
    """
    return _LINK_JS.replace("__SCENES__", json.dumps(list(scenes)))


def linked_html(fig: go.Figure, *, config: dict | None = None) -> str:
    """A whole HTML page of ``fig`` with plotly.js inlined (works offline) and linked cameras."""
    scenes = [name for name in scene_names(8) if name in fig.layout]
    return fig.to_html(
        include_plotlyjs=True,
        full_html=True,
        post_script=camera_link_script(scenes),
        config={"displaylogo": False, "responsive": True, **(config or {})},
        default_width="100%",
        default_height=f"{fig.layout.height or NORMAL.height}px",
    )


# -- contours, planes, slices ----------------------------------------------------------


def contours(
    panels: Sequence[Panel], metric: str = "loss", theme: Theme = NORMAL, *, title: str = ""
) -> go.Figure:
    """Contour maps side by side on one colour axis, with the trained network, path or models."""
    n = max(len(panels), 1)
    fig = make_subplots(
        rows=1, cols=n, subplot_titles=[p.title for p in panels] or None,
        horizontal_spacing=0.06,
    )  # fmt: skip
    zrange = shared_range(panels, metric)
    legend: set[str] = set()
    for k, p in enumerate(panels, 1):
        z = z_of(p.arrays, metric)
        fig.add_trace(
            go.Contour(
                x=p.arrays["x"], y=p.arrays["y"], z=z, coloraxis="coloraxis", ncontours=24,
                line={"width": 0.5, "color": "rgba(255,255,255,0.5)"}, name=p.title,
                hovertemplate=f"<b>{p.title}</b><br>(%{{x:.2f}}, %{{y:.2f}})"
                f"<br>{METRICS[metric]} %{{z:.3f}}<extra></extra>",
            ),
            row=1, col=k,
        )  # fmt: skip
        for trace in _marks(p, theme):
            trace.showlegend = trace.name not in legend
            legend.add(trace.name)
            fig.add_trace(trace, row=1, col=k)
        fig.update_xaxes(title_text=p.axes[0], row=1, col=k)
        fig.update_yaxes(title_text=p.axes[1] if k == 1 else "", row=1, col=k)
    apply(fig, theme, title=title or f"{METRICS[metric]}: contours", height=int(theme.height * 1.1))
    fig.update_layout(coloraxis=_coloraxis(zrange, metric, theme), hovermode="closest")
    fig.update_xaxes(showgrid=False, zeroline=False)
    fig.update_yaxes(showgrid=False, zeroline=False)
    fig.update_annotations(font={"size": theme.font_size + 1})
    if any("<br>" in p.title for p in panels):
        fig.update_layout(margin={"t": theme.title_size * 5})
    return fig


def _marks(panel: Panel, theme: Theme) -> list[go.Scatter]:
    """What a contour panel marks: the trained network, the training path, or the networks."""
    size = theme.marker_size
    if panel.kind == "trajectory":
        xy = np.asarray(panel.arrays["coords"], dtype=float)
        path = np.vstack([xy, [[0.0, 0.0]]])  # the final weights are the plane's origin
        return [
            go.Scatter(
                x=path[:, 0], y=path[:, 1], mode="lines+markers", name="training path",
                line={"color": "white", "width": theme.line_width},
                marker={"color": OKABE_ITO["orange"], "size": size * 0.6,
                        "line": {"color": "black", "width": 1}},
                customdata=np.arange(len(path)),
                hovertemplate="snapshot %{customdata}<br>(%{x:.2f}, %{y:.2f})<extra></extra>",
            ),
            go.Scatter(
                x=[path[0, 0]], y=[path[0, 1]], mode="markers", name="start",
                marker={"symbol": "circle", "color": "white", "size": size * 1.2,
                        "line": {"color": "black", "width": 2}},
                hovertemplate="first snapshot<extra></extra>",
            ),
            go.Scatter(
                x=[0.0], y=[0.0], mode="markers", name="trained network",
                marker={"symbol": "star", "color": OKABE_ITO["vermillion"], "size": size * 1.6,
                        "line": {"color": "white", "width": 1.5}},
                hovertemplate=f"{panel.names[0] if panel.names else 'final'}<extra></extra>",
            ),
        ]  # fmt: skip
    if panel.kind == "models":
        xy = np.asarray(panel.arrays["coords"], dtype=float)
        names = panel.names or [f"network {i + 1}" for i in range(len(xy))]
        letters = ["A", "B", "C"][: len(xy)]
        return [
            go.Scatter(
                x=xy[:, 0], y=xy[:, 1], mode="markers+text", name="networks",
                text=letters, textposition="top center",
                textfont={"color": "white", "size": theme.font_size + 2},
                marker={"symbol": ["star", "diamond", "square"][: len(xy)],
                        "color": OKABE_ITO["vermillion"], "size": size * 1.4,
                        "line": {"color": "white", "width": 1.5}},
                customdata=names[: len(xy)],
                hovertemplate="%{text}: %{customdata}<extra></extra>",
            )
        ]  # fmt: skip
    return [
        go.Scatter(
            x=[0.0], y=[0.0], mode="markers", name="trained network",
            marker={"symbol": "star", "color": OKABE_ITO["vermillion"], "size": size * 1.6,
                    "line": {"color": "white", "width": 1.5}},
            hovertemplate=f"{panel.title}<extra></extra>",
        )
    ]  # fmt: skip


def slices(
    lines: Sequence[tuple[dict, dict]], metric: str = "loss", theme: Theme = NORMAL
) -> go.Figure:
    """1-D slices: loss or accuracy against the step along one direction, a line per run.

    ``lines``: (run record with label/method/seed, arrays with ``x`` and 1-D ``loss``/``acc``).
    """
    fig = go.Figure()
    for record, arrays in lines:
        fig.add_trace(
            go.Scatter(
                x=arrays["x"], y=z_of(arrays, metric), mode="lines", name=record["label"],
                line={"color": method_color(record["method"]), "width": theme.line_width,
                      "dash": SEED_DASHES[int(record.get("seed", 0)) % len(SEED_DASHES)]},
                hovertemplate=f"<b>{record['label']}</b><br>step %{{x:.2f}}"
                f"<br>{METRICS[metric]} %{{y:.3f}}<extra></extra>",
            )
        )  # fmt: skip
    fig.add_vline(x=0, line={"color": GREY, "dash": "dot", "width": 1})
    title = (
        f"1-D slices: {METRICS[metric].lower()} along one direction"
        "<br><sup>filter-normalised random direction; 0 is the trained network</sup>"
    )
    apply(fig, theme, title=title)
    fig.update_xaxes(title_text="Step along the direction")
    fig.update_yaxes(title_text=METRICS[metric])
    return fig


def slice_lines(land: dict, runs: Sequence[dict] | None, load: Load) -> list[tuple[dict, dict]]:
    """(run record, arrays) of each shown run's cached 1-D surface."""
    out = []
    for record in surface_runs(land, runs, dims=1):
        arrays = load(_surface_item(record, 1)["key"])
        if arrays is not None:
            out.append((record, arrays))
    return out


def sharpness_runs(land: dict, runs: Sequence[dict] | None) -> list[dict]:
    """The shown run records whose sharpness is cached."""
    return [r for r in _shown(land, runs) if (r.get("sharpness") or {}).get("status") == "cached"]


def sharpness(land: dict, runs: Sequence[dict] | None, theme: Theme = NORMAL) -> go.Figure:
    """Top Hessian eigenvalues per run (bars by rank) beside the Hessian trace (± 1 s.e.).

    Horizontal bars: a row per run, so long run labels read without rotation.
    """
    records = sharpness_runs(land, runs)
    labels = [r["label"] for r in records]
    colors = [method_color(r["method"]) for r in records]
    fig = make_subplots(
        rows=1, cols=2, horizontal_spacing=0.04, shared_yaxes=True,
        subplot_titles=["Top Hessian eigenvalues", "Hessian trace (±1 s.e.)"],
    )  # fmt: skip
    ranks = max((len(r["sharpness"].get("eigenvalues") or []) for r in records), default=0)
    for k in range(ranks):
        eig = [(r["sharpness"].get("eigenvalues") or [])[k : k + 1] for r in records]
        fig.add_trace(
            go.Bar(
                y=labels, x=[e[0] if e else None for e in eig], name=f"λ{k + 1}",
                orientation="h",
                marker={"color": colors, "opacity": 1.0 - 0.22 * min(k, 3),
                        "pattern": {"shape": RANK_PATTERNS[k % len(RANK_PATTERNS)],
                                    "fgcolor": "white"}},
                hovertemplate=f"<b>%{{y}}</b><br>λ{k + 1} = %{{x:.3g}}<extra></extra>",
            ),
            row=1, col=1,
        )  # fmt: skip
    trace = [r["sharpness"].get("trace") for r in records]
    stderr = [r["sharpness"].get("trace_stderr") for r in records]
    fig.add_trace(
        go.Bar(
            y=labels, x=[_finite(t) for t in trace], name="trace", showlegend=False,
            orientation="h", marker={"color": colors},
            error_x={"type": "data", "array": [_finite(s) or 0.0 for s in stderr],
                     "color": "#444444", "thickness": 1.5, "width": 6},
            customdata=[_finite(s) for s in stderr],
            hovertemplate="<b>%{y}</b><br>trace %{x:.4g} ± %{customdata:.2g}<extra></extra>",
        ),
        row=1, col=2,
    )  # fmt: skip
    batch = records[0]["sharpness"].get("n") if records else None
    title = "Sharpness at each trained network" + (
        f"<br><sup>Hessian of the loss on {batch} samples; sparse runs: surviving weights</sup>"
        if batch
        else ""
    )
    height = max(int(theme.height * 0.8), len(records) * ranks * theme.row_height // 2 + 200)
    apply(fig, theme, title=title, height=height)
    fig.update_layout(
        barmode="group", legend={"y": -0.2 - 40 / height, "traceorder": "normal"},
        margin={"t": theme.title_size * 5},
    )  # fmt: skip
    fig.update_yaxes(ticks="", autorange="reversed")
    fig.update_xaxes(title_text="eigenvalue", rangemode="tozero", row=1, col=1)
    fig.update_xaxes(title_text="tr(H)", rangemode="tozero", row=1, col=2)
    fig.update_annotations(font={"size": theme.font_size + 1})
    return fig


def _finite(value: float | None) -> float | None:
    """``value`` when it is a finite number, else None (a gap, not a zero)."""
    return value if isinstance(value, int | float) and math.isfinite(value) else None


# -- the export's list -------------------------------------------------------------------


def _chunks(items: Sequence, size: int = MOST) -> list[list]:
    """``items`` in consecutive groups of at most ``size``."""
    return [list(items[i : i + size]) for i in range(0, len(items), size)]


def catalogue(summary: dict, reader: Reader | None, theme: Theme = NORMAL) -> list[FigureItem]:
    """The landscape figures of the whole study (default choices, every run, <= 4 side by side).

    ``reader`` is a :class:`dashboard.results.Reader` (its ``surface(key)`` gives the arrays).
    """
    land = summary.get("landscape") or {}
    load: Load = reader.surface if reader is not None else (lambda key: None)
    methods = {r["label"]: r["method"] for r in land.get("runs", [])}
    items: list[FigureItem] = []
    labels = [r["label"] for r in surface_runs(land, None, dims=2)]
    for i, group in enumerate(_chunks(labels), 1):
        panels = [p for _, p in run_panels(land, group, load)]
        if not panels:
            continue
        suffix = f"-{i}" if len(labels) > MOST else ""
        fig3d = surfaces_3d(panels, "loss", theme)
        items += [
            FigureItem(
                "Landscape", f"landscape-surfaces-3d{suffix}", "Loss surfaces around each network",
                "Test loss around each trained network along the same two random directions, "
                "on one height and colour scale: a wider, flatter bowl is a flatter minimum.",
                fig3d, post_script=camera_link_script(scene_names(len(panels))),
            ),
            FigureItem(
                "Landscape", f"landscape-contours{suffix}", "Loss contours around each network",
                "The same surfaces seen from above on one colour scale; the star is the "
                "trained network.",
                contours(panels, "loss", theme, title="Loss contours around each trained network"),
            ),
        ]  # fmt: skip
    for plane, text in (
        ("trajectory", "The loss in the plane that best fits the training path (PCA of "
         "the snapshots); the line is the path, the star the final network."),
        ("models", "The loss in the plane through a network (A), its twin from another seed "
         "(B) and the twin aligned by weight matching (C): aligned twins share a basin."),
    ):  # fmt: skip
        records = plane_records(land, None, plane)
        for i, group in enumerate(_chunks(records), 1):
            panels = plane_panels(group, load, methods)
            if not panels:
                continue
            suffix = f"-{i}" if len(records) > MOST else ""
            items.append(
                FigureItem(
                    "Landscape", f"landscape-plane-{plane}{suffix}", PLANES[plane], text,
                    contours(panels, "loss", theme, title=f"{PLANES[plane]}: loss"),
                )
            )  # fmt: skip
    lines = slice_lines(land, None, load)
    if lines:
        items.append(
            FigureItem(
                "Landscape", "landscape-slices", "1-D loss slices",
                "Test loss along one random direction through each trained network: "
                "steeper walls mean a sharper minimum.",
                slices(lines, "loss", theme),
            )
        )  # fmt: skip
    if sharpness_runs(land, None):
        items.append(
            FigureItem(
                "Landscape", "landscape-sharpness", "Sharpness",
                "Largest Hessian eigenvalues and the Hessian trace of each network's loss: "
                "larger values mean a sharper minimum.",
                sharpness(land, None, theme),
            )
        )  # fmt: skip
    return items
