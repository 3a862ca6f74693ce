"""The export's catalogue: every figure of a view by a stable name, and picking some by name.

Names are file-safe slugs, the same for the same study and view (they name the
PNG/SVG files): ``overview-accuracy``, ``sweeps-barrier-width``,
``ranking-90``, ``representations-ce-cka-2`` (the second block of a split
figure). ``prunescope export --list`` prints them; ``--figures`` picks some.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Callable, Sequence

import dashboard.export.sections as sections
from analysis.errors import PrunescopeError, SpecError
from dashboard.export.common import Progress, no_progress
from dashboard.figures import connectivity as fconn
from dashboard.figures.catalogue import sections as figure_sections
from dashboard.figures.items import FigureItem
from dashboard.figures.theme import Theme
from dashboard.results import Reader

#: The barrier definitions a figure can be drawn in.
BARRIERS = tuple(fconn.BARRIERS)


def check_barrier(barrier: str) -> str:
    """``barrier`` if it is a known definition; else a SpecError listing them."""
    if barrier not in BARRIERS:
        raise SpecError("barrier", f"one of {', '.join(BARRIERS)}", barrier, owner="export")
    return barrier


def _sections(
    reader: Reader, theme: Theme, barrier: str, grouped: bool
) -> dict[str, Callable[[dict], list[FigureItem]]]:
    """Every section in deck order: the export's own, then the figures' catalogue's others."""
    own: dict[str, Callable[[dict], list[FigureItem]]] = {
        "Overview": lambda s: sections.overview(s, reader, theme, grouped),
        "Sweeps": lambda s: sections.sweeps(s, theme, barrier, grouped),
        "Ranking": lambda s: sections.ranking(s, theme, barrier),
        "Representations": lambda s: sections.representations(s, reader, theme),
        "Connectivity": lambda s: sections.connectivity(s, theme, barrier),
    }
    out = {name: own[name] for name in ("Overview", "Sweeps", "Ranking")}
    for name, catalogue in figure_sections().items():
        if name in own:
            out[name] = own[name]
        else:
            out[name] = lambda s, c=catalogue: c(s, reader, theme)
    return out


def export_catalogue(
    summary: dict,
    reader: Reader,
    theme: Theme,
    *,
    barrier: str = sections.DEFAULT_BARRIER,
    grouped: bool = False,
    progress: Progress = no_progress,
) -> list[FigureItem]:
    """Every figure the (narrowed) ``summary`` can draw, section by section, large ones split.

    Raises:
        SpecError: an unknown ``barrier``.
        PrunescopeError: two figures with one name (a bug in a section).
    """
    check_barrier(barrier)
    found = _sections(reader, theme, barrier, grouped)
    items: list[FigureItem] = []
    for i, (title, build) in enumerate(found.items()):
        progress(f"figures: {title}", i, len(found))
        items.extend(build(summary))
    progress("figures", len(found), len(found))
    names = [item.name for item in items]
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise PrunescopeError(f"figure names must be unique within a study; repeated: {repeated}")
    return items


def matches(item: FigureItem, pattern: str) -> bool:
    """Whether ``pattern`` names ``item``: its name, a name it was split from or that groups
    it (``ranking`` for ``ranking-90``), its section, or a glob (``*-cka*``)."""
    pattern = pattern.strip().lower()
    name = item.name.lower()
    return (
        name == pattern
        or name.startswith(f"{pattern}-")
        or item.section.lower() == pattern
        or fnmatch.fnmatchcase(name, pattern)
    )


def pick(items: Sequence[FigureItem], patterns: Sequence[str]) -> list[FigureItem]:
    """The items ``patterns`` name, in the patterns' order (each once); none given: all.

    Raises:
        SpecError: a pattern that names no figure (the message lists the names there are).
    """
    patterns = [p.strip() for p in patterns if p.strip()]
    if not patterns:
        return list(items)
    unknown = [p for p in patterns if not any(matches(i, p) for i in items)]
    if unknown:
        names = ", ".join(i.name for i in items) or "none (nothing is computed for this view)"
        raise SpecError(
            "figures", f"names of this view's figures (prunescope export --list): {names}",
            ",".join(unknown), owner="prunescope export",
        )  # fmt: skip
    chosen: dict[str, FigureItem] = {}
    for pattern in patterns:
        for item in items:
            if matches(item, pattern):
                chosen.setdefault(item.name, item)
    return list(chosen.values())


def listing(items: Sequence[FigureItem]) -> list[str]:
    """One line per figure: its name, padded, then its section and title."""
    width = max((len(i.name) for i in items), default=0)
    return [f"{i.name:<{width}}  {i.section}: {i.title}" for i in items]
