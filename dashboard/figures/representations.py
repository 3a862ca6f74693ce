"""Figures of learned representations: aligned embeddings, CKA, geometry per class, flips.

Every function takes ``rep``: the arrays of a ``representations`` entry
(``embeddings.npz``: embedding_2d (R, N, 2), embedding_3d (R, N, 3), preds (R, N),
labels (N,), indices (N,), images (N, C, H, W) uint8, angle/norm/margin (R, N))
merged with its ``summary.json`` under ``"summary"`` (runs, labels_of_runs, cka,
classes). Runs are chosen by position ``r`` in ``summary["labels_of_runs"]``. No
streamlit here: the dashboard and the export draw the same figures.
"""

from __future__ import annotations

import base64
import io
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import plotly.graph_objects as go
from PIL import Image
from plotly.subplots import make_subplots

from dashboard.figures.landscape.camera import linked_html
from dashboard.figures.theme import INK, NORMAL, PALE, SLATE, Theme, apply, method_color

#: Class colours: Paul Tol's "muted" qualitative scheme (9 colours, built for colour-blind
#: readers) and its pale grey: 10 classes, no repeats, and none of the method palette's
#: Okabe-Ito colours, so a class is never mistaken for a method. Past 10 classes the
#: colours repeat with the next marker symbol.
CLASS_COLORS = [
    "#332288",  # indigo
    "#88CCEE",  # cyan
    "#44AA99",  # teal
    "#117733",  # green
    "#999933",  # olive
    "#DDCC77",  # sand
    "#CC6677",  # rose
    "#882255",  # wine
    "#AA4499",  # purple
    "#BBBBBB",  # grey (Tol's pale grey, darkened a step to read on white)
]
CLASS_SYMBOLS = ["circle", "diamond", "square", "triangle-up"]
COLOR_BY = {"class": "True class", "correct": "Correct / wrong", "flip": "Flip vs dense"}
#: (name, colour, symbol) of each outcome when colouring by correctness or flips.
OUTCOMES = {
    "correct": [
        ("correct", PALE, "circle"),
        ("wrong", INK, "x"),
    ],
    "flip": [
        ("right in both", "#C8CCD0", "circle"),
        ("lost (dense right, this wrong)", INK, "x"),
        ("gained (dense wrong, this right)", SLATE, "triangle-up"),
        ("wrong in both", PALE, "square"),
    ],
}
PATTERNS = ["", "/", "x", "."]


