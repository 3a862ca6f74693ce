"""The Compare page (AppTest, read-only) and the pure A-vs-B figures of dashboard/figures/compare.py."""

from __future__ import annotations

import json

import numpy as np
import pytest

from analysis import plan
from analysis.store import Store
from analysis.study import load_study
from dashboard.figures import compare as fc
from dashboard.figures.theme import INK, PALE
from dashboard.figures.verdicts import Margin
from tests.test_export import prefilled

PAGE = "app_pages/compare.py"


@pytest.fixture(scope="module")
def filled(tmp_path_factory):
    """The small study and its store, trained before any compute is forbidden."""
    return prefilled(tmp_path_factory)


@pytest.fixture
def app(filled, compute_forbidden, monkeypatch):
    """An AppTest of the dashboard on the pre-filled small study, not yet run."""
    from streamlit.testing.v1 import AppTest

    from tests.test_dashboard_app import APP, TIMEOUT

    study, cache = filled
    monkeypatch.setenv("PRUNESCOPE_STUDY", str(study))
    monkeypatch.setenv("PRUNESCOPE_CACHE", str(cache))
    return AppTest.from_file(str(APP), default_timeout=TIMEOUT)


def charts(at) -> dict[str, dict]:
    """The plotly figures on the page, by element key."""
    return {c.key: json.loads(c.proto.spec) for c in at.get("plotly_chart")}


def names(figure: dict) -> list[str]:
    """Trace names of a figure."""
    return [t.get("name") for t in figure["data"]]


def test_compare_page_draws_every_analysis_of_two_runs(app, filled):
    app.run()
    app.switch_page(PAGE).run()
    assert not app.exception, [e.value for e in app.exception]
    assert app.selectbox(key="select_a").value == "dense s0"
    assert app.selectbox(key="select_b").value == "magnitude 50% s0"
    figures = charts(app)
    summary = plan.summarize(load_study(filled[0]), Store(filled[1]))
    has = {part: any(fc.available(summary, r)[part] for r in fc.cached_labels(summary))
           for part in ("connectivity", "landscape")}  # fmt: skip
    expected = {"curves", "layers", "embedding", "flips", "robustness", "noise"}
    expected |= {"connectivity"} if has["connectivity"] else set()
    expected |= {"sharpness"} if has["landscape"] else set()
    assert set(figures) == expected
    assert "B: magnitude 50% s0" in names(figures["curves"])
    assert app.radio(key="choice_mode").value == "runs"  # one seed: runs are compared
    table = app.dataframe[0].value.set_index("Metric")
    assert float(table.loc["Achieved sparsity (%)", "B"]) == pytest.approx(50.0, abs=0.5)
    assert table.loc["Achieved sparsity (%)", "B − A"].endswith(" points")
    assert table.loc["Achieved sparsity (%)", "Verdict"] == "changed"
    assert "e+" not in " ".join(table["A"]) + " ".join(table["B"])  # numbers for people
    for part in ("representations", "robustness", "connectivity", "landscape"):
        lacking = [
            r for r in ("dense s0", "magnitude 50% s0") if not fc.available(summary, r)[part]
        ]
        said = [c.value for c in app.caption if f"No {part} results" in c.value]
        assert bool(said) == bool(lacking), (part, said, lacking)  # a short note, not an error
    assert app.query_params.get("a") == "dense s0"


def test_changing_run_b_changes_the_figures(app):
    app.run()
    app.switch_page(PAGE).run()
    before = charts(app)
    app.selectbox(key="select_b").set_value("dense s0").run()
    assert any("two different runs" in i.value for i in app.info)
    app.selectbox(key="select_a").set_value("magnitude 50% s0").run()
    assert not app.exception
    after = charts(app)
    assert "B: dense s0" in names(after["curves"]) and "B: dense s0" not in names(before["curves"])
    assert after["layers"]["data"][1]["y"] != before["layers"]["data"][1]["y"]
    assert app.query_params.get("b") == "dense s0"


