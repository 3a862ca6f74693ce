"""BatchNorm statistics: one rule for evaluating weights that are not a trained network's own.

Interpolated, permuted, perturbed or projected weights (connectivity paths,
landscape planes and grids, trajectory snapshots) carry running statistics that
do not belong to them. prunescope's rule, as in Jordan et al. 2022 (REPAIR) and
Izmailov et al. 2018 (SWA): recompute every BatchNorm's statistics on a fixed
training subset before evaluating (:func:`reset_bn_stats`), or renormalise with
REPAIR (:func:`repair_bn`). Networks without BatchNorm are evaluated as they are.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

#: Batch size of BatchNorm resets and statistics passes.
BN_BATCH = 500


def batchnorms(model: nn.Module) -> dict[str, nn.modules.batchnorm._BatchNorm]:
    """The model's BatchNorm modules by name, in forward (registration) order."""
    return {
        n: m for n, m in model.named_modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)
    }


def has_batchnorm(model: nn.Module) -> bool:
    """Whether ``model`` has any BatchNorm layer."""
    return bool(batchnorms(model))


@torch.no_grad()
def reset_bn_stats(model: nn.Module, x: torch.Tensor, batch: int = BN_BATCH) -> None:
    """Recompute every BatchNorm's running statistics on ``x`` (N, C, H, W); leaves eval mode.

    As in Jordan et al. 2022 (REPAIR) and SWA (Izmailov et al. 2018): momentum
    None (a cumulative average over the batches), statistics reset, forward
    passes in train mode over near-equal batches. Weights are not changed.
    """
    bns = list(batchnorms(model).values())
    if not bns:
        model.eval()
        return
    momenta = [m.momentum for m in bns]
    for m in bns:
        m.momentum = None
        m.reset_running_stats()
    model.train()
    for xb in torch.tensor_split(x, max(1, -(-len(x) // batch))):
        model(xb)
    model.eval()
    for m, momentum in zip(bns, momenta, strict=True):
        m.momentum = momentum


@torch.no_grad()
def bn_output_stats(
    model: nn.Module, x: torch.Tensor, batch: int = BN_BATCH
) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """Per BatchNorm, the (mean, std) of each channel of its output (eval mode), each (C,).

    x: (N, C, H, W); a conv BN's output (N, C, H, W) counts as N*H*W samples.
    """
    sums: dict[str, dict[str, Any]] = {}

    def hook(name: str):
        def record(_module, _inputs, out):
            o = out.movedim(1, -1).reshape(-1, out.shape[1]).double()
            s = sums.setdefault(name, {"sum": 0.0, "sq": 0.0, "n": 0})
            s["sum"] = s["sum"] + o.sum(0)
            s["sq"] = s["sq"] + (o * o).sum(0)
            s["n"] += len(o)

        return record

    model.eval()
    handles = [m.register_forward_hook(hook(n)) for n, m in batchnorms(model).items()]
    try:
        for xb in x.split(batch):
            model(xb)
    finally:
        for h in handles:
            h.remove()
    out = {}
    for name, s in sums.items():
        mean = s["sum"] / s["n"]
        std = (s["sq"] / s["n"] - mean**2).clamp(min=0).sqrt()
        out[name] = (mean.float(), std.float())
    return out


@torch.no_grad()
def repair_bn(
    model: nn.Module,
    stats_a: dict[str, tuple[torch.Tensor, torch.Tensor]],
    stats_b: dict[str, tuple[torch.Tensor, torch.Tensor]],
    alpha: float,
    x: torch.Tensor,
    batch: int = BN_BATCH,
) -> None:
    """REPAIR (Jordan et al. 2022) of an interpolated BatchNorm network, in place.

    Each BN output channel is renormalised to the goal statistics
    ``(1 - alpha) * stats_A + alpha * stats_B`` (:func:`bn_output_stats` of the
    endpoints): REPAIR's renormalising layer after the BN, folded into it
    (``weight = sign(weight) * goal_std``, ``bias = goal_mean``), then the BN
    statistics are reset on ``x`` so each channel is normalised exactly.
    """
    for name, bn in batchnorms(model).items():
        if bn.weight is None:  # no affine parameters to fold the renormalisation into
            raise ValueError(f"REPAIR needs affine BatchNorm layers; {name!r} has none")
        mean_a, std_a = stats_a[name]
        mean_b, std_b = stats_b[name]
        goal_mean = (1.0 - alpha) * mean_a + alpha * mean_b
        goal_std = (1.0 - alpha) * std_a + alpha * std_b
        bn.weight.copy_(torch.sign(bn.weight) * goal_std)
        bn.bias.copy_(goal_mean)
    reset_bn_stats(model, x, batch)
