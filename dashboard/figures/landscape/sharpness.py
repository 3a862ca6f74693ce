"""Sharpness bars: top Hessian eigenvalues per run beside the Hessian trace and its error."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from dashboard.figures.bands import group_name, interval, subtitle
from dashboard.figures.landscape.records import group_records, shown
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


def _title(records: list[dict], said: str = "") -> str:
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
        + f"{on}<br>own BatchNorm statistics; sparse runs: surviving weights"
        + (f"; {said}" if said else "")
        + "</sup>"
    )


@dataclass
class Row:
    """One bar row: a run, or a method over seeds (mean, with its 95% interval as errors).

    ``eig``/``eig_low``/``eig_high``: per eigenvalue rank (None: no value);
    ``trace_low``/``trace_high``: the error bar's ends; ``text``: written beside the trace.
    """

    label: str
    method: str
    eig: list
    eig_low: list
    eig_high: list
    trace: float | None
    trace_low: float | None
    trace_high: float | None
    text: str


def _run_row(record: dict) -> Row:
    """A run's row: its eigenvalues, its trace ± 1 standard error."""
    item = record["sharpness"]
    eig = [_finite(v) for v in item.get("eigenvalues") or []]
    trace, se = _finite(item.get("trace")), _finite(item.get("trace_stderr")) or 0.0
    low, high = (None, None) if trace is None else (trace - se, trace + se)
    return Row(record["label"], record["method"], eig, eig, eig, trace, low, high,
               _error_text(item))  # fmt: skip


def _group_row(name: str, method: str, records: list[dict]) -> Row:
    """A method's row: the mean over its seeds and the Student-t 95% interval."""
    items = [r["sharpness"] for r in records]
    ranks = max((len(s.get("eigenvalues") or []) for s in items), default=0)
    values = np.full((len(items), ranks + 1), np.nan)
    for i, s in enumerate(items):
        eig = [_finite(v) for v in (s.get("eigenvalues") or [])]
        values[i, : len(eig)] = [np.nan if v is None else v for v in eig]
        trace = _finite(s.get("trace"))
        values[i, ranks] = np.nan if trace is None else trace
    mean, low, high = (
        [None if not np.isfinite(v) else float(v) for v in a] for a in interval(values)
    )
    return Row(name, method, mean[:ranks], low[:ranks], high[:ranks], mean[ranks],
               low[ranks], high[ranks], "")  # n is in the subtitle  # fmt: skip


def _errors(mean: list, low: list, high: list) -> dict:
    """Plotly's asymmetric ``error_x`` from an interval's ends (0 where there is none)."""
    plus = [0.0 if m is None or h is None else h - m for m, h in zip(mean, high, strict=True)]
    minus = [0.0 if m is None or lo is None else m - lo for m, lo in zip(mean, low, strict=True)]
    return {"type": "data", "symmetric": False, "array": plus, "arrayminus": minus,
            "color": "#444444", "thickness": 1.5, "width": 6}  # fmt: skip


def _eigen_bars(fig: go.Figure, rows: list[Row], grouped: bool) -> int:
    """Add one bar trace per eigenvalue rank (column 1); returns the number of ranks."""
    ranks = max((len(r.eig) for r in rows), default=0)
    labels = [r.label for r in rows]
    colors = [method_color(r.method) for r in rows]
    for k in range(ranks):
        at = [r.eig[k] if k < len(r.eig) else None for r in rows]
        extra = {}
        if grouped:
            lows = [r.eig_low[k] if k < len(r.eig) else None for r in rows]
            highs = [r.eig_high[k] if k < len(r.eig) else None for r in rows]
            extra["error_x"] = _errors(at, lows, highs)
        fig.add_trace(
            go.Bar(
                y=labels, x=at, name=f"λ{k + 1}", orientation="h",
                marker={"color": colors, "opacity": 1.0 - 0.22 * min(k, 3),
                        "pattern": {"shape": RANK_PATTERNS[k % len(RANK_PATTERNS)],
                                    "fgcolor": "white"}},
                hovertemplate=f"<b>%{{y}}</b><br>λ{k + 1} = %{{x:.3g}}<extra></extra>", **extra,
            ),
            row=1, col=1,
        )  # fmt: skip
    return ranks


def _rows(records: list[dict], runs: Sequence[dict] | None, by_method: bool) -> tuple[list, str]:
    """The bar rows (one per run, or one per method over seeds) and what a row is, in words."""
    if not by_method:
        return [_run_row(r) for r in records], ""
    groups = group_records(records, runs)
    rows = [
        _group_row(group_name(key, list(groups)), key.method, members)
        for key, members in groups.items()
    ]
    said = subtitle(groups).replace("band:", "error bars:") if groups else ""
    return rows, said


def sharpness(
    land: dict, runs: Sequence[dict] | None, theme: Theme = NORMAL, *, by_method: bool = False
) -> go.Figure:
    """Top Hessian eigenvalues per run (bars by rank) beside the Hessian trace (± 1 s.e.).

    Horizontal bars: a row per run, so long run labels read without rotation.
    The trace's relative standard error (and probes used) is written beside each bar.
    ``by_method``: a row per method over seeds instead (``runs``, the summary's
    records, place each run): the mean, with its Student-t 95% interval as error bars.
    """
    records = sharpness_runs(land, runs)
    rows, said = _rows(records, runs, by_method)
    fig = make_subplots(
        rows=1, cols=2, horizontal_spacing=0.04, shared_yaxes=True,
        subplot_titles=["Top Hessian eigenvalues",
                        "Hessian trace (95% interval)" if by_method else "Hessian trace (±1 s.e.)"],
    )  # fmt: skip
    ranks = _eigen_bars(fig, rows, by_method)
    fig.add_trace(
        go.Bar(
            y=[r.label for r in rows], x=[r.trace for r in rows], name="trace",
            showlegend=False, orientation="h",
            marker={"color": [method_color(r.method) for r in rows]},
            error_x=_errors([r.trace for r in rows], [r.trace_low for r in rows],
                            [r.trace_high for r in rows]),
            text=[r.text for r in rows], textposition="outside", cliponaxis=False,
            hovertemplate="<b>%{y}</b><br>trace %{x:.4g}<br>%{text}<extra></extra>",
        ),
        row=1, col=2,
    )  # fmt: skip
    height = max(int(theme.height * 0.8), len(rows) * ranks * theme.row_height // 2 + 200)
    apply(fig, theme, title=_title(records, said), height=height)
    fig.update_layout(
        barmode="group", legend={"y": -0.2 - 40 / height, "traceorder": "normal"},
        margin={"t": theme.title_size * (8 if said else 7)},
    )  # fmt: skip
    ends = [r.trace_high or r.trace or 0.0 for r in rows]
    if ends and max(ends) > 0:  # room right of the longest bar for its "±x% (n probes)" text
        fig.update_xaxes(range=[0, 1.8 * max(ends)], row=1, col=2)
    fig.update_yaxes(ticks="", autorange="reversed")
    fig.update_xaxes(title_text="eigenvalue", rangemode="tozero", row=1, col=1)
    fig.update_xaxes(title_text="tr(H)", rangemode="tozero", row=1, col=2)
    fig.update_annotations(font={"size": theme.font_size + 1})
    return fig
