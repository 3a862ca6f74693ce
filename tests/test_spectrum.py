"""Hessian spectra: SLQ density, per-layer sharpness, extreme eigenvalues and the convexity map.

Checked against ``torch.linalg.eigvalsh`` of the explicit Hessian
(``torch.func.hessian``) of a tiny tanh MLP: the density integrates to 1; its
largest Ritz value agrees with the existing Lanczos top eigenvalue (within
1e-4 relative: both are Lanczos on the same operator, converged at the
spectrum's edge) and with the explicit Hessian's (1e-3 relative, float32
products); the quadrature reproduces ``v^T H v`` exactly; per-layer blocks and
``eigsh``'s extremes match the explicit blocks and spectrum.
"""

from __future__ import annotations

import copy
import math

import numpy as np
import pytest
import torch
from torch import nn

from analysis.landscape.sharpness import HessianProblem, hutchinson_trace, lanczos_top
from analysis.landscape.spectrum import (
    Quadrature,
    block_hvp,
    extreme_eigenvalues,
    layer_blocks,
    pooled,
    rademacher,
    slq,
    spectral_density,
)

#: Relative agreement of float32 Hessian-vector products with the float64 explicit Hessian.
RTOL = 1e-3


def tiny_problem(masks=None, device="cpu") -> tuple[HessianProblem, torch.Tensor]:
    """A 4-8-3 tanh MLP on random data (on ``device``) and its explicit float64 Hessian."""
    from torch.func import functional_call, hessian

    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(4, 8), nn.Tanh(), nn.Linear(8, 3))
    x, y = torch.randn(32, 4), torch.randint(0, 3, (32,))
    prob = HessianProblem(copy.deepcopy(net).to(device), x, y, masks)
    names = prob.names
    shapes = [prob.params[n].shape for n in names]
    sizes = [prob.params[n].numel() for n in names]
    net64 = copy.deepcopy(net).double()

    def loss(vec):
        pieces = [p.view(s) for p, s in zip(vec.split(sizes), shapes, strict=True)]
        out = functional_call(net64, dict(zip(names, pieces, strict=True)), (x.double(),))
        return nn.functional.cross_entropy(out, y)

    vec = torch.cat([prob.params[n].flatten().cpu() for n in names]).double()
    return prob, hessian(loss)(vec)


def test_density_integrates_to_one_and_its_top_ritz_value_is_lanczos_top():
    prob, h = tiny_problem()
    quad = slq(prob.hvp, prob.dim, 3, 40, torch.Generator().manual_seed(0), prob.mask)
    grid, density, mass = spectral_density(quad)
    assert grid.shape == density.shape == (10_000,)
    assert np.trapezoid(density, grid) == pytest.approx(1.0, abs=1e-3)
    assert 0.8 < mass <= 1.0 + 1e-9  # the grid holds most of the smoothed spectrum
    top = lanczos_top(prob.hvp, prob.dim, 1, 40, torch.Generator().manual_seed(1))[0]
    true = float(torch.linalg.eigvalsh(h)[-1])
    assert quad.nodes.max() == pytest.approx(top, rel=1e-4)
    assert quad.nodes.max() == pytest.approx(true, rel=RTOL)
    np.testing.assert_allclose(quad.weights.sum(axis=1), 1.0, atol=1e-9)


def test_quadrature_reproduces_the_probe_quadratic_form_and_the_full_spectrum():
    """sum_k w_k theta_k = v^T H v / |v|^2 exactly; with dim steps the nodes are H's eigenvalues."""
    prob, h = tiny_problem()
    quad = slq(prob.hvp, prob.dim, 1, prob.dim, torch.Generator().manual_seed(3), prob.mask)
    v = rademacher(prob.dim, torch.Generator().manual_seed(3))
    v = v / v.norm()
    assert float(quad.weights[0] @ quad.nodes[0]) == pytest.approx(float(v @ h @ v), rel=RTOL)
    true = torch.linalg.eigvalsh(h).numpy()
    used = quad.steps_used[0]
    # every Ritz value is near an eigenvalue; the extremes converge to the extremes
    assert np.abs(quad.nodes[0, :used, None] - true[None, :]).min(axis=1).max() < 1e-3
    assert quad.nodes[0].min() == pytest.approx(true[0], abs=1e-4)


