"""Aligning two networks by a permutation of hidden units: weight and activation matching.

Git Re-Basin (Ainsworth, Hayase & Srinivasa 2023) aligns two networks by
searching over the permutation symmetries of their hidden units; Entezari et
al. (2022) conjecture that, after alignment, SGD solutions are linearly
mode-connected. The symmetries themselves (:class:`PermutationSpec`, applying,
inverting and drawing permutations) live in ``analysis.permspec``, below both
this module and the models; they are re-exported here for callers.

The matchers take state dicts and, for activation matching, any network with
``permutation_spec()`` and ``perm_points()`` (``analysis.models.PrunableNet``):
this module never imports the models.

Devices: the matching statistics are computed where the inputs are (weight
matching: the cost matrices on the state dicts' device; activation matching:
the correlations on the networks' device); each linear assignment is solved by
scipy on the CPU, and the permutations returned are CPU int64 tensors.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from analysis.device import float64_device
from analysis.permspec import (
    AxesToPerm,
    Permutation,
    PermutationError,
    PermutationSpec,
    apply_permutation,
    check_same_architecture,
    identity_permutation,
    invert_permutation,
    perm_sizes,
    permutation_spec_from_axes_to_perm,
    permute_tensor,
    random_permutation,
)

__all__ = [  # the matchers, and the permutation types re-exported from analysis.permspec
    "NOT_IN_OBJECTIVE",
    "AxesToPerm",
    "Matching",
    "Permutation",
    "PermutationError",
    "PermutationSpec",
    "activation_matching",
    "apply_permutation",
    "best_matching",
    "check_same_architecture",
    "identity_permutation",
    "invert_permutation",
    "matching_objective",
    "perm_sizes",
    "permutation_spec_from_axes_to_perm",
    "permute_tensor",
    "random_permutation",
    "visiting_order",
    "weight_matching",
    "weight_matching_restarts",
]

#: BatchNorm running statistics are permuted with their channels, but they are not
#: weights: Git Re-Basin's objective sums over parameters only (flax keeps
#: ``batch_stats`` apart), so weight matching leaves them out of the objective.
NOT_IN_OBJECTIVE = (".running_mean", ".running_var")

# ---------------------------------------------------------------------------
# weight matching


@dataclass(frozen=True)
class Matching:
    """One coordinate-descent run of weight matching from one seeded visiting order.

    ``perm`` is to be applied to B; ``objective`` is :func:`matching_objective`
    of it; ``passes`` the passes over the permutations it took; ``restart`` the
    index of its visiting order.
    """

    perm: Permutation
    objective: float
    passes: int
    restart: int


def matching_objective(
    ps: PermutationSpec,
    perm: Permutation,
    state_a: dict[str, torch.Tensor],
    state_b: dict[str, torch.Tensor],
) -> float:
    """Git Re-Basin's objective ``sum_k <W_a[k], P(W_b)[k]>`` (float64) over the spec's weights.

    ``k`` runs over the state-dict keys the spec declares that have at least one
    permuted axis, BatchNorm running statistics excluded (:data:`NOT_IN_OBJECTIVE`):
    the keys no permutation touches add the same constant to every candidate.
    Computed on the states' device (the CPU for MPS, which has no float64).
    """
    total = 0.0
    for key, axes in ps.axes_to_perm.items():
        if key.endswith(NOT_IN_OBJECTIVE) or all(p is None for p in axes):
            continue
        a = state_a[key]
        wide = float64_device(a.device)
        b = permute_tensor(ps, perm, key, state_b[key])
        total += float((a.to(wide, torch.float64) * b.to(wide, torch.float64)).sum())
    return total


def _units_first(w: torch.Tensor, axis: int) -> torch.Tensor:
    """``w`` as float32 with ``axis`` moved first, contiguous: (n, *other dims)."""
    return w.detach().float().movedim(axis, 0).contiguous()


@dataclass
class _Term:
    """One (key, axis) term of a permutation's weight-matching objective.

    ``a`` and ``b`` are A's and B's weights with the matched axis first; ``others``
    lists, per other permuted axis, its position in ``b`` and its permutation's
    name; ``buffer`` receives B permuted on those axes (no allocation per step).
    """

    a: torch.Tensor
    b: torch.Tensor
    others: list[tuple[int, str]]
    buffer: torch.Tensor


class _Costs:
    """The (n, n) linear-assignment cost of each permutation, given all the others.

    Built once per pair of networks and shared by every visiting order: the
    terms whose other axes are unpermuted are summed once (``fixed``), the rest
    (``moving``) are recomputed from the current permutations at every step.
    Everything lives on the states' device (``device``); :meth:`of` returns the
    cost to the CPU for scipy.
    """

    def __init__(
        self,
        ps: PermutationSpec,
        state_a: dict[str, torch.Tensor],
        state_b: dict[str, torch.Tensor],
        sizes: dict[str, int],
    ) -> None:
        """Split every permutation's terms into the constant part and the moving terms."""
        self.sizes = sizes
        self.device = next(iter(state_a.values())).device if state_a else torch.device("cpu")
        self.fixed: dict[str, torch.Tensor] = {}
        self.moving: dict[str, list[_Term]] = {}
        for p, axes in ps.perm_to_axes.items():
            n = sizes[p]
            self.fixed[p] = torch.zeros(n, n, device=self.device)
            self.moving[p] = []
            for key, axis in axes:
                if key.endswith(NOT_IN_OBJECTIVE):
                    continue
                a = _units_first(state_a[key].to(self.device), axis)
                b = _units_first(state_b[key].to(self.device), axis)
                # position of every other axis once ``axis`` has been moved first
                others = [
                    (ax + 1 if ax < axis else ax, q)
                    for ax, q in enumerate(ps.axes_to_perm[key])
                    if q is not None and ax != axis
                ]
                if others:
                    self.moving[p].append(_Term(a.reshape(n, -1), b, others, torch.empty_like(b)))
                else:
                    self.fixed[p].addmm_(a.reshape(n, -1), b.reshape(n, -1).T)
        #: per permutation, the other permutations its cost depends on (sorted)
        self.deps = {
            p: sorted({q for term in terms for _, q in term.others})
            for p, terms in self.moving.items()
        }
        # Preallocated float32 cost and its float64 copy for scipy, per size.
        self._cost32 = {n: torch.empty(n, n, device=self.device) for n in set(sizes.values())}
        self._cost64 = {n: np.empty((n, n)) for n in set(sizes.values())}

    def of(self, p: str, perm: Permutation) -> np.ndarray:
        """``C[i, j] = sum over p's terms of <A's slice i, B's slice j>`` (n, n), float64.

        B is permuted on every other axis by the current ``perm`` (index tensors on
        :attr:`device`); the returned array is a CPU buffer reused by the next call
        of the same size.
        """
        n = self.sizes[p]
        cost = self._cost32[n]
        cost.copy_(self.fixed[p])
        for term in self.moving[p]:
            b = term.b
            for k, (pos, q) in enumerate(term.others):
                if k == 0:
                    b = torch.index_select(b, pos, perm[q], out=term.buffer)
                else:  # a key with three permuted axes: none of our models has one
                    b = b.index_select(pos, perm[q])
            cost.addmm_(term.a, b.reshape(n, -1).T)
        c = self._cost64[n]
        np.copyto(c, cost.cpu().numpy())
        return c


