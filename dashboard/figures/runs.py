"""Figures of the trained runs: the runs table, accuracy vs sparsity, sparsity per layer.

Every function takes run records as in ``prunescope show --json`` (the ``runs``
list of the summary, docs/summary.md) and a :class:`~dashboard.figures.theme.Theme`;
none imports streamlit, so the dashboard and the export draw the same figures.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable, Sequence

import pandas as pd
import plotly.graph_objects as go

from dashboard.figures.theme import (
    NORMAL,
    Theme,
    apply,
    method_color,
    method_symbol,
)

TABLE_COLUMNS = (
    "Run",
    "Method",
    "Objective",
    "Seed",
    "Requested sparsity (%)",
    "Achieved sparsity (%)",
    "Test accuracy (%)",
    "Test loss",
    "Nonzero params",
    "Status",
)


def _pct(value: float | None) -> float | None:
    """A fraction as a percentage (None stays None)."""
    return None if value is None else 100.0 * float(value)


def cached(runs: Iterable[dict]) -> list[dict]:
    """The runs whose results are in the store."""
    return [r for r in runs if r.get("status") == "cached" and r.get("test_acc") is not None]


def runs_table(runs: Sequence[dict]) -> pd.DataFrame:
    """One row per run: identity, requested/achieved sparsity, accuracy, loss, size, status."""
    rows = []
    for r in runs:
        rows.append(
            {
                "Run": r["label"],
                "Method": r["method"],
                "Objective": r.get("objective", "ce"),
                "Seed": r.get("seed"),
                "Requested sparsity (%)": _pct(r.get("requested_sparsity")),
                "Achieved sparsity (%)": _pct(r.get("achieved_sparsity")),
                "Test accuracy (%)": _pct(r.get("test_acc")),
                "Test loss": r.get("test_loss"),
                "Nonzero params": r.get("nonzero_params"),
                "Status": r.get("error") and f"failed: {r['error']}" or r.get("status"),
            }
        )
    frame = pd.DataFrame(rows, columns=list(TABLE_COLUMNS))
    frame["Nonzero params"] = frame["Nonzero params"].astype("Int64")
    if any(r.get("sparsity_unit") == "channels" for r in runs):
        # l1-structured counts whole channels: say what the requested number counts.
        units = [r.get("sparsity_unit") or "" for r in runs]
        frame.insert(list(frame.columns).index("Achieved sparsity (%)"), "Sparsity of", units)
    if frame["Objective"].nunique() <= 1:
        frame = frame.drop(columns="Objective")  # said once in the study, not on every row
    return frame


def status_table(records: Sequence[dict]) -> pd.DataFrame:
    """One row per result of a part: what it is, its status, and why it failed."""
    return pd.DataFrame(
        {
            "Result": [r["label"] for r in records],
            "Kind": [r["kind"] for r in records],
            "Status": [r["status"] for r in records],
            "Reason": [r.get("error") or "" for r in records],
        }
    )


def _groups(runs: Iterable[dict]) -> dict[tuple[str, str], list[dict]]:
    """Runs grouped by (method, objective), in order of first appearance."""
    out: dict[tuple[str, str], list[dict]] = {}
    for r in runs:
        out.setdefault((r["method"], r.get("objective", "ce")), []).append(r)
    return out


def _series_name(method: str, objective: str, several_objectives: bool) -> str:
    """Legend name of a method (with its objective when the study has several)."""
    return f"{method} ({objective})" if several_objectives else method


def _run_hover() -> str:
    """Hover text of one run's marker (customdata: label, test loss)."""
    return (
        "<b>%{customdata[0]}</b><br>achieved sparsity %{x:.1f}%"
        "<br>test accuracy %{y:.2f}%<br>test loss %{customdata[1]:.3f}<extra></extra>"
    )


