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

import math

import torch
from torch.nn.utils import prune

from analysis.sparsity.base import Masks, Param, kept_dense, require_positive
from analysis.sparsity.finetune import FINETUNE_PARAMS, PruneTrainedDense, prune_dense_and_finetune
from analysis.train import evaluate
from analysis.training_types import MethodOutput, RunContext, apply_masks

#: One prunable channel group: (group name, its producing weight, every (key, axis) it acts on).
ChannelGroup = tuple[str, str, tuple[tuple[str, int], ...]]


def channel_groups(model: torch.nn.Module) -> list[ChannelGroup]:
    """The channel groups of ``model`` with exactly one prunable producing weight.

    Read from the model's permutation spec: a hidden-unit group produced by one
    weight (its rows: filters of a conv, neurons of a linear layer). Groups tied
    across a residual stream (several producers) and the head's outputs are left out.
    """
    ps = model.permutation_spec()
    prunable = set(model.prunable_names())
    out = []
    for group, axes in ps.perm_to_axes.items():
        producers = [k for k, a in axes if a == 0 and k in prunable]
        if len(producers) == 1:
            out.append((group, producers[0], tuple(axes)))
    return out


def channel_masks(model: torch.nn.Module, keep: dict[str, torch.Tensor]) -> Masks:
    """Masks of every prunable weight removing the channels not kept.

    keep: {group name: (n,) bool, True = the channel survives}; the group's
    producer rows and its consumers' input columns are masked. Groups not in
    ``keep`` stay whole. Masks live on the model's device.
    """
    params = dict(model.named_parameters())
    masks = {n: torch.ones_like(params[n], dtype=torch.bool) for n in model.prunable_names()}
    for group, _producer, axes in channel_groups(model):
        if group not in keep:
            continue
        alive = keep[group]
        for key, axis in axes:
            if key in masks:
                shape = [1] * masks[key].dim()
                shape[axis] = len(alive)
                masks[key] &= alive.to(masks[key].device).view(shape)
    return masks


def channels_to_remove(n: int, fraction: float) -> int:
    """``round(fraction * n)`` channels, but always one left (an empty layer disconnects the net)."""
    return max(0, min(int(round(fraction * n)), n - 1))


def keep_top(scores: torch.Tensor, k: int) -> torch.Tensor:
    """(n,) bool keeping all but the ``k`` lowest of ``scores`` (n,), ties broken by index."""
    keep = torch.ones(len(scores), dtype=torch.bool, device=scores.device)
    if k > 0:
        order = torch.argsort(scores.detach().float(), stable=True)
        keep[order[:k]] = False
    return keep


def structured_masks(
    model: torch.nn.Module, fraction: float, keep: set[str] | frozenset[str] = frozenset()
) -> tuple[Masks, dict[str, int]]:
    """Masks removing ``round(fraction * n)`` lowest-L1 channels of each prunable group.

    A group touching a ``keep`` weight (its outputs or its inputs) is left
    whole (the ``keep_dense`` option). Returns (masks, channels removed per group).
    """
    params = dict(model.named_parameters())
    alive, removed = {}, {}
    for group, producer, axes in channel_groups(model):
        if keep & {k for k, _ in axes}:
            continue  # it touches a layer kept dense
        weight = params[producer].detach()
        n = weight.shape[0]
        k = channels_to_remove(n, fraction)
        if k <= 0:
            continue
        rows = prune.LnStructured(amount=k, n=1, dim=0).compute_mask(
            weight, torch.ones_like(weight)
        )
        alive[group] = rows.reshape(n, -1)[:, 0].bool()  # (n,) channel survives
        removed[group] = k
    return channel_masks(model, alive), removed


#: How the units of a layer are ranked for removal (Li et al. 2017, Figure 2).
CRITERIA = ("smallest", "random", "largest")