def visiting_order(seed: int, restart: int, iteration: int, n: int) -> np.ndarray:
    """The order (a permutation of range(n)) in which pass ``iteration`` visits the permutations.

    Restart 0 draws from ``[seed, iteration]``, the order :func:`weight_matching`
    has always used (so best-of-N is never worse than the single order cached
    before); restart r > 0 from ``[seed, iteration, r]``.
    """
    entropy = [seed, iteration] if restart == 0 else [seed, iteration, restart]
    return np.random.default_rng(entropy).permutation(n)


def _coordinate_descent(costs: _Costs, seed: int, restart: int, max_iter: int) -> tuple[dict, int]:
    """One run of Git Re-Basin's coordinate descent from the identity: (perm, passes).

    A step is skipped when none of the permutations its cost depends on changed
    since it was last solved: the same cost gives the same assignment, so the
    result is exactly that of solving it again, and the last, confirming pass
    costs nothing.
    """
    from scipy.optimize import linear_sum_assignment

    names = list(costs.sizes)
    perm = {p: torch.arange(n, dtype=torch.int64) for p, n in costs.sizes.items()}
    on_device = {p: idx.to(costs.device) for p, idx in perm.items()}  # what the costs index by
    version = dict.fromkeys(names, 0)  # bumped whenever perm[p] changes
    solved_at: dict[str, tuple[int, ...]] = {}  # versions of p's dependencies at its last solve
    passes = 0
    for iteration in range(max_iter):
        passes += 1
        changed = False
        for p in (names[i] for i in visiting_order(seed, restart, iteration, len(names))):
            seen = tuple(version[q] for q in costs.deps[p])
            if solved_at.get(p) == seen:
                continue
            solved_at[p] = seen
            c = costs.of(p, on_device)
            rows, cols = linear_sum_assignment(c, maximize=True)
            old = c[rows, perm[p].numpy()].sum()
            new = c[rows, cols].sum()
            if new > old + 1e-12 * max(1.0, abs(old)):
                perm[p] = torch.from_numpy(cols.astype(np.int64))
                on_device[p] = perm[p].to(costs.device)
                version[p] += 1
                changed = True
        if not changed:
            break
    return perm, passes


