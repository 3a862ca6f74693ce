"""Where specs are computed: in this process, in a local process pool, or on a Ray cluster.

Every back end runs the same schedule. The specs asked for, and every spec they
nest (a connectivity spec holds two runs; see :func:`dependencies`), form a
dependency graph; a job is submitted once all of its dependencies are done, and
when one fails its dependents are reported failed ("because <dep> failed")
without running. A 2-D loss surface is split into row chunks
(:func:`analysis.landscape.fill_rows`) that run as separate jobs filling the
same partial grid in the store, followed by the job that assembles it.

Workers open the store themselves (``Store(root)``: on a cluster, a shared
filesystem mounted at the same path on every node) and send back only a small
record (key, status, seconds, error): results never travel through the driver,
which reads them from the store like everyone else. Specs travel as canonical
JSON (module, class and fields), not as pickles, and the worker checks that the
rebuilt spec has the same key. Every worker pins ``torch.set_num_threads`` to
the driver's value, so its numbers match an in-process run bit for bit.

Failures: a compute error (``ComputeFailed`` or any exception raised by the
computation) is deterministic, so it is reported once with the spec's label and
reason and never retried. A worker that dies (killed, out of memory, segfault)
is retried up to ``retries`` times (Ray's ``max_retries``; the pool is rebuilt
and the lost jobs resubmitted); whatever finished before it died is already
committed to the store and is not lost.

Progress: remote jobs send ``(task, done, total)`` through a queue (a
``multiprocessing`` manager queue for the pool, ``ray.util.queue.Queue`` for
Ray) that the driver drains between waits and forwards to its ``progress``
callback, so the CLI's bars and the dashboard's compute page move.
"""

from __future__ import annotations

import concurrent.futures as cf
import contextlib
import dataclasses
import importlib
import logging
import math
import multiprocessing
import os
import signal
import sys
import time
import traceback
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Literal

from analysis import api
from analysis.api import Progress, no_progress
from analysis.errors import PrunescopeError
from analysis.specs import canonical_json, from_dict, spec_key, to_canonical
from analysis.store import Store

#: Times a job whose worker died is run again before it is reported failed.
DEFAULT_RETRIES = 2
#: Seconds between two progress messages of one task from a worker (the last always goes).
PROGRESS_INTERVAL = 0.25

Status = Literal["done", "cached", "failed"]
#: Task name of the message a worker sends as it starts a job: (STARTED, job id, pid).
STARTED = "\0started"


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


def _run_prerequisites(spec: Any) -> list[Any]:
    """Runs a run's sparsity method fetches from the store while training: the method says which.

    ``Method.prerequisites`` (``analysis/sparsity``); the spec's sparsity is checked
    first (SpecError). ``tests/test_executor.py`` checks these against the gets the
    methods really make.
    """
    from analysis.sparsity import prerequisites

    return prerequisites(spec)


def _representation_prerequisites(spec: Any) -> list[Any]:
    """The features and 2-D/3-D UMAP of every run, one job each (they fan out per run)."""
    from analysis.representations import run_parts

    return [part for fspec, umaps in run_parts(spec) for part in (fspec, *umaps)]


def _instability_prerequisites(spec: Any) -> list[Any]:
    """The dense run of the same seed, whose rewind point a sparse run's copies start from."""
    from analysis.specs import SparsitySpec

    if spec.run.sparsity.method == "dense":
        return []
    return [spec.run.replace(sparsity=SparsitySpec(method="dense", sparsity=0.0))]


#: Specs a kind's compute function builds and gets itself (not fields of the spec):
#: listing them lets them run as jobs of their own, in parallel.
IMPLIED: dict[str, Callable[[Any], list[Any]]] = {
    "run": _run_prerequisites,
    "representations": _representation_prerequisites,
    "instability": _instability_prerequisites,
}


