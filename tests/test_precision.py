"""Mixed precision as part of the recipe: keys, validation, bf16 on the CPU, fp16 refused there.

Tolerance: a bf16 run of the digits MLP ends within 3 points of test accuracy
and 0.05 of test loss of its fp32 twin (measured: 0.3 points, 0.0001).
"""

from __future__ import annotations

import math

import pytest
import torch

from analysis import api
from analysis.api import ComputeFailed
from analysis.data import load
from analysis.errors import SpecError
from analysis.models import build_for
from analysis.sparsity import sparsity_spec
from analysis.specs import DataSpec, ModelSpec, RunSpec, TrainSpec, canonical_json, spec_key
from analysis.study import parse_study
from analysis.train import evaluate, fit
from analysis.training_types import PrecisionError, check_precision
from tests.test_specs import PINNED

DIGITS = DataSpec(name="digits")
MLP = ModelSpec(arch="mlp", width=64, depth=2)


def _run(precision: str, method: str = "dense", sparsity: float = 0.0) -> RunSpec:
    return RunSpec(
        data=DIGITS,
        model=MLP,
        train=TrainSpec(epochs=3, precision=precision),
        sparsity=sparsity_spec(method, sparsity),
    )


# ---------------------------------------------------------------------------
# keys and validation


def test_fp32_keeps_every_key_and_other_precisions_change_it():
    default = RunSpec()
    assert spec_key(RunSpec(train=TrainSpec(precision="fp32"))) == PINNED["default"]
    assert spec_key(default) == PINNED["default"]
    assert "precision" not in canonical_json(default)  # left out while fp32
    bf16 = spec_key(RunSpec(train=TrainSpec(precision="bf16")))
    fp16 = spec_key(RunSpec(train=TrainSpec(precision="fp16")))
    assert len({PINNED["default"], bf16, fp16}) == 3
    assert '"precision":"bf16"' in canonical_json(RunSpec(train=TrainSpec(precision="bf16")))


STUDY = """
name = "p"
[data]
name = "digits"
[model]
arch = "mlp"
width = 16
[train]
epochs = 1
precision = {value}
[[methods]]
method = "dense"
"""


def test_the_study_file_sets_the_precision_of_every_run():
    study = parse_study(STUDY.format(value='"bf16"'))
    assert {r.train.precision for r in study.runs()} == {"bf16"}
    plain = parse_study(STUDY.replace("precision = {value}\n", ""))
    assert {r.train.precision for r in plain.runs()} == {"fp32"}


@pytest.mark.parametrize("value", ['"fp8"', '"half"', "16", "true"])
def test_an_unknown_precision_is_one_line_naming_the_field_and_the_choices(value):
    with pytest.raises(SpecError) as err:
        parse_study(STUDY.format(value=value))
    message = str(err.value)
    assert "\n" not in message
    assert "train.precision" in message
    assert all(p in message for p in ("'fp32'", "'bf16'", "'fp16'"))


def test_fp16_on_the_cpu_names_the_alternatives():
    with pytest.raises(PrecisionError) as err:
        check_precision("fp16", torch.device("cpu"))
    message = str(err.value)
    assert "fp16" in message and "'fp32' or 'bf16'" in message and "\n" not in message
    check_precision("bf16", torch.device("cpu"))  # allowed
    with pytest.raises(SpecError, match="train.precision"):
        check_precision("fp64", torch.device("cpu"))


def test_fp16_on_the_cpu_fails_before_training_and_stores_no_result(store, monkeypatch):
    spec = RunSpec(
        data=DataSpec(name="digits", train_size=200),
        model=ModelSpec(width=16, depth=1),
        train=TrainSpec(epochs=1, precision="fp16"),
    )
    loaded = []
    monkeypatch.setattr("analysis.runs.load", lambda *a, **k: loaded.append(a))
    with pytest.raises(ComputeFailed, match="'fp32' or 'bf16'") as err:
        api.get(spec, store=store, device=torch.device("cpu"))
    assert isinstance(err.value.__cause__, PrecisionError)
    assert not loaded  # refused before any data was read
    assert not api.exists(spec, store)
    assert not (store.root / "run").exists() or not any((store.root / "run").rglob("*.json"))


