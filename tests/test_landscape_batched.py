"""The batched landscape engine gives the pointwise engine's surface, and is chosen by measurement.

Claims checked: a chunk of points evaluated at once (``torch.vmap`` over the
points) gives the pointwise linear engine's loss and accuracy to float rounding,
for every architecture (BatchNorm statistics recomputed per point, on the
evaluated samples or on others), with masks and with moving BatchNorm
parameters, on lines and planes, in fp32 and bf16, however the points are
chunked; on every available device it gives the CPU's surface; ``auto`` keeps
the pointwise engine on the CPU and records why, and elsewhere times both.
"""

from __future__ import annotations

import copy
from functools import cache

import numpy as np
import pytest
import torch
from torch import nn

from analysis.batchnorm import has_batchnorm
from analysis.data import load
from analysis.landscape import (
    SurfaceProblem,
    compute_grid,
    grid_axis,
    surface_directions,
    trainable,
)
from analysis.landscape import batched as batched_module
from analysis.landscape.batched import batched_engine, calibrate, choose_engine
from analysis.models import build_for
from analysis.specs import DataSpec, ModelSpec, TrainSpec
from analysis.train import fit

DIGITS = DataSpec(name="digits", train_size=200)
SMALL = {
    "mlp": ModelSpec(arch="mlp", width=32, depth=2),
    "lenet": ModelSpec(arch="lenet"),
    "vgg": ModelSpec(arch="vgg", width_mult=0.25),
    "resnet20": ModelSpec(arch="resnet20", width_mult=0.25),
}
N = 120
#: Loss: both engines sum the same fp32 terms in other orders (bmm against mm).
RTOL = 2e-5
#: Accuracy: an argmax may flip on a near-tie.
ACC_ATOL = 1.5 / N


@cache
def trained(arch: str) -> nn.Module:
    """A tiny network after 8 Adam steps on digits (eval mode). Do not mutate."""
    data = load(DIGITS)
    torch.manual_seed(0)
    net = build_for(SMALL[arch], data.info)
    fit(net, data, TrainSpec(epochs=1, batch_size=32), seed=0, max_steps=8)
    return net.eval()


def problem(arch: str, dims: int = 2, *, bn: str = "same", masks=None, **kw) -> SurfaceProblem:
    """A surface problem around the tiny ``arch``; BatchNorm reset on x ('same') or other samples."""
    model = trained(arch)
    data = load(DIGITS)
    x, y = data.test_x[:N], data.test_y[:N]
    bn_x = None
    if has_batchnorm(model):
        bn_x = x if bn == "same" else data.train_x[:N]
    dirs = surface_directions(model, masks, dims=dims, seed=3, **kw)
    return SurfaceProblem(model=model, centre=trainable(model), dirs=dirs, x=x, y=y, bn_x=bn_x)


def points(dims: int) -> np.ndarray:
    """A few points (P, dims) spread over [-1, 1]^dims, the centre included."""
    a = np.array([-1.0, -0.35, 0.0, 0.6, 1.0])
    if dims == 1:
        return a[:, None]
    return np.array([[p, q] for p in a[1:] for q in (-0.8, 0.0)])


def pointwise(prob: SurfaceProblem, pts: np.ndarray, precision: str = "fp32") -> np.ndarray:
    """(P, 2) loss and accuracy by the pointwise linear engine."""
    return np.array([prob.evaluate(tuple(map(float, p)), precision=precision) for p in pts])


def check_close(got: tuple[np.ndarray, np.ndarray], want: np.ndarray, rtol: float = RTOL) -> None:
    """The batched (loss, acc) against the pointwise (P, 2)."""
    np.testing.assert_allclose(got[0], want[:, 0], rtol=rtol, atol=1e-6)
    np.testing.assert_allclose(got[1], want[:, 1], atol=ACC_ATOL)


@pytest.mark.parametrize("arch", list(SMALL))
@pytest.mark.parametrize("dims", [1, 2])
def test_batched_equals_pointwise_on_every_architecture(arch, dims):
    prob = problem(arch, dims)
    pts = points(dims)
    check_close(batched_engine(prob, "fp32").evaluate(pts), pointwise(prob, pts))


@pytest.mark.parametrize("arch", ["vgg", "resnet20"])
def test_batchnorm_reset_on_other_samples_and_moving_bn_parameters(arch):
    prob = problem(arch, bn="other", include_bias_bn=True)
    assert prob.bn == "reset" and prob.bn_x is not prob.x
    assert any(0 in prob.moving[n] for n in prob.rest if n.endswith(".bias"))
    pts = points(2)
    check_close(batched_engine(prob, "fp32").evaluate(pts), pointwise(prob, pts))


@pytest.mark.parametrize("arch", ["mlp", "vgg"])
def test_masked_directions_keep_the_surface_and_its_sparsity(arch):
    model = trained(arch)
    gen = torch.Generator().manual_seed(1)
    params = dict(model.named_parameters())
    masks = {n: torch.rand(params[n].shape, generator=gen) < 0.4 for n in model.prunable_names()}
    sparse = copy.deepcopy(model)
    with torch.no_grad():
        for n, p in sparse.named_parameters():
            if n in masks:
                p.mul_(masks[n])
    near = problem(arch)  # the same samples
    dirs = surface_directions(sparse, masks, dims=2, seed=3)
    prob = SurfaceProblem(model=sparse, centre=trainable(sparse), dirs=dirs, x=near.x, y=near.y,
                          bn_x=near.bn_x)  # fmt: skip
    engine = batched_engine(prob, "fp32")
    point = engine._params(torch.tensor([0.7, -0.4]))
    for n in masks:
        if n in point:
            assert (point[n][~masks[n]] == 0).all()
    pts = points(2)
    check_close(engine.evaluate(pts), pointwise(prob, pts))


