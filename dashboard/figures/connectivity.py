"""Figures of mode connectivity: paths between networks, barriers, instability, sparsity.

Every function takes the summary's ``connectivity`` section (``conn``: settings,
notes, ``pairs`` with their barriers and curves, ``instability`` groups; see
``analysis.connectivity.summarize_connectivity`` and docs/summary.md) and the
run records the sidebar shows (``runs``, to filter by). A pair is shown when its
run B is shown and so is its run A, unless A is the dense reference of a
same-init pair. No streamlit here: the dashboard and the export draw the same
figures.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from dashboard.figures.bands import GroupKey, add_band, interval, stack
from dashboard.figures.curves import catalogue_items as curve_items
from dashboard.figures.ensembles import catalogue_items as ensemble_items
from dashboard.figures.items import FigureItem
from dashboard.figures.pairs import (
    ALIGNMENT_SYMBOLS,  # noqa: F401  (re-exported: callers read the styles here too)
    ALIGNMENTS,  # noqa: F401
    PANELS_PER_ROW,
    alignment_dash,  # noqa: F401
    empty_figure,
    finish_path_grid,
    marker,
    method_tick,
    no_pairs_message,
    pair_groups,
    shown_pairs,
    style_key,
    variant_of,
    variant_pattern,
    variant_style,
)
from dashboard.figures.repair import catalogue_items as repair_items
from dashboard.figures.theme import (
    NORMAL,
    SEED_DASHES,
    Theme,
    apply,
    method_color,
)

if TYPE_CHECKING:  # the reader pulls in the analysis library; figures stay light
    from dashboard.results import Reader

SPLITS = {"test": "Test", "train": "Train"}
BARRIERS = {
    "barrier_entezari": "Loss barrier (Entezari)",
    "barrier_rebasin": "Loss barrier (Re-Basin)",
    "accuracy_barrier": "Accuracy barrier",
    "error_barrier": "Error barrier (Frankle)",
}
#: Axis titles of the barriers.
BARRIER_UNITS = {
    "barrier_entezari": "Loss barrier",
    "barrier_rebasin": "Loss barrier",
    "accuracy_barrier": "Accuracy barrier (pp)",
    "error_barrier": "Error barrier (pp)",
}
#: What each barrier measures, for subtitles and captions.
BARRIER_MEANING = {
    "barrier_entezari": "max loss above the line joining the ends",
    "barrier_rebasin": "max loss above the mean of the ends",
    "accuracy_barrier": "max accuracy drop below the line joining the ends",
    "error_barrier": "max error above the mean of the ends",
}


def _accuracy_like(barrier: str) -> bool:
    """Whether ``barrier`` is measured on accuracy (drawn in percentage points)."""
    return barrier in ("accuracy_barrier", "error_barrier")


def path_curves(
    conn: dict,
    runs: Sequence[dict],
    split: str = "test",
    theme: Theme = NORMAL,
    *,
    grouped: bool = False,
) -> go.Figure:
    """Loss (top) and accuracy (bottom) against alpha: a panel per method, a line style per
    alignment; a line per pair, or (``grouped``) the mean over the pairs of seeds with a 95%
    band. Colour is the method's."""
    shown = shown_pairs(conn, runs)
    groups = pair_groups(shown)
    title = f"Loss and accuracy along the straight path A → B ({SPLITS[split].lower()})"
    if not groups:
        return empty_figure(theme, title, no_pairs_message(conn))
    if grouped:
        title += "<br><sup>mean over the pairs of seeds, band: 95% interval (Student t)</sup>"
    cols = min(len(groups), PANELS_PER_ROW, theme.max_cols)
    blocks = math.ceil(len(groups) / cols)
    titles = []
    for b in range(blocks):
        names = list(groups)[b * cols : (b + 1) * cols]
        methods = [groups[n][0]["method"] for n in names]
        titles += [method_tick(n, m) for n, m in zip(names, methods, strict=True)]
        titles += [""] * (cols - len(names)) + [""] * cols  # the accuracy row has no titles
    fig = make_subplots(
        rows=2 * blocks, cols=cols, subplot_titles=titles, shared_xaxes=True,
        horizontal_spacing=0.04, vertical_spacing=min(0.08, 0.4 / blocks),
    )  # fmt: skip
    for k, pairs in enumerate(groups.values()):
        row, col = 2 * (k // cols) + 1, k % cols + 1
        for variant in _by_variant(pairs).values():
            if grouped:
                _variant_band(fig, variant, split, theme, row, col)
            else:
                for p in variant:
                    _pair_lines(fig, p, split, theme, row, col)
    style_key(fig, shown, theme)
    finish_path_grid(fig, theme, title, blocks, cols, "alpha (0 = A, 1 = B)")
    if grouped:  # room for the subtitle above the panels' titles
        fig.update_layout(margin={"t": theme.title_size * 5})
    return fig


def _by_variant(pairs: Sequence[dict]) -> dict[str, list[dict]]:
    """Pairs by alignment (+ REPAIR), in summary order."""
    out: dict[str, list[dict]] = {}
    for p in pairs:
        out.setdefault(variant_of(p), []).append(p)
    return out


def _pair_lines(fig: go.Figure, p: dict, split: str, theme: Theme, row: int, col: int) -> None:
    """One pair's loss and accuracy along alpha (out of the legend: style_key explains it)."""
    name, curve = variant_of(p), p["curve"]
    common = dict(
        x=curve["alphas"], mode="lines+markers", line=variant_style(p, theme),
        marker=marker(p, theme), name=name, legendgroup=name, showlegend=False,
    )  # fmt: skip
    b = p["barriers"][split]
    fig.add_trace(
        go.Scatter(
            y=curve[f"{split}_loss"], **common,
            hovertemplate=f"<b>{name}</b><br>alpha %{{x:.2f}}<br>loss %{{y:.3f}}"
            f"<br>barrier {b['barrier_entezari']:.3f}<extra>{p['run_b']}</extra>",
        ),
        row=row, col=col,
    )  # fmt: skip
    fig.add_trace(
        go.Scatter(
            y=[100 * a for a in curve[f"{split}_acc"]], **common,
            hovertemplate=f"<b>{name}</b><br>alpha %{{x:.2f}}<br>accuracy %{{y:.1f}}%"
            f"<extra>{p['run_b']}</extra>",
        ),
        row=row + 1, col=col,
    )  # fmt: skip


def _variant_band(
    fig: go.Figure, ps: Sequence[dict], split: str, theme: Theme, row: int, col: int
) -> None:
    """The mean loss and accuracy of one alignment over a method's pairs, with 95% bands."""
    first = ps[0]
    alphas = first["curve"]["alphas"]
    key = GroupKey("", first["method"], 0.0, "")
    style = {"key": key, "name": variant_of(first), "theme": theme, "showlegend": False,
             "dash": variant_style(first, theme)["dash"], "symbol": marker(first, theme)["symbol"],
             "hover": f"{len(ps)} pairs"}  # fmt: skip
    loss = stack(ps, lambda p: p["curve"][f"{split}_loss"], len(alphas))
    acc = 100 * stack(ps, lambda p: p["curve"][f"{split}_acc"], len(alphas))
    add_band(fig, alphas, loss, cell=(row, col), **style)
    add_band(fig, alphas, acc, cell=(row + 1, col), **style)


def barrier_bars(
    conn: dict,
    runs: Sequence[dict],
    barrier: str = "barrier_entezari",
    split: str = "test",
    theme: Theme = NORMAL,
    *,
    grouped: bool = False,
) -> go.Figure:
    """The barrier per method (a row) and alignment (a bar pattern), in the method's colour:
    per pair of seeds, or (``grouped``) the mean over pairs with its 95% interval."""
    shown = shown_pairs(conn, runs)
    groups = pair_groups(shown)
    title = f"{BARRIERS[barrier]} ({split})<br><sup>{BARRIER_MEANING[barrier]}"
    title += "; bars: mean over pairs of seeds, 95% interval</sup>" if grouped else "</sup>"
    if not groups:
        return empty_figure(theme, title, no_pairs_message(conn))
    scale = 100 if _accuracy_like(barrier) else 1
    rows = _bar_rows(groups, grouped)
    ticks = {y: method_tick(y, ps[0]["method"]) for y, ps in rows.items()}
    variants = list(_by_variant(shown))
    fig = go.Figure()
    # Horizontal groups stack their first trace at the bottom: add in reverse, list in order.
    for name in reversed(variants):
        cells = {y: [p for p in ps if variant_of(p) == name] for y, ps in rows.items()}
        cells = {y: ps for y, ps in cells.items() if ps}
        spread = [interval([scale * p["barriers"][split][barrier] for p in ps])
                  for ps in cells.values()]  # fmt: skip
        mean, low, high = (np.array([v[i] for v in spread], dtype=float) for i in range(3))
        first = next(iter(cells.values()))[0]
        fig.add_trace(
            go.Bar(
                y=list(cells), x=mean, orientation="h", name=name, legendgroup=name,
                showlegend=False,
                marker={"color": [method_color(ps[0]["method"]) for ps in cells.values()],
                        "pattern": {"shape": variant_pattern(first), "fgcolor": "white"}},
                error_x={"type": "data", "symmetric": False, "array": high - mean,
                         "arrayminus": mean - low, "visible": grouped, "color": "#444444"},
                customdata=[[len(ps), ps[0]["run_a"], ps[0]["run_b"]] for ps in cells.values()],
                texttemplate="%{x:.2f}", textposition="outside", cliponaxis=False,
                textfont={"size": max(theme.font_size - 2, 10)},
                hovertemplate=f"<b>{name}</b><br>%{{y}} · %{{customdata[0]}} pair(s)"
                f"<br>{BARRIERS[barrier]} %{{x:.3f}}<extra></extra>",
            )
        )  # fmt: skip
    style_key(fig, shown, theme, bars=True)
    bars = sum(len(ps) for ps in rows.values()) if not grouped else len(rows) * len(variants)
    height = max(int(theme.height * 0.8), int(bars * theme.row_height * 0.9) + 6 * theme.title_size)
    apply(fig, theme, title=title, height=height)
    fig.update_layout(
        barmode="group", bargap=0.2, legend={"y": -0.2 - 90 / height},
        uniformtext={"minsize": 9, "mode": "hide"}, margin={"t": theme.title_size * 5},
    )  # fmt: skip
    fig.update_yaxes(
        ticks="", categoryorder="array", categoryarray=list(ticks)[::-1],
        tickvals=list(ticks), ticktext=list(ticks.values()),
    )  # fmt: skip
    fig.update_xaxes(title_text=BARRIER_UNITS[barrier], rangemode="tozero")
    return fig


def _bar_rows(groups: dict[str, list[dict]], grouped: bool) -> dict[str, list[dict]]:
    """Rows of the barrier chart: a method's panel (grouped), else one row per pair of seeds
    where a panel has several (``magnitude 90% · seeds 0~2``)."""
    if grouped:
        return dict(groups)
    rows: dict[str, list[dict]] = {}
    for name, ps in groups.items():
        several = len({tuple(p.get("seeds") or ()) for p in ps}) > 1
        for p in ps:
            seeds = "~".join(str(s) for s in p.get("seeds") or ())
            rows.setdefault(f"{name} {seeds}" if several else name, []).append(p)
    return rows


def instability_curve(
    conn: dict,
    runs: Sequence[dict],
    barrier: str = "error_barrier",
    split: str = "test",
    theme: Theme = NORMAL,
    *,
    grouped: bool = False,
) -> go.Figure:
    """Barrier between two copies trained from a rewind step, against the step (Frankle et al.
    2020): a line per run, or (``grouped``) per method over seeds with its 95% band."""
    labels = {r["label"] for r in runs}
    title = (
        f"Instability ({split})<br><sup>{BARRIERS[barrier]} between two copies"
        " trained from each rewind step" + ("; band: 95% interval over seeds" * grouped) + "</sup>"
    )
    shown = [
        g
        for g in conn.get("instability", [])
        if g["label"] in labels and any(p.get("status") == "cached" for p in g["points"])
    ]
    if not shown:
        return empty_figure(theme, title, "No instability results for the shown runs.")
    scale = 100 if _accuracy_like(barrier) else 1
    steps = sorted({p["rewind_step"] for g in shown for p in g["points"]})

    def curve(g: dict) -> list[float]:
        at = {p["rewind_step"]: p for p in g["points"] if p.get("status") == "cached"}
        return [scale * at[s]["barriers"][split][barrier] if s in at else np.nan for s in steps]

    lines: dict[str, list[dict]] = {}
    for g in shown:
        lines.setdefault(g["label"].rsplit(" s", 1)[0] if grouped else g["label"], []).append(g)
    fig = go.Figure()
    for name, gs in lines.items():
        dash = "solid" if grouped else SEED_DASHES[int(gs[0].get("seed", 0)) % len(SEED_DASHES)]
        values = np.array([curve(g) for g in gs])
        add_band(fig, steps, values, key=GroupKey("", gs[0]["method"], 0.0, ""), name=name,
                 theme=theme, dash=dash)  # fmt: skip
    apply(fig, theme, title=title)
    fig.update_xaxes(
        title_text="Rewind step (optimizer steps)", tickvals=steps,
        range=[-0.05 * (steps[-1] or 1), 1.05 * (steps[-1] or 1)],
    )  # fmt: skip
    fig.update_yaxes(title_text=BARRIER_UNITS[barrier], rangemode="tozero")
    return fig


def sparse_pairs(conn: dict, runs: Sequence[dict]) -> list[dict]:
    """The shown pairs with a sparse endpoint (their path's sparsity is worth a look)."""
    return [p for p in shown_pairs(conn, runs) if max(p["curve"].get("sparsity") or [0]) > 0]


def sparsity_paths(conn: dict, runs: Sequence[dict], theme: Theme = NORMAL) -> go.Figure:
    """Sparsity of the interpolated weights against alpha: a panel per sparse pair, a line per
    alignment.

    Between the ends the mask is the union of the (permuted) masks, so the dip
    in the middle shows how much the two masks overlap after alignment.
    """
    title = (
        "Sparsity along the path"
        "<br><sup>between the ends the mask is the union of the two (permuted) masks</sup>"
    )
    groups = pair_groups(sparse_pairs(conn, runs))
    if not groups:
        return empty_figure(theme, title, "No shown pair has a sparse network.")
    cols = min(len(groups), PANELS_PER_ROW, theme.max_cols)
    rows = math.ceil(len(groups) / cols)
    fig = make_subplots(
        rows=rows, cols=cols, shared_yaxes=True, horizontal_spacing=0.03,
        vertical_spacing=min(0.15, 0.5 / rows),
        subplot_titles=[method_tick(n, ps[0]["method"]) for n, ps in groups.items()],
    )  # fmt: skip
    in_legend: set[str] = set()
    for k, pairs in enumerate(groups.values()):
        for p in pairs:
            name = variant_of(p)
            fig.add_trace(
                go.Scatter(
                    x=p["curve"]["alphas"], y=[100 * v for v in p["curve"]["sparsity"]],
                    mode="lines+markers", name=name, legendgroup=name,
                    showlegend=name not in in_legend, line=variant_style(p, theme),
                    marker=marker(p, theme),
                    hovertemplate=f"<b>{name}</b><br>alpha %{{x:.2f}}<br>sparsity %{{y:.1f}}%"
                    f"<extra>{p['run_b']}</extra>",
                ),
                row=k // cols + 1, col=k % cols + 1,
            )  # fmt: skip
            in_legend.add(name)
    apply(fig, theme, title=title, height=80 + rows * int(theme.height * 0.75))
    fig.update_xaxes(title_text="alpha")
    fig.update_yaxes(range=[-3, 103])
    for r in range(1, rows + 1):
        fig.update_yaxes(title_text="Zero weights (%)", row=r, col=1)
    fig.update_annotations(font={"size": theme.font_size + 1})
    fig.update_layout(legend={"y": -0.3 / rows}, margin={"t": theme.title_size * 5})
    return fig


def catalogue(summary: dict, reader: Reader | None, theme: Theme = NORMAL) -> list[FigureItem]:
    """The connectivity figures of the whole study (default choices), for the export.

    ``reader`` is unused (everything is in the summary); it keeps one signature
    for every analysis's catalogue.
    """
    conn = summary.get("connectivity") or {}
    runs = summary.get("runs", [])
    items = []
    if shown_pairs(conn, runs):
        n = len(conn.get("settings", {}).get("alignments", [])) or 1
        items += [
            FigureItem(
                "Connectivity", "connectivity-paths-test",
                "Loss and accuracy along the path between two networks",
                f"Each panel interpolates two networks of one method; the {n} lines compare "
                "no alignment with permutation alignment: a bump is a barrier between them.",
                path_curves(conn, runs, "test", theme),
            ),
            FigureItem(
                "Connectivity", "connectivity-barriers-test",
                "Loss barrier per method and alignment",
                "Height of the test-loss bump above the straight line joining the two "
                "networks (Entezari et al. 2022); lower means better linearly connected.",
                barrier_bars(conn, runs, "barrier_entezari", "test", theme),
            ),
        ]  # fmt: skip
        if sparse_pairs(conn, runs):
            items.append(
                FigureItem(
                    "Connectivity", "connectivity-sparsity",
                    "Sparsity along the path",
                    "Zero weights of the interpolated network: the ends keep their own "
                    "masks, the middle keeps the union, so a deep dip means the masks disagree.",
                    sparsity_paths(conn, runs, theme),
                )
            )  # fmt: skip
    items += curve_items(conn, runs, theme) + ensemble_items(conn, runs, theme)
    items += repair_items(conn, runs, theme)
    if any(p.get("status") == "cached" for g in conn.get("instability", []) for p in g["points"]):
        items.append(
            FigureItem(
                "Connectivity", "connectivity-instability",
                "Instability against rewind step",
                "Two copies trained from the same rewind point with different data orders: "
                "a test-error barrier near 0 means training is stable from that step on "
                "(Frankle et al. 2020).",
                instability_curve(conn, runs, "error_barrier", "test", theme),
            )
        )  # fmt: skip
    return items