def dependencies(spec: Any) -> list[Any]:
    """The specs ``spec`` needs first: nested in its fields (recursively) or implied by its kind.

    Direct dependencies only (their own come from calling this on them),
    deduplicated by key, in field order.
    """
    found: dict[str, Any] = {}
    for f in dataclasses.fields(spec):
        for dep in _nested(getattr(spec, f.name)):
            found.setdefault(spec_key(dep), dep)
    implied = IMPLIED.get(spec.kind)
    for dep in implied(spec) if implied else ():
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
    from analysis.landscape import grid_rows

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
        rows = grid_rows(spec)
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


# ---------------------------------------------------------------------------
# what a worker runs


def spec_payload(spec: Any) -> dict:
    """A spec as JSON-able data: its class's module and name and its canonical fields."""
    cls = type(spec)
    return {
        "module": cls.__module__,
        "class": cls.__qualname__,
        "fields": to_canonical(spec),
        "key": spec_key(spec),
    }


def spec_from_payload(payload: dict) -> Any:
    """Rebuild a spec from :func:`spec_payload` (validated, and checked against its key)."""
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


def job_payload(job: Job, store: Store, threads: int, *, announce: bool = False) -> dict:
    """Everything a worker needs to run ``job`` (small, JSON-able).

    ``announce``: the worker first reports (STARTED, job id, its pid) on the progress queue.
    """
    return {
        "spec": spec_payload(job.spec),
        "id": job.id,
        "label": job.label,
        "announce": announce,
        "rows": list(job.rows) if job.rows else None,
        "root": str(store.root.resolve()),
        "threads": threads,
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
    if queue is not None and payload.get("announce"):  # the pool names a crash's culprit by pid
        with contextlib.suppress(Exception):
            queue.put_nowait((STARTED, payload["id"], os.getpid()))
    start = time.perf_counter()
    record: dict = {"key": payload["spec"]["key"], "rows": payload["rows"], "error": ""}
    try:
        spec = spec_from_payload(payload["spec"])
        store = Store(payload["root"])
        progress = _Sender(queue) if queue is not None else no_progress
        if store.exists(spec):
            record["status"] = "cached"
        elif payload["rows"]:
            from analysis.landscape import fill_rows

            start_row, stop_row = payload["rows"]
            ctx = api.Context(store=store, progress=progress)
            fill_rows(spec, ctx, range(start_row, stop_row))
            record["status"] = "done"
        else:
            api.get(spec, store=store, progress=progress)
            record["status"] = "done"
    except PrunescopeError as err:
        record.update(status="failed", error=_naming(payload["label"], str(err)))
    except Exception as err:  # a bug in a compute function: deterministic, reported with its place
        where = " | ".join(traceback.format_exc(limit=-2).strip().splitlines())
        error = f"{type(err).__name__}: {err} ({where})"
        record.update(status="failed", error=_naming(payload["label"], error))
    record["seconds"] = time.perf_counter() - start
    return record


# ---------------------------------------------------------------------------
# the schedule (shared by every back end)


@dataclass
class Outcome:
    """What happened to one job."""

    key: str
    label: str
    status: Status
    seconds: float = 0.0
    error: str = ""
    attempts: int = 0


@dataclass
class RunResult:
    """Outcomes of a run of the executor: per job id, and per spec asked for (by key)."""

    jobs: dict[str, Outcome] = field(default_factory=dict)
    asked: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def of(self, spec: Any) -> Outcome:
        """The outcome of ``spec``'s (assembling) job."""
        return self.jobs[spec_key(spec)]


class WorkerLost(PrunescopeError):
    """A worker died while running a job (killed, out of memory, crashed)."""


class Executor(ABC):
    """Runs specs with their dependencies; results land in the store, not in memory.

    ``run(specs, store)`` computes every spec (skipping cached ones) and returns
    a :class:`RunResult`; ``get(spec, store)`` runs one spec and returns its
    result loaded from the store, like :func:`analysis.api.get`.
    """

    #: Jobs that can run at once (row chunks of a surface are made only when > 1).
    parallelism: int = 1
    retries: int = DEFAULT_RETRIES
    #: Row chunks per 2-D surface; 0: twice the parallelism (none when running one job at a time).
    chunks: int = 0

    def __init__(self) -> None:
        import torch

        self.threads = torch.get_num_threads()

    # -- back end hooks ------------------------------------------------------
    @abstractmethod
    def _submit(self, job: Job, store: Store) -> Any:
        """Start ``job``; return a handle."""

    @abstractmethod
    def _wait(self, handles: list[Any], timeout: float) -> list[tuple[Any, dict | Exception]]:
        """Finished handles with their record, or the exception that lost them."""

    def _drain(self, progress: Progress) -> None:
        """Forward the progress messages workers sent since the last call."""

    def _lost(self, handles: list[Any]) -> list[Any]:
        """After a lost worker: handles also lost with it (the pool resubmits them)."""
        return []

    def _culprits(self, jobs: list[Job]) -> set[str]:
        """Of jobs lost together, those whose own worker died (an attempt counts for them)."""
        return {job.id for job in jobs}

    def close(self) -> None:
        """Release the workers."""

    def __enter__(self) -> Executor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- the schedule ----------------------------------------------------------
    def run(
        self,
        specs: Iterable[Any],
        store: Store,
        *,
        progress: Progress = no_progress,
        log: Callable[[str], None] = lambda _msg: None,
    ) -> RunResult:
        """Compute ``specs`` and their dependencies; a failure never stops the others."""
        start = time.perf_counter()
        specs = list(specs)
        result = RunResult(asked=[spec_key(s) for s in specs])
        asked = {k: i for i, k in reversed(list(enumerate(result.asked)))}
        chunks = self.chunks or (self.parallelism * 2 if self.parallelism > 1 else 1)
        jobs = plan_jobs(specs, chunks=chunks)
        waiting = {job.id: job for job in jobs}
        running: dict[Any, Job] = {}
        attempts: dict[str, int] = {}
        checked: set[str] = set()  # ready jobs already found missing from the store
        finished_asked = 0

        def finish(job: Job, outcome: Outcome) -> None:
            nonlocal finished_asked
            result.jobs[job.id] = outcome
            if job.rows is None and job.key in asked:
                finished_asked += 1
                if outcome.status != "cached":
                    word = "done" if outcome.status == "done" else f"FAILED ({outcome.error})"
                    log(f"[{finished_asked}/{len(asked)}] {job.spec.kind} {job.label}: {word}")
                progress("study", finished_asked, len(asked))

        progress("study", 0, len(asked))
        while waiting or running:
            for job in list(waiting.values()):
                failed = [d for d in job.deps if _failed(result.jobs.get(d))]
                if failed:
                    del waiting[job.id]
                    dep = result.jobs[failed[0]]
                    reason = f"{job.label} failed because {dep.label} failed"
                    if job.rows is None:
                        store.record_failure(job.spec, f"{reason}: {dep.error}")
                    finish(job, Outcome(job.key, job.label, "failed", error=reason))
                elif all(d in result.jobs for d in job.deps):
                    if job.id not in checked and store.exists(job.spec):
                        del waiting[job.id]
                        finish(job, Outcome(job.key, job.label, "cached"))
                        continue
                    checked.add(job.id)  # look in the store once, not on every pass
                    if len(running) < max(self.parallelism, 1):
                        del waiting[job.id]
                        attempts[job.id] = attempts.get(job.id, 0) + 1
                        running[self._submit(job, store)] = job
            if not running:
                continue
            finished = self._wait(list(running), timeout=0.1)
            self._drain(progress)  # a job's last progress before its finish
            for handle, record in finished:
                job = running.pop(handle)
                if isinstance(record, Exception):
                    lost = [job] + [running.pop(h) for h in self._lost(list(running))]
                    guilty = self._culprits(lost)
                    for j in lost:
                        if j.id not in guilty:  # lost with a neighbour's broken pool: no attempt
                            attempts[j.id] -= 1
                        if attempts[j.id] <= self.retries and self._resubmits:
                            log(f"{j.label}: worker lost ({record}); retrying")
                            waiting[j.id] = j
                        else:
                            finish(j, self._gave_up(j, attempts[j.id], record))
                    continue
                finish(
                    job,
                    Outcome(
                        job.key,
                        job.label,
                        record["status"],
                        seconds=record["seconds"],
                        error=record["error"],
                        attempts=attempts[job.id],
                    ),
                )
        self._drain(progress)
        result.seconds = time.perf_counter() - start
        return result

    def _gave_up(self, job: Job, tries: int, err: Exception) -> Outcome:
        """The outcome of a job whose worker died on every try."""
        if not self._resubmits:  # the back end itself ran it 1 + retries times
            tries = self.retries + 1
        reason = f"{job.label} failed: its worker died {tries} time(s) ({err})"
        return Outcome(job.key, job.label, "failed", error=reason, attempts=tries)

    #: Whether the driver resubmits lost jobs (Ray retries them itself).
    _resubmits: bool = True

    def get(self, spec: Any, store: Store, *, progress: Progress = no_progress) -> Any:
        """The result of ``spec`` (computed through this executor if needed), from the store."""
        outcome = self.run([spec], store, progress=progress).of(spec)
        if outcome.status == "failed":
            raise api.ComputeFailed(outcome.error)
        return api.get(spec, store=store, compute=False)


def _failed(outcome: Outcome | None) -> bool:
    """Whether a job has finished and failed."""
    return outcome is not None and outcome.status == "failed"


class InProcess(Executor):
    """Runs jobs one by one in this process (the default; today's behaviour)."""

    parallelism = 1

    def __init__(self) -> None:
        super().__init__()
        self._progress: Progress = no_progress
        self._done: list[tuple[Job, dict]] = []

    def run(self, specs: Iterable[Any], store: Store, **kw: Any) -> RunResult:
        """See :meth:`Executor.run` (progress goes straight to the callback)."""
        self._progress = kw.get("progress", no_progress)
        return super().run(specs, store, **kw)

    def _submit(self, job: Job, store: Store) -> Any:
        start = time.perf_counter()
        record: dict = {"key": job.key, "rows": job.rows, "error": "", "status": "done"}
        try:
            if job.rows:
                from analysis.landscape import fill_rows

                ctx = api.Context(store=store, progress=self._progress)
                fill_rows(job.spec, ctx, range(*job.rows))
            else:
                api.get(job.spec, store=store, progress=self._progress)
        except (api.ComputeFailed, api.NotComputed) as err:
            record.update(status="failed", error=str(err))
        except PrunescopeError as err:  # as plan.compute_study always did: others propagate
            if "failed" not in str(err):
                raise
            record.update(status="failed", error=str(err))
        record["seconds"] = time.perf_counter() - start
        self._done.append((job, record))
        return job.id

    def _wait(self, handles: list[Any], timeout: float) -> list[tuple[Any, dict | Exception]]:
        done, self._done = self._done, []
        return [(job.id, record) for job, record in done]


def _init_pool_worker(queue: Any, threads: int) -> None:
    """Pool initializer: remember the progress queue; pin torch's threads."""
    import torch

    global _POOL_QUEUE
    _POOL_QUEUE = queue
    torch.set_num_threads(threads)


_POOL_QUEUE: Any = None


def _pool_job(payload: dict) -> dict:
    """Entry point of a pool worker: :func:`run_job` with the worker's progress queue."""
    return run_job(payload, _POOL_QUEUE)


class ProcessPool(Executor):
    """Runs jobs in ``workers`` local processes (forkserver or spawn, never a fork of this one)."""

    def __init__(self, workers: int = 2, *, retries: int = DEFAULT_RETRIES):
        super().__init__()
        if workers < 1:
            raise PrunescopeError(f"ProcessPool needs at least 1 worker, got {workers}")
        self.parallelism = workers
        self.retries = retries
        # Never fork this process (torch's threads and locks do not survive a fork):
        # forkserver forks workers from a clean server that imports torch and the analysis
        # modules once, so a worker (or its replacement after a crash) starts in a blink.
        if "forkserver" in multiprocessing.get_all_start_methods():
            self._ctx = multiprocessing.get_context("forkserver")
            self._ctx.set_forkserver_preload(["torch", "analysis.executor", *api.KIND_MODULES])
        else:
            self._ctx = multiprocessing.get_context("spawn")
        self._manager = self._ctx.Manager()  # its queue survives a killed worker
        self._queue = self._manager.Queue()
        self._pool: cf.ProcessPoolExecutor | None = None
        self._pids: dict[str, int] = {}  # job id -> pid of the worker that started it
        self._dead: set[int] = set()  # workers that died by themselves at the last break
        self._buffer: list[tuple] = []  # progress read while looking for start messages

    def _executor(self) -> cf.ProcessPoolExecutor:
        """The pool, (re)started on demand."""
        if self._pool is None:
            self._pool = cf.ProcessPoolExecutor(
                max_workers=self.parallelism,
                mp_context=self._ctx,
                initializer=_init_pool_worker,
                initargs=(self._queue, self.threads),
            )
        return self._pool

    def _submit(self, job: Job, store: Store) -> Any:
        payload = job_payload(job, store, self.threads, announce=True)
        return self._executor().submit(_pool_job, payload)

    def _wait(self, handles: list[Any], timeout: float) -> list[tuple[Any, dict | Exception]]:
        done, _ = cf.wait(handles, timeout=timeout, return_when=cf.FIRST_COMPLETED)
        out: list[tuple[Any, dict | Exception]] = []
        # Finished jobs first: after a failed one the pool is rebuilt and the rest resubmitted.
        for fut in sorted(done, key=lambda f: f.exception() is not None):
            err = fut.exception()
            if err is None:
                out.append((fut, fut.result()))
            else:
                out.append((fut, WorkerLost(f"{type(err).__name__}: {err}")))
                self._break()
                break
        return out

    def _break(self) -> None:
        """After a worker died: note which workers died by themselves, start a fresh pool."""
        self._read()
        if self._pool is not None:
            # The pool terminates (SIGTERM) its other workers after one dies; the one that
            # died first exited otherwise (killed, crashed, out of memory). Exit codes come
            # from the pool's process table, which concurrent.futures keeps private.
            procs = dict(getattr(self._pool, "_processes", None) or {})
            self._dead = {
                pid
                for pid, proc in procs.items()
                if proc.exitcode is not None and proc.exitcode != -signal.SIGTERM
            }
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None

    def _lost(self, handles: list[Any]) -> list[Any]:
        """Every other running job went down with the broken pool."""
        return handles

    def _culprits(self, jobs: list[Job]) -> set[str]:
        """Jobs whose worker died by itself (all of them when that cannot be told)."""
        guilty = {job.id for job in jobs if self._pids.get(job.id) in self._dead}
        return guilty or {job.id for job in jobs}

    def _read(self) -> None:
        """Move the queue's messages into the buffer, noting which worker started which job."""
        while True:
            try:
                message = self._queue.get_nowait()
            except Exception:  # queue.Empty, or the manager gone at shutdown
                return
            if message[0] == STARTED:
                self._pids[message[1]] = message[2]
            else:
                self._buffer.append(message)

    def _drain(self, progress: Progress) -> None:
        self._read()
        buffer, self._buffer = self._buffer, []
        for task, done, total in buffer:
            progress(task, done, total)

    def close(self) -> None:
        """Stop the workers and the progress queue's manager."""
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None
        with contextlib.suppress(Exception):
            self._manager.shutdown()


#: Ray's switch for a single-machine Ray (named for macOS and Windows, where it is the
#: default): "0" makes every Ray service bind 127.0.0.1 instead of all interfaces.
LOCAL_ONLY_ENV = "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"


def loopback(address: str | None) -> bool:
    """Whether a Ray address (``host:port`` or ``ray://host:port``) points at this machine's loopback."""
    if not address:
        return True
    host = address.split("://")[-1].rsplit(":", 1)[0]
    return host in ("127.0.0.1", "localhost", "::1", "[::1]")


class RayExecutor(Executor):
    """Runs jobs as Ray tasks, one CPU each, on a cluster or a private local Ray.

    ``address=None`` starts a local Ray bound to 127.0.0.1 with ``workers`` CPUs
    and no dashboard; otherwise it connects to the running cluster at
    ``address`` (``host:port`` of its head node; the driver must run on a node
    of the cluster, with the store's shared filesystem mounted at the same path).
    """

    _resubmits = False  # Ray reruns a task whose worker died (max_retries)

    def __init__(
        self,
        address: str | None = None,
        *,
        workers: int | None = None,
        retries: int = DEFAULT_RETRIES,
    ):
        super().__init__()
        # Ray resolves 127.0.0.1 to the machine's outward address and binds its services
        # to every interface unless told it is a single-machine Ray; with this (inherited
        # by the raylet, agents and workers) all of them bind loopback only. Ray reads it
        # when imported: if it already was, set the constant it was read into.
        if loopback(address) and os.environ.setdefault(LOCAL_ONLY_ENV, "0") == "0":
            constants = sys.modules.get("ray._private.ray_constants")
            if constants is not None:
                constants.ENABLE_RAY_CLUSTER = False
        import ray
        from ray.util.queue import Queue

        self.retries = retries
        self.address = address
        self._owns = False
        quiet = dict(log_to_driver=False, logging_level=logging.ERROR)
        if not ray.is_initialized():
            if address is None:
                ray.init(
                    num_cpus=workers or os.cpu_count() or 1,
                    include_dashboard=False,
                    _node_ip_address="127.0.0.1",
                    **quiet,
                )
            else:
                extra = {"_node_ip_address": "127.0.0.1"} if loopback(address) else {}
                try:
                    ray.init(address=address, **quiet, **extra)
                except ConnectionError as err:
                    raise PrunescopeError(
                        f"cannot join the Ray cluster at {address}: {err} (is `ray start "
                        "--head` running there, and is this machine's token the cluster's?)"
                    ) from err
            self._owns = True
        cpus = int(ray.cluster_resources().get("CPU", 1))
        self.parallelism = max(1, min(workers or cpus, cpus))
        self._ray = ray
        self._queue = Queue(actor_options={"num_cpus": 0})
        self._task = ray.remote(run_job).options(
            num_cpus=1, max_retries=retries, retry_exceptions=False
        )

    def _submit(self, job: Job, store: Store) -> Any:
        return self._task.remote(job_payload(job, store, self.threads), self._queue)

    def _wait(self, handles: list[Any], timeout: float) -> list[tuple[Any, dict | Exception]]:
        done, _ = self._ray.wait(handles, num_returns=1, timeout=timeout)
        out: list[tuple[Any, dict | Exception]] = []
        for ref in done:
            try:
                out.append((ref, self._ray.get(ref)))
            except self._ray.exceptions.RayError as err:
                text = str(err).strip().splitlines()
                out.append((ref, WorkerLost(f"{type(err).__name__}: {text[0] if text else ''}")))
        return out

    def _drain(self, progress: Progress) -> None:
        with contextlib.suppress(Exception):
            for task, done, total in self._queue.get_nowait_batch(self._queue.qsize()):
                if task != STARTED:
                    progress(task, done, total)

    def close(self) -> None:
        """Drop the progress queue; shut Ray down if this executor started or joined it."""
        with contextlib.suppress(Exception):
            self._queue.shutdown()
        if self._owns:
            self._ray.shutdown()
            self._owns = False


def make_executor(name: str = "local", *, workers: int = 1, address: str | None = None) -> Executor:
    """The executor named on the command line: ``local`` (N>1 workers: a pool) or ``ray``."""
    if name == "local":
        if address:
            raise PrunescopeError("--address is for --executor ray; the local executor has none")
        return ProcessPool(workers) if workers > 1 else InProcess()
    if name == "ray":
        return RayExecutor(address, workers=workers if workers > 1 else None)
    raise PrunescopeError(f"unknown executor {name!r}: use 'local' or 'ray'")
