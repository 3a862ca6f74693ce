"""The straight path ``(1 - alpha) * A + alpha * B`` and its evaluation on fixed data.

Sparse networks (no existing tool handles them, so this is our convention): the
masks are permuted with the weights (a pruned weight of B stays pruned, at its
new position), and the interpolated network's mask is the UNION of the endpoint
masks: a weight is free if it is free in either network. Interpolated weights
outside the union are exactly zero, since both endpoints are zero there. We
store the sparsity of the interpolated weights (fraction of exact zeros among
the prunable weights) at every alpha: the endpoints' sparsities at alpha 0 and
1, the union's in between.

Every evaluation of weights on the path goes through ``analysis.batchnorm``'s
rule (:func:`analysis.batchnorm.apply_bn_rule`): BatchNorm statistics reset on
the training subset at every alpha, endpoints included; with REPAIR
(``analysis.connectivity.repair``) every pre-activation is then renormalised.

Devices: the curve runs where its inputs are: the compute functions move the
endpoint states, masks, model and data to ``ctx.device`` (:func:`on`,
:meth:`EvalData.to`); the interpolated states are made there.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from analysis.batchnorm import BNRule, apply_bn_rule, base_rule
from analysis.connectivity.repair import (
    corrected,
    endpoint_stats,
    goal,
    ready,
    repair_corrections,
)
from analysis.data import eval_subset, load
from analysis.sparsity.base import Masks, apply_masks
from analysis.specs import DataSpec
from analysis.train import evaluate


def on(tensors: dict[str, torch.Tensor], device: torch.device) -> dict[str, torch.Tensor]:
    """``tensors`` (a state dict or masks) moved to ``device`` (the same tensors if there)."""
    return {k: v.to(device) for k, v in tensors.items()}


def mix_weights(
    state_a: dict[str, torch.Tensor], state_b: dict[str, torch.Tensor], alpha: float
) -> dict[str, torch.Tensor]:
    """``(1 - alpha) * A + alpha * B`` for every floating tensor (exact at alpha 0 and 1).

    Integer buffers (BatchNorm's ``num_batches_tracked``) are taken from A.
    """
    out = {}
    for key, a in state_a.items():
        b = state_b[key]
        out[key] = (1.0 - alpha) * a + alpha * b if a.is_floating_point() else a.clone()
    return out


def union_masks(masks_a: Masks, masks_b: Masks) -> Masks:
    """The interpolated network's masks: free where free in either (empty if either is dense)."""
    if not masks_a or not masks_b:
        return {}
    return {k: masks_a[k] | masks_b[k] for k in masks_a}


def zero_fraction(state: dict[str, torch.Tensor], names: list[str]) -> float:
    """Fraction of exact zeros among the named (prunable) weights."""
    zeros = sum(int((state[n] == 0).sum()) for n in names)
    total = sum(state[n].numel() for n in names)
    return zeros / max(total, 1)


def kept_fraction(masks: Masks) -> float:
    """Fraction of True entries over all masks."""
    kept = sum(int(m.sum()) for m in masks.values())
    return kept / max(sum(m.numel() for m in masks.values()), 1)


@dataclass(frozen=True)
class EvalData:
    """The fixed data a curve is evaluated on: x (N, C, H, W), y (N,)."""

    train_x: torch.Tensor
    train_y: torch.Tensor
    test_x: torch.Tensor
    test_y: torch.Tensor

    def to(self, device: torch.device) -> EvalData:
        """The same data on ``device``."""
        return EvalData(
            *(t.to(device) for t in (self.train_x, self.train_y, self.test_x, self.test_y))
        )


def eval_data(data: DataSpec, train_subset: int, test_subset: int, seed: int) -> EvalData:
    """A seeded training subset (at most ``train_subset``) and the test set (or a subset)."""
    splits = load(data)
    n_train = len(splits.train_x)
    tr = eval_subset(min(train_subset, n_train), n_train, seed)
    te = slice(None)
    if test_subset:
        te = eval_subset(min(test_subset, len(splits.test_x)), len(splits.test_x), seed)
    return EvalData(splits.train_x[tr], splits.train_y[tr], splits.test_x[te], splits.test_y[te])


@torch.no_grad()
def ensemble_record(
    model: nn.Module, states: list[dict[str, torch.Tensor]], data: EvalData, batch: int = 2048
) -> dict[str, float]:
    """The output-space ensemble of ``states``: accuracy and loss of their mean softmax.

    Entezari et al. 2022's "ensembles vs interpolation": each network (``model``
    loaded with each state, readied by the base rule, i.e. BatchNorm statistics
    reset on the train subset as at the path's ends) gives softmax
    probabilities on the train subset and the test set; the ensemble predicts
    their mean. Returns ``{split}_acc`` (in [0, 1]) and ``{split}_loss`` (mean
    negative log-likelihood of the mean probabilities, nats).
    """
    probs: dict[str, torch.Tensor] = {}
    for state in states:
        model.load_state_dict(state)
        ready(model, data.train_x)  # the base rule, as at the path's ends
        for split, x in (("train", data.train_x), ("test", data.test_x)):
            p = torch.cat([model(xb).float().softmax(1) for xb in x.split(batch)])
            probs[split] = probs[split] + p if split in probs else p
    out = {}
    for split, y in (("train", data.train_y), ("test", data.test_y)):
        mean = probs[split] / len(states)
        picked = mean.gather(1, y.view(-1, 1)).squeeze(1).clamp(min=1e-12)
        out[f"{split}_acc"] = float((mean.argmax(1) == y).double().mean())
        out[f"{split}_loss"] = float(-picked.double().log().mean())
    return out


def interpolation_curve(
    model: nn.Module,
    state_a: dict[str, torch.Tensor],
    state_b: dict[str, torch.Tensor],
    masks: Masks,
    alphas: np.ndarray,
    data: EvalData,
    *,
    bn: BNRule,
    progress: Any = None,
) -> dict[str, list[float]]:
    """Loss, accuracy (train and test) and sparsity at every alpha of ``(1-a) A + a B``.

    ``model`` is any network of the architecture (its weights are overwritten);
    ``masks`` the interpolated network's (the union); ``bn`` the rule applied at
    each alpha (``analysis.batchnorm.apply_bn_rule``; for 'repair' the base rule,
    then REPAIR's corrections, :mod:`analysis.connectivity.repair`). Returns lists
    of len(alphas) under ``alphas``, ``{train,test}_{loss,acc}`` (mean
    cross-entropy in nats, accuracy in [0, 1]) and ``sparsity``.
    """
    names = model.prunable_names()
    stats = endpoint_stats(model, [state_a, state_b], data.train_x) if bn == "repair" else None
    rule = base_rule(model) if bn == "repair" else bn
    curve: dict[str, list[float]] = {
        k: [] for k in ("train_loss", "train_acc", "test_loss", "test_acc", "sparsity")
    }
    for i, alpha in enumerate(alphas):
        if progress is not None:
            progress(i, len(alphas))
        model.load_state_dict(mix_weights(state_a, state_b, float(alpha)))
        apply_masks(model, masks)  # a no-op by construction: both endpoints are 0 there
        apply_bn_rule(model, rule, data.train_x)
        fixes = {}
        if stats is not None:
            fixes = repair_corrections(model, goal(stats, float(alpha)), data.train_x)
        with corrected(model, fixes):
            for split, x, y in (
                ("train", data.train_x, data.train_y),
                ("test", data.test_x, data.test_y),
            ):
                loss, acc = evaluate(model, x, y)
                curve[f"{split}_loss"].append(loss)
                curve[f"{split}_acc"].append(acc)
        curve["sparsity"].append(zero_fraction(dict(model.named_parameters()), names))
    if progress is not None:
        progress(len(alphas), len(alphas))
    return {"alphas": [float(a) for a in alphas], **curve}