def test_fit_refuses_fp16_on_the_cpu_before_any_step():
    data = load(DataSpec(name="digits", train_size=200))
    model = build_for(ModelSpec(width=16, depth=1), data.info)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(PrecisionError):
        fit(model, data, TrainSpec(epochs=1, precision="fp16"), seed=0)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


# ---------------------------------------------------------------------------
# bf16 on the CPU


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """fp32 and bf16 twins (dense, and magnitude at 80%) trained once for the module."""
    from analysis.store import Store

    store = Store(tmp_path_factory.mktemp("precision"))
    specs = {
        (p, m): _run(p, m, s)
        for p in ("fp32", "bf16")
        for m, s in (("dense", 0), ("magnitude", 0.8))
    }
    return {k: api.get(spec, store=store) for k, spec in specs.items()}


@pytest.mark.parametrize("method", ["dense", "magnitude"])
def test_bf16_on_the_cpu_trains_about_as_well_as_fp32(runs, method):
    fp32, bf16 = runs["fp32", method].metrics, runs["bf16", method].metrics
    assert bf16["test_acc"] > 0.8
    assert abs(bf16["test_acc"] - fp32["test_acc"]) <= 0.03
    assert abs(bf16["test_loss"] - fp32["test_loss"]) <= 0.05
    assert runs["fp32", method].spec != runs["bf16", method].spec


def test_masks_hold_exactly_under_bf16(runs):
    run = runs["bf16", "magnitude"]
    assert run.masks
    for name, mask in run.masks.items():
        assert torch.all(run.state[name][~mask] == 0), name
    assert run.metrics["achieved_sparsity"] == pytest.approx(0.8, abs=1e-3)


@pytest.mark.parametrize("method", ["dense", "magnitude"])
def test_stored_tensors_are_fp32_on_the_cpu_under_autocast(runs, method):
    run = runs["bf16", method]
    stored = [run.state, run.init_state, *run.trajectory.values()]
    for state in stored:
        for name, t in state.items():
            assert t.device.type == "cpu", name
            if t.is_floating_point():
                assert t.dtype == torch.float32, name
            assert t.is_contiguous(), name


def test_autocast_keeps_master_weights_fp32_and_evaluates_in_bf16():
    data = load(DataSpec(name="digits", train_size=300))
    torch.manual_seed(0)
    model = build_for(ModelSpec(width=32, depth=2), data.info)
    fit(model, data, TrainSpec(epochs=2, batch_size=64, precision="bf16"), seed=0)
    assert all(p.dtype == torch.float32 for p in model.parameters())
    fp32 = evaluate(model, data.test_x, data.test_y)
    bf16 = evaluate(model, data.test_x, data.test_y, precision="bf16")
    assert bf16 != fp32  # really computed in bf16 ...
    assert bf16[0] == pytest.approx(fp32[0], abs=0.02)  # ... and close
    assert bf16[1] == pytest.approx(fp32[1], abs=0.02)


def test_supcon_trains_under_bf16():
    data = load(DataSpec(name="digits", train_size=300))
    torch.manual_seed(0)
    model = build_for(ModelSpec(width=32, depth=1), data.info)
    spec = TrainSpec(epochs=1, batch_size=64, objective="supcon", probe_epochs=1, precision="bf16")
    out = fit(model, data, spec, seed=0)
    assert math.isfinite(out.history[0]["train_loss"])
    assert 0.0 <= out.history[0]["test_knn_acc"] <= 1.0


def test_fp16_trains_on_a_gpu(device):
    if device.type == "cpu":
        pytest.skip("fp16 needs a GPU (refused on the CPU: see the tests above)")
    data = load(DataSpec(name="digits", train_size=300))
    torch.manual_seed(0)
    model = build_for(ModelSpec(width=32, depth=2), data.info).to(device)
    out = fit(model, data, TrainSpec(epochs=2, batch_size=64, precision="fp16"), seed=0)
    assert out.history[-1]["test_acc"] > 0.5
    assert all(p.dtype == torch.float32 for p in model.parameters())
