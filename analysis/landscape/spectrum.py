"""Hessian spectra: the eigenvalue density (SLQ), per-layer sharpness, extreme eigenvalues.

- :func:`slq` and :func:`spectral_density`: stochastic Lanczos quadrature
  (Ghorbani, Krishnan & Xiao 2019, "An Investigation into Neural Net
  Optimization via Hessian Eigenvalue Density", sec. 3; Golub & Meurant's
  quadrature): per probe, a Rademacher start vector, ``steps`` Lanczos steps
  with full reorthogonalisation, the tridiagonal matrix's eigenvalues (the
  nodes, Ritz values) and the squared first components of its eigenvectors
  (the weights, summing to 1). The density is PyHessian's ``density_generate``
  (Yao et al. 2020, ``density_plot.py``): a Gaussian of variance
  ``sigma_squared * max(1, lambda_max - lambda_min)`` at each node, weighted,
  averaged over probes, on ``bins`` points from the probes' mean smallest node
  minus 0.01 to their mean largest node plus 0.01, normalised to integrate to 1
  on that grid (the mass before normalising is returned too).
- :func:`layer_blocks` and :func:`block_hvp`: the Hessian of one layer's
  parameters (a diagonal block), for the top eigenvalue and trace per layer
  with the existing Lanczos and Hutchinson (:mod:`.sharpness`).
- :func:`extreme_eigenvalues`: lambda_max and lambda_min by
  ``scipy.sparse.linalg.eigsh`` (ARPACK's implicitly restarted Lanczos) on a
  ``LinearOperator`` over the free coordinates. Why scipy: lambda_min of an
  indefinite Hessian lies at the spectrum's crowded end, where fixed-step
  Lanczos gives an unconverged Ritz value and no error bound; ARPACK restarts
  until its residual tolerance is met (``which="SA"``), and says when it is
  not. scipy is already locked; ``hessian-eigenthings`` (PyPI) would add a
  dependency (not in the lock) and itself calls ``eigsh`` for its Lanczos mode.
  Li et al. 2018 (their ``hess_vec_prod.py``) use ``eigsh`` with ``tol=1e-2``.

Devices: the products run where the problem is; start vectors and probes are
drawn from CPU generators seeded by the spec and moved there (the same vectors
on every device); Lanczos bases are float64 on that device (the CPU for MPS);
ARPACK works on CPU float64 numpy vectors, copied to and from the device per
product.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from analysis.device import float64_device
from analysis.errors import PrunescopeError
from analysis.landscape.sharpness import HessianProblem, lanczos_tridiagonal, tridiagonal

#: PyHessian's density defaults (``density_generate``): grid points, relative Gaussian
#: variance, and the margin added beyond the extreme nodes.
DENSITY_BINS = 10_000
SIGMA_SQUARED = 1e-5
OVERHEAD = 0.01

HVP = Callable[[torch.Tensor], torch.Tensor]


@dataclass(frozen=True)
class Quadrature:
    """SLQ nodes and weights: ``nodes`` (probes, steps) Ritz values, ``weights`` (probes, steps).

    A probe whose Lanczos stopped early (an invariant subspace after ``m`` steps)
    is padded with its last node at weight 0, so every row has ``steps`` entries;
    ``steps_used`` (probes,) says how many are real.
    """

    nodes: np.ndarray
    weights: np.ndarray
    steps_used: np.ndarray


def rademacher(dim: int, gen: torch.Generator) -> torch.Tensor:
    """A (dim,) float64 CPU vector of +-1 from the CPU generator ``gen``."""
    return torch.randint(0, 2, (dim,), generator=gen).to(torch.float64) * 2 - 1


def slq(
    hvp: HVP, dim: int, probes: int, steps: int, gen: torch.Generator, mask: torch.Tensor
) -> Quadrature:
    """Stochastic Lanczos quadrature of a symmetric operator (Ghorbani et al. 2019, as PyHessian).

    ``probes`` Rademacher start vectors (masked by ``mask`` (dim,), normalised),
    each ``min(steps, free)`` Lanczos steps; the nodes are the tridiagonal
    matrix's eigenvalues, the weights the squares of its eigenvectors' first
    components. Probes come from the CPU generator ``gen`` and move to the
    mask's device.

    Raises:
        PrunescopeError: a Hessian-vector product gave NaN or inf, or the mask is empty.
    """
    dev = mask.device
    wide = float64_device(dev)
    free = int(mask.sum())
    if free == 0:
        raise PrunescopeError("the Hessian has no free parameters (every weight is masked)")
    m = min(steps, free)
    nodes, weights, used = np.zeros((probes, m)), np.zeros((probes, m)), np.zeros(probes, int)
    for i in range(probes):
        v = rademacher(dim, gen).to(wide) * mask.to(wide, torch.float64)
        alphas, betas = lanczos_tridiagonal(hvp, v / v.norm(), m, dev)
        theta, vecs = torch.linalg.eigh(tridiagonal(alphas, betas))
        k = len(alphas)
        nodes[i, :k], weights[i, :k], used[i] = theta.numpy(), (vecs[0] ** 2).numpy(), k
        nodes[i, k:] = nodes[i, k - 1]  # padding at weight 0 (see Quadrature)
    return Quadrature(nodes, weights, used)


def spectral_density(
    quad: Quadrature,
    bins: int = DENSITY_BINS,
    sigma_squared: float = SIGMA_SQUARED,
    overhead: float = OVERHEAD,
) -> tuple[np.ndarray, np.ndarray, float]:
    """PyHessian's ``density_generate``: (grid (bins,), density (bins,), mass before normalising).

    Each node is a Gaussian of variance ``sigma_squared * max(1, range)`` (the
    grid's range), weighted by its quadrature weight; probes are averaged; the
    density is divided by its Riemann sum ``sum(density) * step``, so it
    integrates to 1 on the grid. The mass before that division says how much of
    the smoothed spectrum the grid holds (close to 1 unless sigma is wide).
    """
    lam_max = float(quad.nodes.max(axis=1).mean()) + overhead
    lam_min = float(quad.nodes.min(axis=1).mean()) - overhead
    grid = np.linspace(lam_min, lam_max, bins)
    var = sigma_squared * max(1.0, lam_max - lam_min)
    density = np.zeros(bins)
    for nodes, weights in zip(quad.nodes, quad.weights, strict=True):
        for lo in range(0, bins, 1000):  # (1000, steps) blocks keep memory small
            diff = grid[lo : lo + 1000, None] - nodes[None, :]
            gauss = np.exp(-(diff**2) / (2.0 * var)) / math.sqrt(2.0 * math.pi * var)
            density[lo : lo + 1000] += gauss @ weights
    density /= len(quad.nodes)
    mass = float(density.sum() * (grid[1] - grid[0]))
    return grid, density / mass, mass


def pooled(grid: np.ndarray, density: np.ndarray, points: int) -> tuple[np.ndarray, np.ndarray]:
    """The density averaged over ``points`` runs of consecutive bins (their centres, means).

    A coarser histogram of the same curve, for the summary: sizes differ by at
    most one bin, and ``sum(mean * bins in the run) * step`` is the fine curve's
    Riemann sum (1).
    """
    runs = np.array_split(np.arange(len(grid)), min(points, len(grid)))
    return (np.array([grid[r].mean() for r in runs]), np.array([density[r].mean() for r in runs]))


# -- per layer ------------------------------------------------------------------------------


def layer_blocks(prob: HessianProblem) -> dict[str, torch.Tensor]:
    """Per layer (module name), the (dim,) 0/1 mask of its free parameters in ``prob``'s vector.

    A layer is a module's parameters together (``fc1.weight`` and ``fc1.bias``
    make ``fc1``), in ``prob.names`` order; a layer left with no free parameter
    (every weight pruned) is left out.
    """
    out: dict[str, torch.Tensor] = {}
    offset = 0
    for name in prob.names:
        k = prob.params[name].numel()
        layer = name.rsplit(".", 1)[0] if "." in name else name
        block = out.setdefault(layer, torch.zeros_like(prob.mask))
        block[offset : offset + k] = 1.0
        offset += k
    masked = {layer: block * prob.mask for layer, block in out.items()}
    return {layer: block for layer, block in masked.items() if block.sum() > 0}


def block_hvp(prob: HessianProblem, block: torch.Tensor) -> HVP:
    """Products with the diagonal block of ``prob``'s Hessian on ``block`` (masked both sides)."""
    return lambda v: prob.hvp(v * block) * block