def weight_matching_restarts(
    ps: PermutationSpec,
    state_a: dict[str, torch.Tensor],
    state_b: dict[str, torch.Tensor],
    *,
    restarts: int,
    seed: int = 0,
    max_iter: int = 100,
) -> list[Matching]:
    """Weight matching from ``restarts`` seeded visiting orders: one :class:`Matching` each.

    Weight matching of Ainsworth, Hayase & Srinivasa 2023 ("Git Re-Basin",
    algorithm 1): maximise ``sum_k <W_a[k], P(W_b)[k]>`` over the permutations by
    coordinate descent. Each step fixes every permutation but one, ``p``, and
    solves a linear assignment (``scipy.optimize.linear_sum_assignment``) on
    ``C[i, j] = sum over (key, axis) of p of <A's slice i, B's slice j>``
    (slices along ``axis``, B permuted on all its other axes by the current
    permutations). Passes visit the permutations in a random order
    (:func:`visiting_order`; samuela/git-re-basin ``src/weight_matching.py``
    draws a fresh random order every pass too) until a full pass changes
    nothing, or ``max_iter`` passes. Works for any spec: tied residual streams
    sum the terms of every key they touch; BatchNorm weight/bias are in the
    objective, running statistics are not (:data:`NOT_IN_OBJECTIVE`).

    Coordinate descent stops at a local optimum that depends on the visiting
    order, so each restart r runs it from the identity with its own orders
    (restart 0 is :func:`weight_matching`'s); :func:`best_matching` picks one.
    Deviation: a step keeps the current permutation unless the assignment
    strictly improves the objective, so ties cannot make it cycle.

    Raises PermutationError if A and B differ in architecture, ValueError if
    ``restarts`` < 1. Deterministic for a seed.
    """
    if restarts < 1:
        raise ValueError(f"restarts must be at least 1, got {restarts}")
    sizes = check_same_architecture(ps, state_a, state_b)
    costs = _Costs(ps, state_a, state_b, sizes)
    out = []
    for r in range(restarts):
        perm, passes = _coordinate_descent(costs, seed, r, max_iter)
        objective = matching_objective(ps, perm, state_a, state_b)
        out.append(Matching(perm=perm, objective=objective, passes=passes, restart=r))
    return out


def best_matching(matchings: list[Matching]) -> Matching:
    """The matching with the largest objective (the lowest restart among exact ties)."""
    return max(matchings, key=lambda m: (m.objective, -m.restart))


def weight_matching(
    ps: PermutationSpec,
    state_a: dict[str, torch.Tensor],
    state_b: dict[str, torch.Tensor],
    *,
    max_iter: int = 100,
    seed: int = 0,
) -> Permutation:
    """The permutation of B's hidden units that best matches B's weights to A's, one order.

    Git Re-Basin's weight matching (Ainsworth et al. 2023, algorithm 1) from a
    single visiting order: restart 0 of :func:`weight_matching_restarts`, which
    documents the algorithm. Returns ``perm`` to apply to B:
    ``apply_permutation(ps, perm, state_b)`` is B aligned to A (convention
    ``new[i] = old[perm[i]]``). Raises PermutationError on different architectures.
    """
    (only,) = weight_matching_restarts(
        ps, state_a, state_b, restarts=1, seed=seed, max_iter=max_iter
    )
    return only.perm


# ---------------------------------------------------------------------------
# activation matching


class _Moments:
    """Running sums for the Pearson correlation of A's and B's channels of one permutation.

    The sums are float64 on ``device`` (the CPU for MPS, which has no float64); the
    samples' products are taken in float32 on their own device.
    """

    def __init__(self, n: int, device: torch.device | None = None) -> None:
        """Zero sums for ``n`` channels (float64)."""
        dev = float64_device(device or torch.device("cpu"))
        self.sum_a = torch.zeros(n, dtype=torch.float64, device=dev)
        self.sum_b = torch.zeros(n, dtype=torch.float64, device=dev)
        self.sq_a = torch.zeros(n, dtype=torch.float64, device=dev)
        self.sq_b = torch.zeros(n, dtype=torch.float64, device=dev)
        self.cross = torch.zeros(n, n, dtype=torch.float64, device=dev)
        self.count = 0
        self.shift: tuple[torch.Tensor, torch.Tensor] | None = None

    def add(self, a: torch.Tensor, b: torch.Tensor) -> None:
        """Accumulate samples a, b (M, n) of A's and B's channels."""
        a, b = a.float(), b.float()
        # Shift by the first batch's means (correlation is shift-invariant): the
        # variance E[a^2] - E[a]^2 then does not cancel, and a constant channel
        # has ~0 variance instead of rounding noise.
        if self.shift is None:
            self.shift = (a.mean(0), b.mean(0))
        a, b = a - self.shift[0], b - self.shift[1]
        dev = self.cross.device
        self.sum_a += a.sum(0).to(dev, torch.float64)
        self.sum_b += b.sum(0).to(dev, torch.float64)
        self.sq_a += (a * a).sum(0).to(dev, torch.float64)
        self.sq_b += (b * b).sum(0).to(dev, torch.float64)
        self.cross += (a.T @ b).to(dev, torch.float64)
        self.count += len(a)

    def correlation(self) -> torch.Tensor:
        """The (n, n) correlation of A's channel i with B's channel j; constant channels ~0."""
        m = max(self.count, 1)
        mean_a, mean_b = self.sum_a / m, self.sum_b / m
        std_a = (self.sq_a / m - mean_a**2).clamp(min=0).sqrt()
        std_b = (self.sq_b / m - mean_b**2).clamp(min=0).sqrt()
        cov = self.cross / m - torch.outer(mean_a, mean_b)
        # A constant channel has std ~0 (up to rounding): floor it so its correlations are ~0.
        floor_a = 1e-6 * max(float(std_a.max()), 1e-30)
        floor_b = 1e-6 * max(float(std_b.max()), 1e-30)
        return cov / torch.outer(std_a.clamp(min=floor_a), std_b.clamp(min=floor_b))


