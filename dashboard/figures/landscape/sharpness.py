"""Sharpness bars: top Hessian eigenvalues per run beside the Hessian trace and its error."""

from __future__ import annotations

import math
from collections.abc import Sequence

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from dashboard.figures.landscape.records import shown
from dashboard.figures.theme import NORMAL, Theme, apply, method_color

#: Pattern per eigenvalue rank in the sharpness bars.
RANK_PATTERNS = ["", "/", ".", "x", "-"]


def sharpness_runs(land: dict, runs: Sequence[dict] | None) -> list[dict]:
    """The shown run records whose sharpness is cached."""
    return [r for r in shown(land, runs) if (r.get("sharpness") or {}).get("status") == "cached"]


def _finite(value: float | None) -> float | None:
    """``value`` when it is a finite number, else None (a gap, not a zero)."""
    return value if isinstance(value, int | float) and math.isfinite(value) else None


def _error_text(item: dict) -> str:
    """The trace's relative standard error and probes, e.g. "±1.9% (140 probes)", or why none."""
    rel, probes = _finite(item.get("trace_rel_error")), item.get("trace_probes")
    if rel is None:
        return item.get("trace_reason", "")
    return f"±{100 * rel:.1f}%" + (f"<br>{probes} probes" if probes else "")


def _title(records: list[dict]) -> str:
    """The figure's title: which loss, on how many samples, which BatchNorm statistics."""
    if not records:
        return "Sharpness at each trained network"
    item = records[0]["sharpness"]
    split = {"train": "training", "test": "test"}.get(item.get("split"), "")
    n = item.get("n")
    on = f" on {n} samples" if n else ""
    return (
        "Sharpness at each trained network<br><sup>Hessian of the "
        + (f"{split} loss" if split else "loss")
        + f"{on}<br>own BatchNorm statistics; sparse runs: surviving weights</sup>"
    )


def _eigen_bars(fig: go.Figure, records: list[dict], labels: list[str], colors: list[str]) -> int:
    """Add one bar trace per eigenvalue rank (column 1); returns the number of ranks."""
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
    return ranks


def sharpness(land: dict, runs: Sequence[dict] | None, theme: Theme = NORMAL) -> go.Figure:
    """Top Hessian eigenvalues per run (bars by rank) beside the Hessian trace (± 1 s.e.).

    Horizontal bars: a row per run, so long run labels read without rotation.
    The trace's relative standard error (and probes used) is written beside each bar.
    """
    records = sharpness_runs(land, runs)
    labels = [r["label"] for r in records]
    colors = [method_color(r["method"]) for r in records]
    fig = make_subplots(
        rows=1, cols=2, horizontal_spacing=0.04, shared_yaxes=True,
        subplot_titles=["Top Hessian eigenvalues", "Hessian trace (±1 s.e.)"],
    )  # fmt: skip
    ranks = _eigen_bars(fig, records, labels, colors)
    items = [r["sharpness"] for r in records]
    stderr = [_finite(s.get("trace_stderr")) for s in items]
    fig.add_trace(
        go.Bar(
            y=labels, x=[_finite(s.get("trace")) for s in items], name="trace",
            showlegend=False, orientation="h", marker={"color": colors},
            error_x={"type": "data", "array": [s or 0.0 for s in stderr],
                     "color": "#444444", "thickness": 1.5, "width": 6},
            text=[_error_text(s) for s in items], textposition="outside", cliponaxis=False,
            customdata=stderr,
            hovertemplate="<b>%{y}</b><br>trace %{x:.4g} ± %{customdata:.2g}"
            "<br>relative error %{text}<extra></extra>",
        ),
        row=1, col=2,
    )  # fmt: skip
    height = max(int(theme.height * 0.8), len(records) * ranks * theme.row_height // 2 + 200)
    apply(fig, theme, title=_title(records), height=height)
    fig.update_layout(
        barmode="group", legend={"y": -0.2 - 40 / height, "traceorder": "normal"},
        margin={"t": theme.title_size * 7},
    )  # fmt: skip
    ends = [
        (_finite(s.get("trace")) or 0.0) + (e or 0.0) for s, e in zip(items, stderr, strict=True)
    ]
    if ends and max(ends) > 0:  # room right of the longest bar for its "±x% (n probes)" text
        fig.update_xaxes(range=[0, 1.8 * max(ends)], row=1, col=2)
    fig.update_yaxes(ticks="", autorange="reversed")
    fig.update_xaxes(title_text="eigenvalue", rangemode="tozero", row=1, col=1)
    fig.update_xaxes(title_text="tr(H)", rangemode="tozero", row=1, col=2)
    fig.update_annotations(font={"size": theme.font_size + 1})
    return fig
