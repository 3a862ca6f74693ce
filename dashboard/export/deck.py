"""The PPTX deck: a 16:9 title slide, then one slide per figure or table (title, body, caption).

Every slide's title is the layout's title placeholder (``slide.shapes.title``),
not a free text box, so PowerPoint's outline view, LibreOffice's navigator and
screen readers see it. python-pptx's default template is 4:3; the deck is made
16:9 and each placeholder is moved to the wider slide.
"""

from __future__ import annotations

import io
from collections.abc import Sequence

from dashboard.export.common import stamp
from dashboard.export.images import IMAGE_WIDTH, static_images
from dashboard.export.sections import TableItem
from dashboard.figures.items import FigureItem

GREY = (0x57, 0x60, 0x6A)
#: The default template's layouts: a title slide, and a slide with only a title.
TITLE_LAYOUT, TITLE_ONLY_LAYOUT = 0, 5
WIDTH_IN, HEIGHT_IN = 13.333, 7.5
MARGIN_IN = 0.4
#: Inches of a table's leading columns (the names); the metrics share the rest.
LEAD_COLUMNS = {"Setting": 1.7, "Method": 1.7, "Seeds": 1.0}


def _style(frame, size: int, *, bold: bool = False, color=None) -> None:
    """Every paragraph of ``frame`` in ``size`` points (bold, coloured if asked), word-wrapped."""
    from pptx.dml.color import RGBColor
    from pptx.util import Pt

    frame.word_wrap = True
    for paragraph in frame.paragraphs:
        for run in paragraph.runs:
            run.font.size, run.font.bold = Pt(size), bold
            if color is not None:
                run.font.color.rgb = RGBColor(*color)


def _text(slide, box: tuple, value: str, size: int, *, color=None) -> None:
    """A word-wrapped text box at ``box`` = (left, top, width, height) in EMU."""
    frame = slide.shapes.add_textbox(*box).text_frame
    frame.text = value
    _style(frame, size, color=color)


def _place(shape, box: tuple) -> None:
    """Move a placeholder to ``box`` = (left, top, width, height) in EMU."""
    shape.left, shape.top, shape.width, shape.height = box


def title_size(text: str) -> int:
    """Points of a slide title: smaller as it gets longer, so it keeps to one line."""
    return 28 if len(text) <= 42 else 24 if len(text) <= 56 else 20


def _title(slide, text: str) -> None:
    """The slide's title placeholder: ``text`` across the top, left-aligned, one or two lines."""
    from pptx.enum.text import MSO_ANCHOR, PP_ALIGN
    from pptx.util import Inches

    title = slide.shapes.title
    _place(title, (Inches(MARGIN_IN), Inches(0.15), Inches(WIDTH_IN - 2 * MARGIN_IN), Inches(0.85)))
    title.text = text
    title.text_frame.vertical_anchor = MSO_ANCHOR.MIDDLE
    for paragraph in title.text_frame.paragraphs:
        paragraph.alignment = PP_ALIGN.LEFT
    _style(title.text_frame, title_size(text), bold=True)


def _title_slide(deck, summary: dict, notes: Sequence[str]) -> None:
    """The study's name; dataset, model, what is computed, what is shown, and the date."""
    from pptx.util import Inches

    info, counts = summary["study"], summary["counts"]
    slide = deck.slides.add_slide(deck.slide_layouts[TITLE_LAYOUT])
    width = Inches(WIDTH_IN - 1.6)
    _place(slide.shapes.title, (Inches(0.8), Inches(1.2), width, Inches(1.5)))
    slide.shapes.title.text = info["name"]
    _style(slide.shapes.title.text_frame, 44, bold=True)
    lines = [
        f"{info['dataset']} · {info['arch']} · {counts['cached']} of {counts['runs']} runs computed",
        *([info["description"]] if info.get("description") else []),
        *notes,
        f"prunescope · {stamp()}",
    ]
    subtitle = slide.placeholders[1]
    _place(subtitle, (Inches(0.8), Inches(2.9), width, Inches(4.0)))
    subtitle.text = "\n".join(lines)
    _style(subtitle.text_frame, 20, color=GREY)


