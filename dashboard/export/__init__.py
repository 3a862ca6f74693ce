"""Export a study's figures: one self-contained HTML report, PNG/SVG files and a PPTX deck.

One concern per module, every public name importable from here:

- :mod:`.images`: PNG/SVG through kaleido and the system's Chromium (browser
  lookup, one bounded session per export);
- :mod:`.report`: the self-contained HTML report;
- :mod:`.deck`: the PPTX deck;
- :mod:`.view`: which runs (the sidebar's filters, from options or a copied link);
- :mod:`.catalogue` and :mod:`.sections`: every figure of a view by a stable
  name, picked by name; :mod:`.split`: figures too large for a slide, in parts;
- :mod:`.build`: which formats, what is missing, building each format and
  writing it (``prunescope export`` and the Export page call this);
- :mod:`.common`: format and file names, progress, the date line.
"""

from dashboard.export.build import (
    Choice,
    Export,
    ExportReport,
    build_export,
    check_formats,
    choose,
    chosen_items,
    export_study,
    figure_list,
    missing_parts,
)
from dashboard.export.catalogue import BARRIERS, listing, pick
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
from dashboard.export.sections import DEFAULT_BARRIER, TableItem
from dashboard.export.view import (
    FILTER_NAMES,
    Filters,
    filters_of,
    from_options,
    from_query,
    select,
)

__all__ = [
    "BARRIERS",
    "FILTER_NAMES",
    "BROWSER_NAMES",
    "BROWSER_START_TIMEOUT",
    "DECK",
    "DEFAULT_BARRIER",
    "FIGURES",
    "FORMATS",
    "IMAGE_SCALE",
    "IMAGE_WIDTH",
    "PLOT_CONFIG",
    "RENDER_TIMEOUT",
    "REPORT",
    "STATIC",
    "Choice",
    "Export",
    "ExportReport",
    "Filters",
    "Progress",
    "TableItem",
    "build_export",
    "check_formats",
    "choose",
    "chosen_items",
    "export_study",
    "figure_list",
    "filters_of",
    "find_browser",
    "from_options",
    "from_query",
    "html_report",
    "listing",
    "missing_parts",
    "no_browser_message",
    "pick",
    "pptx_deck",
    "render",
    "render_each",
    "require_browser",
    "select",
    "static_images",
]
