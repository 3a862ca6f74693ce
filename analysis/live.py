"""Live progress of a compute pass, in a small JSON file of the store that any process reads.

Every compute pass (:func:`analysis.plan.compute_study`: ``prunescope compute``
and ``demo``, and the dashboard's background job) writes ``<store>/.live/<id>.json``:
the study, the process (host, pid, command), when it started, the results done
of all asked and how many were computed (not found cached), and the sub-steps
under way (task, k of N, when first seen), from which a reader estimates the time
left at the rate so far. The dashboard reads these files, so a ``compute`` started
in a terminal shows in the browser too.

Writing: the progress callback only updates memory (no system call); a daemon
thread writes the file when something changed, at most once per
:data:`WRITE_INTERVAL`, and at least once per :data:`HEARTBEAT_S` (a heartbeat
while a long step reports nothing), atomically (temp file + ``os.replace``: a
reader sees the old file or the new one). The file is removed when the pass ends,
however it ends. Writing is best effort: a store that cannot be written costs
the live view, never the computation.

Staleness: a file whose process is gone (same host, pid not alive), or that has
not been rewritten for :data:`STALE_S` (a frozen or remote process, a reused pid),
is stale: :func:`running` leaves it out and the next pass on this host removes it.

Cancelling: :func:`request_cancel` writes ``<id>.cancel`` beside the file; the
progress callback looks for it (at most every :data:`CANCEL_CHECK_S`), and the
first progress event after it is there (between jobs, and at the checkpoints a
computation reports: training steps, grid rows, corruptions, restarts) raises :class:`Cancelled`, a ``KeyboardInterrupt``:
it passes every ``except Exception`` of the computation, so the job's lock is
released, no entry and no failure is written for it, and every result committed
before stays in the store, as with Ctrl+C.
"""

from __future__ import annotations

import contextlib
import contextvars
import json
import math
import os
import re
import socket
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from analysis.errors import PrunescopeError

#: Folder of the live files, under the store's root.
LIVE_DIR = ".live"
#: Least seconds between two writes of one pass's file.
WRITE_INTERVAL = 1.0
#: Most seconds between two writes (the heartbeat that tells a slow step from a dead process).
HEARTBEAT_S = 20.0
#: A file not rewritten for this long is stale even when a process with its pid lives.
STALE_S = 120.0
#: Least seconds between two looks for a cancel request from the progress callback.
CANCEL_CHECK_S = 0.25
#: Schema of the live file; a reader skips files of another.
LIVE_SCHEMA = 1

Callback = Callable[[str, float, float], None]
_ORIGIN: contextvars.ContextVar[str] = contextvars.ContextVar("origin", default="command line")
_ID = re.compile(r"^[A-Za-z0-9_.-]{1,120}$")


class Cancelled(KeyboardInterrupt):
    """A cancel request reached the computation (see :func:`request_cancel`)."""


@contextlib.contextmanager
def origin(name: str) -> Iterator[None]:
    """Passes started inside say they come from ``name`` (the dashboard's jobs: "dashboard")."""
    token = _ORIGIN.set(name)
    try:
        yield
    finally:
        _ORIGIN.reset(token)


@dataclass(frozen=True)
class Step:
    """One sub-step under way: ``done`` of ``total`` (0: unknown), first seen at ``since``."""

    task: str
    done: float
    total: float
    since: float  # epoch seconds when first reported
    since_done: float  # its count then
    updated: float  # epoch seconds of its latest report

    def left(self, now: float) -> float | None:
        """Seconds left at its rate so far (None: no rate yet or no known total)."""
        moved = self.done - self.since_done
        if not self.total or moved <= 0 or self.updated <= self.since:
            return None
        rate = (self.updated - self.since) / moved
        return max(0.0, rate * (self.total - self.done) - (now - self.updated))


