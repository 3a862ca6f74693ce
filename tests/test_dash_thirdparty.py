"""The undocumented third-party names the dashboard uses still exist in the locked versions.

Each is looked up once, in ``dashboard/thirdparty.py``, with a fallback that keeps
working without it; these tests fail when an upgrade drops one, so the fallback
is a choice, not a surprise.
"""

from __future__ import annotations

import inspect
import subprocess

from dashboard import thirdparty


def test_choreographer_still_has_its_chromium_search():
    from choreographer.browsers.chromium import Chromium

    assert "skip_local" in inspect.signature(Chromium.find_browser).parameters
    search = thirdparty.chromium_search()
    assert search is not None
    found = search()
    assert found is None or isinstance(found, str)


def test_choreographer_still_names_its_no_browser_error():
    from choreographer.errors import ChromeNotFoundError

    assert thirdparty.browser_not_found_errors() == (ChromeNotFoundError,)


def test_a_kaleido_browser_still_keeps_its_popen():
    import choreographer
    import kaleido

    assert issubclass(kaleido.Kaleido, choreographer.Browser)
    assert "subprocess" in choreographer.Browser.__annotations__  # set by Browser.open

    class Started:
        """What an opened browser looks like."""

        subprocess = subprocess.Popen(["true"])

    Started.subprocess.wait()
    assert thirdparty.browser_process(Started()) is Started.subprocess
    assert thirdparty.browser_process(object()) is None  # the fallback: no handle


def test_streamlit_still_has_its_command_line_entry_point():
    from streamlit.web.cli import main

    assert thirdparty.streamlit_main() is main


def test_streamlit_still_says_whether_its_runtime_exists():
    from streamlit import runtime

    assert callable(runtime.exists)
    assert thirdparty.streamlit_runtime_started() is runtime.exists() is False  # no server here