# -- extreme eigenvalues ----------------------------------------------------------------------


@dataclass(frozen=True)
class Extremes:
    """lambda_max, lambda_min (NaN where ARPACK returned nothing), whether each converged, HVPs."""

    lambda_max: float
    lambda_min: float
    converged: tuple[bool, bool]
    hvps: int

    @property
    def ratio(self) -> float:
        """Li et al. 2018's ``|lambda_min / lambda_max|`` (NaN without both, inf for lambda_max 0)."""
        if not (math.isfinite(self.lambda_max) and math.isfinite(self.lambda_min)):
            return math.nan
        return abs(self.lambda_min / self.lambda_max) if self.lambda_max else math.inf


def extreme_eigenvalues(
    prob: HessianProblem, gen: torch.Generator, *, tol: float, maxiter: int
) -> Extremes:
    """lambda_max ('LA') and lambda_min ('SA') of ``prob``'s Hessian on its free coordinates.

    ``scipy.sparse.linalg.eigsh`` on a ``LinearOperator`` of size (free, free):
    the Hessian restricted to the unmasked coordinates (so pruned weights add no
    zero eigenvalues), relative tolerance ``tol``, at most ``maxiter`` restarts.
    The start vector is drawn from the CPU generator ``gen`` (float64). A run that
    does not converge keeps ARPACK's best value and says so (``converged``).

    Raises:
        PrunescopeError: a Hessian-vector product gave NaN or inf, or nothing is free.
    """
    from scipy.sparse.linalg import ArpackNoConvergence, LinearOperator, eigsh

    idx = prob.mask.nonzero().squeeze(1)
    n = len(idx)
    if n == 0:
        raise PrunescopeError("the Hessian has no free parameters (every weight is masked)")
    count = 0

    def matvec(x: np.ndarray) -> np.ndarray:
        """H x on the free coordinates (float64 numpy in and out; float32 on the device)."""
        nonlocal count
        count += 1
        v = torch.zeros(prob.dim, device=prob.device)
        v[idx] = torch.from_numpy(np.ascontiguousarray(x).ravel()).to(prob.device, torch.float32)
        out = prob.hvp(v)[idx].to("cpu", torch.float64).numpy()
        if not np.isfinite(out).all():
            raise PrunescopeError("a Hessian-vector product gave NaN or inf (eigsh)")
        return out

    if n < 3:  # ARPACK needs room for its basis: a 1x1 or 2x2 matrix is built directly
        h = np.stack([matvec(e) for e in np.eye(n)], axis=1)
        vals = np.linalg.eigvalsh((h + h.T) / 2)
        return Extremes(float(vals[-1]), float(vals[0]), (True, True), count)
    op = LinearOperator((n, n), matvec=matvec, dtype=np.float64)
    v0 = torch.randn(n, generator=gen, dtype=torch.float64).numpy()
    out, ok = [], []
    for which in ("LA", "SA"):
        try:
            out.append(float(eigsh(op, k=1, which=which, tol=tol, maxiter=maxiter, v0=v0)[0][0]))
            ok.append(True)
        except ArpackNoConvergence as err:
            out.append(float(err.eigenvalues[0]) if len(err.eigenvalues) else math.nan)
            ok.append(False)
    return Extremes(out[0], out[1], (ok[0], ok[1]), count)
