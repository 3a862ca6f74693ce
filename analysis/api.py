"""One entry point for every result: ``get(spec)`` returns it from the store or computes it.

Each analysis declares what it is once, next to its code, as an :class:`Analysis`
record holding one :class:`Kind` record per kind of result it stores: the spec
type, the compute function, the loader, the specs the compute function fetches
for itself, how a grid splits into row chunks and the memory check. The module
:mod:`analysis.parts` imports every analysis explicitly and installs their
records here (:func:`install`); the executor, the planner, the limits and the
study loader read these records and name no analysis.

A compute function is pure: it receives the spec and a :class:`Context` (store
and progress passed in, no global state), asks ``ctx.get`` for the results it
depends on (so a checkpoint is never trained twice), and returns ``(files,
summary)``: the result files to store and a small JSON summary. The loader turns
a verified store entry into the result object.
"""

from __future__ import annotations

import time
import traceback
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

import torch

from analysis import device as devices
from analysis.errors import PrunescopeError, StoreError
from analysis.specs import spec_key
from analysis.store import Entry, Store, check_structure


class Progress(Protocol):
    """Progress callback: ``progress(task, done, total)``; ``total`` 0 means unknown."""

    def __call__(self, task: str, done: float, total: float) -> None: ...


def no_progress(task: str, done: float, total: float) -> None:
    """A progress callback that ignores everything."""


class Study(Protocol):
    """What an analysis reads of a study (``analysis.study.StudySpec`` is one).

    A Protocol, so that analyses need not import the study loader, which
    imports every analysis.
    """

    name: str
    seeds: tuple[int, ...]
    objectives: tuple[str, ...]

    def runs(self) -> list[Any]: ...

    def dense_runs(self) -> list[Any]: ...

    def analysis(self, name: str) -> Any: ...


def entry_result(spec: Any, entry: Entry) -> Entry:
    """Loader for kinds whose result is simply their verified store entry."""
    return entry


def no_fetches(spec: Any) -> list[Any]:
    """A kind whose compute function gets nothing beyond the specs nested in its fields."""
    return []


@dataclass(frozen=True)
class Kind:
    """Everything about one kind of stored result, declared once next to its analysis.

    Attributes:
        name: the store's kind name (``spec.kind``).
        spec: the frozen spec class (its ``kind`` class attribute equals ``name``).
        compute: ``fn(spec, ctx) -> (files, summary)``.
        load: ``fn(spec, entry) -> result`` (default: the store entry itself).
        fetches: ``fn(spec) -> [spec, ...]``: the specs the compute function builds
            and gets itself (not fields of the spec), so an executor can run them
            first, as jobs of their own.
        rows: ``fn(spec) -> int | None``: the rows of a grid that splits into
            row chunks (``None``: it does not split).
        fill_rows: ``fn(spec, ctx, rows: range) -> [row, ...]``: compute some rows
            of the grid into the store's partial folder (with ``rows``).
        memory: ``fn(spec) -> bytes``: refuse ``spec`` before it starts, raising
            :class:`~analysis.errors.PrunescopeError` with the estimate, when it
            would not fit in memory; returns the estimate.
        files: the files an entry must hold, and for JSON files their structure
            (a type, or a tuple of required keys): an entry that differs is
            damaged (:func:`analysis.store.check_structure`), never served.
    """

    name: str
    spec: type
    compute: Callable[[Any, Context], tuple[dict, dict]]
    load: Callable[[Any, Entry], Any] = entry_result
    fetches: Callable[[Any], list[Any]] = no_fetches
    rows: Callable[[Any], int | None] | None = None
    fill_rows: Callable[[Any, Context, range], list[int]] | None = None
    memory: Callable[[Any], int] | None = None
    files: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Analysis:
    """One part of a study (``runs``, or an analysis): its kinds, settings, specs and summary.

    Attributes:
        name: the part's name (``--only NAME``, the summary's section, ``[analyses.NAME]``).
        kinds: the kinds of result it stores.
        specs: ``fn(study) -> [spec, ...]``: every spec a study asks of this part.
        summarize: ``fn(study, store) -> JSON``: its section of ``show --json``.
        settings: the frozen spec class of its ``[analyses.NAME]`` table (None: none).
    """

    name: str
    kinds: tuple[Kind, ...]
    specs: Callable[[Any], list[Any]]
    summarize: Callable[[Any, Store], Any]
    settings: type | None = None


#: Installed kinds by name (filled by :mod:`analysis.parts` through :func:`install`).
KINDS: dict[str, Kind] = {}


def install(kinds: Iterable[Kind]) -> None:
    """Install ``kinds`` so :func:`get` can compute them (:mod:`analysis.parts` installs all).

    Raises:
        PrunescopeError: a different kind of the same name is installed already.
    """
    for kind in kinds:
        known = KINDS.get(kind.name)
        if known is not None and known != kind:
            raise PrunescopeError(f"two analyses declare the kind {kind.name!r}")
        KINDS[kind.name] = kind


def kind_of(spec: Any) -> Kind:
    """The installed :class:`Kind` of ``spec``.

    Raises:
        PrunescopeError: no analysis declares ``spec.kind`` (or :mod:`analysis.parts`
            was not imported, which installs them all).
    """
    kind = KINDS.get(getattr(spec, "kind", None))
    if kind is None:
        raise PrunescopeError(
            f"no analysis declares the kind {getattr(spec, 'kind', spec)!r} "
            "(import analysis.parts, which installs every analysis)"
        )
    return kind


class NotComputed(PrunescopeError):
    """A result was asked for with ``compute=False`` and is not in the store."""


class ComputeFailed(PrunescopeError):
    """Computing a result failed; the failure is recorded in the store."""


