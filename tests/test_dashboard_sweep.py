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


@pytest.mark.slow
def test_connectivity_is_grouped_by_method_and_the_choice_follows_every_page(app):
    app.run()
    app.switch_page("app_pages/connectivity.py").run()
    assert not app.exception, [e.value for e in app.exception]
    assert app.toggle(key="group_seeds").value is True
    charts = {c.key: json.loads(c.proto.spec) for c in app.get("plotly_chart")}
    assert "mean over the pairs of seeds" in charts["paths"]["layout"]["title"]["text"]
    keys = [t["name"] for t in charts["paths"]["data"] if t.get("showlegend") is not False]
    assert keys == ["naive (no alignment)", "weight matching"]  # the legend explains styles
    app.toggle(key="group_seeds").set_value(False).run()
    assert app.query_params.get("seeds") == "each"
    app.switch_page("app_pages/overview.py").run()
    assert app.toggle(key="group_seeds").value is False  # one choice for every page


@pytest.mark.slow
def test_the_slide_shows_one_figure_with_its_title_and_caption(app):
    app.query_params["present"] = "1"
    app.query_params["figure"] = "connectivity-barriers-test"
    app.run()
    app.switch_page("app_pages/slide.py").run()
    assert not app.exception, [e.value for e in app.exception]
    assert app.selectbox(key="select_figure").value == "connectivity-barriers-test"
    assert app.selectbox(key="select_screen").value == "1280x720"
    (chart,) = app.get("plotly_chart")
    figure = json.loads(chart.proto.spec)
    assert figure["layout"]["height"] == 520
    assert figure["layout"]["font"]["size"] == 20  # the presentation theme
    assert app.title[0].value.startswith("Loss barrier")  # the figure's own title
    assert any(c.value.endswith(".") and len(c.value) > 40 for c in app.main.caption)
    app.selectbox(key="select_screen").set_value("page").run()  # the export's own height:
    (chart,) = app.get("plotly_chart")  # the shared figure was not resized by the slide
    assert json.loads(chart.proto.spec)["layout"]["height"] != 520