@dataclass(frozen=True)
class Live:
    """What one compute pass is doing, as its live file says."""

    id: str
    study: str
    part: str | None
    origin: str  # "command line" | "dashboard"
    command: str
    host: str
    pid: int
    started: float
    updated: float
    done: int = 0  # results of the study finished (cached ones included)
    total: int = 0  # results the pass asked for
    computed: int = 0  # of those, computed (or failed) by this pass
    working_since: float | None = None  # first sub-step report: the cached ones are behind
    last_result: float | None = None  # when the latest computed result landed
    steps: tuple[Step, ...] = ()
    cancel_requested: bool = False

    def left(self, now: float | None = None) -> float | None:
        """Seconds until every result is done, at the rate of those computed so far.

        Before the first result lands: the time left of the one sub-step under way
        when there is only one (else None). An estimate: results differ in size.
        """
        now = time.time() if now is None else now
        todo = self.total - self.done
        if todo <= 0:
            return 0.0
        if self.computed and self.working_since is not None and self.last_result is not None:
            rate = max(self.last_result - self.working_since, 0.0) / self.computed
            return max(0.0, rate * todo - (now - self.last_result))
        lefts = [s.left(now) for s in self.steps]
        return lefts[0] if len(lefts) == 1 else None

    def stale(self, now: float | None = None) -> bool:
        """Whether the pass is gone: its process is dead, or the file went unwritten too long."""
        now = time.time() if now is None else now
        if now - self.updated > STALE_S:
            return True
        return self.host == this_host() and not pid_alive(self.pid)

    def to_json(self) -> dict:
        """The file's content."""
        doc = asdict(self)
        doc["schema"] = LIVE_SCHEMA
        return doc

    @classmethod
    def from_json(cls, doc: dict) -> Live:
        """Read a live file's content (TypeError, KeyError or ValueError when malformed)."""
        if doc.get("schema") != LIVE_SCHEMA:
            raise ValueError(f"live file schema {doc.get('schema')!r}")
        fields = {k: v for k, v in doc.items() if k != "schema"}
        fields["steps"] = tuple(Step(**s) for s in fields.get("steps", ()))
        return cls(**fields)


def this_host() -> str:
    """This machine's name."""
    return socket.gethostname()


def pid_alive(pid: int) -> bool:
    """Whether a process with ``pid`` lives on this host (True where that cannot be told)."""
    if sys.platform == "win32" or pid <= 0:
        return pid > 0
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # it exists, owned by someone else
        return True
    return True


def live_dir(root: Path | str) -> Path:
    """The folder of the store's live files."""
    return Path(root) / LIVE_DIR


def read_all(root: Path | str) -> list[Live]:
    """Every readable live file of the store (stale ones included), oldest pass first."""
    out = []
    folder = live_dir(root)
    with contextlib.suppress(OSError):
        for path in folder.glob("*.json"):
            try:
                live = Live.from_json(json.loads(path.read_text()))
            except (OSError, ValueError, TypeError, KeyError):
                continue  # gone meanwhile, or not ours
            cancel = folder / f"{live.id}.cancel"
            out.append(replace(live, cancel_requested=cancel.exists()))
    return sorted(out, key=lambda lv: (lv.started, lv.id))


def running(root: Path | str, now: float | None = None) -> list[Live]:
    """The passes computing into the store now (stale files left out)."""
    return [lv for lv in read_all(root) if not lv.stale(now)]


def request_cancel(root: Path | str, live_id: str) -> None:
    """Ask the pass ``live_id`` to stop at its next progress event (see :class:`Cancelled`).

    Raises:
        PrunescopeError: ``live_id`` is not a live file's id, or the request cannot be written.
    """
    if not _ID.match(live_id):
        raise PrunescopeError(f"live_id must be a live file's id, got {live_id!r}")
    try:
        (live_dir(root) / f"{live_id}.cancel").write_text(str(time.time()))
    except OSError as err:
        raise PrunescopeError(f"cannot ask {live_id} to stop: {err.strerror or err}") from err


def sweep(root: Path | str, now: float | None = None) -> int:
    """Remove the stale live files (and cancel requests) this host left; how many."""
    gone = 0
    for lv in read_all(root):
        if lv.host == this_host() and lv.stale(now):
            for suffix in (".json", ".cancel"):
                with contextlib.suppress(OSError):
                    (live_dir(root) / f"{lv.id}{suffix}").unlink()
            gone += 1
    return gone


def _command() -> str:
    """This process's command line, short: the program's name, then its arguments."""
    argv = [Path(sys.argv[0]).name if sys.argv and sys.argv[0] else "python", *sys.argv[1:]]
    return " ".join(argv)[:300]


