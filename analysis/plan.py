"""What a study asks for: the specs of each part, computing them, and the JSON summary.

A part (``runs``, and one per analysis: the :class:`analysis.api.Analysis` records
listed in :mod:`analysis.parts`) turns a study into the list of specs it needs
and summarises the cached results into one section of ``prunescope show --json``
(schema: ``docs/summary.md``). Computing a study hands its specs to an
executor (:mod:`analysis.executor`: in-process by default, or a process pool, or
Ray), which computes them and what they depend on; a failed job is recorded and
reported, and the rest of the study goes on.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from analysis.api import Progress, no_progress
from analysis.group_stats import group_statistics
from analysis.live import LiveFile
from analysis.parts import PARTS
from analysis.store import Store
from analysis.study import StudySpec

if TYPE_CHECKING:
    from analysis.executor import Executor

#: JSON summary schema version (docs/summary.md); bump on an incompatible change.
SUMMARY_SCHEMA = 1


@dataclass
class Report:
    """What a compute pass did."""

    done: int = 0
    cached: int = 0
    failed: list[tuple[str, str]] = field(default_factory=list)
    seconds: float = 0.0


def study_specs(study: StudySpec, only: str | None = None) -> list[Any]:
    """Every spec of the study (or of one part), in dependency-friendly order."""
    names = [only] if only else list(PARTS)
    out = []
    for name in names:
        out.extend(PARTS[name].specs(study))
    return out


def compute_study(
    study: StudySpec,
    store: Store,
    *,
    only: str | None = None,
    progress: Progress = no_progress,
    log: Callable[[str], None] = lambda _msg: None,
    executor: Executor | None = None,
) -> Report:
    """Compute (or find cached) every spec of the study; failures are reported, not fatal.

    ``executor`` (default: in this process, one job at a time) runs the specs
    and everything they depend on; see :mod:`analysis.executor`. While it runs,
    its progress is in the store's live file (:mod:`analysis.live`), which the
    dashboard reads, and a cancel request there stops it.

    Raises:
        Cancelled: a cancel request reached it (a ``KeyboardInterrupt``); every
            result finished before it stays in the store.
    """
    from analysis.executor import InProcess

    executor = executor if executor is not None else InProcess()
    specs = study_specs(study, only)
    with LiveFile(store.root, study=study.name, part=only, progress=progress, log=log) as live:
        result = executor.run(specs, store, progress=live, log=live.log)
    report = Report(seconds=result.seconds)
    for key in dict.fromkeys(result.asked):
        outcome = result.jobs[key]
        if outcome.status == "cached":
            report.cached += 1
        elif outcome.status == "done":
            report.done += 1
        else:
            report.failed.append((outcome.label, outcome.error))
    return report


def summarize(study: StudySpec, store: Store) -> dict:
    """The machine-readable summary of everything the study has computed."""
    doc: dict = {
        "schema": SUMMARY_SCHEMA,
        "study": {
            "name": study.name,
            "description": study.description,
            "dataset": study.data.name,
            "arch": study.model.arch,
            "axes": {a.name: list(a.values) for a in study.axes},
            "settings": [dict(s.values) for s in study.settings()],
            "seeds": list(study.seeds),
            "objectives": list(study.objectives),
            "cache_dir": str(store.root),
        },
    }
    for name, part in PARTS.items():
        doc[name] = part.summarize(study, store)
    doc["groups"] = group_statistics(doc)
    runs = doc["runs"]
    doc["counts"] = {
        "runs": len(runs),
        "cached": sum(r["status"] == "cached" for r in runs),
        "missing": sum(r["status"] == "missing" for r in runs),
        "failed": sum(r["status"] == "failed" for r in runs),
    }
    return doc
