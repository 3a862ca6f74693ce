"""Post-training quantization: the codes, their properties, bad settings, the kind end to end."""

from __future__ import annotations

import pytest
import torch

from analysis import api
from analysis.errors import SpecError
from analysis.quantization import (
    QuantizationSettings,
    QuantizationSpec,
    quantize,
    quantized_state,
    summarize_quantization,
)
from analysis.sparsity import sparsity_spec
from analysis.specs import DataSpec, ModelSpec, RunSpec, TrainSpec
from analysis.store import Store
from tests._tiny import tiny_text


def weights(seed: int = 0, shape=(6, 40)) -> torch.Tensor:
    """Random weights with a fifth of them pruned (exact zeros)."""
    g = torch.Generator().manual_seed(seed)
    w = torch.randn(shape, generator=g)
    return w * (torch.rand(shape, generator=g) > 0.2)


@pytest.mark.parametrize("bits", [1, 2, 3, 4, 8])
def test_each_channel_uses_at_most_2k_minus_1_levels_and_zeros_stay(bits):
    w = weights()
    for uniform in (None, torch.rand(w.shape, dtype=torch.float64)):
        q = quantize(w, bits, uniform)
        assert torch.equal(q[w == 0], torch.zeros_like(q[w == 0]))
        for row in q:
            levels = torch.unique(row[row != 0]).numel()
            assert levels <= max(2**bits - 2, 2)  # symmetric: +-L nonzero levels (k=1: +-s)


def test_nearest_rounding_is_within_half_a_step_and_32_bits_is_float():
    w = weights(1)
    q = quantize(w, 4)
    step = w.abs().amax(1, keepdim=True) / 7
    assert bool(((q - w).abs() <= step / 2 + 1e-7).all())
    torch.testing.assert_close(quantize(w, 32), w, atol=1e-7, rtol=0)


def test_stochastic_rounding_is_unbiased_and_draws_differ():
    w = weights(2, (2, 10))
    gen = torch.Generator().manual_seed(0)
    draws = torch.stack([quantized_state({"w": w}, ["w"], 2, gen)["w"] for _ in range(4000)])
    torch.testing.assert_close(draws.mean(0), w, atol=0.06, rtol=0)
    assert not torch.equal(draws[0], draws[1])


@pytest.mark.parametrize("bits", [0, 33])
def test_0_or_33_bits_are_refused_naming_the_field(bits, tmp_path):
    with pytest.raises(SpecError, match="bits"):
        QuantizationSettings(bits=(bits,))
    with pytest.raises(SpecError, match="bits"):
        QuantizationSpec(bits=(4, bits) if bits else (bits, 4))
    from analysis.study import parse_study

    with pytest.raises(SpecError, match="bits"):
        parse_study(tiny_text(quantization={"bits": [bits]}), source="bad bits")
    assert not any(tmp_path.iterdir())  # nothing written


def test_quantization_on_the_device_equals_the_cpu(device):
    w = weights(3, (8, 3, 3, 3))
    uniform = torch.rand(w.shape, dtype=torch.float64)
    for bits in (1, 3, 8):
        got = quantize(w.to(device), bits, uniform.to(device)).cpu()
        torch.testing.assert_close(got, quantize(w, bits, uniform), atol=1e-6, rtol=1e-6)


def test_the_kind_end_to_end(tmp_path):
    run = RunSpec(
        data=DataSpec(name="digits", train_size=300),
        model=ModelSpec(arch="mlp", width=32, depth=2),
        train=TrainSpec(epochs=3, batch_size=32, lr=3e-3),
        sparsity=sparsity_spec("magnitude", 0.8, {"finetune_epochs": 1}),
    )
    spec = QuantizationSpec(run=run, bits=(1, 2, 8, 32), draws=3)
    doc = api.get(spec, store=Store(tmp_path)).read("quantization.json")
    by_bits = {p["bits"]: p for p in doc["curve"]}
    assert by_bits[32]["deterministic"]["accuracy"] == doc["float"]["accuracy"]
    assert by_bits[1]["deterministic"]["accuracy"] < by_bits[8]["deterministic"]["accuracy"]
    spread = [s["accuracy"] for s in by_bits[2]["stochastic"]]
    assert max(spread) > min(spread)  # stochastic rounding has a spread
    assert doc["pruned_stay_zero"]


