"""``grasp``: pruning at initialisation that preserves gradient flow.

Wang et al. 2020 ("Picking Winning Tickets Before Training by Preserving Gradient
Flow"): the score of a weight is ``S(w) = -w * (H g)``, where ``H g`` is the
Hessian-gradient product of the loss at initialisation; removing weights with
the largest ``S`` reduces gradient flow the least, so the lowest scores are kept
(globally). As in the authors' code, the gradient ``g`` is taken on logits divided
by a temperature (200) and ``H g`` is computed by double back-propagation
(the gradient of ``g_detached . grad L``).
"""

from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from torch import nn

from analysis.sparsity.at_init import prunable_params, prune_at_init_and_train
from analysis.sparsity.base import Method, Param, require_positive
from analysis.training_types import MethodOutput, RunContext


def grasp_scores(
    model: nn.Module, x: torch.Tensor, y: torch.Tensor, temperature: float
) -> dict[str, torch.Tensor]:
    """Importance for keeping: ``w * Hg`` (= -S of the paper; larger is kept)."""
    net = copy.deepcopy(model).train()
    params = prunable_params(net)
    weights = list(params.values())
    g = torch.autograd.grad(F.cross_entropy(net(x) / temperature, y), weights)
    g = [t.detach() for t in g]
    grad = torch.autograd.grad(F.cross_entropy(net(x) / temperature, y), weights, create_graph=True)
    z = sum((gi * hi).sum() for gi, hi in zip(g, grad, strict=True))
    hg = torch.autograd.grad(z, weights)
    # -S = w * Hg; masks_from_scores keeps the largest importances, but it ranks
    # |importance|, so shift to non-negative values keeping the order.
    raw = {n: (p * h).detach() for (n, p), h in zip(params.items(), hg, strict=True)}
    low = min(float(v.min()) for v in raw.values())
    return {n: v - low for n, v in raw.items()}


class GraSP(Method):
    """Gradient signal preservation at init."""

    name = "grasp"
    params = (
        Param("samples", int, 512, "size of the scoring batch", lo=2, hi=100000),
        Param(
            "temperature", float, 200.0, "logit temperature of the scoring loss", lo=1e-3, hi=1e6
        ),
    )

    def check_sparsity(self, sparsity: float) -> None:
        """Needs a sparsity above 0."""
        require_positive(self.name, sparsity)

    def run(self, ctx: RunContext) -> MethodOutput:
        """Score with -w Hg on a fixed batch, prune globally, train."""
        s = ctx.spec.sparsity
        x, y = ctx.score_batch(s.opt("samples"))
        return prune_at_init_and_train(
            ctx, lambda model, _ctx: grasp_scores(model, x, y, s.opt("temperature"))
        )
