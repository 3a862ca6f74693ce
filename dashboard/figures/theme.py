"""Figure themes: one look for the screen, one for the projector, one colour per method.

Colours come from the Okabe-Ito palette (Okabe & Ito 2008), which stays
distinguishable under the common colour-vision deficiencies; every method also
gets its own marker symbol, so a figure still reads in greyscale. The mapping
method -> colour is fixed, so "magnitude" is the same blue in every figure, page
and export.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass

import plotly.graph_objects as go
import plotly.io as pio

#: Every figure starts from plotly's white template. Made the default here, where
#: every figure builder imports its theme, so a new figure is born with it: setting
#: it per figure copies and validates the whole template again (about 20 ms a
#: figure, more than the rest of :func:`apply`). Streamlit makes its own template the default when its plotly element is
#: imported, so :func:`apply` makes ours the default again, and gives ours to a
#: figure born under another.
TEMPLATE = "plotly_white"
pio.templates.default = TEMPLATE

#: Okabe-Ito, in its published order.
OKABE_ITO = {
    "black": "#000000",
    "orange": "#E69F00",
    "sky blue": "#56B4E9",
    "bluish green": "#009E73",
    "yellow": "#F0E442",
    "blue": "#0072B2",
    "vermillion": "#D55E00",
    "reddish purple": "#CC79A7",
}
GREY = "#7F7F7F"
#: Neutral colours for what is not a method (right/wrong, gained/lost, a trained
#: network's marker, legend keys of line styles): slate greys that no method has,
#: told apart by lightness, so they also read in greyscale.
INK = "#2E3440"
SLATE = "#5A6270"
PALE = "#BCC3CC"

#: Fixed colours of the registered methods. Dense is the reference (black) and
#: random the naive baseline (grey); yellow, weak on white, goes to the method
#: least often shown.
METHOD_COLORS = {
    "dense": OKABE_ITO["black"],
    "random": GREY,
    "magnitude": OKABE_ITO["blue"],
    "gmp": OKABE_ITO["sky blue"],
    "lottery": OKABE_ITO["vermillion"],
    "snip": OKABE_ITO["bluish green"],
    "grasp": OKABE_ITO["reddish purple"],
    "synflow": OKABE_ITO["orange"],
    "l1-structured": "#B8A800",  # Okabe-Ito yellow darkened to read on white
}
METHOD_SYMBOLS = {
    "dense": "star",
    "random": "x",
    "magnitude": "circle",
    "gmp": "square",
    "lottery": "diamond",
    "snip": "triangle-up",
    "grasp": "triangle-down",
    "synflow": "pentagon",
    "l1-structured": "hexagon",
}
_SPARE_COLORS = [c for name, c in OKABE_ITO.items() if name not in ("black", "yellow")]
_SPARE_SYMBOLS = ["cross", "star-square", "hourglass", "bowtie", "circle-open", "square-open"]
#: Line dashes by seed index, so seeds of one method stay apart in line charts.
SEED_DASHES = ["solid", "dash", "dot", "dashdot", "longdash", "longdashdot"]


def method_color(method: str) -> str:
    """The colour of ``method`` (a stable pick from the palette for unregistered names)."""
    if method in METHOD_COLORS:
        return METHOD_COLORS[method]
    return _SPARE_COLORS[zlib.crc32(method.encode()) % len(_SPARE_COLORS)]


def method_symbol(method: str) -> str:
    """The marker symbol of ``method``."""
    if method in METHOD_SYMBOLS:
        return METHOD_SYMBOLS[method]
    return _SPARE_SYMBOLS[zlib.crc32(method.encode()) % len(_SPARE_SYMBOLS)]


@dataclass(frozen=True, slots=True, kw_only=True)
class Theme:
    """Sizes and colours that every figure takes from one place."""

    name: str
    font_size: int
    title_size: int
    line_width: float
    marker_size: int
    row_height: int  # pixels per row of a heatmap
    height: int  # default figure height in pixels
    max_cols: int = 5  # most panels side by side in one figure
    font_family: str = "Inter, 'Source Sans Pro', 'Helvetica Neue', Arial, sans-serif"
    text_color: str = "#1F2328"
    grid_color: str = "#E3E6EA"
    background: str = "#FFFFFF"


NORMAL = Theme(
    name="normal",
    font_size=13,
    title_size=17,
    line_width=2.0,
    marker_size=9,
    row_height=24,
    height=420,
)
PRESENTATION = Theme(
    name="presentation",
    font_size=20,
    title_size=28,
    line_width=3.5,
    marker_size=15,
    row_height=40,
    height=600,
    max_cols=2,  # a projector's 1280x720: two panels per row stay readable
    text_color="#000000",
    grid_color="#D0D4D9",
)


def theme_for(presentation: bool) -> Theme:
    """The presentation theme if asked for, else the normal one."""
    return PRESENTATION if presentation else NORMAL


def apply(fig: go.Figure, theme: Theme, *, title: str, height: int | None = None) -> go.Figure:
    """Give ``fig`` the theme's fonts, white background, grid and title (in place).

    Same effect as ``update_layout`` / ``update_xaxes`` / ``update_yaxes`` (values
    merge into what the figure has), set property by property: plotly's batched
    update re-walks the layout for every key and costs about 33 ms a figure, the
    plain assignments about 14 (quiet machine).
    """
    if pio.templates.default != TEMPLATE:  # another library made its own the default
        pio.templates.default = TEMPLATE
    if not _born_white(fig):
        fig.layout.template = TEMPLATE
    _merge(
        fig.layout,
        {
            "title": {
                "text": title,
                "font": {"size": theme.title_size},
                "x": 0.0,
                "xanchor": "left",
                "xref": "paper",
            },
            "font": {
                "family": theme.font_family,
                "size": theme.font_size,
                "color": theme.text_color,
            },
            "paper_bgcolor": theme.background,
            "plot_bgcolor": theme.background,
            "height": height or theme.height,
            "margin": {"l": 10, "r": 10, "t": theme.title_size * 3, "b": 10},
            "hoverlabel": {"font": {"size": max(theme.font_size - 1, 12)}},
            "legend": {
                "title": {"text": ""},
                "itemsizing": "constant",
                "orientation": "h",
                "yanchor": "top",
                "y": -0.2,
                "xanchor": "left",
                "x": 0.0,
            },
        },
    )
    axis = {
        "gridcolor": theme.grid_color,
        "zerolinecolor": theme.grid_color,
        "linecolor": "#444444",
        "showline": True,
        "ticks": "outside",
        "title": {"font": {"size": theme.font_size + 1}},
        "automargin": True,
    }
    fig.for_each_xaxis(lambda ax: _merge(ax, axis))
    fig.for_each_yaxis(lambda ax: _merge(ax, axis))
    return fig


def _merge(obj: object, values: dict) -> None:
    """Set ``values`` on a plotly object leaf by leaf (nested dicts merge, as ``update`` does)."""
    for name, value in values.items():
        if isinstance(value, dict):
            _merge(getattr(obj, name), value)
        else:
            setattr(obj, name, value)


def _born_white(fig: go.Figure) -> bool:
    """Whether ``fig`` has plotly's white template (its background, grid and colours)."""
    ours, white = fig.layout.template.layout, pio.templates[TEMPLATE].layout
    return (
        ours.plot_bgcolor == white.plot_bgcolor
        and ours.colorway == white.colorway
        and ours.xaxis.gridcolor == white.xaxis.gridcolor
    )
