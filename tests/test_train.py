"""The training loop: LR schedules, the SupCon loss, divergence, snapshots, reproducibility.

Runs are a 32x2 MLP on 300 digits (four steps an epoch), each trained once per
module through ``analysis.api.get`` on a module-scoped store.
"""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

import analysis.train
from analysis import api
from analysis.api import ComputeFailed
from analysis.data import load
from analysis.errors import TrainingDiverged
from analysis.models import build_for
from analysis.specs import DataSpec, ModelSpec, RunSpec, TrainSpec
from analysis.store import Store
from analysis.train import fit, lr_factor, supcon_loss

DATA = DataSpec(name="digits", train_size=300)
MLP = ModelSpec(arch="mlp", width=32, depth=2)
STEPS_PER_EPOCH = 300 // 64  # fit drops the last partial batch
#: Two epochs with extra snapshots at steps 1 and 2.
SPEC = RunSpec(
    data=DATA, model=MLP, train=TrainSpec(epochs=2, batch_size=64, snapshot_steps=(1, 2))
)


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """Tiny models run faster on one thread, and far faster on a shared, busy machine
    (two spinning intra-op threads on two contended cores can cost 50x on a conv)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def run_store(tmp_path_factory) -> Store:
    return Store(tmp_path_factory.mktemp("train-store"))


@pytest.fixture(scope="module")
def digits():
    return load(DATA)


@pytest.fixture(scope="module")
def dense_run(run_store):
    return api.get(SPEC, store=run_store)


def _model(seed: int = 0):
    torch.manual_seed(seed)
    return build_for(MLP, load(DATA).info)


# ---------------------------------------------------------------------------
# learning-rate schedules


def test_lr_factor_constant():
    for step in (0, 50, 99, 100, 150):
        assert lr_factor(step, 100, "constant") == 1.0


def test_lr_factor_cosine():
    assert lr_factor(0, 100, "cosine") == pytest.approx(1.0)
    assert lr_factor(50, 100, "cosine") == pytest.approx(0.5)
    assert lr_factor(25, 100, "cosine") == pytest.approx(0.5 * (1 + math.cos(math.pi / 4)))
    assert lr_factor(100, 100, "cosine") == pytest.approx(0.0, abs=1e-12)
    assert lr_factor(200, 100, "cosine") == pytest.approx(0.0, abs=1e-12)  # clamped past the end
    values = [lr_factor(t, 100, "cosine") for t in range(101)]
    assert all(b <= a for a, b in zip(values, values[1:], strict=False))


def test_lr_factor_step():
    assert lr_factor(0, 100, "step") == 1.0
    assert lr_factor(49, 100, "step") == 1.0
    assert lr_factor(50, 100, "step") == pytest.approx(0.1)
    assert lr_factor(74, 100, "step") == pytest.approx(0.1)
    assert lr_factor(75, 100, "step") == pytest.approx(0.01)
    assert lr_factor(100, 100, "step") == pytest.approx(0.01)


@pytest.mark.parametrize("schedule", ["constant", "cosine", "step"])
def test_lr_factor_no_steps(schedule):
    assert lr_factor(0, 0, schedule) == 1.0


# ---------------------------------------------------------------------------
# the supervised contrastive loss


def _supcon_reference(z: torch.Tensor, y: torch.Tensor, t: float) -> float:
    """Khosla et al. 2020 eq. 2 (L_out), written as loops."""
    n = len(z)
    total = 0.0
    for i in range(n):
        denom = sum(math.exp(float(z[i] @ z[a]) / t) for a in range(n) if a != i)
        pos = [p for p in range(n) if p != i and y[p] == y[i]]
        if not pos:
            continue  # no positive: the anchor contributes 0
        total += -sum(math.log(math.exp(float(z[i] @ z[p]) / t) / denom) for p in pos) / len(pos)
    return total / n


def _views(n_per_class: int, n_classes: int, noise: float, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    centers = F.normalize(torch.randn(n_classes, 16, generator=g), dim=1)
    y = torch.arange(n_classes).repeat_interleave(n_per_class)
    z = F.normalize(centers[y] + noise * torch.randn(len(y), 16, generator=g), dim=1)
    return z, y


def test_supcon_matches_reference():
    z, y = _views(3, 4, noise=0.5)
    y = y.clone()
    y[-1] = 99  # an anchor with no positive
    for t in (0.1, 0.5, 1.0):
        assert float(supcon_loss(z, y, t)) == pytest.approx(_supcon_reference(z, y, t), rel=1e-4)


def test_supcon_lower_for_separated_clusters():
    clustered, y = _views(8, 5, noise=0.05)
    g = torch.Generator().manual_seed(1)
    random = F.normalize(torch.randn(len(y), 16, generator=g), dim=1)
    low = supcon_loss(clustered, y, 0.1)
    high = supcon_loss(random, y, 0.1)
    assert torch.isfinite(low) and torch.isfinite(high)
    assert float(low) < float(high) - 1.0


def test_supcon_finite_and_symmetric_under_batch_permutation():
    z, y = _views(6, 4, noise=0.3)
    z.requires_grad_(True)
    loss = supcon_loss(z, y, 0.07)
    (grad,) = torch.autograd.grad(loss, z)
    assert torch.isfinite(loss) and torch.isfinite(grad).all()
    perm = torch.randperm(len(y), generator=torch.Generator().manual_seed(2))
    permuted = supcon_loss(z[perm], y[perm], 0.07)
    assert float(permuted.detach()) == pytest.approx(float(loss.detach()), rel=1e-5)
    # identical embeddings at a tiny temperature stay finite (logsumexp, masked self)
    same = F.normalize(torch.ones(8, 16), dim=1)
    assert torch.isfinite(supcon_loss(same, torch.arange(8) % 2, 0.01))


def test_supcon_run_through_api(run_store):
    train = TrainSpec(
        objective="supcon", epochs=1, probe_epochs=2, projection_dim=16, batch_size=64
    )
    run = api.get(RunSpec(data=DATA, model=MLP, train=train), store=run_store)
    m = run.metrics
    assert m["objective"] == "supcon"
    assert m["test_acc"] > 0.1 and m["test_knn_acc"] > 0.1
    assert math.isfinite(m["test_loss"])
    (h,) = run.history
    assert h["train_acc"] is None
    assert math.isfinite(h["train_loss"])
    assert 0.0 <= h["val_knn_acc"] <= 1.0 and 0.0 <= h["test_knn_acc"] <= 1.0


# ---------------------------------------------------------------------------
# divergence


@pytest.fixture
def nan_loss(monkeypatch):
    """Cross-entropy (as the training loop calls it) returns NaN."""
    original = F.cross_entropy

    def broken(*args, **kwargs):
        return original(*args, **kwargs) * float("nan")

    monkeypatch.setattr(analysis.train.F, "cross_entropy", broken)
    return monkeypatch


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_divergence_guard_stops_fit(bad, digits, monkeypatch):
    original = F.cross_entropy
    monkeypatch.setattr(analysis.train.F, "cross_entropy", lambda *a, **k: original(*a, **k) * bad)
    model = _model()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(TrainingDiverged, match="diverged"):
        fit(model, digits, TrainSpec(epochs=1, batch_size=64), seed=0)
    # the guard runs before the optimizer step: the non-finite gradient never reached the weights
    for k, v in model.state_dict().items():
        assert torch.equal(v, before[k]), k


def test_divergence_guard_supcon(digits, monkeypatch):
    monkeypatch.setattr(analysis.train, "supcon_loss", lambda z, y, t: z.sum() * float("nan"))
    train = TrainSpec(objective="supcon", epochs=1, probe_epochs=1, projection_dim=8, batch_size=64)
    with pytest.raises(TrainingDiverged):
        fit(_model(), digits, train, seed=0)


def test_divergence_through_api_is_recorded_not_committed(tmp_path, nan_loss):
    store = Store(tmp_path / "cache")
    spec = RunSpec(data=DATA, model=MLP, train=TrainSpec(epochs=1, batch_size=64), seed=5)
    with pytest.raises(ComputeFailed, match="diverged") as err:
        api.get(spec, store=store)
    assert isinstance(err.value.__cause__, TrainingDiverged)
    failure = store.failure(spec)
    assert failure is not None and "TrainingDiverged" in failure
    assert not store.exists(spec)
    assert not store.path(spec).exists()
    assert api.status(spec, store) == "failed"
    assert not list((store.root / "run").rglob(".tmp-*"))  # no half-written entry left
    # once the cause is gone the run computes and the failure record is cleared
    nan_loss.undo()
    run = api.get(spec, store=store)
    assert math.isfinite(run.metrics["test_loss"])
    assert store.failure(spec) is None
    assert api.status(spec, store) == "cached"


def test_lr_at_the_maximum_the_spec_allows_trains_or_raises_cleanly(digits):
    """lr=10 (SGD) either stays finite or stops with TrainingDiverged, never anything else."""
    model = _model()
    try:
        out = fit(
            model, digits, TrainSpec(optimizer="sgd", lr=10.0, epochs=1, batch_size=64), seed=0
        )
    except TrainingDiverged:
        return
    assert all(math.isfinite(h["train_loss"]) for h in out.history)


# ---------------------------------------------------------------------------
# snapshots, history, reproducibility


def test_trajectory_holds_init_epoch_ends_and_snapshot_steps(dense_run):
    traj = dense_run.trajectory
    epoch_ends = {STEPS_PER_EPOCH * e for e in range(1, SPEC.train.epochs + 1)}
    assert set(traj) == {0} | epoch_ends | set(SPEC.train.snapshot_steps)
    init = dense_run.init_state
    assert traj[0].keys() == init.keys()
    for k in init:
        assert torch.equal(traj[0][k], init[k]), k
    last = traj[max(traj)]
    for k, v in dense_run.state.items():
        assert torch.equal(last[k], v), k
    # snapshots are distinct points along training
    assert not torch.equal(traj[1]["body.fc0.weight"], traj[0]["body.fc0.weight"])
    assert not torch.equal(traj[2]["body.fc0.weight"], traj[1]["body.fc0.weight"])


def test_fit_snapshots_with_start_step_offset(digits):
    from analysis.train import Snapshots

    out = fit(
        _model(),
        digits,
        TrainSpec(epochs=1, batch_size=64),
        seed=0,
        callbacks=[Snapshots()],
        start_step=10,
    )
    assert set(out.snapshots) == {10, 10 + STEPS_PER_EPOCH}
    assert out.history[-1]["step"] == 10 + STEPS_PER_EPOCH


def test_fit_snapshot_steps_are_global_steps_when_resumed(digits):
    from analysis.train import Snapshots

    train = TrainSpec(epochs=1, batch_size=64)
    out = fit(_model(), digits, train, seed=0, callbacks=[Snapshots((12,))], start_step=10)
    assert set(out.snapshots) == {10, 12, 10 + STEPS_PER_EPOCH}


def test_history_per_epoch(dense_run):
    hist = dense_run.history
    assert len(hist) == SPEC.train.epochs
    total = STEPS_PER_EPOCH * SPEC.train.epochs
    for e, h in enumerate(hist, start=1):
        assert h["epoch"] == e
        assert h["step"] == e * STEPS_PER_EPOCH
        for key in ("train_loss", "val_loss", "test_loss"):
            assert math.isfinite(h[key]) and h[key] > 0, key
        for key in ("train_acc", "val_acc", "test_acc"):
            assert 0.0 <= h[key] <= 1.0, key
    # the LR of the last step follows the spec's (cosine) schedule
    assert hist[-1]["lr"] == pytest.approx(SPEC.train.lr * lr_factor(total - 1, total, "cosine"))
    # the final metrics are the last epoch's evaluation of the same weights
    m = dense_run.metrics
    assert m["test_acc"] == hist[-1]["test_acc"] and m["val_acc"] == hist[-1]["val_acc"]
    assert m["test_loss"] == pytest.approx(hist[-1]["test_loss"], rel=1e-6)
    assert hist[-1]["train_loss"] < hist[0]["train_loss"]


def test_same_spec_twice_is_bit_identical(dense_run, tmp_path):
    again = api.get(SPEC, store=Store(tmp_path / "other"))
    assert dense_run.state.keys() == again.state.keys()
    for k in dense_run.state:
        assert torch.equal(dense_run.state[k], again.state[k]), k
    for step, snap in dense_run.trajectory.items():
        for k in snap:
            assert torch.equal(snap[k], again.trajectory[step][k]), (step, k)


def test_different_seed_different_weights(dense_run, run_store):
    other = api.get(SPEC.replace(seed=1), store=run_store)
    assert not torch.equal(
        other.init_state["body.fc0.weight"], dense_run.init_state["body.fc0.weight"]
    )
    assert not torch.equal(other.state["body.fc0.weight"], dense_run.state["body.fc0.weight"])


# ---------------------------------------------------------------------------
# replaying the first steps of a run (rewind points)


@pytest.mark.parametrize("step", [1, 2, STEPS_PER_EPOCH])
def test_stop_step_replays_the_run_to_its_snapshot_exactly(dense_run, digits, step):
    model = _model()
    model.load_state_dict(dense_run.init_state)
    out = fit(model, digits, SPEC.train, seed=SPEC.seed, stop_step=step)
    assert out.steps == step
    for k, v in model.state_dict().items():
        assert torch.equal(v, dense_run.trajectory[step][k]), (step, k)


def test_stop_step_inside_a_later_epoch_keeps_the_schedule(digits):
    """Stopping at step 6 of 8 gives the full run's step-6 weights (the LR schedule is not cut)."""
    from analysis.train import Snapshots

    full, part = _model(), _model()
    part.load_state_dict(full.state_dict())
    train = SPEC.train
    ref = fit(full, digits, train, seed=0, callbacks=[Snapshots((6,))])
    out = fit(part, digits, train, seed=0, stop_step=6)
    assert out.steps == 6 and len(out.history) == 1  # no record of the stopped epoch
    for k, v in part.state_dict().items():
        assert torch.equal(v, ref.snapshots[6][k]), k
    # with the schedule cut at step 6 instead (max_steps), the weights differ
    cut = _model()
    cut.load_state_dict(ref.snapshots[0])
    fit(cut, digits, train, seed=0, max_steps=6)
    assert not torch.equal(cut.state_dict()["body.fc0.weight"], ref.snapshots[6]["body.fc0.weight"])


@pytest.mark.parametrize(
    "data",
    [
        DataSpec(name="digits"),
        DataSpec(name="digits", val_fraction=0.25),
        DataSpec(name="digits", train_size=300),
        DataSpec(name="digits", val_fraction=0.0, split_seed=3),
    ],
)
def test_train_set_size_matches_what_load_yields(data):
    from analysis.train import planned_steps, train_set_size

    n = len(load(data).train_x)
    assert train_set_size(data) == n
    assert planned_steps(n, SPEC.train) == max(1, n // 64) * SPEC.train.epochs
