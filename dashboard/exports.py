"""The dashboard's export: the figures the export can make of the shown runs, and its files.

Cached like ``dashboard.data`` (keyed by the study and the store's state); pages
call these (they may not import ``dashboard.export`` itself).
"""

from __future__ import annotations

from collections.abc import Sequence

import streamlit as st

from analysis.errors import PrunescopeError
from dashboard import export
from dashboard.data import Loaded, _key, _reader, _summary, reader, store_state
from dashboard.figures import Theme, theme_for
from dashboard.figures.items import FigureItem


def export_browser() -> tuple[str | None, str]:
    """The browser static images are rendered with (None: none found) and how to get one."""
    return export.find_browser(), export.no_browser_message()


def export_left_out(summary: dict) -> list[str]:
    """One line per part of the study the export leaves out (not computed, or failed)."""
    return export.missing_parts(summary)


# Shared, not copied (``st.cache_resource``): a cache_data hit unpickles every figure,
# which validates it again (two seconds for the demo's forty figures on every rerun).
@st.cache_resource(show_spinner="Drawing the figures...", max_entries=16)
def _export_items(
    study_path: str, mtime_ns: int, cache_dir: str, data_root: str | None, state: str,
    labels: tuple[str, ...], barrier: str, grouped: bool, presentation: bool,
) -> tuple[FigureItem, ...]:  # fmt: skip
    """Every figure the export can make of the runs ``labels`` (the deck's titles, captions)."""
    summary = _summary(study_path, mtime_ns, cache_dir, data_root, state)
    runs = tuple(r for r in summary["runs"] if r["label"] in labels)
    choice = export.Choice(runs=runs, barrier=barrier, grouped=grouped)
    reader = _reader(study_path, mtime_ns, cache_dir, data_root)
    return tuple(export.chosen_items(summary, reader, theme_for(presentation), choice)[1])


def export_items(
    loaded: Loaded, runs: Sequence[dict], barrier: str, grouped: bool, presentation: bool = False
) -> tuple[FigureItem, ...]:
    """The export's figures of ``runs``, shared by every session: draw them, never change
    them (``dashboard.figures.items.resized`` makes a copy of another height)."""
    labels = tuple(r["label"] for r in runs)
    key = (*_key(loaded), store_state(loaded))
    return _export_items(*key, labels, barrier, grouped, presentation)


def export_figures(
    loaded: Loaded, runs: Sequence[dict], barrier: str, grouped: bool
) -> list[tuple[str, str]]:
    """(name, 'Section: title') of every figure the export can make of ``runs``."""
    return [
        (i.name, f"{i.section}: {i.title}") for i in export_items(loaded, runs, barrier, grouped)
    ]


def build_export(
    loaded: Loaded, summary: dict, formats: Sequence[str], *, theme: Theme, progress, **choice
) -> export.Export:
    """The export's files in memory (read-only: nothing is computed, nothing written).

    ``choice``: the fields of :class:`dashboard.export.Choice` (runs, figures, barrier,
    grouped). Never raises for what a user can cause: a format that could not be made is
    in ``Export.failed`` with its one-line reason (all of them, when nothing could).
    """
    try:
        return export.build_export(
            summary, reader(loaded), formats, theme=theme, progress=progress,
            choice=export.Choice(**choice),
        )  # fmt: skip
    except PrunescopeError as err:
        reason = str(err).splitlines()[0]
        return export.Export(failed=dict.fromkeys(formats, reason))
