"""The ``connectivity`` kind: align run B to run A, then evaluate the straight path between them.

Alignment (``analysis.permutation``): ``naive`` is the identity; ``activation``
is activation matching (deterministic); ``weight`` is Git Re-Basin's weight
matching, whose coordinate descent stops at a local optimum that depends on
the order it visits the permutations in. So weight matching runs from
``spec.matching_restarts`` seeded visiting orders, keeps the permutation with
the best matching objective (it never looks at the evaluation data), and
evaluates the path of every distinct permutation it found: the result carries
the spread (min / median / max) of every barrier over the orders next to the
chosen order's curve, since that spread can exceed the differences between
methods a figure shows.

Devices: the endpoints, their masks, the model and the data are moved to
``ctx.device``; matching statistics (weight-matching costs, activation
correlations) are computed there, the linear assignments by scipy on the CPU,
and the permutations stored are CPU int64 tensors.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import torch
from torch import nn

from analysis.api import Context
from analysis.batchnorm import BNRule, bn_rule, bn_rule_record
from analysis.connectivity.barriers import barrier_spread, curve_barriers, spread
from analysis.connectivity.kind import ConnectivitySpec
from analysis.connectivity.path import (
    EvalData,
    ensemble_record,
    eval_data,
    interpolation_curve,
    kept_fraction,
    mix_weights,
    on,
    union_masks,
    zero_fraction,
)
from analysis.connectivity.repair import endpoint_stats, variance_collapse
from analysis.device import full_fp32
from analysis.permutation import (
    Matching,
    activation_matching,
    apply_permutation,
    best_matching,
    identity_permutation,
    matching_objective,
    weight_matching_restarts,
)


def align(
    spec: ConnectivitySpec, model_a: nn.Module, model_b: nn.Module, x: torch.Tensor
) -> list[Matching]:
    """The candidate permutations aligning B to A: one per visiting order for ``weight``.

    ``naive`` (the identity) and ``activation`` (activation matching on x (N, C,
    H, W)) give one candidate; ``weight`` gives ``spec.matching_restarts``,
    seeded by ``spec.seed`` (:func:`analysis.permutation.weight_matching_restarts`).
    Every candidate carries Git Re-Basin's matching objective.
    """
    ps = model_a.permutation_spec()
    state_a, state_b = model_a.state_dict(), model_b.state_dict()
    if spec.alignment == "weight":
        return weight_matching_restarts(
            ps, state_a, state_b, restarts=spec.matching_restarts, seed=spec.seed
        )
    if spec.alignment == "activation":
        perm = activation_matching(model_a, model_b, x)
    else:
        perm = identity_permutation(ps, state_a)
    objective = matching_objective(ps, perm, state_a, state_b)
    return [Matching(perm=perm, objective=objective, passes=0, restart=0)]


@torch.no_grad()
def check_same_function(
    model: nn.Module,
    state: dict[str, torch.Tensor],
    aligned: dict[str, torch.Tensor],
    x: torch.Tensor,
) -> None:
    """Raise RuntimeError unless ``aligned`` computes what ``state`` does on x (eval mode).

    A check, not a reported number, so it deliberately uses the network's own
    (permuted) BatchNorm running statistics rather than the path's BatchNorm
    rule: a reset would hide a bug in permuting the running statistics.
    """
    model.load_state_dict(state)
    before = model.eval()(x)
    model.load_state_dict(aligned)
    after = model.eval()(x)
    scale = max(1.0, float(before.abs().max()))
    if not torch.allclose(before, after, atol=1e-4 * scale, rtol=1e-4):
        raise RuntimeError("the aligned network computes a different function: a permutation bug")


def _perm_id(perm: dict[str, torch.Tensor]) -> tuple[bytes, ...]:
    """A hashable identity of a permutation (to evaluate each distinct one once)."""
    return tuple(perm[p].cpu().numpy().tobytes() for p in sorted(perm))


def _aligned_path(
    spec: ConnectivitySpec,
    ends: tuple[tuple[dict, dict], tuple[dict, dict]],
    model: nn.Module,
    perm: dict[str, torch.Tensor],
    data: EvalData,
    bn: BNRule,
    progress: Any,
) -> tuple[dict[str, list[float]], dict]:
    """The curve from A to B permuted by ``perm`` (masks permuted too, union on the path).

    ``ends``: (state, masks) of A and of B, on the model's device.
    """
    (state_a, masks_a), (state_b, masks_b) = ends
    ps = model.permutation_spec()
    aligned = apply_permutation(ps, perm, state_b)
    masks = union_masks(masks_a, apply_permutation(ps, perm, masks_b))
    check_same_function(model, state_b, aligned, data.test_x[:64])
    alphas = np.linspace(0.0, 1.0, spec.alphas)
    curve = interpolation_curve(
        model, state_a, aligned, masks, alphas, data, bn=bn, progress=progress
    )
    return curve, masks


def repair_record(
    model: nn.Module, state_a: dict, state_b: dict, perm: dict, x: torch.Tensor
) -> dict:
    """The variance collapse at alpha 0.5 of A and B permuted by ``perm``, before/after REPAIR.

    x: (N, C, H, W) training subset (:func:`analysis.connectivity.repair.variance_collapse`).
    """
    aligned = apply_permutation(model.permutation_spec(), perm, state_b)
    ends = endpoint_stats(model, [state_a, aligned], x)
    return variance_collapse(model, mix_weights(state_a, aligned, 0.5), ends, x)


def midpoint_record(
    curve: dict[str, list[float]],
    model: nn.Module,
    states: tuple[dict, dict],
    masks: dict,
    data: EvalData,
    bn: BNRule,
) -> dict[str, float]:
    """Loss and accuracy of the path's midpoint (alpha 0.5, the path's rule): from the curve
    when its grid holds 0.5 (an odd number of alphas), else evaluated."""
    if 0.5 in curve["alphas"]:
        i = curve["alphas"].index(0.5)
    else:
        curve, i = interpolation_curve(model, *states, masks, np.array([0.5]), data, bn=bn), 0
    return {k: curve[k][i] for k in ("train_loss", "train_acc", "test_loss", "test_acc")}


def matching_record(found: list[Matching], chosen: Matching, barriers: list[dict]) -> dict:
    """What the result stores about the candidates: objectives, passes, barriers and spreads.

    ``barriers`` holds one :func:`curve_barriers` per candidate, in ``found`` order.
    """
    values, spreads = barrier_spread(barriers)
    objectives = [m.objective for m in found]
    return {
        "restarts": len(found),
        "chosen": chosen.restart,
        "distinct": len({_perm_id(m.perm) for m in found}),
        "objective": objectives,
        "objective_spread": spread(objectives),
        "passes": [m.passes for m in found],
        "barriers": values,
        "spread": spreads,
    }


@full_fp32()  # no TF32 on CUDA: matching costs and curves in fp32, as on the CPU
def compute_connectivity(spec: ConnectivitySpec, ctx: Context) -> tuple[dict, dict]:
    """Align B to A, then loss/accuracy/sparsity along the line, its barriers and their spread.

    Git Re-Basin (Ainsworth et al. 2023) / Entezari et al. 2022: the curve of
    ``(1 - a) A + a P(B)`` on ``spec.alphas`` points, for the candidate with the
    best matching objective; for ``weight`` also every distinct candidate's
    barriers and their min / median / max (``matching``); with ``repair``, the
    variance collapse at alpha 0.5 before and after REPAIR (``variance``,
    :func:`repair_record`); the endpoints' output-space ensemble (``ensemble``,
    :func:`analysis.connectivity.path.ensemble_record`) beside the midpoint
    (``midpoint``, Entezari et al. 2022's ensembles vs interpolation). Losses are mean cross-entropy in nats, accuracies in [0, 1]. Raises PermutationError if the
    runs differ in architecture, RuntimeError if an aligned network computes a
    different function (a permutation bug).
    """
    dev = ctx.device
    runs = (ctx.get(spec.run_a), ctx.get(spec.run_b))
    data = eval_data(spec.run_a.data, spec.train_subset, spec.test_subset, spec.seed).to(dev)
    model_a, model_b = runs[0].model().to(dev), runs[1].model().to(dev)
    ends = (
        (on(runs[0].state, dev), on(runs[0].masks, dev)),
        (on(runs[1].state, dev), on(runs[1].masks, dev)),
    )
    start = time.perf_counter()
    found = align(spec, model_a, model_b, data.train_x)
    align_seconds = time.perf_counter() - start
    chosen = best_matching(found)
    bn = bn_rule(model_a, repair=spec.repair)
    paths: dict[tuple[bytes, ...], tuple[dict, dict]] = {}
    for m in found:  # every distinct permutation once: orders often agree
        if _perm_id(m.perm) not in paths:
            task = spec.label if len(found) == 1 else f"{spec.label}: order {m.restart + 1}"
            paths[_perm_id(m.perm)] = _aligned_path(
                spec, ends, model_a, m.perm, data, bn, lambda i, n, t=task: ctx.progress(t, i, n)
            )
    curve, masks = paths[_perm_id(chosen.perm)]
    barriers = curve_barriers(curve)
    names = model_a.prunable_names()
    matching = None
    if spec.alignment == "weight":
        per_order = [curve_barriers(paths[_perm_id(m.perm)][0]) for m in found]
        matching = matching_record(found, chosen, per_order)
    aligned = apply_permutation(model_a.permutation_spec(), chosen.perm, ends[1][0])
    midpoint = midpoint_record(curve, model_a, (ends[0][0], aligned), masks, data, bn)
    ensemble = ensemble_record(model_a, [ends[0][0], ends[1][0]], data)
    variance = None
    if spec.repair:
        variance = repair_record(model_a, ends[0][0], ends[1][0], chosen.perm, data.train_x)
    doc = {
        "run_a": spec.run_a.label,
        "run_b": spec.run_b.label,
        "alignment": spec.alignment,
        "repair": spec.repair,
        "bn": bn,
        "bn_rule": bn_rule_record(bn, len(data.train_x)),
        "curve": curve,
        "barriers": barriers,
        "matching_objective": chosen.objective,
        "matching": matching,
        "variance": variance,
        "ensemble": ensemble,
        "midpoint": midpoint,
        "endpoint_sparsity": [zero_fraction(r.state, names) for r in runs],
        "union_sparsity": 1.0 - kept_fraction(masks) if masks else 0.0,
        "alignment_seconds": align_seconds,
        "changed_units": {
            p: int((idx != torch.arange(len(idx))).sum()) for p, idx in chosen.perm.items()
        },
        "n_train": len(data.train_x),
        "n_test": len(data.test_x),
    }
    summary = {f"{split}_{k}": v for split, b in barriers.items() for k, v in b.items()}
    if matching is not None:
        summary["spread"] = matching["spread"]
    perm = {p: idx.cpu() for p, idx in chosen.perm.items()}
    return {"connectivity.json": doc, "permutation.safetensors": perm}, summary
