"""Figures of a network's anatomy: mask overlap, the lottery controls, weight movement,
compression (parameters, MACs, size, latency) and accuracy against quantization bits.

Every function takes sections of the JSON summary (docs/summary.md): ``runs``
records, the ``masks`` section (``pairs``, ``supermasks``), the ``compression``
and ``quantization`` lists. No streamlit here.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import plotly.graph_objects as go

from dashboard.figures.theme import NORMAL, PALE, SLATE, Theme, apply, method_color

#: The lottery family in the order the controls chart reads: the ticket, then what each
#: control changes (init, mask, magnitudes), then the criteria.
LOTTERY_FAMILY = (
    "lottery",
    "lottery-reinit",
    "lottery-random-mask",
    "lottery-signs",
    "lottery-criterion",
)


def cached_pairs(masks: dict) -> list[dict]:
    """The mask pairs of the ``masks`` section that are computed."""
    return [p for p in (masks or {}).get("pairs", []) if p.get("status") == "cached"]


def overlap_matrix(labels: Sequence[str], pairs: Sequence[dict], layer: str | None = None):
    """(n, n) IoU matrix of ``labels`` (None where no pair is computed; 1 on the diagonal).

    ``layer``: one layer's IoU (default: over all prunable weights).
    """
    index = {label: i for i, label in enumerate(labels)}
    z = np.full((len(labels), len(labels)), np.nan)
    np.fill_diagonal(z, 1.0)
    for p in pairs:
        if p["a"] in index and p["b"] in index:
            value = p["iou"] if layer is None else p["layers"].get(layer, {}).get("iou")
            if value is not None:
                z[index[p["a"]], index[p["b"]]] = z[index[p["b"]], index[p["a"]]] = value
    return [[None if np.isnan(v) else float(v) for v in row] for row in z]


def overlap_heatmap(
    runs: Sequence[dict], masks: dict, theme: Theme = NORMAL, layer: str | None = None
) -> go.Figure:
    """Intersection over union of the kept weights between every two shown runs of one seed."""
    pairs = cached_pairs(masks)
    named = {p["a"] for p in pairs} | {p["b"] for p in pairs}
    labels = [r["label"] for r in runs if r["label"] in named]
    z = overlap_matrix(labels, pairs, layer)
    fig = go.Figure(
        go.Heatmap(
            z=[[None if v is None else 100 * v for v in row] for row in z],
            x=labels,
            y=labels,
            zmin=0,
            zmax=100,
            colorscale="Viridis",
            colorbar={"title": {"text": "IoU (%)", "side": "right"}},
            texttemplate="%{z:.0f}",
            textfont={"size": max(theme.font_size - 3, 9)},
            hovertemplate="<b>%{y}</b> vs <b>%{x}</b><br>IoU %{z:.1f}%<extra></extra>",
            xgap=1,
            ygap=1,
        )
    )
    where = f" in {layer}" if layer else ""
    title = f"Overlap of the kept weights{where}<br><sup>intersection over union; pairs of one seed</sup>"
    height = max(int(theme.height * 0.8), theme.row_height * len(labels) + 200)
    apply(fig, theme, title=title, height=height)
    fig.update_xaxes(showgrid=False, ticks="", tickangle=-35)
    fig.update_yaxes(showgrid=False, ticks="", autorange="reversed")
    return fig


def controls_rows(runs: Sequence[dict], masks: dict | None = None) -> list[dict]:
    """Test accuracy of the lottery family and of the tickets' supermasks, by sparsity.

    One row per (sparsity, method): ``sparsity`` (%), ``method``, ``mean`` and
    ``std`` of test accuracy (%) over the seeds, ``n`` seeds.
    """
    groups: dict[tuple[float, str], list[float]] = {}
    for r in runs:
        if r.get("status") == "cached" and r["method"] in LOTTERY_FAMILY:
            key = (round(100 * r["requested_sparsity"], 2), r["method"])
            groups.setdefault(key, []).append(100 * r["test_acc"])
    by_label = {r["label"]: r for r in runs if r["method"] == "lottery"}
    for sm in (masks or {}).get("supermasks", []):
        run = by_label.get(sm["label"])
        if run is not None and sm.get("status") == "cached":
            key = (round(100 * run["requested_sparsity"], 2), "supermask (untrained)")
            groups.setdefault(key, []).append(100 * sm["original"]["test_acc"])
    return [
        {
            "sparsity": s,
            "method": m,
            "mean": float(np.mean(v)),
            "std": float(np.std(v)),
            "n": len(v),
        }
        for (s, m), v in sorted(groups.items())
    ]


def controls_bars(runs: Sequence[dict], masks: dict | None, theme: Theme = NORMAL) -> go.Figure:
    """The winning ticket against its controls: test accuracy per sparsity, ±1 std over seeds."""
    rows = controls_rows(runs, masks)
    methods = list(dict.fromkeys(r["method"] for r in rows))
    fig = go.Figure()
    for method in methods:
        mine = [r for r in rows if r["method"] == method]
        fig.add_trace(
            go.Bar(
                x=[f"{r['sparsity']:g}%" for r in mine],
                y=[r["mean"] for r in mine],
                error_y={"type": "data", "array": [r["std"] for r in mine], "visible": True},
                name=method,
                marker={"color": method_color(method.split(" ")[0])},
                customdata=[r["n"] for r in mine],
                hovertemplate=f"<b>{method}</b> at %{{x}}<br>test accuracy %{{y:.2f}}%"
                "<br>%{customdata} seed(s)<extra></extra>",
            )
        )
    title = (
        "The winning ticket and its controls<br><sup>mean test accuracy over seeds, ±1 std</sup>"
    )
    apply(fig, theme, title=title)
    fig.update_layout(barmode="group")
    fig.update_xaxes(title_text="sparsity", ticks="")
    fig.update_yaxes(title_text="test accuracy (%)")
    return fig


def movement_bars(pair: dict, theme: Theme = NORMAL, side: str = "a_by_b") -> go.Figure:
    """Per layer: mean |w_f - w_i| of one run's training for the weights the other run keeps
    and prunes (``side`` ``a_by_b``: run a's weights split by b's mask)."""
    stats = pair[side]
    layers = list(stats)
    fig = go.Figure()
    for part, color in (("kept", SLATE), ("pruned", PALE)):
        fig.add_trace(
            go.Bar(
                x=layers,
                y=[stats[n][part]["mean_move"] for n in layers],
                name=f"{part} by the other run",
                marker={"color": color},
                customdata=[stats[n][part]["count"] for n in layers],
                hovertemplate="%{x}<br>mean |w_f - w_i| %{y:.4g}<br>%{customdata} weights"
                "<extra></extra>",
            )
        )
    trained, masker = (pair["a"], pair["b"]) if side == "a_by_b" else (pair["b"], pair["a"])
    title = f"How far the weights of {trained} moved<br><sup>split by the mask of {masker}</sup>"
    apply(fig, theme, title=title)
    fig.update_layout(barmode="group")
    fig.update_yaxes(title_text="mean |w_final - w_init|")
    fig.update_xaxes(ticks="")
    return fig


def pair_names(masks: dict, runs: Sequence[dict]) -> dict[str, dict]:
    """ "a vs b" -> cached pair, for the pairs whose two runs are both shown."""
    shown = {r["label"] for r in runs}
    return {
        f"{p['a']} vs {p['b']}": p
        for p in cached_pairs(masks)
        if p["a"] in shown and p["b"] in shown
    }


def layer_names(masks: dict) -> list[str]:
    """The prunable layers named in the cached pairs, in their order."""
    return list(dict.fromkeys(n for p in cached_pairs(masks) for n in p["layers"]))


#: Columns of the compression table: (header, record field or None, format).
COMPRESSION_COLUMNS = (
    ("Run", "label", "{}"),
    ("Params dense", "params_dense", "{:,}"),
    ("Params effective", "params_effective", "{:,}"),
    ("Params compressed", "params_compressed", "{:,}"),
    ("MACs dense", "macs_dense", "{:,}"),
    ("MACs effective", "macs_effective", "{:,}"),
    ("MACs compressed", "macs_compressed", "{:,}"),
    ("KB dense", "bytes_dense", "{:,.0f}"),
    ("KB CSR", "bytes_csr", "{:,.0f}"),
    ("KB compressed", "bytes_compressed", "{:,.0f}"),
    ("ms masked", "latency_masked_s", "{:.3f}"),
    ("ms compressed", "latency_compressed_s", "{:.3f}"),
    ("Speed-up", "speedup", "{:.2f}x"),
    ("Same outputs", "outputs_equal", "{}"),
)


def cached_items(runs: Sequence[dict], items: Sequence[dict]) -> list[dict]:
    """The cached records of a per-run section (``compression``, ``quantization``) of the shown
    runs, in the runs' order."""
    by_key = {i["label"]: i for i in items or [] if i.get("status") == "cached"}
    return [by_key[r["label"]] for r in runs if r["label"] in by_key]


