"""The server's warm-up: what the first visitor would wait for, done while the browser loads.

``python -m dashboard.serve`` (the server process) starts :func:`start` before
streamlit: a thread imports torch, every analysis and every figure module (about
6 s on a laptop CPU) and reads the study's summary into the dashboard's cache
(:func:`prewarm`), while the server already answers and the
browser fetches streamlit's frontend. A script run first calls :func:`wait`, so
it never imports those modules beside the warm-up thread (two threads importing
one package tree in different orders can deadlock on the import locks) and finds
the summary cached. Where no warm-up was started (AppTest, ``streamlit run``
directly) :func:`wait` returns at once.

This module imports nothing heavy: ``dashboard/app.py`` imports it first.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

#: Longest a script run waits for the warm-up (it then imports what it needs itself).
WAIT_S = 180.0

_log = logging.getLogger(__name__)
_done = threading.Event()
_started = threading.Event()


def start(work: Callable[[], None]) -> threading.Thread:
    """Run ``work`` on a daemon thread; :func:`wait` blocks until it has returned or raised.

    An exception ``work`` raises is logged (the server log) and otherwise ignored: the
    first script run then meets the same problem itself and shows it on the page.
    """

    def run() -> None:
        try:
            work()
        except Exception:  # noqa: BLE001  (a page shows the same failure, in one line)
            _log.exception("the dashboard's warm-up failed")
        finally:
            _done.set()

    _started.set()
    thread = threading.Thread(target=run, name="prunescope-warmup", daemon=True)
    thread.start()
    return thread


def prewarm(wait_s: float = 60.0) -> bool:
    """Read the default study's summary into the cache the first visit will use.

    Called by the warm-up thread (``dashboard.serve.warm``), outside any script run.
    ``st.cache_data`` shares its entries with script runs only once streamlit's runtime
    exists, so this waits for that (at most ``wait_s`` s; ``thirdparty``'s check).
    Returns whether the summary was read; never raises for a bad study or store (the
    page says why).
    """
    from dashboard import data, thirdparty

    deadline = time.monotonic() + wait_s
    while not thirdparty.streamlit_runtime_started():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    # Outside a script run streamlit logs "missing ScriptRunContext" per cached call.
    quiet = logging.getLogger("streamlit.runtime.scriptrunner_utils.script_run_context")
    level = quiet.level
    quiet.setLevel(logging.ERROR)
    try:
        summary, _ = data.read_summary(data.load())
    finally:
        quiet.setLevel(level)
    return summary is not None


def ready() -> bool:
    """Whether a script run may go on at once (no warm-up was started, or it is over)."""
    return not _started.is_set() or _done.is_set()


def wait(timeout: float = WAIT_S) -> bool:
    """Block until the warm-up is over (at most ``timeout`` s); True when it was or none ran."""
    if not _started.is_set():
        return True
    return _done.wait(timeout)
