"""Linked cameras for 3-D scenes side by side: the JavaScript (``camera.js``) and an HTML page.

Plotly has no built-in camera linking. ``camera.js`` (read once, at import)
does it: while one scene is dragged (``plotly_relayouting``) the others' views
follow through plotly.js's internal ``_scene.setViewport`` / ``getCamera``
(looked up in one function there, ``live``; :data:`PLOTLY_INTERNALS` names
them, and ``tests/test_landscape_private.py`` fails when the locked plotly.js
no longer has them); where they are missing, the scenes follow when the drag
ends, through the public ``Plotly.relayout``, which also runs in every case
then. No loops: the event our own update raises carries the camera we just
sent and is ignored; an event arriving during an update is applied after it.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import plotly.graph_objects as go

from dashboard.figures.landscape.surfaces import scene_names
from dashboard.figures.theme import NORMAL

#: plotly.js's internal scene methods camera.js uses (with the public Plotly.relayout as fallback).
PLOTLY_INTERNALS = ("setViewport", "getCamera")
#: The camera-linking script; ``__SCENES__`` is filled in by :func:`camera_link_script`.
LINK_JS = (Path(__file__).parent / "camera.js").read_text(encoding="utf-8")


def camera_link_script(scenes: Sequence[str]) -> str:
    """JavaScript for ``fig.to_html(post_script=...)``: rotating one scene rotates the others.

    ``scenes``: plotly's scene names (``scene``, ``scene2``, ...). ``{plot_id}``
    in the script is the div's id, filled by plotly.
    """
    return LINK_JS.replace("__SCENES__", json.dumps(list(scenes)))


def linked_html(fig: go.Figure, *, config: dict | None = None) -> str:
    """A whole HTML page of ``fig`` with plotly.js inlined (works offline) and linked cameras."""
    scenes = [name for name in scene_names(8) if name in fig.layout]
    return fig.to_html(
        include_plotlyjs=True,
        full_html=True,
        post_script=camera_link_script(scenes),
        config={"displaylogo": False, "responsive": True, **(config or {})},
        default_width="100%",
        default_height=f"{fig.layout.height or NORMAL.height}px",
    )
