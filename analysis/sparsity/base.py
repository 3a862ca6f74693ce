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
from typing import Any

import torch
from torch.nn.utils import prune

from analysis.errors import SpecError
from analysis.specs import (
    RunSpec,
    SparsitySpec,
    check_bool,
    check_float,
    check_int,
    check_option,
)
from analysis.training_types import Masks, MethodOutput, RunContext
from analysis.training_types import apply_masks as apply_masks  # re-exported: mask utilities

#: The state-dict key of every model's output layer (``analysis.models.base``: ``head``).
OUTPUT_LAYER = "head.weight"


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
    #: Left out of the spec's options (so of the key) while it holds its default:
    #: an option added later keeps every existing key (read it with ``opt(name, default)``).
    omit_default: bool = False

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


def output_layer_param(default: str) -> Param:
    """The ``output_layer`` option of the magnitude-ranking methods.

    ``keep``: the output layer is left out of pruning (open_lth's
    ``pruning_layers_to_ignore = 'fc.weight'``, its default for the MNIST LeNet
    and CIFAR VGG); ``half``: pruned at half the method's rate (Frankle & Carbin
    2019, Figure 2); ``prune``: ranked like any other layer. Either way the
    other layers are pruned a little more, so the total sparsity is the one asked for.
    """
    return Param(
        "output_layer",
        str,
        default,
        "how the output layer is pruned: kept dense, at half the rate, or like the others",
        options=("keep", "half", "prune"),
    )


#: An option of every method but dense: layers it leaves dense. Left out of the key
#: while empty, so every key from before it holds.
KEEP_DENSE = Param(
    "keep_dense",
    str,
    "",
    "layers left dense: 'first', 'last' or module names, comma-separated (a TOML list works)",
    omit_default=True,
)


def kept_dense(spec: SparsitySpec, names: list[str]) -> set[str]:
    """The weight names the ``keep_dense`` option of ``spec`` leaves dense.

    ``names``: the network's prunable weights in forward order
    (``model.prunable_names()``). ``first`` and ``last`` are the first and last
    of them (the input layer, the output layer); any other item names a module
    (``head``, ``layers.0``) or a weight. Raises SpecError naming
    ``keep_dense`` for an item that is neither.
    """
    text = spec.opt("keep_dense", "")
    out = set()
    for item in (x.strip() for x in text.split(",") if x.strip()):
        if item in ("first", "last"):
            out.add(names[0] if item == "first" else names[-1])
        elif f"{item}.weight" in names or item in names:
            out.add(item if item in names else f"{item}.weight")
        else:
            layers = ", ".join(n.removesuffix(".weight") for n in names)
            raise SpecError(
                "keep_dense",
                f"'first', 'last' or a prunable layer of this network ({layers})",
                item,
                owner=f"method {spec.method!r}",
            )
    return out


def dense_of(spec: RunSpec) -> RunSpec:
    """The dense run with the same data, model, training and seed as ``spec``."""
    return spec.replace(sparsity=SparsitySpec(method="dense", sparsity=0.0))


class Method(ABC):
    """A sparsity method: produces a trained network and its masks from a run spec.

    Besides :meth:`run`, a method declares what it needs: its options
    (``params``), the runs it reads from the store (:meth:`prerequisites`, which
    the executor schedules first) and the checks of its options against the rest
    of the run (:meth:`check_run`). A method needs no snapshot of another run:
    a rewind point is replayed (see :mod:`analysis.sparsity.lottery`), so no
    method ever changes another run's key.
    """

    name: str = ""
    params: tuple[Param, ...] = ()

    @property
    def all_params(self) -> tuple[Param, ...]:
        """Its own options and the options every method has (``keep_dense``; not dense)."""
        return self.params if self.name == "dense" else (*self.params, KEEP_DENSE)

    #: "weights": sparsity is the fraction of prunable weights removed;
    #: "channels": the fraction of filters/neurons removed per layer.
    unit: str = "weights"

    def check_sparsity(self, sparsity: float) -> None:
        """Refuse a sparsity this method cannot mean (dense must be 0)."""

    def check_options(self, options: dict) -> None:
        """Check constraints between options (each is already valid alone)."""

    def check_run(self, spec: RunSpec, steps: int) -> None:
        """Check the options of ``spec`` against the run's training length (``steps`` optimizer steps)."""

    def level_specs(self, levels: list[float], options: dict) -> list[SparsitySpec]:
        """The specs of one study entry that lists ``levels``: one per level, by default.

        A method whose levels build on each other (the lottery ticket's pruning
        chain) overrides this, so that the levels share their computation.
        """
        return [SparsitySpec(method=self.name, sparsity=s, options=options) for s in levels]

    def prerequisites(self, spec: RunSpec) -> list[RunSpec]:
        """The runs this method reads from the store while computing ``spec`` (none by default)."""
        return []

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
    # contiguous: the library flattens with .view (a channels_last weight's scores cannot)
    s = torch.nan_to_num(scores.detach().abs().float(), nan=0.0, posinf=3e38).contiguous()
    current = current.contiguous()
    s[~current] = math.inf
    mask = prune.L1Unstructured(amount=n_prune).compute_mask(s, default_mask=current.float())
    return mask.bool()


