"""Pure figure builders: results in, plotly figures out (no streamlit; the export reuses them)."""

from dashboard.figures.runs import (
    accuracy_vs_sparsity,
    layer_sparsity_heatmap,
    runs_table,
    status_table,
)
from dashboard.figures.theme import NORMAL, PRESENTATION, Theme, theme_for

__all__ = [
    "NORMAL",
    "PRESENTATION",
    "Theme",
    "accuracy_vs_sparsity",
    "layer_sparsity_heatmap",
    "runs_table",
    "status_table",
    "theme_for",
]
