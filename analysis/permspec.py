"""Permutation symmetries of a network's hidden units, and applying them to a state dict.

Permuting the hidden units of a layer (its output rows, and the matching input
columns of the next layer) leaves the function unchanged (Hecht-Nielsen 1990).
A :class:`PermutationSpec` declares, for every state-dict key, which named
permutation acts on each of its axes, following the layout of
``samuela/git-re-basin`` ``src/weight_matching.py``. A permutation is an int64
index tensor ``perm[p]`` of length ``n`` with the convention
``new[i] = old[perm[p][i]]`` along every axis it acts on.

This module sits below both the models (which declare their specs with it) and
the matchers in ``analysis.permutation`` (which search over permutations), so
neither of those imports the other.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from analysis.errors import PrunescopeError

#: A permutation per name: int64 index tensors, ``new[i] = old[perm[name][i]]``.
Permutation = dict[str, torch.Tensor]

#: Per state-dict key, the permutation name (or None) acting on each of its axes.
AxesToPerm = dict[str, tuple[str | None, ...]]


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


def permutation_spec_from_axes_to_perm(axes_to_perm: AxesToPerm) -> PermutationSpec:
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
