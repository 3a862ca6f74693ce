"""Starting the dashboard's server: loopback flags, a bounded start, output kept out of the terminal.

Real processes stand in for streamlit (fast): one that answers HTTP after printing
streamlit-like lines, one that listens but never answers, one that spawns a child
and sleeps. No streamlit server is started here (tests/test_dashboard_browser.py
does that, marked slow).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from analysis.errors import PrunescopeError
from dashboard import cli, server
from dashboard.external import START_TIMEOUT_ENV, end_group, start_timeout

#: Prints what streamlit prints, answers HTTP for ``argv[2]`` seconds, then exits 0.
ANSWERING = """
import http.server, sys, time
print("  You can now view your Streamlit app in your browser.", flush=True)
print("Uvicorn server started on 127.0.0.1", file=sys.stderr, flush=True)
class Ok(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200); self.end_headers(); self.wfile.write(b"ok")
    def log_message(self, *a):
        print("GET", file=sys.stderr, flush=True)
srv = http.server.HTTPServer(("127.0.0.1", int(sys.argv[1])), Ok)
srv.timeout = 0.1
end = time.time() + float(sys.argv[2])
while time.time() < end:
    srv.handle_request()
"""

#: Listens on the port (connections are accepted by the kernel) and never answers;
#: starts a child of its own first, and writes both pids to ``argv[2]``.
SILENT = """
import socket, subprocess, sys, time
child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
open(sys.argv[2], "w").write(f"{child.pid}")
s = socket.socket(); s.bind(("127.0.0.1", int(sys.argv[1]))); s.listen()
time.sleep(600)
"""


def alive(pid: int) -> bool:
    """Whether a process with this pid exists (and is not a zombie)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    stat = Path(f"/proc/{pid}/stat")
    return not (stat.exists() and stat.read_text().split(")")[-1].split()[0] == "Z")


def gone(pid: int, within: float = 10.0) -> bool:
    """Whether the process ends within ``within`` seconds."""
    end = time.monotonic() + within
    while time.monotonic() < end:
        if not alive(pid):
            return True
        time.sleep(0.05)
    return False


@pytest.fixture
def study(tmp_path) -> Path:
    """A study file (never loaded here: the server is a stand-in)."""
    path = tmp_path / "s.toml"
    path.write_text('name = "s"\n')
    return path


def fake(monkeypatch, script: str, *extra: str) -> None:
    """Make the dashboard start ``python -c script PORT *extra`` instead of streamlit."""
    monkeypatch.setattr(
        server, "streamlit_command", lambda port: [sys.executable, "-c", script, str(port), *extra]
    )


def test_server_output_goes_to_a_log_in_the_store_not_the_terminal(
    study, tmp_path, monkeypatch, capfd
):
    fake(monkeypatch, ANSWERING, "1.5")
    cache = tmp_path / "cache"
    status = cli.main(["dashboard", str(study), "--cache-dir", str(cache), "--port", "8731"])
    out, err = capfd.readouterr()  # file descriptors: a child's output would land here
    assert status == 0, err
    assert "Uvicorn" not in out + err and "view your Streamlit app" not in out + err
    (log,) = (cache / "logs").iterdir()
    assert "Uvicorn server started" in log.read_text() and "view your Streamlit" in log.read_text()
    assert f"server log: {log}" in err  # said in one line
    port = log.stem.split("-")[-1]
    assert f"at http://127.0.0.1:{port}" in out


def test_a_server_that_never_answers_is_stopped_with_one_line(study, tmp_path, monkeypatch, capsys):
    pids = tmp_path / "pids"
    fake(monkeypatch, SILENT, str(pids))
    monkeypatch.setenv(START_TIMEOUT_ENV, "1.5")
    started = time.monotonic()
    status = cli.main(["dashboard", str(study), "--cache-dir", str(tmp_path / "c")])
    took = time.monotonic() - started
    err = capsys.readouterr().err
    assert status == 2 and took < 30
    (line,) = [x for x in err.splitlines() if x.startswith("prunescope: error:")]
    assert "did not answer" in line and "within 1.5 s" in line and "Traceback" not in err
    assert "dashboard-" in line  # where its output went
    assert gone(int(pids.read_text())), "the server's child outlived it"


