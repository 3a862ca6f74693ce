"""Export a study's figures: one self-contained HTML report, PNG/SVG files and a PPTX deck.

Used by ``prunescope export STUDY.toml --out DIR`` and by the dashboard's Export
page; no streamlit here. Everything is read from the store (never computed):
the figures come from :func:`dashboard.figures.catalogue.study_catalogue`, the
same builders the pages draw with.

Static images (PNG, SVG, and the PNGs of the deck) are rendered by kaleido, which
drives a Chrome or Chromium installed on the system; :func:`find_browser` looks
for one (``$BROWSER_PATH`` first, as kaleido's own lookup does). Without one, the
HTML report still works and the static formats raise a :class:`PrunescopeError`
that says how to install a browser. Every file is written to a temporary name and
renamed into place, and nothing is written before every output is built, so a
failed export leaves no half-written files.
"""

from __future__ import annotations

import asyncio
import html
import io
import os
import shutil
import time
import uuid
import zipfile
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import plotly.graph_objects as go
import plotly.io as pio
from plotly.offline import get_plotlyjs

from analysis.errors import PrunescopeError, SpecError
from analysis.store import Store
from analysis.study import StudySpec
from dashboard.figures.catalogue import study_catalogue
from dashboard.figures.items import FigureItem
from dashboard.figures.runs import runs_table
from dashboard.figures.theme import NORMAL, PRESENTATION, Theme
from dashboard.results import Reader

FORMATS = ("html", "png", "svg", "pptx")
#: Formats that need a browser (kaleido renders through Chrome/Chromium).
STATIC = ("png", "svg", "pptx")
#: Executable names of Chromium and Chrome, looked up on PATH in this order.
BROWSER_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "chrome")
#: Pixel width of static images: figures set their own height, the width is the page's.
IMAGE_WIDTH = {"normal": 1100, "presentation": 1400}
IMAGE_SCALE = 2  # PNG pixels per CSS pixel: sharp on slides and high-DPI screens
RENDER_TIMEOUT = 120.0  # seconds per figure
#: Plotly's config in the HTML report, as in the dashboard (``ui.plot``).
PLOT_CONFIG = {
    "displaylogo": False,
    "responsive": True,
    "toImageButtonOptions": {"format": "png", "scale": IMAGE_SCALE},
}
REPORT = "report.html"
DECK = "slides.pptx"
FIGURES = "figures"

Progress = Callable[[str, float, float], None]


def _no_progress(task: str, done: float, total: float) -> None:
    """A progress callback that ignores everything."""


# -- the browser ---------------------------------------------------------------------


def _is_exe(path: str | os.PathLike) -> bool:
    """True when ``path`` is an executable file."""
    return Path(path).is_file() and os.access(path, os.X_OK)


def find_browser() -> str | None:
    """A Chrome/Chromium executable: ``$BROWSER_PATH`` if set, else PATH, else kaleido's own.

    ``$BROWSER_PATH`` is the override kaleido (through choreographer) honours; when
    it is set but names no executable, no other browser is tried, so the user sees
    their setting is wrong. Otherwise the system Chromium (Debian's ``chromium``)
    is preferred, then Chrome, then the one ``kaleido.get_chrome`` downloads.
    """
    override = os.environ.get("BROWSER_PATH")
    if override is not None:
        return override if _is_exe(override) else None
    for name in BROWSER_NAMES:
        found = shutil.which(name)
        if found and _is_exe(found):
            return found
    try:
        from choreographer.browsers.chromium import Chromium

        found = Chromium.find_browser(skip_local=False)
    except Exception:  # noqa: BLE001 - a best-effort search; no browser is reported below
        return None
    return found if found and _is_exe(found) else None


def no_browser_message() -> str:
    """Why static images cannot be made here, and how to fix it."""
    override = os.environ.get("BROWSER_PATH")
    where = f" ($BROWSER_PATH={override!r} is not an executable)" if override is not None else ""
    return (
        f"static images (PNG, SVG, PPTX) need Chromium or Chrome, and none was found{where}. "
        "Install one (Debian/Ubuntu: `apt-get install chromium`), or let kaleido download "
        "Chrome: `uv run python -c 'import kaleido; kaleido.get_chrome_sync()'`, or set "
        "BROWSER_PATH to a Chrome/Chromium executable. The HTML report needs no browser."
    )


