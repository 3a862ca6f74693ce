"""Headless Chromium settings, a served dashboard and a settled page: shared by the browser
tests and the page benchmark."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

#: Debian's Chromium (package ``chromium``); never a browser downloaded by a test tool.
CHROMIUM = Path("/usr/bin/chromium")
#: Flags for a closed network: without the background-networking ones Chromium keeps
#: trying to reach Google's hosts.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def free_port() -> int:
    """A loopback port nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start(
    cmd: list[str], log: Path, env: dict | None = None, cwd: Path | None = None
) -> subprocess.Popen:
    """Run ``cmd`` in a process group of its own (so a CLI and the streamlit server it starts
    stop together), in ``cwd``, its output going to ``log``."""
    with open(log, "wb") as out:
        return subprocess.Popen(
            cmd, stdout=out, stderr=subprocess.STDOUT, start_new_session=True, env=env, cwd=cwd
        )


def stop(proc: subprocess.Popen) -> None:
    """Stop ``proc``'s process group: SIGTERM, then SIGKILL after 20 s."""
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=20)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        try:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
        except ProcessLookupError:
            pass


def wait_until_serving(
    proc: subprocess.Popen, log: Path, timeout: float = 180, url: str | None = None
) -> str:
    """The server's URL once it answers its health check.

    ``url`` is the address when the caller knows it; otherwise the one the CLI printed
    (``at http://127.0.0.1:PORT``). Raises RuntimeError, with the log, when the process
    exits or does not serve within ``timeout`` seconds.
    """
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the server exited with {proc.returncode}:\n{log.read_text()}")
        found = url or next(
            iter(re.findall(r"at (http://127\.0\.0\.1:\d+)", log.read_text())), None
        )
        if found:
            try:
                with urllib.request.urlopen(f"{found}/_stcore/health", timeout=2) as resp:
                    if resp.read().decode().strip() == "ok":
                        return found
            except OSError:
                pass
        time.sleep(0.3)
    raise RuntimeError(f"the server did not serve within {timeout:.0f} s:\n{log.read_text()}")


@contextlib.contextmanager
def serving(cmd: list[str], log: Path, timeout: float = 180) -> Iterator[str]:
    """``cmd`` (a ``prunescope dashboard``/``demo`` line) running in ``log``'s folder; its
    URL once it serves; stopped (with its server) after."""
    proc = start(cmd, log, cwd=log.parent)
    try:
        yield wait_until_serving(proc, log, timeout)
    finally:
        stop(proc)


#: Plotly charts drawn in the page: a ``.js-plotly-plot`` holding its ``.main-svg``. (Each
#: chart has two ``.main-svg``, so counting those alone passes with half the charts drawn.)
DRAWN = "Array.from(document.querySelectorAll('.js-plotly-plot'))"
DRAWN += ".filter((p) => p.querySelector('.main-svg')).length"


def settle(page, charts: int, timeout_ms: int = 120_000) -> None:
    """Wait for the script run to finish and ``charts`` plotly charts to be drawn.

    Waits for the title, then for ``charts`` drawn charts, then for the status widget
    (running) to go, then for the drawn count to hold still for a second.
    """
    page.wait_for_selector("[data-testid=stMain]", timeout=timeout_ms)
    page.wait_for_selector("h1", timeout=timeout_ms)
    if charts:
        page.wait_for_function(f"{DRAWN} >= {charts}", timeout=timeout_ms)
    page.wait_for_function(
        "!document.querySelector('[data-testid=stStatusWidget]')", timeout=timeout_ms
    )
    drawn = page.evaluate(DRAWN)
    for _ in range(20):  # plotly draws a chart after its element mounts: wait for a quiet second
        page.wait_for_timeout(1000)
        now = page.evaluate(DRAWN)
        if now == drawn:
            return
        drawn = now
