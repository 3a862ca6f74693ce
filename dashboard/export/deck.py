"""The PPTX deck: a 16:9 title slide, then one slide per figure (title, image, caption, notes)."""

from __future__ import annotations

import io
from collections.abc import Sequence

from dashboard.export.common import stamp
from dashboard.export.images import IMAGE_WIDTH, static_images
from dashboard.figures.items import FigureItem

GREY = (0x57, 0x60, 0x6A)


def _text(slide, box: tuple, value: str, size: int, *, bold: bool = False, color=None) -> None:
    """A word-wrapped text box at ``box`` = (left, top, width, height) in EMU."""
    from pptx.dml.color import RGBColor
    from pptx.util import Pt

    frame = slide.shapes.add_textbox(*box).text_frame
    frame.word_wrap = True
    frame.text = value
    for paragraph in frame.paragraphs:
        paragraph.font.size, paragraph.font.bold = Pt(size), bold
        if color is not None:
            paragraph.font.color.rgb = RGBColor(*color)


def _title_slide(deck, layout, summary: dict) -> None:
    """The study's name, dataset, model, how much is computed, and the date."""
    from pptx.util import Inches

    info, counts = summary["study"], summary["counts"]
    slide = deck.slides.add_slide(layout)
    box = (Inches(0.8), Inches(2.4), Inches(11.7), Inches(1.4))
    _text(slide, box, info["name"], 44, bold=True)
    subtitle = (
        f"{info['dataset']} · {info['arch']} · {counts['cached']} of {counts['runs']} runs "
        f"computed\n{info.get('description') or ''}\nprunescope · {stamp()}"
    )
    _text(slide, (Inches(0.8), Inches(3.9), Inches(11.7), Inches(2.0)), subtitle, 22, color=GREY)


def _figure_slide(deck, layout, item: FigureItem, png: bytes) -> None:
    """One figure: its title, its image fitted to the slide and centred, its caption and notes."""
    from PIL import Image
    from pptx.util import Inches

    slide = deck.slides.add_slide(layout)
    _text(slide, (Inches(0.4), Inches(0.2), Inches(12.5), Inches(0.8)), item.title, 30, bold=True)
    left, top, box_w, box_h = Inches(0.4), Inches(1.05), Inches(12.53), Inches(5.25)
    with Image.open(io.BytesIO(png)) as image:
        w, h = image.size
    fit = min(box_w / w, box_h / h)  # EMU per pixel that fits the box
    width, height = int(w * fit), int(h * fit)
    slide.shapes.add_picture(io.BytesIO(png), left + (box_w - width) // 2, top, width, height)
    _text(slide, (Inches(0.4), Inches(6.4), Inches(12.5), Inches(0.95)), item.caption, 15)
    slide.notes_slide.notes_text_frame.text = f"{item.section}: {item.caption}"


def pptx_deck(
    items: Sequence[FigureItem],
    summary: dict,
    images: Sequence[bytes] | None = None,
    *,
    browser: str | None = None,
) -> bytes:
    """A 16:9 deck: a title slide, then one slide per figure (title, image, caption).

    ``images`` are the items' PNGs in order; without them they are rendered here
    (make the items with the presentation theme: large fonts read from the back).

    Raises:
        PrunescopeError: ``images`` not given and they cannot be rendered (no browser, ...).
    """
    from pptx import Presentation
    from pptx.util import Inches

    if images is None:
        rendered = static_images(items, "png", width=IMAGE_WIDTH["presentation"], browser=browser)
        images = [rendered[item.name] for item in items]
    deck = Presentation()
    deck.slide_width, deck.slide_height = Inches(13.333), Inches(7.5)
    blank = deck.slide_layouts[6]  # the default template's blank layout: no 4:3 placeholders
    _title_slide(deck, blank, summary)
    for item, png in zip(items, images, strict=True):
        _figure_slide(deck, blank, item, png)
    out = io.BytesIO()
    deck.save(out)
    return out.getvalue()
