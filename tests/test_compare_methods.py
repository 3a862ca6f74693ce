"""Compare two methods over their seeds: the paired table (dashboard/figures/compare_methods.py)
and the Compare page in methods mode (AppTest, read-only) on a tiny two-seed study."""

from __future__ import annotations

import json

import numpy as np
import pytest
from scipy import stats

from analysis import plan
from analysis.store import Store
from analysis.study import load_study
from dashboard.figures import bands
from dashboard.figures import compare_methods as cm
from dashboard.figures.numbers import human, points
from dashboard.figures.verdicts import Margin

PAGE = "app_pages/compare.py"

TWO_SEEDS = """
name = "two-seeds"
seeds = [0, 1]
[data]
name = "digits"
train_size = 300
[model]
arch = "mlp"
width = 16
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
[analyses.robustness]
subset_size = 100
sigmas = [0.0, 0.3]
trials = 2
[analyses.connectivity]
alphas = 5
train_subset = 100
test_subset = 100
alignments = ["naive", "weight"]
repair = false
instability = false
matching_restarts = 1
[analyses.landscape]
grid = 5
subset = 100
dims = [2]
trajectory = false
sharpness_topk = 1
hutchinson_samples = 0
"""


@pytest.fixture(scope="module")
def two_seeds(tmp_path_factory):
    """(study, cache) of dense and magnitude 50%, seeds 0 and 1: runs, robustness, landscape
    and connectivity."""
    root = tmp_path_factory.mktemp("two-seeds")
    study = root / "two.toml"
    study.write_text(TWO_SEEDS)
    for part in ("runs", "robustness", "landscape", "connectivity"):
        report = plan.compute_study(load_study(study), Store(root / "cache"), only=part)
        assert not report.failed, report.failed
    return study, root / "cache"


@pytest.fixture
def app(two_seeds, compute_forbidden, monkeypatch):
    """An AppTest of the dashboard on the two-seed study, not yet run."""
    from streamlit.testing.v1 import AppTest

    from tests.test_dashboard_app import APP, TIMEOUT

    monkeypatch.setenv("PRUNESCOPE_STUDY", str(two_seeds[0]))
    monkeypatch.setenv("PRUNESCOPE_CACHE", str(two_seeds[1]))
    return AppTest.from_file(str(APP), default_timeout=TIMEOUT)


def charts(at) -> dict[str, dict]:
    """The plotly figures on the page, by element key."""
    return {c.key: json.loads(c.proto.spec) for c in at.get("plotly_chart")}


def test_methods_are_compared_over_their_seeds_by_default(app, two_seeds):
    app.run()
    app.switch_page(PAGE).run()
    assert not app.exception, [e.value for e in app.exception]
    assert app.radio(key="choice_mode").value == "methods"
    assert app.selectbox(key="select_ma").value == "dense"
    assert app.selectbox(key="select_mb").value == "magnitude 50%"
    table = app.dataframe[0].value.set_index("Metric")
    summary = plan.summarize(load_study(two_seeds[0]), Store(two_seeds[1]))
    acc = {(r["method"], r["seed"]): 100 * r["test_acc"] for r in summary["runs"]}
    diffs = [acc["magnitude", s] - acc["dense", s] for s in (0, 1)]
    row = table.loc["Test accuracy (%)"]
    assert row["Seeds"] == "2 paired"
    assert row["B − A"] == points(np.mean(diffs))  # the mean paired difference, in points
    dense = [acc["dense", s] for s in (0, 1)]
    assert row["A ± seed std"] == f"{human(np.mean(dense))} ± {human(np.std(dense, ddof=1))}"
    low, high = bands.interval(np.array(diffs)[:, None])[1:]
    assert row["95% interval of B − A"] == (
        f"{human(low[0], sign=True)} to {human(high[0], sign=True)} points"
    )
    assert {"Run", "Robustness", "Landscape"} <= set(table["Analysis"])
    figures = charts(app)
    assert {"curves", "layers", "robustness"} <= set(figures)
    names = [t.get("name") for t in figures["curves"]["data"]]
    assert {"A: dense", "B: magnitude 50%"} <= set(names)
    assert "paired over 2 seeds" in figures["robustness"]["layout"]["title"]["text"]
    noise = [t for t in figures["noise"]["data"] if t.get("showlegend") is not False]
    assert {t["name"] for t in noise} == {"dense", "magnitude 50%"}  # a mean line per method
    assert any(t.get("fill") == "toself" for t in figures["noise"]["data"])  # and its band
    paths = figures["connectivity"]  # a panel per method: mean over its pairs, with bands
    titles = {a["text"] for a in paths["layout"]["annotations"]}
    assert any("dense" in t for t in titles) and any("magnitude 50%" in t for t in titles)
    assert "mean over the pairs of seeds" in paths["layout"]["title"]["text"]
    means = [t for t in paths["data"] if len(t.get("x") or []) == 5 and not t.get("fill")]
    assert len(means) == 2 * 2 * 2  # methods x alignments x (loss, accuracy), over 5 alphas
    (frame,) = app.get("iframe")  # the two loss surfaces side by side, cameras linked
    assert '["scene", "scene2"]' in frame.proto.srcdoc
    assert app.query_params.get("ma") == "dense"


