"""Ensembles against interpolation (Entezari et al. 2022): one figure, per pair of seeds.

Takes the summary's ``connectivity`` section (``conn``): each cached pair of
seeds carries ``ensemble`` (the two endpoints' mean softmax) and ``midpoint``
(the aligned network at alpha 0.5, with REPAIR for REPAIR pairs), beside the
endpoints' own accuracy (the ends of its ``curve``). No streamlit here.
"""

from __future__ import annotations

from collections.abc import Sequence

import plotly.graph_objects as go

from dashboard.figures.items import FigureItem
from dashboard.figures.pairs import (
    empty_figure,
    group_of,
    marker,
    method_tick,
    shown_pairs,
    variant_of,
    variant_style,
)
from dashboard.figures.theme import NORMAL, SLATE, Theme, apply


def ensemble_pairs(conn: dict, runs: Sequence[dict]) -> list[dict]:
    """The shown pairs of seeds that carry an ensemble and a midpoint."""
    return [
        p
        for p in shown_pairs(conn, runs)
        if p.get("pair") == "seeds" and p.get("ensemble") and p.get("midpoint")
    ]


def ensemble_vs_midpoint(
    conn: dict, runs: Sequence[dict], split: str = "test", theme: Theme = NORMAL
) -> go.Figure:
    """Accuracy of the two ends (grey), their ensemble (black) and each variant's midpoint
    (the alignment's colour, open with REPAIR): a row per pair of seeds."""
    title = (
        f"Ensemble against interpolation ({split})"
        "<br><sup>mean softmax of the two networks vs the one network halfway between them</sup>"
    )
    pairs = ensemble_pairs(conn, runs)
    if not pairs:
        return empty_figure(theme, title, "No pair of seeds of the shown runs is computed.")
    fig = go.Figure()
    rows: dict[str, dict] = {}
    for p in pairs:
        rows.setdefault(group_of(p), p)
    size = theme.marker_size
    ends = [(g, 100 * p["curve"][f"{split}_acc"][i]) for g, p in rows.items() for i in (0, -1)]
    fig.add_trace(
        go.Scatter(
            x=[a for _, a in ends], y=[g for g, _ in ends], mode="markers", name="the two ends",
            marker={"color": SLATE, "symbol": "line-ns-open", "size": size * 1.6,
                    "line": {"width": 2}},
            hovertemplate="<b>an end</b><br>%{y}<br>accuracy %{x:.1f}%<extra></extra>",
        )
    )  # fmt: skip
    fig.add_trace(
        go.Scatter(
            x=[100 * p["ensemble"][f"{split}_acc"] for p in rows.values()], y=list(rows),
            mode="markers", name="ensemble (mean softmax)",
            marker={"color": "#1F2328", "symbol": "star", "size": size * 1.3},
            hovertemplate="<b>ensemble</b><br>%{y}<br>accuracy %{x:.1f}%<extra></extra>",
        )
    )  # fmt: skip
    variants: dict[str, list[dict]] = {}
    for p in pairs:
        variants.setdefault(variant_of(p), []).append(p)
    for name, ps in variants.items():
        fig.add_trace(
            go.Scatter(
                x=[100 * p["midpoint"][f"{split}_acc"] for p in ps],
                y=[group_of(p) for p in ps], mode="markers", name=f"midpoint, {name}",
                marker={**marker(ps[0], theme), "size": size,
                        "color": variant_style(ps[0], theme)["color"], "line": {"width": 2}},
                hovertemplate=f"<b>midpoint, {name}</b><br>%{{y}}<br>accuracy %{{x:.1f}}%"
                "<extra></extra>",
            )
        )  # fmt: skip
    height = max(int(theme.height * 0.7), len(rows) * 3 * theme.row_height + 220)
    apply(fig, theme, title=title, height=height)
    fig.update_layout(legend={"y": -0.15 - 60 / height}, margin={"t": theme.title_size * 5})
    fig.update_xaxes(title_text="Accuracy (%)")
    ticks = {g: method_tick(g, p["method"]) for g, p in rows.items()}
    fig.update_yaxes(
        categoryorder="array", categoryarray=list(ticks)[::-1],
        tickvals=list(ticks), ticktext=list(ticks.values()),
    )  # fmt: skip
    return fig


def catalogue_items(conn: dict, runs: Sequence[dict], theme: Theme = NORMAL) -> list[FigureItem]:
    """The ensemble figure the export shows, when a pair of seeds is computed."""
    if not ensemble_pairs(conn, runs):
        return []
    return [
        FigureItem(
            "Connectivity", "connectivity-ensembles",
            "Ensemble against interpolation",
            "Test accuracy of the two networks' averaged predictions (star) beside the one "
            "network halfway along the path after each alignment (Entezari et al. 2022).",
            ensemble_vs_midpoint(conn, runs, "test", theme),
        )
    ]  # fmt: skip
