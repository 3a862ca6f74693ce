"""Ensembles against interpolation (Entezari et al. 2022): each pair stores both.

Claims checked: the output-space ensemble of a network with itself is that
network; the ensemble of a pair does not depend on the alignment (a permutation
keeps each network's function); the midpoint stored is the path's value at
alpha 0.5, from the grid when it holds 0.5 and evaluated otherwise.
"""

from __future__ import annotations

import numpy as np
import pytest

from analysis import api
from analysis.batchnorm import bn_rule
from analysis.connectivity import (
    ConnectivitySpec,
    ensemble_record,
    eval_data,
    interpolation_curve,
)
from analysis.permutation import apply_permutation
from analysis.specs import DataSpec, ModelSpec, RunSpec, TrainSpec
from analysis.train import evaluate


def run(seed: int) -> RunSpec:
    """A 32-wide MLP trained 2 epochs on 300 digits."""
    return RunSpec(
        data=DataSpec(name="digits", train_size=300),
        model=ModelSpec(arch="mlp", width=32, depth=1),
        train=TrainSpec(epochs=2, batch_size=50, lr=0.01),
        seed=seed,
    )


def pair(alignment: str, alphas: int = 5) -> ConnectivitySpec:
    """The path between seeds 0 and 1."""
    return ConnectivitySpec(
        run_a=run(0), run_b=run(1), alignment=alignment, alphas=alphas, train_subset=100
    )


def test_the_ensemble_of_a_network_with_itself_is_the_network(store) -> None:
    trained = api.get(run(0), store=store)
    data = eval_data(run(0).data, 100, 0, 0)
    model = trained.model()
    got = ensemble_record(model, [trained.state, trained.state], data)
    model.load_state_dict(trained.state)
    loss, acc = evaluate(model, data.test_x, data.test_y)
    assert got["test_acc"] == acc
    assert got["test_loss"] == pytest.approx(loss, rel=1e-5)


def test_pairs_store_the_ensemble_beside_the_midpoint(store) -> None:
    """Same ensemble whatever the alignment; midpoint = the path at 0.5, on any grid."""
    docs = {a: api.get(pair(a), store=store).read("connectivity.json") for a in ("naive", "weight")}
    for doc in docs.values():
        assert doc["midpoint"] == {k: doc["curve"][k][2] for k in doc["midpoint"]}
        assert set(doc["ensemble"]) == {"train_acc", "train_loss", "test_acc", "test_loss"}
    for k, v in docs["naive"]["ensemble"].items():
        assert docs["weight"]["ensemble"][k] == pytest.approx(v, abs=1e-6), k
    # an even grid has no 0.5: the midpoint is evaluated on its own, with the same rule
    even = api.get(pair("weight", alphas=4), store=store)
    doc = even.read("connectivity.json")
    assert 0.5 not in doc["curve"]["alphas"]
    runs = [api.get(run(s), store=store) for s in (0, 1)]
    model = runs[0].model()
    aligned = apply_permutation(
        model.permutation_spec(), even.read("permutation.safetensors"), runs[1].state
    )
    data = eval_data(run(0).data, 100, 0, 0)
    mid = interpolation_curve(
        model, runs[0].state, aligned, {}, np.array([0.5]), data, bn=bn_rule(model)
    )
    assert doc["midpoint"]["test_loss"] == pytest.approx(mid["test_loss"][0], rel=1e-6)
    assert doc["midpoint"]["test_acc"] == mid["test_acc"][0]


def test_the_figure_puts_ends_ensemble_and_midpoints_on_one_row_per_pair() -> None:
    from dashboard.figures import NORMAL, PRESENTATION
    from dashboard.figures import connectivity as fc
    from dashboard.figures import ensembles as fe

    def record(alignment: str, repair: bool, mid: float) -> dict:
        values = {f"{s}_acc": [0.9, 0.5, 0.88] for s in ("train", "test")}
        return {
            "status": "cached", "pair": "seeds", "run_a": "dense s0", "run_b": "dense s1",
            "method": "dense", "alignment": alignment, "repair": repair,
            "curve": {"alphas": [0.0, 0.5, 1.0], **values},
            "ensemble": {"test_acc": 0.92, "train_acc": 0.95},
            "midpoint": {"test_acc": mid, "train_acc": mid},
        }  # fmt: skip

    conn = {"pairs": [record("naive", False, 0.5), record("weight", True, 0.85)]}
    runs = [{"label": "dense s0", "method": "dense"}, {"label": "dense s1", "method": "dense"}]
    for theme in (NORMAL, PRESENTATION):
        fig = fe.ensemble_vs_midpoint(conn, runs, "test", theme)
        by_name = {t.name: t for t in fig.data}
        assert list(by_name["the two ends"].x) == [90.0, 88.0]
        assert list(by_name["ensemble (mean softmax)"].x) == [92.0]
        assert list(by_name["midpoint, weight matching + REPAIR"].x) == [85.0]
        assert by_name["midpoint, weight matching + REPAIR"].marker.symbol == "circle-open"
        assert fig.layout.title.font.size == theme.title_size
    assert fe.ensemble_vs_midpoint(conn, runs[:1]).data == ()
    assert [i.name for i in fe.catalogue_items(conn, runs)] == ["connectivity-ensembles"]
    assert fc.ensemble_items is fe.catalogue_items  # the export's connectivity section has it