def test_the_url_reopens_a_comparison_of_methods(app):
    app.query_params = {"ma": "magnitude 50%", "mb": "dense", "points": "2"}
    app.run()
    app.switch_page(PAGE).run()
    assert not app.exception, [e.value for e in app.exception]
    assert app.selectbox(key="select_ma").value == "magnitude 50%"
    assert app.radio(key="choice_points").value == "2"
    verdicts = {v.removesuffix(" (no interval)") for v in app.dataframe[0].value["Verdict"]}
    assert verdicts <= {
        "",
        "B better",
        "B worse",
        "changed",
        "inconclusive",
        "within 5%",
        "equivalent (within 2 points)",
        "equivalent (within 5%)",
        "within 2 points",
    }  # fmt: skip  (the margins the URL chose)
    app.radio(key="choice_mode").set_value("runs").run()
    assert not app.exception
    assert app.selectbox(key="select_a").value == "dense s0"
    assert app.query_params.get("mode") == "runs"


# -- pure functions ----------------------------------------------------------------


def run(method: str, seed: int, acc: float, sparsity: float = 0.0) -> dict:
    """A cached run record."""
    name = "dense" if method == "dense" else f"{method} {100 * sparsity:g}%"
    return {
        "label": f"{name} s{seed}", "key": f"{name} s{seed}", "method": method, "seed": seed,
        "objective": "ce", "status": "cached", "requested_sparsity": sparsity,
        "test_acc": acc, "test_loss": 1 - acc, "layer_sparsity": {"fc.weight": sparsity},
    }  # fmt: skip


def pair(method: str, sparsity: float, seeds: tuple, barrier: float) -> dict:
    """A cached path between two seeds of a method."""
    name = "dense" if method == "dense" else f"{method} {100 * sparsity:g}%"
    return {
        "status": "cached", "pair": "seeds", "run_a": f"{name} s{seeds[0]}",
        "run_b": f"{name} s{seeds[1]}", "seeds": list(seeds), "alignment": "weight",
        "barriers": {"test": {"barrier_entezari": barrier}},
    }  # fmt: skip


DENSE = [run("dense", s, a) for s, a in ((0, 0.90), (1, 0.92), (2, 0.91))]
MAG = [run("magnitude", s, a, 0.9) for s, a in ((0, 0.88), (1, 0.91), (2, 0.89))]
LATE = [run("magnitude", s, a, 0.5) for s, a in ((3, 0.80), (4, 0.81))]  # other seeds
SUMMARY = {
    "runs": DENSE + MAG + LATE,
    "connectivity": {
        "pairs": [pair("dense", 0.0, (0, 1), 0.1), pair("magnitude", 0.9, (0, 1), 0.3)]
    },
}


def test_groups_are_named_and_keyed_by_method():
    groups = cm.groups_of(SUMMARY["runs"])
    assert list(cm.names_of(groups)) == ["dense", "magnitude 90%", "magnitude 50%"]
    assert [r["seed"] for r in groups[cm.names_of(groups)["magnitude 90%"]]] == [0, 1, 2]


