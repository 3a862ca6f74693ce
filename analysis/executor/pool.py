"""A local process pool (forkserver, never a fork of the driver) behind the executor interface."""

from __future__ import annotations

import concurrent.futures as cf
import contextlib
import multiprocessing
import signal
from typing import Any

import torch

from analysis.api import Progress
from analysis.errors import PrunescopeError
from analysis.executor.graph import Job
from analysis.executor.private import pool_processes
from analysis.executor.schedule import DEFAULT_RETRIES, Executor, WorkerLost
from analysis.executor.worker import STARTED, job_payload, run_job
from analysis.store import Store


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

    def __init__(
        self,
        workers: int = 2,
        *,
        retries: int = DEFAULT_RETRIES,
        devices: list[torch.device] | None = None,
    ):
        super().__init__(devices)
        if workers < 1:
            raise PrunescopeError(f"ProcessPool needs at least 1 worker, got {workers}")
        self.parallelism = workers
        self.retries = retries
        # Never fork this process (torch's threads and locks do not survive a fork):
        # forkserver forks workers from a clean server that imports torch and the analysis
        # modules once, so a worker (or its replacement after a crash) starts in a blink.
        if "forkserver" in multiprocessing.get_all_start_methods():
            self._ctx = multiprocessing.get_context("forkserver")
            self._ctx.set_forkserver_preload(["torch", "analysis.parts", "analysis.executor"])
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
        device = str(self.device_of(job))
        payload = job_payload(job, store, self.threads, device=device, announce=True)
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
            # from the pool's process table, which concurrent.futures keeps private
            # (looked up in analysis.executor.private, with its fallback).
            procs = pool_processes(self._pool)
            self._dead = {
                pid
                for pid, proc in procs.items()
                if proc.exitcode is not None and proc.exitcode != -signal.SIGTERM
            }
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None

    def _abandon(self) -> None:
        """Stop the workers at once (their jobs commit nothing); a fresh pool starts on demand."""
        if self._pool is not None:
            for proc in pool_processes(self._pool).values():
                with contextlib.suppress(Exception):
                    proc.terminate()
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
