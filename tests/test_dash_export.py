"""The export never hangs on its browser, and a failed write is one line naming what, where and why.

A fake browser (a script that starts and sleeps, never answering on its pipe)
stands in for Chromium, with a start deadline of two seconds through
``$PRUNESCOPE_START_TIMEOUT``; a full disk is ``OSError(ENOSPC)`` raised by the one
atomic-write function.
"""

from __future__ import annotations

import errno
import time
from pathlib import Path

import plotly.graph_objects as go
import pytest

from analysis import atomic
from analysis.errors import PrunescopeError, StoreError
from analysis.store import Store
from dashboard import export
from dashboard.external import START_TIMEOUT_ENV, StartTimeout
from tests.test_dash_server import gone
from tests.test_dashboard_upload import STUDY
from tests.test_export import prefilled, run_cli

#: Starts, writes its pid, and sleeps: a browser that never answers.
SLEEPY = "#!/bin/sh\necho $$ > '{pids}'\nexec sleep 600\n"


@pytest.fixture
def sleepy(tmp_path, monkeypatch) -> Path:
    """$BROWSER_PATH set to a browser that never answers; returns the file its pid goes to."""
    pids = tmp_path / "browser.pid"
    script = tmp_path / "chromium"
    script.write_text(SLEEPY.format(pids=pids))
    script.chmod(0o755)
    monkeypatch.setenv("BROWSER_PATH", str(script))
    monkeypatch.setenv(START_TIMEOUT_ENV, "2")
    return pids


def test_a_browser_that_never_answers_times_out_and_is_ended(sleepy):
    started = time.monotonic()
    with pytest.raises(StartTimeout) as err:
        export.render([("f", go.Figure(), "png", 300)])
    took = time.monotonic() - started
    message = str(err.value)
    assert "did not answer within 2 s" in message and "chromium" in message
    assert "closed immediately" not in message and "\n" not in message
    assert took < 30, took
    assert gone(int(sleepy.read_text())), "the browser was left running"


def test_export_writes_the_html_when_the_browser_hangs(sleepy, tmp_path_factory, capsys):
    study, cache = prefilled(tmp_path_factory)
    out = tmp_path_factory.mktemp("hung")
    started = time.monotonic()
    status, stdout, stderr = run_cli(
        capsys, "export", str(study), "--out", str(out), "--format", "html,png",
        "--cache-dir", str(cache), "--quiet",
    )  # fmt: skip
    assert status == 1 and time.monotonic() - started < 60
    (line,) = [x for x in stderr.splitlines() if x.startswith("prunescope: export:")]
    assert line.startswith("prunescope: export: png failed: the browser")
    assert "did not answer within 2 s" in line and "Traceback" not in stderr
    assert (out / "report.html").stat().st_size > 1_000_000 and not (out / "figures").exists()
    assert gone(int(sleepy.read_text()))


def test_interrupting_the_browser_start_ends_it(sleepy, monkeypatch):
    """Ctrl+C while the browser starts: KeyboardInterrupt, not 'closed immediately'; none left."""
    import os
    import signal
    import threading

    monkeypatch.setenv(START_TIMEOUT_ENV, "60")
    ctrl_c = threading.Timer(1.5, os.kill, (os.getpid(), signal.SIGINT))
    ctrl_c.start()
    try:
        with pytest.raises(KeyboardInterrupt):
            export.render([("f", go.Figure(), "png", 300)])
    finally:
        ctrl_c.cancel()
    assert gone(int(sleepy.read_text()))


def full_disk(monkeypatch) -> None:
    """Every atomic write fails as on a full disk."""

    def no_space(path, data, *, atomic=False):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(atomic, "write_synced", no_space)


def test_a_full_disk_fails_the_export_in_one_line(tmp_path_factory, monkeypatch, capsys):
    study, cache = prefilled(tmp_path_factory)
    out = tmp_path_factory.mktemp("full")
    full_disk(monkeypatch)
    status, _, stderr = run_cli(
        capsys, "export", str(study), "--out", str(out), "--format", "html",
        "--cache-dir", str(cache), "--quiet",
    )  # fmt: skip
    assert status == 1 and "Traceback" not in stderr
    (line,) = [x for x in stderr.splitlines() if x.startswith("prunescope: export:")]
    assert "html failed: could not write the html export" in line  # what
    assert str(out / "report.html") in line  # where
    assert "while writing a temp file" in line  # the step
    assert "No space left on device" in line and "is full" in line  # the reason
    assert not list(out.iterdir())  # no temp file left behind


def test_a_full_disk_refuses_an_upload_in_one_line(tmp_path, monkeypatch):
    from dashboard import data

    full_disk(monkeypatch)
    with pytest.raises(StoreError) as err:
        data.save_upload(STUDY.format(name="x").encode(), tmp_path, name="mine.toml")
    message = str(err.value)
    assert "uploaded study 'mine.toml'" in message and str(tmp_path / ".uploads") in message
    assert "No space left on device" in message and "\n" not in message
    assert not (tmp_path / ".uploads").exists() or not list((tmp_path / ".uploads").iterdir())


def test_export_files_go_through_the_atomic_writer(tmp_path_factory, monkeypatch):
    study, cache = prefilled(tmp_path_factory)
    seen = []
    real = atomic.write_atomic

    def spy(path, data, *, what):
        seen.append((Path(path).name, what))
        return real(path, data, what=what)

    monkeypatch.setattr(export.build, "write_atomic", spy)
    out = tmp_path_factory.mktemp("spy")
    report = export.export_study(study, Store(cache), out, ["html"])
    assert seen == [("report.html", "the html export")] and not report.failed


def test_nothing_computed_is_still_an_error(tmp_path):
    summary = {"counts": {"cached": 0, "runs": 2}, "study": {"name": "s", "cache_dir": "c"}}
    with pytest.raises(PrunescopeError, match="nothing to export"):
        export.build_export(summary, None, ["html"])
