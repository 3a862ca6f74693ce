"""Loss landscape: linked 3-D surfaces or contours of 2-4 runs, planes, 1-D slices, sharpness,
Hessian spectra (density, per-layer sharpness, convexity maps)."""

import streamlit as st

from dashboard import data, memo, ui
from dashboard.figures import landscape as fl

view = ui.view()
st.title("Loss landscape")
ui.require_study(view)
land = view.summary["landscape"]
theme = view.theme


def load(key: str) -> dict | None:
    """The arrays of one surface or plane entry (cached by the dashboard)."""
    return data.surface(view.loaded, key)


failed = ui.part_failures(view, "landscape") + ui.part_failures(view, "spectrum")
spectra = view.summary.get("spectrum") or {}
shown = {p: fl.spectrum_runs(spectra, view.runs, p) for p in ("density", "layers", "convexity")}
planes = {k: v for k, v in fl.PLANES.items() if fl.plane_records(land, view.runs, k)}
runs2d = [r["label"] for r in fl.surface_runs(land, view.runs, dims=2)]
lines = fl.slice_lines(land, view.runs, load)
sharp = fl.sharpness_runs(land, view.runs)
if not (runs2d or planes or lines or sharp or any(shown.values())):
    ui.missing_part("landscape analysis", "The loss landscape of the shown runs", failed=failed)

left, right = st.columns(2)
with left:
    metric = ui.choice("Height", fl.METRICS, name="z", default="loss")
with right:
    shape = ui.choice("Surfaces as", {"3d": "3-D (cameras linked)", "contour": "Contours"},
                      name="view", default="3d")  # fmt: skip
picked = ui.pick("Runs (2-4, side by side)", runs2d, name="runs", default=runs2d[: fl.MOST],
                 most=fl.MOST) if runs2d else []  # fmt: skip
panels = [p for _, p in fl.run_panels(land, picked, load)]
if panels and shape == "3d":
    try:  # the view a copied link names (?camera=x,y,z, written when a drag ends)
        camera = fl.camera_from_url(st.query_params.get(fl.CAMERA_PARAM))
    except ValueError as err:
        camera = None
        st.warning(f"{err}; the default view is shown.", icon=":material/warning:")
    fig = memo.figure(fl.surfaces_3d, panels, metric, theme, camera=camera)
    png = {"toImageButtonOptions": {"format": "png", "scale": 3 if view.presentation else 2}}
    html = memo.figure(
        fl.linked_html, fig, config=png, plotly_src=data.plotly_js_src(), camera_in_url=True
    )
    st.iframe(html, height=int(fig.layout.height) + 20, alt="3-D loss surfaces")
    st.caption(
        "Drag one surface: the others turn with it, and the address bar keeps the view for a "
        "copied link (the toolbar's home button resets)."
    )
elif panels:
    title = f"{fl.METRICS[metric]} around each trained network"
    ui.plot(memo.figure(fl.contours, panels, metric, theme, title=title), view, key="contours")
elif runs2d:
    st.info("Pick at least one run.")

if planes:
    st.subheader("Planes through networks")
    plane = ui.choice("Plane", planes, name="plane", default=next(iter(planes)))
    chosen = [r for r in view.runs if r["label"] in picked] or view.runs
    records = fl.plane_records(land, chosen, plane)[: fl.MOST]
    methods = {r["label"]: r["method"] for r in view.runs}
    fig = memo.figure(fl.contours, fl.plane_panels(records, load, methods), metric, theme,
                      title=f"{fl.PLANES[plane]}: {fl.METRICS[metric].lower()}")  # fmt: skip
    ui.plot(fig, view, key="planes")

means = ui.grouped(view) if lines or sharp else False
left, right = st.columns(2) if not view.presentation else (st.container(), st.container())
with left:
    if lines:
        fig = memo.figure(fl.slices, lines, metric, theme, by_method=view.runs if means else None)
        ui.plot(fig, view, key="slices")
with right:
    if sharp:
        ui.plot(
            memo.figure(fl.sharpness, land, view.runs, theme, by_method=means),
            view,
            key="sharpness",
        )

if any(shown.values()):
    st.subheader("Hessian spectra")
    if shown["density"]:
        ui.plot(memo.figure(fl.spectral_density, spectra, view.runs, theme), view, key="density")
    left, right = st.columns(2) if not view.presentation else (st.container(), st.container())
    with left:
        if shown["layers"]:
            ui.plot(memo.figure(fl.layer_sharpness, spectra, view.runs, theme), view, key="layers")
    with right:
        if shown["convexity"]:
            ui.plot(memo.figure(fl.convexity_map, spectra, view.runs, theme), view, key="convexity")
