"""Hessian spectra: eigenvalue density (log y), per-layer sharpness bars, convexity maps.

Each takes the summary's ``spectrum`` section (``show --json``) and the shown
run records; no streamlit, no store.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from dashboard.figures.landscape.records import MOST, shown
from dashboard.figures.theme import NORMAL, SEED_DASHES, Theme, apply, method_color

#: PyHessian's plotting floor (``density_plot.get_esd_plot``: ``density + 1e-7`` on a log axis).
FLOOR = 1e-7
#: The convexity colour scale: 0 (locally convex) dark blue to large negative curvature yellow.
CONVEXITY_SCALE = "Viridis"


def spectrum_runs(spec: dict, runs: Sequence[dict] | None, part: str) -> list[dict]:
    """The shown run records whose ``part`` ('density', 'layers', 'convexity') is cached."""
    return [r for r in shown(spec, runs) if (r.get(part) or {}).get("status") == "cached"]


def _batch(item: dict) -> str:
    """Which loss: "training loss on 500 samples" (or "" when unknown)."""
    split = {"train": "training", "test": "test"}.get(item.get("split"), "")
    n = item.get("n")
    return f"{split} loss" + (f" on {n} samples" if n else "") if split else ""


def spectral_density(spec: dict, runs: Sequence[dict] | None, theme: Theme = NORMAL) -> go.Figure:
    """The Hessian eigenvalue density of each run on a log axis (SLQ, PyHessian's smoothing).

    The curve is the summary's (bin means of the stored curve); values below
    :data:`FLOOR` are drawn at the floor, as PyHessian's plot does.
    """
    records = spectrum_runs(spec, runs, "density")
    fig = go.Figure()
    for r in records:
        d = r["density"]
        fig.add_trace(
            go.Scatter(
                x=d["density_x"], y=[max(v, FLOOR) for v in d["density"]], name=r["label"],
                mode="lines",
                line={"color": method_color(r["method"]), "width": theme.line_width,
                      "dash": SEED_DASHES[r["seed"] % len(SEED_DASHES)]},
                hovertemplate=f"<b>{r['label']}</b><br>λ %{{x:.3g}}<br>density %{{y:.2e}}"
                f"<br>largest Ritz value {d['lambda_max']:.4g}<extra></extra>",
            )
        )  # fmt: skip
    first = records[0]["density"] if records else {}
    probes = first.get("probes")
    said = f"{probes} probe{'s' if probes != 1 else ''} x {first.get('lanczos_steps')} steps"
    title = "Hessian eigenvalue density" + (
        f"<br><sup>{_batch(first)}; SLQ, {said}; own BatchNorm statistics</sup>" if first else ""
    )
    apply(fig, theme, title=title, height=int(theme.height * 1.1))
    fig.update_yaxes(type="log", title_text="density (log)", exponentformat="power")
    fig.update_xaxes(title_text="eigenvalue λ")
    return fig


def _layer_bars(fig: go.Figure, records: list[dict], key: str, col: int, errors: bool) -> None:
    """One bar trace per run: ``key`` of each layer (column ``col``)."""
    for r in records:
        layers = r["layers"]["layers"]
        err = [x.get("trace_stderr") or 0.0 for x in layers] if errors else None
        fig.add_trace(
            go.Bar(
                x=[x["layer"] for x in layers], y=[x[key] for x in layers], name=r["label"],
                legendgroup=r["label"], showlegend=col == 1,
                marker={"color": method_color(r["method"]),
                        "pattern": {"shape": "/" if r["seed"] % 2 else ""}},
                error_y={"type": "data", "array": err, "color": "#444444"} if errors else None,
                hovertemplate=f"<b>{r['label']}</b><br>%{{x}}: %{{y:.4g}}<extra></extra>",
            ),
            row=1, col=col,
        )  # fmt: skip


def layer_sharpness(spec: dict, runs: Sequence[dict] | None, theme: Theme = NORMAL) -> go.Figure:
    """Per layer: the top eigenvalue and the trace (±1 s.e.) of its Hessian block, per run."""
    records = spectrum_runs(spec, runs, "layers")
    fig = make_subplots(
        rows=1, cols=2, horizontal_spacing=0.1,
        subplot_titles=["Top eigenvalue per layer", "Trace per layer (±1 s.e.)"],
    )  # fmt: skip
    _layer_bars(fig, records, "top_eigenvalue", 1, errors=False)
    _layer_bars(fig, records, "trace", 2, errors=True)
    first = records[0]["layers"] if records else {}
    sub = f"<br><sup>Hessian block of each layer's weights; {_batch(first)}</sup>" if first else ""
    apply(fig, theme, title="Sharpness per layer" + sub, height=int(theme.height * 1.1))
    fig.update_layout(barmode="group", margin={"t": theme.title_size * 6})
    fig.update_yaxes(rangemode="tozero")
    fig.update_yaxes(title_text="λ_max of the block", row=1, col=1)
    fig.update_yaxes(title_text="tr(H) of the block", row=1, col=2)
    fig.update_annotations(font={"size": theme.font_size + 1})
    return fig


def _top(records: list[dict]) -> float:
    """The largest finite ratio over the maps (the shared colour range's top; 1 if none)."""
    values = [v for r in records for row in r["convexity"]["ratio"] for v in row]
    finite = [v for v in values if v is not None and math.isfinite(v)]
    return max(finite, default=1.0) or 1.0


def convexity_map(spec: dict, runs: Sequence[dict] | None, theme: Theme = NORMAL) -> go.Figure:
    """Li et al. 2018's ``|λmin/λmax|`` maps side by side (at most :data:`MOST`), one colour range.

    Near 0: the loss is locally convex (little negative curvature); larger:
    significant negative curvature. The star marks the trained network.
    """
    records = spectrum_runs(spec, runs, "convexity")[:MOST]
    n = max(len(records), 1)
    fig = make_subplots(rows=1, cols=n, horizontal_spacing=0.06,
                        subplot_titles=[r["label"] for r in records] or [""])  # fmt: skip
    top = _top(records)
    for k, r in enumerate(records, 1):
        c = r["convexity"]
        fig.add_trace(
            go.Heatmap(
                x=c["x"], y=c["y"], z=c["ratio"], zmin=0.0, zmax=top,
                colorscale=CONVEXITY_SCALE, showscale=k == 1, customdata=c["lambda_min"],
                colorbar={"title": {"text": "|λmin/λmax|"}},
                hovertemplate="(%{x:.2f}, %{y:.2f})<br>|λmin/λmax| %{z:.3g}"
                "<br>λmin %{customdata:.3g}<extra></extra>",
            ),
            row=1, col=k,
        )  # fmt: skip
        fig.add_trace(
            go.Scatter(x=[0.0], y=[0.0], mode="markers", showlegend=False, hoverinfo="skip",
                       marker={"symbol": "star", "size": theme.marker_size + 6,
                               "color": "white", "line": {"color": "black", "width": 1}}),
            row=1, col=k,
        )  # fmt: skip
    first = records[0]["convexity"] if records else {}
    sub = (
        f"<br><sup>on the 2-D surface's plane; {_batch(first)}; eigsh tol {first.get('tol')}</sup>"
        if first
        else ""
    )
    apply(fig, theme, title="Convexity: |λmin / λmax| (Li et al. 2018)" + sub,
          height=int(theme.height * 1.1))  # fmt: skip
    fig.update_layout(margin={"t": theme.title_size * 6})
    fig.update_xaxes(title_text="direction 1", constrain="domain")
    fig.update_yaxes(title_text="direction 2", row=1, col=1)
    fig.update_annotations(font={"size": theme.font_size + 1})
    return fig