def masks_from_scores(
    scores: dict[str, torch.Tensor],
    sparsity: float,
    *,
    scope: str = "global",
    current: Masks | None = None,
    fixed: dict[str, float] | None = None,
    keep: set[str] | frozenset[str] = frozenset(),
) -> Masks:
    """Keep the highest-scoring weights so that exactly ``sparsity`` of them are pruned.

    ``keep`` layers (the ``keep_dense`` option) stay dense and are left out of
    the count: ``sparsity`` is then of the other layers' weights (as open_lth's
    ``pruning_layers_to_ignore``), so keeping an MLP's large first layer dense
    still prunes the rest to ``sparsity``.

    scores: {name: (weight shape)} non-negative importances (higher = keep).
    ``current`` masks stay pruned (iterative pruning). ``scope='global'`` ranks
    all layers together; ``'layerwise'`` prunes every layer to ``sparsity``.
    The number pruned is ``round(sparsity * n)`` (over all layers for global).
    ``fixed`` layers ({name: their own sparsity}) are pruned within themselves
    and left out of the ranking; the other layers then prune the rest of the
    total, so the overall sparsity is unchanged. Raises ``ValueError`` when the
    other layers hold too few weights for that. Masks come back on the scores'
    device (``current`` may live anywhere).
    """
    check_option("masks_from_scores", "scope", scope, ("global", "layerwise"))
    if keep:
        rest = {n: s for n, s in scores.items() if n not in keep}
        fixed_rest = {n: f for n, f in (fixed or {}).items() if n in rest}
        current_rest = {n: c for n, c in current.items() if n in rest} if current else None
        out = masks_from_scores(rest, sparsity, scope=scope, current=current_rest, fixed=fixed_rest)
        ones = {n: torch.ones_like(s, dtype=torch.bool) for n, s in scores.items() if n in keep}
        return {n: out[n] if n in out else ones[n] for n in scores}
    current = current or {n: torch.ones_like(s, dtype=torch.bool) for n, s in scores.items()}
    current = {n: c.to(scores[n].device) for n, c in current.items()}  # e.g. a stored run's
    fixed = fixed or {}
    out = {}
    for n, fraction in fixed.items():
        target = round(fraction * scores[n].numel())
        out[n] = _topk_keep(scores[n], current[n], target - int((~current[n]).sum()))
    names = [n for n in scores if n not in fixed]
    total = sum(s.numel() for s in scores.values())
    rest = sum(scores[n].numel() for n in names)
    left = sparsity * total - sum(int((~m).sum()) for m in out.values())  # to prune in `names`
    if left > rest:
        raise ValueError(f"{left:.0f} weights to prune, but the ranked layers hold only {rest}")
    if scope == "layerwise":
        rate = sparsity if not fixed else left / rest  # no fixed layers: exactly as before
        for n in names:
            target = round(rate * scores[n].numel())
            out[n] = _topk_keep(scores[n], current[n], target - int((~current[n]).sum()))
        return {n: out[n] for n in scores}
    flat = torch.cat([scores[n].reshape(-1) for n in names])
    flat_cur = torch.cat([current[n].reshape(-1) for n in names])
    target = round(sparsity * total) - (total - rest - sum(int(m.sum()) for m in out.values()))
    keep = _topk_keep(flat, flat_cur, target - int((~flat_cur).sum()))
    offset = 0
    for n in names:
        k = scores[n].numel()
        out[n] = keep[offset : offset + k].reshape(scores[n].shape)
        offset += k
    return {n: out[n] for n in scores}


def output_layer_sparsity(
    mode: str, sparsity: float, rounds: int = 1, chain: tuple[float, ...] = ()
) -> float | None:
    """The output layer's own sparsity under ``output_layer=mode`` (None: ranked with the rest).

    ``sparsity`` is reached in ``rounds`` equal-rate rounds (rate ``p`` per round);
    ``half`` prunes the output layer at ``p / 2`` per round, as Frankle & Carbin
    2019 do, so after the rounds it holds ``1 - (1 - p/2) ** rounds`` sparsity.
    ``chain``: the sparsities of a pruning chain's earlier levels (the first
    reached in ``rounds - len(chain)`` equal-rate rounds, then one round per
    level); each round's rate is then the chain's own.
    """
    if mode == "prune":
        return None
    if mode == "keep":
        return 0.0
    first = chain[0] if chain else sparsity
    equal = rounds - len(chain)
    rate = 1.0 - (1.0 - first) ** (1.0 / equal)
    head_density = (1.0 - rate / 2.0) ** equal
    for before, after in zip(chain, (*chain[1:], sparsity)[: len(chain)], strict=True):
        head_density *= 1.0 - (1.0 - (1.0 - after) / (1.0 - before)) / 2.0
    return 1.0 - head_density


def ranked_masks(
    scores: dict[str, torch.Tensor],
    sparsity: float,
    *,
    scope: str,
    output_layer: str,
    owner: str,
    rounds: int = 1,
    chain: tuple[float, ...] = (),
    current: Masks | None = None,
    keep: set[str] | frozenset[str] = frozenset(),
) -> Masks:
    """:func:`masks_from_scores` with the output layer treated as the ``output_layer`` option says.

    scores: {name: (weight shape)}; ``rounds`` equal-rate rounds reach
    ``sparsity`` (for ``half``, see :func:`output_layer_sparsity`); ``keep``
    layers stay dense and out of the count (see :func:`masks_from_scores`). Raises SpecError naming ``output_layer`` when keeping the output layer (or
    half of it) leaves the other layers too few weights to reach ``sparsity``.
    """
    head = output_layer_sparsity(output_layer, sparsity, rounds, chain)
    fixed = {} if head is None or OUTPUT_LAYER not in scores else {OUTPUT_LAYER: head}
    try:
        return masks_from_scores(
            scores, sparsity, scope=scope, current=current, fixed=fixed, keep=keep
        )
    except ValueError as err:
        raise SpecError(
            "output_layer",
            f"'prune' at sparsity {sparsity:g} on this network ({err})",
            output_layer,
            owner=owner,
        ) from None


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
    """Uniformly random masks keeping ``round(density * n)`` weights per layer (seeded).

    Drawn from the CPU ``generator``, so the masks are the same whatever device
    trains with them; they come back on the CPU.
    """
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
