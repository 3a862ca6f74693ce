"""Presentation mode: whether it is on, its page style, and tables that scale with it.

Presentation mode is for a projector (1280x720 or 1920x1080): the sidebar folds
away, figures take the presentation theme (large type, thick lines, two panels
per row) and text and tables grow with them.
"""

from __future__ import annotations

from typing import Any

import pandas as pd
import streamlit as st


def presenting() -> bool:
    """Whether presentation mode is on: the toggle's state, else the URL's ``?present=1``.

    Read before the sidebar is drawn: ``app.py`` folds the sidebar away with it.
    """
    if "present" in st.session_state:
        return bool(st.session_state["present"])
    return st.query_params.get("present") == "1"


#: Presentation mode's type: text, captions and tables read from the back of a room at
#: 1280x720 (figures take theirs from the presentation theme).
PRESENTATION_CSS = """<style>
[data-testid="stMainBlockContainer"] {max-width: 100%; padding: 3.6rem 2.2rem 3rem;}
[data-testid="stMain"] [data-testid="stMarkdownContainer"] p,
[data-testid="stMain"] [data-testid="stMarkdownContainer"] li {font-size: 1.35rem;}
[data-testid="stMain"] [data-testid="stCaptionContainer"] {font-size: 1.15rem;}
[data-testid="stMain"] h1 {font-size: 2.6rem;}
[data-testid="stMain"] h3 {font-size: 1.8rem;}
[data-testid="stMain"] [data-testid="stTable"] table {font-size: 1.25rem;}
[data-testid="stMain"] [data-testid="stWidgetLabel"] p {font-size: 1.15rem;}
</style>"""


TABLE_FORMATS = {
    "Requested sparsity (%)": "%.1f%%",
    "Achieved sparsity (%)": "%.2f%%",
    "Test accuracy (%)": "%.2f%%",
    "Test loss": "%.4f",
    "Nonzero params": "localized",
    "Seed": "%d",
}


def table(frame: pd.DataFrame) -> None:
    """A read-only table with numbers formatted by column name and "—" where a value is missing.

    In presentation mode a plain table whose type scales with the page (the
    interactive grid draws on a canvas at a fixed size).
    """
    frame = frame.copy()
    for name in frame.columns[frame.dtypes == "object"]:
        frame[name] = frame[name].map(lambda v: "—" if v is None or v != v else v)
    if presenting():
        shown = frame.copy()
        for name, fmt in TABLE_FORMATS.items():
            if name in shown:
                shown[name] = shown[name].map(lambda v, f=fmt: _cell(v, f))
        st.table(shown.set_index(shown.columns[0]))
        return
    config = {
        name: st.column_config.NumberColumn(name, format=fmt)
        for name, fmt in TABLE_FORMATS.items()
        if name in frame
    }
    # Up to 12 rows show whole; longer tables scroll, so the figures stay in sight.
    height = "content" if len(frame) <= 12 else 12 * 35 + 38
    st.dataframe(frame, hide_index=True, column_config=config, width="stretch", height=height)


def _cell(value: Any, fmt: str) -> str:
    """One number as a table cell of ``TABLE_FORMATS`` style; "—" when missing."""
    if value is None or value != value:
        return "—"
    if fmt == "localized":
        return f"{value:,.0f}"
    return fmt % value