class LiveFile:
    """A compute pass's live file: a progress callback and a log callback that feed it.

    Use as a context manager around the pass; ``progress`` and ``log`` are passed
    on unchanged (the terminal's bars, the dashboard job's own record). ``clock``
    (epoch seconds) and ``interval`` are there for tests.
    """

    def __init__(
        self,
        root: Path | str,
        *,
        study: str,
        part: str | None = None,
        progress: Callback = lambda _t, _d, _n: None,
        log: Callable[[str], None] = lambda _msg: None,
        interval: float = WRITE_INTERVAL,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.progress, self.on_log, self.interval, self.clock = progress, log, interval, clock
        now = clock()
        self.id = f"{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self.root = Path(root)
        self.path = live_dir(root) / f"{self.id}.json"
        self.cancel_path = self.path.with_suffix(".cancel")
        self.state = Live(
            id=self.id, study=study, part=part, origin=_ORIGIN.get(), command=_command(),
            host=this_host(), pid=os.getpid(), started=now, updated=now,
        )  # fmt: skip
        self._steps: dict[str, Step] = {}
        self._lock = threading.Lock()
        self._writing = threading.Lock()  # one write at a time (the thread, a forced flush)
        self._stop = threading.Event()
        self._dirty = True
        self._written = -math.inf
        self._cancel = False
        self._checked = -math.inf
        self._thread: threading.Thread | None = None

    def __call__(self, task: str, done: float, total: float) -> None:
        """The progress callback: note ``task``'s k of N; raise :class:`Cancelled` if asked to."""
        self.progress(task, done, total)
        now = self.clock()
        with self._lock:
            if task == "study":
                self.state = replace(self.state, done=int(done), total=int(total))
            elif total and done >= total:
                self._steps.pop(task, None)  # finished: it leaves the list
            else:
                old = self._steps.get(task)
                since, since_done = (old.since, old.since_done) if old else (now, float(done))
                self._steps[task] = Step(task, float(done), float(total), since, since_done, now)
                if self.state.working_since is None:
                    self.state = replace(self.state, working_since=now)
            self._dirty = True
        if now - self._checked >= CANCEL_CHECK_S:  # one stat a quarter second at most
            self._checked = now
            self._cancel = self._cancel or self.cancel_path.exists()
        if self._cancel:
            raise Cancelled(f"cancelled at the request in {self.cancel_path.name}")

    def log(self, message: str) -> None:
        """The log callback: one line per result computed (or failed) by this pass."""
        self.on_log(message)
        now = self.clock()
        with self._lock:
            self.state = replace(self.state, computed=self.state.computed + 1, last_result=now)
            self._dirty = True

    def snapshot(self) -> Live:
        """The pass's state now."""
        with self._lock:
            steps = tuple(self._steps.values())
            return replace(self.state, updated=self.clock(), steps=steps)

    def flush(self, *, force: bool = False) -> None:
        """Write the file if something changed (or the heartbeat is due); notice a cancel request."""
        now = self.clock()
        self._cancel = self._cancel or self.cancel_path.exists()
        due = self._dirty and now - self._written >= self.interval
        if not (force or due or now - self._written >= HEARTBEAT_S):
            return
        with self._lock:
            self._dirty = False
        doc = json.dumps(self.snapshot().to_json()).encode()
        tmp = self.path.with_name(f".{self.path.name}.tmp")
        with self._writing:
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                tmp.write_bytes(doc)
                os.replace(tmp, self.path)
                self._written = now
            except OSError:  # best effort: a read-only store loses the live view, not the work
                with contextlib.suppress(OSError):
                    tmp.unlink()

    def _beat(self) -> None:
        """Writer thread: flush every tick until stopped."""
        while not self._stop.wait(min(self.interval, 1.0)):
            self.flush()

    def __enter__(self) -> LiveFile:
        with contextlib.suppress(OSError):
            sweep(self.root)
        self.flush(force=True)
        self._thread = threading.Thread(target=self._beat, name="prunescope-live", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        for path in (self.path, self.cancel_path):
            with contextlib.suppress(OSError):
                path.unlink()


def held_locks(root: Path | str) -> list[str]:
    """The store's per-key locks some process holds now, as ``kind-key`` names.

    Tells a computation that writes no live file (an older prunescope, ``api.get``
    from a notebook) from an idle store. Each lock is tried for a moment, shared and
    without waiting: a computation acquiring it then retries its poll (50 ms) later.
    Where ``flock`` is missing (Windows) it says nothing: ``[]``.
    """
    try:
        import fcntl
    except ImportError:
        return []
    held = []
    with contextlib.suppress(OSError):
        for path in sorted((Path(root) / ".locks").glob("*.lock")):
            try:
                fd = os.open(path, os.O_RDONLY)
            except OSError:
                continue
            try:
                fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
            except OSError:
                held.append(path.stem)
            else:
                fcntl.flock(fd, fcntl.LOCK_UN)
            finally:
                os.close(fd)
    return held
