"""The learned supermask (edge-popup): only the mask learns; the weights stay at init."""

from __future__ import annotations

import pytest
import torch

from analysis import api
from analysis.sparsity import sparsity_spec
from analysis.sparsity.supermask import top_fraction
from analysis.specs import DataSpec, ModelSpec, RunSpec, TrainSpec
from analysis.store import Store

DIGITS = RunSpec(
    data=DataSpec(name="digits"),
    model=ModelSpec(arch="mlp", width=64, depth=1),
    train=TrainSpec(epochs=6, batch_size=64, lr=0.003),
)


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield Store(tmp_path_factory.mktemp("supermask"))
    torch.set_num_threads(before)


def test_top_fraction_keeps_the_largest_magnitudes():
    scores = torch.tensor([[0.1, -3.0], [2.0, -0.2]])
    assert top_fraction(scores, 0.5).tolist() == [[False, True], [True, False]]
    assert int(top_fraction(scores, 0.01).sum()) == 1  # never an empty layer


def test_the_mask_learns_and_the_weights_stay_at_init(store):
    spec = DIGITS.replace(sparsity=sparsity_spec("learned-supermask", 0.8))
    run = api.get(spec, store=store)
    accs = [h["test_acc"] for h in run.history]
    assert accs[-1] > 0.4 and accs[-1] > accs[0]  # learned: 4x chance (measured 66%)
    assert run.metrics["achieved_sparsity"] == pytest.approx(0.8, abs=0.01)
    for name, mask in run.masks.items():
        assert torch.equal(run.state[name], run.init_state[name] * mask)


def test_signed_constant_weights_have_one_magnitude_per_layer(store):
    spec = DIGITS.replace(
        train=TrainSpec(epochs=1, batch_size=64),
        sparsity=sparsity_spec("learned-supermask", 0.5, {"signed_constant": True}),
    )
    run = api.get(spec, store=store)
    for name, mask in run.masks.items():
        kept = run.state[name][mask].abs()
        assert torch.allclose(kept, kept[0].expand_as(kept))
