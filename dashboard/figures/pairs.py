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

from dashboard.figures.theme import SLATE, Theme, apply, method_color

#: Name of each alignment. Colour means method in every figure; an alignment is told
#: by its line style, marker and bar pattern, so a pair's lines take its method's colour.
ALIGNMENTS = {
    "naive": "naive (no alignment)",
    "weight": "weight matching",
    "activation": "activation matching",
}
#: Line dash per alignment, and per alignment + REPAIR.
ALIGNMENT_DASHES = {"naive": "dot", "weight": "solid", "activation": "dash"}
REPAIR_DASHES = {"weight": "longdashdot", "activation": "dashdot", "naive": "longdash"}
#: Marker per alignment (open with REPAIR), so lines that coincide still show each one.
ALIGNMENT_SYMBOLS = {"naive": "x", "weight": "circle", "activation": "diamond"}
#: Bar pattern per alignment (with REPAIR: its own), for bars in one method's colour.
ALIGNMENT_PATTERNS = {"naive": "x", "weight": "", "activation": "/"}
REPAIR_PATTERNS = {"naive": "-", "weight": "+", "activation": "\\"}
#: The ink of legend keys that explain a style (not a method): no method has it.
STYLE_INK = SLATE
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


def alignment_name(alignment: str) -> str:
    """'weight' -> 'weight matching' (an unknown alignment keeps its own name)."""
    return ALIGNMENTS.get(alignment, alignment)


def variant_of(pair: dict) -> str:
    """The alignment of a pair, with '+ REPAIR' when REPAIR was applied."""
    return alignment_name(pair["alignment"]) + (" + REPAIR" if pair.get("repair") else "")


def alignment_dash(alignment: str, repair: bool = False) -> str:
    """The line dash of an alignment (``repair``: of its REPAIR variant)."""
    return (REPAIR_DASHES if repair else ALIGNMENT_DASHES).get(alignment, "longdash")


def variant_style(pair: dict, theme: Theme) -> dict:
    """Line of a variant: its method's colour, the alignment's dash (REPAIR: another dash)."""
    return {
        "color": method_color(pair["method"]),
        "width": theme.line_width,
        "dash": alignment_dash(pair["alignment"], bool(pair.get("repair"))),
    }


def variant_pattern(pair: dict) -> str:
    """Bar pattern of a variant: the alignment's, or its REPAIR variant's."""
    patterns = REPAIR_PATTERNS if pair.get("repair") else ALIGNMENT_PATTERNS
    return patterns.get(pair["alignment"], ".")


def marker(pair: dict, theme: Theme) -> dict:
    """Marker of a variant: the alignment's symbol, open when REPAIR was applied."""
    symbol = ALIGNMENT_SYMBOLS.get(pair["alignment"], "square")
    return {
        "symbol": symbol + ("-open" if pair.get("repair") else ""),
        "size": theme.marker_size * 0.6,
    }


def style_key(fig: go.Figure, pairs: Sequence[dict], theme: Theme, *, bars: bool = False) -> None:
    """Legend entries that explain each variant's line style (or bar pattern) in a neutral
    ink; the drawn lines stay out of the legend (their colour names their method)."""
    for p in {variant_of(p): p for p in pairs}.values():
        name = variant_of(p)
        if bars:
            trace = go.Bar(
                x=[None], y=[None], name=name, legendgroup=name, orientation="h",
                marker={"color": "white", "line": {"color": STYLE_INK, "width": 1.5},
                        "pattern": {"shape": variant_pattern(p), "fgcolor": STYLE_INK}},
            )  # fmt: skip
        else:
            trace = go.Scatter(
                x=[None], y=[None], mode="lines+markers", name=name, legendgroup=name,
                line={**variant_style(p, theme), "color": STYLE_INK},
                marker={**marker(p, theme), "color": STYLE_INK},
            )  # fmt: skip
        fig.add_trace(trace)


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
        font={"size": theme.font_size + 1, "color": SLATE},
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