@dataclass
class Context:
    """What a compute function may use: the store, progress, nested ``get`` and its device.

    ``device`` is where the computation runs (default: this process's device,
    :func:`analysis.device.current`): models and data go there, results come
    back to the CPU to be stored. It is never part of a result's key.
    """

    store: Store
    progress: Progress = no_progress
    compute: bool = True
    device: torch.device = field(default_factory=devices.current)

    def get(self, spec: Any) -> Any:
        """Get a result this computation depends on (cached or computed, on the same device)."""
        return get(
            spec, store=self.store, progress=self.progress, compute=self.compute, device=self.device
        )

    def check_memory(self, spec: Any) -> None:
        """Refuse ``spec`` before it starts if it would not fit in memory (its kind's check)."""
        memory = kind_of(spec).memory
        if memory is not None:
            memory(spec)


def load_entry(spec: Any, store: Store) -> Entry | None:
    """The verified entry of ``spec`` whose files have its kind's structure, or None.

    A checksum-valid entry of the wrong structure is quarantined like any damage
    (and recomputed when asked for). The check runs once per state of the
    entry's files (the store remembers the entry while no file changes).
    """
    entry = store.load(spec)
    if entry is None or entry.meta.get("_structure_ok"):
        return entry
    files = KINDS[spec.kind].files if spec.kind in KINDS else {}
    problem = check_structure(entry, files) if files else None
    if problem:
        store.quarantine(spec, problem)
        return None
    entry.meta["_structure_ok"] = True
    return entry


def exists(spec: Any, store: Store) -> bool:
    """Whether a whole, well-formed entry of ``spec`` is in the store."""
    return load_entry(spec, store) is not None


def status(spec: Any, store: Store) -> str:
    """'cached', 'failed' or 'missing' for one spec (no computation)."""
    if exists(spec, store):
        return "cached"
    return "failed" if store.failure(spec) else "missing"


def status_record(spec: Any, store: Store) -> dict:
    """The fields every summary record of one spec carries: status, key, (if failed) error
    and (if cached) the device that computed it.

    ``status`` is 'cached', 'failed' or 'missing'; ``error`` is the first line of
    the recorded failure's root cause, so the terminal, the JSON summary and the
    dashboard say why; ``device`` is where it was computed (``cuda:0 (NVIDIA
    H200)``; None for entries older than the record), whichever device asks now.
    """
    entry = load_entry(spec, store)
    record = {
        "status": "cached" if entry else ("failed" if store.failure(spec) else "missing"),
        "key": spec_key(spec),
    }
    if record["status"] == "failed":
        record["error"] = first_line(store.failure(spec) or "")
    if entry is not None:
        record["device"] = computed_on(entry)
    return record


def computed_on(entry: Entry) -> str | None:
    """Where an entry was computed, for people (``cuda:0 (NVIDIA H200)``), from its meta.json."""
    doc = entry.meta.get("device") or {}
    if not doc.get("device"):
        return None
    return f"{doc['device']} ({doc['name']})" if doc.get("name") else doc["device"]


def first_line(message: str) -> str:
    """The first non-empty line of an error message (at most 300 characters)."""
    for line in message.splitlines():
        if line.strip():
            return line.strip()[:300]
    return ""


def get(
    spec: Any,
    *,
    store: Store | None = None,
    progress: Progress | None = None,
    compute: bool = True,
    device: torch.device | None = None,
) -> Any:
    """The result of ``spec``: from the store if there, else computed once and stored.

    ``device``: where a computation runs (default: :func:`analysis.device.current`);
    what was computed on one device is served on every other.

    Raises:
        NotComputed: ``compute`` is False and the result is not in the store.
        ComputeFailed: the computation failed (the failure is recorded first).
        StoreError: the store cannot be read or written (nothing is recorded).
        MemoryLimitError: the spec's memory estimate exceeds the budget.
    """
    store = store if store is not None else Store()
    return kind_of(spec).load(
        spec, ensure(spec, store=store, progress=progress, compute=compute, device=device)[0]
    )


def ensure(
    spec: Any,
    *,
    store: Store,
    progress: Progress | None = None,
    compute: bool = True,
    device: torch.device | None = None,
) -> tuple[Entry, bool]:
    """The verified entry of ``spec`` and whether THIS call computed it (see :func:`get`).

    ``False`` when it was in the store already, or when another process
    finished it while this one waited for its lock: counts printed by
    concurrent ``compute`` commands then say what each one did.
    """
    kind = kind_of(spec)
    entry = load_entry(spec, store)
    if entry is not None:
        return entry, False
    if not compute:
        raise NotComputed(f"{spec.kind} result not computed yet: {getattr(spec, 'label', spec)}")
    progress = progress or no_progress
    with store.lock(spec):
        entry = load_entry(spec, store)  # another process may have finished it meanwhile
        if entry is None:
            ctx = Context(
                store=store, progress=progress, compute=compute, device=device or devices.current()
            )
            start = time.perf_counter()
            try:
                ctx.check_memory(spec)  # refuse what cannot fit before it starts (recorded)
                files, summary = kind.compute(spec, ctx)
            except Exception as err:  # noqa: BLE001  (recorded once, then raised as one line)
                if isinstance(err, StoreError | NotComputed):
                    raise
                message = f"{type(err).__name__}: {err}"
                store.record_failure(spec, message + "\n" + traceback.format_exc(limit=4))
                if isinstance(err, ComputeFailed):
                    raise
                raise ComputeFailed(
                    f"{getattr(spec, 'label', spec.kind)} failed: {message}"
                ) from err
            entry = store.commit(
                spec,
                files,
                seconds=time.perf_counter() - start,
                summary=summary,
                execution=devices.describe(ctx.device),
            )
            store.clear_failure(spec)
            return entry, True
    return entry, False
