"""Shared by the pruning-at-initialisation methods (SNIP, GraSP, SynFlow): score, mask, train."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from analysis.sparsity.base import Masks, kept_dense, masks_from_scores
from analysis.training_types import MethodOutput, RunContext, apply_masks, state_of


def prune_at_init_and_train(
    ctx: RunContext, score: Callable[[nn.Module, RunContext], dict[str, torch.Tensor]]
) -> MethodOutput:
    """Score the initialised network, keep the top weights globally, train with the mask."""
    s = ctx.spec.sparsity
    model = ctx.build()
    scores = score(model, ctx)
    keep = kept_dense(s, model.prunable_names())
    masks: Masks = masks_from_scores(scores, s.sparsity, scope="global", keep=keep)
    apply_masks(model, masks)
    init = state_of(model)
    fit = ctx.fit(model, masks)
    return MethodOutput(state_of(model), masks, fit.history, init, fit.snapshots)


def prunable_params(model: nn.Module) -> dict[str, nn.Parameter]:
    """The prunable weights of ``model`` by name, in forward order."""
    params = dict(model.named_parameters())
    return {n: params[n] for n in model.prunable_names()}