def class_style(c: int) -> tuple[str, str]:
    """(colour, marker symbol) of class ``c``: the palette repeats with a new symbol."""
    return CLASS_COLORS[c % len(CLASS_COLORS)], CLASS_SYMBOLS[(c // len(CLASS_COLORS)) % 4]


def run_labels(rep: Mapping[str, Any]) -> list[str]:
    """The labels of the runs in the entry, in array order."""
    return list(rep["summary"]["labels_of_runs"])


def reference_of(rep: Mapping[str, Any], r: int) -> int:
    """Position of the dense run that run ``r``'s flips are counted against."""
    labels = run_labels(rep)
    ref = rep["summary"]["runs"][r].get("flips_vs", labels[0])
    return labels.index(ref) if ref in labels else 0


def _class_name(rep: Mapping[str, Any], c: int) -> str:
    """The name of class ``c`` (its number when the entry has no names)."""
    classes = rep["summary"].get("classes") or []
    return str(classes[c]) if c < len(classes) else str(c)


def _groups(
    rep: Mapping[str, Any], r: int, color_by: str
) -> list[tuple[str, str, str, np.ndarray]]:
    """(name, colour, symbol, sample positions) of each colour group of run ``r``."""
    labels, preds = np.asarray(rep["labels"]), np.asarray(rep["preds"])
    if color_by == "class":
        out = []
        for c in np.unique(labels):
            color, symbol = class_style(int(c))
            out.append((_class_name(rep, int(c)), color, symbol, np.flatnonzero(labels == c)))
        return out
    right = preds[r] == labels
    if color_by == "correct":
        masks = [right, ~right]
    else:
        dense = preds[reference_of(rep, r)] == labels
        masks = [dense & right, dense & ~right, ~dense & right, ~dense & ~right]
    return [
        (name, color, symbol, np.flatnonzero(m))
        for (name, color, symbol), m in zip(OUTCOMES[color_by], masks, strict=True)
    ]


def _hover(rep: Mapping[str, Any], r: int, pos: np.ndarray) -> tuple[list[list], str]:
    """customdata (subset position, sample index, label, prediction) and its template."""
    labels, preds, indices = rep["labels"], rep["preds"][r], rep["indices"]
    data = [
        [int(p), int(indices[p]), _class_name(rep, int(labels[p])), _class_name(rep, int(preds[p]))]
        for p in pos
    ]
    template = (
        "sample #%{customdata[1]}<br>label %{customdata[2]}"
        "<br>prediction %{customdata[3]}<extra>%{fullData.name}</extra>"
    )
    return data, template


def _range(values: np.ndarray) -> list[float]:
    """[lo, hi] of ``values`` with 5% padding."""
    lo, hi = float(np.min(values)), float(np.max(values))
    pad = 0.05 * (hi - lo or 1.0)
    return [lo - pad, hi + pad]


def embedding_scatter(
    rep: Mapping[str, Any],
    chosen: Sequence[int],
    color_by: str = "class",
    theme: Theme = NORMAL,
    dims: int = 2,
    sample: int | None = None,
) -> go.Figure:
    """The chosen runs' aligned UMAP embeddings side by side in one frame (same axis ranges).

    ``dims`` 2 draws Scatter panels, 3 draws Scatter3d scenes; points are coloured
    by class, by correctness, or by flip against the run's dense reference.
    ``sample``: position (in the subset) of a sample ringed in every panel.
    """
    labels = run_labels(rep)
    emb = np.asarray(rep[f"embedding_{dims}d"])[list(chosen)] if chosen else np.zeros((0, 0, dims))
    kind = "scene" if dims == 3 else "xy"
    fig = make_subplots(
        rows=1,
        cols=max(len(chosen), 1),
        specs=[[{"type": kind}] * max(len(chosen), 1)],
        subplot_titles=[labels[r] for r in chosen] or None,
        horizontal_spacing=0.03,
    )
    size = theme.marker_size * (0.55 if dims == 2 else 0.35)
    in_legend: set[str] = set()  # a group's legend entry comes from the first panel that has it
    for col, r in enumerate(chosen, 1):
        for name, color, symbol, pos in _groups(rep, r, color_by):
            if not len(pos):
                continue
            data, template = _hover(rep, r, pos)
            common = dict(
                name=name,
                legendgroup=name,
                showlegend=name not in in_legend,
                customdata=data,
                hovertemplate=template,
            )
            xyz = emb[col - 1][pos]
            if dims == 3:
                trace = go.Scatter3d(
                    x=xyz[:, 0], y=xyz[:, 1], z=xyz[:, 2], mode="markers",
                    marker={"color": color, "size": size, "symbol": _symbol3d(symbol)},
                    **common,
                )  # fmt: skip
            else:
                trace = go.Scatter(
                    x=xyz[:, 0], y=xyz[:, 1], mode="markers",
                    marker={"color": color, "size": size, "symbol": symbol, "opacity": 0.85},
                    **common,
                )  # fmt: skip
            fig.add_trace(trace, row=1, col=col)
            in_legend.add(name)
        if sample is not None:
            fig.add_trace(_ring(rep, emb[col - 1][sample], sample, col == 1, theme), row=1, col=col)
    title = (
        f"UMAP {dims}-D of the features, aligned onto {rep['summary'].get('reference', labels[0])}"
    )
    apply(fig, theme, title=title, height=int(theme.height * (1.1 if dims == 3 else 1.0)))
    fig.update_layout(hovermode="closest", legend={"y": -0.08})
    if len(chosen):
        ranges = [_range(emb[..., i]) for i in range(dims)]
        if dims == 3:
            axis = {"showticklabels": False, "title": {"text": ""}}
            fig.update_scenes(
                xaxis={**axis, "range": ranges[0]},
                yaxis={**axis, "range": ranges[1]},
                zaxis={**axis, "range": ranges[2]},
                aspectmode="cube",
            )
        else:
            hidden = {"showticklabels": False, "ticks": "", "showgrid": False, "zeroline": False}
            fig.update_xaxes(range=ranges[0], **hidden)
            fig.update_yaxes(range=ranges[1], **hidden)
    fig.update_annotations(font={"size": theme.font_size + 1})
    return fig


#: The ring around the chosen sample: a neutral dark grey (no class or method colour).
RING_COLOR = "#3B3B3B"


def _ring(rep: Mapping[str, Any], xyz: np.ndarray, pos: int, first: bool, theme: Theme):
    """A ring marker around sample ``pos`` at ``xyz`` (2 or 3 coordinates) in one panel."""
    name = f"sample #{int(rep['indices'][pos])}"
    common = dict(
        name=name, legendgroup="sample", showlegend=first, mode="markers", hoverinfo="skip",
        customdata=[[pos, int(rep["indices"][pos])]],
    )  # fmt: skip
    if len(xyz) == 3:
        marker = {"symbol": "circle-open", "size": theme.marker_size * 1.4, "color": RING_COLOR,
                  "line": {"width": 4, "color": RING_COLOR}}  # fmt: skip
        return go.Scatter3d(x=[xyz[0]], y=[xyz[1]], z=[xyz[2]], marker=marker, **common)
    marker = {"symbol": "circle-open", "size": theme.marker_size * 2.2, "color": RING_COLOR,
              "line": {"width": 3, "color": RING_COLOR}}  # fmt: skip
    return go.Scatter(x=[xyz[0]], y=[xyz[1]], marker=marker, **common)


def sample_position(rep: Mapping[str, Any], index: int | str | None) -> int | None:
    """The position in the subset of the sample with dataset index ``index`` (None: not there)."""
    try:
        found = np.flatnonzero(np.asarray(rep["indices"]) == int(index))
    except (TypeError, ValueError):
        return None
    return int(found[0]) if len(found) else None


def clicked_index(state: Any) -> str | None:
    """The dataset index of the point clicked in an embedding chart's selection state, if any.

    ``state``: the chart's ``st.session_state`` value (``{"selection": {"points": [...]}}``);
    each point's ``customdata`` holds (position, dataset index, ...).
    """
    points = ((state or {}).get("selection") or {}).get("points") or []
    data = points[0].get("customdata") if points else None
    return str(int(data[1])) if data is not None and len(data) > 1 else None


def linked_embedding_html(
    fig: go.Figure, *, presentation: bool = False, plotly_src: str | None = None
) -> str:
    """The 3-D embeddings as an HTML page whose scenes turn together (as the landscape's do).

    ``plotly_src``: the served plotly.js (``data.plotly_js_src()``); None inlines it.
    """
    png = {"toImageButtonOptions": {"format": "png", "scale": 3 if presentation else 2}}
    return linked_html(fig, config=png, plotly_src=plotly_src)


def _symbol3d(symbol: str) -> str:
    """The nearest marker symbol Scatter3d knows."""
    return {"triangle-up": "diamond-open", "x": "x", "square": "square"}.get(symbol, "circle")


def cka_heatmap(
    rep: Mapping[str, Any], chosen: Sequence[int] | None = None, theme: Theme = NORMAL
) -> go.Figure:
    """Linear CKA between every pair of runs (runs x runs, annotated).

    The colour scale spans the shown values' range (min..max, said in the title),
    not 0..1: CKA between networks of one study is often above 0.9, where a 0..1
    scale shows one colour.
    """
    labels = run_labels(rep)
    idx = list(range(len(labels))) if chosen is None else list(chosen)
    cka = np.asarray(rep["summary"]["cka"], dtype=float)[np.ix_(idx, idx)]
    names = [labels[i] for i in idx]
    zmin, zmax = cka_range(cka)
    fig = go.Figure(
        go.Heatmap(
            z=cka,
            x=names,
            y=names,
            zmin=zmin,
            zmax=zmax,
            colorscale="Viridis",
            colorbar={"title": {"text": "CKA (data range)", "side": "right"}},
            texttemplate="%{z:.2f}" if len(idx) <= 20 else None,
            textfont={"size": max(theme.font_size - 2, 10)},
            hovertemplate="<b>%{y}</b> vs <b>%{x}</b><br>linear CKA %{z:.3f}<extra></extra>",
            xgap=1,
            ygap=1,
        )
    )
    height = max(
        int(theme.height * 0.8), theme.row_height * 1.6 * len(idx) + 4 * theme.title_size + 80
    )
    title = (
        "Linear CKA of the features (Kornblith et al. 2019)<br><sup>colour scale: the shown "
        f"values' range, {zmin:.3f} to {zmax:.3f} (not 0 to 1)</sup>"
    )
    apply(fig, theme, title=title, height=int(height))
    fig.update_xaxes(showgrid=False, ticks="", tickangle=-30)
    fig.update_yaxes(showgrid=False, ticks="", autorange="reversed")
    return fig


def cka_range(cka: np.ndarray) -> tuple[float, float]:
    """(min, max) of the finite CKA values; widened by 0.001 below when they are all equal."""
    values = np.asarray(cka, dtype=float)
    values = values[np.isfinite(values)]
    if not len(values):
        return 0.0, 1.0
    lo, hi = float(values.min()), float(values.max())
    return (lo - 1e-3, hi) if hi - lo < 1e-3 else (lo, hi)


GEOMETRY = {
    "angle": "Angle to class direction (deg)",
    "norm": "Feature norm",
    "margin": "Logit margin",
}


def geometry_bars(
    rep: Mapping[str, Any], chosen: Sequence[int], theme: Theme = NORMAL
) -> go.Figure:
    """Mean angle, norm and margin per class: one panel per quantity, grouped bars per run."""
    labels, runs = run_labels(rep), rep["summary"]["runs"]
    fig = make_subplots(rows=3, cols=1, shared_xaxes=True, vertical_spacing=0.06)
    seen: dict[str, int] = {}
    for r in chosen:
        method = runs[r].get("method", "")
        pattern = PATTERNS[seen.get(method, 0) % len(PATTERNS)]
        seen[method] = seen.get(method, 0) + 1
        for row, (key, _) in enumerate(GEOMETRY.items(), 1):
            values = runs[r]["geometry"][key]
            fig.add_trace(
                go.Bar(
                    x=[_class_name(rep, c) for c in range(len(values))],
                    y=values,
                    name=labels[r],
                    legendgroup=labels[r],
                    showlegend=row == 1,
                    marker={"color": method_color(method), "pattern": {"shape": pattern}},
                    hovertemplate=f"<b>{labels[r]}</b><br>class %{{x}}<br>{key} %{{y:.3f}}<extra></extra>",
                ),
                row=row,
                col=1,
            )
    apply(
        fig,
        theme,
        title="Last-layer geometry per class (Li et al. 2022)",
        height=int(theme.height * 1.6),
    )
    for row, title in enumerate(GEOMETRY.values(), 1):
        fig.update_yaxes(title_text=title, row=row, col=1)
    fig.update_xaxes(title_text="True class", type="category", row=3, col=1)
    fig.update_layout(barmode="group", legend={"y": -0.08})
    return fig


def _to_rgb(image: np.ndarray) -> np.ndarray:
    """A uint8 image (C, H, W) as (H, W, 3) for ``go.Image``."""
    image = np.asarray(image, dtype=np.uint8)
    if image.ndim == 2:
        image = image[None]
    hwc = np.transpose(image, (1, 2, 0))
    return np.repeat(hwc, 3, axis=2) if hwc.shape[2] == 1 else hwc[..., :3]


def png_uri(rgb: np.ndarray) -> str:
    """An (H, W, 3) uint8 image as a PNG data URI: a tenth of the JSON of a z array."""
    out = io.BytesIO()
    Image.fromarray(rgb).save(out, format="PNG", optimize=False)
    return "data:image/png;base64," + base64.b64encode(out.getvalue()).decode()


def image_grid(
    images: Sequence[np.ndarray] | np.ndarray,
    captions: Sequence[str],
    theme: Theme = NORMAL,
    *,
    title: str = "",
    cols: int = 8,
    tile: int = 110,
) -> go.Figure:
    """uint8 images (each (C, H, W)) as a grid of tiles, each captioned above.

    One ``go.Image`` of a mosaic with the captions as annotations, not a subplot per
    tile: a 90-tile grid drew in seconds as subplots and draws in milliseconds so.
    """
    tiles = [_to_rgb(image) for image in images]
    n = len(tiles)
    cols = max(1, min(cols, n))
    rows = max(1, -(-n // cols))
    lines = max((c.count("<br>") + 1 for c in captions), default=1)
    h = max((t.shape[0] for t in tiles), default=1)
    w = max((t.shape[1] for t in tiles), default=1)
    scale = tile / w  # screen pixels per image pixel
    # Room above each tile for its caption, and a white gutter, in image pixels.
    band = int(np.ceil(lines * theme.font_size * 1.35 / scale)) if captions else 0
    gap = max(1, int(np.ceil(6 / scale)))
    cell_h, cell_w = band + h + gap, w + gap
    mosaic = np.full((rows * cell_h, cols * cell_w - gap, 3), 255, dtype=np.uint8)
    notes = []
    for i, image in enumerate(tiles):
        r, c = divmod(i, cols)
        y0, x0 = r * cell_h + band, c * cell_w
        mosaic[y0 : y0 + image.shape[0], x0 : x0 + image.shape[1]] = image
        if i < len(captions):
            notes.append(
                {"x": x0 + w / 2 - 0.5, "y": y0 - 0.5, "text": captions[i], "xref": "x",
                 "yref": "y", "showarrow": False, "xanchor": "center", "yanchor": "bottom",
                 "font": {"size": max(theme.font_size - 2, 10)}}
            )  # fmt: skip
    fig = go.Figure(go.Image(source=png_uri(mosaic), hoverinfo="skip") if n else None)
    head = theme.title_size * 3 if title else 10
    apply(fig, theme, title=title, height=int(head + rows * cell_h * scale + 20))
    fig.update_xaxes(visible=False, showgrid=False)
    fig.update_yaxes(visible=False, showgrid=False)
    fig.update_layout(annotations=notes, margin={"t": int(head), "b": 10})
    return fig


def flipped_samples(
    rep: Mapping[str, Any], r: int, theme: Theme = NORMAL, limit: int = 16
) -> go.Figure:
    """Samples the dense reference gets right and run ``r`` gets wrong, as an image grid."""
    labels, preds = np.asarray(rep["labels"]), np.asarray(rep["preds"])
    ref = reference_of(rep, r)
    lost = np.flatnonzero((preds[ref] == labels) & (preds[r] != labels))
    shown = lost[:limit]
    captions = [
        f"#{int(rep['indices'][p])} true {_class_name(rep, int(labels[p]))}"
        f"<br>dense {_class_name(rep, int(preds[ref][p]))} · pruned {_class_name(rep, int(preds[r][p]))}"
        for p in shown
    ]
    names = run_labels(rep)
    title = f"{len(lost)} samples {names[ref]} gets right and {names[r]} gets wrong"
    if len(lost) > len(shown):
        title += f" (first {len(shown)})"
    return image_grid(np.asarray(rep["images"])[shown], captions, theme, title=title)


def sample_view(
    rep: Mapping[str, Any], pos: int, chosen: Sequence[int], theme: Theme = NORMAL
) -> go.Figure:
    """One sample's image, captioned with its label and each chosen run's prediction."""
    labels = run_labels(rep)
    lines = [f"#{int(rep['indices'][pos])} label {_class_name(rep, int(rep['labels'][pos]))}"]
    lines += [f"{labels[r]}: {_class_name(rep, int(rep['preds'][r][pos]))}" for r in chosen]
    return image_grid([rep["images"][pos]], ["<br>".join(lines)], theme, tile=200)
