"""The dependency graph: the jobs a list of specs needs, dependencies first."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from analysis import api
from analysis.errors import PrunescopeError
from analysis.specs import spec_key


def label_of(spec: Any) -> str:
    """A spec's human label (its kind when it has none)."""
    return getattr(spec, "label", spec.kind)


def is_spec(value: Any) -> bool:
    """Whether ``value`` is a stored spec (a dataclass instance with a ``kind``)."""
    return (
        dataclasses.is_dataclass(value)
        and not isinstance(value, type)
        and isinstance(getattr(value, "kind", None), str)
    )


# ---------------------------------------------------------------------------
# the dependency graph


def _nested(value: Any) -> Iterable[Any]:
    """Specs nested in ``value`` (a field's value), not descending into the specs found."""
    if is_spec(value):
        yield value
    elif dataclasses.is_dataclass(value) and not isinstance(value, type):
        for f in dataclasses.fields(value):
            yield from _nested(getattr(value, f.name))
    elif isinstance(value, tuple | list):
        for v in value:
            yield from _nested(v)


def dependencies(spec: Any) -> list[Any]:
    """The specs ``spec`` needs first: nested in its fields, or fetched by its kind's compute.

    What a kind's compute function fetches for itself is declared in its
    :class:`analysis.api.Kind` record (``fetches``); runs ask their sparsity
    method (``Method.prerequisites``).

    Direct dependencies only (their own come from calling this on them),
    deduplicated by key, in field order.
    """
    found: dict[str, Any] = {}
    for f in dataclasses.fields(spec):
        for dep in _nested(getattr(spec, f.name)):
            found.setdefault(spec_key(dep), dep)
    for dep in api.kind_of(spec).fetches(spec):
        found.setdefault(spec_key(dep), dep)
    found.pop(spec_key(spec), None)
    return list(found.values())


@dataclass(frozen=True)
class Job:
    """One unit of work: compute ``spec``, or (``rows`` set) fill those rows of its grid."""

    spec: Any
    key: str
    deps: tuple[str, ...] = ()
    rows: tuple[int, int] | None = None

    @property
    def id(self) -> str:
        """Unique id in a graph: the spec key, plus the row range of a chunk."""
        return self.key if self.rows is None else f"{self.key}:rows{self.rows[0]}-{self.rows[1]}"

    @property
    def label(self) -> str:
        """Human label (a chunk names its rows)."""
        if self.rows is None:
            return label_of(self.spec)
        return f"{label_of(self.spec)} [rows {self.rows[0]}-{self.rows[1] - 1}]"


def plan_jobs(specs: Iterable[Any], *, chunks: int = 1) -> list[Job]:
    """Every job needed for ``specs``, dependencies first (a topological order).

    ``chunks`` > 1 splits each 2-D surface into that many row chunks (at least
    one row each) that run before the job assembling the surface.
    """
    jobs: dict[str, Job] = {}
    visiting: set[str] = set()

    def visit(spec: Any) -> str:
        key = spec_key(spec)
        if key in jobs:
            return key
        if key in visiting:  # specs are immutable values, so this would be a bug
            raise PrunescopeError(f"dependency cycle through {spec.kind} {label_of(spec)}")
        visiting.add(key)
        deps = tuple(visit(d) for d in dependencies(spec))
        rows_of = api.kind_of(spec).rows
        rows = rows_of(spec) if rows_of is not None else None
        chunk_ids: list[str] = []
        if rows and chunks > 1:
            size = math.ceil(rows / min(chunks, rows))
            for start in range(0, rows, size):
                chunk = Job(spec=spec, key=key, deps=deps, rows=(start, min(start + size, rows)))
                jobs[chunk.id] = chunk
                chunk_ids.append(chunk.id)
        jobs[key] = Job(spec=spec, key=key, deps=deps + tuple(chunk_ids))
        visiting.discard(key)
        return key

    for spec in specs:
        visit(spec)
    return list(jobs.values())
