"""Export: what the sidebar shows as an HTML report, PNG/SVG images and a PPTX deck."""

import streamlit as st

from dashboard import data, exports, ui
from dashboard.figures.connectivity import BARRIERS

view = ui.view()
st.title("Export")
ui.require_study(view)
if not view.summary["counts"]["cached"]:
    st.info("Nothing is computed yet for this study.", icon=":material/hourglass_empty:")
    st.page_link("app_pages/compute.py", label="Compute the runs", icon=":material/play_arrow:")
    st.stop()
st.caption(
    "The runs the sidebar shows, read from the store: an HTML report that opens offline (one "
    "file, interactive), PNG and SVG images, and a 16:9 PPTX deck with one figure per slide in "
    "the presentation theme (figures too large for a slide are split). A single figure can also "
    "be saved from any page: hover it and click the camera button in its toolbar."
)
if not any(r["status"] == "cached" for r in view.runs):
    st.info("None of the runs the sidebar shows is computed: widen the filters.")
    st.stop()
st.caption(f"{len(view.runs)} of {len(view.summary['runs'])} runs, as filtered in the sidebar.")
ui.missing_note(view.summary)
left_out = exports.export_left_out(view.summary)
if left_out:
    with st.expander(f"Left out: {len(left_out)} part(s) not computed"):
        st.markdown("\n".join(f"- {line}" for line in left_out))

grouped = ui.grouped(view)
barrier = ui.choice("Barrier (every figure)", BARRIERS, name="barrier", default="barrier_entezari")
figures = exports.export_figures(view.loaded, view.runs, barrier, grouped)
titles = dict(figures)
if "export_figures" in st.session_state:  # the filters changed: keep the names still there
    st.session_state["export_figures"] = [n for n in st.session_state.export_figures if n in titles]
picked = st.multiselect(
    "Figures (none: all)", list(titles), format_func=lambda n: f"{titles[n]} ({n})",
    key="export_figures",
)  # fmt: skip

browser, no_browser = exports.export_browser()
if browser is None:
    st.warning(no_browser, icon=":material/warning:")
labels = {"html": "HTML report", "png": "PNG images", "svg": "SVG images", "pptx": "PPTX deck"}
default = list(labels) if browser else ["html"]
formats = st.multiselect("Formats", list(labels), default, format_func=labels.get, key="formats")
st.caption(
    f"HTML and images use the {'presentation' if view.presentation else 'screen'} theme "
    "(switch it in the sidebar)."
)
runs = tuple(view.runs)
choice = {"runs": runs, "figures": tuple(picked), "barrier": barrier, "grouped": grouped}
signature = (
    tuple(formats), view.theme.name, data.store_state(view.loaded),
    tuple(r["label"] for r in runs), tuple(picked), barrier, grouped,
)  # fmt: skip
if st.button("Build the export", type="primary", icon=":material/build:", disabled=not formats):
    bar = st.progress(0.0, text="Drawing the figures...")

    def progress(task: str, done: float, total: float) -> None:
        """Move the bar as the export reports each step."""
        bar.progress(min(done / total, 1.0) if total else 0.0, text=task)

    built = exports.build_export(
        view.loaded, view.summary, formats, theme=view.theme, progress=progress, **choice
    )
    st.session_state["export_built"] = (signature, built)

kept = st.session_state.get("export_built")
if kept and kept[0] == signature:
    built = kept[1]
    stem = view.summary["study"]["name"]
    for fmt, reason in built.failed.items():
        st.error(f"{labels[fmt]} not made: {reason}", icon=":material/error:")
    if built.files:
        st.success(f"{built.figures} figures ready.", icon=":material/check_circle:")
    if built.report is not None:
        st.download_button(
            "HTML report", built.report, f"{stem}-report.html", "text/html",
            on_click="ignore", icon=":material/download:", key="get_html",
        )  # fmt: skip
    if built.deck is not None:
        st.download_button(
            "PPTX deck", built.deck, f"{stem}-slides.pptx",
            "application/vnd.openxmlformats-officedocument.presentationml.presentation",
            on_click="ignore", icon=":material/download:", key="get_pptx",
        )  # fmt: skip
    if built.has_images:
        st.download_button(
            "PNG/SVG images (zip)", built.zip_images(), f"{stem}-figures.zip", "application/zip",
            on_click="ignore", icon=":material/download:", key="get_zip",
        )  # fmt: skip
