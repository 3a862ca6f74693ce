"""What a worker runs: a job sent as JSON (never a pickle), its record sent back."""

from __future__ import annotations

import contextlib
import dataclasses
import importlib
import math
import os
import time
import traceback
from typing import Any

from analysis import api, parts
from analysis import device as devices
from analysis.api import no_progress
from analysis.errors import PrunescopeError
from analysis.executor.graph import Job
from analysis.specs import canonical_json, from_dict, spec_key, to_canonical
from analysis.store import Store

#: Seconds between two progress messages of one task from a worker (the last always goes).
PROGRESS_INTERVAL = 0.25
#: Task name of the message a worker sends as it starts a job: (STARTED, job id, pid).
STARTED = "\0started"


#: Every analysis's kinds are installed wherever a worker runs (pool, spawn, Ray).
INSTALLED = parts.ANALYSES


def fill_rows(spec: Any, ctx: api.Context, rows: range) -> list[int]:
    """Compute ``rows`` of the grid of ``spec`` (its kind's ``fill_rows``) into the store.

    Raises:
        PrunescopeError: the kind of ``spec`` does not split into rows.
    """
    fill = api.kind_of(spec).fill_rows
    if fill is None:
        raise PrunescopeError(f"{spec.kind} results do not split into rows")
    return fill(spec, ctx, rows)


def spec_payload(spec: Any) -> dict:
    """A spec as JSON-able data: its kind, its class's module and name, its canonical fields."""
    cls = type(spec)
    return {
        "kind": spec.kind,
        "module": cls.__module__,
        "class": cls.__qualname__,
        "fields": to_canonical(spec),
        "key": spec_key(spec),
    }


def spec_from_payload(payload: dict) -> Any:
    """Rebuild a spec from :func:`spec_payload` (validated, and checked against its key).

    The spec class is the installed kind's (:mod:`analysis.parts`); a kind that is
    not installed here (a kind a test or a plug-in declares) is installed by
    importing the module that declares its spec class, named in the payload.

    Raises:
        PrunescopeError: the payload names no spec class, or the rebuilt spec's
            key differs from the key sent.
    """
    kind = api.KINDS.get(payload.get("kind", ""))
    if kind is not None and kind.spec.__qualname__ == payload["class"]:
        cls = kind.spec
    else:
        module = importlib.import_module(payload["module"])
        cls = getattr(module, payload["class"], None)
    if cls is None or not dataclasses.is_dataclass(cls) or not isinstance(cls.kind, str):
        raise PrunescopeError(f"{payload['module']}.{payload['class']} is not a spec class")
    spec = from_dict(cls, payload["fields"])
    if spec_key(spec) != payload["key"]:
        raise PrunescopeError(
            f"{cls.__name__} rebuilt from JSON has key {spec_key(spec)[:12]}, sent "
            f"{payload['key'][:12]}: {canonical_json(spec)}"
        )
    return spec


def job_payload(
    job: Job, store: Store, threads: int, *, device: str = "cpu", announce: bool = False
) -> dict:
    """Everything a worker needs to run ``job`` (small, JSON-able).

    ``device``: where the worker computes it (``cuda:1``; on Ray, ``cuda`` is the
    GPU Ray gave the task). ``announce``: the worker first reports (STARTED, job
    id, its pid) on the progress queue.
    """
    return {
        "spec": spec_payload(job.spec),
        "id": job.id,
        "label": job.label,
        "announce": announce,
        "rows": list(job.rows) if job.rows else None,
        "root": str(store.root.resolve()),
        "threads": threads,
        "device": device,
    }


class _Sender:
    """A worker's progress callback: forwards ``(task, done, total)`` to a queue, throttled."""

    def __init__(self, queue: Any):
        self.queue = queue
        self.last: dict[str, float] = {}

    def __call__(self, task: str, done: float, total: float) -> None:
        """Send unless the same task sent less than PROGRESS_INTERVAL ago (a finish always goes)."""
        now = time.monotonic()
        if total and done >= total or now - self.last.get(task, -math.inf) >= PROGRESS_INTERVAL:
            self.last[task] = now
            with contextlib.suppress(Exception):  # progress is best effort, never a failure
                self.queue.put_nowait((task, done, total))


def _naming(label: str, error: str) -> str:
    """An error message that names the job (compute errors already start with its label)."""
    return error if error.startswith(label) else f"{label} failed: {error}"


def run_job(payload: dict, queue: Any = None) -> dict:
    """Run one job in a worker; return its small record (never arrays).

    A compute error is caught and returned as ``status='failed'`` (it would fail
    again: not retried); only a dying worker makes this raise or vanish.
    """
    import torch

    torch.set_num_threads(payload["threads"])
    device = devices.use(payload.get("device", "cpu"))
    if queue is not None and payload.get("announce"):  # the pool names a crash's culprit by pid
        with contextlib.suppress(Exception):
            queue.put_nowait((STARTED, payload["id"], os.getpid()))
    start = time.perf_counter()
    record: dict = {"key": payload["spec"]["key"], "rows": payload["rows"], "error": ""}
    try:
        spec = spec_from_payload(payload["spec"])
        store = Store(payload["root"])
        progress = _Sender(queue) if queue is not None else no_progress
        if api.exists(spec, store):
            record["status"] = "cached"
        elif payload["rows"]:
            start_row, stop_row = payload["rows"]
            ctx = api.Context(store=store, progress=progress, device=device)
            fill_rows(spec, ctx, range(start_row, stop_row))
            record["status"] = "done"
        else:
            _, computed = api.ensure(spec, store=store, progress=progress, device=device)
            record["status"] = "done" if computed else "cached"  # another process did it
    except PrunescopeError as err:
        record.update(status="failed", error=_naming(payload["label"], str(err)))
    except Exception as err:  # a bug in a compute function: deterministic, reported with its place
        where = " | ".join(traceback.format_exc(limit=-2).strip().splitlines())
        error = f"{type(err).__name__}: {err} ({where})"
        record.update(status="failed", error=_naming(payload["label"], error))
    record["seconds"] = time.perf_counter() - start
    return record