def accuracy_vs_sparsity(runs: Sequence[dict], theme: Theme = NORMAL) -> go.Figure:
    """Test accuracy against achieved sparsity: seeds as markers, a mean line per method.

    The dense runs are drawn as a reference: a dashed line at their mean accuracy
    and a shaded band over their range across seeds.
    """
    done = cached(runs)
    fig = go.Figure()
    several = len({r.get("objective", "ce") for r in done}) > 1
    xs = [100 * r["achieved_sparsity"] for r in done] or [0.0]
    x_lo, x_hi = -4.0, max(max(xs) + 6.0, 10.0)
    for (method, objective), group in _groups(done).items():
        name = _series_name(method, objective, several)
        color = method_color(method)
        if method == "dense":
            accs = [100 * r["test_acc"] for r in group]
            mean, lo, hi = statistics.fmean(accs), min(accs), max(accs)
            fig.add_trace(
                go.Scatter(
                    x=[x_lo, x_hi, x_hi, x_lo, x_lo],
                    y=[lo, lo, hi, hi, lo],
                    mode="lines",
                    fill="toself",
                    fillcolor="rgba(0,0,0,0.10)",
                    line={"width": 0},
                    hoverinfo="skip",
                    legendgroup=name,
                    showlegend=False,
                    name=f"{name} range",
                )
            )
            fig.add_trace(
                go.Scatter(
                    x=[x_lo, x_hi],
                    y=[mean, mean],
                    mode="lines",
                    line={"color": color, "dash": "dash", "width": theme.line_width},
                    name=f"{name} (mean, band = seed range)"
                    if len(accs) > 1
                    else f"{name} (reference)",
                    legendgroup=name,
                    hovertemplate=f"<b>{name}</b> mean test accuracy %{{y:.2f}}%"
                    f"<br>range over seeds {lo:.2f}-{hi:.2f}%<extra></extra>",
                )
            )
        by_level: dict[float, list[dict]] = {}
        for r in group:
            by_level.setdefault(r["requested_sparsity"], []).append(r)
        if any(len(rs) > 1 for rs in by_level.values()) or method == "dense":
            fig.add_trace(
                go.Scatter(
                    x=[100 * r["achieved_sparsity"] for r in group],
                    y=[100 * r["test_acc"] for r in group],
                    mode="markers",
                    marker={
                        "color": color,
                        "symbol": method_symbol(method),
                        "size": theme.marker_size * 0.8,
                        "opacity": 0.55 if method != "dense" else 0.9,
                        "line": {"width": 0},
                    },
                    customdata=[[r["label"], r.get("test_loss")] for r in group],
                    hovertemplate=_run_hover(),
                    name=f"{name} seeds",
                    legendgroup=name,
                    showlegend=False,
                )
            )
        if method == "dense":
            continue
        levels = sorted(
            by_level.items(), key=lambda kv: statistics.fmean(r["achieved_sparsity"] for r in kv[1])
        )
        means_x = [statistics.fmean(100 * r["achieved_sparsity"] for r in rs) for _, rs in levels]
        means_y = [statistics.fmean(100 * r["test_acc"] for r in rs) for _, rs in levels]
        spread = [
            statistics.stdev(100 * r["test_acc"] for r in rs) if len(rs) > 1 else 0.0
            for _, rs in levels
        ]
        labels = [
            rs[0]["label"] if len(rs) == 1 else f"{name} mean of {len(rs)} seeds"
            for _, rs in levels
        ]
        fig.add_trace(
            go.Scatter(
                x=means_x,
                y=means_y,
                mode="lines+markers",
                line={"color": color, "width": theme.line_width},
                marker={
                    "color": color,
                    "symbol": method_symbol(method),
                    "size": theme.marker_size,
                    "line": {"color": "white", "width": 1},
                },
                error_y={"type": "data", "array": spread, "visible": any(spread), "width": 4},
                customdata=[[lab, sd] for lab, sd in zip(labels, spread, strict=True)],
                hovertemplate="<b>%{customdata[0]}</b><br>achieved sparsity %{x:.1f}%"
                "<br>test accuracy %{y:.2f}% (sd %{customdata[1]:.2f})<extra></extra>",
                name=name,
                legendgroup=name,
            )
        )
    apply(fig, theme, title="Test accuracy vs achieved sparsity")
    fig.update_xaxes(title_text="Achieved sparsity (% of prunable weights)", range=[x_lo, x_hi])
    fig.update_yaxes(title_text="Test accuracy (%)")
    fig.update_layout(hovermode="closest")
    return fig


def _layer_name(name: str) -> str:
    """A weight's name as a column label (``body.fc0.weight`` -> ``body.fc0``)."""
    return name.removesuffix(".weight")


def layer_sparsity_heatmap(runs: Sequence[dict], theme: Theme = NORMAL) -> go.Figure:
    """Sparsity of every prunable layer of every run, as a runs x layers heatmap (%)."""
    done = [r for r in cached(runs) if r.get("layer_sparsity")]
    layers: list[str] = []
    for r in done:
        layers.extend(n for n in r["layer_sparsity"] if n not in layers)
    z = [[_pct(r["layer_sparsity"].get(n)) for n in layers] for r in done]
    fig = go.Figure(
        go.Heatmap(
            z=z,
            x=[_layer_name(n) for n in layers],
            y=[r["label"] for r in done],
            zmin=0,
            zmax=100,
            colorscale="Viridis",
            colorbar={"title": {"text": "Sparsity (%)", "side": "right"}, "ticksuffix": "%"},
            texttemplate="%{z:.0f}%" if len(layers) * len(done) <= 400 else None,
            textfont={"size": max(theme.font_size - 2, 10)},
            hovertemplate="<b>%{y}</b><br>layer %{x}<br>sparsity %{z:.1f}%<extra></extra>",
            xgap=1,
            ygap=1,
        )
    )
    height = max(int(theme.height * 0.7), theme.row_height * len(done) + 4 * theme.title_size + 60)
    apply(fig, theme, title="Sparsity per layer", height=height)
    fig.update_xaxes(title_text="Layer (prunable weight)", showgrid=False, ticks="")
    fig.update_yaxes(title_text="", autorange="reversed", showgrid=False, ticks="")
    return fig
