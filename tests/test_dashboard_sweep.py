"""The dashboard on a study that sweeps an axis: every page renders; Sweeps draws the axis."""

from __future__ import annotations

import json

import pytest

pytest.importorskip("streamlit")
from streamlit.testing.v1 import AppTest  # noqa: E402

from analysis import plan  # noqa: E402
from analysis.store import Store  # noqa: E402
from analysis.study import load_study  # noqa: E402
from tests.test_dashboard_app import APP, PAGES, TIMEOUT  # noqa: E402

SWEEP = """
name = "small-sweep"
seeds = [0, 1]
[data]
name = "digits"
train_size = 300
[model]
arch = "mlp"
width = [8, 32]
depth = 1
[train]
epochs = 2
batch_size = 50
lr = 0.01
[[methods]]
method = "dense"
[[methods]]
method = "magnitude"
sparsities = [0.5]
finetune_epochs = 1
[analyses.connectivity]
alphas = 5
train_subset = 100
test_subset = 200
alignments = ["naive", "weight"]
repair = false
instability = false
"""


@pytest.fixture(scope="module")
def sweep(tmp_path_factory):
    root = tmp_path_factory.mktemp("sweep")
    study = root / "sweep.toml"
    study.write_text(SWEEP)
    report = plan.compute_study(load_study(study), Store(root / "cache"), only="connectivity")
    assert not report.failed, report.failed
    return study, root / "cache"


@pytest.fixture
def app(sweep, compute_forbidden, monkeypatch):
    study, cache = sweep
    monkeypatch.setenv("PRUNESCOPE_STUDY", str(study))
    monkeypatch.setenv("PRUNESCOPE_CACHE", str(cache))
    return AppTest.from_file(str(APP), default_timeout=TIMEOUT)


@pytest.mark.slow
@pytest.mark.parametrize("page", PAGES)
def test_every_page_renders_a_sweep(app, page):
    app.run()
    app.switch_page(page).run()
    assert not app.exception, [e.value for e in app.exception]


@pytest.mark.slow
def test_the_sweeps_page_draws_the_barrier_against_width(app):
    app.run()
    app.switch_page("app_pages/sweeps.py").run()
    assert not app.exception, [e.value for e in app.exception]
    (chart,) = app.get("plotly_chart")
    figure = json.loads(chart.proto.spec)
    assert "against width" in figure["layout"]["title"]["text"]
    lines = [t for t in figure["data"] if t.get("mode") == "lines+markers"]
    assert {t["name"] for t in lines} == {"dense", "magnitude (50%)"}
    assert all(list(t["x"]) == [8, 32] for t in lines)


@pytest.mark.slow
def test_overview_shows_the_mean_over_seeds_by_default(app):
    app.run()
    assert not app.exception
    assert app.toggle(key="group_seeds").value is True
    figure = next(json.loads(c.proto.spec) for c in app.get("plotly_chart") if c.key == "accuracy")
    assert "per method" in figure["layout"]["title"]["text"]
    names = {t["name"] for t in figure["data"]}
    assert {"dense (width 8)", "magnitude (width 32)"} <= names
    app.toggle(key="group_seeds").set_value(False).run()
    figure = next(json.loads(c.proto.spec) for c in app.get("plotly_chart") if c.key == "accuracy")
    assert "per method" not in figure["layout"]["title"]["text"]


@pytest.mark.slow
def test_the_sidebar_filters_a_sweep_by_setting(app):
    app.run()
    box = app.sidebar.multiselect(key="filter_setting")
    assert box.options == ["width 8", "width 32"]
    box.unselect("width 8").run()
    assert not app.exception
    assert app.query_params.get("setting") == "width 32"
    assert all(run.startswith("width 32") for run in app.dataframe[0].value["Run"])
    figure = next(json.loads(c.proto.spec) for c in app.get("plotly_chart") if c.key == "accuracy")
    assert all("width 32" in t["name"] for t in figure["data"])  # the means follow the filter
