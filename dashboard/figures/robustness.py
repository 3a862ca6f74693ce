"""Figures of robustness: accuracy under corruption, (relative) mCE, weight-noise curves.

Every function takes the run records of the summary (``runs``, for method and
label) and the summary's ``robustness`` items (per run: ``corruption`` rows,
``mce``, ``relative_mce``, ``ce``, ``noise`` mean/std per sigma; see
``analysis.robustness.summarize_robustness``). No streamlit here.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from dashboard.figures import bands
from dashboard.figures.representations import image_grid
from dashboard.figures.theme import NORMAL, SEED_DASHES, Theme, apply

CE_METRICS = {
    "accuracy": "Mean accuracy over severities (%)",
    "ce": "Corruption error (% of dense)",
}


def pairs(runs: Sequence[dict], items: Sequence[dict]) -> list[tuple[dict, dict]]:
    """(run record, robustness item) of the shown runs whose robustness is computed."""
    by_key = {i["key"]: i for i in items if i.get("corruption")}
    return [(r, by_key[r["key"]]) for r in runs if r["key"] in by_key]


def corruptions_of(items: Sequence[dict]) -> list[str]:
    """The corruption names in the items, in table order (clean excluded)."""
    names = dict.fromkeys(r["corruption"] for i in items for r in i.get("corruption", []))
    return [n for n in names if n != "clean"]


@dataclass(frozen=True)
class Row:
    """What one line, bar or heatmap row shows: one run, or a method's runs over seeds."""

    name: str
    key: bands.GroupKey
    items: list[dict]  # the robustness items of its runs
    dash: str = "solid"


def rows(runs: Sequence[dict], items: Sequence[dict], grouped: bool = False) -> list[Row]:
    """One row per shown run, or (``grouped``) per method, sparsity and setting over seeds."""
    shown = pairs(runs, items)
    if not grouped:
        return [
            Row(r["label"], bands.key_of(r), [i], SEED_DASHES[int(r["seed"]) % len(SEED_DASHES)])
            for r, i in shown
        ]
    groups: dict[bands.GroupKey, list[dict]] = {}
    for run, item in shown:
        groups.setdefault(bands.key_of(run), []).append(item)
    keys = list(groups)
    return [Row(bands.group_name(k, keys), k, v) for k, v in groups.items()]


def _note(grouped: bool, shown: Sequence[Row]) -> str:
    """The subtitle of a grouped figure (how many seeds, what the band is); else empty."""
    if not grouped or not shown:
        return ""
    return "<br><sup>" + bands.subtitle({r.key: r.items for r in shown}) + "</sup>"


def _accuracy(item: dict, name: str) -> list[float]:
    """Accuracy (%) of ``item`` at severity 0 (clean) and each severity of corruption ``name``."""
    clean = next(r["accuracy"] for r in item["corruption"] if r["corruption"] == "clean")
    ordered = sorted(
        (r for r in item["corruption"] if r["corruption"] == name), key=lambda r: r["severity"]
    )
    return [100 * clean] + [100 * r["accuracy"] for r in ordered]


