"""Lottery rewinding to step k: the replayed rewind point is the dense run's step-k state.

The chain never reads a snapshot of the dense run (so a lottery entry does not
re-key the dense run): each round replays the dense run's first k steps. Runs
are a 32x2 MLP on 300 digits, two epochs of four steps, trained once per module.
"""

from __future__ import annotations

import pytest
import torch

from analysis import api
from analysis.sparsity import get_method, sparsity_spec
from analysis.sparsity.base import dense_of
from analysis.sparsity.lottery import previous_round
from analysis.specs import DataSpec, ModelSpec, RunSpec, TrainSpec, spec_key
from analysis.store import Store

TRAIN = TrainSpec(epochs=2, batch_size=64)  # 300 // 64 = 4 steps an epoch, 8 in all
BASE = RunSpec(data=DataSpec(name="digits", train_size=300), model=ModelSpec(width=32), train=TRAIN)
#: The same dense run keeping snapshots at the rewind steps: another key, the same weights.
SNAPSHOTTED = BASE.replace(train=TrainSpec(epochs=2, batch_size=64, snapshot_steps=(3, 6)))


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """Tiny models run faster on one thread on a shared machine."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> Store:
    """One store for the module."""
    return Store(tmp_path_factory.mktemp("rewind-store"))


def lottery(k: int, rounds: int = 2) -> RunSpec:
    """A lottery chain of ``rounds`` rounds to 80%, rewinding to step ``k``."""
    options = {"rounds": rounds, "rewind_step": k}
    return BASE.replace(sparsity=sparsity_spec("lottery", 0.8, options))


@pytest.mark.parametrize("k", [3, 6])
def test_every_round_rewinds_to_the_dense_runs_step_k_weights(k, store):
    """Step 3 is inside epoch 1, step 6 inside epoch 2 (the data order of epoch 2 is replayed too)."""
    reference = api.get(SNAPSHOTTED, store=store).trajectory[k]
    last = lottery(k)
    for spec in (previous_round(last), last):
        ticket = api.get(spec, store=store)
        masks = ticket.masks
        for name, value in ticket.init_state.items():
            want = reference[name] * masks[name] if name in masks else reference[name]
            assert torch.equal(value, want), (spec.label, name)
        assert min(ticket.trajectory) == k  # training resumed at step k
        assert ticket.history[-1]["step"] == 8  # ... and ran to the dense run's end


def test_the_chain_needs_no_snapshot_and_no_other_dense_run(store):
    """The chain's prerequisites end at the plain dense run, whose key a rewind step never touches."""
    spec, chain = lottery(6, rounds=3), []
    while True:
        (prerequisite,) = get_method("lottery").prerequisites(spec)
        chain.append(prerequisite)
        if prerequisite.sparsity.method == "dense":
            break
        spec = prerequisite
    assert [s.sparsity.opt("rounds") for s in chain[:-1]] == [2, 1]
    assert spec_key(chain[-1]) == spec_key(dense_of(lottery(0))) == spec_key(BASE)
    assert chain[-1].train.snapshot_steps == ()


def test_rewinding_to_zero_is_the_seeded_initialisation(store):
    dense = api.get(BASE, store=store)
    ticket = api.get(lottery(0, rounds=1), store=store)
    for name, value in ticket.init_state.items():
        mask = ticket.masks.get(name)
        want = dense.init_state[name] if mask is None else dense.init_state[name] * mask
        assert torch.equal(value, want), name
