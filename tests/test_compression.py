"""Real compression: the physically smaller network computes what the masked one does, and
its counts match the mask; unstructured masks remove nothing; the kind end to end."""

from __future__ import annotations

import pytest
import torch

from analysis import api
from analysis.compression import (
    CompressionSettings,
    CompressionSpec,
    compress,
    csr_state,
    macs_per_sample,
    removable_channels,
    saved_bytes,
)
from analysis.data import dataset_info
from analysis.errors import SpecError
from analysis.models import build_for
from analysis.sparsity import sparsity_spec
from analysis.sparsity.base import apply_masks, magnitude_scores, masks_from_scores
from analysis.sparsity.l1_structured import structured_masks
from analysis.specs import DataSpec, ModelSpec, RunSpec, TrainSpec

ARCHS = {
    "mlp": (ModelSpec(arch="mlp", width=32, depth=2), "digits"),
    "lenet": (ModelSpec(arch="lenet", width_mult=0.5), "digits"),
    "vgg": (ModelSpec(arch="vgg", width_mult=0.125), "cifar10"),
    "resnet20": (ModelSpec(arch="resnet20", width_mult=0.5), "cifar10"),
}


def network(arch: str, seed: int = 0) -> torch.nn.Module:
    """An initialised network of ``arch`` with random BatchNorm statistics (eval mode)."""
    spec, data = ARCHS[arch]
    torch.manual_seed(seed)
    model = build_for(spec, dataset_info(data))
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.normal_()
            m.running_var.uniform_(0.5, 2.0)
            m.weight.data.normal_()
            m.bias.data.normal_()
    return model.eval()


def batch(arch: str, n: int = 8) -> torch.Tensor:
    """A random input batch (n, C, S, S) in [0, 1] for ``arch``'s dataset."""
    info = dataset_info(ARCHS[arch][1])
    return torch.rand(n, info.in_channels, info.image_size, info.image_size)


@pytest.mark.parametrize("arch", list(ARCHS))
def test_structured_compression_keeps_outputs_and_the_masks_count(arch, device):
    model = network(arch)
    masks, removed = structured_masks(model, 0.5)
    apply_masks(model, masks)
    x = batch(arch)
    with torch.no_grad():
        expected = model(x)
    small = compress(model.to(device), masks)
    with torch.no_grad():
        got = small(x.to(device)).cpu()
    torch.testing.assert_close(got, expected, atol=1e-4, rtol=1e-4)
    params = dict(small.named_parameters())
    kept = sum(int(m.sum()) for m in masks.values())
    assert sum(params[n].numel() for n in masks) == kept
    assert len(removable_channels(model, masks)) == len(removed) > 0
    assert macs_per_sample(small, x.to(device)) == macs_per_sample(
        model, x.to(device), effective=True
    )


def test_an_unstructured_mask_removes_nothing():
    model = network("mlp")
    masks = masks_from_scores(magnitude_scores(model), 0.8)
    apply_masks(model, masks)
    small = compress(model, masks)
    assert removable_channels(model, masks) == {}
    assert sum(p.numel() for p in small.parameters()) == sum(p.numel() for p in model.parameters())
    assert saved_bytes(small.state_dict()) == saved_bytes(model.state_dict())
    assert saved_bytes(csr_state(model.state_dict(), list(masks))) < saved_bytes(model.state_dict())


def test_a_dead_neuron_that_is_still_read_is_kept():
    """A neuron whose incoming weights are all masked still outputs relu(bias): not removable."""
    model = network("mlp")
    masks = {
        n: torch.ones_like(p, dtype=torch.bool)
        for n, p in model.named_parameters()
        if n in model.prunable_names()
    }
    first = model.prunable_names()[0]
    masks[first][3] = False
    apply_masks(model, masks)
    assert removable_channels(model, masks) == {}


def test_macs_of_an_mlp_by_hand():
    model = network("mlp")
    shapes = [p.shape for n, p in model.named_parameters() if n in model.prunable_names()]
    assert macs_per_sample(model, batch("mlp")) == sum(s[0] * s[1] for s in shapes)


def test_bad_settings_name_the_field():
    with pytest.raises(SpecError, match="batch"):
        CompressionSettings(batch=0)
    with pytest.raises(SpecError, match="repeats"):
        CompressionSpec(repeats=0)


def test_the_compression_kind_end_to_end(store):
    run = RunSpec(
        data=DataSpec(name="digits", train_size=300),
        model=ModelSpec(arch="mlp", width=32, depth=2),
        train=TrainSpec(epochs=1, batch_size=64),
        sparsity=sparsity_spec("l1-structured", 0.5, {"finetune_epochs": 1}),
    )
    doc = api.get(CompressionSpec(run=run, repeats=3), store=store).read("compression.json")
    assert doc["outputs_equal"] and doc["max_output_diff"] <= 1e-4
    assert doc["prunable_compressed"] == doc["prunable_kept"]
    assert doc["params_compressed"] < doc["params_dense"]
    assert doc["macs_compressed"] == doc["macs_effective"] < doc["macs_dense"]
    assert doc["bytes_compressed"] < doc["bytes_dense"]
    assert doc["latency_masked_s"] > 0 and doc["latency_compressed_s"] > 0


def test_the_thin_network_from_scratch_trains_the_pruned_architecture(store):
    """l1-scratch (Li et al.'s control): the l1-structured run's masks, a fresh init, and the
    same physically smaller network once compressed."""
    base = RunSpec(
        data=DataSpec(name="digits", train_size=300),
        model=ModelSpec(arch="mlp", width=32, depth=2),
        train=TrainSpec(epochs=1, batch_size=64),
    )
    pruned = api.get(base.replace(sparsity=sparsity_spec("l1-structured", 0.5)), store=store)
    spec = base.replace(sparsity=sparsity_spec("l1-scratch", 0.5))
    scratch = api.get(spec, store=store)
    for n, m in pruned.masks.items():
        assert torch.equal(scratch.masks[n], m)
        assert not torch.equal(scratch.init_state[n][m], pruned.init_state[n][m])
    doc = api.get(CompressionSpec(run=spec, repeats=2), store=store).read("compression.json")
    assert doc["outputs_equal"] and doc["prunable_compressed"] == doc["prunable_kept"]