def _caption(slide, item: FigureItem) -> None:
    """The caption under the body, and the section and caption in the speaker notes."""
    from pptx.util import Inches

    box = (Inches(MARGIN_IN), Inches(6.45), Inches(WIDTH_IN - 2 * MARGIN_IN), Inches(0.95))
    _text(slide, box, item.caption, 14)
    slide.notes_slide.notes_text_frame.text = f"{item.section}: {item.caption}"


def _figure_slide(deck, item: FigureItem, png: bytes) -> None:
    """One figure: its title, its image fitted between title and caption and centred."""
    from PIL import Image
    from pptx.util import Inches

    slide = deck.slides.add_slide(deck.slide_layouts[TITLE_ONLY_LAYOUT])
    _title(slide, item.title)
    left, top = Inches(MARGIN_IN), Inches(1.05)
    box_w, box_h = Inches(WIDTH_IN - 2 * MARGIN_IN), Inches(5.3)
    with Image.open(io.BytesIO(png)) as image:
        w, h = image.size
    fit = min(box_w / w, box_h / h)  # EMU per pixel that fits the box
    width, height = int(w * fit), int(h * fit)
    slide.shapes.add_picture(io.BytesIO(png), left + (box_w - width) // 2, top, width, height)
    _caption(slide, item)


def _table_slide(deck, item: TableItem) -> None:
    """One table: its title, a native table (text a reader can select), its caption."""
    from pptx.util import Inches, Pt

    slide = deck.slides.add_slide(deck.slide_layouts[TITLE_ONLY_LAYOUT])
    _title(slide, item.title)
    n_rows, n_cols = len(item.rows) + 1, len(item.header)
    row_h = Inches(min(0.62, 5.2 / n_rows))
    shape = slide.shapes.add_table(
        n_rows, n_cols, Inches(MARGIN_IN), Inches(1.1),
        Inches(WIDTH_IN - 2 * MARGIN_IN), row_h * n_rows,
    )  # fmt: skip
    size = 14 if n_cols <= 6 else 12 if n_cols <= 8 else 10
    lead = sum(1 for h in item.header if h in LEAD_COLUMNS)
    narrow = [LEAD_COLUMNS.get(h, 0.0) for h in item.header[:lead]]
    wide = (WIDTH_IN - 2 * MARGIN_IN - sum(narrow)) / max(n_cols - lead, 1)
    for c, inches in enumerate(narrow + [wide] * (n_cols - lead)):
        shape.table.columns[c].width = Inches(inches)
    for r, values in enumerate([item.header, *item.rows]):
        for c, value in enumerate(values):
            cell = shape.table.cell(r, c)
            cell.text = value
            for paragraph in cell.text_frame.paragraphs:
                for run in paragraph.runs:
                    run.font.size, run.font.bold = Pt(size), r == 0
    _caption(slide, item)


def pptx_deck(
    items: Sequence[FigureItem],
    summary: dict,
    images: Sequence[bytes] | None = None,
    *,
    notes: Sequence[str] = (),
    browser: str | None = None,
) -> bytes:
    """A 16:9 deck: a title slide, then one slide per figure (title, image, caption) or table.

    ``images`` are the PNGs of the items that are not tables, in order; without
    them they are rendered here (make the items with the presentation theme:
    large fonts read from the back). ``notes``: lines for the title slide (the
    runs shown, the barrier).

    Raises:
        PrunescopeError: ``images`` not given and they cannot be rendered (no browser, ...).
    """
    from pptx import Presentation
    from pptx.util import Inches

    figures = [item for item in items if not isinstance(item, TableItem)]
    if images is None:
        width = IMAGE_WIDTH["presentation"]
        rendered = static_images(figures, "png", width=width, browser=browser)
        images = [rendered[item.name] for item in figures]
    pngs = dict(zip([item.name for item in figures], images, strict=True))
    deck = Presentation()
    deck.slide_width, deck.slide_height = Inches(WIDTH_IN), Inches(HEIGHT_IN)
    _title_slide(deck, summary, notes)
    for item in items:
        if isinstance(item, TableItem):
            _table_slide(deck, item)
        else:
            _figure_slide(deck, item, pngs[item.name])
    out = io.BytesIO()
    deck.save(out)
    return out.getvalue()