def compression_cell(record: dict, field: str, fmt: str) -> str:
    """One formatted cell (bytes as KB, seconds as ms)."""
    value = record[field]
    if field.startswith("bytes_"):
        value = value / 1024
    elif field.startswith("latency_"):
        value = 1000 * value
    return fmt.format(value)


def compression_table(runs: Sequence[dict], items: Sequence[dict], theme: Theme = NORMAL):
    """Parameters, MACs per sample, size on disk and latency: masked against compressed."""
    shown = cached_items(runs, items)
    cells = [[compression_cell(r, f, fmt) for r in shown] for _, f, fmt in COMPRESSION_COLUMNS]
    fig = go.Figure(
        go.Table(
            header={
                "values": [f"<b>{h}</b>" for h, _, _ in COMPRESSION_COLUMNS],
                "fill_color": "#E8E8E8",
                "align": "left",
                "font": {"size": max(theme.font_size - 2, 10)},
            },
            cells={
                "values": cells,
                "align": ["left"] + ["right"] * (len(cells) - 1),
                "font": {"size": max(theme.font_size - 2, 10)},
                "height": theme.font_size + 14,
            },
            columnwidth=[2.2] + [1] * (len(cells) - 1),
        )
    )
    device = shown[0].get("device") if shown else None
    title = (
        "Compression is not acceleration<br><sup>effective: nonzero weights only; compressed: "
        f"unread channels removed; latency per batch on {device or 'the run device'}</sup>"
    )
    height = 160 + (theme.font_size + 16) * (len(shown) + 2)
    apply(fig, theme, title=title, height=max(height, 300))
    return fig


