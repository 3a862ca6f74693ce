"""``l1-structured``: remove whole filters / neurons with the smallest L1 norm, then fine-tune.

Li et al. 2017 ("Pruning Filters for Efficient ConvNets"): in every layer, the
filters (conv) or neurons (linear) whose weights have the smallest sum of
absolute values are removed together with the matching input channels of the
next layer, and the network is fine-tuned. ``sparsity`` here is the fraction of
filters/neurons removed per layer (``unit = "channels"``); the resulting weight
sparsity is measured from the masks and reported beside it.

Which channels feed which layers is read from the model's permutation spec: a
hidden-unit group with exactly one producing weight is prunable; its producer
rows and its consumers' input columns are masked. Groups tied across a residual
stream (several producers) are left alone, as Li et al. do for ResNets (they
prune only the first layer of each residual block). The head's outputs (the
classes) are never removed. Masking instead of physically removing channels
leaves a pruned channel's bias/BatchNorm shift in place, but no later layer
reads it (its consumer columns are zero), so the function is that of the
physically smaller network.
"""

from __future__ import annotations

import torch
from torch.nn.utils import prune

from analysis.sparsity.base import Masks, kept_dense, require_positive
from analysis.sparsity.finetune import FINETUNE_PARAMS, PruneTrainedDense, prune_dense_and_finetune
from analysis.training_types import MethodOutput, RunContext


def structured_masks(
    model: torch.nn.Module, fraction: float, keep: set[str] | frozenset[str] = frozenset()
) -> tuple[Masks, dict[str, int]]:
    """Masks removing ``round(fraction * n)`` lowest-L1 channels of each prunable group.

    A group touching a ``keep`` weight (its outputs or its inputs) is left
    whole (the ``keep_dense`` option). Returns (masks, channels removed per group).
    """
    ps = model.permutation_spec()
    params = dict(model.named_parameters())
    prunable = set(model.prunable_names())
    masks = {n: torch.ones_like(params[n], dtype=torch.bool) for n in model.prunable_names()}
    removed = {}
    for group, axes in ps.perm_to_axes.items():
        producers = [k for k, a in axes if a == 0 and k in prunable]
        if len(producers) != 1 or keep & {k for k, _ in axes}:
            continue  # residual stream (tied), no weight produces it, or kept dense
        weight = params[producers[0]].detach()
        n = weight.shape[0]
        k = int(round(fraction * n))
        k = min(k, n - 1)  # always keep one channel: an empty layer disconnects the net
        if k <= 0:
            continue
        rows = prune.LnStructured(amount=k, n=1, dim=0).compute_mask(
            weight, torch.ones_like(weight)
        )
        keep = rows.reshape(n, -1)[:, 0].bool()  # (n,) channel survives
        for key, axis in axes:
            if key in masks:
                shape = [1] * masks[key].dim()
                shape[axis] = n
                masks[key] &= keep.view(shape)
        removed[group] = k
    return masks, removed


class L1Structured(PruneTrainedDense):
    """Filter/neuron pruning by L1 norm of the trained dense network, then fine-tuning."""

    name = "l1-structured"
    unit = "channels"
    params = (*FINETUNE_PARAMS,)

    def check_sparsity(self, sparsity: float) -> None:
        """Needs a sparsity above 0."""
        require_positive(self.name, sparsity)

    def run(self, ctx: RunContext) -> MethodOutput:
        """Prune channels of the dense run of this seed and fine-tune."""
        fraction = ctx.spec.sparsity.sparsity

        def make_masks(model):
            keep = kept_dense(ctx.spec.sparsity, model.prunable_names())
            masks, removed = structured_masks(model, fraction, keep)
            return masks, {"channels_removed": removed}

        return prune_dense_and_finetune(ctx, make_masks)
