"""The dashboard under faults: a job shared by two sessions, and a page that raises.

Two browser sessions are two ``AppTest`` instances in one process: they share
the server's job board (``data.job_board`` is an ``st.cache_resource``), as two
browsers share one ``prunescope dashboard`` server.
"""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

pytest.importorskip("streamlit")
import streamlit as st  # noqa: E402
from streamlit.testing.v1 import AppTest  # noqa: E402

from analysis import api, plan  # noqa: E402
from analysis.live import LiveFile  # noqa: E402
from dashboard import data  # noqa: E402
from dashboard.jobs import JobBoard  # noqa: E402

APP = Path(__file__).resolve().parents[1] / "dashboard" / "app.py"
COMPUTE = "app_pages/compute.py"

STUDY = """
name = "shared"
seeds = [0]
[data]
name = "digits"
train_size = 200
[model]
arch = "mlp"
width = 8
depth = 1
[train]
epochs = 1
[[methods]]
method = "dense"
[[methods]]
method = "magnitude"
sparsities = [0.5]
"""


@pytest.fixture
def study(tmp_path, monkeypatch):
    """A two-run study on an empty store, named by the environment."""
    path = tmp_path / "shared.toml"
    path.write_text(STUDY)
    monkeypatch.setenv("PRUNESCOPE_STUDY", str(path))
    monkeypatch.setenv("PRUNESCOPE_CACHE", str(tmp_path / "cache"))
    return path


def session() -> AppTest:
    """A new browser session of the dashboard."""
    return AppTest.from_file(str(APP), default_timeout=120)


def test_two_sessions_share_one_job_and_both_see_it_progress():
    board = JobBoard()
    steps = [threading.Event() for _ in range(3)]

    def work(progress, log):
        progress("study", 0, 2)
        progress("dense s0: train", 1, 4)
        steps[0].wait(10)
        log("[1/2] run dense s0: done")
        progress("study", 1, 2)
        progress("magnitude 50% s0: prune", 0, 1)
        steps[1].wait(10)
        return "report"

    first = board.start("study", "runs", work)
    second = board.start("study", "runs", lambda p, lg: pytest.fail("a second job was started"))
    assert first is second
    for _ in range(100):
        seen = board.get("study")
        if seen.current:
            break
        threading.Event().wait(0.05)
    assert seen.running and seen.study == (0.0, 2.0) and seen.current == "dense s0: train"
    steps[0].set()
    for _ in range(100):
        seen = board.get("study")
        if seen.study[0] == 1:
            break
        threading.Event().wait(0.05)
    assert seen.study == (1.0, 2.0) and seen.landed == 1
    assert seen.current == "magnitude 50% s0: prune"
    steps[1].set()
    board.join("study", timeout=10)
    assert board.get("study").state == "done" and board.get("study").result == "report"


def test_a_session_follows_the_job_another_session_started(study, monkeypatch):
    """B opened Compute before A pressed the button: B polls, then shows A's live progress."""
    real_get = api.get
    polls: list[float | None] = []
    real_fragment = st.fragment

    def fragment(*args, run_every=None, **kwargs):
        polls.append(run_every)
        return real_fragment(*args, run_every=run_every, **kwargs)

    monkeypatch.setattr(st, "fragment", fragment)
    step, reached = [threading.Event() for _ in range(2)], [threading.Event() for _ in range(2)]

    def compute(study, store, *, only=None, progress, log, executor=None):
        runs = study.runs()
        # The Compute page reads a pass's progress from its live file in the store.
        with LiveFile(store.root, study=study.name, progress=progress, log=log) as live:
            live("study", 0, len(runs))
            live(f"{runs[0].label}: train", 1, 4)
            live.flush(force=True)
            reached[0].set()
            assert step[0].wait(60), "the test never let the job go on"
            real_get(runs[0], store=store)  # one real result lands in the store
            live.log(f"[1/{len(runs)}] run {runs[0].label}: done")
            live("study", 1, len(runs))
            live(f"{runs[1].label}: train", 0, 4)
            live.flush(force=True)
            reached[1].set()
            assert step[1].wait(60), "the test never let the job end"
        return plan.Report(done=1)

    monkeypatch.setattr(plan, "compute_study", compute)
    a, b = session().run(), session().run()
    b.switch_page(COMPUTE).run()
    assert polls[-1] is not None, "an idle Compute page must still poll for other sessions' jobs"
    a.switch_page(COMPUTE).run()
    a.button(key="start_runs").click().run()
    try:
        assert reached[0].wait(30)
        b.run()  # what B's poll shows
        assert not b.exception, [e.value for e in b.exception]
        assert polls[-1] == 1.0  # B now polls every second
        texts = [m.value for m in b.markdown] + [c.value for c in b.caption]
        assert any("0 of 2 results" in t for t in texts), texts
        bars = [p.text for p in b.get("progress")]
        assert any(t and t.startswith("dense s0: train: 1 of 4") for t in bars), bars
        assert any(t.startswith("0 of 2 cached") for t in texts), texts
        assert b.button(key="start_runs").disabled
        step[0].set()
        assert reached[1].wait(60)
        b.run()
        texts = [m.value for m in b.markdown] + [c.value for c in b.caption]
        assert any("1 of 2 results" in t for t in texts), texts
        assert any(t.startswith("1 of 2 cached") for t in texts), texts
        assert any("train: 0 of 4" in (p.text or "") for p in b.get("progress"))
    finally:
        step[0].set(), step[1].set()
        data.job_board().join(data._job_key(data.load()), timeout=60)
    b.run()
    assert not b.exception and any("1 computed" in s.value for s in b.success)


def test_a_page_that_raises_is_one_error_line(study, monkeypatch, compute_forbidden):
    from dashboard import figures

    def broken(runs):
        raise ValueError("no column 'Run'\nTraceback (most recent call last): ...")

    monkeypatch.setattr(figures, "runs_table", broken)
    at = session().run()
    assert not at.exception, [e.value for e in at.exception]
    (error,) = at.error
    assert error.value == "This page cannot be drawn: ValueError: no column 'Run'"
    assert at.sidebar.toggle(key="present") is not None  # the sidebar is whole


def test_the_compute_page_runs_the_work_on_the_chosen_device(study, monkeypatch):
    """The Device box offers auto and this machine's devices; the job's executor uses the
    one chosen, and says so in the job's log."""
    seen: dict = {}

    def compute(study, store, *, only=None, progress, log, executor=None):
        seen["devices"] = [str(d) for d in executor.devices]
        return plan.Report()

    monkeypatch.setattr(plan, "compute_study", compute)
    at = session().run()
    at.switch_page(COMPUTE).run()
    box = at.selectbox(key="compute_device")
    assert box.options[:2] == ["auto", "cpu"] or box.options[0] == "auto"
    assert "cpu" in box.options
    box.select("cpu").run()
    at.button(key="start_runs").click().run()
    data.job_board().join(data._job_key(data.load()), timeout=60)
    assert seen["devices"] == ["cpu"]
    assert any("computing on cpu" in line for line in data.compute_job(data.load()).log)


def test_a_device_not_here_is_refused_before_a_job_starts(study):
    from analysis.device import DeviceError, available

    if any(d.startswith("cuda") for d in available()):
        pytest.skip("CUDA exists here")
    at = session().run()  # the page's loaded study, as the page sees it
    assert not at.exception
    with pytest.raises(DeviceError, match="device 'cuda' is not available here"):
        data.start_compute(data.load(), only="runs", device="cuda")
    assert data.compute_job(data.load()) is None
