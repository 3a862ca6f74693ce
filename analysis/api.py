"""One entry point for every result: ``get(spec)`` returns it from the store or computes it.

Each analysis module registers one compute function and one loader per kind
with :func:`register`. A compute function is pure: it receives the spec and a
:class:`Context` (store and progress passed in, no global state), asks
``ctx.get`` for the results it depends on (so a checkpoint is never trained
twice), and returns ``(files, summary)``: the result files to store and a small
JSON summary. The loader turns a verified store entry into the result object.
"""

from __future__ import annotations

import importlib
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from analysis.errors import PrunescopeError, StoreError
from analysis.store import Entry, Store

#: Modules that register kinds; imported on first use so ``api`` stays light.
KIND_MODULES = (
    "analysis.runs",
    "analysis.representations",
    "analysis.robustness",
    "analysis.connectivity",
    "analysis.landscape",
)


class Progress(Protocol):
    """Progress callback: ``progress(task, done, total)``; ``total`` 0 means unknown."""

    def __call__(self, task: str, done: float, total: float) -> None: ...


def no_progress(task: str, done: float, total: float) -> None:
    """A progress callback that ignores everything."""


@dataclass(frozen=True)
class Kind:
    """How one kind of result is computed and loaded."""

    compute: Callable[[Any, Context], tuple[dict, dict]]
    load: Callable[[Any, Entry], Any]


COMPUTE: dict[str, Kind] = {}


def register(kind: str, *, load: Callable[[Any, Entry], Any]) -> Callable:
    """Decorator: register ``fn(spec, ctx) -> (files, summary)`` as the compute of ``kind``."""

    def wrap(fn: Callable) -> Callable:
        COMPUTE[kind] = Kind(compute=fn, load=load)
        return fn

    return wrap


def entry_result(spec: Any, entry: Entry) -> Entry:
    """Loader for kinds whose result is simply their verified store entry."""
    return entry


def kinds() -> dict[str, Kind]:
    """All registered kinds (importing the analysis modules on first use)."""
    for name in KIND_MODULES:
        importlib.import_module(name)
    return COMPUTE


class NotComputed(PrunescopeError):
    """A result was asked for with ``compute=False`` and is not in the store."""


class ComputeFailed(PrunescopeError):
    """Computing a result failed; the failure is recorded in the store."""


@dataclass
class Context:
    """What a compute function may use: the store, progress, and nested ``get``."""

    store: Store
    progress: Progress = no_progress
    compute: bool = True
    extra: dict = field(default_factory=dict)

    def get(self, spec: Any) -> Any:
        """Get a result this computation depends on (cached or computed)."""
        return get(spec, store=self.store, progress=self.progress, compute=self.compute)

    def check_memory(self, spec: Any) -> None:
        """Refuse ``spec`` before it starts if it would not fit in memory (``analysis.limits``)."""
        from analysis.limits import check_spec

        check_spec(spec)


def status(spec: Any, store: Store) -> str:
    """'cached', 'failed' or 'missing' for one spec (no computation)."""
    if store.exists(spec):
        return "cached"
    return "failed" if store.failure(spec) else "missing"


def get(
    spec: Any,
    *,
    store: Store | None = None,
    progress: Progress | None = None,
    compute: bool = True,
) -> Any:
    """The result of ``spec``: from the store if there, else computed once and stored."""
    store = store if store is not None else Store()
    kind = kinds().get(spec.kind)
    if kind is None:
        raise PrunescopeError(f"no analysis registered for kind {spec.kind!r}")
    entry = store.load(spec)
    if entry is not None:
        return kind.load(spec, entry)
    if not compute:
        raise NotComputed(f"{spec.kind} result not computed yet: {getattr(spec, 'label', spec)}")
    progress = progress or no_progress
    with store.lock(spec):
        entry = store.load(spec)  # another process may have finished it while we waited
        if entry is None:
            ctx = Context(store=store, progress=progress, compute=compute)
            start = time.perf_counter()
            try:
                files, summary = kind.compute(spec, ctx)
            except (PrunescopeError, FloatingPointError, RuntimeError, ValueError) as err:
                if isinstance(err, StoreError | NotComputed):
                    raise
                message = f"{type(err).__name__}: {err}"
                store.record_failure(spec, message + "\n" + traceback.format_exc(limit=4))
                if isinstance(err, ComputeFailed):
                    raise
                raise ComputeFailed(
                    f"{getattr(spec, 'label', spec.kind)} failed: {message}"
                ) from err
            entry = store.commit(spec, files, seconds=time.perf_counter() - start, summary=summary)
            store.clear_failure(spec)
    return kind.load(spec, entry)
