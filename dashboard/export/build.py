"""A whole study's export: which formats, what is missing, each format built and kept on its own.

Used by ``prunescope export STUDY.toml --out DIR`` and by the dashboard's Export
page; no streamlit here. Everything is read from the store (never computed): the
figures come from :func:`dashboard.figures.catalogue.study_catalogue`, the same
builders the pages draw with.

Each format stands on its own. The HTML report is built (and, by
:func:`export_study`, written) before any browser starts; a format that fails (no
browser, a browser that never answers, a figure that does not render, a full
disk) is recorded with its one-line reason in :attr:`Export.failed` while the
others are still made and kept. Every file is written through
:func:`analysis.atomic.write_atomic`, so each file on disk is whole.
"""

from __future__ import annotations

import io
import os
import time
import zipfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from analysis.atomic import write_atomic
from analysis.errors import PrunescopeError, SpecError
from analysis.store import Store
from analysis.study import StudySpec
from dashboard.export.common import (
    DECK,
    FIGURES,
    FORMATS,
    REPORT,
    STATIC,
    Progress,
    no_progress,
)
from dashboard.export.deck import pptx_deck
from dashboard.export.images import IMAGE_WIDTH, Job, Outcome, render_each, require_browser
from dashboard.export.report import html_report
from dashboard.figures.catalogue import study_catalogue
from dashboard.figures.items import FigureItem
from dashboard.figures.theme import NORMAL, PRESENTATION, Theme
from dashboard.results import Reader

#: ``keep(format, files)``: called as each format is done; raising PrunescopeError fails it.
Keep = Callable[[str, dict[str, bytes]], None]


# -- what is left out ----------------------------------------------------------------


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
    records += list(conn.get("curves", []))
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


# -- building ------------------------------------------------------------------------


@dataclass
class Export:
    """Built outputs: file name (relative) -> content, and each failed format's reason."""

    files: dict[str, bytes] = field(default_factory=dict)
    missing: list[str] = field(default_factory=list)
    figures: int = 0
    failed: dict[str, str] = field(default_factory=dict)

    @property
    def report(self) -> bytes | None:
        """The HTML report, if it was made."""
        return self.files.get(REPORT)

    @property
    def deck(self) -> bytes | None:
        """The PPTX deck, if it was made."""
        return self.files.get(DECK)

    @property
    def has_images(self) -> bool:
        """Whether any PNG or SVG file was made."""
        return any(name.startswith(f"{FIGURES}/") for name in self.files)

    def zip_images(self) -> bytes:
        """The PNG/SVG files as one zip archive (for a single download)."""
        out = io.BytesIO()
        with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
            for name, data in self.files.items():
                if name.startswith(f"{FIGURES}/"):
                    archive.writestr(name, data)
        return out.getvalue()


def _first_line(err: BaseException) -> str:
    """The first line of an error's message."""
    return (str(err).strip().splitlines() or [type(err).__name__])[0]


class _Formats:
    """Where finished formats go: kept (``keep`` first) or recorded as failed."""

    def __init__(self, out: Export, keep: Keep | None):
        """Record into ``out``; hand each finished format to ``keep`` first."""
        self.out, self.keep = out, keep

    def done(self, fmt: str, files: dict[str, bytes]) -> None:
        """Keep a finished format; if ``keep`` cannot (a failed write), the format failed."""
        try:
            if self.keep is not None:
                self.keep(fmt, files)
        except PrunescopeError as err:
            self.fail(fmt, err)
            return
        self.out.files.update(files)

    def fail(self, fmt: str, reason: BaseException | str) -> None:
        """Record why ``fmt`` was not made (the first reason wins)."""
        text = reason if isinstance(reason, str) else _first_line(reason)
        self.out.failed.setdefault(fmt, text)


def _render_formats(
    groups: dict[str, list[Job]],
    formats: _Formats,
    *,
    summary: dict,
    deck_items: list[FigureItem],
    browser: str,
    progress: Progress,
    offset: int,
    total: int,
) -> None:
    """Render every static format in one browser session; each is kept as soon as it is done."""
    owner = [fmt for fmt, jobs in groups.items() for _ in jobs]
    results: dict[str, list[Outcome]] = {fmt: [] for fmt in groups}

    def complete(fmt: str) -> None:
        """Every image of ``fmt`` has landed: keep the format, or say why it failed."""
        errors = [o for o in results[fmt] if isinstance(o, PrunescopeError)]
        if errors:
            more = f" (and {len(errors) - 1} more figures)" if len(errors) > 1 else ""
            formats.fail(fmt, f"{_first_line(errors[0])}{more}")
        elif fmt == "pptx":
            progress("pptx deck", offset + len(owner), total)
            try:
                deck = pptx_deck(deck_items, summary, results[fmt])  # type: ignore[arg-type]
            except (PrunescopeError, OSError) as err:
                formats.fail(fmt, f"building the deck failed: {_first_line(err)}")
                return
            formats.done(fmt, {DECK: deck})
        else:
            names = [job[0] for job in groups[fmt]]
            formats.done(
                fmt,
                {f"{FIGURES}/{n}.{fmt}": im for n, im in zip(names, results[fmt], strict=True)},
            )

    def landed(index: int, outcome: Outcome) -> None:
        """One image is done; a format whose last image this is is complete."""
        fmt = owner[index]
        results[fmt].append(outcome)
        if len(results[fmt]) == len(groups[fmt]):
            complete(fmt)

    for fmt in [f for f, jobs in groups.items() if not jobs]:
        complete(fmt)  # nothing to render (no figures): done at once
    jobs = [job for group in groups.values() for job in group]
    try:
        render_each(
            jobs, browser=browser, progress=progress, offset=offset, total=total, landed=landed
        )
    except PrunescopeError as err:  # the browser never served: every unfinished format failed
        for fmt in groups:
            if len(results[fmt]) < len(groups[fmt]):
                formats.fail(fmt, err)


