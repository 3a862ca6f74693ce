"""REPAIR for every network (Jordan et al. 2022), and the variance collapse it repairs.

Claims checked: after REPAIR every hidden unit's pre-activation (every ReLU's
input, residual junctions included) has the interpolated endpoint statistics;
at alpha 0 REPAIR leaves the endpoint's function as it was; without REPAIR the
midpoint's activations collapse (std ratio below 1), after it the ratio is 1;
the connectivity kind applies REPAIR to networks without BatchNorm and stores
the variance collapse; it runs on every device with the CPU's numbers.
"""

from __future__ import annotations

from functools import cache

import numpy as np
import pytest
import torch
from torch import nn

from analysis import api
from analysis.api import Context
from analysis.connectivity import (
    ConnectivitySpec,
    activation_stats,
    compute_connectivity,
    mix_weights,
    repair_corrections,
    repair_points,
)
from analysis.connectivity.repair import corrected, endpoint_stats, goal, ready
from analysis.data import load
from analysis.models import build_for
from analysis.specs import DataSpec, ModelSpec, RunSpec, TrainSpec
from analysis.train import fit

DIGITS = DataSpec(name="digits", train_size=200)
SMALL = {
    "mlp": ModelSpec(arch="mlp", width=32, depth=2),
    "lenet": ModelSpec(arch="lenet", width_mult=1.0),
    "vgg": ModelSpec(arch="vgg", width_mult=0.25),
    "resnet20": ModelSpec(arch="resnet20", width_mult=0.25),
}


@cache
def trained(arch: str, seed: int) -> dict[str, torch.Tensor]:
    """The state of a tiny ``arch`` net after 10 Adam steps on digits (do not mutate)."""
    data = load(DIGITS)
    torch.manual_seed(seed)
    net = build_for(SMALL[arch], data.info)
    fit(net, data, TrainSpec(epochs=1, batch_size=32), seed=seed, max_steps=10)
    return {k: v.clone() for k, v in net.state_dict().items()}


def fresh(arch: str) -> nn.Module:
    """An untrained ``arch`` net to load states into."""
    return build_for(SMALL[arch], load(DIGITS).info).eval()


def x_train() -> torch.Tensor:
    """The first 120 training images (N, 1, 8, 8)."""
    return load(DIGITS).train_x[:120]


def test_points_are_every_relu_input_junctions_included() -> None:
    """MLP: one per hidden layer; ResNet-20: the stem, each block's inner and junction ReLU."""
    assert repair_points(fresh("mlp")) == ["body.relu0", "body.relu1"]
    assert repair_points(fresh("lenet")) == ["relu1", "relu2", "relu3", "relu4"]
    res = repair_points(fresh("resnet20"))
    assert len(res) == 1 + 9 * 2 and "layer2.0.relu2" in res and res[0] == "relu"


@pytest.mark.parametrize("arch", list(SMALL))
def test_repair_gives_every_point_its_goal(arch: str) -> None:
    """After REPAIR each pre-activation's mean and std equal the interpolated goals."""
    x = x_train()
    net = fresh(arch)
    a, b = trained(arch, 0), trained(arch, 1)
    ends = endpoint_stats(net, [a, b], x)
    target = goal(ends, 0.3)
    net.load_state_dict(mix_weights(a, b, 0.3))
    ready(net, x)
    fixes = repair_corrections(net, target, x, batch=50)
    assert list(fixes) == repair_points(net)
    pre, _ = activation_stats(net, x, fixes)
    for name, (mean, std) in target.items():
        live = std > 1e-2  # a dead unit (std 0 in the mix) cannot be rescaled
        torch.testing.assert_close(pre[name][0], mean, atol=1e-4, rtol=1e-4)
        torch.testing.assert_close(pre[name][1][live], std[live], atol=1e-4, rtol=1e-3)
    before = {k: v.clone() for k, v in net.state_dict().items()}
    with corrected(net, fixes):
        net(x[:4])
    assert all(torch.equal(v, before[k]) for k, v in net.state_dict().items())  # weights untouched


