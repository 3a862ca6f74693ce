"""Figures of REPAIR (Jordan et al. 2022): barriers with and without it, and variance collapse.

Every function takes the summary's ``connectivity`` section (``conn``; see
docs/summary.md) and the run records the sidebar shows. A pair's REPAIR
variant carries ``variance``: per layer (each ReLU, forward order), the
interpolated network's std at alpha 0.5 over the endpoints' average std,
before and after REPAIR, at the ReLU's input (``pre``) and output (``post``).
No streamlit here.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from dashboard.figures.items import FigureItem
from dashboard.figures.pairs import (
    ALIGNMENT_SYMBOLS,
    PANELS_PER_ROW,
    alignment_name,
    empty_figure,
    method_tick,
    pair_groups,
    shown_pairs,
)
from dashboard.figures.theme import NORMAL, SLATE, Theme, apply, method_color

#: Which pairs the Connectivity page draws: both variants, or only one.
REPAIR_MODES = {"both": "Both", "off": "Without REPAIR", "on": "With REPAIR"}
#: Where the variance collapse is measured.
WHERE = {"post": "Activation (ReLU output)", "pre": "Pre-activation (REPAIR's point)"}


def with_repair(conn: dict, mode: str) -> dict:
    """``conn`` with only the pairs of REPAIR ``mode`` ('both', 'off', 'on')."""
    if mode == "both":
        return conn
    want = mode == "on"
    return {**conn, "pairs": [p for p in conn.get("pairs", []) if bool(p.get("repair")) == want]}


def variance_pairs(conn: dict, runs: Sequence[dict]) -> list[dict]:
    """The shown REPAIR pairs that carry a variance-collapse record."""
    return [p for p in shown_pairs(conn, runs) if p.get("repair") and p.get("variance")]


def _short(layer: str) -> str:
    """A layer's tick: its module name without the ``body.`` prefix."""
    return layer.removeprefix("body.")


def variance_collapse(
    conn: dict, runs: Sequence[dict], where: str = "post", theme: Theme = NORMAL
) -> go.Figure:
    """Per layer, the midpoint's std over the endpoints' average, before (solid) and after
    (dashed) REPAIR: a panel per pair, a line per alignment; 1 (grey) is no collapse."""
    title = (
        f"Variance collapse at alpha 0.5 · {WHERE[where].lower()}"
        "<br><sup>std of the interpolated network / mean std of the two ends, per layer"
        "</sup>"
    )
    groups = pair_groups(variance_pairs(conn, runs))
    if not groups:
        return empty_figure(theme, title, "No REPAIR pair of the shown runs is computed.")
    cols = min(len(groups), PANELS_PER_ROW, theme.max_cols)
    rows = math.ceil(len(groups) / cols)
    fig = make_subplots(
        rows=rows, cols=cols, shared_yaxes=True, horizontal_spacing=0.03,
        vertical_spacing=min(0.2, 0.6 / rows),
        subplot_titles=[method_tick(n, ps[0]["method"]) for n, ps in groups.items()],
    )  # fmt: skip
    in_legend: set[str] = set()
    for k, pairs in enumerate(groups.values()):
        row, col = k // cols + 1, k % cols + 1
        for p in pairs:
            v = p["variance"]
            label, color = alignment_name(p["alignment"]), method_color(p["method"])
            for when, dash in (("before", None), ("after", "dash")):
                name = f"{label}, {when} REPAIR"
                fig.add_trace(
                    go.Scatter(
                        x=[_short(n) for n in v["layers"]], y=v[where][when],
                        mode="lines+markers", name=name, legendgroup=name,
                        showlegend=name not in in_legend,
                        line={"color": color, "width": theme.line_width, "dash": dash},
                        marker={"symbol": ALIGNMENT_SYMBOLS.get(p["alignment"], "square"),
                                "size": theme.marker_size * 0.7},
                        hovertemplate=f"<b>{name}</b><br>%{{x}}<br>ratio %{{y:.3f}}"
                        f"<extra>{p['run_b']}</extra>",
                    ),
                    row=row, col=col,
                )  # fmt: skip
                in_legend.add(name)
            fig.add_hline(y=1.0, line={"color": SLATE, "width": 1}, row=row, col=col)
    apply(fig, theme, title=title, height=80 + rows * int(theme.height * 0.8))
    fig.update_yaxes(rangemode="tozero")
    for r in range(1, rows + 1):
        fig.update_yaxes(title_text="std ratio", row=r, col=1)
    fig.update_annotations(font={"size": theme.font_size + 1})
    fig.update_layout(legend={"y": -0.3 / rows}, margin={"t": theme.title_size * 5})
    return fig


def catalogue_items(conn: dict, runs: Sequence[dict], theme: Theme = NORMAL) -> list[FigureItem]:
    """The REPAIR figures the export shows (the variance collapse, when computed)."""
    if not variance_pairs(conn, runs):
        return []
    return [
        FigureItem(
            "Connectivity", "connectivity-variance-collapse",
            "Variance collapse before and after REPAIR",
            "Std of each layer's activations in the network halfway between the two ends, "
            "over the ends' average: below 1 the interpolated units collapse; REPAIR (dashed) "
            "renormalises them (Jordan et al. 2022).",
            variance_collapse(conn, runs, "post", theme),
        )
    ]  # fmt: skip