def test_a_server_that_exits_early_says_so(study, tmp_path, monkeypatch, capsys):
    fake(monkeypatch, "import sys; print('boom', file=sys.stderr); sys.exit(3)")
    status = cli.main(["dashboard", str(study), "--cache-dir", str(tmp_path / "c")])
    err = capsys.readouterr().err
    assert status == 2 and "exited (status 3) before it answered" in err


def test_end_group_ends_the_children_too(tmp_path):
    pids = tmp_path / "pids"
    proc = subprocess.Popen([sys.executable, "-c", SILENT, "0", str(pids)], start_new_session=True)
    end = time.monotonic() + 20
    while not (pids.exists() and pids.read_text()) and time.monotonic() < end:
        time.sleep(0.05)
    child = int(pids.read_text())
    assert end_group(proc, grace=5) is not None
    assert gone(proc.pid) and gone(child)
    assert end_group(proc) is not None  # twice is fine


@pytest.mark.parametrize("raw", ["0", "-1", "soon", "nan", "inf"])
def test_a_bad_start_timeout_names_the_variable(monkeypatch, raw):
    monkeypatch.setenv(START_TIMEOUT_ENV, raw)
    with pytest.raises(PrunescopeError, match=START_TIMEOUT_ENV):
        start_timeout(5)


def test_start_timeout_default_and_override(monkeypatch):
    monkeypatch.delenv(START_TIMEOUT_ENV, raising=False)
    assert start_timeout(7) == 7
    monkeypatch.setenv(START_TIMEOUT_ENV, "0.5")
    assert start_timeout(7) == 0.5


class FakeServer:
    """Stands in for the streamlit subprocess: records how it was started."""

    started: list[tuple[list[str], dict]] = []

    def __init__(self, cmd, **kwargs):
        FakeServer.started.append((cmd, kwargs))
        self.pid = 2**22 + 7  # no such process: signals to it fail harmlessly

    def poll(self):
        return None

    def wait(self, timeout=None):
        return 0


def test_dashboard_command_serves_on_loopback_only(study, tmp_path, monkeypatch, capsys):
    FakeServer.started.clear()
    monkeypatch.setattr(server.subprocess, "Popen", FakeServer)
    monkeypatch.setattr(server, "answers", lambda port, timeout=2.0: True)
    cache = tmp_path / "cache"
    assert cli.main(["dashboard", str(study), "--cache-dir", str(cache), "--port", "8765"]) == 0
    ((cmd, kwargs),) = FakeServer.started
    flags = dict(zip(cmd[5::2], cmd[6::2], strict=True))  # after the script: --name value
    assert cmd[1:4] == ["-m", "dashboard.serve", "run"] and cmd[4].endswith("dashboard/app.py")
    assert flags["--server.address"] == "127.0.0.1"
    assert flags["--server.enableXsrfProtection"] == "true"
    assert flags["--browser.gatherUsageStats"] == "false"
    assert flags["--client.showErrorDetails"] == "none"
    assert flags["--server.maxUploadSize"] == "1"
    assert cmd.count("--server.allowedHosts") == 2
    env = kwargs["env"]
    assert env["PRUNESCOPE_STUDY"] == str(study) and env["PRUNESCOPE_CACHE"] == str(cache)
    # Its own process group (ended whole), its output in a file and never the terminal's.
    assert kwargs["start_new_session"] is True and kwargs["stderr"] == subprocess.STDOUT
    assert kwargs["stdout"] not in (None, sys.stdout, sys.stderr)
    port = int(flags["--server.port"])
    assert f"http://127.0.0.1:{port}" in capsys.readouterr().out


def test_dashboard_command_rejects_a_missing_study(tmp_path, capsys):
    assert cli.main(["dashboard", str(tmp_path / "nope.toml")]) == 2
    assert "no study file" in capsys.readouterr().err


