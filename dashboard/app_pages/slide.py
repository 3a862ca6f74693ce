"""Slide: one figure of the shown runs, full screen, with its title and caption, for a meeting.

The figures are the export's (the deck's titles and captions, grouped by method
when the Mean over seeds toggle is on, large ones split). The sidebar folds away
in presentation mode, so at 1280x720 or 1920x1080 the figure fills the projector.
"""

import streamlit as st

from dashboard import exports, ui
from dashboard.figures import connectivity as fc

#: Figure height (pixels) per screen: the whole figure in view below its title and caption.
SCREENS = {"1280x720": 500, "1920x1080": 820, "page": None}

view = ui.view()
st.title("Slide")
ui.require_study(view)
if not view.runs:
    st.info("No runs selected: pick methods, sparsities and seeds in the sidebar.")
    st.stop()
grouped = ui.grouped(view)
left, middle, right = st.columns([3, 1, 1])
with middle:
    barrier = ui.select("Barrier", list(fc.BARRIERS), name="barrier", default="barrier_entezari")
with right:
    screen = ui.select("Screen", list(SCREENS), name="screen", default="1280x720")
items = exports.export_items(view.loaded, view.runs, barrier, grouped, view.presentation)
if not items:
    st.info("Nothing is computed for the shown runs.", icon=":material/hourglass_empty:")
    st.stop()
titles = {item.name: f"{item.section}: {item.title}" for item in items}
with left:
    name = ui.select("Figure", list(titles), name="figure", default=next(iter(titles)))
item = next(i for i in items if i.name == name)
st.markdown(f"## {item.title}")  # the slide's own title
figure = item.figure
if SCREENS[screen]:
    figure.update_layout(height=SCREENS[screen])
ui.plot(figure, view, key="slide")
st.caption(item.caption)