@pytest.mark.parametrize("arch", ["mlp"])  # (bf16 convolutions are slow on CPUs without bf16)
def test_bf16_batched_is_within_bf16_error_of_the_pointwise_bf16(arch):
    prob = problem(arch)
    pts = points(2)
    ref = pointwise(prob, pts)
    low = batched_engine(prob, "bf16").evaluate(pts)
    assert np.max(np.abs(low[0] - ref[:, 0]) / ref[:, 0]) < 0.02  # bf16 keeps 8 bits
    check_close(low, pointwise(prob, pts, "bf16"), rtol=0.02)


def test_the_chunking_does_not_change_the_surface(monkeypatch):
    prob = problem("vgg", bn="other")
    pts = points(2)
    whole = batched_engine(prob, "fp32").evaluate(pts)
    monkeypatch.setattr(batched_module, "MAX_CHUNK", 3)
    assert batched_module.chunk_size(prob, torch.float32) == 3
    chunked = batched_engine(prob, "fp32").evaluate(pts)  # 8 points: chunks of 3, 3, 2
    np.testing.assert_allclose(chunked[0], whole[0], rtol=1e-6)
    np.testing.assert_array_equal(chunked[1], whole[1])


@pytest.mark.parametrize("dims", [1, 2])
def test_a_grid_by_the_batched_engine_is_the_pointwise_grid(dims):
    prob = problem("resnet20", dims)
    xs = grid_axis(5, 0.8)
    ys = xs if dims == 2 else None
    fast = compute_grid(prob, xs, ys, engine="batched")
    ref = compute_grid(prob, xs, ys, engine="linear")
    np.testing.assert_allclose(fast["loss"], ref["loss"], rtol=RTOL, atol=1e-6)
    np.testing.assert_allclose(fast["acc"], ref["acc"], atol=ACC_ATOL)
    assert fast["engine"]["name"] == "batched" and ref["engine"]["name"] == "pointwise"


def test_auto_keeps_the_pointwise_engine_on_the_cpu_and_says_why():
    prob = problem("mlp")
    xs = grid_axis(3, 0.5)
    grid = compute_grid(prob, xs, xs)
    record = grid["engine"]
    assert record["name"] == "pointwise" and record["device"] == "cpu"
    assert record["points_per_second"] is None and "CPU" in record["reason"]
    with pytest.raises(ValueError, match="engine must be one of"):
        choose_engine(prob, points(2), "fp32", "fast")


def test_calibration_times_both_engines_and_auto_off_the_cpu_keeps_the_faster(monkeypatch):
    prob = problem("mlp")
    rates = calibrate(prob, points(2), "fp32")
    assert set(rates) == {"pointwise", "batched"} and min(rates.values()) > 0
    # off the CPU, auto measures: the measured faster engine is the one chosen
    monkeypatch.setattr(batched_module, "calibrate", lambda *a: {"pointwise": 5.0, "batched": 9.0})
    prob.device = torch.device("meta")  # only read by choose_engine here: not a CPU
    choice = choose_engine(prob, points(2), "fp32")
    assert choice.name == "batched" and choice.rates == {"pointwise": 5.0, "batched": 9.0}
    assert choice.record()["points_per_second"]["batched"] == 9.0


@pytest.mark.parametrize("arch", ["mlp", "vgg"])
def test_on_every_device_both_engines_give_the_cpu_surface(device, arch):
    """Tolerance: fp32 kernels of another device round differently (rtol 1e-4 on the loss)."""
    pts = points(2)
    ref = pointwise(problem(arch), pts)
    prob = problem(arch)
    prob = SurfaceProblem(model=trained(arch), centre=prob.centre, dirs=prob.dirs, x=prob.x,
                          y=prob.y, bn_x=prob.x if prob.bn_x is not None else None,
                          device=device)  # fmt: skip
    assert prob.x.device.type == device.type
    check_close(batched_engine(prob, "fp32").evaluate(pts), ref, rtol=1e-4)
    here = pointwise(prob, pts)
    check_close((here[:, 0], here[:, 1]), ref, rtol=1e-4)


def test_batched_rows_go_in_chunks_but_are_saved_and_resumed_one_by_one(tmp_path, monkeypatch):
    monkeypatch.setattr(batched_module, "MAX_CHUNK", 10)  # two rows of 5 points per call
    prob = problem("mlp")
    xs = grid_axis(5, 0.8)
    calls: list[int] = []

    def stop_at_three(i, n):
        calls.append(i)
        if i == 3:
            raise RuntimeError("stop")

    with pytest.raises(RuntimeError, match="stop"):
        compute_grid(prob, xs, xs, engine="batched", partial=tmp_path, on_row=stop_at_three)
    assert calls == [1, 2, 3]  # rows 0-1 in one call, row 2 in the next (row 3 with it)
    saved = sorted(p.name for p in tmp_path.glob("row_*.npz"))
    assert saved == ["row_00000.npz", "row_00001.npz", "row_00002.npz"]
    resumed = compute_grid(prob, xs, xs, engine="batched", partial=tmp_path)
    assert resumed["evaluated_rows"].tolist() == [3, 4]
    whole = compute_grid(prob, xs, xs, engine="linear")
    np.testing.assert_allclose(resumed["loss"], whole["loss"], rtol=RTOL, atol=1e-6)
