"""Planes through networks: the plane of three networks, and the PCA plane of a training path.

- :func:`model_plane`: origin A, ``u = B - A``, ``v`` the part of ``C - A``
  orthogonal to u, scaled to ``||u||``; coordinates in units of ``||B - A||``.
- :func:`trajectory_plane`: Li et al. 2018, sec. 7, as their reference code
  (github.com/tomgoldstein/loss-landscape, ``projection.py``) computes it: the
  rows ``w_t - w_final`` of every snapshot go through scikit-learn's (centred)
  ``PCA(n_components=2)``; its two components are the axes and its
  ``explained_variance_ratio_`` is reported; each snapshot's coordinates are the
  projections of ``w_t - w_final`` onto the axes (their ``project_2D``, "cos").
"""

from __future__ import annotations

import numpy as np
import torch

from analysis.errors import PrunescopeError, SpecError
from analysis.landscape.directions import Params
from analysis.permutation import PermutationError


def flat(params: Params, names: list[str]) -> torch.Tensor:
    """Concatenate the named tensors into one float64 vector (P,)."""
    return torch.cat([params[n].detach().double().flatten() for n in names])


def unflat(vec: torch.Tensor, like: Params, names: list[str]) -> Params:
    """Split a vector (P,) back into tensors shaped like ``like`` (in ``like``'s dtypes)."""
    out, i = {}, 0
    for n in names:
        k = like[n].numel()
        out[n] = vec[i : i + k].view(like[n].shape).to(like[n].dtype)
        i += k
    return out


def model_plane(a: Params, b: Params, c: Params) -> tuple[list[Params], np.ndarray]:
    """The plane through A, B and C: origin A, orthonormal-by-scale basis (u, v).

    ``u = B - A`` and ``v`` the part of ``C - A`` orthogonal to u (Gram-Schmidt),
    rescaled to ``||u||``, so coordinates are in units of ``||B - A||``: A is
    (0, 0), B is (1, 0). Returns ([u, v], coords (3, 2) of A, B, C). Raises
    PermutationError unless the three have the same keys and shapes, or when
    they span no plane.
    """
    for other in (b, c):
        _same_shapes(a, other)
    names = sorted(a)
    xa, xb, xc = flat(a, names), flat(b, names), flat(c, names)
    u = xb - xa
    norm = u.norm()
    if norm == 0:
        raise PermutationError("the plane needs A != B: the two networks are identical")
    w = xc - xa
    v = w - (w @ u) / (norm * norm) * u
    if v.norm() == 0:
        raise PermutationError("the three networks are collinear: they span no plane")
    v = v / v.norm() * norm
    coords = np.array([[0.0, 0.0], [1.0, 0.0], [float(w @ u / norm**2), float(w @ v / norm**2)]])
    return [unflat(u, a, names), unflat(v, a, names)], coords


def _same_shapes(a: Params, b: Params) -> None:
    """PermutationError unless ``a`` and ``b`` have the same keys and shapes."""
    if set(a) != set(b) or any(a[k].shape != b[k].shape for k in a):
        raise PermutationError(
            "the networks of a plane must have the same architecture: keys or shapes differ "
            f"({sorted(set(a) ^ set(b))[:5] or [k for k in a if a[k].shape != b[k].shape][:5]})"
        )


def trajectory_plane(
    snapshots: list[Params], final: Params
) -> tuple[list[Params], np.ndarray, np.ndarray]:
    """PCA plane of a training path around the final weights (Li et al. 2018, sec. 7).

    ``snapshots``: T state dicts (the final one included, as in Li et al.'s
    code); ``final``: the origin. Rows ``w_t - w_final`` (T, P) in float64 go
    through ``sklearn.decomposition.PCA(n_components=2, svd_solver="full")``
    (centred). Returns ([d1, d2] unit-norm axes shaped like ``final``, path
    coords (T, 2) = ``(w_t - w_final) . d``, PCA's explained_variance_ratio_
    (2,)). With T = 2 the second axis carries no variance (ratio 0).

    Raises:
        SpecError: fewer than 2 snapshots.
        PrunescopeError: the path does not move (all snapshots equal).
    """
    from sklearn.decomposition import PCA

    names = sorted(final)
    end = flat(final, names)
    rows = torch.stack([flat(s, names) - end for s in snapshots]).numpy()
    if len(rows) < 2:
        raise SpecError(
            "run.trajectory", "at least 2 snapshots besides the final weights", len(rows)
        )
    if not np.isfinite(rows).all():
        raise PrunescopeError("the training trajectory holds NaN or inf weights: no PCA plane")
    if not np.ptp(rows, axis=0).any():
        raise PrunescopeError(
            f"the training path does not move: its {len(rows)} snapshots are identical"
        )
    pca = PCA(n_components=2, svd_solver="full").fit(rows)
    basis = np.asarray(pca.components_, dtype=np.float64)  # (2, P), unit rows
    coords = rows @ basis.T
    ratio = np.asarray(pca.explained_variance_ratio_, dtype=np.float64)
    axes = [unflat(torch.from_numpy(basis[k].copy()), final, names) for k in range(2)]
    return axes, coords, ratio


def box_axes(coords: np.ndarray, grid: int, margin: float) -> tuple[np.ndarray, np.ndarray]:
    """Two axes (grid,) covering ``coords`` (K, 2) plus ``margin`` of the extent on each side."""
    axes = []
    for k in range(2):
        lo, hi = float(coords[:, k].min()), float(coords[:, k].max())
        extent = max(hi - lo, 1e-3 * max(abs(lo), abs(hi), 1.0))
        axes.append(np.linspace(lo - margin * extent, hi + margin * extent, grid))
    return axes[0], axes[1]
