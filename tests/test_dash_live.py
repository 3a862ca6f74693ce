"""Live work in the dashboard: a terminal's compute shown and stopped, pages that follow results."""

from __future__ import annotations

import json
import os
import time
from dataclasses import replace
from pathlib import Path

import pytest

pytest.importorskip("streamlit")
from streamlit.testing.v1 import AppTest  # noqa: E402

from analysis import live as live_mod  # noqa: E402
from analysis import plan  # noqa: E402
from analysis.live import Live, LiveFile, Step  # noqa: E402
from analysis.store import Store  # noqa: E402
from dashboard import cli  # noqa: E402
from dashboard.jobs import JobBoard  # noqa: E402
from dashboard.live import fingerprint, headline, source_line, step_text  # noqa: E402
from tests._tiny import tiny_study, tiny_text  # noqa: E402

APP = Path(__file__).resolve().parents[1] / "dashboard" / "app.py"
TIMEOUT = 120


def fake_pass(cache: Path, **changes) -> Live:
    """A live file of a ``prunescope compute`` in a terminal (this process stands in for it)."""
    now = time.time()
    lv = Live(
        id=f"{os.getpid()}-feed0001", study="tiny-analyses", part=None, origin="command line",
        command="prunescope compute tiny.toml", host=live_mod.this_host(), pid=os.getpid(),
        started=now - 30, updated=now, done=1, total=3, computed=1, working_since=now - 30,
        last_result=now - 10,
        steps=(Step("dense s1: train", 40, 100, since=now - 9, since_done=10, updated=now),),
    )  # fmt: skip
    lv = replace(lv, **changes)
    live_mod.live_dir(cache).mkdir(parents=True, exist_ok=True)
    (live_mod.live_dir(cache) / f"{lv.id}.json").write_text(json.dumps(lv.to_json()))
    return lv


@pytest.fixture
def empty_app(tmp_path, compute_forbidden, monkeypatch):
    """An AppTest on the tiny study (two runs) over an empty store; (app, store root)."""
    study = tmp_path / "tiny.toml"
    study.write_text(tiny_text(epochs=1, magnitude=False))
    cache = tmp_path / "cache"
    monkeypatch.setenv("PRUNESCOPE_STUDY", str(study))
    monkeypatch.setenv("PRUNESCOPE_CACHE", str(cache))
    return AppTest.from_file(str(APP), default_timeout=TIMEOUT), cache


def test_compute_page_shows_a_terminals_compute_and_stops_it(empty_app):
    at, cache = empty_app
    lv = fake_pass(cache)
    at.run()
    at.switch_page("app_pages/compute.py").run()
    assert not at.exception, [e.value for e in at.exception]
    assert any("Computing tiny-analyses" in m.value for m in at.markdown)
    assert any("1 of 3 results" in m.value and "left" in m.value for m in at.markdown)
    (where,) = [c.value for c in at.caption if "command line" in c.value]
    assert f"process {lv.pid}" in where and "prunescope compute tiny.toml" in where
    bars = [p.text for p in at.get("progress")]
    assert any(t and t.startswith("dense s1: train: 40 of 100 · about") for t in bars), bars
    assert at.button(key="start_runs").disabled  # one computation of the store at a time
    at.button(key=f"stop_{lv.id}").click().run()
    assert (live_mod.live_dir(cache) / f"{lv.id}.cancel").exists()
    assert any("Stopping at its next checkpoint" in i.value for i in at.info)


def test_a_dead_terminals_file_is_not_shown(empty_app):
    at, cache = empty_app
    fake_pass(cache, updated=time.time() - live_mod.STALE_S - 5)
    at.run()
    at.switch_page("app_pages/compute.py").run()
    assert not any("Computing" in m.value for m in at.markdown)
    assert not at.button(key="start_runs").disabled


def test_another_studys_pass_in_the_store_is_shown_and_blocks_nothing(empty_app):
    at, cache = empty_app
    fake_pass(cache, study="other")
    at.run()
    assert any("2 missing of 2 runs" in w.value for w in at.warning)  # not this study's work
    at.switch_page("app_pages/compute.py").run()
    assert any("Computing other" in m.value for m in at.markdown)
    assert not at.button(key="start_runs").disabled