def test_url_reopens_the_comparison(app):
    app.query_params = {"a": "magnitude 50% s0", "b": "dense s0", "diff": "0.25", "points": "2"}
    app.run()
    app.switch_page(PAGE).run()
    assert not app.exception
    assert app.selectbox(key="select_a").value == "magnitude 50% s0"
    assert app.selectbox(key="select_b").value == "dense s0"
    assert app.radio(key="choice_diff").value == "0.25"
    assert app.radio(key="choice_points").value == "2"


# -- pure functions ----------------------------------------------------------------


def run(label: str, method: str, acc: float, loss: float, sparsity: float) -> dict:
    """A cached run record."""
    return {
        "label": label, "key": label, "method": method, "seed": 0, "objective": "ce",
        "status": "cached", "test_acc": acc, "test_loss": loss, "val_acc": acc,
        "achieved_sparsity": sparsity, "nonzero_params": 100,
        "layer_sparsity": {"fc0.weight": sparsity, "head.weight": sparsity / 2},
    }  # fmt: skip


def curve(barrier: float) -> dict:
    """A cached path's barriers and curve."""
    return {
        "barriers": {"test": {"barrier_entezari": barrier}},
        "curve": {"alphas": [0.0, 0.5, 1.0], "test_loss": [0.3, 0.3 + barrier, 0.3]},
    }


SUMMARY = {
    "runs": [
        run("dense s0", "dense", 0.90, 0.30, 0.0),
        run("magnitude 90% s0", "magnitude", 0.80, 0.50, 0.9),
        {"label": "snip 90% s0", "key": "x", "method": "snip", "status": "missing"},
    ],
    "robustness": [
        {
            "label": "dense s0", "status": "cached", "clean_accuracy": 0.9, "mce": 1.0,
            "corruption": [
                {"corruption": "clean", "severity": 0, "accuracy": 0.9},
                {"corruption": "fog", "severity": 1, "accuracy": 0.5},
                {"corruption": "shear", "severity": 1, "accuracy": 0.6},
            ],
        },
        {
            "label": "magnitude 90% s0", "status": "cached", "clean_accuracy": 0.8, "mce": 0.9,
            "corruption": [
                {"corruption": "clean", "severity": 0, "accuracy": 0.8},
                {"corruption": "fog", "severity": 1, "accuracy": 0.7},
                {"corruption": "shear", "severity": 1, "accuracy": 0.4},
            ],
        },
    ],
    "connectivity": {
        "pairs": [
            {"label": "p", "status": "cached", "pair": "seeds", "run_a": "dense s0",
             "run_b": "dense s1", "alignment": "weight", "repair": False, **curve(0.2)},
            {"label": "s", "status": "cached", "pair": "same-init", "run_a": "dense s0",
             "run_b": "magnitude 90% s0", "alignment": "naive", "repair": False, **curve(0.4)},
            {"label": "q", "status": "missing", "pair": "seeds", "run_a": "magnitude 90% s0",
             "run_b": "magnitude 90% s1", "alignment": "weight", "repair": False},
        ],
        "instability": [],
    },
    "landscape": {
        "runs": [
            {"label": "magnitude 90% s0", "surfaces": [],
             "sharpness": {"status": "cached", "eigenvalues": [9.0, 4.0], "trace": 30.0}},
        ],
        "planes": [],
    },
}  # fmt: skip


def test_metrics_table_lines_up_both_runs():
    frame = fc.metrics_table(SUMMARY, "dense s0", "magnitude 90% s0")
    rows = frame.set_index("Metric")
    assert rows.loc["Test accuracy (%)", "A"] == pytest.approx(90.0)
    assert rows.loc["Test accuracy (%)", "B − A"] == pytest.approx(-10.0)
    assert rows.loc["mCE (% of dense)", "B − A"] == pytest.approx(-10.0)
    barrier = "Test loss barrier, to seed twin, weight"
    assert rows.loc[barrier, "A"] == pytest.approx(0.2) and np.isnan(rows.loc[barrier, "B"])
    assert rows.loc["Top Hessian eigenvalue", "B"] == 9.0
    assert np.isnan(rows.loc["Top Hessian eigenvalue", "A"])


