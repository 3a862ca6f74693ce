"""Starting the dashboard's Streamlit server: loopback only, a bounded start, output to a log file.

``prunescope dashboard`` and ``prunescope demo`` start the server through
:func:`start_dashboard` (``python -m dashboard.serve run dashboard/app.py`` with our
settings) and wait in :meth:`Dashboard.serve`. The server runs in a process
group of its own, so Ctrl+C stops it through the command that started it, and
:meth:`Dashboard.stop` ends the whole group. Its output (streamlit's banner,
uvicorn's start line, warnings) goes to a log file in the store
(``<cache>/logs/dashboard-<port>.log``), never into the terminal's progress bars.
A server that starts but never answers is given :data:`SERVER_START_TIMEOUT`
seconds (``$PRUNESCOPE_START_TIMEOUT`` overrides it), then stopped with a one-line
error.
"""

from __future__ import annotations

import http.client
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from analysis.errors import PrunescopeError
from dashboard.external import START_TIMEOUT_ENV, StartTimeout, end_group, start_timeout

APP = Path(__file__).resolve().with_name("app.py")
#: Seconds from starting the server to its first HTTP answer (it imports torch first).
SERVER_START_TIMEOUT = 180.0
#: Where the server's output goes, under the store's root.
LOGS = "logs"

#: Streamlit settings passed on every start, so they hold whatever the working
#: directory (.streamlit/config.toml is read only from there; keep the two in step).
STREAMLIT_FLAGS = {
    "server.address": "127.0.0.1",
    "server.headless": "true",
    "server.enableCORS": "true",
    "server.enableXsrfProtection": "true",
    "server.maxUploadSize": "1",
    "server.maxMessageSize": "50",
    "server.fileWatcherType": "none",
    "server.runOnSave": "false",
    "server.enableStaticServing": "true",  # plotly.js for the iframes (dashboard.plotly_js)
    "browser.serverAddress": "127.0.0.1",
    "browser.gatherUsageStats": "false",
    "client.showErrorDetails": "none",
    "client.toolbarMode": "viewer",
    "runner.magicEnabled": "false",
    "theme.base": "light",
    "theme.primaryColor": "#2E3440",  # slate ink: no method's colour,
}
#: Host headers the server accepts (protects the loopback server from DNS rebinding).
ALLOWED_HOSTS = ("127.0.0.1", "localhost")


def free_port(port: int, tries: int = 20) -> int:
    """``port`` if nothing listens on 127.0.0.1 there, else the next free one."""
    for candidate in range(port, port + tries):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            # As the server will: a port left in TIME_WAIT by a stopped dashboard is free.
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                sock.bind(("127.0.0.1", candidate))
            except OSError:
                continue
            return candidate
    raise PrunescopeError(
        f"ports {port}-{port + tries - 1} on 127.0.0.1 are all taken; pick --port"
    )


def streamlit_command(port: int) -> list[str]:
    """``streamlit run dashboard/app.py`` bound to 127.0.0.1:``port`` with our settings."""
    cmd = [sys.executable, "-m", "dashboard.serve", "run", str(APP), "--server.port", str(port)]
    for name, value in STREAMLIT_FLAGS.items():
        cmd += [f"--{name}", value]
    for host in ALLOWED_HOSTS:
        cmd += ["--server.allowedHosts", host]
    return cmd


def open_log(cache_dir: Path, port: int) -> tuple[IO[bytes] | int, Path | None, str]:
    """The server's log file in the store (a fresh one per start), its path, and a line saying where.

    A store that cannot be written (read-only) keeps no log; the line says why.
    """
    path = Path(cache_dir) / LOGS / f"dashboard-{port}.log"
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        log = open(path, "wb")  # noqa: SIM115 - handed to the server, closed by Dashboard
    except OSError as err:
        return subprocess.DEVNULL, None, f"server log: not kept ({err.strerror or err} at {path})"
    return log, path, f"server log: {path}"