def _image_jobs(
    static: list[str], items: list[FigureItem], deck_items: list[FigureItem], theme: Theme
) -> dict[str, list[Job]]:
    """The images each static format needs: PNG/SVG in ``theme``'s width, the deck's PNGs wider."""
    width = IMAGE_WIDTH[theme.name]
    groups = {f: [(i.name, i.figure, f, width) for i in items] for f in static if f != "pptx"}
    if "pptx" in static:
        width = IMAGE_WIDTH["presentation"]
        groups["pptx"] = [(i.name, i.figure, "png", width) for i in deck_items]
    return groups


def build_export(
    summary: dict,
    reader: Reader,
    formats: Iterable[str] = FORMATS,
    *,
    theme: Theme = NORMAL,
    progress: Progress = no_progress,
    browser: str | None = None,
    keep: Keep | None = None,
) -> Export:
    """Build every requested format (read-only: nothing is computed); each failure is its own.

    HTML, PNG and SVG use ``theme``; the deck always uses the presentation theme.
    ``keep(format, files)`` hears each format as soon as it is done (the HTML report
    before any browser starts). A format that could not be made is in
    ``Export.failed`` with its one-line reason; the others are still made.

    Raises:
        SpecError: an unknown format.
        PrunescopeError: nothing of the study is computed, so there is nothing to export.
    """
    formats = check_formats(formats)
    counts = summary["counts"]
    if not counts["cached"]:
        raise PrunescopeError(
            f"nothing to export: none of the {counts['runs']} runs of study "
            f"{summary['study']['name']!r} is computed in {summary['study']['cache_dir']}; "
            "run `prunescope compute STUDY.toml` first"
        )
    out = Export(missing=missing_parts(summary))
    sink = _Formats(out, keep)
    static = [f for f in formats if f in STATIC]
    if static:
        try:
            browser = browser or require_browser()  # fail before the slow work, not after it
        except PrunescopeError as err:
            for fmt in static:
                sink.fail(fmt, err)
            static = []
    items = study_catalogue(summary, reader, theme, progress)
    out.figures = len(items)
    deck_items: list[FigureItem] = []
    if "pptx" in static:
        deck_items = items if theme == PRESENTATION else study_catalogue(
            summary, reader, PRESENTATION
        )  # fmt: skip
    groups = _image_jobs(static, items, deck_items, theme)
    n_jobs = sum(len(g) for g in groups.values())
    total = n_jobs + ("html" in formats) + ("pptx" in static)
    if "html" in formats:
        progress("html report", 0, total)
        sink.done("html", {REPORT: html_report(items, summary, missing=out.missing).encode()})
    if groups:
        _render_formats(
            groups, sink, summary=summary, deck_items=deck_items, browser=browser,
            progress=progress, offset=int("html" in formats), total=total,
        )  # fmt: skip
    out.failed = {f: out.failed[f] for f in FORMATS if f in out.failed}
    progress("done", total, total)
    return out


# -- writing -------------------------------------------------------------------------


@dataclass
class ExportReport:
    """What an export wrote, what it could not include, and which formats failed (and why)."""

    out_dir: Path
    written: list[Path]
    missing: list[str]
    figures: int
    seconds: float
    failed: dict[str, str] = field(default_factory=dict)


def export_study(
    study: StudySpec | str | os.PathLike,
    store: Store,
    out_dir: str | os.PathLike,
    formats: Iterable[str] = FORMATS,
    *,
    theme: Theme = NORMAL,
    progress: Progress = no_progress,
    data_root: str | None = None,
    browser: str | None = None,
) -> ExportReport:
    """Export a study's cached results to ``out_dir``, writing each format as soon as it is done.

    A study file is loaded with its dataset fallback. A format that fails (see
    :func:`build_export`), including one whose files cannot be written (disk full,
    read-only folder), is in ``ExportReport.failed``; the others are written.

    Raises:
        SpecError: an unknown format.
        PrunescopeError: nothing of the study is computed.
    """
    from analysis import plan
    from analysis.study import load_study, with_available_data

    start = time.perf_counter()
    if not isinstance(study, StudySpec):
        study, _ = with_available_data(load_study(study), data_root)
    summary = plan.summarize(study, store)
    out = Path(out_dir)
    written: list[Path] = []

    def write(fmt: str, files: dict[str, bytes]) -> None:
        """Write one format's files (each atomically); a failed write raises StoreError."""
        for name, data in files.items():
            written.append(write_atomic(out / name, data, what=f"the {fmt} export"))

    built = build_export(
        summary, Reader(study, store), formats, theme=theme, progress=progress, browser=browser,
        keep=write,
    )  # fmt: skip
    seconds = time.perf_counter() - start
    return ExportReport(out, written, built.missing, built.figures, seconds, built.failed)
