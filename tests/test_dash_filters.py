"""The sidebar's filters follow the study: another study shows all its runs, new levels show."""

from __future__ import annotations

import pytest

pytest.importorskip("streamlit")
from streamlit.testing.v1 import AppTest  # noqa: E402

from dashboard import data  # noqa: E402
from tests.test_dashboard_upload import APP, STUDY  # noqa: E402


def study(name: str, seeds: str = "[0, 1]") -> str:
    return STUDY.format(name=name).replace("seeds = [0]", f"seeds = {seeds}")


@pytest.fixture
def app(tmp_path, monkeypatch, compute_forbidden):
    default = tmp_path / "default.toml"
    default.write_text(study("the-default"))
    cache = tmp_path / "cache"
    upload = data.save_upload(study("the-upload").encode(), cache)
    monkeypatch.setenv("PRUNESCOPE_STUDY", str(default))
    monkeypatch.setenv("PRUNESCOPE_CACHE", str(cache))
    return AppTest.from_file(str(APP), default_timeout=120), default, upload


def test_opening_another_study_shows_all_its_runs(app):
    at, _, upload = app
    at.query_params = {"seed": "1"}
    at.run()
    assert at.sidebar.multiselect(key="filter_seed").value == [1]  # a shared link's filter
    at.session_state["upload"] = upload  # what the sidebar's uploader does
    at.run()
    assert not at.exception
    assert at.sidebar.multiselect(key="filter_seed").value == [0, 1]
    assert "seed" not in at.query_params


def test_a_level_added_to_the_study_is_shown_and_a_deselected_one_stays_off(app):
    at, default, _ = app
    at.run()
    at.sidebar.multiselect(key="filter_seed").unselect(0).run()
    default.write_text(study("the-default", "[0, 1, 2]"))  # the study file is edited
    at.run()
    assert not at.exception
    assert at.sidebar.multiselect(key="filter_seed").value == [1, 2]
