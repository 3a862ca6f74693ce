"""A weight-matched pair carries the spread of its barriers over visiting orders; BN rule recorded.

Issue: weight matching's local optimum depends on its visiting order, and the
barriers of different orders can differ by more than the differences between
methods a figure shows. So the result keeps the best-objective order's curve
and reports min / median / max of every barrier over the orders, and every
evaluation of weights on the path goes through ``analysis.batchnorm``.
"""

from __future__ import annotations

import pytest
import torch

from analysis import api
from analysis.batchnorm import apply_bn_rule, bn_rule, bn_rule_record
from analysis.connectivity import (
    ConnectivitySettings,
    ConnectivitySpec,
    EvalData,
    interpolation_curve,
)
from analysis.data import load
from analysis.errors import SpecError
from analysis.models import build_for
from analysis.specs import DataSpec, ModelSpec, RunSpec, TrainSpec


def two_layer_run(seed: int) -> RunSpec:
    """A 2-hidden-layer MLP on 200 digits, one epoch: two permutations, so order matters."""
    return RunSpec(
        data=DataSpec(name="digits", train_size=200),
        model=ModelSpec(arch="mlp", width=16, depth=2),
        train=TrainSpec(epochs=1, batch_size=50),
        seed=seed,
    )


def test_weight_pair_keeps_the_best_order_and_reports_the_spread(store, monkeypatch) -> None:
    """Chosen = best objective; spread brackets its barrier; one BN-rule call per alpha and path."""
    import analysis.connectivity.path as path

    calls = []

    def counted(model, rule, x, **kw):
        calls.append(rule)
        return apply_bn_rule(model, rule, x, **kw)

    monkeypatch.setattr(path, "apply_bn_rule", counted)
    spec = ConnectivitySpec(
        run_a=two_layer_run(0),
        run_b=two_layer_run(1),
        alignment="weight",
        matching_restarts=6,
        alphas=5,
        train_subset=100,
        seed=3,  # with this seed the first order is not the best: the choice matters
    )
    doc = api.get(spec, store=store).read("connectivity.json")
    m = doc["matching"]
    assert m["restarts"] == 6 and len(m["objective"]) == len(m["passes"]) == 6
    assert m["chosen"] != 0 and m["objective"][0] < m["objective"][m["chosen"]]
    assert doc["matching_objective"] == max(m["objective"]) == m["objective"][m["chosen"]]
    assert len(calls) == m["distinct"] * 5 and set(calls) == {"none"}
    for split in ("train", "test"):
        for name, value in doc["barriers"][split].items():
            s = m["spread"][split][name]
            assert s["min"] <= s["median"] <= s["max"]
            assert s["min"] <= value <= s["max"]
            assert m["barriers"][split][name][m["chosen"]] == value
    assert m["objective_spread"]["max"] == doc["matching_objective"]
    assert doc["bn_rule"] == bn_rule_record("none", 100)
    assert api.get(spec, store=store).summary["spread"] == m["spread"]


def test_naive_and_activation_pairs_have_no_orders(store) -> None:
    """Only weight matching has visiting orders: the others store no matching record."""
    spec = ConnectivitySpec(
        run_a=two_layer_run(0), run_b=two_layer_run(1), alphas=3, train_subset=100
    )
    doc = api.get(spec, store=store).read("connectivity.json")
    assert doc["matching"] is None and spec.matching_restarts == 1
    assert isinstance(doc["matching_objective"], float)


def test_the_setting_is_validated_and_reaches_the_specs() -> None:
    """matching_restarts: an int in [1, 64], a one-line SpecError naming it otherwise."""
    for bad in (0, 65, 2.5, "8"):
        with pytest.raises(SpecError, match="matching_restarts"):
            ConnectivitySettings(matching_restarts=bad)
        with pytest.raises(SpecError, match="matching_restarts"):
            ConnectivitySpec(alignment="weight", matching_restarts=bad)
    assert ConnectivitySettings().matching_restarts == 8


def test_batchnorm_rule_is_enforced_and_recorded() -> None:
    """A BN network is never evaluated with the 'none' rule; REPAIR needs the endpoints."""
    info = load(DataSpec(name="digits", train_size=200)).info
    vgg = build_for(ModelSpec(arch="vgg", width_mult=0.125), info)
    mlp = build_for(ModelSpec(arch="mlp", width=8, depth=1), info)
    assert bn_rule(vgg) == "reset" and bn_rule(vgg, repair=True) == "repair"
    assert bn_rule(mlp) == "none" and bn_rule(mlp, repair=True) == "repair"
    x = torch.rand(8, 1, 8, 8)
    with pytest.raises(ValueError, match="'reset' or 'repair'"):
        apply_bn_rule(vgg, "none", x)
    with pytest.raises(ValueError, match="endpoints' statistics"):
        apply_bn_rule(vgg, "repair", x)  # REPAIR is analysis.connectivity.repair's
    state = vgg.state_dict()
    data = EvalData(x, torch.zeros(8, dtype=torch.long), x, torch.zeros(8, dtype=torch.long))
    with pytest.raises(ValueError, match="'reset' or 'repair'"):
        interpolation_curve(vgg, state, state, {}, [0.0, 1.0], data, bn="none")
    record = bn_rule_record("reset", 100)
    assert (
        record["rule"] == "reset"
        and record["samples"] == 100
        and "100-sample" in (record["description"])
    )
