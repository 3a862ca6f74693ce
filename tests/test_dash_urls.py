"""Every list choice mirrored in the URL round-trips: the default (omitted), a subset, and empty.

Drives ``ui.pick`` and ``ui._filter`` (the two list mirrors every page and the
sidebar use) in a tiny AppTest script, so no study or store is needed: an emptied
choice must be written as ``?name=`` and read back as empty, never as the default.
"""

from __future__ import annotations

import pytest

pytest.importorskip("streamlit")
from streamlit.testing.v1 import AppTest  # noqa: E402


def picker() -> None:
    """A page with one ``ui.pick`` (default: the first three of four)."""
    import streamlit as st

    from dashboard import ui

    chosen = ui.pick("Runs", ["a", "b", "c", "d"], name="runs", default=["a", "b", "c"], most=4)
    st.text(",".join(chosen) or "-")


def filters() -> None:
    """A sidebar-style ``ui._filter`` over floats (all: the default)."""
    import streamlit as st

    from dashboard import ui

    chosen = ui._filter("Sparsity", "sparsity", [0.5, 0.9])
    st.text(",".join(map(repr, chosen)) or "-")


def shown(at: AppTest) -> str:
    """What the script says it got."""
    return at.text[0].value


def reopen(script, params: dict) -> AppTest:
    """A fresh session opening the URL with ``params``."""
    at = AppTest.from_function(script, default_timeout=60)
    at.query_params.update(params)
    return at.run()


def url(at: AppTest) -> dict:
    """The query parameters the session wrote."""
    return dict(at.query_params)


def test_an_emptied_pick_is_written_as_empty_and_read_back_empty():
    at = AppTest.from_function(picker, default_timeout=60).run()
    assert shown(at) == "a,b,c" and "runs" not in url(at)  # the default is not in the URL
    at.multiselect(key="pick_runs").set_value([]).run()
    assert shown(at) == "-" and url(at)["runs"] in ("", [""])
    again = reopen(picker, url(at))
    assert not again.exception and shown(again) == "-"
    assert again.multiselect(key="pick_runs").value == []


def test_a_picked_subset_round_trips():
    at = AppTest.from_function(picker, default_timeout=60).run()
    at.multiselect(key="pick_runs").set_value(["d", "b"]).run()
    again = reopen(picker, url(at))
    assert shown(again) == shown(at) == "d,b"  # the order too: panels side by side


def test_an_old_link_naming_no_option_gives_the_default():
    assert shown(reopen(picker, {"runs": "gone"})) == "a,b,c"


def test_an_emptied_filter_round_trips_as_empty():
    at = AppTest.from_function(filters, default_timeout=60).run()
    assert shown(at) == "0.5,0.9" and "sparsity" not in url(at)
    at.multiselect(key="filter_sparsity").set_value([]).run()
    assert shown(at) == "-"
    again = reopen(filters, url(at))
    assert shown(again) == "-"
    at.multiselect(key="filter_sparsity").set_value([0.9]).run()
    assert shown(reopen(filters, url(at))) == "0.9"