def test_a_read_only_store_keeps_no_log_and_says_so(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    log, path, line = server.open_log(blocker, 8501)  # a folder cannot be made under a file
    assert log == subprocess.DEVNULL and path is None and line.startswith("server log: not kept")


@pytest.mark.parametrize(
    ("argv", "ci", "tty", "opens"),
    [
        ([], None, True, True),
        (["--no-dashboard"], None, True, False),
        ([], "true", True, False),
        ([], None, False, False),
    ],
)
def test_demo_opens_the_dashboard_only_when_asked(monkeypatch, argv, ci, tty, opens):
    opened, order = [], []

    class Started:
        """Stands in for the started server: records that demo served it, and when."""

        def serve(self):
            order.append("serve")
            return 0

        def announce(self):
            return lambda: order.append("address")

        def stop(self):
            order.append("stop")

    def start(study, **_):
        opened.append(study)
        order.append("start")
        return Started()

    monkeypatch.setattr(cli, "cmd_compute", lambda args: order.append("compute") or 0)
    monkeypatch.setattr(cli, "cmd_show", lambda args: 0)
    monkeypatch.setattr(server, "start_dashboard", start)
    monkeypatch.setattr(cli.sys.stdout, "isatty", lambda: tty)
    if ci is None:
        monkeypatch.delenv("CI", raising=False)
    else:
        monkeypatch.setenv("CI", ci)
    assert cli.main(["demo", *argv]) == 0
    assert bool(opened) is opens
    # The server starts before the compute pass (their start-ups overlap), its address is
    # printed before anything else, and it serves after the pass.
    assert order == (["start", "address", "compute", "serve"] if opens else ["compute"])


def test_demo_stops_its_server_when_interrupted(monkeypatch):
    order = []

    class Started:
        """A started server that records being stopped."""

        def serve(self):
            order.append("serve")
            return 0

        def announce(self):
            return lambda: None

        def stop(self):
            order.append("stop")

    def interrupted(args):
        raise KeyboardInterrupt

    monkeypatch.setattr(server, "start_dashboard", lambda study, **_: Started())
    monkeypatch.setattr(cli, "cmd_compute", interrupted)
    monkeypatch.setattr(cli.sys.stdout, "isatty", lambda: True)
    monkeypatch.delenv("CI", raising=False)
    assert cli.main(["demo"]) == 130
    assert order == ["stop"]


def test_sigterm_during_the_wait_stops_the_server(study, tmp_path, monkeypatch):
    fake(monkeypatch, SILENT, str(tmp_path / "pids"))
    monkeypatch.setenv(START_TIMEOUT_ENV, "60")
    dash = server.start_dashboard(study, port=8741, cache_dir=tmp_path / "c")
    old = signal.signal(signal.SIGALRM, lambda *_: os.kill(os.getpid(), signal.SIGTERM))
    try:
        signal.setitimer(signal.ITIMER_REAL, 1.0)
        assert dash.serve() == 0  # SIGTERM is taken as Ctrl+C: stopped, not hung
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)
    assert gone(dash.server.pid)


def test_announce_prints_the_address_once_the_server_answers(study, tmp_path, monkeypatch, capsys):
    fake(monkeypatch, ANSWERING, "30")
    dash = server.start_dashboard(study, port=8751, cache_dir=tmp_path / "c")
    try:
        join = dash.announce()
        join()
        out = capsys.readouterr().out
        assert f"{study.name} at {dash.url}" in out and server.answers(dash.port)
    finally:
        dash.stop()


def test_announce_hands_a_failed_start_to_the_caller(study, tmp_path, monkeypatch, capsys):
    fake(monkeypatch, "import sys; sys.exit(3)")
    dash = server.start_dashboard(study, port=8752, cache_dir=tmp_path / "c")
    join = dash.announce()
    with pytest.raises(PrunescopeError, match=r"exited \(status 3\) before it answered"):
        join()
    assert " at http" not in capsys.readouterr().out


def test_demo_stops_its_server_when_terminated_before_serving(monkeypatch):
    """SIGTERM while demo computes (before it serves) stops the server it started, which
    runs in a process group of its own, and leaves the SIGTERM handler as it was."""
    order = []

    class Started:
        """A started server that records being stopped."""

        def serve(self):
            order.append("serve")
            return 0

        def announce(self):
            return lambda: None

        def stop(self):
            order.append("stop")

    def terminated(args):
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(5)  # the handler interrupts this
        order.append("not interrupted")
        return 0

    before = signal.getsignal(signal.SIGTERM)
    monkeypatch.setattr(server, "start_dashboard", lambda study, **_: Started())
    monkeypatch.setattr(cli, "_all_cached", lambda args: False)
    monkeypatch.setattr(cli, "cmd_compute", terminated)
    monkeypatch.setattr(cli.sys.stdout, "isatty", lambda: True)
    monkeypatch.delenv("CI", raising=False)
    assert cli.main(["demo"]) == 130
    assert order == ["stop"]
    assert signal.getsignal(signal.SIGTERM) is before