def answers(port: int, timeout: float = 2.0) -> bool:
    """Whether an HTTP server on 127.0.0.1:``port`` answers a request (any status) in time."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("GET", "/_stcore/health")
        conn.getresponse().read()
    except (OSError, http.client.HTTPException):
        return False
    finally:
        conn.close()
    return True


def start_dashboard(
    study: str | os.PathLike, *, port: int, cache_dir: Path, data_root: str | None = None
) -> Dashboard:
    """Start the dashboard's server for ``study`` on 127.0.0.1 (not waiting for it to answer).

    Raises:
        PrunescopeError: no study file there, or no free port near ``port``.
    """
    study = Path(study).expanduser().resolve()
    if not study.is_file():
        raise PrunescopeError(f"no study file at {study}")
    chosen = free_port(port)
    if chosen != port:
        print(f"note: port {port} is taken, using {chosen}", file=sys.stderr)
    cache = Path(cache_dir).expanduser().resolve()
    env = dict(os.environ, PRUNESCOPE_STUDY=str(study), PRUNESCOPE_CACHE=str(cache))
    if data_root:
        env["PRUNESCOPE_DATA"] = str(Path(data_root).expanduser().resolve())
    log, log_path, where = open_log(cache, chosen)
    print(where, file=sys.stderr)
    try:
        server = subprocess.Popen(
            streamlit_command(chosen), env=env, stdin=subprocess.DEVNULL, stdout=log,
            stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
    except OSError as err:
        raise PrunescopeError(f"could not start the dashboard server: {err}") from err
    finally:
        if log is not subprocess.DEVNULL:
            log.close()  # the server has its own copy of the file
    return Dashboard(server, study, chosen, log_path, time.monotonic())


def _interrupt(signum: int, frame: object) -> None:
    """SIGTERM handler: stop like Ctrl+C does."""
    raise KeyboardInterrupt


@dataclass
class Dashboard:
    """A started dashboard server."""

    server: subprocess.Popen
    study: Path
    port: int
    log: Path | None = None
    started: float = 0.0

    @property
    def url(self) -> str:
        """Where the dashboard is served."""
        return f"http://127.0.0.1:{self.port}"

    def _see_log(self) -> str:
        """' (its output: LOG)' or nothing."""
        return f"; its output is in {self.log}" if self.log else ""

    def wait_until_answering(self, timeout: float | None = None) -> None:
        """Wait until the server answers HTTP, at most ``timeout`` seconds from its start.

        Raises:
            StartTimeout: it did not answer in time (it is stopped first).
            PrunescopeError: it exited before answering.
        """
        timeout = timeout if timeout is not None else start_timeout(SERVER_START_TIMEOUT)
        deadline = self.started + timeout
        while True:
            if (status := self.server.poll()) is not None:
                raise PrunescopeError(
                    f"the dashboard server exited (status {status}) before it answered"
                    f"{self._see_log()}"
                )
            if answers(self.port, timeout=max(0.1, min(2.0, deadline - time.monotonic()))):
                return
            if time.monotonic() >= deadline:
                self.stop()
                raise StartTimeout(
                    f"the dashboard server did not answer on {self.url} within {timeout:g} s "
                    f"of its start, so it was stopped ({START_TIMEOUT_ENV} sets the wait)"
                    f"{self._see_log()}"
                )
            time.sleep(0.2)

    def announce(self, note: str = "") -> Callable[[], None]:
        """Print where the dashboard is as soon as it answers, from a thread, while the caller
        works on; returns ``join``, which waits for that line or raises why it never came
        (``wait_until_answering``'s errors). Join before printing anything else."""
        failed: list[BaseException] = []

        def run() -> None:
            try:
                self.wait_until_answering()
            except BaseException as err:  # noqa: BLE001  (re-raised by join, in the caller)
                failed.append(err)
                return
            print(f"prunescope dashboard: {self.study.name} at {self.url}{note}", flush=True)

        thread = threading.Thread(target=run, name="prunescope-announce", daemon=True)
        thread.start()

        def join() -> None:
            thread.join()
            if failed:
                raise failed[0]

        return join

    def serve(self) -> int:
        """Wait until it answers, say where it is, and wait until Ctrl+C (or SIGTERM) stops it."""
        previous = signal.signal(signal.SIGTERM, _interrupt)  # a terminated CLI stops its server
        try:
            self.wait_until_answering()
            print(f"prunescope dashboard: {self.study.name} at {self.url}  (Ctrl+C stops it)")
            sys.stdout.flush()
            return self.server.wait()
        except KeyboardInterrupt:
            self.stop()
            print("prunescope dashboard: stopped")
            return 0
        except BaseException:
            self.stop()
            raise
        finally:
            signal.signal(signal.SIGTERM, previous)

    def stop(self) -> None:
        """Stop the server and its process group (politely, then not)."""
        end_group(self.server, grace=15)
