"""Training on ``ctx.device``: every method on every device, results back on the CPU.

Each device's run is compared with the CPU's. Tolerance: the same spec trained
on another device ends within 3 points of test accuracy and 0.05 of test loss
of the CPU run (the same experiment: one initialisation, data order and set of
augmentation draws, all from CPU generators; only the floating-point reduction
order differs). On the CPU the runs are bit-identical.
"""

from __future__ import annotations

import shutil

import pytest
import torch

from analysis import api
from analysis import device as devices
from analysis.data import load
from analysis.feed import Batches, place
from analysis.models import build_for
from analysis.sparsity import methods, sparsity_spec
from analysis.specs import DataSpec, ModelSpec, RunSpec, TrainSpec
from analysis.store import Store
from analysis.train import Snapshots, evaluate, fit
from analysis.train_step import GUARD_EVERY, CompileError, Tally, wants_channels_last
from analysis.training_types import TrainState

DATA = DataSpec(name="digits", train_size=300)
TRAIN = TrainSpec(epochs=2, batch_size=50, augment=True)
SPARSITY = {"dense": 0.0, "l1-structured": 0.25}


def _spec(method: str, arch: str = "mlp") -> RunSpec:
    model = ModelSpec(arch=arch, width=32, depth=2, width_mult=0.25)
    options = {
        "magnitude": {"finetune_epochs": 1},
        "l1-structured": {"finetune_epochs": 1},
        "lottery": {"rounds": 1, "rewind_step": 2},
    }.get(method, {})
    sparsity = sparsity_spec(method, SPARSITY.get(method, 0.5), options)
    return RunSpec(data=DATA, model=model, train=TRAIN, sparsity=sparsity)


@pytest.fixture(scope="module")
def cpu_store(tmp_path_factory) -> Store:
    """The CPU reference runs, computed once for the module."""
    return Store(tmp_path_factory.mktemp("cpu-ref"))


@pytest.fixture
def device_store(device, tmp_path, cpu_store) -> Store:
    """The CPU's own store on the CPU (its runs are the reference), a fresh one elsewhere."""
    return cpu_store if device.type == "cpu" else Store(tmp_path / "cache")


@pytest.mark.parametrize("method", sorted(methods()))
def test_every_method_trains_on_each_device_like_on_the_cpu(
    method, device, device_store, cpu_store
):
    spec = _spec(method)
    run = api.get(spec, store=device_store, device=device)
    ref = api.get(spec, store=cpu_store, device=torch.device("cpu"))
    assert run.entry.meta["device"]["device"] == str(device)
    assert abs(run.metrics["test_acc"] - ref.metrics["test_acc"]) <= 0.03
    assert abs(run.metrics["test_loss"] - ref.metrics["test_loss"]) <= 0.05
    for name, mask in run.masks.items():  # masks hold: pruned weights exactly zero
        assert mask.device.type == "cpu" and mask.dtype == torch.bool
        assert torch.all(run.state[name][~mask] == 0), name
    for state in (run.state, run.init_state, *run.trajectory.values()):
        assert all(t.device.type == "cpu" for t in state.values())


def test_a_conv_net_trains_on_each_device_like_on_the_cpu(device, device_store, cpu_store):
    """LeNet: on CUDA in channels_last; stored weights come back contiguous."""
    spec = _spec("gmp", arch="lenet")
    run = api.get(spec, store=device_store, device=device)
    ref = api.get(spec, store=cpu_store, device=torch.device("cpu"))
    assert abs(run.metrics["test_acc"] - ref.metrics["test_acc"]) <= 0.03
    assert abs(run.metrics["test_loss"] - ref.metrics["test_loss"]) <= 0.05
    assert all(t.is_contiguous() for t in run.state.values())
    for name, mask in run.masks.items():
        assert torch.all(run.state[name][~mask] == 0), name


def test_fit_reads_cpu_data_and_cpu_masks_for_a_model_on_the_device(device):
    data = load(DATA)
    torch.manual_seed(0)
    model = build_for(ModelSpec(width=32, depth=2), data.info).to(device)
    weight = dict(model.named_parameters())["body.fc0.weight"]
    masks = {"body.fc0.weight": torch.rand(weight.shape, generator=torch.Generator()) < 0.5}
    out = fit(model, data, TRAIN, seed=0, masks=masks, callbacks=[Snapshots((3,))])
    assert torch.all(weight.detach()[~masks["body.fc0.weight"].to(device)] == 0)
    assert set(out.snapshots) == {0, 3, 6, 12}
    assert all(t.device.type == "cpu" for s in out.snapshots.values() for t in s.values())
    loss, acc = evaluate(model, data.test_x, data.test_y)  # CPU tensors, model on the device
    assert 0.0 <= acc <= 1.0 and loss > 0