def test_overview_shows_the_progress_instead_of_missing_runs(empty_app):
    at, cache = empty_app
    at.run()
    assert any("2 missing of 2 runs" in w.value for w in at.warning)
    fake_pass(cache)
    at.run()
    assert not at.exception
    assert not any("missing" in w.value for w in at.warning)
    assert any("Computing tiny-analyses" in i.value and "1 of 3" in i.value for i in at.info)


def test_a_page_reruns_when_a_pass_starts_ends_or_a_result_lands():
    lv = Live(
        id="1-a", study="s", part=None, origin="command line", command="", host="h", pid=1,
        started=0.0, updated=0.0,
    )  # fmt: skip
    idle = fingerprint([], None)
    assert fingerprint([], "state-1") == idle  # idle: the results' state is not even read
    assert fingerprint([lv], "state-1") != idle  # a pass started
    assert fingerprint([lv], "state-2") != fingerprint([lv], "state-1")  # a result landed
    assert fingerprint([replace(lv, done=5)], "state-1") == fingerprint([lv], "state-1")
    assert fingerprint([lv, replace(lv, id="2-b")], "state-1") != fingerprint([lv], "state-1")


def test_the_words_of_a_pass():
    now = 1000.0
    step = Step("landscape rows 0-8", 3, 9, since=900.0, since_done=0, updated=990.0)
    lv = Live(
        id="1-a", study="sweep", part="runs", origin="dashboard", command="", host="h", pid=7,
        started=880.0, updated=now, done=4, total=10, computed=2, working_since=900.0,
        last_result=990.0, steps=(step,),
    )  # fmt: skip
    assert headline(lv, now) == (
        "**Computing sweep (runs)** · running 2 min 00 s · 4 of 10 results (2 computed here)"
        " · about 4 min 20 s left"  # 45 s a result, 6 to go, 10 s since
    )
    assert step_text(step, now) == "landscape rows 0-8: 3 of 9 · about 2 min 50 s left"
    assert source_line(lv).startswith("Started from the dashboard on `h` (process 7)")


def test_cli_compute_writes_the_live_file_and_stops_when_asked(tmp_path, monkeypatch, capsys):
    study = tmp_path / "tiny.toml"
    study.write_text(tiny_text(seeds=(0, 1), epochs=2, magnitude=False))
    cache = tmp_path / "cache"
    seen: list[Live] = []

    class Watched(LiveFile):
        """The pass's live file as the dashboard reads it at the first training step."""

        def __call__(self, task: str, done: float, total: float) -> None:
            super().__call__(task, done, total)
            if task.endswith(": train") and not seen:
                self.flush(force=True)
                seen.extend(live_mod.running(self.root))
                live_mod.request_cancel(self.root, self.id)

    monkeypatch.setattr(plan, "LiveFile", Watched)
    # Check for the request at every event: on a quiet machine the tiny runs end within
    # one throttle interval of the request.
    monkeypatch.setattr(live_mod, "CANCEL_CHECK_S", 0.0)
    args = ["compute", str(study), "--cache-dir", str(cache), "--only", "runs", "--quiet"]
    code = cli.main(args)
    (lv,) = seen
    assert (lv.study, lv.origin, lv.pid, lv.done, lv.total) == (
        "tiny-analyses", "command line", os.getpid(), 0, 2,
    )  # fmt: skip
    assert [s.task for s in lv.steps] == ["dense s0: train"]
    assert code == 130 and "interrupted" in capsys.readouterr().err  # stopped as by Ctrl+C
    runs = tiny_study(seeds=(0, 1), epochs=2, magnitude=False).runs()
    assert sum(Store(cache).exists(r) for r in runs) <= 1  # the second run never started
    assert live_mod.running(cache) == [] and not list(live_mod.live_dir(cache).iterdir())


def test_a_dashboard_job_is_cancelled_through_its_live_file(tmp_path):
    board = JobBoard()

    def work(progress, log):
        with LiveFile(tmp_path, study="s", progress=progress, log=log) as tracker:
            for i in range(3000):
                tracker("dense s0: train", i, 3000)
                time.sleep(0.01)

    board.start("k", "runs", work)
    deadline = time.monotonic() + 20
    while not (lives := live_mod.running(tmp_path)) and time.monotonic() < deadline:
        time.sleep(0.05)
    (lv,) = lives
    assert lv.origin == "dashboard"
    live_mod.request_cancel(tmp_path, lv.id)
    board.join("k", timeout=20)
    job = board.get("k")
    assert job.state == "cancelled" and not job.running and job.error is None
