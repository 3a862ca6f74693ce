"""Slide: one figure of the shown runs, full screen, with its title and caption, for a meeting.

The figures are the export's (``dashboard.figures.catalogue``): the same titles
and captions as the deck. The sidebar folds away in presentation mode, so at
1280x720 or 1920x1080 the figure fills the projector.
"""

import streamlit as st

from dashboard import data, ui
from dashboard.figures.catalogue import sections

#: Figure height (pixels) per screen: the whole figure in view below its title and caption.
SCREENS = {"1280x720": 500, "1920x1080": 820, "page": None}

view = ui.view()
ui.require_study(view)
if not view.runs:
    st.info("No runs selected: pick methods, sparsities and seeds in the sidebar.")
    st.stop()
left, middle, right = st.columns([2, 3, 1])
catalogues = sections()
with left:
    section = ui.select("Section", list(catalogues), name="section", default="Overview")
summary = {**view.summary, "runs": view.runs}  # the figures of the runs the sidebar shows
items = catalogues[section](summary, data.reader(view.loaded), view.theme)
if not items:
    st.info(f"Nothing of {section} is computed for the shown runs.")
    st.stop()
titles = {item.name: item.title for item in items}
with middle:
    name = ui.select("Figure", list(titles), name="figure", default=next(iter(titles)))
with right:
    screen = ui.select("Screen", list(SCREENS), name="screen", default="1280x720")
item = next(i for i in items if i.name == name)
st.markdown(f"## {item.title}")
figure = item.figure
if SCREENS[screen]:
    figure.update_layout(height=SCREENS[screen])
ui.plot(figure, view, key="slide")
st.caption(item.caption)