def test_the_section_has_a_curve_per_run(tmp_path):
    from analysis.study import parse_study
    from tests._tiny import compute

    study = parse_study(
        tiny_text(seeds=(0,), epochs=1, quantization={"bits": [2, 32], "draws": 2}), source="q"
    )
    store = Store(tmp_path)
    compute(study, store, "runs", "quantization")
    records = summarize_quantization(study, store)
    assert [r["label"] for r in records] == ["dense s0", "magnitude 80% s0"]
    for r in records:
        assert [p["bits"] for p in r["curve"]] == [2, 32]
        assert r["curve"][1]["accuracy"] == r["float_accuracy"]
        assert r["curve"][0]["draws"] == 2


# ---------------------------------------------------------------------------
# quantization-aware training ([train] qat, analysis.qat)


def qat_run(qat: str, bits: int, method: str = "dense") -> RunSpec:
    """A tiny run trained with ``qat`` at ``bits`` (magnitude: pruned, then fine-tuned so)."""
    train = TrainSpec(epochs=3, batch_size=32, lr=3e-3, qat=qat, qat_bits=bits)
    options = {"finetune_epochs": 1} if method == "magnitude" else {}
    return RunSpec(
        data=DataSpec(name="digits", train_size=300),
        model=ModelSpec(arch="mlp", width=32, depth=2),
        train=train,
        sparsity=sparsity_spec(method, 0.8 if method != "dense" else 0.0, options),
    )


def test_the_qat_fields_leave_every_existing_key_alone():
    from analysis.specs import spec_key, to_canonical

    assert "qat" not in to_canonical(TrainSpec()) and "qat_bits" not in to_canonical(TrainSpec())
    plain = spec_key(RunSpec())
    assert plain == spec_key(RunSpec(train=TrainSpec(qat="none", qat_bits=1)))
    assert spec_key(RunSpec(train=TrainSpec(qat="stochastic"))) != plain


@pytest.mark.parametrize("bits", [0, 33])
def test_bad_qat_bits_name_the_field(bits):
    with pytest.raises(SpecError, match="qat_bits"):
        TrainSpec(qat="stochastic", qat_bits=bits)
    with pytest.raises(SpecError, match="qat"):
        TrainSpec(qat="ternary")


@pytest.mark.parametrize(("qat", "bits", "levels"), [("binaryconnect", 1, 2), ("stochastic", 2, 2)])
def test_qat_trains_a_network_whose_weights_are_on_the_grid(qat, bits, levels, tmp_path):
    store = Store(tmp_path)
    dense = api.get(qat_run(qat, bits), store=store)
    assert dense.metrics["test_acc"] > 0.5  # it trained (chance 0.1; float: 0.84)
    pruned = api.get(qat_run(qat, bits, "magnitude"), store=store)
    for run in (dense, pruned):
        params = dict(run.model().named_parameters())
        for name in run.model().prunable_names():
            w = params[name].detach()
            for row in w:
                assert torch.unique(row[row != 0]).numel() <= levels, name
        for name, mask in run.masks.items():
            assert bool((params[name].detach()[~mask] == 0).all()), name  # pruned stay zero


def test_stochastic_qat_is_seed_deterministic(tmp_path):
    spec = qat_run("stochastic", 3)
    a = api.get(spec, store=Store(tmp_path / "a"))
    b = api.get(spec, store=Store(tmp_path / "b"))
    for k in a.state:
        assert torch.equal(a.state[k], b.state[k]), k