def require_browser() -> str:
    """The browser for static images, or a PrunescopeError saying how to get one."""
    found = find_browser()
    if found is None:
        raise PrunescopeError(no_browser_message())
    return found


# -- static images -------------------------------------------------------------------


def _run_async(make: Callable[[], object]) -> object:
    """Run the coroutine ``make()`` to completion, also from a thread with a running loop."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(make())
    with ThreadPoolExecutor(max_workers=1) as pool:  # e.g. inside a notebook's event loop
        return pool.submit(lambda: asyncio.run(make())).result()


def _opts(fig: go.Figure, fmt: str, width: int) -> dict:
    """kaleido's layout options: the figure's own height, the given width."""
    opts = {"format": fmt, "width": width, "height": fig.layout.height or NORMAL.height}
    if fmt == "png":
        opts["scale"] = IMAGE_SCALE
    return opts


def render(
    jobs: Sequence[tuple[str, go.Figure, str, int]],
    *,
    browser: str | None = None,
    progress: Progress = _no_progress,
    offset: int = 0,
    total: int | None = None,
) -> list[bytes]:
    """Render (label, figure, format, width) jobs in one kaleido session; bytes in job order.

    One browser serves every job: kaleido takes seconds to start it, a figure
    then renders in a fraction of a second.
    """
    if not jobs:
        return []
    browser = browser or require_browser()
    total = total if total is not None else len(jobs)
    import kaleido
    from choreographer.errors import ChromeNotFoundError

    async def session() -> list[bytes]:
        out = []
        # mathjax=False: kaleido would fetch MathJax from a CDN, and no figure uses LaTeX.
        async with kaleido.Kaleido(n=1, timeout=RENDER_TIMEOUT, mathjax=False, path=browser) as k:
            for i, (label, fig, fmt, width) in enumerate(jobs):
                progress(f"{fmt} {label}", offset + i, total)
                out.append(await k.calc_fig(fig, opts=_opts(fig, fmt, width)))
        return out

    try:
        return _run_async(session)  # type: ignore[return-value]
    except ChromeNotFoundError as err:
        raise PrunescopeError(no_browser_message()) from err
    except Exception as err:  # kaleido/choreographer raise many types; say it in one line
        reason = (str(err).strip().splitlines() or [type(err).__name__])[0]
        raise PrunescopeError(
            f"rendering static images with {browser} failed: {type(err).__name__}: {reason}"
        ) from err


def static_images(
    items: Sequence[FigureItem],
    fmt: str,
    *,
    width: int = IMAGE_WIDTH["normal"],
    browser: str | None = None,
    progress: Progress = _no_progress,
) -> dict[str, bytes]:
    """Every item as ``fmt`` ("png" or "svg") through kaleido, by item name, in one session."""
    if fmt not in ("png", "svg"):
        raise SpecError("fmt", "'png' or 'svg'", fmt, owner="static_images")
    images = render(
        [(item.name, item.figure, fmt, width) for item in items],
        browser=browser,
        progress=progress,
    )
    return {item.name: image for item, image in zip(items, images, strict=True)}


# -- the HTML report -----------------------------------------------------------------

_CSS = """
body { font-family: Inter, 'Source Sans Pro', 'Helvetica Neue', Arial, sans-serif;
       color: #1F2328; margin: 0 auto; max-width: 1280px; padding: 24px 32px; }
header { border-bottom: 2px solid #0072B2; margin-bottom: 16px; }
h1 { margin-bottom: 4px; } h2 { margin-top: 40px; border-bottom: 1px solid #E3E6EA; }
.meta { color: #57606A; } nav ul { columns: 2; } figure { margin: 24px 0 40px; }
figcaption { color: #444; max-width: 900px; } .note { background: #FFF8E1; padding: 8px 12px; }
table.runs { border-collapse: collapse; font-size: 14px; }
table.runs th, table.runs td { border-bottom: 1px solid #E3E6EA; padding: 4px 10px;
                               text-align: right; }
table.runs th:first-child, table.runs td:first-child { text-align: left; }
footer { color: #57606A; margin-top: 48px; font-size: 13px; }
"""


def _slug(text: str) -> str:
    """An HTML id from a section title."""
    return "".join(c if c.isalnum() else "-" for c in text.lower()).strip("-")


def _runs_html(summary: dict) -> str:
    """The runs table as HTML (numbers rounded for reading)."""
    frame = runs_table(summary["runs"])
    return frame.to_html(
        index=False, na_rep="", classes="runs", border=0, float_format=lambda v: f"{v:.2f}"
    )


def _stamp() -> str:
    """The report's date line."""
    return datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")


def html_report(items: Sequence[FigureItem], summary: dict, *, missing: Iterable[str] = ()) -> str:
    """One self-contained HTML page: plotly.js inlined once, a title block, runs, sections.

    Opens offline: plotly.js is in the page's head, every figure is drawn with
    ``include_plotlyjs=False``, and no script or style comes from the network.
    """
    info, counts = summary["study"], summary["counts"]
    esc = html.escape
    sections: dict[str, list[FigureItem]] = {}
    for item in items:
        sections.setdefault(item.section, []).append(item)
    body = [
        "<header>",
        f"<h1>{esc(info['name'])}</h1>",
        f"<p class='meta'>{esc(info['dataset'])} · {esc(info['arch'])} · seeds "
        f"{esc(', '.join(map(str, info.get('seeds', []))))} · "
        f"{counts['cached']} of {counts['runs']} runs computed · exported {_stamp()}</p>",
    ]
    if info.get("description"):
        body.append(f"<p>{esc(info['description'])}</p>")
    body.append("</header>")
    missing = list(missing)
    if missing:
        body.append(
            "<p class='note'>Not computed when this report was made: "
            + "; ".join(esc(m) for m in missing)
            + ".</p>"
        )
    body.append("<nav><ul><li><a href='#runs'>Runs</a></li>")
    body += [f"<li><a href='#{_slug(s)}'>{esc(s)}</a></li>" for s in sections]
    body.append("</ul></nav>")
    body += ["<section id='runs'><h2>Runs</h2>", _runs_html(summary), "</section>"]
    for section, members in sections.items():
        body.append(f"<section id='{_slug(section)}'><h2>{esc(section)}</h2>")
        for item in members:
            div = pio.to_html(
                item.figure,
                full_html=False,
                include_plotlyjs=False,
                include_mathjax=False,
                post_script=item.post_script,
                div_id=f"fig-{item.name}",
                config=PLOT_CONFIG,
                default_width="100%",
                default_height=f"{item.figure.layout.height or NORMAL.height}px",
            )
            body.append(
                f"<figure id='{esc(item.name)}'><h3>{esc(item.title)}</h3>{div}"
                f"<figcaption>{esc(item.caption)}</figcaption></figure>"
            )
        body.append("</section>")
    body.append(
        "<footer>Made with prunescope from cached results; every figure is interactive "
        "(hover, zoom, and the camera button saves a PNG).</footer>"
    )
    return (
        "<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'>"
        f"<title>{esc(info['name'])}: prunescope report</title>"
        f"<style>{_CSS}</style>"
        f"<script type='text/javascript'>{get_plotlyjs()}</script>"
        "</head><body>\n" + "\n".join(body) + "\n</body></html>\n"
    )


# -- the PPTX deck -------------------------------------------------------------------


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
    """
    from PIL import Image
    from pptx import Presentation
    from pptx.util import Inches, Pt

    if images is None:
        rendered = static_images(items, "png", width=IMAGE_WIDTH["presentation"], browser=browser)
        images = [rendered[item.name] for item in items]
    info, counts = summary["study"], summary["counts"]
    deck = Presentation()
    deck.slide_width, deck.slide_height = Inches(13.333), Inches(7.5)
    blank = deck.slide_layouts[6]  # the default template's blank layout: no 4:3 placeholders

    def text(slide, left, top, width, height, value, size, *, bold=False, color=None):
        """A word-wrapped text box."""
        frame = slide.shapes.add_textbox(left, top, width, height).text_frame
        frame.word_wrap = True
        frame.text = value
        for paragraph in frame.paragraphs:
            paragraph.font.size, paragraph.font.bold = Pt(size), bold
            if color is not None:
                paragraph.font.color.rgb = color

    from pptx.dml.color import RGBColor

    grey = RGBColor(0x57, 0x60, 0x6A)
    title = deck.slides.add_slide(blank)
    text(title, Inches(0.8), Inches(2.4), Inches(11.7), Inches(1.4), info["name"], 44, bold=True)
    subtitle = (
        f"{info['dataset']} · {info['arch']} · {counts['cached']} of {counts['runs']} runs "
        f"computed\n{info.get('description') or ''}\nprunescope · {_stamp()}"
    )
    text(title, Inches(0.8), Inches(3.9), Inches(11.7), Inches(2.0), subtitle, 22, color=grey)

    box_left, box_top, box_w, box_h = Inches(0.4), Inches(1.05), Inches(12.53), Inches(5.25)
    for item, png in zip(items, images, strict=True):
        slide = deck.slides.add_slide(blank)
        text(slide, Inches(0.4), Inches(0.2), Inches(12.5), Inches(0.8), item.title, 30, bold=True)
        with Image.open(io.BytesIO(png)) as image:
            w, h = image.size
        fit = min(box_w / w, box_h / h)  # EMU per pixel that fits the box
        width, height = int(w * fit), int(h * fit)
        slide.shapes.add_picture(
            io.BytesIO(png), box_left + (box_w - width) // 2, box_top, width, height
        )
        text(slide, Inches(0.4), Inches(6.4), Inches(12.5), Inches(0.95), item.caption, 15)
        slide.notes_slide.notes_text_frame.text = f"{item.section}: {item.caption}"
    out = io.BytesIO()
    deck.save(out)
    return out.getvalue()


# -- a whole study ---------------------------------------------------------------------


def _absent(records: Iterable[dict]) -> list[str]:
    """Labels of the records that are not cached."""
    return [r.get("label", "?") for r in records if r.get("status") != "cached"]


def _listed(part: str, absent: list[str], of: int) -> str:
    """'robustness: 2 of 6 (a, b)' with at most five names."""
    names = ", ".join(absent[:5]) + (f" and {len(absent) - 5} more" if len(absent) > 5 else "")
    return f"{part}: {len(absent)} of {of} ({names})"


def missing_parts(summary: dict) -> list[str]:
    """One line per part of the study with results that are not computed (or failed)."""
    out = []
    runs = summary["runs"]
    if absent := _absent(runs):
        out.append(_listed("runs", absent, len(runs)))
    reps = [
        {"label": r["objective"], "status": r["status"]} for r in summary.get("representations", [])
    ]
    if absent := _absent(reps):
        out.append(_listed("representations", absent, len(reps)))
    rob = summary.get("robustness", [])
    if absent := _absent(rob):
        out.append(_listed("robustness", absent, len(rob)))
    conn = summary.get("connectivity") or {}
    records = list(conn.get("pairs", []))
    records += [p for i in conn.get("instability", []) for p in i.get("points", [])]
    if absent := _absent(records):
        out.append(_listed("connectivity", absent, len(records)))
    land = summary.get("landscape") or {}
    records = [s for r in land.get("runs", []) for s in r.get("surfaces", [])]
    records += [r["sharpness"] for r in land.get("runs", []) if r.get("sharpness")]
    records += list(land.get("planes", []))
    if absent := _absent(records):
        out.append(_listed("landscape", absent, len(records)))
    return out


def check_formats(formats: Iterable[str]) -> list[str]:
    """The requested formats in canonical order; an unknown one is a SpecError."""
    formats = [f.strip().lower() for f in formats if f.strip()]
    unknown = [f for f in formats if f not in FORMATS]
    if unknown or not formats:
        raise SpecError(
            "format", f"a comma-separated subset of {', '.join(FORMATS)}", ",".join(unknown) or "",
            owner="prunescope export",
        )  # fmt: skip
    return [f for f in FORMATS if f in formats]


@dataclass
class Export:
    """Built outputs, not yet written: file name (relative) -> content."""

    files: dict[str, bytes] = field(default_factory=dict)
    missing: list[str] = field(default_factory=list)
    figures: int = 0

    def zip_images(self) -> bytes:
        """The PNG/SVG files as one zip archive (for a single download)."""
        out = io.BytesIO()
        with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
            for name, data in self.files.items():
                if name.startswith(f"{FIGURES}/"):
                    archive.writestr(name, data)
        return out.getvalue()


def build_export(
    summary: dict,
    reader: Reader,
    formats: Iterable[str] = FORMATS,
    *,
    theme: Theme = NORMAL,
    progress: Progress = _no_progress,
    browser: str | None = None,
) -> Export:
    """Build every requested output in memory (read-only: nothing is computed).

    HTML, PNG and SVG use ``theme``; the deck always uses the presentation theme.
    """
    formats = check_formats(formats)
    counts = summary["counts"]
    if not counts["cached"]:
        raise PrunescopeError(
            f"nothing to export: none of the {counts['runs']} runs of study "
            f"{summary['study']['name']!r} is computed in {summary['study']['cache_dir']}; "
            "run `prunescope compute STUDY.toml` first"
        )
    if any(f in STATIC for f in formats):
        browser = browser or require_browser()  # fail before the slow work, not after it
    items = study_catalogue(summary, reader, theme, progress)
    deck_items: list[FigureItem] = []
    if "pptx" in formats:
        deck_items = items if theme == PRESENTATION else study_catalogue(
            summary, reader, PRESENTATION
        )  # fmt: skip
    out = Export(missing=missing_parts(summary), figures=len(items))
    jobs = [
        (item.name, item.figure, fmt, IMAGE_WIDTH[theme.name])
        for fmt in ("png", "svg")
        if fmt in formats
        for item in items
    ]
    jobs += [(i.name, i.figure, "png", IMAGE_WIDTH["presentation"]) for i in deck_items]
    total = len(jobs) + ("html" in formats) + ("pptx" in formats)
    done = 0
    if "html" in formats:
        progress("html report", done, total)
        out.files[REPORT] = html_report(items, summary, missing=out.missing).encode()
        done += 1
    images = render(jobs, browser=browser, progress=progress, offset=done, total=total)
    done += len(jobs)
    n_static = len(jobs) - len(deck_items)
    for (name, _, fmt, _), image in zip(jobs[:n_static], images[:n_static], strict=True):
        out.files[f"{FIGURES}/{name}.{fmt}"] = image
    if "pptx" in formats:
        progress("pptx deck", done, total)
        out.files[DECK] = pptx_deck(deck_items, summary, images[n_static:])
        done += 1
    progress("done", total, total)
    return out


def write_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file renamed into place."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        tmp.write_bytes(data)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


@dataclass
class ExportReport:
    """What an export wrote, and what it could not include."""

    out_dir: Path
    written: list[Path]
    missing: list[str]
    figures: int
    seconds: float


def export_study(
    study: StudySpec | str | os.PathLike,
    store: Store,
    out_dir: str | os.PathLike,
    formats: Iterable[str] = FORMATS,
    *,
    theme: Theme = NORMAL,
    progress: Progress = _no_progress,
    data_root: str | None = None,
    browser: str | None = None,
) -> ExportReport:
    """Export a study's cached results to ``out_dir`` (a study file is loaded with its fallback)."""
    from analysis import plan
    from analysis.study import load_study, with_available_data

    start = time.perf_counter()
    if not isinstance(study, StudySpec):
        study, _ = with_available_data(load_study(study), data_root)
    summary = plan.summarize(study, store)
    built = build_export(
        summary, Reader(study, store), formats, theme=theme, progress=progress, browser=browser
    )
    out = Path(out_dir)
    written = []
    for name, data in built.files.items():
        write_atomic(out / name, data)
        written.append(out / name)
    return ExportReport(out, written, built.missing, built.figures, time.perf_counter() - start)