def removal_order(
    weight: torch.Tensor, criterion: str, generator: torch.Generator | None = None
) -> torch.Tensor:
    """(n,) unit indices of ``weight`` (n, ...) in the order they are removed.

    ``smallest`` / ``largest``: by the L1 norm of each filter or neuron (ties by
    index); ``random``: a permutation drawn from the CPU ``generator`` (the same
    on every device). Indices are on the CPU.
    """
    l1 = weight.detach().abs().reshape(len(weight), -1).sum(1).cpu()
    if criterion == "smallest":
        return torch.argsort(l1, stable=True)
    if criterion == "largest":
        return torch.argsort(-l1, stable=True)
    if criterion == "random":
        return torch.randperm(len(weight), generator=generator)
    raise ValueError(f"criterion must be one of {CRITERIA}, got {criterion!r}")


def keep_all_but(order: torch.Tensor, k: int) -> torch.Tensor:
    """(n,) bool: every unit except the first ``k`` of ``order``."""
    keep = torch.ones(len(order), dtype=torch.bool)
    keep[order[:k]] = False
    return keep


def layer_fractions(
    model: torch.nn.Module,
    fraction: float,
    max_drop: float,
    x: torch.Tensor,
    y: torch.Tensor,
    precision: str = "fp32",
) -> dict[str, float]:
    """Per channel group, the largest fraction in ``fraction, fraction - 0.1, ...`` whose
    smallest-L1 pruning of that layer alone costs at most ``max_drop`` accuracy on (x, y).

    Li et al. 2017 (Section 4.1, Figure 2) measure each layer's sensitivity this
    way and prune sensitive layers less (or not at all: fraction 0). ``model``
    is left as it was. x: (N, C, H, W), y: (N,).
    """
    state = {k: v.clone() for k, v in model.state_dict().items()}
    base = evaluate(model, x, y, precision=precision)[1]
    params = dict(model.named_parameters())
    steps = int(math.floor(fraction * 10 + 1e-9))
    candidates = [fraction, *[round(i / 10, 10) for i in range(steps, 0, -1) if i / 10 < fraction]]
    out = {}
    for group, producer, _axes in channel_groups(model):
        order = removal_order(params[producer], "smallest")
        out[group] = 0.0
        for f in candidates:
            keep = keep_all_but(order, channels_to_remove(len(order), f))
            apply_masks(model, channel_masks(model, {group: keep}))
            drop = base - evaluate(model, x, y, precision=precision)[1]
            model.load_state_dict(state)
            if drop <= max_drop:
                out[group] = f
                break
    return out


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


class L1Sensitivity(PruneTrainedDense):
    """L1 filter/neuron pruning that prunes sensitive layers less (Li et al. 2017, Section 4.1)."""

    name = "l1-sensitivity"
    unit = "channels"
    params = (
        *FINETUNE_PARAMS,
        Param(
            "max_drop",
            float,
            0.02,
            "validation accuracy a layer may lose, pruned alone, before it is pruned less",
            lo=0.0,
            hi=1.0,
        ),
    )

    def check_sparsity(self, sparsity: float) -> None:
        """Needs a sparsity above 0."""
        require_positive(self.name, sparsity)

    def run(self, ctx: RunContext) -> MethodOutput:
        """Measure each layer's sensitivity on the validation split, prune, fine-tune.

        Each layer loses the largest fraction of its lowest-L1 channels, from the
        run's sparsity down in steps of 0.1 (to none), whose removal alone costs at
        most ``max_drop`` validation accuracy; the masked network is fine-tuned.
        """
        s = ctx.spec.sparsity
        x, y = ctx.data.val_x, ctx.data.val_y
        if len(x) == 0:  # no validation split: a fixed slice of the training data
            x, y = ctx.data.train_x[:2000], ctx.data.train_y[:2000]

        def make_masks(model):
            fractions = layer_fractions(
                model, s.sparsity, s.opt("max_drop"), x, y, ctx.spec.train.precision
            )
            params = dict(model.named_parameters())
            dense = kept_dense(s, model.prunable_names())
            alive = {
                group: keep_all_but(
                    removal_order(params[producer], "smallest"),
                    channels_to_remove(len(params[producer]), fractions[group]),
                )
                for group, producer, axes in channel_groups(model)
                if not dense & {k for k, _ in axes}  # a layer kept dense loses no channel
            }
            return channel_masks(model, alive), {"layer_fractions": fractions}

        return prune_dense_and_finetune(ctx, make_masks)
