"""``synflow``: data-free iterative pruning at initialisation by synaptic flow.

Tanaka et al. 2020 ("Pruning neural networks without any data by iteratively
conserving synaptic flow"): with every parameter replaced by its absolute value,
``R = 1^T (prod |W_l|) 1`` is computed by a forward pass of an all-ones input;
the score of a weight is ``|dR/dw * w|``. Pruning is iterated ``iterations``
times along the exponential schedule ``s_k = 1 - (1 - s)^(k/n)``, re-scoring
with the current mask each time (the paper uses 100 iterations). As in the
authors' code, scoring runs in float64 (the product of many layers overflows
float32) with BatchNorm in eval mode.
"""

from __future__ import annotations

import copy

import torch
from torch import nn

from analysis.sparsity.at_init import prunable_params, prune_at_init_and_train
from analysis.sparsity.base import (
    Masks,
    Method,
    Param,
    kept_dense,
    masks_from_scores,
    require_positive,
)
from analysis.training_types import MethodOutput, RunContext, device_of


def synflow_masks(
    model: nn.Module,
    sparsity: float,
    iterations: int,
    input_shape: tuple[int, ...],
    keep: set[str] | frozenset[str] = frozenset(),
) -> Masks:
    """Iterative SynFlow masks for ``model`` at ``sparsity``. input_shape: (C, H, W).

    ``keep`` weights stay dense (left out of the ranking: the ``keep_dense`` option).

    Scores are taken in float64 on the model's device (on the CPU for MPS, which
    has no float64); the masks come back on the model's device.
    """
    device = device_of(model)
    work = torch.device("cpu") if device.type == "mps" else device
    net = copy.deepcopy(model).to(work).double().eval()
    with torch.no_grad():
        for p in net.parameters():
            p.abs_()
    params = prunable_params(net)
    originals = {n: p.detach().clone() for n, p in params.items()}
    masks: Masks | None = None
    ones = torch.ones((1, *input_shape), dtype=torch.float64, device=work)
    for k in range(1, iterations + 1):
        target = 1.0 - (1.0 - sparsity) ** (k / iterations)
        with torch.no_grad():
            for n, p in params.items():
                p.copy_(originals[n] if masks is None else originals[n] * masks[n])
        net.zero_grad(set_to_none=True)
        net(ones).sum().backward()
        scores = {n: (p.grad * p).detach().abs() for n, p in params.items()}
        masks = masks_from_scores(scores, target, scope="global", current=masks, keep=keep)
    return {n: m.to(device) for n, m in masks.items()}


class SynFlow(Method):
    """Iterative synaptic flow pruning at init (data-free)."""

    name = "synflow"
    params = (
        Param("iterations", int, 100, "pruning iterations (exponential schedule)", lo=1, hi=10000),
    )

    def check_sparsity(self, sparsity: float) -> None:
        """Needs a sparsity above 0."""
        require_positive(self.name, sparsity)

    def run(self, ctx: RunContext) -> MethodOutput:
        """Mask by iterated synaptic flow, then train from init."""
        s = ctx.spec.sparsity
        shape = tuple(ctx.data.train_x.shape[1:])

        def score(model: nn.Module, _ctx: RunContext) -> dict[str, torch.Tensor]:
            keep = kept_dense(s, model.prunable_names())
            masks = synflow_masks(model, s.sparsity, s.opt("iterations"), shape, keep)
            return {n: m.float() for n, m in masks.items()}

        return prune_at_init_and_train(ctx, score)
