"""Third-party names that are not documented API: each is looked up here, once, with a fallback.

The dashboard leans on a few names that their projects do not document as
public (choreographer's browser search and its browser's ``Popen``, streamlit's
command-line entry point). Each is reached only through a function below, which
falls back to something that still works (no search, no process handle,
``python -m streamlit``) when an upgrade renames it, and
``tests/test_dash_thirdparty.py`` fails when the locked versions no longer have
them, so an upgrade that drops one is seen at once rather than in the field.
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable


def chromium_search() -> Callable[[], str | None] | None:
    """choreographer's Chrome/Chromium search (the one kaleido uses), or None without one.

    ``choreographer.browsers.chromium.Chromium.find_browser(skip_local=...)`` is
    undocumented; ``skip_local=False`` also finds the Chrome ``kaleido.get_chrome``
    downloads.
    """
    try:
        from choreographer.browsers.chromium import Chromium
    except ImportError:
        return None
    find = getattr(Chromium, "find_browser", None)
    if not callable(find):
        return None
    return lambda: find(skip_local=False)


def browser_not_found_errors() -> tuple[type[BaseException], ...]:
    """The exception types kaleido raises when it finds no browser (empty if renamed)."""
    try:
        from choreographer.errors import ChromeNotFoundError
    except ImportError:
        return ()
    return (ChromeNotFoundError,)


def browser_process(browser: object) -> subprocess.Popen | None:
    """The ``Popen`` of a started choreographer/kaleido browser, or None when it has none.

    ``Browser.subprocess`` is set by ``Browser.open``; without it, the browser can
    only be ended through its own ``close``.
    """
    proc = getattr(browser, "subprocess", None)
    return proc if isinstance(proc, subprocess.Popen) else None


def streamlit_runtime_started() -> bool:
    """Whether this process's streamlit server runtime exists yet (False when unknown).

    ``streamlit.runtime.exists`` is not documented. ``st.cache_data`` called outside
    a script run shares the runtime's cache only once the runtime exists (before, it
    falls back to a throw-away in-memory cache), so a warm-up waits for it; without
    the function the warm-up's summary is skipped, and the first visit reads it.
    """
    try:
        from streamlit import runtime
    except ImportError:
        return False
    exists = getattr(runtime, "exists", None)
    return bool(exists()) if callable(exists) else False


def streamlit_main() -> Callable[[], object]:
    """Streamlit's command line (``streamlit ...``) as a function of ``sys.argv``.

    ``streamlit.web.cli.main`` is what the ``streamlit`` console script runs; the
    fallback runs ``python -m streamlit``, which calls the same entry point.
    """
    try:
        from streamlit.web.cli import main
    except ImportError:
        main = None
    if callable(main):
        return main

    def run_module() -> object:
        """``python -m streamlit`` in this process."""
        import runpy

        return runpy.run_module("streamlit", run_name="__main__", alter_sys=True)

    return run_module
