"""What every figure of pairs of networks shares: which pairs are shown, their panels, styles.

A pair is a record of the summary's ``connectivity`` section (docs/summary.md):
it is shown when its run B is shown and so is its run A, unless A is the dense
reference of a same-init pair. Panels group pairs by run B without the seed;
within a panel each alignment has one colour and marker, dashed and open when
REPAIR was applied. No streamlit here.
"""

from __future__ import annotations

from collections.abc import Sequence

import plotly.graph_objects as go

from dashboard.figures.theme import GREY, OKABE_ITO, Theme, apply, method_color

#: (name, colour) of each alignment: one colour per alignment in every figure.
ALIGNMENTS = {
    "naive": ("naive (no alignment)", OKABE_ITO["vermillion"]),
    "weight": ("weight matching", OKABE_ITO["blue"]),
    "activation": ("activation matching", OKABE_ITO["bluish green"]),
}
#: Marker per alignment, so lines that coincide (e.g. same-init pairs) still show each one.
ALIGNMENT_SYMBOLS = {"naive": "x", "weight": "circle", "activation": "diamond"}
#: Methods have at most this many path panels side by side before the grid wraps.
PANELS_PER_ROW = 4


def shown_pairs(conn: dict, runs: Sequence[dict]) -> list[dict]:
    """The cached pairs whose runs are shown (the dense A of a same-init pair always is)."""
    labels = {r["label"] for r in runs}
    return [
        p
        for p in conn.get("pairs", [])
        if p.get("status") == "cached"
        and p["run_b"] in labels
        and (p["run_a"] in labels or p.get("pair") == "same-init")
    ]


def group_of(pair: dict) -> str:
    """The name of a pair's panel: its run B without the seed, and the kind of pair."""
    base = pair["run_b"].rsplit(" s", 1)[0]
    if pair.get("pair") == "same-init":
        return f"{pair['run_a'].rsplit(' s', 1)[0]} ~ {base}"
    return f"{base} · seeds"


def variant_of(pair: dict) -> str:
    """The alignment of a pair, with '+ REPAIR' when REPAIR was applied."""
    name = ALIGNMENTS.get(pair["alignment"], (pair["alignment"], GREY))[0]
    return name + (" + REPAIR" if pair.get("repair") else "")


def variant_style(pair: dict, theme: Theme) -> dict:
    """Line of a variant: the alignment's colour, dashed when REPAIR was applied."""
    color = ALIGNMENTS.get(pair["alignment"], ("", GREY))[1]
    return {
        "color": color,
        "width": theme.line_width,
        "dash": "dash" if pair.get("repair") else None,
    }


def marker(pair: dict, theme: Theme) -> dict:
    """Marker of a variant: the alignment's symbol, open when REPAIR was applied."""
    symbol = ALIGNMENT_SYMBOLS.get(pair["alignment"], "square")
    return {
        "symbol": symbol + ("-open" if pair.get("repair") else ""),
        "size": theme.marker_size * 0.6,
    }


def pair_groups(pairs: Sequence[dict]) -> dict[str, list[dict]]:
    """Pairs by panel, in summary order."""
    out: dict[str, list[dict]] = {}
    for p in pairs:
        out.setdefault(group_of(p), []).append(p)
    return out


def method_tick(name: str, method: str) -> str:
    """A tick or title label coloured by its method."""
    return f"<span style='color:{method_color(method)}'>{name}</span>"


def empty_figure(theme: Theme, title: str, message: str) -> go.Figure:
    """A blank figure that says why it is blank."""
    fig = go.Figure()
    fig.add_annotation(
        text=message, x=0.5, y=0.5, xref="paper", yref="paper", showarrow=False,
        font={"size": theme.font_size + 1, "color": GREY},
    )  # fmt: skip
    apply(fig, theme, title=title, height=int(theme.height * 0.6))
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False)
    return fig


def no_pairs_message(conn: dict) -> str:
    """Why there is nothing to draw: the summary's notes, or the filter."""
    notes = [n for n in conn.get("notes", []) if "pairs" in n]
    if notes:
        return "No pairs: " + "; ".join(notes) + "."
    if not conn.get("pairs"):
        return "This study has no pairs of networks to connect."
    return "None of the shown runs has a computed pair: pick runs in the sidebar."


def finish_path_grid(
    fig: go.Figure, theme: Theme, title: str, blocks: int, cols: int, x_title: str
) -> go.Figure:
    """Title, size and axis titles of a grid of loss (top) / accuracy (bottom) panel pairs:
    ``blocks`` rows of such pairs, ``cols`` columns, ``x_title`` under each accuracy panel."""
    apply(fig, theme, title=title, height=100 + blocks * int(theme.height * 0.95))
    for b in range(blocks):
        fig.update_yaxes(title_text="Loss", row=2 * b + 1, col=1)
        fig.update_yaxes(title_text="Acc. (%)", row=2 * b + 2, col=1)
        for c in range(1, cols + 1):
            fig.update_xaxes(title_text=x_title, row=2 * b + 2, col=c)
    fig.update_annotations(font={"size": theme.font_size + 1})
    fig.update_layout(legend={"y": -0.25 / blocks}, hovermode="closest")
    return fig
