"""Figures of loss landscapes: 3-D surfaces side by side, contours and planes, slices, sharpness.

One concern per module: :mod:`.records` (what is computed: panels from the
summary's ``landscape`` section and the grid arrays, and :func:`data_note`, the
words every figure carries about which loss and which BatchNorm statistics it
shows), :mod:`.surfaces` (linked 3-D surfaces), :mod:`.camera` (the
camera-linking JavaScript, ``camera.js``), :mod:`.contours` (contour maps,
planes, 1-D slices), :mod:`.sharpness` (eigenvalue and trace bars), :mod:`.spectrum` (Hessian
eigenvalue density, per-layer sharpness, convexity maps) and
:mod:`.catalogue` (the export's list). Surfaces drawn side by side share one z
range and one colour axis. No streamlit here.
"""

from dashboard.figures.landscape.camera import (
    CAMERA_PARAM,
    LINK_JS,
    PLOTLY_INTERNALS,
    URL_JS,
    camera_from_url,
    camera_link_script,
    camera_text,
    linked_html,
    url_camera_script,
)
from dashboard.figures.landscape.catalogue import catalogue
from dashboard.figures.landscape.contours import contours, slice_lines, slices
from dashboard.figures.landscape.records import (
    METRICS,
    MOST,
    PLANES,
    Panel,
    data_note,
    group_records,
    panels_note,
    plane_panels,
    plane_records,
    run_panels,
    shared_range,
    surface_item,
    surface_runs,
    z_of,
)
from dashboard.figures.landscape.sharpness import RANK_PATTERNS, sharpness, sharpness_runs
from dashboard.figures.landscape.spectrum import (
    convexity_map,
    layer_sharpness,
    spectral_density,
    spectrum_runs,
)
from dashboard.figures.landscape.surfaces import CAMERA, COLORSCALE, scene_names, surfaces_3d

__all__ = [
    "CAMERA",
    "CAMERA_PARAM",
    "COLORSCALE",
    "LINK_JS",
    "METRICS",
    "MOST",
    "PLANES",
    "PLOTLY_INTERNALS",
    "RANK_PATTERNS",
    "URL_JS",
    "Panel",
    "camera_from_url",
    "camera_link_script",
    "camera_text",
    "catalogue",
    "contours",
    "convexity_map",
    "layer_sharpness",
    "spectral_density",
    "spectrum_runs",
    "data_note",
    "group_records",
    "linked_html",
    "panels_note",
    "plane_panels",
    "plane_records",
    "run_panels",
    "scene_names",
    "shared_range",
    "sharpness",
    "sharpness_runs",
    "slice_lines",
    "slices",
    "surface_item",
    "surface_runs",
    "surfaces_3d",
    "url_camera_script",
    "z_of",
]