def _alpha(color: str, alpha: float) -> str:
    """``#RRGGBB`` as an rgba() string of opacity ``alpha``."""
    r, g, b = (int(color[i : i + 2], 16) for i in (1, 3, 5))
    return f"rgba({r},{g},{b},{alpha})"


def bits_curves(runs: Sequence[dict], items: Sequence[dict], theme: Theme = NORMAL) -> go.Figure:
    """Test accuracy against weight bits per run: nearest rounding (solid), stochastic rounding
    (dashed, mean over draws with a ±1 std band); the float accuracy at the right."""
    fig = go.Figure()
    by_label = {r["label"]: r for r in runs}
    for item in cached_items(runs, items):
        run, curve = by_label[item["label"]], item["curve"]
        color = method_color(run["method"])
        x = [p["bits"] for p in curve]
        mean = np.array([100 * p["stochastic_accuracy_mean"] for p in curve])
        std = np.array([100 * p["stochastic_accuracy_std"] for p in curve])
        fig.add_trace(
            go.Scatter(
                x=x + x[::-1], y=list(mean + std) + list((mean - std)[::-1]), fill="toself",
                fillcolor=_alpha(color, 0.15), line={"width": 0}, hoverinfo="skip",
                legendgroup=item["label"], showlegend=False,
            )
        )  # fmt: skip
        for name, y, dash in (
            ("nearest", [100 * p["accuracy"] for p in curve], "solid"),
            ("stochastic", list(mean), "dash"),
        ):
            fig.add_trace(
                go.Scatter(
                    x=x, y=y, mode="lines+markers", name=f"{item['label']} ({name})",
                    legendgroup=item["label"],
                    line={"color": color, "width": theme.line_width, "dash": dash},
                    hovertemplate=f"<b>{item['label']}</b> {name}<br>%{{x}} bits: "
                    "%{y:.2f}%<extra></extra>",
                )
            )  # fmt: skip
    title = (
        "Accuracy against weight bits<br><sup>uniform, symmetric, per channel; solid: "
        "nearest rounding, dashed: stochastic (mean ± std over draws)</sup>"
    )
    apply(fig, theme, title=title)
    fig.update_xaxes(title_text="bits per weight", type="log", tickvals=[1, 2, 3, 4, 6, 8, 16, 32])
    fig.update_yaxes(title_text="test accuracy (%)")
    return fig


def catalogue(summary: dict, reader: object | None, theme: Theme = NORMAL) -> list:
    """The anatomy figures of the whole study (default choices), for the export.

    ``reader`` is unused (everything is in the summary); it keeps one signature
    for every analysis's catalogue.
    """
    from dashboard.figures.items import FigureItem

    runs = summary.get("runs", [])
    masks = summary.get("masks") or {}
    compression, quantization = summary.get("compression"), summary.get("quantization")
    items = []
    if cached_pairs(masks):
        items.append(FigureItem(
            "Anatomy", "anatomy-overlap", "Overlap of the kept weights",
            "Intersection over union of the weights two runs of one seed keep.",
            overlap_heatmap(runs, masks, theme),
        ))  # fmt: skip
    if controls_rows(runs, masks):
        items.append(FigureItem(
            "Anatomy", "anatomy-controls", "The winning ticket and its controls",
            "Test accuracy of the ticket, its random reinitialisation, a random mask of its "
            "per-layer sparsity, its signs at constant magnitude, and its untrained supermask.",
            controls_bars(runs, masks, theme),
        ))  # fmt: skip
    if cached_items(runs, compression or []):
        items.append(FigureItem(
            "Anatomy", "anatomy-compression", "Compression is not acceleration",
            "Parameters, multiply-accumulates, bytes on disk and latency of the masked "
            "network and of the physically smaller one.",
            compression_table(runs, compression, theme),
        ))  # fmt: skip
    if cached_items(runs, quantization or []):
        items.append(FigureItem(
            "Anatomy", "anatomy-bits", "Accuracy against weight bits",
            "Post-training quantization per channel: nearest and stochastic rounding.",
            bits_curves(runs, quantization, theme),
        ))  # fmt: skip
    return items