def _collect_moments(
    model_a: nn.Module,
    model_b: nn.Module,
    points: dict[str, str],
    sizes: dict[str, int],
    x: torch.Tensor,
    batch: int,
) -> dict[str, _Moments]:
    """Per permutation, the moments of both networks' outputs at its perm point, over x."""
    moments = {p: _Moments(n, x.device) for p, n in sizes.items()}
    captured: dict[tuple[str, str], torch.Tensor] = {}

    def hook(side: str, p: str):
        """A forward hook that keeps the output of ``side``'s module carrying ``p`` as (M, C)."""

        def store(_module, _inputs, out):
            """Record ``out`` (N, C, ...) as (N * ..., C) samples."""
            captured[(side, p)] = out.movedim(1, -1).reshape(-1, out.shape[1])

        return store

    handles = []
    modes = (model_a.training, model_b.training)
    model_a.eval()
    model_b.eval()
    try:
        for side, model in (("a", model_a), ("b", model_b)):
            for p, module in points.items():
                handles.append(model.get_submodule(module).register_forward_hook(hook(side, p)))
        for xb in x.split(batch):
            model_a(xb)
            model_b(xb)
            for p, m in moments.items():
                m.add(captured[("a", p)], captured[("b", p)])
            captured.clear()
    finally:
        for h in handles:
            h.remove()
        model_a.train(modes[0])
        model_b.train(modes[1])
    return moments


@torch.no_grad()
def activation_matching(
    model_a: nn.Module, model_b: nn.Module, x: torch.Tensor, *, batch: int = 500
) -> Permutation:
    """The permutation of B's hidden units whose activations best correlate with A's.

    Activation matching of Entezari et al. 2022 and Git Re-Basin (Ainsworth et
    al. 2023, section 3.1; Li et al. 2016's correlation-based matching): run both
    networks (eval mode; each has ``permutation_spec()`` and ``perm_points()``)
    on ``x`` (N, C, H, W); at each permutation's ``perm_points()`` module, treat
    the output (N, C) or (N, C, H, W) as N (or N*H*W) samples of C channels,
    compute the (C, C) Pearson correlation between A's and B's channels, and
    solve one ``linear_sum_assignment`` per permutation (maximising total
    correlation). No sequential dependence is needed: the activations are
    functions of the input only, so permuting an earlier layer of B does not
    change what a later layer computes. Constant channels (dead ReLUs)
    correlate 0 with everything. Deterministic: no visiting order. The correlations
    are computed on x's device (the networks must be there), the assignments on the CPU.

    Returns ``perm`` to apply to B (``new[i] = old[perm[i]]``). Raises
    PermutationError if the two networks differ in architecture.
    """
    from scipy.optimize import linear_sum_assignment

    ps = model_a.permutation_spec()
    if ps != model_b.permutation_spec():
        raise PermutationError(
            "the two networks have different architectures (their permutation specs differ): "
            f"{type(model_a).__name__} vs {type(model_b).__name__}"
        )
    sizes = check_same_architecture(ps, model_a.state_dict(), model_b.state_dict())
    moments = _collect_moments(model_a, model_b, model_a.perm_points(), sizes, x, batch)
    perm: Permutation = {}
    for p, m in moments.items():
        rows, cols = linear_sum_assignment(m.correlation().cpu().numpy(), maximize=True)
        assert (rows == np.arange(len(rows))).all()
        perm[p] = torch.from_numpy(cols.astype(np.int64))
    return perm
