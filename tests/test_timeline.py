"""Training curves on one time axis: a run's lineage, and the figure that places each phase."""

from __future__ import annotations

import plotly.graph_objects as go
import pytest

from analysis import plan
from analysis.store import Store
from analysis.study import parse_study
from dashboard.figures.pairs import STYLE_INK
from dashboard.figures.theme import NORMAL, PRESENTATION, method_color
from dashboard.figures.timeline import place, steps_per_epoch, training_timeline
from dashboard.results import Reader

# 300 samples / batch 50 = 6 steps per epoch; 2 epochs = 12 steps.
STUDY = """
name = "tiny-timeline"
seeds = [0, 1]
[data]
name = "digits"
train_size = 300
[model]
arch = "mlp"
width = 8
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
[[methods]]
method = "lottery"
sparsities = [0.5]
rounds = 2
rewind_step = 3
"""


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    study = parse_study(STUDY)
    store = Store(tmp_path_factory.mktemp("timeline") / "cache")
    report = plan.compute_study(study, store, only="runs")
    assert not report.failed, report.failed
    reader = Reader(study, store)
    runs = plan.summarize(study, store)["runs"]
    return runs, {r["key"]: reader.lineage(r["key"]) for r in runs}, reader


def run_of(runs: list[dict], method: str, seed: int = 0) -> dict:
    return next(r for r in runs if r["method"] == method and r["seed"] == seed)


def test_lineage_follows_prerequisites_to_dense_training(tiny):
    runs, lineages, reader = tiny
    magnitude = lineages[run_of(runs, "magnitude")["key"]]
    assert [e["phase"] for e in magnitude] == ["dense training", "prune + fine-tune"]
    assert magnitude[0]["key"] == run_of(runs, "dense")["key"]
    assert [e["seed"] for e in magnitude] == [0, 0]
    lottery = lineages[run_of(runs, "lottery", seed=1)["key"]]
    assert [e["phase"] for e in lottery] == ["dense training", "round 1", "round 2"]
    assert [e["method"] for e in lottery] == ["dense", "lottery", "lottery"]
    assert [e["start_step"] for e in lottery] == [0, 3, 3]
    assert lottery[0]["key"] == run_of(runs, "dense", seed=1)["key"]
    assert lineages[run_of(runs, "dense")["key"]][0]["history"] == reader.history(
        run_of(runs, "dense")["key"]
    )
    assert reader.lineage("no-such-key") is None
    assert reader.lineage(run_of(runs, "magnitude")["key"]) is magnitude  # cached


def test_each_phase_starts_where_the_one_before_ended(tiny):
    runs, lineages, _ = tiny
    lottery = place(lineages[run_of(runs, "lottery")["key"]])
    assert steps_per_epoch(lottery) == 6.0
    # dense 0-2 epochs; each round trains steps 3..12 = 1.5 epochs after the previous.
    assert [(e["x0"], e["x1"]) for e in lottery] == [(0.0, 2.0), (2.0, 3.5), (3.5, 5.0)]
    assert lottery[1]["x"] == [3.0, 3.5]  # step 9 (one epoch after the rewind), then 12
    magnitude = place(lineages[run_of(runs, "magnitude")["key"]])
    assert magnitude[1]["x"] == [3.0]  # one fine-tuning epoch after 2 dense epochs


def test_timeline_per_run(tiny):
    runs, lineages, _ = tiny
    fig = training_timeline(runs, lineages, "acc")
    by_label = {t.customdata[0][0]: t for t in fig.data if t.customdata is not None}
    fine = by_label[run_of(runs, "magnitude")["label"]]
    assert min(fine.x) > 2.0 and fine.line.color == method_color("magnitude")
    dense = [
        t for t in fig.data if t.customdata is not None and t.customdata[0][1] == "dense training"
    ]
    assert len(dense) == 2  # one per seed, not again under every pruned run
    round1 = [t for t in fig.data if t.customdata is not None and t.customdata[0][1] == "round 1"]
    assert len(round1) == 2 and all(t.opacity < 1 and not t.showlegend for t in round1)
    assert {t.name for t in fig.data if t.showlegend} >= {"dense", "magnitude", "lottery"}
    lines = [s for s in fig.layout.shapes if s.type == "line"]
    assert sorted(s.x0 for s in lines) == [2.0, 3.5]  # prune + fine-tune / round 1; round 2
    assert all(s.line.color == STYLE_INK for s in fig.layout.shapes if s.line.color)
    texts = [a.text for a in fig.layout.annotations]
    assert texts == ["dense training", "prune + fine-tune / round 1", "round 2"]
    assert "total training" in fig.layout.xaxis.title.text


def test_timeline_grouped_by_method(tiny):
    runs, lineages, _ = tiny
    fig = training_timeline(runs, lineages, "loss", grouped=True)
    named = [t for t in fig.data if t.showlegend is not False and t.name]
    assert [t.name for t in named] == [
        "dense",
        "magnitude 50%",
        "lottery 50%",
        "earlier phase (drawn once)",
    ]
    bands = [t for t in fig.data if t.fill == "toself"]
    assert len(bands) == 3 and all(t.mode == "lines" for t in bands)
    assert "mean over 2 seeds" in fig.layout.title.text
    magnitude = next(t for t in named if t.name == "magnitude 50%")
    assert list(magnitude.x) == [3.0]


def test_presentation_theme_and_empty_input(tiny):
    runs, lineages, _ = tiny
    normal = training_timeline(runs, lineages, "acc", NORMAL)
    big = training_timeline(runs, lineages, "acc", PRESENTATION)
    assert big.layout.font.size > normal.layout.font.size
    assert big.layout.annotations[0].font.size > normal.layout.annotations[0].font.size
    assert max(t.line.width for t in big.data) > max(t.line.width for t in normal.data)
    assert isinstance(training_timeline([], {}), go.Figure)
    assert len(training_timeline([], {}).data) == 0
