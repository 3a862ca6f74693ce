"""Figures of curved paths (Garipov et al. 2018): the trained curve beside the straight line.

Every function takes the summary's ``connectivity`` section (``conn``; its
``curves`` records, docs/summary.md) and the run records the sidebar shows. A
curve is shown when both its runs are. Colours are the alignments'; the
straight line is dotted, the curve solid. No streamlit here.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from dashboard.figures.items import FigureItem
from dashboard.figures.pairs import (
    PANELS_PER_ROW,
    alignment_name,
    empty_figure,
    finish_path_grid,
    group_of,
    method_tick,
)
from dashboard.figures.theme import NORMAL, Theme, apply, method_color

#: How each curve kind is named.
CURVE_NAMES = {"bezier": "Bezier", "polychain": "chain"}


def shown_curves(conn: dict, runs: Sequence[dict]) -> list[dict]:
    """The cached curves whose two runs are shown."""
    labels = {r["label"] for r in runs}
    return [
        c
        for c in conn.get("curves", [])
        if c.get("status") == "cached" and c["run_a"] in labels and c["run_b"] in labels
    ]


def curve_name(c: dict) -> str:
    """'weight matching, Bezier (1 bend)'."""
    bends = f"{c['bends']} bend{'s' * (c['bends'] != 1)}"
    return f"{alignment_name(c['alignment'])}, " + (
        f"{CURVE_NAMES.get(c['curve_kind'], c['curve_kind'])} ({bends})"
    )


def _line_name(c: dict) -> str:
    """'weight matching, straight line'."""
    return f"{alignment_name(c['alignment'])}, straight line"


def _groups(curves: Sequence[dict]) -> dict[str, list[dict]]:
    """Curves by panel (the pair's run B without the seed), in summary order."""
    out: dict[str, list[dict]] = {}
    for c in curves:
        out.setdefault(group_of({**c, "pair": "seeds"}), []).append(c)
    return out


def _traces(
    c: dict, split: str, theme: Theme, line: bool
) -> list[tuple[str, dict, list[float], list[float]]]:
    """(name, line style, loss, accuracy %) of the straight line (if ``line``), then the curve."""
    color = method_color(c["method"])
    drawn = [(curve_name(c), c["curve"], None)]  # the straight line is the dotted one
    if line:
        drawn.insert(0, (_line_name(c), c["line"]["curve"], "dot"))
    out = []
    for name, values, dash in drawn:
        style = {"color": color, "width": theme.line_width, "dash": dash}
        acc = [100 * a for a in values[f"{split}_acc"]]
        out.append((name, style, values[f"{split}_loss"], acc))
    return out


def curve_paths(
    conn: dict, runs: Sequence[dict], split: str = "test", theme: Theme = NORMAL
) -> go.Figure:
    """Loss (top) and accuracy (bottom) along each trained curve (solid) and the straight
    line between the same ends (dotted): a panel per pair, a marker per alignment."""
    title = f"Curve against straight line ({split}) · Garipov et al. 2018"
    groups = _groups(shown_curves(conn, runs))
    if not groups:
        return empty_figure(theme, title, "No trained curve of the shown runs.")
    cols = min(len(groups), PANELS_PER_ROW, theme.max_cols)
    blocks = math.ceil(len(groups) / cols)
    titles: list[str] = []
    for b in range(blocks):
        names = list(groups)[b * cols : (b + 1) * cols]
        titles += [method_tick(n, groups[n][0]["method"]) for n in names]
        titles += [""] * (cols - len(names)) + [""] * cols
    fig = make_subplots(
        rows=2 * blocks, cols=cols, subplot_titles=titles, shared_xaxes=True,
        horizontal_spacing=0.04, vertical_spacing=min(0.08, 0.4 / blocks),
    )  # fmt: skip
    in_legend: set[str] = set()
    for k, curves in enumerate(groups.values()):
        row, col = 2 * (k // cols) + 1, k % cols + 1
        lines: set[str] = set()  # two curve kinds of a pair share its straight line
        for c in curves:
            ts = c["curve"]["alphas"]
            for name, style, loss, acc in _traces(c, split, theme, c["alignment"] not in lines):
                lines.add(c["alignment"])
                common = dict(x=ts, mode="lines", line=style, name=name, legendgroup=name)
                fig.add_trace(
                    go.Scatter(
                        y=loss, showlegend=name not in in_legend, **common,
                        hovertemplate=f"<b>{name}</b><br>t %{{x:.2f}}<br>loss %{{y:.3f}}"
                        f"<extra>{c['run_a']} ~ {c['run_b']}</extra>",
                    ),
                    row=row, col=col,
                )  # fmt: skip
                fig.add_trace(
                    go.Scatter(
                        y=acc, showlegend=False, **common,
                        hovertemplate=f"<b>{name}</b><br>t %{{x:.2f}}<br>accuracy %{{y:.1f}}%"
                        "<extra></extra>",
                    ),
                    row=row + 1, col=col,
                )  # fmt: skip
                in_legend.add(name)
    return finish_path_grid(fig, theme, title, blocks, cols, "t (0 = A, 1 = B)")


def curve_barriers(
    conn: dict, runs: Sequence[dict], split: str = "test", theme: Theme = NORMAL
) -> go.Figure:
    """The loss barrier (Entezari) of each curve beside its straight line's, per pair."""
    title = (
        f"Loss barrier: curve against straight line ({split})"
        "<br><sup>max loss above the line joining the ends</sup>"
    )
    curves = shown_curves(conn, runs)
    if not curves:
        return empty_figure(theme, title, "No trained curve of the shown runs.")
    y = [f"{group_of({**c, 'pair': 'seeds'})} · {curve_name(c)}" for c in curves]
    fig = go.Figure()
    for which, key, pattern in (("straight line", "line", "/"), ("curve", None, "")):
        values = [(c[key] if key else c)["barriers"][split]["barrier_entezari"] for c in curves]
        fig.add_trace(
            go.Bar(
                y=y, x=values, orientation="h", name=which,
                marker={"color": [method_color(c["method"]) for c in curves],
                        "pattern": {"shape": pattern, "fgcolor": "white"}},
                texttemplate="%{x:.3f}", textposition="outside", cliponaxis=False,
                hovertemplate=f"<b>{which}</b><br>%{{y}}<br>barrier %{{x:.3f}}<extra></extra>",
            )
        )  # fmt: skip
    height = max(int(theme.height * 0.7), len(curves) * 2 * theme.row_height + 160)
    apply(fig, theme, title=title, height=height)
    fig.update_layout(barmode="group", margin={"t": theme.title_size * 5})
    fig.update_xaxes(title_text="Loss barrier", rangemode="tozero")
    fig.update_yaxes(autorange="reversed")
    return fig


def curve_history(conn: dict, runs: Sequence[dict], theme: Theme = NORMAL) -> go.Figure:
    """Mean training loss of each curve's bends per epoch (t drawn uniformly per batch)."""
    title = "Training the bends<br><sup>mean loss over the epoch, one t ~ U(0, 1) per batch</sup>"
    curves = [c for c in shown_curves(conn, runs) if c.get("history")]
    if not curves:
        return empty_figure(theme, title, "No curve was trained (0 epochs) for the shown runs.")
    fig = go.Figure()
    for c in curves:
        name = f"{group_of({**c, 'pair': 'seeds'})} · {curve_name(c)}"
        fig.add_trace(
            go.Scatter(
                x=[h["epoch"] for h in c["history"]], y=[h["loss"] for h in c["history"]],
                mode="lines+markers", name=name,
                line={"color": method_color(c["method"]),
                      "width": theme.line_width,
                      "dash": "dash" if c["curve_kind"] == "polychain" else None},
                hovertemplate=f"<b>{name}</b><br>epoch %{{x}}<br>loss %{{y:.3f}}<extra></extra>",
            )
        )  # fmt: skip
    apply(fig, theme, title=title)
    fig.update_xaxes(title_text="Epoch")
    fig.update_yaxes(title_text="Mean training loss")
    return fig


def catalogue_items(conn: dict, runs: Sequence[dict], theme: Theme = NORMAL) -> list[FigureItem]:
    """The curve figures the export shows, when any curve is computed."""
    if not shown_curves(conn, runs):
        return []
    return [
        FigureItem(
            "Connectivity", "connectivity-curves",
            "Trained curve against the straight line",
            "A bend trained to keep the loss low joins two networks the straight line "
            "joins only over a barrier (Garipov et al. 2018); dotted: the straight line.",
            curve_paths(conn, runs, "test", theme),
        ),
        FigureItem(
            "Connectivity", "connectivity-curve-barriers",
            "Loss barrier of the curve and of the straight line",
            "Height of the test-loss bump above the line joining the ends, per pair.",
            curve_barriers(conn, runs, "test", theme),
        ),
    ]  # fmt: skip