def test_placing_data_on_the_cpu_moves_nothing():
    data = load(DATA)
    assert place(data, torch.device("cpu")) is data
    assert data.to(torch.device("cpu")) is data
    assert data.nbytes() == sum(t.numel() * t.element_size() for t in data.tensors().values())
    batches = Batches(data, torch.device("cpu"))
    x, y = batches.take(batches.order(torch.tensor([3, 1, 2])))
    assert torch.equal(x, data.train_x[[3, 1, 2]]) and torch.equal(y, data.train_y[[3, 1, 2]])


def test_placing_data_on_a_gpu_puts_it_there_when_it_fits(device):
    if device.type == "cpu":
        pytest.skip("a GPU test")
    data = place(load(DATA), device)  # 2 MB: fits
    assert all(t.device.type == device.type for t in data.tensors().values())


def test_the_accelerator_tally_reads_the_loss_every_n_steps_and_misses_no_nan():
    """An accelerator's sums stay on the device; this runs their logic with CPU tensors."""
    model = torch.nn.Linear(2, 2)
    state = TrainState(model, torch.optim.SGD(model.parameters(), lr=0.1), 100, 100)
    tally = Tally(torch.device("cuda"))  # only the device type is read
    for _ in range(1, GUARD_EVERY):
        tally.add(torch.tensor(2.0), torch.tensor(3), 10, state)
    assert state.loss == 0.0  # not read yet: no host sync per step
    tally.add(torch.tensor(4.0), torch.tensor(3), 10, state)
    assert state.loss == pytest.approx((2.0 * (GUARD_EVERY - 1) + 4.0) / GUARD_EVERY)
    tally.add(torch.tensor(float("nan")), 0, 10, state)
    tally.add(torch.tensor(1.0), 0, 10, state)
    tally.flush(state)  # at the epoch's end: the nan two steps back is seen
    assert state.loss != state.loss
    loss_sum, correct, seen = tally.sums()
    assert correct == 3 * GUARD_EVERY and seen == 10 * (GUARD_EVERY + 2)


def test_channels_last_is_for_conv_nets_on_cuda_only():
    info = load(DATA).info
    lenet = build_for(ModelSpec(arch="lenet"), info)
    mlp = build_for(ModelSpec(arch="mlp", width=8, depth=1), info)
    assert wants_channels_last(lenet, torch.device("cuda"))
    assert not wants_channels_last(lenet, torch.device("cpu"))
    assert not wants_channels_last(lenet, torch.device("mps"))
    assert not wants_channels_last(mlp, torch.device("cuda"))


@pytest.fixture
def compile_on():
    """The compile execution option on for one test (call it to turn it on)."""
    yield lambda: devices.set_compile(True)
    devices.set_compile(False)


def test_compile_is_off_by_default_and_changes_nothing(store):
    assert not devices.compiling()
    spec = _spec("dense")
    run = api.get(spec, store=store)
    assert "compile_seconds" not in run.metrics
    data = load(DATA)
    torch.manual_seed(0)
    model = build_for(spec.model, data.info)
    assert fit(model, data, TRAIN, seed=0).compile_seconds is None


def test_a_failing_compile_is_one_clear_error(compile_on, monkeypatch):
    def broken(fn, *args, **kwargs):
        def call(*a, **k):
            raise RuntimeError("no C compiler\nlong traceback")

        return call

    monkeypatch.setattr(torch, "compile", broken)
    compile_on()
    data = load(DATA)
    model = build_for(ModelSpec(width=16, depth=1), data.info)
    with pytest.raises(CompileError, match=r"torch.compile failed \(RuntimeError: no C compiler\)"):
        fit(model, data, TRAIN, seed=0)


@pytest.mark.slow
@pytest.mark.skipif(not shutil.which("cc"), reason="torch.compile on the CPU needs a C compiler")
def test_compile_trains_the_same_run_and_reports_its_compile_time(compile_on, store, cpu_store):
    """About a minute on a CPU: inductor compiles the forward and backward graphs."""
    spec = _spec("dense")
    ref = api.get(spec, store=cpu_store, device=torch.device("cpu"))
    compile_on()
    run = api.get(spec, store=store)
    assert run.metrics["compile_seconds"] > 0
    assert abs(run.metrics["test_acc"] - ref.metrics["test_acc"]) <= 0.03
    assert abs(run.metrics["test_loss"] - ref.metrics["test_loss"]) <= 0.05
