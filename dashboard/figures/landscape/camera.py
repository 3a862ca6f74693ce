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

``camera_url.js`` mirrors the camera in the dashboard's URL (``?camera=x,y,z``,
the eye) when a drag ends; :func:`camera_from_url` reads it back.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path

import plotly.graph_objects as go

from analysis.errors import SpecError
from dashboard.figures.landscape.surfaces import CAMERA, scene_names
from dashboard.figures.theme import NORMAL

#: plotly.js's internal scene methods camera.js uses (with the public Plotly.relayout as fallback).
PLOTLY_INTERNALS = ("setViewport", "getCamera")
#: The camera-linking script; ``__SCENES__`` is filled in by :func:`camera_link_script`.
LINK_JS = (Path(__file__).parent / "camera.js").read_text(encoding="utf-8")
#: The script mirroring the camera in the parent page's URL; ``__PARAM__`` is the parameter.
URL_JS = (Path(__file__).parent / "camera_url.js").read_text(encoding="utf-8")
#: The URL parameter holding the 3-D camera's eye.
CAMERA_PARAM = "camera"
#: Largest |coordinate| of an eye read from a URL (plotly's default eye is about 1.25 away).
FARTHEST = 100.0


def camera_link_script(scenes: Sequence[str]) -> str:
    """JavaScript for ``fig.to_html(post_script=...)``: rotating one scene rotates the others.

    ``scenes``: plotly's scene names (``scene``, ``scene2``, ...). ``{plot_id}``
    in the script is the div's id, filled by plotly.
    """
    return LINK_JS.replace("__SCENES__", json.dumps(list(scenes)))


def camera_text(camera: dict) -> str:
    """A camera's eye as the URL writes it: ``x,y,z`` rounded to 0.01 (as ``camera_url.js``)."""
    return ",".join(f"{round(float(camera['eye'][a]), 2):g}" for a in "xyz")


def camera_from_url(text: str | None) -> dict | None:
    """The 3-D camera a URL states (``?camera=x,y,z``, the eye), or None when it states none.

    The eye looks at the centre with z up, as :data:`CAMERA`; only the eye is in the URL.

    Raises:
        SpecError: not three finite numbers of at most :data:`FARTHEST` in size, or all zero.
    """
    if not text:
        return None
    allowed = f"three numbers x,y,z (the eye, each within ±{FARTHEST:g}, not all 0)"
    try:
        eye = [float(v) for v in text.split(",")]
    except ValueError:
        raise SpecError(CAMERA_PARAM, allowed, text, owner="URL") from None
    if (
        len(eye) != 3
        or not all(math.isfinite(v) and abs(v) <= FARTHEST for v in eye)
        or not any(eye)
    ):
        raise SpecError(CAMERA_PARAM, allowed, text, owner="URL")
    return {**CAMERA, "eye": dict(zip("xyz", eye, strict=True))}


def url_camera_script(param: str = CAMERA_PARAM) -> str:
    """JavaScript for ``post_script``: a drag's end writes the camera to the parent's URL."""
    return URL_JS.replace("__PARAM__", param)


def linked_html(
    fig: go.Figure,
    *,
    config: dict | None = None,
    plotly_src: str | None = None,
    camera_in_url: bool = False,
) -> str:
    """A whole HTML page of ``fig`` with linked cameras.

    ``plotly_src``: the URL of a served plotly.js (``<script src>``: the browser
    caches it); None inlines plotly.js (4.6 MB; works anywhere, offline too).
    ``camera_in_url``: a drag's end writes the camera to the embedding page's URL.
    """
    scenes = [name for name in scene_names(8) if name in fig.layout]
    post = [camera_link_script(scenes)] + ([url_camera_script()] if camera_in_url else [])
    return fig.to_html(
        include_plotlyjs=plotly_src or True,
        full_html=True,
        post_script=post,
        config={"displaylogo": False, "responsive": True, **(config or {})},
        default_width="100%",
        default_height=f"{fig.layout.height or NORMAL.height}px",
    )