@pytest.mark.parametrize("arch", ["mlp", "resnet20"])
def test_repair_at_an_endpoint_keeps_its_function(arch: str) -> None:
    """At alpha 0 the goals are A's own statistics: REPAIR changes A's logits by ~nothing."""
    x = x_train()
    net = fresh(arch)
    a, b = trained(arch, 0), trained(arch, 1)
    ends = endpoint_stats(net, [a, b], x)
    net.load_state_dict(a)
    ready(net, x)
    with torch.no_grad():
        plain = net(x)
        with corrected(net, repair_corrections(net, goal(ends, 0.0), x)):
            fixed = net(x)
    torch.testing.assert_close(fixed, plain, atol=1e-3 * float(plain.abs().max()), rtol=1e-3)


def test_a_relu_run_twice_is_refused() -> None:
    """A ReLU module shared by two layers has no single pre-activation: ValueError."""

    class Shared(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.fc1, self.fc2, self.act = nn.Linear(4, 4), nn.Linear(4, 4), nn.ReLU()

        def forward(self, x):
            return self.act(self.fc2(self.act(self.fc1(x))))

    with pytest.raises(ValueError, match="once per pass"):
        activation_stats(Shared(), torch.rand(8, 4))


def run(seed: int, arch: str = "mlp") -> RunSpec:
    """A tiny digits run: an MLP 3 epochs on 400 images, a VGG 1 epoch on 200."""
    if arch == "mlp":
        data, epochs = DataSpec(name="digits", train_size=400), 3
        model = ModelSpec(arch="mlp", width=64, depth=2)
    else:
        data, model, epochs = DIGITS, ModelSpec(arch=arch, width_mult=0.125), 1
    train = TrainSpec(epochs=epochs, batch_size=50, lr=0.01)
    return RunSpec(data=data, model=model, train=train, seed=seed)


def test_repair_pair_of_an_mlp_stores_the_variance_collapse(store) -> None:
    """Without BatchNorm: REPAIR applies, lowers the aligned midpoint loss; ratios < 1 -> 1."""
    docs = {}
    for repair in (False, True):
        spec = ConnectivitySpec(
            run_a=run(0), run_b=run(1), alignment="activation", repair=repair, alphas=5
        )
        docs[repair] = api.get(spec, store=store).read("connectivity.json")
    plain, fixed = docs[False], docs[True]
    assert plain["variance"] is None and fixed["bn"] == fixed["bn_rule"]["rule"] == "repair"
    v = fixed["variance"]
    assert v["alpha"] == 0.5 and v["layers"] == ["body.relu0", "body.relu1"]
    assert all(r < 0.98 for r in v["pre"]["before"]), v
    assert all(abs(r - 1.0) < 1e-3 for r in v["pre"]["after"]), v
    assert all(abs(r - 1.0) < 0.1 for r in v["post"]["after"]), v
    assert fixed["curve"]["train_loss"][2] < plain["curve"]["train_loss"][2]
    # the endpoints are (almost) untouched; the weights, masks and sparsity are
    for k in ("train_loss", "test_loss"):
        for i in (0, -1):
            assert fixed["curve"][k][i] == pytest.approx(plain["curve"][k][i], rel=1e-3)
    assert fixed["curve"]["sparsity"] == plain["curve"]["sparsity"]


@pytest.mark.parametrize("arch", ["mlp", "vgg"])
def test_repair_matches_the_cpu(store, device, arch) -> None:
    """The REPAIR curve and variance collapse on ``device`` agree with the CPU's (1e-3)."""
    spec = ConnectivitySpec(
        run_a=run(0, arch),
        run_b=run(1, arch),
        alignment="weight",
        repair=True,
        alphas=3,
        train_subset=100,
        test_subset=100,
        matching_restarts=1,
    )
    got = compute_connectivity(spec, Context(store=store, device=device))[0]["connectivity.json"]
    want = compute_connectivity(spec, Context(store=store, device=torch.device("cpu")))[0][
        "connectivity.json"
    ]
    np.testing.assert_allclose(got["curve"]["test_loss"], want["curve"]["test_loss"], rtol=1e-3)
    for where in ("pre", "post"):
        for when in ("before", "after"):
            np.testing.assert_allclose(
                got["variance"][where][when], want["variance"][where][when], rtol=1e-3
            )
