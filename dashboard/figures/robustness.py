"""Figures of robustness: accuracy under corruption, (relative) mCE, weight-noise curves.

Every function takes the run records of the summary (``runs``, for method and
label) and the summary's ``robustness`` items (per run: ``corruption`` rows,
``mce``, ``relative_mce``, ``ce``, ``noise`` mean/std per sigma; see
``analysis.robustness.summarize_robustness``). No streamlit here.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from dashboard.figures.representations import image_grid
from dashboard.figures.theme import NORMAL, SEED_DASHES, Theme, apply, method_color, method_symbol

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


def _line(run: dict, theme: Theme) -> dict:
    """Line style of a run: method colour, dash by seed."""
    return {
        "color": method_color(run["method"]),
        "width": theme.line_width,
        "dash": SEED_DASHES[int(run.get("seed", 0)) % len(SEED_DASHES)],
    }


def corruption_curves(
    runs: Sequence[dict], items: Sequence[dict], theme: Theme = NORMAL, cols: int = 5
) -> go.Figure:
    """Accuracy against severity, one small panel per corruption, one line per run (0 = clean)."""
    shown = pairs(runs, items)
    names = corruptions_of([i for _, i in shown])
    cols = max(1, min(cols, len(names) or 1))
    rows = max(1, math.ceil(len(names) / cols))
    fig = make_subplots(
        rows=rows, cols=cols, subplot_titles=[n.replace("_", " ") for n in names] or None,
        shared_xaxes=True, shared_yaxes=True, horizontal_spacing=0.02,
        vertical_spacing=min(0.12, 0.5 / rows),
    )  # fmt: skip
    for run, item in shown:
        clean = next(r["accuracy"] for r in item["corruption"] if r["corruption"] == "clean")
        for k, name in enumerate(names):
            rows_c = sorted(
                (r for r in item["corruption"] if r["corruption"] == name),
                key=lambda r: r["severity"],
            )
            fig.add_trace(
                go.Scatter(
                    x=[0] + [r["severity"] for r in rows_c],
                    y=[100 * clean] + [100 * r["accuracy"] for r in rows_c],
                    mode="lines+markers",
                    line=_line(run, theme),
                    marker={
                        "symbol": method_symbol(run["method"]),
                        "size": theme.marker_size * 0.6,
                    },
                    name=run["label"],
                    legendgroup=run["label"],
                    showlegend=k == 0,
                    hovertemplate=f"<b>{run['label']}</b><br>{name} severity %{{x}}"
                    "<br>accuracy %{y:.1f}%<extra></extra>",
                ),
                row=k // cols + 1,
                col=k % cols + 1,
            )
    apply(
        fig,
        theme,
        title="Accuracy under corruption (severity 0 = clean)",
        height=120 + rows * int(theme.height * 0.45),
    )
    fig.update_xaxes(dtick=1, range=[-0.3, 5.3])
    fig.update_yaxes(range=[0, 102])
    for r in range(1, rows + 1):
        fig.update_yaxes(title_text="Acc. (%)", row=r, col=1)
    fig.update_annotations(font={"size": theme.font_size})
    fig.update_layout(legend={"y": -0.5 / rows})
    return fig


def corruption_heatmap(
    runs: Sequence[dict], items: Sequence[dict], metric: str = "accuracy", theme: Theme = NORMAL
) -> go.Figure:
    """Runs x corruptions: mean accuracy over severities, or corruption error vs dense (%)."""
    shown = pairs(runs, items)
    names = corruptions_of([i for _, i in shown])
    z = []
    for _, item in shown:
        if metric == "ce":
            ce = item.get("ce") or {}
            z.append([100 * ce[n] if n in ce else None for n in names])
        else:
            z.append(
                [
                    100
                    * float(
                        np.mean([r["accuracy"] for r in item["corruption"] if r["corruption"] == n])
                    )
                    for n in names
                ]
            )
    ce = metric == "ce"
    fig = go.Figure(
        go.Heatmap(
            z=z,
            x=[n.replace("_", " ") for n in names],
            y=[run["label"] for run, _ in shown],
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
    apply(fig, theme, title=CE_METRICS[metric], height=height)
    fig.update_xaxes(showgrid=False, ticks="", tickangle=-35)
    fig.update_yaxes(showgrid=False, ticks="", autorange="reversed")
    return fig


def mce_bars(runs: Sequence[dict], items: Sequence[dict], theme: Theme = NORMAL) -> go.Figure:
    """mCE and relative mCE per run (%, dense of the same seed = 100), grouped bars."""
    shown = [(r, i) for r, i in pairs(runs, items) if i.get("mce") is not None]
    labels = [r["label"] for r, _ in shown]
    colors = [method_color(r["method"]) for r, _ in shown]
    fig = go.Figure()
    for name, key, pattern in (("mCE", "mce", ""), ("relative mCE", "relative_mce", "/")):
        fig.add_trace(
            go.Bar(
                x=labels,
                y=[100 * i[key] for _, i in shown],
                name=name,
                marker={"color": colors, "pattern": {"shape": pattern, "fgcolor": "white"}},
                texttemplate="%{y:.0f}",
                textposition="outside",
                hovertemplate=f"<b>%{{x}}</b><br>{name} %{{y:.1f}}%<extra></extra>",
            )
        )
    fig.add_hline(y=100, line={"color": "#444444", "dash": "dash", "width": 1})
    title = "mCE and relative mCE<br><sup>dense of the same seed = 100; solid: mCE, hatched: relative</sup>"
    apply(fig, theme, title=title)
    fig.update_layout(barmode="group", showlegend=False)
    fig.update_yaxes(title_text="% of the dense run's error")
    fig.update_xaxes(ticks="")
    return fig


def noise_curves(runs: Sequence[dict], items: Sequence[dict], theme: Theme = NORMAL) -> go.Figure:
    """Accuracy under multiplicative weight noise: mean line and a shaded ±1 std band per run."""
    fig = go.Figure()
    for run, item in pairs(runs, items):
        noise = sorted(item.get("noise") or [], key=lambda n: n["sigma"])
        if not noise:
            continue
        x = [n["sigma"] for n in noise]
        mean = np.array([100 * n["accuracy_mean"] for n in noise])
        std = np.array([100 * n["accuracy_std"] for n in noise])
        color = method_color(run["method"])
        fig.add_trace(
            go.Scatter(
                x=x + x[::-1],
                y=list(mean + std) + list((mean - std)[::-1]),
                mode="lines",
                fill="toself",
                fillcolor=_alpha(color, 0.15),
                line={"width": 0},
                hoverinfo="skip",
                legendgroup=run["label"],
                showlegend=False,
                name=f"{run['label']} ±1 std",
            )
        )
        fig.add_trace(
            go.Scatter(
                x=x,
                y=mean,
                mode="lines+markers",
                line=_line(run, theme),
                marker={"symbol": method_symbol(run["method"]), "size": theme.marker_size * 0.7},
                customdata=std,
                name=run["label"],
                legendgroup=run["label"],
                hovertemplate=f"<b>{run['label']}</b><br>sigma %{{x}}"
                "<br>accuracy %{y:.1f}% ± %{customdata:.1f}<extra></extra>",
            )
        )
    title = "Accuracy under weight noise<br><sup>w + w·σ·ε; band: ±1 std over draws</sup>"
    apply(fig, theme, title=title)
    fig.update_xaxes(title_text="Relative noise σ")
    fig.update_yaxes(title_text="Test accuracy (%)")
    return fig


def _alpha(color: str, alpha: float) -> str:
    """'#RRGGBB' as 'rgba(r,g,b,alpha)'."""
    r, g, b = (int(color[i : i + 2], 16) for i in (1, 3, 5))
    return f"rgba({r},{g},{b},{alpha})"


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
