"""BatchNorm statistics: one rule for evaluating weights that are not a trained network's own.

Interpolated, permuted, perturbed or projected weights (connectivity paths,
landscape planes and grids, trajectory snapshots) carry running statistics that
do not belong to them. prunescope's rule, as in Jordan et al. 2022 (REPAIR) and
Izmailov et al. 2018 (SWA): recompute every BatchNorm's statistics on a fixed
training subset before evaluating (:func:`reset_bn_stats`). Networks without
BatchNorm are evaluated as they are. REPAIR (``analysis.connectivity.repair``)
renormalises every pre-activation after this rule, with or without BatchNorm.
:func:`bn_rule` picks the rule, :func:`apply_bn_rule` applies it before an
evaluation, :func:`bn_rule_record` is what a result stores about it. Everything
runs where the model and the samples are (the caller's device).
"""

from __future__ import annotations

from typing import Any, Literal

import torch
from torch import nn

from analysis.device import float64_device

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

    x: (N, C, H, W); a conv BN's output (N, C, H, W) counts as N*H*W samples. The
    sums are float64 on the model's device (the CPU for MPS, which has no float64);
    the statistics returned are float32 on x's device.
    """
    sums: dict[str, dict[str, Any]] = {}

    def hook(name: str):
        """A forward hook accumulating the per-channel sums of BatchNorm ``name``'s output."""

        def record(_module, _inputs, out):
            """Add ``out`` (N, C, ...) as N * ... samples of C channels."""
            o = out.movedim(1, -1).reshape(-1, out.shape[1])
            o = o.to(float64_device(o.device), torch.float64)
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
        out[name] = (mean.to(x.device, torch.float32), std.to(x.device, torch.float32))
    return out


# ---------------------------------------------------------------------------
# the rule, applied and recorded

#: What is done before weights that are not a network's own are evaluated: nothing
#: (networks without BatchNorm only), a BatchNorm statistics reset, or REPAIR (after
#: the reset where there is BatchNorm; applied by ``analysis.connectivity.repair``).
BNRule = Literal["none", "reset", "repair"]

_RULE_TEXT = {
    "none": "no BatchNorm: evaluated as they are",
    "reset": "BatchNorm statistics recomputed on the {n}-sample train subset before every "
    "evaluation (Jordan et al. 2022; Izmailov et al. 2018)",
    "repair": "REPAIR: every ReLU's input (each hidden unit's pre-activation, residual "
    "junctions included) renormalised to the interpolated endpoint statistics on the "
    "{n}-sample train subset, after a BatchNorm statistics reset where there is BatchNorm "
    "(Jordan et al. 2022)",
}


def bn_rule(model: nn.Module, *, repair: bool = False) -> BNRule:
    """The rule for ``model``: 'repair' if asked, else 'reset' with BatchNorm, else 'none'."""
    if repair:
        return "repair"
    return "reset" if has_batchnorm(model) else "none"


def base_rule(model: nn.Module) -> BNRule:
    """The rule applied before REPAIR (and without it): 'reset' with BatchNorm, else 'none'."""
    return bn_rule(model)


def bn_rule_record(rule: BNRule, samples: int) -> dict[str, Any]:
    """The rule as stored with a result: rule, samples, batch size and a one-line description."""
    return {
        "rule": rule,
        "samples": samples,
        "batch": BN_BATCH,
        "description": _RULE_TEXT[rule].format(n=samples),
    }


def apply_bn_rule(model: nn.Module, rule: BNRule, x: torch.Tensor) -> None:
    """Ready the loaded weights of ``model`` for evaluation by ``rule``; leaves eval mode.

    x: (N, C, H, W) training subset for the statistics. Raises ValueError for
    'none' on a BatchNorm network (its running statistics do not belong to these
    weights) and for 'repair', which needs the endpoints' statistics: apply
    :func:`base_rule` here, then ``analysis.connectivity.repair``.
    """
    if rule == "none":
        if has_batchnorm(model):
            raise ValueError("a BatchNorm network needs the 'reset' or 'repair' rule, not 'none'")
        model.eval()
    elif rule == "reset":
        reset_bn_stats(model, x)
    elif rule == "repair":
        raise ValueError(
            "REPAIR needs the endpoints' statistics: apply base_rule, then "
            "analysis.connectivity.repair"
        )
    else:
        raise ValueError(f"unknown BatchNorm rule {rule!r}; one of 'none', 'reset', 'repair'")
