"""The self-contained HTML report: plotly.js inlined once, every figure interactive, no network.

Opens offline: plotly.js is in the page's head, every figure is drawn with
``include_plotlyjs=False``, and no script or style comes from the network.
"""

from __future__ import annotations

import html
from collections.abc import Iterable, Sequence

import plotly.io as pio
from plotly.offline import get_plotlyjs

from dashboard.export.common import stamp
from dashboard.export.images import IMAGE_SCALE
from dashboard.figures.items import FigureItem
from dashboard.figures.runs import runs_table
from dashboard.figures.theme import NORMAL

#: Plotly's config in the HTML report, as in the dashboard (``ui.plot``).
PLOT_CONFIG = {
    "displaylogo": False,
    "responsive": True,
    "toImageButtonOptions": {"format": "png", "scale": IMAGE_SCALE},
}

_CSS = """
body { font-family: Inter, 'Source Sans Pro', 'Helvetica Neue', Arial, sans-serif;
       color: #1F2328; margin: 0 auto; max-width: 1280px; padding: 24px 32px; }
header { border-bottom: 2px solid #2E3440; margin-bottom: 16px; }
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


def _header(summary: dict, missing: list[str], notes: list[str]) -> list[str]:
    """The title block: study, dataset, model, seeds, what is computed and shown, what was
    left out."""
    info, counts = summary["study"], summary["counts"]
    esc = html.escape
    body = [
        "<header>",
        f"<h1>{esc(info['name'])}</h1>",
        f"<p class='meta'>{esc(info['dataset'])} · {esc(info['arch'])} · seeds "
        f"{esc(', '.join(map(str, info.get('seeds', []))))} · "
        f"{counts['cached']} of {counts['runs']} runs computed · exported {stamp()}</p>",
    ]
    if info.get("description"):
        body.append(f"<p>{esc(info['description'])}</p>")
    body += [f"<p class='meta'>{esc(note)}</p>" for note in notes]
    body.append("</header>")
    if missing:
        body.append(
            "<p class='note'>Not computed when this report was made: "
            + "; ".join(esc(m) for m in missing)
            + ".</p>"
        )
    return body


def _figure(item: FigureItem) -> str:
    """One figure: its title, the interactive plot (no plotly.js of its own), its caption."""
    esc = html.escape
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
    return (
        f"<figure id='{esc(item.name)}'><h3>{esc(item.title)}</h3>{div}"
        f"<figcaption>{esc(item.caption)}</figcaption></figure>"
    )


def html_report(
    items: Sequence[FigureItem],
    summary: dict,
    *,
    missing: Iterable[str] = (),
    notes: Iterable[str] = (),
) -> str:
    """One self-contained HTML page: plotly.js inlined once, a title block, runs, sections.

    ``notes``: lines for the title block (the runs shown, the barrier definition).
    """
    esc = html.escape
    sections: dict[str, list[FigureItem]] = {}
    for item in items:
        sections.setdefault(item.section, []).append(item)
    body = _header(summary, list(missing), list(notes))
    body.append("<nav><ul><li><a href='#runs'>Runs</a></li>")
    body += [f"<li><a href='#{_slug(s)}'>{esc(s)}</a></li>" for s in sections]
    body.append("</ul></nav>")
    body += ["<section id='runs'><h2>Runs</h2>", _runs_html(summary), "</section>"]
    for section, members in sections.items():
        body.append(f"<section id='{_slug(section)}'><h2>{esc(section)}</h2>")
        body += [_figure(item) for item in members]
        body.append("</section>")
    body.append(
        "<footer>Made with prunescope from cached results; every figure is interactive "
        "(hover, zoom, and the camera button saves a PNG).</footer>"
    )
    return (
        "<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'>"
        f"<title>{esc(summary['study']['name'])}: prunescope report</title>"
        f"<style>{_CSS}</style>"
        f"<script type='text/javascript'>{get_plotlyjs()}</script>"
        "</head><body>\n" + "\n".join(body) + "\n</body></html>\n"
    )
