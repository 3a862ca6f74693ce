"""The interface every sparsity method implements, and the mask utilities they share.

Masks are a dict ``{weight name: bool tensor of the weight's shape}`` kept beside
plain parameters. We do not use ``torch.nn.utils.prune``'s re-parametrisation
(``weight_orig`` + forward pre-hook) because it turns ``weight`` into a derived
attribute: checkpoints, permutation alignment, interpolation and
``torch.func.functional_call`` all need plain parameters. We do use its
pruning-method classes to compute masks (``L1Unstructured.compute_mask``,
``LnStructured.compute_mask``), so the top-k selection is the library's.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch
from torch.nn.utils import prune

from analysis.errors import SpecError
from analysis.specs import check_bool, check_float, check_int, check_option

if TYPE_CHECKING:
    from analysis.train import MethodOutput, RunContext

Masks = dict[str, torch.Tensor]


@dataclass(frozen=True)
class Param:
    """One option of a method: its type, allowed range or values, default and meaning."""

    name: str
    type: type
    default: Any
    doc: str = ""
    lo: float | None = None
    hi: float | None = None
    options: tuple | None = None

    def check(self, value: Any, *, owner: str) -> Any:
        """Validate ``value`` (ints are accepted for floats) and return it normalised."""
        if self.options is not None:
            check_option(owner, self.name, value, self.options)
        elif self.type is bool:
            check_bool(owner, self.name, value)
        elif self.type is int:
            check_int(owner, self.name, value, self.lo, self.hi)
        elif self.type is float:
            check_float(owner, self.name, value, self.lo, self.hi)
            value = float(value)
        return value


def scope_param(default: str) -> Param:
    """The ``scope`` option shared by the magnitude-ranking methods."""
    return Param(
        "scope",
        str,
        default,
        "rank weights across all layers or within each",
        options=("global", "layerwise"),
    )


class Method(ABC):
    """A sparsity method: produces a trained network and its masks from a run spec."""

    name: str = ""
    params: tuple[Param, ...] = ()
    #: "weights": sparsity is the fraction of prunable weights removed;
    #: "channels": the fraction of filters/neurons removed per layer.
    unit: str = "weights"

    def check_sparsity(self, sparsity: float) -> None:
        """Refuse a sparsity this method cannot mean (dense must be 0)."""

    def check_options(self, options: dict) -> None:
        """Check constraints between options (each is already valid alone)."""

    @abstractmethod
    def run(self, ctx: RunContext) -> MethodOutput:
        """Train (and prune) the network of ``ctx.spec``; return weights, masks and history."""


# ---------------------------------------------------------------------------
# mask utilities


def ones_masks(model: torch.nn.Module) -> Masks:
    """All-True masks for every prunable weight of ``model``."""
    state = dict(model.named_parameters())
    return {n: torch.ones_like(state[n], dtype=torch.bool) for n in model.prunable_names()}


def magnitude_scores(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """|w| of every prunable weight of ``model`` (the score of magnitude pruning)."""
    params = dict(model.named_parameters())
    return {n: params[n].detach().abs() for n in model.prunable_names()}


def apply_masks(model: torch.nn.Module, masks: Masks) -> None:
    """Zero the pruned weights of ``model`` in place."""
    params = dict(model.named_parameters())
    with torch.no_grad():
        for name, mask in masks.items():
            params[name].mul_(mask.to(params[name].dtype))


def count_kept(masks: Masks) -> tuple[int, int]:
    """(kept, total) weights over all masks."""
    kept = sum(int(m.sum()) for m in masks.values())
    total = sum(m.numel() for m in masks.values())
    return kept, total


def sparsity_of(masks: Masks) -> float:
    """Fraction of masked-out weights over all masks (0 for no masks)."""
    kept, total = count_kept(masks)
    return 0.0 if total == 0 else 1.0 - kept / total


def layer_sparsity(masks: Masks) -> dict[str, float]:
    """Per-layer fraction of masked-out weights."""
    return {n: 1.0 - float(m.float().mean()) for n, m in masks.items()}


def _topk_keep(scores: torch.Tensor, current: torch.Tensor, n_prune: int) -> torch.Tensor:
    """Mask keeping ``current`` minus the ``n_prune`` lowest-scoring surviving entries.

    scores, current: same shape. Already-pruned entries get +inf so the library's
    smallest-|score| selection never picks them again (they stay pruned).
    """
    n_prune = max(0, min(n_prune, int(current.sum())))
    if n_prune == 0:
        return current.clone()
    s = torch.nan_to_num(scores.detach().abs().float(), nan=0.0, posinf=3e38)
    s[~current] = math.inf
    mask = prune.L1Unstructured(amount=n_prune).compute_mask(s, default_mask=current.float())
    return mask.bool()


def masks_from_scores(
    scores: dict[str, torch.Tensor],
    sparsity: float,
    *,
    scope: str = "global",
    current: Masks | None = None,
) -> Masks:
    """Keep the highest-scoring weights so that exactly ``sparsity`` of them are pruned.

    scores: {name: (weight shape)} non-negative importances (higher = keep).
    ``current`` masks stay pruned (iterative pruning). ``scope='global'`` ranks
    all layers together; ``'layerwise'`` prunes every layer to ``sparsity``.
    The number pruned is ``round(sparsity * n)`` (over all layers for global).
    """
    check_option("masks_from_scores", "scope", scope, ("global", "layerwise"))
    current = current or {n: torch.ones_like(s, dtype=torch.bool) for n, s in scores.items()}
    names = list(scores)
    if scope == "layerwise":
        out = {}
        for n in names:
            target = round(sparsity * scores[n].numel())
            already = int((~current[n]).sum())
            out[n] = _topk_keep(scores[n], current[n], target - already)
        return out
    flat = torch.cat([scores[n].reshape(-1) for n in names])
    flat_cur = torch.cat([current[n].reshape(-1) for n in names])
    target = round(sparsity * flat.numel())
    keep = _topk_keep(flat, flat_cur, target - int((~flat_cur).sum()))
    out, offset = {}, 0
    for n in names:
        k = scores[n].numel()
        out[n] = keep[offset : offset + k].reshape(scores[n].shape)
        offset += k
    return out


def erk_densities(
    shapes: dict[str, torch.Size], density: float, *, power: float = 1.0
) -> dict[str, float]:
    """Per-layer densities of the Erdős–Rényi-Kernel distribution (Evci et al. 2020, RigL).

    A layer's density is proportional to ``sum(shape) / prod(shape)`` (for conv:
    in + out + kh + kw over their product), scaled so the total kept weights equal
    ``density * total``; layers that would exceed density 1 are made dense and the
    rest rescaled (the same fixed-point loop as RigL's ``get_mask_init``).
    """
    check_float("erk_densities", "density", density, 0.0, 1.0, lo_open=True)
    total = sum(math.prod(s) for s in shapes.values())
    dense: set[str] = set()
    while True:
        budget = density * total - sum(math.prod(shapes[n]) for n in dense)
        raw = {n: (sum(s) / math.prod(s)) ** power for n, s in shapes.items() if n not in dense}
        denom = sum(raw[n] * math.prod(shapes[n]) for n in raw)
        eps = budget / denom if denom > 0 else 0.0
        over = {n for n in raw if eps * raw[n] > 1.0}
        if not over:
            break
        dense |= over
    out = {n: 1.0 for n in dense}
    out.update({n: eps * raw[n] for n in raw})
    return out


def random_masks(
    shapes: dict[str, torch.Size], densities: dict[str, float], generator: torch.Generator
) -> Masks:
    """Uniformly random masks keeping ``round(density * n)`` weights per layer (seeded)."""
    out = {}
    for n, shape in shapes.items():
        scores = torch.rand(shape, generator=generator)
        n_prune = shape.numel() - round(densities[n] * shape.numel())
        out[n] = _topk_keep(scores, torch.ones(shape, dtype=torch.bool), n_prune)
    return out


def require_positive(method: str, sparsity: float) -> None:
    """Sparsity-reducing methods need a sparsity above 0."""
    if not sparsity > 0:
        raise SpecError(
            "sparsity", "a float in the range (0, 1)", sparsity, owner=f"method {method!r}"
        )
