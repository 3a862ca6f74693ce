"""Background computations started from the dashboard: a thread per job, progress in a dict.

The web app must never block while a study trains, so the Compute page hands the
work to a :class:`JobBoard` (one per server process, held by
``dashboard.data.job_board``). A job runs ``work(progress, log)`` on a daemon
thread; the backend's progress callback and log write into the job under a
lock, and the page polls :meth:`Job.snapshot` to draw its bars. Nothing here
imports streamlit: the board is plain threads and dicts, testable on its own.
"""

from __future__ import annotations

import threading
import time
import traceback
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from typing import Any

from analysis.api import Progress
from analysis.live import Cancelled, origin

#: Most log lines a job keeps (the newest).
MAX_LOG = 200


@dataclass(frozen=True)
class JobView:
    """A consistent copy of a job's state for drawing."""

    title: str
    state: str  # "running" | "done" | "failed" | "cancelled"
    tasks: dict[str, tuple[float, float]]  # task -> (done, total); total 0 = unknown
    log: list[str]
    landed: int  # results computed (or failed) so far
    current: str | None  # the sub-task the backend reported last (None: none yet)
    started: float
    finished: float | None
    error: str | None
    result: Any

    @property
    def running(self) -> bool:
        """Whether the job is still working."""
        return self.state == "running"

    @property
    def seconds(self) -> float:
        """Wall time so far (or in total, once finished)."""
        return (self.finished or time.time()) - self.started

    @property
    def study(self) -> tuple[float, float]:
        """(results done, results in all) of the whole job; (0, 0) before the backend says."""
        return self.tasks.get("study", (0.0, 0.0))


@dataclass
class Job:
    """One background computation; its progress callback is safe to call from any thread."""

    title: str
    state: str = "running"
    tasks: dict[str, tuple[float, float]] = field(default_factory=dict)
    log_lines: list[str] = field(default_factory=list)
    landed: int = 0
    current: str | None = None
    started: float = field(default_factory=time.time)
    finished: float | None = None
    error: str | None = None
    result: Any = None
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def progress(self, task: str, done: float, total: float) -> None:
        """The backend's progress callback: remember the latest (done, total) of ``task``."""
        with self._lock:
            if task != "study":
                self.current = task
            if total and done >= total and task != "study":
                self.tasks.pop(task, None)  # a finished sub-task leaves the page
            else:
                self.tasks[task] = (float(done), float(total))

    def log(self, message: str) -> None:
        """The backend's log callback: one line per finished (or failed) result."""
        with self._lock:
            self.log_lines.append(message)
            del self.log_lines[:-MAX_LOG]
            self.landed += 1

    def finish(
        self, *, result: Any = None, error: str | None = None, cancelled: bool = False
    ) -> None:
        """Mark the job done (or failed, with the reason, or cancelled)."""
        with self._lock:
            self.result = result
            self.error = error
            self.state = "cancelled" if cancelled else "failed" if error else "done"
            self.finished = time.time()
            self.tasks = {k: v for k, v in self.tasks.items() if k == "study"}

    def snapshot(self) -> JobView:
        """A copy of the job's state, taken under its lock."""
        with self._lock:
            return JobView(
                title=self.title,
                state=self.state,
                tasks=dict(self.tasks),
                log=list(self.log_lines),
                landed=self.landed,
                current=self.current,
                started=self.started,
                finished=self.finished,
                error=self.error,
                result=self.result,
            )


Work = Callable[[Progress, Callable[[str], None]], Any]


class JobBoard:
    """The jobs of one server process, by key; at most one running job per key."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._jobs: dict[Hashable, Job] = {}
        self._threads: dict[Hashable, threading.Thread] = {}

    def start(self, key: Hashable, title: str, work: Work) -> Job:
        """Run ``work(progress, log)`` on a new thread (or return the job already running)."""
        with self._lock:
            job = self._jobs.get(key)
            if job is not None and job.state == "running":
                return job
            job = self._jobs[key] = Job(title=title)
            thread = threading.Thread(
                target=_run, args=(job, work), name=f"prunescope-job-{title}", daemon=True
            )
            self._threads[key] = thread
            thread.start()
            return job

    def get(self, key: Hashable) -> JobView | None:
        """The state of the latest job under ``key``, if any: the same for every session.

        Whoever started the job, every caller (each browser session) reads the one
        job's live progress here; a page polls it while ``running``.
        """
        with self._lock:
            job = self._jobs.get(key)
        return job.snapshot() if job else None

    def join(self, key: Hashable, timeout: float | None = None) -> None:
        """Wait for the job under ``key`` to end (tests and shutdown)."""
        with self._lock:
            thread = self._threads.get(key)
        if thread is not None:
            thread.join(timeout)


def _run(job: Job, work: Work) -> None:
    """Thread body: run the work, record how it ended; never let an error escape silently.

    The work's compute passes say they come from the dashboard in their live files
    (:mod:`analysis.live`); a cancel request there ends the job as ``cancelled``.
    """
    try:
        with origin("dashboard"):
            result = work(job.progress, job.log)
    except Cancelled:
        job.finish(cancelled=True)
    except BaseException as err:  # a job's end must always be recorded
        first = f"{type(err).__name__}: {err}".splitlines()[0]
        job.log("".join(traceback.format_exception_only(err)).strip())
        job.finish(error=first)
    else:
        job.finish(result=result)
