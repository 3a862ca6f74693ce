"""Figures of how methods choose structure: DessiLBI's support path, per-layer sensitivity curves.

``path_figure`` takes one record of the summary's ``dessilbi`` section (see
``analysis.sparsity.dessilbi.summarize_paths``: per lifted layer the fraction
of its units in the support of Gamma at every epoch); ``sensitivity_figure`` one
record of the ``sensitivity`` section (``analysis.sensitivity``: per layer, test
accuracy against the fraction of units removed, by smallest, random and
largest L1 norm). No streamlit here.
"""

from __future__ import annotations

from collections.abc import Sequence

import plotly.graph_objects as go
from plotly.colors import sample_colorscale
from plotly.subplots import make_subplots

from dashboard.figures.theme import NORMAL, SLATE, Theme, apply

#: Layers are coloured by depth on a sequential scale (Cividis: colour-blind safe, readable
#: in greyscale), never from the method palette: colour means method elsewhere.
LAYER_SCALE = "Cividis"
#: Layers per full sweep of the scale (deeper networks wrap round).
LAYER_STEPS = 8

CRITERION_TITLES = {
    "smallest": "Smallest L1 removed",
    "random": "Random removed",
    "largest": "Largest L1 removed",
}


def layer_color(index: int) -> str:
    """The colour of the ``index``-th layer."""
    return sample_colorscale(LAYER_SCALE, [(index % LAYER_STEPS) / (LAYER_STEPS - 1) * 0.9])[0]


def layer_name(weight: str) -> str:
    """A layer's short name: its weight's key without ``.weight``."""
    return weight.removesuffix(".weight")


def path_figure(item: dict, theme: Theme = NORMAL) -> go.Figure:
    """Support of Gamma per layer (% of its filters/neurons) against epoch, the stop marked."""
    path = item.get("path") or {}
    epochs = path.get("epochs", [])
    fig = go.Figure()
    for i, (weight, layer) in enumerate((path.get("layers") or {}).items()):
        fig.add_trace(
            go.Scatter(
                x=epochs,
                y=[100 * f for f in layer["support"]],
                mode="lines+markers",
                name=f"{layer_name(weight)} ({layer['units']})",
                line={"color": layer_color(i), "width": theme.line_width},
                marker={"size": theme.marker_size * 0.6},
                hovertemplate=f"<b>{layer_name(weight)}</b><br>epoch %{{x}}"
                "<br>%{y:.1f}% of units in the support<extra></extra>",
            )
        )
    stop = item.get("stop_epoch")
    if stop is not None:
        fig.add_vline(x=stop, line={"dash": "dash", "color": SLATE})
        fig.add_annotation(
            x=stop, y=1.0, yref="paper", text=f"stop: epoch {stop}", showarrow=False,
            xanchor="left", yanchor="bottom", font={"size": theme.font_size - 1},
        )  # fmt: skip
    title = (
        f"DessiLBI path of {item.get('label', '')}"
        "<br><sup>share of each layer's filters/neurons whose group of Γ is nonzero</sup>"
    )
    apply(fig, theme, title=title)
    fig.update_xaxes(title_text="Epoch")
    fig.update_yaxes(title_text="Units in the support (%)", range=[-2, 102])
    return fig


def sensitivity_figure(
    item: dict, theme: Theme = NORMAL, criteria: Sequence[str] | None = None
) -> go.Figure:
    """Test accuracy against % of a layer's units removed: a panel per criterion, a line per layer.

    Random removals show the mean over draws, with ±1 std in the hover.
    """
    criteria = list(criteria or item.get("criteria") or CRITERION_TITLES)
    levels = [100 * x for x in item.get("levels", [])]
    fig = make_subplots(
        rows=1, cols=len(criteria), shared_yaxes=True, horizontal_spacing=0.03,
        subplot_titles=[CRITERION_TITLES.get(c, c) for c in criteria],
    )  # fmt: skip
    for col, criterion in enumerate(criteria, start=1):
        for i, layer in enumerate(item.get("layers", [])):
            if criterion not in layer:
                continue
            spread = layer.get("random_std") if criterion == "random" else None
            fig.add_trace(
                go.Scatter(
                    x=levels,
                    y=[100 * a for a in layer[criterion]],
                    mode="lines+markers",
                    name=f"{layer_name(layer['name'])} ({layer['units']})",
                    legendgroup=layer["name"],
                    showlegend=col == 1,
                    line={"color": layer_color(i), "width": theme.line_width},
                    marker={"size": theme.marker_size * 0.6},
                    customdata=[100 * s for s in spread] if spread else None,
                    hovertemplate=f"<b>{layer_name(layer['name'])}</b><br>%{{x:.0f}}% removed"
                    "<br>accuracy %{y:.1f}%"
                    + (" ± %{customdata:.1f}" if spread else "")
                    + "<extra></extra>",
                ),
                row=1,
                col=col,
            )
        fig.update_xaxes(title_text="Units removed (%)", row=1, col=col)
    fig.update_yaxes(title_text="Test accuracy (%)", row=1, col=1)
    tuned = "after one epoch of fine-tuning" if item.get("finetune") else "no retraining"
    title = (
        f"Per-layer sensitivity of {item.get('label', '')}"
        f"<br><sup>each layer pruned alone ({tuned}); Li et al. 2017, Fig. 2</sup>"
    )
    return apply(fig, theme, title=title)
