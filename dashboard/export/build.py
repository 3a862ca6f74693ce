"""A whole study's export: which formats, what is missing, each format built and kept on its own.

Used by ``prunescope export STUDY.toml --out DIR`` and by the dashboard's Export
page; no streamlit here. Everything is read from the store (never computed): the
figures come from :func:`.catalogue.export_catalogue`, the same builders the
pages draw with, for the runs a view shows (:mod:`.view`) and the figures picked.

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
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import dashboard.export.view as views
from analysis.atomic import write_atomic
from analysis.errors import PrunescopeError, SpecError
from analysis.store import Store
from analysis.study import StudySpec
from dashboard.export.catalogue import check_barrier, export_catalogue, listing, pick
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
from dashboard.export.sections import DEFAULT_BARRIER, TableItem, barrier_words
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


# -- what to export ------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class Choice:
    """What of a study to export: its runs, its figures, the barrier, seeds grouped or not.

    ``runs``: the run records shown (None: every run; see :mod:`.view`).
    ``figures``: names, sections or globs (``prunescope export --list``; empty: all).
    ``barrier``: the one barrier definition every figure uses.
    ``grouped``: methods as the mean over seeds (None: when a method has several seeds).
    """

    runs: tuple[dict, ...] | None = None
    figures: tuple[str, ...] = ()
    barrier: str = DEFAULT_BARRIER
    grouped: bool | None = None

    def __post_init__(self) -> None:
        """Reject an unknown barrier at once, before any figure is drawn."""
        check_barrier(self.barrier)


def chosen_items(
    summary: dict,
    reader: Reader,
    theme: Theme,
    choice: Choice = Choice(),
    progress: Progress = no_progress,
) -> tuple[dict, list[FigureItem], list[str]]:
    """(the summary narrowed to the chosen runs, the chosen figures, the words that say so).

    Raises:
        SpecError: a figure name that names nothing, or an unknown barrier.
    """
    runs = list(summary["runs"] if choice.runs is None else choice.runs)
    narrow = views.narrowed(summary, runs)
    several = views.grouped(views.Filters(grouped=choice.grouped), runs)
    items = export_catalogue(
        narrow, reader, theme, barrier=choice.barrier, grouped=several, progress=progress
    )
    notes = [f"Runs: {views.describe(summary, runs)}"]
    if several:
        notes.append("Methods: mean over seeds, 95% interval (Student t)")
    notes.append(f"Barrier: {barrier_words(choice.barrier)}")
    return narrow, pick(items, choice.figures), notes


# -- building ------------------------------------------------------------------------


def _something_computed(summary: dict, choice: Choice) -> None:
    """Raise PrunescopeError when none of the study's (or the chosen) runs is computed."""
    counts, info = summary["counts"], summary["study"]
    if not counts["cached"]:
        raise PrunescopeError(
            f"nothing to export: none of the {counts['runs']} runs of study "
            f"{info['name']!r} is computed in {info['cache_dir']}; "
            "run `prunescope compute STUDY.toml` first"
        )
    if choice.runs is not None and not any(r["status"] == "cached" for r in choice.runs):
        raise PrunescopeError(
            f"nothing to export: none of the {len(choice.runs)} runs chosen is computed "
            f"({counts['cached']} of the study's {counts['runs']} are); widen the filters"
        )


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
    notes: list[str],
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
                deck = pptx_deck(deck_items, summary, results[fmt], notes=notes)  # type: ignore[arg-type]
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
    if "pptx" in static:  # a table is a native table on its slide: no image
        width = IMAGE_WIDTH["presentation"]
        groups["pptx"] = [
            (i.name, i.figure, "png", width) for i in deck_items if not isinstance(i, TableItem)
        ]
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
    choice: Choice = Choice(),
) -> Export:
    """Build every requested format (read-only: nothing is computed); each failure is its own.

    ``choice`` says which runs and figures, in which barrier (default: all, Entezari's).
    HTML, PNG and SVG use ``theme``; the deck always uses the presentation theme.
    ``keep(format, files)`` hears each format as soon as it is done (the HTML report
    before any browser starts). A format that could not be made is in
    ``Export.failed`` with its one-line reason; the others are still made.

    Raises:
        SpecError: an unknown format, or a figure name that names no figure.
        PrunescopeError: nothing of the study (or of the chosen runs) is computed.
    """
    formats = check_formats(formats)
    _something_computed(summary, choice)
    narrow, items, notes = chosen_items(summary, reader, theme, choice, progress)
    out = Export(missing=missing_parts(narrow))
    sink = _Formats(out, keep)
    static = [f for f in formats if f in STATIC]
    if static:
        try:
            browser = browser or require_browser()  # fail before the slow work, not after it
        except PrunescopeError as err:
            for fmt in static:
                sink.fail(fmt, err)
            static = []
    out.figures = len(items)
    deck_items: list[FigureItem] = []
    if "pptx" in static:
        deck_items = items if theme == PRESENTATION else chosen_items(
            summary, reader, PRESENTATION, choice
        )[1]  # fmt: skip
    groups = _image_jobs(static, items, deck_items, theme)
    n_jobs = sum(len(g) for g in groups.values())
    total = n_jobs + ("html" in formats) + ("pptx" in static)
    if "html" in formats:
        progress("html report", 0, total)
        page = html_report(items, narrow, missing=out.missing, notes=notes)
        sink.done("html", {REPORT: page.encode()})
    if groups:
        _render_formats(
            groups, sink, summary=narrow, deck_items=deck_items, notes=notes, browser=browser,
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


def choose(
    summary: dict,
    filters: views.Filters | None = None,
    figures: Sequence[str] = (),
    barrier: str = DEFAULT_BARRIER,
    *,
    strict: bool = True,
) -> Choice:
    """The :class:`Choice` of the runs ``filters`` keep (see :func:`.view.select`).

    Raises:
        SpecError: ``strict`` and a filter value the study does not have, or an unknown barrier.
    """
    filters = filters or views.Filters()
    runs = views.select(summary, filters, strict=strict)
    every = len(runs) == len(summary["runs"])
    return Choice(
        runs=None if every else tuple(runs), figures=tuple(figures), barrier=barrier,
        grouped=filters.grouped,
    )  # fmt: skip


def _summary(study: StudySpec | str | os.PathLike, store: Store, data_root: str | None):
    """(the study, its summary); a study file is loaded with its dataset fallback."""
    from analysis import plan
    from analysis.study import load_study, with_available_data

    if not isinstance(study, StudySpec):
        study, _ = with_available_data(load_study(study), data_root)
    return study, plan.summarize(study, store)


def figure_list(
    study: StudySpec | str | os.PathLike,
    store: Store,
    filters: views.Filters | None = None,
    barrier: str = DEFAULT_BARRIER,
    *,
    data_root: str | None = None,
) -> list[str]:
    """One line per figure the view can export (``prunescope export --list``): name, title.

    Raises:
        SpecError: a filter value the study does not have, or an unknown barrier.
    """
    study, summary = _summary(study, store, data_root)
    choice = choose(summary, filters, (), barrier)
    return listing(chosen_items(summary, Reader(study, store), NORMAL, choice)[1])


def export_study(
    study: StudySpec | str | os.PathLike,
    store: Store,
    out_dir: str | os.PathLike | None,
    formats: Iterable[str] = FORMATS,
    *,
    theme: Theme = NORMAL,
    progress: Progress = no_progress,
    data_root: str | None = None,
    browser: str | None = None,
    filters: views.Filters | None = None,
    figures: Sequence[str] = (),
    barrier: str = DEFAULT_BARRIER,
    strict: bool = True,
) -> ExportReport:
    """Export a study's cached results to ``out_dir``, writing each format as soon as it is done.

    ``filters`` keep runs as the dashboard's sidebar does (``strict``: a value the
    study does not have is an error); ``figures`` picks figures by name, section or
    glob; ``barrier`` is the one barrier definition of every figure. A format that
    fails (see :func:`build_export`), including one whose files cannot be written
    (disk full, read-only folder), is in ``ExportReport.failed``; the others are written.

    Raises:
        SpecError: no ``out_dir``; an unknown format, figure, barrier or filter value.
        PrunescopeError: nothing of the study (or of the chosen runs) is computed.
    """
    if out_dir is None:
        raise SpecError("out", "a folder to write into (or --list)", None, owner="export")
    start = time.perf_counter()
    study, summary = _summary(study, store, data_root)
    choice = choose(summary, filters, figures, barrier, strict=strict)
    out = Path(out_dir)
    written: list[Path] = []

    def write(fmt: str, files: dict[str, bytes]) -> None:
        """Write one format's files (each atomically); a failed write raises StoreError."""
        for name, data in files.items():
            written.append(write_atomic(out / name, data, what=f"the {fmt} export"))

    built = build_export(
        summary, Reader(study, store), formats, theme=theme, progress=progress, browser=browser,
        keep=write, choice=choice,
    )  # fmt: skip
    seconds = time.perf_counter() - start
    return ExportReport(out, written, built.missing, built.figures, seconds, built.failed)