def test_density_follows_pyhessian_for_known_nodes():
    """Two nodes at 0 and 10 with weights 0.25/0.75: PyHessian's grid, variance and masses."""
    quad = Quadrature(np.array([[0.0, 10.0]]), np.array([[0.25, 0.75]]), np.array([2]))
    grid, density, mass = spectral_density(quad, bins=2001, sigma_squared=1e-3)
    assert grid[0] == pytest.approx(-0.01) and grid[-1] == pytest.approx(10.01)
    dx = grid[1] - grid[0]
    left = density[grid < 5].sum() * dx
    assert left == pytest.approx(0.25, abs=1e-3)
    var = 1e-3 * 10.02
    peak = 0.75 / math.sqrt(2 * math.pi * var) / mass
    assert density[np.argmin(abs(grid - 10.0))] == pytest.approx(peak, rel=0.02)
    x, d = pooled(grid, density, 400)  # 2001 bins in 400 runs: one of 6 bins, 399 of 5
    sizes = np.full(400, 5)
    sizes[0] = 6
    assert len(x) == 400 and (d * sizes).sum() * dx == pytest.approx(1.0, rel=1e-9)


def test_layer_blocks_are_the_diagonal_blocks_of_the_explicit_hessian():
    prob, h = tiny_problem()
    blocks = layer_blocks(prob)
    assert list(blocks) == ["0", "2"]
    for block in blocks.values():
        keep = block.bool()
        sub = h[keep][:, keep]
        hvp = block_hvp(prob, block)
        top = lanczos_top(hvp, prob.dim, 1, 40, torch.Generator().manual_seed(0), block)[0]
        assert top == pytest.approx(float(torch.linalg.eigvalsh(sub)[-1]), rel=RTOL)
        est = hutchinson_trace(hvp, prob.dim, 400, torch.Generator().manual_seed(0), block)
        true = float(torch.trace(sub))
        assert abs(est.trace - true) < max(4 * est.stderr, 0.05 * abs(true))


def test_pruned_layer_blocks_and_extremes_use_the_free_weights_only():
    masks = {"0.weight": torch.arange(32).view(8, 4) % 3 != 0, "2.weight": torch.ones(3, 8)}
    prob, h = tiny_problem(masks)
    keep = prob.mask.bool()
    true = torch.linalg.eigvalsh(h[keep][:, keep])
    got = extreme_eigenvalues(prob, torch.Generator().manual_seed(0), tol=1e-6, maxiter=500)
    assert got.converged == (True, True)
    assert got.lambda_max == pytest.approx(float(true[-1]), rel=RTOL)
    assert got.lambda_min == pytest.approx(float(true[0]), rel=RTOL, abs=1e-5)
    assert got.ratio == pytest.approx(abs(float(true[0] / true[-1])), rel=1e-2)
    assert int(layer_blocks(prob)["0"].sum()) == int(masks["0.weight"].sum()) + 8


def test_extreme_eigenvalues_of_the_dense_problem_match_eigvalsh():
    prob, h = tiny_problem()
    true = torch.linalg.eigvalsh(h)
    got = extreme_eigenvalues(prob, torch.Generator().manual_seed(0), tol=1e-6, maxiter=500)
    assert got.lambda_max == pytest.approx(float(true[-1]), rel=RTOL)
    assert got.lambda_min == pytest.approx(float(true[0]), rel=RTOL, abs=1e-5)
    assert got.lambda_min < 0 < got.lambda_max  # a tanh network's loss is not convex here
    assert got.hvps > 0


def test_spectrum_on_each_device_matches_the_cpu(device):
    """Same probes on every device (CPU generators): nodes agree within 1e-4 relative."""
    cpu, _ = tiny_problem()
    dev, _ = tiny_problem(device=device)
    a = slq(cpu.hvp, cpu.dim, 2, 20, torch.Generator().manual_seed(0), cpu.mask)
    b = slq(dev.hvp, dev.dim, 2, 20, torch.Generator().manual_seed(0), dev.mask)
    top = np.abs(a.nodes).max()
    np.testing.assert_allclose(b.nodes, a.nodes, atol=1e-4 * top)
    ea = extreme_eigenvalues(cpu, torch.Generator().manual_seed(0), tol=1e-6, maxiter=500)
    eb = extreme_eigenvalues(dev, torch.Generator().manual_seed(0), tol=1e-6, maxiter=500)
    assert eb.lambda_max == pytest.approx(ea.lambda_max, rel=1e-4)
    assert eb.lambda_min == pytest.approx(ea.lambda_min, rel=1e-3, abs=1e-5)
