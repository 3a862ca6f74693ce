"""The server's warm-up (dashboard/warmup.py, dashboard/serve.py, warmup.prewarm): a script run
waits for it, a failed one releases the wait, and the server process starts it before
streamlit. The whole path, served, is in tests/test_dashboard_browser.py (slow)."""

from __future__ import annotations

import logging
import threading

import pytest

from dashboard import data, serve, thirdparty, warmup


@pytest.fixture
def fresh(monkeypatch):
    """The warm-up module as in a new server process (no warm-up started)."""
    monkeypatch.setattr(warmup, "_started", threading.Event())
    monkeypatch.setattr(warmup, "_done", threading.Event())


def test_without_a_warm_up_a_script_run_goes_on_at_once(fresh):
    assert warmup.ready() and warmup.wait(timeout=0)


def test_a_script_run_waits_for_the_warm_up(fresh):
    release = threading.Event()
    thread = warmup.start(lambda: release.wait(10))
    assert not warmup.ready() and not warmup.wait(timeout=0.05)  # still warming up
    release.set()
    assert warmup.wait(timeout=10) and warmup.ready()
    thread.join(5)


def test_a_failed_warm_up_is_logged_and_releases_the_wait(fresh, caplog):
    def broken() -> None:
        raise RuntimeError("no torch here")

    with caplog.at_level(logging.ERROR, logger="dashboard.warmup"):
        warmup.start(broken).join(5)
    assert warmup.wait(timeout=0) and "warm-up failed" in caplog.text


def test_the_server_process_starts_the_warm_up_before_streamlit(fresh, monkeypatch):
    seen = []
    monkeypatch.setattr(serve, "warm", lambda: seen.append("warm"))

    def streamlit() -> int:
        seen.append(("streamlit", warmup._started.is_set()))
        return 0

    monkeypatch.setattr(thirdparty, "streamlit_main", lambda: streamlit)
    monkeypatch.setattr("sys.argv", ["serve", "run", "app.py"])
    with pytest.raises(SystemExit) as end:
        serve.main()
    assert end.value.code == 0
    assert ("streamlit", True) in seen
    assert warmup.wait(timeout=5) and "warm" in seen


def test_prewarm_waits_for_the_runtime_and_gives_up_without_one(monkeypatch):
    monkeypatch.setattr(thirdparty, "streamlit_runtime_started", lambda: False)
    read = []
    monkeypatch.setattr(data, "read_summary", lambda loaded: read.append(loaded) or ({}, None))
    assert warmup.prewarm(wait_s=0.1) is False and not read  # never a throw-away cache


def test_prewarm_reads_the_summary_once_the_runtime_is_up(monkeypatch, tmp_path):
    monkeypatch.setattr(thirdparty, "streamlit_runtime_started", lambda: True)
    monkeypatch.setenv(data.STUDY_ENV, str(tmp_path / "missing.toml"))
    assert warmup.prewarm(wait_s=1) is False  # a study that cannot be read: no summary, no raise
    read = []
    monkeypatch.setattr(data, "read_summary", lambda loaded: read.append(loaded) or ({}, None))
    assert warmup.prewarm(wait_s=1) is True and len(read) == 1
