"""One exportable figure: what the export writes (HTML section, PNG/SVG file, PPTX slide)."""

from __future__ import annotations

from dataclasses import dataclass

import plotly.graph_objects as go


@dataclass(frozen=True)
class FigureItem:
    """A figure with the words a meeting needs beside it.

    ``name`` is a file-safe slug, unique within a study's catalogue (it names the
    PNG/SVG files). ``post_script`` is optional JavaScript for the HTML export,
    run after the plot is drawn (Plotly's ``to_html(post_script=...)``; ``{plot_id}``
    is the div's id), e.g. to keep the cameras of 3-D scenes together.
    """

    section: str
    name: str
    title: str
    caption: str
    figure: go.Figure
    post_script: str | None = None


def resized(fig: go.Figure, height: int) -> go.Figure:
    """A copy of ``fig``, ``height`` pixels tall (the original, shared, is left as it was)."""
    copy = go.Figure(fig)
    copy.update_layout(height=height)
    return copy
