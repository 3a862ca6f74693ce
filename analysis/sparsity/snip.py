"""``snip``: single-shot pruning at initialisation by connection sensitivity.

Lee et al. 2019 ("SNIP: Single-shot Network Pruning based on Connection
Sensitivity"): the saliency of weight ``w`` is ``|g * w|`` with ``g = dL/dw`` on
one mini-batch at initialisation (the derivative of the loss with respect to a
multiplicative mask ``c`` at ``c = 1``); the top weights are kept globally and the
network is trained from its initialisation. The paper uses one batch; ``samples``
sets its size (a batch holding every class, as the paper recommends).
"""

from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from torch import nn

from analysis.sparsity.at_init import prunable_params, prune_at_init_and_train
from analysis.sparsity.base import Method, Param, require_positive
from analysis.training_types import MethodOutput, RunContext


def snip_scores(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> dict[str, torch.Tensor]:
    """|dL/dw * w| for every prunable weight. x: (B, C, H, W), y: (B,)."""
    net = copy.deepcopy(
        model
    ).train()  # scoring must not move BatchNorm statistics of the real init
    params = prunable_params(net)
    loss = F.cross_entropy(net(x), y)
    grads = torch.autograd.grad(loss, list(params.values()))
    return {n: (g * p).detach().abs() for (n, p), g in zip(params.items(), grads, strict=True)}


class SNIP(Method):
    """Connection sensitivity at init."""

    name = "snip"
    params = (Param("samples", int, 512, "size of the scoring batch", lo=2, hi=100000),)

    def check_sparsity(self, sparsity: float) -> None:
        """Needs a sparsity above 0."""
        require_positive(self.name, sparsity)

    def run(self, ctx: RunContext) -> MethodOutput:
        """Score with |g w| on a fixed batch, prune globally, train."""
        x, y = ctx.score_batch(ctx.spec.sparsity.opt("samples"))
        return prune_at_init_and_train(ctx, lambda model, _ctx: snip_scores(model, x, y))
