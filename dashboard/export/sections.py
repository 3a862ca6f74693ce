"""The export's own sections: what the figures' catalogue draws, fitted to a view and a deck.

Each function turns a (narrowed, see :mod:`.view`) summary into
:class:`~dashboard.figures.items.FigureItem`s, reusing the figure builders the
pages draw with: Overview with the mean over seeds when grouped, the Sweeps
page's metric against each axis, the Ranking page's table (a
:class:`TableItem`, a native table on a slide), Representations of the shown
runs with the CKA matrix split into blocks, and Connectivity with one barrier
definition throughout and its large grids split (:mod:`.split`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

import plotly.graph_objects as go

from dashboard.export.split import (
    BAR_GROUPS,
    chunks,
    cka_parts,
    path_parts,
    run_parts,
    same_bar_range,
)
from dashboard.figures import connectivity as fconn
from dashboard.figures import ranking as frank
from dashboard.figures import representations as frep
from dashboard.figures import sweeps as fsweep
from dashboard.figures.catalogue import EMBEDDING_PANELS
from dashboard.figures.catalogue import overview as overview_items
from dashboard.figures.curves import shown_curves
from dashboard.figures.items import FigureItem
from dashboard.figures.runs import cached, layer_sparsity_heatmap
from dashboard.figures.theme import Theme, apply
from dashboard.results import Reader

#: The barrier every figure shows unless another is chosen (the dashboard's default).
DEFAULT_BARRIER = "barrier_entezari"
#: Rows of a ranking table on one slide.
RANKING_ROWS = 8
RANKING_WORDS = (
    "Mean over seeds (barriers: pairs of seeds) [95% interval, Student t]; 'vs dense': the mean "
    "paired difference against dense of the same seed and setting, * where its 95% interval "
    "excludes zero."
)


@dataclass(frozen=True)
class TableItem(FigureItem):
    """A table: ``header`` and ``rows`` of text (a native table on a slide), and ``figure``
    the same table drawn by plotly (the HTML report and the images)."""

    header: tuple[str, ...] = ()
    rows: tuple[tuple[str, ...], ...] = ()


def barrier_words(barrier: str) -> str:
    """'Loss barrier (Entezari): max loss above the line joining the ends'."""
    return f"{fconn.BARRIERS[barrier]}: {fconn.BARRIER_MEANING[barrier]}"


# -- Overview and the metric against each axis -----------------------------------------


def overview(summary: dict, reader: Reader, theme: Theme, grouped: bool) -> list[FigureItem]:
    """The Overview figures; grouped: accuracy as the mean over seeds per method (95% band)."""
    out: list[FigureItem] = []
    layered = [r for r in cached(summary["runs"]) if r.get("layer_sparsity")]
    for item in overview_items(summary, reader, theme, grouped=grouped):
        if item.name == "overview-layers":
            out += run_parts(item, layered, lambda runs: layer_sparsity_heatmap(runs, theme))
        elif item.name == "overview-accuracy" and grouped:
            mean = fsweep.metric_vs_axis(summary, ["test_acc"], "sparsity", theme)
            words = "Mean test accuracy over seeds per method; band and bars: 95% interval."
            out.append(replace(item, figure=mean, caption=words))
        else:
            out.append(item)
    return out


def _barrier_metrics(available: Sequence[str], barrier: str) -> list[str]:
    """No alignment and the first alignment there is, both of ``barrier`` on the test split."""
    mine = [m for m in available if m.startswith("barrier.") and m.endswith(f".test.{barrier}")]
    naive = [m for m in mine if m.split(".")[1] == "naive"]
    order = {"weight": 0, "activation": 1}
    aligned = sorted(
        (m for m in mine if m.split(".")[1] != "naive"),
        key=lambda m: (order.get(m.split(".")[1], 2), m),
    )
    return naive + aligned[:1]


def sweeps(summary: dict, theme: Theme, barrier: str, grouped: bool) -> list[FigureItem]:
    """Test accuracy and the barrier (naive and aligned) against sparsity and each swept axis.

    Grouped, accuracy against sparsity is Overview's accuracy figure already: not repeated.
    """
    metrics = fsweep.metrics_of(summary)
    barriers = _barrier_metrics(metrics, barrier)
    items = []
    groups = summary.get("groups", [])
    for axis in fsweep.axes_of(summary):
        if axis != "sparsity" and len({str(g["setting"].get(axis)) for g in groups}) < 2:
            continue  # the filters keep one value of this axis
        slug, name = axis.split(".")[-1], fsweep.AXIS_NAMES.get(axis, axis)
        if "test_acc" in metrics and not (grouped and axis == "sparsity"):
            items.append(
                FigureItem(
                    "Sweeps", f"sweeps-accuracy-{slug}", f"Test accuracy against {name}",
                    "One line per method: the mean over seeds, its 95% interval (Student t) "
                    "as a band where there are 2 seeds or more.",
                    fsweep.metric_vs_axis(summary, ["test_acc"], axis, theme),
                )
            )  # fmt: skip
        if barriers:
            items.append(
                FigureItem(
                    "Sweeps", f"sweeps-barrier-{slug}", f"Barrier against {name}",
                    f"{barrier_words(barrier)}, between networks of two seeds, without alignment "
                    "and after permutation alignment (a line style each, named in the legend): "
                    "the mean over pairs of seeds with its 95% interval (Entezari et al. 2022, "
                    "Figure 1).",
                    fsweep.metric_vs_axis(summary, barriers, axis, theme),
                )
            )  # fmt: skip
    return items


# -- the ranking table ----------------------------------------------------------------


def _cell(row, name: str) -> str:
    """'0.873 [0.861 to 0.885]' then the difference against dense ('vs dense -0.012 *')."""
    mean = row.get(name)
    if mean is None or mean != mean:
        return "—"
    interval = row.get(f"{name}: 95%", "—")
    text = frank.human(mean) + (f" [{interval}]" if interval != "—" else "")
    diff = row.get(f"{name}: vs dense")
    if diff is not None and diff == diff:
        text += f"\nvs dense {frank.human(diff)}{' *' if row.get(f'{name}: sig.') else ''}"
    return text


def ranking_metrics(summary: dict, barrier: str) -> list[str]:
    """The Ranking page's default columns, the barrier's in the chosen definition."""
    available = fsweep.metrics_of(summary)
    chosen = [
        m.replace(f".{DEFAULT_BARRIER}", f".{barrier}") if m.startswith("barrier.") else m
        for m in frank.default_metrics(available)
    ]
    return [m for m in chosen if m in available]


def _table_figure(header: Sequence[str], rows: Sequence[Sequence[str]], theme: Theme, title: str):
    """The table drawn by plotly (for the HTML report and the images)."""
    columns = [[r[c].replace("\n", "<br>") for r in rows] for c in range(len(header))]
    fig = go.Figure(
        go.Table(
            header={"values": [f"<b>{h}</b>" for h in header], "align": "left",
                    "font": {"size": theme.font_size}},
            cells={"values": columns, "align": "left", "font": {"size": theme.font_size - 1},
                   "height": 2.2 * theme.font_size + 8},
        )
    )  # fmt: skip
    height = 4 * theme.title_size + (len(rows) + 1) * (2.6 * theme.font_size + 10) + 40
    apply(fig, theme, title=title, height=int(height))
    return fig


def ranking(summary: dict, theme: Theme, barrier: str) -> list[FigureItem]:
    """One table per pruned sparsity: methods x metrics, mean, interval, difference to dense."""
    metrics = ranking_metrics(summary, barrier)
    if not metrics:
        return []
    items: list[FigureItem] = []
    for level in frank.sparsities(summary):
        frame = frank.ranking_table(summary, level, metrics)
        if frame.empty:
            continue
        records = frame.to_dict("records")
        names = [fsweep.y_title(m) for m in metrics]
        lead = [c for c in ("Setting", "Method", "Seeds") if c in frame.columns]
        header = (*lead, *names)
        rows = [(*(str(r[c]) for c in lead), *(_cell(r, n) for n in names)) for r in records]
        parts = chunks(len(rows), RANKING_ROWS)
        lower = [n for m, n in zip(metrics, names, strict=True) if frank.lower_is_better(m)]
        caption = RANKING_WORDS + (f" Lower is better: {', '.join(lower)}." if lower else "")
        for k, part in enumerate(parts, 1):
            label = f"{100 * level:.4g}"
            more = f" ({k}/{len(parts)})" if len(parts) > 1 else ""
            title = f"Methods at {label}% sparsity{more}"
            chosen = tuple(rows[i] for i in part)
            items.append(
                TableItem(
                    "Ranking", f"ranking-{label.replace('.', '_')}" + (f"-{k}" if more else ""),
                    title,
                    caption,
                    _table_figure(header, chosen, theme, title),
                    header=header, rows=chosen,
                )
            )  # fmt: skip
    return items


# -- representations of the shown runs -------------------------------------------------


def _embedding_groups(rep: dict, chosen: list[int]) -> list[list[int]]:
    """The shown runs of the reference's seed in groups of at most ``EMBEDDING_PANELS``,
    the reference (the study's, when shown, else the first shown run) first."""
    labels, runs = frep.run_labels(rep), rep["summary"]["runs"]
    reference = rep["summary"].get("reference")
    ref = labels.index(reference) if reference in labels else -1
    ref = ref if ref in chosen else chosen[0]
    seed = runs[ref].get("seed", 0)
    others = [i for i in chosen if i != ref and runs[i].get("seed", 0) == seed]
    step = EMBEDDING_PANELS - 1
    return [[ref, *others[i : i + step]] for i in range(0, len(others), step)] or [[ref]]


def representations(summary: dict, reader: Reader, theme: Theme) -> list[FigureItem]:
    """Per objective, of the shown runs: aligned embeddings, the CKA matrix (in blocks of
    at most 8 runs) and the geometry per class."""
    shown = {r["label"] for r in summary["runs"]}
    records = [r for r in summary.get("representations", []) if r["status"] == "cached"]
    items: list[FigureItem] = []
    several_settings = len({r.get("setting_label", "") for r in records}) > 1
    for record in records:
        objective, setting = record["objective"], record.get("setting_label", "")
        rep = reader.representations(objective, setting)
        if rep is None:
            continue
        labels = frep.run_labels(rep)
        chosen = [i for i, label in enumerate(labels) if label in shown]
        if not chosen:
            continue
        where = ", ".join(([setting] if several_settings else []) + [objective])
        suffix = f" ({where})" if len(records) > 1 else ""
        slug = f"representations-{objective}"
        if several_settings:  # "width 64, noise 0.2" -> "width-64-noise-0-2"
            slug += "-" + "-".join("".join(c if c.isalnum() else " " for c in setting).split())
        groups = _embedding_groups(rep, chosen)
        for g, panels in enumerate(groups, 1):
            part = f" ({g}/{len(groups)})" if len(groups) > 1 else ""
            items.append(
                FigureItem(
                    "Representations", f"{slug}-embedding-{g}",
                    f"Aligned UMAP embeddings{suffix}{part}",
                    "Penultimate-layer features of a fixed test subset, embedded in 2-D with UMAP "
                    f"and aligned onto {labels[panels[0]]} so the panels share a frame; colour "
                    "is the true class.",
                    frep.embedding_scatter(rep, panels, "class", theme, dims=2),
                )
            )  # fmt: skip
        if len(chosen) > 1:
            cka = FigureItem(
                "Representations", f"{slug}-cka", f"Linear CKA between runs{suffix}",
                "Similarity of the runs' features on the same samples (1: identical up to a "
                "rotation and scale; Kornblith et al. 2019); every part on one colour scale.",
                go.Figure(),
            )  # fmt: skip
            items += cka_parts(cka, rep, chosen, theme)
        first = sorted({i for group in groups for i in group})
        items.append(
            FigureItem(
                "Representations", f"{slug}-geometry", f"Last-layer geometry per class{suffix}",
                "Per true class: mean angle between a feature and its class's head row, mean "
                "feature norm and mean logit margin (Li et al. 2022).",
                frep.geometry_bars(rep, first, theme),
            )
        )  # fmt: skip
    return items


# -- connectivity with one barrier definition ------------------------------------------


def _curve_barriers(item: FigureItem, conn: dict, runs: list[dict], barrier: str) -> FigureItem:
    """The curve-against-line barrier figure redrawn in ``barrier`` (it is drawn in Entezari's)."""
    if barrier == DEFAULT_BARRIER:
        return item
    curves = shown_curves(conn, runs)
    scale = 100 if barrier in ("accuracy_barrier", "error_barrier") else 1
    fig = go.Figure(item.figure)
    for trace in fig.data:
        key = "line" if trace.name == "straight line" else None
        trace.x = [scale * (c[key] if key else c)["barriers"]["test"][barrier] for c in curves]
    fig.update_layout(
        title_text=f"{fconn.BARRIERS[barrier]}: curve against straight line (test)"
        f"<br><sup>{fconn.BARRIER_MEANING[barrier]}</sup>"
    )
    fig.update_xaxes(title_text=fconn.BARRIER_UNITS[barrier])
    return replace(item, figure=fig, caption=f"{barrier_words(barrier)}, per pair.")


def connectivity(summary: dict, theme: Theme, barrier: str) -> list[FigureItem]:
    """The Connectivity figures in ``barrier`` throughout; grids and bar charts of many pairs
    split into parts on one scale."""
    conn, runs = summary.get("connectivity") or {}, summary["runs"]
    out: list[FigureItem] = []
    for item in fconn.catalogue(summary, None, theme):
        if item.name == "connectivity-paths-test":
            out += path_parts(item, conn, runs, lambda c, r: fconn.path_curves(c, r, "test", theme))
        elif item.name == "connectivity-sparsity":
            out += path_parts(
                item, conn, runs, lambda c, r: fconn.sparsity_paths(c, r, theme),
                common=lambda figures: None,  # the sparsity axis is 0-100% in every part
            )  # fmt: skip
        elif item.name == "connectivity-barriers-test":
            item = replace(
                item, title=f"{fconn.BARRIERS[barrier]} per method and alignment",
                caption=f"{barrier_words(barrier)} (test split), per pair of networks; lower "
                "means better linearly connected (Entezari et al. 2022).",
                figure=fconn.barrier_bars(conn, runs, barrier, "test", theme),
            )  # fmt: skip
            out += path_parts(
                item, conn, runs, lambda c, r: fconn.barrier_bars(c, r, barrier, "test", theme),
                BAR_GROUPS, same_bar_range,
            )  # fmt: skip
        elif item.name == "connectivity-instability":
            out.append(
                replace(
                    item, caption=f"{item.caption} Barrier: {barrier_words(barrier)}.",
                    figure=fconn.instability_curve(conn, runs, barrier, "test", theme),
                )
            )  # fmt: skip
        elif item.name == "connectivity-curve-barriers":
            out.append(_curve_barriers(item, conn, runs, barrier))
        else:
            out.append(item)
    return out