def test_each_difference_gets_a_verdict_against_the_margin():
    frame = fc.metrics_table(SUMMARY, "dense s0", "magnitude 90% s0")
    verdicts = fc.judged(frame, Margin(points=0.5, relative=0.05)).set_index("Metric")["Verdict"]
    assert verdicts["Test accuracy (%)"] == "B worse"  # 10 points lower
    assert verdicts["mCE (% of dense)"] == "B better"  # lower mCE
    assert verdicts["Achieved sparsity (%)"] == "changed"  # neither side better
    assert verdicts["Nonzero parameters"] == "within 5%"  # equal
    assert verdicts["Top Hessian eigenvalue"] == ""  # one side missing: nothing to compare
    wide = fc.judged(frame, Margin(points=20.0)).set_index("Metric")["Verdict"]
    assert wide["Test accuracy (%)"] == "within 20 points"
    shown = fc.styled(fc.judged(frame)).data.set_index("Metric")
    assert shown.loc["Test accuracy (%)", "B − A"] == "-10 points"
    assert shown.loc["Test loss", "B − A"] == "+0.2" and shown.loc["Test loss", "A"] == "0.3"
    assert shown.loc["Top Hessian eigenvalue", "A"] == "—"


def test_missing_analyses_are_reported_not_raised():
    assert fc.available(SUMMARY, "dense s0") == {
        "representations": False, "robustness": True, "connectivity": True, "landscape": False,
    }  # fmt: skip
    assert fc.available(SUMMARY, "snip 90% s0") == dict.fromkeys(
        ["representations", "robustness", "connectivity", "landscape"], False
    )
    frame = fc.metrics_table(SUMMARY, "dense s0", "snip 90% s0")
    assert frame["B"].isna().all() and len(frame)
    assert fc.cached_labels(SUMMARY) == ["dense s0", "magnitude 90% s0"]


def test_robustness_difference_bars_are_coloured_by_sign():
    a, b = SUMMARY["runs"][:2]
    items = SUMMARY["robustness"]
    fig = fc.robustness_compare(a, items[0], b, items[1])
    diff = fig.data[-1]
    assert list(diff.x) == ["clean", "fog", "shear"]
    assert list(diff.y) == pytest.approx([-10.0, 20.0, -20.0])
    assert list(diff.marker.color) == [PALE, INK, PALE]  # neutral: colour means method


def test_training_and_layer_figures_overlay_a_and_b():
    a, b = SUMMARY["runs"][:2]
    hist = {
        "dense s0": [{"epoch": 1, "test_acc": 0.5, "test_loss": 1.0}],
        "magnitude 90% s0": [{"epoch": 1, "test_acc": 0.4, "test_loss": 1.2}],
    }
    fig = fc.training_compare(a, b, hist)
    assert [t.line.dash for t in fig.data] == ["solid", "solid", "dash", "dash"]
    assert list(fig.data[2].y) == [40.0]
    layers = fc.layer_sparsity_compare(a, b)
    assert list(layers.data[1].y) == pytest.approx([90.0, 45.0])


def test_flips_between_count_each_direction_per_class():
    rep = {
        "labels": np.array([0, 0, 1, 1, 2]),
        "preds": np.array([[0, 0, 1, 0, 2], [0, 1, 1, 1, 0]]),
        "summary": {"cka": [[1.0, 0.7], [0.7, 1.0]], "classes": ["a", "b", "c"]},
    }
    flips = fc.flips_between(rep, 0, 1)
    assert flips["lost"].tolist() == [1, 0, 1] and flips["gained"].tolist() == [0, 1, 0]
    fig = fc.flip_bars(rep, 0, 1)
    assert "0.700" in fig.layout.title.text and list(fig.data[0].x) == ["a", "b", "c"]


def test_connectivity_and_sharpness_read_the_summary():
    a, b = SUMMARY["runs"][:2]
    fig = fc.connectivity_compare(SUMMARY, a, b)
    assert [t.name for t in fig.data] == [
        "A: to seed twin, weight (dense s1)",
        "B: to its dense run, same init, naive (dense s0)",  # the pair belongs to its pruned run
    ]
    sharp = fc.sharpness_compare(SUMMARY, a, b)
    assert list(sharp.data[0].y) == [] and list(sharp.data[1].y) == [9.0, 4.0]
