"""Per-layer sensitivity (Li et al. 2017, Figure 2) and the sensitivity-guided L1 method."""

from __future__ import annotations

import pytest
import torch

import analysis.parts  # noqa: F401  (installs the kinds)
from analysis import api
from analysis.errors import SpecError
from analysis.sensitivity import SensitivitySettings, SensitivitySpec, sensitivity_specs
from analysis.sparsity import sparsity_spec
from analysis.sparsity.l1_structured import removal_order
from analysis.specs import DataSpec, ModelSpec, RunSpec, TrainSpec
from analysis.store import Store
from analysis.study import parse_study
from tests._tiny import tiny_text

RUN = RunSpec(
    data=DataSpec(name="digits"),
    model=ModelSpec(arch="mlp", width=64, depth=2),
    train=TrainSpec(epochs=6, batch_size=50, lr=3e-3),
)


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """Tiny models run faster on one thread on a shared machine."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> Store:
    """One store for the module (the run is trained once)."""
    return Store(tmp_path_factory.mktemp("sensitivity"))


@pytest.fixture(scope="module")
def curves(store):
    """The sensitivity record of the dense MLP on digits (5 levels, 2 random trials)."""
    spec = SensitivitySpec(run=RUN, levels=(0.2, 0.4, 0.6, 0.8, 0.9), trials=2)
    return api.get(spec, store=store).read("sensitivity.json"), api.get(RUN, store=store)


def test_removal_orders():
    w = torch.tensor([[3.0, -1.0], [0.5, 0.0], [-2.0, -2.0]])  # L1 norms 4, 0.5, 4
    assert removal_order(w, "smallest").tolist() == [1, 0, 2]
    assert removal_order(w, "largest").tolist() == [0, 2, 1]
    gen = torch.Generator().manual_seed(0)
    assert sorted(removal_order(w, "random", gen).tolist()) == [0, 1, 2]


def test_curves_start_at_the_runs_own_accuracy(curves):
    doc, run = curves
    assert doc["base_accuracy"] == run.metrics["test_acc"]
    assert doc["levels"] == [0.0, 0.2, 0.4, 0.6, 0.8, 0.9]
    assert [layer["name"] for layer in doc["layers"]] == ["body.fc0.weight", "body.fc1.weight"]
    for layer in doc["layers"]:
        for criterion in ("smallest", "random", "largest"):
            assert len(layer[criterion]) == 6
            assert layer[criterion][0] == run.metrics["test_acc"]
        assert len(layer["random_std"]) == 6


def test_pruning_the_largest_hurts_more_than_the_smallest_layer_by_layer(curves):
    doc, _ = curves
    for layer in doc["layers"]:
        small, large = layer["smallest"], layer["largest"]
        assert sum(large[1:]) < sum(small[1:]), layer["name"]
        # up to 60% removed, point by point (beyond, both are near chance on this MLP)
        assert all(lg < sm for lg, sm in zip(large[1:4], small[1:4], strict=True)), layer
        assert small[-1] <= small[0] + 0.02  # removing units does not help much


def test_the_same_spec_gives_the_same_curves(curves, tmp_path):
    doc, _ = curves
    spec = SensitivitySpec(run=RUN, levels=(0.2, 0.4, 0.6, 0.8, 0.9), trials=2)
    again = api.get(spec, store=Store(tmp_path)).read("sensitivity.json")
    assert again == doc


@pytest.mark.parametrize("levels", [(0.0, 0.5), (0.5, 1.0), (1.5,), (), (0.5, 0.2)])
def test_levels_outside_the_open_interval_are_refused_naming_the_field(levels):
    with pytest.raises(SpecError) as info:
        SensitivitySettings(levels=levels)
    message = str(info.value)
    assert "'levels'" in message and "\n" not in message


def test_a_study_with_bad_levels_names_the_field():
    text = tiny_text(seeds=(0,), magnitude=False, sensitivity={"levels": [0.5, 1.0]})
    with pytest.raises(SpecError, match=r"analyses\.sensitivity\.levels"):
        parse_study(text)


def test_the_study_measures_its_dense_runs_by_default():
    study = parse_study(tiny_text(seeds=(0, 1)), source="tiny")
    specs = sensitivity_specs(study)
    assert [s.run.sparsity.method for s in specs] == ["dense", "dense"]
    every = parse_study(tiny_text(seeds=(0,), sensitivity={"runs": "all"}), source="tiny")
    assert len(sensitivity_specs(every)) == len(every.runs())


@pytest.mark.slow
def test_the_guided_method_prunes_sensitive_layers_less(store):
    """max_drop 0: a layer is pruned only as far as it costs no validation accuracy."""
    guided = RUN.replace(sparsity=sparsity_spec("l1-sensitivity", 0.9, {"max_drop": 0.0}))
    run = api.get(guided, store=store)
    fractions = run.metrics["notes"]["layer_fractions"]
    assert set(fractions) == {"P_0", "P_1"}
    assert min(fractions.values()) < 0.9  # some layer is too sensitive for 90%
    plain = RUN.replace(sparsity=sparsity_spec("l1-sensitivity", 0.9, {"max_drop": 1.0}))
    assert api.get(plain, store=store).metrics["notes"]["layer_fractions"] == {
        "P_0": 0.9,
        "P_1": 0.9,
    }
    assert (
        run.metrics["achieved_sparsity"] < api.get(plain, store=store).metrics["achieved_sparsity"]
    )


def test_the_figure_draws_a_line_per_layer_in_each_criterion_panel(curves):
    from dashboard.figures.sparsity_paths import sensitivity_figure
    from dashboard.figures.theme import PRESENTATION

    doc, _ = curves
    fig = sensitivity_figure({**doc, "label": "dense s0"})
    assert len(fig.data) == 3 * len(doc["layers"])
    assert [t.name for t in fig.data[:2]] == ["body.fc0 (64)", "body.fc1 (64)"]
    assert list(fig.data[0].x) == [0.0, 20.0, 40.0, 60.0, 80.0, 90.0]
    assert fig.data[0].y[0] == pytest.approx(100 * doc["base_accuracy"])
    big = sensitivity_figure(doc, PRESENTATION)
    assert big.layout.font.size > fig.layout.font.size
