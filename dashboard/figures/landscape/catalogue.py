"""The landscape figures of a whole study, for the export (default choices, <= 4 side by side)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from dashboard.figures.items import FigureItem
from dashboard.figures.landscape.camera import camera_link_script
from dashboard.figures.landscape.contours import contours, slice_lines, slices
from dashboard.figures.landscape.records import (
    MOST,
    PLANES,
    Load,
    data_note,
    panels_note,
    plane_panels,
    plane_records,
    run_panels,
    surface_item,
    surface_runs,
)
from dashboard.figures.landscape.sharpness import sharpness, sharpness_runs
from dashboard.figures.landscape.spectrum import (
    convexity_map,
    layer_sharpness,
    spectral_density,
    spectrum_runs,
)
from dashboard.figures.landscape.surfaces import scene_names, surfaces_3d
from dashboard.figures.theme import NORMAL, Theme

if TYPE_CHECKING:  # the reader pulls in the analysis library; figures stay light
    from dashboard.results import Reader

#: What each plane shows, for its caption.
PLANE_TEXT = {
    "trajectory": "The loss in the plane that best fits the training path (PCA of the "
    "snapshots, as Li et al. 2018); the line is the path, the star the final network.",
    "models": "The loss in the plane through a network (A), its twin from another seed (B) "
    "and the twin aligned by weight matching (C): aligned twins share a basin.",
}


def _chunks(items: Sequence, size: int = MOST) -> list[list]:
    """``items`` in consecutive groups of at most ``size``."""
    return [list(items[i : i + size]) for i in range(0, len(items), size)]


def _said(note: str) -> str:
    """A caption's last sentence naming the loss and BatchNorm statistics ("" if unknown)."""
    return f" Shown: the {note}." if note else ""


def _surface_items(land: dict, load: Load, theme: Theme) -> list[FigureItem]:
    """The 3-D surfaces and their contours, in groups of at most four runs."""
    labels = [r["label"] for r in surface_runs(land, None, dims=2)]
    items = []
    for i, group in enumerate(_chunks(labels), 1):
        panels = [p for _, p in run_panels(land, group, load)]
        if not panels:
            continue
        suffix = f"-{i}" if len(labels) > MOST else ""
        said = _said(panels_note(panels))
        items += [
            FigureItem(
                "Landscape", f"landscape-surfaces-3d{suffix}", "Loss surfaces around each network",
                "Loss around each trained network along the same two random directions, on "
                "one height and colour scale: a wider, flatter bowl is a flatter minimum." + said,
                surfaces_3d(panels, "loss", theme),
                post_script=camera_link_script(scene_names(len(panels))),
            ),
            FigureItem(
                "Landscape", f"landscape-contours{suffix}", "Loss contours around each network",
                "The same surfaces seen from above on one colour scale; the star is the "
                "trained network." + said,
                contours(panels, "loss", theme, title="Loss contours around each trained network"),
            ),
        ]  # fmt: skip
    return items


def _plane_items(land: dict, load: Load, theme: Theme) -> list[FigureItem]:
    """The trajectory and models planes, in groups of at most four."""
    methods = {r["label"]: r["method"] for r in land.get("runs", [])}
    items = []
    for plane, text in PLANE_TEXT.items():
        records = plane_records(land, None, plane)
        for i, group in enumerate(_chunks(records), 1):
            panels = plane_panels(group, load, methods)
            if not panels:
                continue
            suffix = f"-{i}" if len(records) > MOST else ""
            items.append(
                FigureItem(
                    "Landscape", f"landscape-plane-{plane}{suffix}", PLANES[plane],
                    text + _said(panels_note(panels)),
                    contours(panels, "loss", theme, title=f"{PLANES[plane]}: loss"),
                )
            )  # fmt: skip
    return items


def _spectrum_items(spectra: dict, theme: Theme) -> list[FigureItem]:
    """The Hessian density, per-layer sharpness and convexity maps (those computed)."""
    said = [
        ("density", "landscape-hessian-density", "Hessian eigenvalue density", spectral_density,
         "The Hessian's eigenvalue density of each network's loss (stochastic Lanczos "
         "quadrature, smoothed as PyHessian), on a log axis: the bulk near zero and the "
         "outliers that set the sharpness."),
        ("layers", "landscape-layer-sharpness", "Sharpness per layer", layer_sharpness,
         "The top eigenvalue and the trace of each layer's own Hessian block: which layers "
         "the sharpness lives in."),
        ("convexity", "landscape-convexity", "Convexity map", convexity_map,
         "Li et al. 2018's |λmin/λmax| over the 2-D surface's plane (scipy eigsh): near 0 "
         "the loss is locally convex, larger values mean negative curvature."),
    ]  # fmt: skip
    return [
        FigureItem("Landscape", name, title, text, draw(spectra, None, theme))
        for part, name, title, draw, text in said
        if spectrum_runs(spectra, None, part)
    ]


def catalogue(summary: dict, reader: Reader | None, theme: Theme = NORMAL) -> list[FigureItem]:
    """The landscape figures of the whole study (default choices, every run, <= 4 side by side).

    ``reader`` is a :class:`dashboard.results.Reader` (its ``surface(key)`` gives the arrays).
    """
    land = summary.get("landscape") or {}
    load: Load = reader.surface if reader is not None else (lambda key: None)
    items = _surface_items(land, load, theme) + _plane_items(land, load, theme)
    lines = slice_lines(land, None, load)
    if lines:
        note = next((data_note(surface_item(r, 1)) for r, _ in lines), "")
        items.append(
            FigureItem(
                "Landscape", "landscape-slices", "1-D loss slices",
                "Loss along one random direction through each trained network: steeper walls "
                "mean a sharper minimum." + _said(note),
                slices(lines, "loss", theme),
            )
        )  # fmt: skip
    if sharpness_runs(land, None):
        items.append(
            FigureItem(
                "Landscape", "landscape-sharpness", "Sharpness",
                "Largest Hessian eigenvalues and the Hessian trace of each network's loss: "
                "larger values mean a sharper minimum. Beside each trace: its relative "
                "standard error and the probes used.",
                sharpness(land, None, theme),
            )
        )  # fmt: skip
    return items + _spectrum_items(summary.get("spectrum") or {}, theme)
