"""The BatchNorm rule on landscapes: weights that are not a trained network's own get their
statistics recomputed on a fixed training subset at every grid point (as on connectivity paths).

Claims checked: the models plane at B's own coordinates gives B's loss with reset statistics
(not B's weights under A's statistics); the fast first-layer engine gives the plain loop's
values with the reset, whether the reset samples are the evaluated ones or not, in fp32 and
(within bf16's error) in bf16; a BatchNorm network cannot be evaluated without reset samples.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from functools import cache

import numpy as np
import pytest
import torch
from torch import nn

from analysis.batchnorm import reset_bn_stats
from analysis.data import load
from analysis.landscape import (
    PlaneSpec,
    SurfaceProblem,
    compute_grid,
    eval_batch,
    grid_axis,
    plane_problem,
    surface_directions,
    trainable,
)
from analysis.models import build_for
from analysis.specs import DataSpec, ModelSpec, RunSpec
from analysis.train import evaluate

DIGITS = DataSpec(name="digits", train_size=200)
VGG = ModelSpec(arch="vgg", width_mult=0.125)
SUBSET = 120


@cache
def vgg(seed: int) -> nn.Module:
    """A tiny BatchNorm VGG after 12 SGD steps on digits (eval mode). Do not mutate."""
    data = load(DIGITS)
    torch.manual_seed(seed)
    net = build_for(VGG, data.info).train()
    opt = torch.optim.SGD(net.parameters(), lr=0.05, momentum=0.9)
    gen = torch.Generator().manual_seed(seed)
    for _ in range(12):  # a bare loop: fit() would also evaluate every split
        idx = torch.randint(0, len(data.train_y), (32,), generator=gen)
        loss = nn.functional.cross_entropy(net(data.train_x[idx]), data.train_y[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
    return net.eval()


@dataclass
class FakeRun:
    """What ``plane_problem`` reads from a trained run."""

    net: nn.Module

    def model(self) -> nn.Module:
        return copy.deepcopy(self.net)

    @property
    def state(self) -> dict[str, torch.Tensor]:
        return self.net.state_dict()


def reset_loss(net: nn.Module, split: str) -> float:
    """The network's loss on the plane's samples after a statistics reset on the training subset."""
    x, y = eval_batch(DIGITS, split, SUBSET, 0)
    train_x, _ = eval_batch(DIGITS, "train", SUBSET, 0)
    net = copy.deepcopy(net)
    reset_bn_stats(net, train_x)
    return evaluate(net, x, y)[0]


@pytest.mark.parametrize("split", ["train", "test"])
def test_models_plane_at_b_is_b_with_its_statistics_reset(split):
    run = RunSpec(data=DIGITS, model=VGG)
    spec = PlaneSpec(runs=(run, run.replace(seed=1)), plane="models", align=True, grid=3,
                     subset=SUBSET, split=split)  # fmt: skip
    prob, _, _, coords, _ = plane_problem(spec, [FakeRun(vgg(0)), FakeRun(vgg(1))])
    assert prob.bn == "reset"
    x, y = eval_batch(DIGITS, split, SUBSET, 0)
    want = reset_loss(vgg(1), split)
    # B = A + 1 * (B - A), the difference taken in float64 and rounded to float32: 1e-4
    got_b, _ = prob.evaluate(tuple(coords[1]))
    assert got_b == pytest.approx(want, rel=1e-4)
    # C is B permuted: the same function, so the same loss once its statistics are its own
    got_c, _ = prob.evaluate(tuple(coords[2]))
    assert got_c == pytest.approx(want, rel=1e-3)
    assert prob.evaluate((0.0, 0.0))[0] == pytest.approx(reset_loss(vgg(0), split), rel=1e-4)
    # what the plane showed before: B's weights under A's running statistics
    a_stats = copy.deepcopy(vgg(0))
    a_stats.load_state_dict({**vgg(0).state_dict(), **trainable(vgg(1))})
    assert abs(evaluate(a_stats, x, y)[0] - want) > 0.01 * want


def bn_problem(bn_x: str, include_bias_bn: bool = True) -> SurfaceProblem:
    """A 2-D problem around the tiny VGG; reset on the evaluated samples or on other ones."""
    model = vgg(0)
    x, y = eval_batch(DIGITS, "test", SUBSET, 0)
    reset = x if bn_x == "same" else eval_batch(DIGITS, "train", SUBSET, 0)[0]
    dirs = surface_directions(model, None, dims=2, seed=0, include_bias_bn=include_bias_bn)
    return SurfaceProblem(model=model, centre=trainable(model), dirs=dirs, x=x, y=y, bn_x=reset)


@pytest.mark.parametrize("bn_x", ["same", "other"])
def test_first_layer_engine_resets_statistics_like_the_plain_loop(bn_x):
    prob = bn_problem(bn_x)
    xs = grid_axis(3, 0.6)
    plain = compute_grid(prob, xs, xs, engine="plain")
    fast = compute_grid(prob, xs, xs, engine="linear")
    np.testing.assert_allclose(fast["loss"], plain["loss"], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(fast["acc"], plain["acc"], atol=1.5 / SUBSET)
    low = compute_grid(prob, xs, xs, precision="bf16")
    np.testing.assert_allclose(low["loss"], plain["loss"], rtol=0.03)


def test_a_batchnorm_network_needs_reset_samples():
    model = vgg(0)
    x, y = eval_batch(DIGITS, "test", SUBSET, 0)
    dirs = surface_directions(model, None, dims=1, seed=0)
    with pytest.raises(ValueError, match="bn_x"):
        SurfaceProblem(model=model, centre=trainable(model), dirs=dirs, x=x, y=y)
