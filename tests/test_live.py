"""The store's live files: what a compute pass writes, staleness, cancelling, held locks."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from dataclasses import dataclass, replace
from typing import ClassVar

import pytest

from analysis import api
from analysis import live as live_mod
from analysis.errors import PrunescopeError
from analysis.executor import InProcess, ProcessPool
from analysis.live import Cancelled, Live, LiveFile, Step, live_dir, read_all, request_cancel
from analysis.specs import SPEC
from analysis.store import Store

# ---------------------------------------------------------------------------
# a toy kind that reports a sub-step at every one of its steps


@dataclass(**SPEC)
class SlowSpec:
    """A job of ``steps`` steps of ``pause`` seconds, each reported to the progress callback."""

    kind: ClassVar[str] = "test_live_slow"
    name: str = "a"
    steps: int = 100
    pause: float = 0.01

    @property
    def label(self) -> str:
        """Human label."""
        return f"slow {self.name}"


def compute_slow(spec: SlowSpec, ctx: api.Context) -> tuple[dict, dict]:
    """Step, report, sleep."""
    for i in range(spec.steps):
        ctx.progress(spec.label, i, spec.steps)
        time.sleep(spec.pause)
    return {"value.json": {"name": spec.name}}, {}


api.install([api.Kind("test_live_slow", SlowSpec, compute_slow)])


class Clock:
    """A clock the test moves by hand (epoch seconds)."""

    def __init__(self, t: float = 1000.0):
        self.t = t

    def __call__(self) -> float:
        return self.t


def dead_pid() -> int:
    """The pid of a process that has ended."""
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


# ---------------------------------------------------------------------------


def test_the_live_file_says_what_the_pass_does(tmp_path):
    clock = Clock()
    lines: list[str] = []
    seen: list[tuple] = []
    tracker = LiveFile(
        tmp_path, study="sweep", part="runs", progress=lambda *a: seen.append(a),
        log=lines.append, clock=clock,
    )  # fmt: skip
    tracker("study", 0, 4)
    tracker("study", 1, 4)  # a cached one: before any work
    clock.t += 1
    tracker("dense s0: train", 10, 100)
    clock.t += 9
    tracker("dense s0: train", 40, 100)  # 30 steps in 9 s
    tracker("landscape rows 0-3", 1, 4)
    tracker("landscape rows 0-3", 4, 4)  # finished: leaves the list
    clock.t += 11
    tracker.log("[2/4] run dense s0: done")
    tracker("study", 2, 4)
    tracker.flush(force=True)
    (lv,) = read_all(tmp_path)
    assert (lv.study, lv.part, lv.origin, lv.done, lv.total, lv.computed) == (
        "sweep", "runs", "command line", 2, 4, 1,
    )  # fmt: skip
    (step,) = lv.steps
    assert (step.task, step.done, step.total) == ("dense s0: train", 40.0, 100.0)
    assert step.left(1010.0) == pytest.approx(60 * 9 / 30)  # 60 steps at 0.3 s
    # One result computed in 20 s of work (the cached one took none): two more take 40 s.
    assert lv.left(clock.t) == pytest.approx(40.0)
    assert lv.left(clock.t + 15) == pytest.approx(25.0)
    assert lines == ["[2/4] run dense s0: done"] and len(seen) == 7  # both passed on
    assert not lv.stale(clock.t) and lv.pid > 0 and lv.host == live_mod.this_host()


def test_the_file_is_there_while_the_pass_runs_and_gone_after(tmp_path):
    with LiveFile(tmp_path, study="s") as tracker:
        (lv,) = live_mod.running(tmp_path)  # written on entering
        assert lv.id == tracker.id and lv.study == "s"
    assert live_mod.running(tmp_path) == [] and not list(live_dir(tmp_path).iterdir())


def test_a_pass_says_where_it_comes_from(tmp_path):
    with live_mod.origin("dashboard"):
        tracker = LiveFile(tmp_path, study="s")
    assert tracker.state.origin == "dashboard"
    assert LiveFile(tmp_path, study="s").state.origin == "command line"


def test_time_left_before_a_result_lands_is_the_single_steps():
    step = Step("a", done=5, total=10, since=0.0, since_done=0.0, updated=10.0)
    lv = Live(
        id="1-x", study="s", part=None, origin="command line", command="", host="h",
        pid=1, started=0.0, updated=10.0, done=0, total=3, steps=(step,),
    )  # fmt: skip
    assert lv.left(10.0) == pytest.approx(10.0)
    assert replace(lv, steps=(step, step)).left(10.0) is None  # two at once: no honest guess
    assert replace(lv, done=3).left(10.0) == 0.0
    assert Step("b", 3, 0, 0.0, 0.0, 5.0).left(5.0) is None  # total unknown


def test_stale_files_are_not_running_and_this_hosts_are_swept(tmp_path):
    now = time.time()
    base = Live(
        id="1-a", study="s", part=None, origin="command line", command="", host="",
        pid=0, started=now, updated=now,
    )  # fmt: skip
    me = live_mod.this_host()
    files = {
        "alive": replace(base, id="1-alive", host=me, pid=__import__("os").getpid()),
        "dead": replace(base, id="1-dead", host=me, pid=dead_pid()),
        "silent": replace(base, id="1-silent", host=me, updated=now - live_mod.STALE_S - 1),
        "remote": replace(base, id="1-remote", host="elsewhere", pid=dead_pid()),
    }
    live_dir(tmp_path).mkdir()
    for lv in files.values():
        (live_dir(tmp_path) / f"{lv.id}.json").write_text(json.dumps(lv.to_json()))
    (live_dir(tmp_path) / "9-bad.json").write_text("{not json")
    running = {lv.id for lv in live_mod.running(tmp_path)}
    assert running == {"1-alive", "1-remote"}  # another host's pid cannot be checked here
    assert live_mod.sweep(tmp_path) == 2
    assert {lv.id for lv in read_all(tmp_path)} == {"1-alive", "1-remote"}


def test_cancel_stops_the_job_under_way_and_keeps_what_finished(tmp_path):
    store = Store(tmp_path, lock_timeout=5)
    specs = [SlowSpec(name=n) for n in "abc"]

    def progress(task: str, done: float, total: float) -> None:
        if task == "slow b" and done == 5:
            request_cancel(tmp_path, tracker.id)

    with pytest.raises(Cancelled), LiveFile(tmp_path, study="t", progress=progress) as tracker:
        InProcess().run(specs, store, progress=tracker, log=tracker.log)
    a, b, c = specs
    assert api.exists(a, store) and not api.exists(b, store) and not api.exists(c, store)
    assert store.failure(b) is None  # a cancelled job is not a failed one
    assert not (store.path(b).parent.exists() and list(store.path(b).parent.iterdir()))
    with store.lock(b):  # its lock was released
        pass
    assert not list(live_dir(tmp_path).iterdir())  # the file and the request are gone
    assert api.get(b, store=store).read("value.json") == {"name": "b"}  # runs again later


def test_a_cancel_request_needs_a_live_id(tmp_path):
    with pytest.raises(PrunescopeError, match="live_id"):
        request_cancel(tmp_path, "../../etc/passwd")


def test_held_locks_name_what_is_being_computed(tmp_path):
    store = Store(tmp_path)
    spec = SlowSpec(name="held")
    assert live_mod.held_locks(tmp_path) == []
    with store.lock(spec):
        (name,) = live_mod.held_locks(tmp_path)
        assert name.startswith("test_live_slow-")
    assert live_mod.held_locks(tmp_path) == []


@pytest.mark.slow
def test_cancel_stops_a_pools_workers_at_once(tmp_path):
    store = Store(tmp_path)
    specs = [SlowSpec(name=n, steps=200, pause=0.05) for n in "ab"]  # 10 s each
    asked: list[float] = []

    def progress(task: str, done: float, total: float) -> None:
        if task.startswith("slow") and done >= 5 and not asked:
            asked.append(time.monotonic())
            request_cancel(tmp_path, tracker.id)

    with ProcessPool(2) as pool:
        with pytest.raises(Cancelled), LiveFile(tmp_path, study="t", progress=progress) as tracker:
            pool.run(specs, store, progress=tracker, log=tracker.log)
        stopped = time.monotonic()
    assert stopped - asked[0] < 5  # not waiting for the workers' 10 s jobs
    assert not any(api.exists(s, store) for s in specs)


def test_a_store_that_cannot_be_written_costs_the_live_view_not_the_work(tmp_path):
    blocked = tmp_path / "not-a-folder"
    blocked.write_text("a file where the store's folder would be")
    with LiveFile(blocked, study="s") as tracker:
        tracker("study", 0, 1)
        tracker.flush(force=True)
    assert live_mod.running(blocked) == []