def corruption_curves(
    runs: Sequence[dict],
    items: Sequence[dict],
    theme: Theme = NORMAL,
    cols: int = 5,
    *,
    grouped: bool = False,
) -> go.Figure:
    """Accuracy against severity, one small panel per corruption, one line per run or (with
    ``grouped``) per method over seeds with its 95% band (severity 0 = clean)."""
    shown = rows(runs, items, grouped)
    names = corruptions_of([i for r in shown for i in r.items])
    cols = max(1, min(cols, theme.max_cols, len(names) or 1))
    n_rows = max(1, math.ceil(len(names) / cols))
    fig = make_subplots(
        rows=n_rows, cols=cols, subplot_titles=[n.replace("_", " ") for n in names] or None,
        shared_xaxes=True, shared_yaxes=True, horizontal_spacing=0.02,
        vertical_spacing=min(0.12, 0.5 / n_rows),
    )  # fmt: skip
    for row in shown:
        for k, name in enumerate(names):
            values = np.array([_accuracy(i, name) for i in row.items])
            bands.add_band(
                fig, range(values.shape[1]), values, key=row.key, name=row.name, theme=theme,
                dash=row.dash, showlegend=k == 0, cell=(k // cols + 1, k % cols + 1),
                keys=[r.key for r in shown],
            )  # fmt: skip
    apply(
        fig,
        theme,
        title="Accuracy under corruption (severity 0 = clean)" + _note(grouped, shown),
        height=120 + n_rows * int(theme.height * 0.45),
    )
    fig.update_xaxes(dtick=1, range=[-0.3, 5.3])
    fig.update_yaxes(range=[0, 102])
    for r in range(1, n_rows + 1):
        fig.update_yaxes(title_text="Acc. (%)", row=r, col=1)
    fig.update_annotations(font={"size": theme.font_size})
    fig.update_layout(legend={"y": -0.5 / n_rows})
    return fig


def corruption_heatmap(
    runs: Sequence[dict],
    items: Sequence[dict],
    metric: str = "accuracy",
    theme: Theme = NORMAL,
    *,
    grouped: bool = False,
) -> go.Figure:
    """Runs (or methods, mean over seeds) x corruptions: mean accuracy over severities, or
    corruption error vs dense (%)."""
    shown = rows(runs, items, grouped)
    names = corruptions_of([i for r in shown for i in r.items])

    def cell(item: dict, name: str) -> float:
        if metric == "ce":
            return 100 * (item.get("ce") or {}).get(name, np.nan)
        return 100 * float(np.mean([r["accuracy"] for r in item["corruption"]
                                    if r["corruption"] == name]))  # fmt: skip

    z = [[bands.interval([cell(i, n) for i in r.items])[0] for n in names] for r in shown]
    z = [[None if np.isnan(v) else float(v) for v in line] for line in z]
    ce = metric == "ce"
    fig = go.Figure(
        go.Heatmap(
            z=z,
            x=[n.replace("_", " ") for n in names],
            y=[r.name for r in shown],
            colorscale="RdBu_r" if ce else "Viridis",
            zmid=100 if ce else None,
            zmin=None if ce else 0,
            zmax=None if ce else 100,
            colorbar={"title": {"text": "CE (%)" if ce else "Acc. (%)", "side": "right"}},
            texttemplate="%{z:.0f}",
            textfont={"size": max(theme.font_size - 3, 9)},
            hovertemplate="<b>%{y}</b><br>%{x}<br>"
            + ("CE" if ce else "accuracy")
            + " %{z:.1f}%<extra></extra>",
            xgap=1,
            ygap=1,
        )
    )
    height = max(
        int(theme.height * 0.7), theme.row_height * len(shown) + 4 * theme.title_size + 140
    )
    note = _note(grouped, shown).split(",")[0] + "</sup>" if grouped and shown else ""  # no band
    apply(fig, theme, title=CE_METRICS[metric] + note, height=height)
    fig.update_xaxes(showgrid=False, ticks="", tickangle=-35)
    fig.update_yaxes(showgrid=False, ticks="", autorange="reversed")
    return fig


def mce_bars(
    runs: Sequence[dict], items: Sequence[dict], theme: Theme = NORMAL, *, grouped: bool = False
) -> go.Figure:
    """mCE and relative mCE per run, or per method with a 95% interval over seeds (%, dense of
    the same seed = 100), grouped bars (Hendrycks & Dietterich 2019)."""
    shown = [
        r for r in rows(runs, items, grouped) if any(i.get("mce") is not None for i in r.items)
    ]
    labels = [r.name for r in shown]
    colors = [bands.group_color(r.key, [s.key for s in shown]) for r in shown]
    fig = go.Figure()
    for name, key, pattern in (("mCE", "mce", ""), ("relative mCE", "relative_mce", "/")):
        spread = [
            bands.interval([100 * i[key] for i in r.items if i.get(key) is not None]) for r in shown
        ]
        mean, low, high = (np.array([s[k] for s in spread], dtype=float) for k in range(3))
        fig.add_trace(
            go.Bar(
                x=labels, y=mean, name=name,
                marker={"color": colors, "pattern": {"shape": pattern, "fgcolor": "white"}},
                error_y={"type": "data", "symmetric": False, "array": high - mean,
                         "arrayminus": mean - low, "visible": grouped, "color": "#444444"},
                texttemplate="%{y:.0f}", textposition="outside",
                hovertemplate=f"<b>%{{x}}</b><br>{name} %{{y:.1f}}%<extra></extra>",
            )
        )  # fmt: skip
    fig.add_hline(y=100, line={"color": "#444444", "dash": "dash", "width": 1})
    note = ", bars: 95% interval over seeds" if grouped else ""
    title = (
        "mCE and relative mCE<br><sup>dense of the same seed = 100; solid: mCE, "
        f"hatched: relative{note}</sup>"
    )
    apply(fig, theme, title=title)
    fig.update_layout(barmode="group", showlegend=False)
    fig.update_yaxes(title_text="% of the dense run's error")
    fig.update_xaxes(ticks="")
    return fig


def noise_curves(
    runs: Sequence[dict], items: Sequence[dict], theme: Theme = NORMAL, *, grouped: bool = False
) -> go.Figure:
    """Accuracy under multiplicative weight noise (w + w·σ·ε): per run the mean over draws with
    a ±1 std band over draws; ``grouped``, per method the mean over seeds with its 95% band."""
    fig = go.Figure()
    shown = rows(runs, items, grouped)
    for row in shown:
        curves = [sorted(i.get("noise") or [], key=lambda n: n["sigma"]) for i in row.items]
        curves = [c for c in curves if c]
        if not curves:
            continue
        x = [n["sigma"] for n in curves[0]]
        values = bands.stack(curves, lambda c: [100 * n["accuracy_mean"] for n in c], len(x))
        spread = None
        if len(values) == 1:  # one run: its spread over noise draws
            std = np.array([100 * n["accuracy_std"] for n in curves[0]])
            spread = (values[0] - std, values[0] + std)
        bands.add_band(
            fig, x, values, key=row.key, name=row.name, theme=theme, dash=row.dash, spread=spread,
            keys=[r.key for r in shown],
        )  # fmt: skip
    band = "95% interval over seeds" if grouped else "±1 std over draws"
    apply(fig, theme, title=f"Accuracy under weight noise<br><sup>w + w·σ·ε; band: {band}</sup>")
    fig.update_xaxes(title_text="Relative noise σ")
    fig.update_yaxes(title_text="Test accuracy (%)")
    return fig


def corruption_examples(
    images: np.ndarray,
    clean: np.ndarray,
    names: Sequence[str],
    severities: Sequence[int],
    theme: Theme = NORMAL,
    *,
    label: str = "",
) -> go.Figure:
    """One sample under every corruption x severity: a row per corruption, clean first.

    images: (K, S, C, H, W) uint8 of one sample; clean: (C, H, W) uint8.
    """
    tiles, captions = [], []
    for k, name in enumerate(names):
        tiles.append(clean)
        captions.append(f"{name.replace('_', ' ')} · clean")
        for s, severity in enumerate(severities):
            tiles.append(images[k, s])
            captions.append(f"sev. {severity}")
    title = f"One test sample{(' (' + label + ')') if label else ''} under each corruption"
    return image_grid(tiles, captions, theme, title=title, cols=len(severities) + 1, tile=80)
