"""3-D loss surfaces side by side: one z range, one colour axis, one starting camera.

Equal heights and colours mean equal loss in every panel. Plotly does not link
the cameras of several 3-D scenes; :mod:`.camera` does, in the page and in the
HTML export.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from dashboard.figures.landscape.records import METRICS, Panel, panels_note, shared_range, z_of
from dashboard.figures.theme import INK, NORMAL, Theme, apply

#: Perceptually uniform and readable under colour-vision deficiencies.
COLORSCALE = "Viridis"
#: The camera every scene starts from (looking at the minimum from a corner, above).
#: Far enough that the axis titles stay inside each scene when four stand side by side.
CAMERA = {"eye": {"x": 1.45, "y": -1.45, "z": 0.95}, "up": {"x": 0, "y": 0, "z": 1}}


def scene_grid(n: int, theme: Theme = NORMAL) -> tuple[int, int]:
    """Rows and columns of ``n`` 3-D scenes: side by side up to three, four as 2 x 2.

    A scene is drawn to fit its cell's height, so four in a row of a laptop-wide page
    (about 200 px each) cut the surfaces off at their sides; 2 x 2 keeps each one wide.
    """
    cols = min(n, 3 if n == 3 else 2, theme.max_cols)
    return math.ceil(n / cols), cols


def scene_names(n: int) -> list[str]:
    """Plotly's names of the first ``n`` 3-D scenes: scene, scene2, ..."""
    return ["scene" + (str(i) if i > 1 else "") for i in range(1, n + 1)]


def _centre(panel: Panel, z: np.ndarray) -> tuple[float, float, float]:
    """(x, y, z) of the grid point nearest the trained network (the origin)."""
    x, y = np.asarray(panel.arrays["x"]), np.asarray(panel.arrays["y"])
    i, j = int(np.argmin(np.abs(y))), int(np.argmin(np.abs(x)))
    return float(x[j]), float(y[i]), float(z[i, j])


def _centre_mark(p: Panel, z: np.ndarray, lift: float, first: bool, metric: str, theme: Theme):
    """The trained network's marker, just above its surface so it stays in sight."""
    cx, cy, cz = _centre(p, z)
    return go.Scatter3d(
        x=[cx], y=[cy], z=[cz + lift], mode="markers", name="trained network",
        legendgroup="centre", showlegend=first,
        marker={"color": "white", "size": theme.marker_size * 0.6,
                "symbol": "diamond", "line": {"color": INK, "width": 2}},  # neutral
        hovertemplate=f"<b>{p.title}</b><br>trained network"
        f"<br>{METRICS[metric]} {cz:.3f}<extra></extra>",
    )  # fmt: skip


def surfaces_3d(
    panels: Sequence[Panel],
    metric: str = "loss",
    theme: Theme = NORMAL,
    *,
    camera: dict | None = None,
) -> go.Figure:
    """2-4 surfaces (side by side, four as 2 x 2): one z range, one colour axis, the same
    starting camera.

    ``camera``: plotly's scene camera every scene starts from (default :data:`CAMERA`).
    """
    n = max(len(panels), 1)
    rows, cols = scene_grid(n, theme)
    fig = make_subplots(
        rows=rows, cols=cols, specs=[[{"type": "scene"}] * cols] * rows,
        subplot_titles=[p.title for p in panels] or None, horizontal_spacing=0.01,
        vertical_spacing=0.06,
    )  # fmt: skip
    zrange = shared_range(panels, metric)
    for k, p in enumerate(panels, 1):
        z = z_of(p.arrays, metric)
        fig.add_trace(
            go.Surface(
                x=p.arrays["x"], y=p.arrays["y"], z=z, coloraxis="coloraxis", name=p.title,
                contours={"z": {"show": True, "usecolormap": True, "project": {"z": True},
                                "width": 1}},
                hovertemplate=f"<b>{p.title}</b><br>(%{{x:.2f}}, %{{y:.2f}})"
                f"<br>{METRICS[metric]} %{{z:.3f}}<extra></extra>",
            ),
            row=(k - 1) // cols + 1, col=(k - 1) % cols + 1,
        )  # fmt: skip
        if p.kind == "run":
            lift = 0.03 * (zrange[1] - zrange[0])
            mark = _centre_mark(p, z, lift, k == 1, metric, theme)
            fig.add_trace(mark, row=(k - 1) // cols + 1, col=(k - 1) % cols + 1)
    title = surface_title(metric, panels_note(panels))
    apply(fig, theme, title=title, height=int(theme.height * (1.25 + 0.95 * (rows - 1))))
    axis = {"backgroundcolor": "#F7F8FA", "gridcolor": theme.grid_color, "showbackground": True,
            "tickfont": {"size": theme.font_size - 2}}  # fmt: skip
    font = {"size": theme.font_size + 1}  # short titles, large enough at the starting camera
    fig.update_scenes(
        xaxis={**axis, "title": {"text": "d1", "font": font}},
        yaxis={**axis, "title": {"text": "d2", "font": font}},
        zaxis={**axis, "range": zrange, "title": {"text": Z_TITLES[metric], "font": font}},
        aspectmode="manual", aspectratio={"x": 1, "y": 1, "z": 0.75}, camera=camera or CAMERA,
    )  # fmt: skip
    fig.update_layout(
        coloraxis=coloraxis(zrange, metric, theme),
        legend={"y": -0.02},
        # three title lines (title, subtitle, the loss note) above the panels' own titles
        margin={
            "l": theme.font_size,
            "r": 0,
            "b": 0,
            "t": theme.title_size * (7 if "<br>" in title else 5),
        },
    )
    fig.update_annotations(font={"size": theme.font_size + 1})
    return fig


def surface_title(metric: str, note: str = "") -> str:
    """The title of the 3-D surfaces; ``note`` says which loss and BatchNorm statistics."""
    return (
        f"{METRICS[metric]} around each trained network<br><sup>filter-normalised random "
        "directions (Li et al. 2018), shared by every run; one z range and colour scale"
        + (f"<br>{note}" if note else "")
        + "</sup>"
    )


#: Axis titles of the 3-D scenes, short enough to read at the starting camera.
Z_TITLES = {"loss": "loss", "log": "log10 loss", "acc": "acc. %"}
#: What the colour bar of a reversed scale adds to its title.
REVERSED_NOTE = "reversed scale"


def coloraxis(zrange: list[float], metric: str, theme: Theme) -> dict:
    """The one colour axis every surface and contour of a figure uses.

    Accuracy reverses the scale (dark = bad for loss and accuracy alike); the
    colour bar's title then says so.
    """
    reverse = metric == "acc"
    title = METRICS[metric] + (f"<br><sup>{REVERSED_NOTE}: dark = high</sup>" if reverse else "")
    return {
        "colorscale": COLORSCALE,
        "reversescale": reverse,
        "cmin": zrange[0],
        "cmax": zrange[1],
        "colorbar": {"title": {"text": title, "side": "right"}, "thickness": 14,
                     "len": 0.8, "tickfont": {"size": theme.font_size - 1}},
    }  # fmt: skip
