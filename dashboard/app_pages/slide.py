"""Slide: one figure of the shown runs, full screen, with its title and caption, for a meeting.

The figures are the export's (the deck's titles and captions, grouped by method
when the Mean over seeds toggle is on, large ones split). The sidebar folds away
in presentation mode (with the slide's choices), so at 1280x720 or 1920x1080 the
title, the figure and its caption fill the projector.
"""

import streamlit as st

from dashboard import exports, memo, ui
from dashboard.figures import connectivity as fc
from dashboard.figures.items import resized

#: Figure height (pixels) per screen: below the slide's title, above its caption.
SCREENS = {"1280x720": 520, "1920x1080": 860, "page": None}

view = ui.view()
ui.require_study(view)
if not view.runs:
    st.title("Slide")
    st.info("No runs selected: pick methods, sparsities and seeds in the sidebar.")
    st.stop()
with st.sidebar:  # the slide's own choices: folded away with the sidebar in presentation
    st.markdown("### Slide")
    grouped = ui.grouped(view)
    barrier = ui.select("Barrier", list(fc.BARRIERS), name="barrier", default="barrier_entezari")
    screen = ui.select("Screen", list(SCREENS), name="screen", default="1280x720")
    items = exports.export_items(view.loaded, view.runs, barrier, grouped, view.presentation)
    titles = {item.name: f"{item.section}: {item.title}" for item in items}
    if titles:
        name = ui.select("Figure", list(titles), name="figure", default=next(iter(titles)))
if not items:
    st.title("Slide")
    st.info("Nothing is computed for the shown runs.", icon=":material/hourglass_empty:")
    st.stop()
item = next(i for i in items if i.name == name)
st.title(item.title)
height = SCREENS[screen]
figure = memo.figure(resized, item.figure, height) if height else item.figure
ui.plot(figure, view, key="slide")
st.caption(item.caption)
