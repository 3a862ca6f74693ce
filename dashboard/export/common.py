"""What the export's parts share: the formats, the output file names, progress and the date line."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

FORMATS = ("html", "png", "svg", "pptx")
#: Formats that need a browser (kaleido renders through Chrome/Chromium).
STATIC = ("png", "svg", "pptx")
REPORT = "report.html"
DECK = "slides.pptx"
FIGURES = "figures"

#: ``progress(task, done, total)``, as the backend's progress callbacks.
Progress = Callable[[str, float, float], None]


def no_progress(task: str, done: float, total: float) -> None:
    """A progress callback that ignores everything."""


def stamp() -> str:
    """The date line of a report or deck (UTC, to the minute)."""
    return datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