def test_differences_are_paired_by_seed():
    table = cm.methods_table(SUMMARY, DENSE, MAG, Margin(points=0.5)).set_index("Metric")
    row = table.loc["Test accuracy (%)"]
    diffs = np.array([-2.0, -1.0, -2.0])
    half = stats.t.ppf(0.975, 2) * diffs.std(ddof=1) / np.sqrt(3)
    assert row["B − A"] == pytest.approx(diffs.mean())
    assert (row["95% low"], row["95% high"]) == pytest.approx(
        (diffs.mean() - half, diffs.mean() + half)
    )
    assert row["A seed std"] == pytest.approx(np.std([90, 92, 91], ddof=1))
    assert row["Seeds"] == "3 paired" and row["Verdict"] == "inconclusive"  # -4.1 to +0.8
    assert row["Analysis"] == "Run" and row["A"] == pytest.approx(91.0)
    barrier = table.loc["Test loss barrier between seeds, weight"]
    assert barrier["Seeds"] == "1 paired" and barrier["B − A"] == pytest.approx(0.2)
    assert barrier["Verdict"] == "B worse (no interval)"  # one pair: the difference is judged
    assert np.isnan(barrier["95% low"])
    shown = cm.styled(table.reset_index()).data.set_index("Metric")
    assert shown.loc["Test accuracy (%)", "B − A"] == "-1.7 points"
    assert shown.loc["Test loss barrier between seeds, weight", "A ± seed std"] == "0.1"
    assert shown.loc["Test accuracy (%)", "A ± seed std"] == "91 ± 1"


def test_groups_without_shared_seeds_are_compared_unpaired():
    table = cm.methods_table(SUMMARY, DENSE, LATE).set_index("Metric")
    row = table.loc["Test accuracy (%)"]
    a, b = [90.0, 92.0, 91.0], [80.0, 81.0]
    welch = stats.ttest_ind(b, a, equal_var=False).confidence_interval(0.95)
    assert row["Seeds"] == "3 vs 2, unpaired"
    assert (row["95% low"], row["95% high"]) == pytest.approx((welch.low, welch.high))
    assert row["Verdict"] == "B worse"  # the whole interval below -0.5 points


def test_mean_run_and_surface_label_stand_for_a_group():
    key = cm.groups_of(MAG)
    (k,) = key
    assert cm.mean_run("magnitude 90%", k, MAG)["layer_sparsity"] == {"fc.weight": 0.9}
    land = {"landscape": {"runs": [
        {"label": "magnitude 90% s1", "surfaces": [{"dims": 2, "status": "cached"}]},
        {"label": "magnitude 90% s0", "surfaces": [{"dims": 2, "status": "missing"}]},
    ]}}  # fmt: skip
    assert cm.surface_label(land, MAG) == "magnitude 90% s1"
    assert cm.surface_label(land, DENSE) is None
    assert [(a["seed"], b["seed"]) for a, b in cm.seed_pairs(DENSE, MAG)] == [
        (0, 0),
        (1, 1),
        (2, 2),
    ]


def test_flips_per_class_are_averaged_over_seed_pairs():
    rep = {
        "labels": np.array([0, 0, 1, 1]),
        "preds": np.array([[0, 0, 1, 1], [0, 1, 1, 0], [0, 0, 1, 0], [1, 0, 1, 1]]),
        "summary": {"cka": np.eye(4) * 0.5 + 0.5, "labels_of_runs": ["a0", "a1", "b0", "b1"]},
    }
    fig = cm.flip_bars_groups(rep, [(0, 2), (1, 3)])
    lost, gained = fig.data
    # seed 0: A right everywhere, B wrong on sample 3 (class 1); seed 1: B wrong on sample 0
    # (class 0), right on samples 1 and 3 that A got wrong (classes 0 and 1).
    assert list(lost.y) == pytest.approx([0.5, 0.5]) and list(gained.y) == pytest.approx([0.5, 0.5])
    assert "mean linear CKA(A, B) = 0.500" in fig.layout.title.text
    assert cm.rep_pairs(
        rep, [({"label": "a1"}, {"label": "b1"}), ({"label": "x"}, {"label": "b0"})]
    ) == [(1, 3)]
