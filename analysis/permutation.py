"""Permutation symmetries of a network's hidden units, and applying them to a state dict.

Permuting the hidden units of a layer (its output rows, and the matching input
columns of the next layer) leaves the function unchanged (Hecht-Nielsen 1990).
Git Re-Basin (Ainsworth, Hayase & Srinivasa 2023) aligns two networks by
searching over these permutations; Entezari et al. (2022) conjecture that, after
alignment, SGD solutions are linearly mode-connected.

A :class:`PermutationSpec` declares, for every state-dict key, which named
permutation acts on each of its axes, following the layout of
``samuela/git-re-basin`` ``src/weight_matching.py``. A permutation is an int64
index tensor ``perm[p]`` of length ``n`` with the convention
``new[i] = old[perm[p][i]]`` along every axis it acts on.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch

from analysis.errors import PrunescopeError

if TYPE_CHECKING:  # analysis.models imports this module: no runtime import back
    from analysis.models.base import PrunableNet

#: A permutation per name: int64 index tensors, ``new[i] = old[perm[name][i]]``.
Permutation = dict[str, torch.Tensor]


class PermutationError(PrunescopeError):
    """A permutation spec, a permutation or a state dict do not fit together."""


@dataclass(frozen=True)
class PermutationSpec:
    """Which named permutation acts on which axis of which state-dict key.

    ``perm_to_axes[p]`` lists the (key, axis) pairs permutation ``p`` acts on;
    ``axes_to_perm[key]`` has one entry per axis of ``key``: a permutation name
    or ``None``. Keys whose every entry is ``None`` are allowed (e.g. the head's
    bias): they document that the key was considered and is invariant.
    """

    perm_to_axes: dict[str, tuple[tuple[str, int], ...]]
    axes_to_perm: dict[str, tuple[str | None, ...]]


def permutation_spec_from_axes_to_perm(
    axes_to_perm: dict[str, tuple[str | None, ...]],
) -> PermutationSpec:
    """Build a spec from per-key axis declarations, deriving ``perm_to_axes``."""
    perm_to_axes: dict[str, list[tuple[str, int]]] = {}
    for key, axis_perms in axes_to_perm.items():
        named = [p for p in axis_perms if p is not None]
        # Weight matching solves one assignment per permutation with all other
        # axes fixed; a permutation on two axes of one array would make that
        # problem quadratic rather than linear, so forbid it (as Git Re-Basin does).
        if len(named) != len(set(named)):
            raise PermutationError(
                f"state-dict key {key!r} uses the same permutation on two axes: {axis_perms}"
            )
        for axis, p in enumerate(axis_perms):
            if p is not None:
                perm_to_axes.setdefault(p, []).append((key, axis))
    return PermutationSpec(
        perm_to_axes={p: tuple(axes) for p, axes in perm_to_axes.items()},
        axes_to_perm={k: tuple(v) for k, v in axes_to_perm.items()},
    )


def perm_sizes(ps: PermutationSpec, state: dict[str, torch.Tensor]) -> dict[str, int]:
    """The length of every permutation in ``ps``, checked against every axis it acts on."""
    missing = sorted(k for k in ps.axes_to_perm if k not in state)
    if missing:
        raise PermutationError(
            f"the permutation spec names {len(missing)} key(s) absent from the state dict: "
            f"{', '.join(missing[:8])}{' ...' if len(missing) > 8 else ''}"
        )
    for key, axis_perms in ps.axes_to_perm.items():
        if len(axis_perms) != state[key].dim():
            raise PermutationError(
                f"the permutation spec declares {len(axis_perms)} axes for {key!r}, "
                f"but it has shape {tuple(state[key].shape)}"
            )
    sizes: dict[str, int] = {}
    for p, axes in ps.perm_to_axes.items():
        found = {(key, axis): state[key].shape[axis] for key, axis in axes}
        if len(set(found.values())) != 1:
            listed = ", ".join(f"{k}[axis {a}]={n}" for (k, a), n in found.items())
            raise PermutationError(f"permutation {p!r} acts on axes of different sizes: {listed}")
        sizes[p] = next(iter(found.values()))
    return sizes


def identity_permutation(ps: PermutationSpec, state: dict[str, torch.Tensor]) -> Permutation:
    """The identity permutation for every name in ``ps``: ``arange(n)``, shape (n,)."""
    return {p: torch.arange(n, dtype=torch.int64) for p, n in perm_sizes(ps, state).items()}


def random_permutation(
    ps: PermutationSpec, state: dict[str, torch.Tensor], generator: torch.Generator
) -> Permutation:
    """A uniformly random permutation for every name in ``ps`` (spec order), each shape (n,)."""
    return {
        p: torch.randperm(n, generator=generator, dtype=torch.int64)
        for p, n in perm_sizes(ps, state).items()
    }


def _check_is_permutation(name: str, idx: torch.Tensor) -> None:
    """Raise PermutationError unless ``idx`` (shape (n,)) is an int64 permutation of range(n)."""
    if idx.dim() != 1 or idx.dtype != torch.int64:
        raise PermutationError(
            f"permutation {name!r} must be a 1-D int64 tensor, got shape "
            f"{tuple(idx.shape)} and dtype {idx.dtype}"
        )
    if not torch.equal(torch.sort(idx.cpu()).values, torch.arange(idx.numel())):
        raise PermutationError(f"permutation {name!r} is not a permutation of 0..{idx.numel() - 1}")


def invert_permutation(perm: Permutation) -> Permutation:
    """The inverse of every permutation: ``apply(inv, apply(perm, s)) == s``."""
    inverse: Permutation = {}
    for p, idx in perm.items():
        _check_is_permutation(p, idx)
        inv = torch.empty_like(idx)
        inv[idx] = torch.arange(idx.numel(), dtype=idx.dtype, device=idx.device)
        inverse[p] = inv
    return inverse


def permute_tensor(
    ps: PermutationSpec, perm: Permutation, key: str, value: torch.Tensor
) -> torch.Tensor:
    """``value`` (the tensor stored under ``key``) with every declared axis permuted."""
    axis_perms = ps.axes_to_perm[key]
    if len(axis_perms) != value.dim():
        raise PermutationError(
            f"the permutation spec declares {len(axis_perms)} axes for {key!r}, "
            f"but the tensor has shape {tuple(value.shape)}"
        )
    for axis, p in enumerate(axis_perms):
        if p is None:
            continue
        if p not in perm:
            raise PermutationError(f"no permutation named {p!r} (needed by {key!r}) was given")
        idx = perm[p]
        if idx.numel() != value.shape[axis]:
            raise PermutationError(
                f"permutation {p!r} has length {idx.numel()} but axis {axis} of {key!r} "
                f"has size {value.shape[axis]}"
            )
        value = value.index_select(axis, idx.to(value.device))
    return value


def apply_permutation(
    ps: PermutationSpec, perm: Permutation, state: dict[str, torch.Tensor]
) -> dict[str, torch.Tensor]:
    """A new dict: every key of ``state`` in the spec permuted, every other key unchanged.

    ``state`` may hold any subset of the spec's keys, so a dict of pruning masks
    keyed by parameter names is permuted exactly like the weights it masks.
    """
    for p, idx in perm.items():
        _check_is_permutation(p, idx)
    return {
        key: permute_tensor(ps, perm, key, value) if key in ps.axes_to_perm else value
        for key, value in state.items()
    }


# ---------------------------------------------------------------------------
# alignment: weight matching and activation matching

#: BatchNorm running statistics are permuted with their channels, but they are not
#: weights: Git Re-Basin's objective sums over parameters only (flax keeps
#: ``batch_stats`` apart), so weight matching leaves them out of the objective.
NOT_IN_OBJECTIVE = (".running_mean", ".running_var")


def check_same_architecture(
    ps: PermutationSpec, state_a: dict[str, torch.Tensor], state_b: dict[str, torch.Tensor]
) -> dict[str, int]:
    """The permutation sizes, or PermutationError unless A and B have the same keys and shapes."""
    sizes = perm_sizes(ps, state_a)
    only_a = sorted(set(state_a) - set(state_b))
    only_b = sorted(set(state_b) - set(state_a))
    if only_a or only_b:
        raise PermutationError(
            "the two networks have different architectures: keys only in A: "
            f"{only_a[:5] or 'none'}, keys only in B: {only_b[:5] or 'none'}"
        )
    clashes = [
        f"{k}: {tuple(state_a[k].shape)} vs {tuple(state_b[k].shape)}"
        for k in state_a
        if state_a[k].shape != state_b[k].shape
    ]
    if clashes:
        raise PermutationError(
            "the two networks have different architectures (shapes differ): "
            + "; ".join(clashes[:5])
        )
    return sizes


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


def _objective_terms(
    ps: PermutationSpec, state_a: dict[str, torch.Tensor], state_b: dict[str, torch.Tensor]
) -> tuple[dict[str, torch.Tensor], dict[str, list[_Term]]]:
    """Per permutation: the constant part of its (n, n) cost and its terms that move."""
    fixed: dict[str, torch.Tensor] = {}
    moving: dict[str, list[_Term]] = {}
    for p, axes in ps.perm_to_axes.items():
        n = state_a[axes[0][0]].shape[axes[0][1]]
        fixed[p] = torch.zeros(n, n)
        moving[p] = []
        for key, axis in axes:
            if key.endswith(NOT_IN_OBJECTIVE):
                continue
            a = _units_first(state_a[key], axis)
            b = _units_first(state_b[key], axis)
            # position of every other axis once ``axis`` has been moved first
            others = [
                (ax + 1 if ax < axis else ax, q)
                for ax, q in enumerate(ps.axes_to_perm[key])
                if q is not None and ax != axis
            ]
            if others:
                moving[p].append(_Term(a.reshape(n, -1), b, others, torch.empty_like(b)))
            else:
                fixed[p].addmm_(a.reshape(n, -1), b.reshape(n, -1).T)
    return fixed, moving


def weight_matching(
    ps: PermutationSpec,
    state_a: dict[str, torch.Tensor],
    state_b: dict[str, torch.Tensor],
    *,
    max_iter: int = 100,
    seed: int = 0,
) -> Permutation:
    """The permutation of B's hidden units that best matches B's weights to A's.

    Weight matching of Ainsworth, Hayase & Srinivasa 2023 ("Git Re-Basin",
    algorithm 1): maximise ``sum_k <W_a[k], P(W_b)[k]>`` over the permutations by
    coordinate descent. Each step fixes every permutation but one, ``p``, and
    solves a linear assignment (``scipy.optimize.linear_sum_assignment``) on
    ``C[i, j] = sum over (key, axis) of p of <A's slice i, B's slice j>``
    (slices along ``axis``, B permuted on all its other axes by the current
    permutations). Passes visit the permutations in a random order (seeded by
    ``seed`` and the pass number) until a full pass changes nothing, or
    ``max_iter`` passes. Works for any spec: tied residual streams sum the terms
    of every key they touch; BatchNorm weight/bias are in the objective, running
    statistics are not (:data:`NOT_IN_OBJECTIVE`, as in Git Re-Basin).

    Deviation: a step keeps the current permutation unless the assignment
    strictly improves the objective, so ties cannot make it cycle.

    Returns ``perm`` to apply to B: ``apply_permutation(ps, perm, state_b)`` is B
    aligned to A (convention ``new[i] = old[perm[i]]``).
    """
    import numpy as np
    from scipy.optimize import linear_sum_assignment

    sizes = check_same_architecture(ps, state_a, state_b)
    names = list(sizes)
    perm = {p: torch.arange(n, dtype=torch.int64) for p, n in sizes.items()}
    fixed, moving = _objective_terms(ps, state_a, state_b)
    # Preallocated float32 cost and its float64 copy for scipy, per size.
    cost32 = {n: torch.empty(n, n) for n in set(sizes.values())}
    cost64 = {n: np.empty((n, n)) for n in set(sizes.values())}
    for iteration in range(max_iter):
        changed = False
        order = np.random.default_rng([seed, iteration]).permutation(len(names))
        for p in (names[i] for i in order):
            n = sizes[p]
            cost = cost32[n]
            cost.copy_(fixed[p])
            for term in moving[p]:
                b = term.b
                for k, (pos, q) in enumerate(term.others):
                    if k == 0:
                        b = torch.index_select(b, pos, perm[q], out=term.buffer)
                    else:  # a key with three permuted axes: none of our models has one
                        b = b.index_select(pos, perm[q])
                cost.addmm_(term.a, b.reshape(n, -1).T)
            c = cost64[n]
            np.copyto(c, cost.numpy())
            rows, cols = linear_sum_assignment(c, maximize=True)
            old = c[rows, perm[p].numpy()].sum()
            new = c[rows, cols].sum()
            if new > old + 1e-12 * max(1.0, abs(old)):
                perm[p] = torch.from_numpy(cols.astype(np.int64))
                changed = True
        if not changed:
            break
    return perm


@torch.no_grad()
def activation_matching(
    model_a: PrunableNet, model_b: PrunableNet, x: torch.Tensor, *, batch: int = 500
) -> Permutation:
    """The permutation of B's hidden units whose activations best correlate with A's.

    Activation matching of Entezari et al. 2022 and Git Re-Basin (Ainsworth et
    al. 2023, section 3.1; Li et al. 2016's correlation-based matching): run both
    networks (eval mode) on ``x`` (N, C, H, W); at each permutation's
    ``perm_points()`` module, treat the output (N, C) or (N, C, H, W) as N (or
    N*H*W) samples of C channels, compute the (C, C) Pearson correlation between
    A's and B's channels, and solve one ``linear_sum_assignment`` per permutation
    (maximising total correlation). No sequential dependence is needed: the
    activations are functions of the input only, so permuting an earlier layer
    of B does not change what a later layer computes. Constant channels (dead
    ReLUs) correlate 0 with everything.

    Returns ``perm`` to apply to B (``new[i] = old[perm[i]]``).
    """
    import numpy as np
    from scipy.optimize import linear_sum_assignment

    ps = model_a.permutation_spec()
    if ps != model_b.permutation_spec():
        raise PermutationError(
            "the two networks have different architectures (their permutation specs differ): "
            f"{type(model_a).__name__} vs {type(model_b).__name__}"
        )
    sizes = check_same_architecture(ps, model_a.state_dict(), model_b.state_dict())
    points = model_a.perm_points()
    stats = {
        p: {
            "sum_a": torch.zeros(n, dtype=torch.float64),
            "sum_b": torch.zeros(n, dtype=torch.float64),
            "sq_a": torch.zeros(n, dtype=torch.float64),
            "sq_b": torch.zeros(n, dtype=torch.float64),
            "cross": torch.zeros(n, n, dtype=torch.float64),
            "count": 0,
        }
        for p, n in sizes.items()
    }
    captured: dict[tuple[str, str], torch.Tensor] = {}

    def hook(side: str, p: str):
        def store(_module, _inputs, out):
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
            for p, s in stats.items():
                a, b = captured[("a", p)].float(), captured[("b", p)].float()
                # Shift by the first batch's means (correlation is shift-invariant): the
                # variance E[a^2] - E[a]^2 then does not cancel, and a constant channel
                # has ~0 variance instead of rounding noise.
                if "shift_a" not in s:
                    s["shift_a"], s["shift_b"] = a.mean(0), b.mean(0)
                a, b = a - s["shift_a"], b - s["shift_b"]
                s["sum_a"] += a.sum(0).double()
                s["sum_b"] += b.sum(0).double()
                s["sq_a"] += (a * a).sum(0).double()
                s["sq_b"] += (b * b).sum(0).double()
                s["cross"] += (a.T @ b).double()
                s["count"] += len(a)
            captured.clear()
    finally:
        for h in handles:
            h.remove()
        model_a.train(modes[0])
        model_b.train(modes[1])
    perm: Permutation = {}
    for p, s in stats.items():
        m = max(s["count"], 1)
        mean_a, mean_b = s["sum_a"] / m, s["sum_b"] / m
        std_a = (s["sq_a"] / m - mean_a**2).clamp(min=0).sqrt()
        std_b = (s["sq_b"] / m - mean_b**2).clamp(min=0).sqrt()
        cov = s["cross"] / m - torch.outer(mean_a, mean_b)
        # A constant channel has std ~0 (up to rounding): floor it so its correlations are ~0.
        floor_a = 1e-6 * max(float(std_a.max()), 1e-30)
        floor_b = 1e-6 * max(float(std_b.max()), 1e-30)
        corr = cov / torch.outer(std_a.clamp(min=floor_a), std_b.clamp(min=floor_b))
        rows, cols = linear_sum_assignment(corr.numpy(), maximize=True)
        assert (rows == np.arange(len(rows))).all()
        perm[p] = torch.from_numpy(cols.astype(np.int64))
    return perm
