"""The prunescope dashboard: ``prunescope dashboard [STUDY.toml]`` serves this file.

A page is one file in ``dashboard/app_pages/`` plus one line in ``PAGES``. (Not
``pages/``: Streamlit treats a folder of that name beside the main script as an
old-style multipage app and may run a page without this file, i.e. without the
sidebar.)
"""

from pathlib import Path

import streamlit as st

from dashboard import warmup

#: The tab's icon, served by the dashboard itself (a material icon would be fetched from
#: Google's font servers, which a machine off the internet cannot reach).
ICON = str(Path(__file__).resolve().parents[1] / "assets" / "icon.png")
st.set_page_config(page_title="prunescope", page_icon=ICON, layout="wide")
if not warmup.ready():  # the server's warm-up: never import the backend beside it
    with st.spinner("Starting: loading torch, the analyses and the study's results..."):
        warmup.wait()

from dashboard import ui  # noqa: E402

st.set_page_config(
    page_title="prunescope",
    page_icon=ICON,
    layout="wide",
    # Presentation mode folds the sidebar away (its arrow brings it back).
    initial_sidebar_state="collapsed" if ui.presenting() else "auto",
)

PAGES = {
    "Study": [
        st.Page(
            "app_pages/overview.py", title="Overview", icon=":material/dashboard:", default=True
        ),
        st.Page("app_pages/compute.py", title="Compute", icon=":material/play_circle:"),
    ],
    "Analyses": [
        st.Page(
            "app_pages/representations.py", title="Representations", icon=":material/scatter_plot:"
        ),
        st.Page("app_pages/robustness.py", title="Robustness", icon=":material/shield:"),
        st.Page("app_pages/connectivity.py", title="Connectivity", icon=":material/timeline:"),
        st.Page("app_pages/landscape.py", title="Landscape", icon=":material/landscape:"),
        st.Page("app_pages/compare.py", title="Compare", icon=":material/compare_arrows:"),
        st.Page("app_pages/sweeps.py", title="Sweeps", icon=":material/show_chart:"),
        st.Page("app_pages/ranking.py", title="Ranking", icon=":material/leaderboard:"),
        st.Page("app_pages/methods.py", title="Methods", icon=":material/account_tree:"),
        st.Page("app_pages/anatomy.py", title="Anatomy", icon=":material/biotech:"),
    ],
    "Share": [
        st.Page("app_pages/slide.py", title="Slide", icon=":material/slideshow:"),
        st.Page("app_pages/export.py", title="Export", icon=":material/download:"),
    ],
}

page = st.navigation(PAGES)
ui.sidebar()
ui.run_page(page)
