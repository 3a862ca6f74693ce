"""Export a study's figures: one self-contained HTML report, PNG/SVG files and a PPTX deck.

One concern per module, every public name importable from here:

- :mod:`.images`: PNG/SVG through kaleido and the system's Chromium (browser
  lookup, one bounded session per export);
- :mod:`.report`: the self-contained HTML report;
- :mod:`.deck`: the PPTX deck;
- :mod:`.build`: which formats, what is missing, building each format and
  writing it (``prunescope export`` and the Export page call this);
- :mod:`.common`: format and file names, progress, the date line.
"""

from dashboard.export.build import (
    Export,
    ExportReport,
    build_export,
    check_formats,
    export_study,
    missing_parts,
)
from dashboard.export.common import DECK, FIGURES, FORMATS, REPORT, STATIC, Progress
from dashboard.export.deck import pptx_deck
from dashboard.export.images import (
    BROWSER_NAMES,
    BROWSER_START_TIMEOUT,
    IMAGE_SCALE,
    IMAGE_WIDTH,
    RENDER_TIMEOUT,
    find_browser,
    no_browser_message,
    render,
    render_each,
    require_browser,
    static_images,
)
from dashboard.export.report import PLOT_CONFIG, html_report

__all__ = [
    "BROWSER_NAMES",
    "BROWSER_START_TIMEOUT",
    "DECK",
    "FIGURES",
    "FORMATS",
    "IMAGE_SCALE",
    "IMAGE_WIDTH",
    "PLOT_CONFIG",
    "RENDER_TIMEOUT",
    "REPORT",
    "STATIC",
    "Export",
    "ExportReport",
    "Progress",
    "build_export",
    "check_formats",
    "export_study",
    "find_browser",
    "html_report",
    "missing_parts",
    "no_browser_message",
    "pptx_deck",
    "render",
    "render_each",
    "require_browser",
    "static_images",
]
