"""Sharpness: top Hessian eigenvalues (Lanczos) and the Hessian trace (Hutchinson) from HVPs.

Hessian-vector products of the mean cross-entropy on a fixed batch come from
``torch.func`` (``jvp`` of ``grad``), at the trained network's own weights with
its own BatchNorm statistics (eval mode). The trace's Rademacher probes are
added until the estimate's relative standard error reaches a target (or a most
probes), and the error reached is reported beside the trace.

Devices: the products run where the model and batch are (the caller moves them
to ``ctx.device``); the Lanczos start vector and the trace's probes are drawn
from CPU generators seeded by the spec and moved there (the same vectors on
every device); the Lanczos basis is float64 on that device (the CPU for MPS).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from analysis.device import float64_device
from analysis.errors import PrunescopeError
from analysis.landscape.directions import Params
from analysis.sparsity.base import Masks

#: Probes the Hutchinson estimate always takes before its error is trusted.
MIN_PROBES = 10


@dataclass
class HessianProblem:
    """Hessian-vector products of the mean cross-entropy of ``model`` on (x, y).

    Over every parameter (flattened in name order); with ``masks`` the vectors
    are masked, i.e. the Hessian restricted to the surviving weights (pruned
    coordinates give 0). BatchNorm in eval mode (the network's own statistics).
    Computed on the model's device (x, y and the masks are moved there).
    """

    model: nn.Module
    x: torch.Tensor
    y: torch.Tensor
    masks: Masks | None = None

    def __post_init__(self) -> None:
        """Flatten the parameters and build the mask vector."""
        from torch.func import functional_call, grad, jvp

        self.model = self.model.eval()
        named = dict(self.model.named_parameters())
        self.device = next(iter(named.values())).device
        self.x, self.y = self.x.to(self.device), self.y.to(self.device)
        self.names = sorted(named)  # jvp needs primals and tangents in one key order
        self.params = {n: named[n].detach() for n in self.names}
        self.buffers = dict(self.model.named_buffers())
        self.dim = sum(self.params[n].numel() for n in self.names)
        masks = self.masks or {}
        self.mask = torch.cat(
            [
                (masks[n].to(self.device) if n in masks else torch.ones_like(self.params[n]))
                .float()
                .flatten()
                for n in self.names
            ]
        )

        def loss(p: Params) -> torch.Tensor:
            """Mean cross-entropy with parameters ``p``."""
            out = functional_call(self.model, (p, self.buffers), (self.x,))
            return F.cross_entropy(out, self.y)

        def hvp(v: Params) -> Params:
            """Forward-over-reverse Hessian-vector product."""
            return jvp(grad(loss), (self.params,), (v,))[1]

        self._hvp = hvp

    def hvp(self, v: torch.Tensor) -> torch.Tensor:
        """H v for a flat (dim,) vector (masked on both sides)."""
        v = v * self.mask
        out = self._hvp(unflat_f32(v, self.params, self.names))
        return torch.cat([out[n].flatten() for n in self.names]) * self.mask


def unflat_f32(vec: torch.Tensor, like: Params, names: list[str]) -> Params:
    """Split a flat (P,) vector into float32 tensors shaped like ``like``."""
    out, i = {}, 0
    for n in names:
        k = like[n].numel()
        out[n] = vec[i : i + k].view(like[n].shape).float()
        i += k
    return out


def lanczos_top(
    hvp: Callable[[torch.Tensor], torch.Tensor],
    dim: int,
    k: int,
    iters: int,
    gen: torch.Generator,
    mask: torch.Tensor | None = None,
    device: torch.device | None = None,
) -> list[float]:
    """Top-``k`` (largest algebraic) eigenvalues of a symmetric operator by Lanczos.

    Lanczos (1950) with full reorthogonalisation (float64 basis), ``iters``
    steps (at most ``dim``), Ritz values from ``torch.linalg.eigvalsh`` of the
    tridiagonal matrix. Stops early on an invariant subspace. The start vector is
    drawn from the CPU generator ``gen`` and moved to ``device`` (default: the
    mask's, else the CPU), where the basis lives (float64; the CPU for MPS); ``hvp``
    takes and returns float32 vectors on ``device``.

    Raises:
        PrunescopeError: a Hessian-vector product gave NaN or inf.
    """
    m = min(iters, dim)
    dev = torch.device(device or (mask.device if mask is not None else "cpu"))
    wide = float64_device(dev)
    v = torch.randn(dim, generator=gen, dtype=torch.float64).to(wide)
    if mask is not None:
        v = v * mask.to(wide, torch.float64)
    alphas, betas = lanczos_tridiagonal(hvp, v / v.norm(), m, dev)
    ritz = torch.linalg.eigvalsh(tridiagonal(alphas, betas)).flip(0)
    return [float(r) for r in ritz[:k]]


def lanczos_tridiagonal(
    hvp: Callable[[torch.Tensor], torch.Tensor],
    start: torch.Tensor,
    steps: int,
    device: torch.device,
) -> tuple[list[float], list[float]]:
    """The Lanczos (1950) tridiagonal matrix's diagonal and off-diagonal after ``steps`` steps.

    ``start``: the unit start vector (dim,), float64, where the basis lives (the
    CPU for MPS). Full reorthogonalisation; stops early on an invariant subspace
    (then fewer than ``steps`` alphas). ``hvp`` takes and returns float32 (dim,)
    vectors on ``device``. Returns (alphas (m,), betas (m - 1,)).

    Raises:
        PrunescopeError: a Hessian-vector product gave NaN or inf.
    """
    wide = start.device
    q = torch.empty(steps, len(start), dtype=torch.float64, device=wide)  # the basis, row by row
    q[0] = start
    alphas, betas = [], []
    for j in range(steps):
        w = hvp(q[j].to(device, torch.float32)).to(wide, torch.float64)
        if not torch.isfinite(w).all():
            raise PrunescopeError(f"a Hessian-vector product gave NaN or inf (Lanczos step {j})")
        alphas.append(float(w @ q[j]))
        basis = q[: j + 1]
        w = w - basis.T @ (basis @ w)
        w = w - basis.T @ (basis @ w)  # twice is enough (Kahan-Parlett)
        beta = float(w.norm())
        if j == steps - 1 or beta < 1e-10:
            break
        betas.append(beta)
        q[j + 1] = w / beta
    return alphas, betas[: len(alphas) - 1]


def tridiagonal(alphas: list[float], betas: list[float]) -> torch.Tensor:
    """The symmetric tridiagonal (m, m) float64 CPU matrix of Lanczos coefficients (tiny)."""
    t = torch.diag(torch.tensor(alphas, dtype=torch.float64))
    if betas:
        off = torch.tensor(betas, dtype=torch.float64)
        t = t + torch.diag(off, 1) + torch.diag(off, -1)
    return t


@dataclass(frozen=True)
class TraceEstimate:
    """Hutchinson's estimate: ``trace`` (mean of ``v^T H v``), its standard error, probes used."""

    trace: float
    stderr: float
    probes: int

    @property
    def rel_error(self) -> float:
        """Relative standard error ``stderr / |trace|`` (inf for a zero trace)."""
        return self.stderr / abs(self.trace) if self.trace else math.inf


def hutchinson_trace(
    hvp: Callable[[torch.Tensor], torch.Tensor],
    dim: int,
    max_probes: int,
    gen: torch.Generator,
    mask: torch.Tensor | None = None,
    *,
    rel_error: float = 0.0,
    device: torch.device | None = None,
) -> TraceEstimate:
    """Hutchinson's (1989) estimate of tr(H) from Rademacher probes ``v``: mean of ``v^T H v``.

    Probes are drawn until the relative standard error (sample std / sqrt(n) /
    |mean|) is at most ``rel_error``, after at least ``min(MIN_PROBES,
    max_probes)`` probes, or ``max_probes`` are used (``rel_error`` 0: always
    ``max_probes``). Stopping on the estimated error biases the estimate
    slightly towards larger |trace| (a known effect of sequential stopping;
    with >= 10 probes it is far below the error reported). The probes are drawn from
    the CPU generator ``gen`` and moved to ``device`` (default: the mask's, else the CPU).

    Raises:
        ValueError: fewer than 2 probes (no standard error).
        PrunescopeError: a Hessian-vector product gave NaN or inf.
    """
    if max_probes < 2:
        raise ValueError(f"the trace needs at least 2 probes for its error, got {max_probes}")
    vals: list[float] = []
    least = min(MIN_PROBES, max_probes)
    dev = torch.device(device or (mask.device if mask is not None else "cpu"))
    while len(vals) < max_probes:
        v = (torch.randint(0, 2, (dim,), generator=gen).float() * 2 - 1).to(dev)
        if mask is not None:
            v = v * mask
        value = float(v @ hvp(v))
        if not math.isfinite(value):
            raise PrunescopeError(f"a Hessian-vector product gave NaN or inf (probe {len(vals)})")
        vals.append(value)
        if len(vals) >= least and rel_error > 0:
            est = _estimate(vals)
            if est.stderr <= rel_error * abs(est.trace):
                return est
    return _estimate(vals)


def _estimate(vals: list[float]) -> TraceEstimate:
    """Mean, standard error and count of the probe values (>= 2 of them)."""
    arr = np.asarray(vals)
    return TraceEstimate(float(arr.mean()), float(arr.std(ddof=1) / math.sqrt(len(arr))), len(arr))


def probe_seeds(seed: int, run_key: str) -> tuple[int, int]:
    """Seeds of the Lanczos start vector and the trace probes, from the spec's seed and the run.

    Derived by ``np.random.SeedSequence`` from ``seed`` and the run's content
    key, so every run gets its own probes (reproducibly).
    """
    state = np.random.SeedSequence([seed, int(run_key, 16), 7]).generate_state(2)
    return int(state[0]), int(state[1])
