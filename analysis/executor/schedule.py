"""The schedule every back end shares: submit ready jobs, collect records, retry lost workers."""

from __future__ import annotations

import math
import time
import traceback
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Literal

import torch

from analysis import api
from analysis import device as device_mod
from analysis.api import Progress, no_progress
from analysis.errors import PrunescopeError
from analysis.executor.graph import Job, plan_jobs
from analysis.executor.worker import fill_rows
from analysis.limits import MemoryLimitError, memory_budget
from analysis.specs import spec_key
from analysis.store import Store

#: Times a job whose worker died is run again before it is reported failed.
DEFAULT_RETRIES = 2

Status = Literal["done", "cached", "failed"]


@dataclass
class Outcome:
    """What happened to one job."""

    key: str
    label: str
    status: Status
    seconds: float = 0.0
    error: str = ""
    attempts: int = 0
    #: The first line of the root cause: the job's own error, or the failed dependency's cause.
    cause: str = ""

    def __post_init__(self) -> None:
        if self.status == "failed" and not self.cause:
            self.cause = self.error


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
    #: Compute again a spec whose earlier computation failed (``--retry-failed``); else report it.
    retry_failed: bool = False

    #: Share of one GPU a job takes (``--gpus-per-job``): a GPU runs at most
    #: ``floor(1 / share)`` jobs at once. None: no cap, jobs spread evenly (least loaded first).
    gpus_per_job: float | None = None

    def __init__(self, devices: list[torch.device] | None = None) -> None:
        #: The devices jobs are placed on (default: this process's device alone).
        self.devices = list(devices or [device_mod.current()])
        self._placed: dict[str, torch.device] = {}  # running job id -> its device

    @property
    def threads(self) -> int:
        """torch intra-op threads of each worker: this machine's cores shared by the jobs
        that run at once, never more than the driver's own setting. Oversubscribed OpenMP
        threads spin against each other: two jobs of two threads each on two cores ran
        several times slower than two jobs of one thread (benchmarks/results/threads.json)."""
        return cpu_threads(self.parallelism)

    def _place(self, job: Job) -> torch.device | None:
        """The device for ``job`` (the least loaded with room), or None when every GPU is full."""
        load = {str(d): 0 for d in self.devices}
        for dev in self._placed.values():
            load[str(dev)] = load.get(str(dev), 0) + 1
        best = min(self.devices, key=lambda d: load[str(d)])
        room = max(1, math.floor(1 / self.gpus_per_job + 1e-9)) if self.gpus_per_job else None
        if best.type == "cuda" and room is not None and load[str(best)] >= room:
            return None
        self._placed[job.id] = best
        return best

    def device_of(self, job: Job) -> torch.device:
        """The device a submitted job was placed on."""
        return self._placed.get(job.id, self.devices[0])

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
        """Compute ``specs`` and their dependencies; a failure never stops the others.

        Interrupted (Ctrl+C, or a cancel request: ``analysis.live.Cancelled``, raised
        by ``progress``), the running jobs are abandoned (:meth:`_abandon`) and the
        interrupt goes on up: nothing of theirs is committed, all finished before stays.
        """
        try:
            return self._schedule(specs, store, progress=progress, log=log)
        except KeyboardInterrupt:
            self._abandon()
            raise

    def _abandon(self) -> None:
        """Stop the jobs running now, after an interrupt (in this process: nothing left to do)."""

    def _schedule(
        self,
        specs: Iterable[Any],
        store: Store,
        *,
        progress: Progress,
        log: Callable[[str], None],
    ) -> RunResult:
        """The schedule of :meth:`run`."""
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
        for job, error in refused_for_memory(jobs, store):
            del waiting[job.id]  # refused before anything runs, with its estimate
            store.record_failure(job.spec, error)
            finish(job, Outcome(job.key, job.label, "failed", error=error))
        while waiting or running:
            for job in list(waiting.values()):
                failed = [d for d in job.deps if _failed(result.jobs.get(d))]
                if failed:
                    del waiting[job.id]
                    dep = result.jobs[failed[0]]
                    reason = f"{job.label} failed because {dep.label} failed: {dep.cause}"
                    if job.rows is None:
                        store.record_failure(job.spec, reason)
                    outcome = Outcome(job.key, job.label, "failed", error=reason, cause=dep.cause)
                    finish(job, outcome)
                elif all(d in result.jobs for d in job.deps):
                    if job.id not in checked and api.exists(job.spec, store):
                        del waiting[job.id]
                        finish(job, Outcome(job.key, job.label, "cached"))
                        continue
                    earlier = None if self.retry_failed or job.rows else store.failure(job.spec)
                    if job.id not in checked and earlier is not None:
                        del waiting[job.id]  # it would fail again: say why, do not recompute
                        reason = f"{job.label} failed earlier: {api.first_line(earlier)}"
                        finish(job, Outcome(job.key, job.label, "failed", error=reason))
                        continue
                    checked.add(job.id)  # look in the store once, not on every pass
                    if len(running) < max(self.parallelism, 1) and self._place(job):
                        del waiting[job.id]
                        attempts[job.id] = attempts.get(job.id, 0) + 1
                        running[self._submit(job, store)] = job
            if not running:
                continue
            finished = self._wait(list(running), timeout=0.1)
            self._drain(progress)  # a job's last progress before its finish
            for handle, record in finished:
                job = running.pop(handle)
                self._placed.pop(job.id, None)
                if isinstance(record, Exception):
                    lost = [job] + [running.pop(h) for h in self._lost(list(running))]
                    for j in lost:
                        self._placed.pop(j.id, None)
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


