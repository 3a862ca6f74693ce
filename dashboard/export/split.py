"""Figures too large for one slide, split over several: each part keeps the whole's scale.

A CKA matrix over more than :data:`CKA_RUNS` runs becomes blocks of at most
that many rows and columns (the upper triangle of blocks: the matrix is
symmetric), every block on the whole matrix's colour range. A grid of paths
(one panel per pair of networks) over more than :data:`PATH_PANELS` panels
becomes parts of that many panels, every part on the same loss and accuracy
ranges, so parts compare by eye as the whole would.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import replace

import numpy as np
import plotly.graph_objects as go

from dashboard.figures import representations as frep
from dashboard.figures.items import FigureItem
from dashboard.figures.pairs import group_of, pair_groups, shown_pairs
from dashboard.figures.theme import Theme

#: Most runs a CKA block shows (8 x 8 annotated cells read from the back of a room).
CKA_RUNS = 8
#: Most panels of a path grid on one slide (a row of four loss/accuracy panel pairs).
PATH_PANELS = 4
#: Most pair groups of a barrier bar chart on one slide (each a few bars, one per alignment).
BAR_GROUPS = 6
#: Most runs of a runs x layers heatmap on one slide (a row each, its label readable).
HEATMAP_RUNS = 14


def _values(data) -> tuple:
    """A trace's x or y as a tuple (plotly keeps lists as tuples, arrays as arrays)."""
    return () if data is None else tuple(data)


def chunks(n: int, most: int) -> list[range]:
    """``range(n)`` cut into the fewest parts of at most ``most``, as even as can be."""
    parts = max(1, math.ceil(n / most))
    size = math.ceil(n / parts)
    return [range(i, min(i + size, n)) for i in range(0, n, size)] or [range(0)]


def _parts(item: FigureItem, figures: Sequence[tuple[go.Figure, str]]) -> list[FigureItem]:
    """``item`` as ``name-1``, ``name-2``...: each part's figure and what it holds in its title."""
    if len(figures) == 1:
        return [replace(item, figure=figures[0][0])]
    n = len(figures)
    return [
        replace(
            item,
            name=f"{item.name}-{k}",
            title=f"{item.title} ({k}/{n})",
            caption=f"Part {k} of {n}: {what}. {item.caption}",
            figure=fig,
        )
        for k, (fig, what) in enumerate(figures, 1)
    ]


def cka_parts(
    item: FigureItem, rep: dict, chosen: Sequence[int], theme: Theme, most: int = CKA_RUNS
) -> list[FigureItem]:
    """The CKA matrix of the runs ``chosen`` (positions in ``rep``), split into blocks.

    Every block's colour scale is the range of the whole matrix's off-diagonal
    cells (the diagonal is 1 by definition), so a colour means one value in every part.
    """
    labels = frep.run_labels(rep)
    matrix = np.asarray(rep["summary"]["cka"], dtype=float)[np.ix_(chosen, chosen)]
    off = matrix[~np.eye(len(chosen), dtype=bool)]
    finite = off[np.isfinite(off)]
    low, high = (float(finite.min()), 1.0) if finite.size else (0.0, 1.0)
    parts = [[chosen[i] for i in r] for r in chunks(len(chosen), most)]
    figures = []
    for a, rows in enumerate(parts):
        for cols in parts[a:]:
            fig = frep.cka_heatmap(rep, rows, theme)
            if cols is not rows:
                fig.data[0].update(
                    z=np.asarray(rep["summary"]["cka"], dtype=float)[np.ix_(rows, cols)],
                    x=[labels[i] for i in cols],
                )
            fig.update_traces(zmin=low, zmax=high)
            what = f"{labels[rows[0]]} … {labels[rows[-1]]}"
            if cols is not rows:
                what += f" against {labels[cols[0]]} … {labels[cols[-1]]}"
            figures.append((fig, what))
    return _parts(item, figures)


def _ranges(figures: Sequence[go.Figure]) -> dict[str, list[float]]:
    """The loss and accuracy ranges over every part: y values by what the trace's hover names."""
    found: dict[str, list[float]] = {}
    for fig in figures:
        for trace in fig.data:
            kind = _kind(trace)
            ys = [y for y in _values(trace.y) if y is not None and math.isfinite(y)]
            if kind and ys:
                low, high = found.get(kind, [math.inf, -math.inf])
                found[kind] = [min(low, *ys), max(high, *ys)]
    return found


def _kind(trace) -> str | None:
    """'loss' or 'accuracy' for a path trace (by its hover text), None for anything else."""
    hover = str(getattr(trace, "hovertemplate", "") or "")
    return "loss" if "loss %{y" in hover else "accuracy" if "accuracy %{y" in hover else None


def same_ranges(figures: Sequence[go.Figure]) -> None:
    """Put every loss panel of ``figures`` on one range, and every accuracy panel on another."""
    ranges = _ranges(figures)
    for fig in figures:
        for trace in fig.data:
            kind = _kind(trace)
            if kind in ranges:
                low, high = ranges[kind]
                pad = 0.05 * (high - low or 1.0)
                axis = "yaxis" + (trace.yaxis or "y")[1:]
                fig.layout[axis].update(range=[low - pad, high + pad])


def same_bar_range(figures: Sequence[go.Figure]) -> None:
    """Put the horizontal bars of every part on one value axis, from 0 to the longest bar."""
    longest = max(
        (x for fig in figures for t in fig.data for x in _values(t.x) if x is not None), default=0
    )
    for fig in figures:
        fig.update_xaxes(range=[0, 1.2 * longest or 1.0], autorange=False)


def path_parts(
    item: FigureItem,
    conn: dict,
    runs: Sequence[dict],
    draw: Callable[[dict, Sequence[dict]], go.Figure],
    most: int = PATH_PANELS,
    common: Callable[[Sequence[go.Figure]], None] = same_ranges,
) -> list[FigureItem]:
    """A figure of pair groups (``draw(conn, runs)``: a panel or a row of bars per group) in
    parts of at most ``most`` groups; ``common`` then puts the parts on one scale (by default
    one loss range and one accuracy range)."""
    pairs = shown_pairs(conn, runs)
    names = list(pair_groups(pairs))
    if len(names) <= most:
        return [item]
    figures = []
    for part in chunks(len(names), most):
        chosen = {names[i] for i in part}
        sub = {**conn, "pairs": [p for p in pairs if group_of(p) in chosen]}
        figures.append(draw(sub, runs))
    common(figures)
    return _parts(
        item,
        [
            (fig, f"{names[r[0]]} … {names[r[-1]]}")
            for fig, r in zip(figures, chunks(len(names), most), strict=True)
        ],
    )


def run_parts(
    item: FigureItem,
    runs: Sequence[dict],
    draw: Callable[[Sequence[dict]], go.Figure],
    most: int = HEATMAP_RUNS,
) -> list[FigureItem]:
    """A figure with a row per run (``draw(runs)``) in parts of at most ``most`` runs, all on
    the first part's colour range (a heatmap's ``zmin``/``zmax``, when it sets them)."""
    if len(runs) <= most:
        return [item]
    parts = chunks(len(runs), most)
    figures = [draw([runs[i] for i in part]) for part in parts]
    scale = {k: getattr(figures[0].data[0], k, None) for k in ("zmin", "zmax")}
    for fig in figures:
        if all(v is not None for v in scale.values()):
            fig.update_traces(**scale)
    return _parts(
        item,
        [
            (fig, f"{runs[r[0]]['label']} … {runs[r[-1]]['label']}")
            for fig, r in zip(figures, parts, strict=True)
        ],
    )
