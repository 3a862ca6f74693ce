"""Contour maps side by side (surfaces, planes) and 1-D slices."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from dashboard.figures.bands import add_band, group_name, subtitle
from dashboard.figures.landscape.records import (
    METRICS,
    Load,
    Panel,
    data_note,
    group_records,
    panels_note,
    shared_range,
    surface_item,
    surface_runs,
    z_of,
)
from dashboard.figures.landscape.surfaces import coloraxis
from dashboard.figures.theme import (
    INK,
    NORMAL,
    PALE,
    SEED_DASHES,
    SLATE,
    Theme,
    apply,
    method_color,
)


def with_note(title: str, note: str) -> str:
    """``title`` with ``note`` (which loss, which BatchNorm statistics) as a subtitle line."""
    if not note:
        return title
    if title.endswith("</sup>"):  # one more line of the subtitle, at the subtitle's size
        return f"{title[: -len('</sup>')]}<br>{note}</sup>"
    return f"{title}<br><sup>{note}</sup>"


def contours(
    panels: Sequence[Panel], metric: str = "loss", theme: Theme = NORMAL, *, title: str = ""
) -> go.Figure:
    """Contour maps side by side on one colour axis, with the trained network, path or models.

    Each panel has equal scales on its two axes (``scaleanchor``), as Li et al.
    2018: square for a surface's ``[-span, span]^2`` grid.
    """
    n = max(len(panels), 1)
    fig = make_subplots(
        rows=1, cols=n, subplot_titles=[p.title for p in panels] or None,
        horizontal_spacing=0.06,
    )  # fmt: skip
    zrange = shared_range(panels, metric)
    legend: set[str] = set()
    for k, p in enumerate(panels, 1):
        fig.add_trace(
            go.Contour(
                x=p.arrays["x"], y=p.arrays["y"], z=z_of(p.arrays, metric),
                coloraxis="coloraxis", ncontours=24,
                line={"width": 0.5, "color": "rgba(255,255,255,0.5)"}, name=p.title,
                hovertemplate=f"<b>{p.title}</b><br>(%{{x:.2f}}, %{{y:.2f}})"
                f"<br>{METRICS[metric]} %{{z:.3f}}<extra></extra>",
            ),
            row=1, col=k,
        )  # fmt: skip
        for trace in _marks(p, theme):
            trace.showlegend = trace.name not in legend
            legend.add(trace.name)
            fig.add_trace(trace, row=1, col=k)
        fig.update_xaxes(title_text=p.axes[0], constrain="domain", row=1, col=k)
        # equal scales on both axes, as Li et al. 2018 draw their contours: a unit step
        # along either direction is as long on screen, and a [-1, 1]^2 grid is square
        fig.update_yaxes(title_text=p.axes[1] if k == 1 else "", scaleratio=1,
                         scaleanchor="x" if k == 1 else f"x{k}", constrain="domain",
                         row=1, col=k)  # fmt: skip
    note = panels_note(panels)
    title = with_note(title or f"{METRICS[metric]}: contours", note)
    apply(fig, theme, title=title, height=int(theme.height * 1.1))
    fig.update_layout(coloraxis=coloraxis(zrange, metric, theme), hovermode="closest")
    fig.update_xaxes(showgrid=False, zeroline=False)
    fig.update_yaxes(showgrid=False, zeroline=False)
    fig.update_annotations(font={"size": theme.font_size + 1})
    if note or any("<br>" in p.title for p in panels):
        fig.update_layout(margin={"t": theme.title_size * 5})
    return fig


def _star(x: float, y: float, name: str, hover: str, size: float) -> go.Scatter:
    """A star marking a trained network."""
    return go.Scatter(
        x=[x], y=[y], mode="markers", name=name,
        marker={"symbol": "star", "color": "white", "size": size * 1.6,
                "line": {"color": INK, "width": 2}},  # neutral: colour means method
        hovertemplate=f"{hover}<extra></extra>",
    )  # fmt: skip


def _path_marks(panel: Panel, theme: Theme) -> list[go.Scatter]:
    """The training path on a trajectory plane: the line, its start and the final network."""
    size = theme.marker_size
    xy = np.asarray(panel.arrays["coords"], dtype=float)
    path = np.vstack([xy, [[0.0, 0.0]]])  # the final weights are the plane's origin
    return [
        go.Scatter(
            x=path[:, 0], y=path[:, 1], mode="lines+markers", name="training path",
            line={"color": "white", "width": theme.line_width},
            marker={"color": PALE, "size": size * 0.6, "line": {"color": INK, "width": 1}},
            customdata=np.arange(len(path)),
            hovertemplate="snapshot %{customdata}<br>(%{x:.2f}, %{y:.2f})<extra></extra>",
        ),
        go.Scatter(
            x=[path[0, 0]], y=[path[0, 1]], mode="markers", name="start",
            marker={"symbol": "circle", "color": "white", "size": size * 1.2,
                    "line": {"color": "black", "width": 2}},
            hovertemplate="first snapshot<extra></extra>",
        ),
        _star(0.0, 0.0, "trained network", panel.names[0] if panel.names else "final", size),
    ]  # fmt: skip


def _marks(panel: Panel, theme: Theme) -> list[go.Scatter]:
    """What a contour panel marks: the trained network, the training path, or the networks."""
    size = theme.marker_size
    if panel.kind == "trajectory":
        return _path_marks(panel, theme)
    if panel.kind == "models":
        xy = np.asarray(panel.arrays["coords"], dtype=float)
        names = panel.names or [f"network {i + 1}" for i in range(len(xy))]
        losses = panel.record.get("network_loss") or [None] * len(xy)
        hover = [f"{n}<br>loss at its own point {v:.4g}" if v is not None else n
                 for n, v in zip(names, losses, strict=False)]  # fmt: skip
        return [
            go.Scatter(
                x=xy[:, 0], y=xy[:, 1], mode="markers+text", name="networks",
                text=["A", "B", "C"][: len(xy)], textposition="top center",
                textfont={"color": "white", "size": theme.font_size + 2},
                marker={"symbol": ["star", "diamond", "square"][: len(xy)],
                        "color": "white", "size": size * 1.4,
                        "line": {"color": INK, "width": 2}},
                customdata=names[: len(xy)], hovertext=hover[: len(xy)],
                hovertemplate="%{text}: %{hovertext}<extra></extra>",
            )
        ]  # fmt: skip
    return [_star(0.0, 0.0, "trained network", panel.title, size)]


def slices(
    lines: Sequence[tuple[dict, dict]],
    metric: str = "loss",
    theme: Theme = NORMAL,
    *,
    by_method: Sequence[dict] | None = None,
) -> go.Figure:
    """1-D slices: loss or accuracy against the step along one direction, a line per run.

    ``lines``: (run record with label/method/seed, arrays with ``x`` (X,) and 1-D
    ``loss``/``acc`` (X,)). ``by_method``: the summary's run records; given, one
    line per method over seeds instead (the pointwise mean and Student-t 95%
    band of :mod:`dashboard.figures.bands`; slices on other steps are
    interpolated onto the first run's).
    """
    fig = go.Figure()
    if by_method is not None:
        groups = _slice_bands(fig, lines, metric, theme, by_method)
        said = f"; {subtitle(groups)}" if groups else ""
    else:
        _slice_runs(fig, lines, metric, theme)
        said = ""
    fig.add_vline(x=0, line={"color": SLATE, "dash": "dot", "width": 1})
    notes = [data_note(surface_item(r, 1)) for r, _ in lines if surface_item(r, 1)]
    title = with_note(
        f"1-D slices: {METRICS[metric].lower()} along one direction"
        f"<br><sup>filter-normalised random direction; 0 is the trained network{said}</sup>",
        next((n for n in notes if n), ""),
    )
    apply(fig, theme, title=title)
    fig.update_layout(margin={"t": theme.title_size * (5 if "<br>" in title else 3)})
    fig.update_xaxes(title_text="Step along the direction")
    fig.update_yaxes(title_text=METRICS[metric])
    return fig


def _slice_runs(fig: go.Figure, lines: Sequence[tuple[dict, dict]], metric: str, theme: Theme):
    """One line per run: its method's colour, its seed's dash."""
    for record, arrays in lines:
        fig.add_trace(
            go.Scatter(
                x=arrays["x"], y=z_of(arrays, metric), mode="lines", name=record["label"],
                line={"color": method_color(record["method"]), "width": theme.line_width,
                      "dash": SEED_DASHES[int(record.get("seed", 0)) % len(SEED_DASHES)]},
                hovertemplate=f"<b>{record['label']}</b><br>step %{{x:.2f}}"
                f"<br>{METRICS[metric]} %{{y:.3f}}<extra></extra>",
            )
        )  # fmt: skip


def _slice_bands(
    fig: go.Figure,
    lines: Sequence[tuple[dict, dict]],
    metric: str,
    theme: Theme,
    runs: Sequence[dict],
) -> dict:
    """One mean line and 95% band per method group; returns the groups drawn."""
    arrays = {r["label"]: a for r, a in lines}
    groups = group_records([r for r, _ in lines], runs)
    if not groups:
        return groups
    x = np.asarray(lines[0][1]["x"], dtype=float)
    levels = sorted({k.sparsity for k in groups})  # a method's sparsities told apart by dash
    for key, records in groups.items():
        values = np.stack([_on(x, arrays[r["label"]], metric) for r in records])
        dash = SEED_DASHES[levels.index(key.sparsity) % len(SEED_DASHES)]
        add_band(fig, x, values, key=key, name=group_name(key, list(groups)), theme=theme,
                 dash=dash, markers=False, keys=list(groups))  # fmt: skip
    return groups


def _on(x: np.ndarray, arrays: dict, metric: str) -> np.ndarray:
    """A slice's values at steps ``x`` (interpolated where its own steps differ)."""
    own, z = np.asarray(arrays["x"], dtype=float), z_of(arrays, metric)
    if own.shape == x.shape and np.allclose(own, x):
        return z
    return np.interp(x, own, z, left=np.nan, right=np.nan)


def slice_lines(land: dict, runs: Sequence[dict] | None, load: Load) -> list[tuple[dict, dict]]:
    """(run record, arrays) of each shown run's cached 1-D surface."""
    out = []
    for record in surface_runs(land, runs, dims=1):
        arrays = load(surface_item(record, 1)["key"])
        if arrays is not None:
            out.append((record, arrays))
    return out