def refused_for_memory(jobs: list[Job], store: Store) -> list[tuple[Job, str]]:
    """The jobs (not cached) whose memory estimate exceeds the budget, with why.

    Every estimate is made when the plan is built, before any job runs, so a
    grid that cannot fit is refused before the runs it needs are trained.

    Raises:
        PrunescopeError: ``$PRUNESCOPE_MEMORY_LIMIT`` is malformed (one line).
    """
    memory_budget()  # a malformed setting is one error, before anything starts
    out = []
    for job in jobs:
        check = api.kind_of(job.spec).memory
        if job.rows is not None or check is None or api.exists(job.spec, store):
            continue
        try:
            check(job.spec)
        except MemoryLimitError as err:
            out.append((job, f"{job.label} failed: {api.first_line(str(err))}"))
    return out


def job_error(job: Job, err: Exception) -> str:
    """One line naming the job and why it failed (a bug's exception type and place too)."""
    if isinstance(err, PrunescopeError):
        text = api.first_line(str(err))
    else:  # a bug in a compute function: say where, in one line
        place = traceback.extract_tb(err.__traceback__)[-1:] if err.__traceback__ else []
        where = f" at {place[0].filename.rsplit('/', 1)[-1]}:{place[0].lineno}" if place else ""
        text = f"{type(err).__name__}: {api.first_line(str(err))}{where}"
    return text if text.startswith(job.label) else f"{job.label} failed: {text}"


def _failed(outcome: Outcome | None) -> bool:
    """Whether a job has finished and failed."""
    return outcome is not None and outcome.status == "failed"


class InProcess(Executor):
    """Runs jobs one by one in this process (the default; today's behaviour)."""

    parallelism = 1

    def __init__(self, devices: list[torch.device] | None = None) -> None:
        super().__init__(devices)
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
            device = self.device_of(job)
            if job.rows:
                ctx = api.Context(store=store, progress=self._progress, device=device)
                fill_rows(job.spec, ctx, range(*job.rows))
            else:
                _, computed = api.ensure(
                    job.spec, store=store, progress=self._progress, device=device
                )
                record["status"] = "done" if computed else "cached"
        except Exception as err:  # noqa: BLE001  (one job's error never stops the others)
            record.update(status="failed", error=job_error(job, err))
        record["seconds"] = time.perf_counter() - start
        self._done.append((job, record))
        return job.id

    def _wait(self, handles: list[Any], timeout: float) -> list[tuple[Any, dict | Exception]]:
        done, self._done = self._done, []
        return [(job.id, record) for job, record in done]


def cpu_threads(jobs: int) -> int:
    """Intra-op threads for each of ``jobs`` concurrent jobs: the cores this process may use,
    shared out, at least 1 and at most the driver's ``torch.get_num_threads()``."""
    return max(1, min(torch.get_num_threads(), device_mod.usable_cores() // max(jobs, 1)))
