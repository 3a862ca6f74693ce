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


# ---------------------------------------------------------------------------
# kinds, study and summary


def small(spec_cls, run, **kw):
    """A spec of ``spec_cls`` on ``run`` sized for a test (50 samples)."""
    return spec_cls(run=run, batch=50, **kw)


@pytest.mark.slow  # about 30 s on a busy 2-core machine
def test_entries_agree_with_sharpness_and_are_cached(store, tiny_run):
    from analysis import api
    from analysis.landscape import ConvexitySpec, DensitySpec, LayerSharpnessSpec, SharpnessSpec

    sharp = api.get(SharpnessSpec(run=tiny_run, topk=1, hutchinson_samples=200,
                                  hutchinson_rel_error=0.02, batch=50), store=store)  # fmt: skip
    top, trace = sharp.read("sharpness.json")["eigenvalues"][0], sharp.read("sharpness.json")
    dens = api.get(small(DensitySpec, tiny_run, probes=2, lanczos_steps=30), store=store)
    doc = dens.read("density.json")
    assert doc["lambda_max"] == pytest.approx(top, rel=1e-3)  # the stated tolerance
    arrays = dens.read("spectrum.npz")
    assert np.trapezoid(arrays["density"], arrays["grid"]) == pytest.approx(1.0, abs=1e-3)
    assert len(doc["density"]) == 500 and doc["hvps"] == 60
    layers = api.get(small(LayerSharpnessSpec, tiny_run, hutchinson_rel_error=0.02,
                           hutchinson_samples=400), store=store).read("layers.json")  # fmt: skip
    assert [r["layer"] for r in layers["layers"]] == ["body.fc0", "head"]
    assert max(r["top_eigenvalue"] for r in layers["layers"]) <= top * (1 + 1e-3)
    stderr = math.hypot(trace["trace_stderr"], *(r["trace_stderr"] for r in layers["layers"]))
    assert abs(layers["trace_sum"] - trace["trace"]) < 4 * stderr  # blocks sum to tr(H)
    conv = small(ConvexitySpec, tiny_run, grid=3, tol=1e-3)
    cdoc = api.get(conv, store=store).read("convexity.json")
    assert np.array(cdoc["ratio"]).shape == (3, 3)
    assert cdoc["lambda_max"][1][1] == pytest.approx(top, rel=1e-2)  # the centre: the run itself
    ratio = abs(np.array(cdoc["lambda_min"]) / np.array(cdoc["lambda_max"]))
    np.testing.assert_allclose(np.array(cdoc["ratio"]), ratio)
    assert api.status(conv, store) == "cached"


def test_a_study_without_the_section_computes_and_shows_nothing_new(store):
    from analysis.landscape.spectrum_kind import spectrum_specs, summarize_spectrum
    from analysis.study import parse_study
    from tests._tiny import tiny_text

    study = parse_study(tiny_text(seeds=(0,), magnitude=False))
    assert spectrum_specs(study) == []
    assert summarize_spectrum(study, store) | {"settings": None} == {
        "asked": False, "settings": None, "runs": []}  # fmt: skip
    asked = parse_study(tiny_text(seeds=(0,), magnitude=False, spectrum={"convexity_grid": 0}))
    kinds = [s.kind for s in spectrum_specs(asked)]
    assert kinds == ["hessian_density", "layer_sharpness"]
    doc = summarize_spectrum(asked, store)
    assert doc["asked"] and doc["runs"][0]["density"]["status"] == "missing"
    assert doc["runs"][0]["convexity"] is None


@pytest.mark.parametrize(
    ("table", "field"),
    [
        ({"lanczos_steps": 1}, "analyses.spectrum.lanczos_steps"),
        ({"layer_steps": 0}, "analyses.spectrum.layer_steps"),
        ({"probes": -1}, "analyses.spectrum.probes"),
        ({"convexity_grid": 1}, "analyses.spectrum.convexity_grid"),
        ({"sigma_squared": 0.0}, "analyses.spectrum.sigma_squared"),
        ({"tol": 0.1}, "analyses.spectrum.tol"),
    ],
)
def test_bad_settings_are_refused_naming_the_field(table, field, tmp_path):
    from analysis.errors import SpecError
    from analysis.study import parse_study
    from tests._tiny import tiny_text

    with pytest.raises(SpecError, match=field.replace(".", r"\.")) as err:
        parse_study(tiny_text(spectrum=table))
    assert "\n" not in str(err.value)
    assert not any(tmp_path.iterdir())  # nothing written


def test_bad_specs_are_refused_naming_the_field(tiny_run):
    from analysis.errors import SpecError
    from analysis.landscape import ConvexitySpec, DensitySpec, LayerSharpnessSpec

    with pytest.raises(SpecError, match="lanczos_steps"):
        DensitySpec(run=tiny_run, lanczos_steps=1)
    with pytest.raises(SpecError, match="lanczos_steps"):
        LayerSharpnessSpec(run=tiny_run, lanczos_steps=1)
    with pytest.raises(SpecError, match="'grid'"):
        ConvexitySpec(run=tiny_run, grid=0)


# ---------------------------------------------------------------------------
# figures (hand-made summary records, no store)


def spectra_section() -> dict:
    """A ``spectrum`` summary section with two runs, every record cached."""

    def run(label, method, seed, scale):
        xs = list(np.linspace(-1, 10 * scale, 500))
        dens = [math.exp(-(x**2)) for x in xs]
        return {
            "label": label, "method": method, "sparsity": 0.0, "objective": "ce", "seed": seed,
            "density": {"status": "cached", "density_x": xs, "density": dens, "probes": 1,
                        "lanczos_steps": 100, "lambda_max": 10 * scale, "split": "train", "n": 500},
            "layers": {"status": "cached", "split": "train", "n": 500, "layers": [
                {"layer": "fc0", "top_eigenvalue": 3 * scale, "trace": 20.0, "trace_stderr": 1.0},
                {"layer": "head", "top_eigenvalue": 9 * scale, "trace": 80.0, "trace_stderr": 2.0},
            ]},
            "convexity": {"status": "cached", "x": [-1, 0, 1], "y": [-1, 0, 1], "tol": 0.01,
                          "ratio": [[0.1, 0.2, None], [0.0, 0.05, 0.1], [0.3, 0.2, 0.1]],
                          "lambda_min": [[-1, -2, None], [0, -0.5, -1], [-3, -2, -1]],
                          "split": "train", "n": 500},
        }  # fmt: skip

    return {"asked": True, "runs": [run("dense s0", "dense", 0, 1.0), run("magnitude 90% s0",
            "magnitude", 0, 0.5)]}  # fmt: skip


def test_density_figure_is_log_scale_with_the_pyhessian_floor():
    from dashboard.figures import landscape as fl

    fig = fl.spectral_density(spectra_section(), None)
    assert fig.layout.yaxis.type == "log"
    assert [t.name for t in fig.data] == ["dense s0", "magnitude 90% s0"]
    assert min(fig.data[0].y) == fl.spectrum.FLOOR  # exp(-100) drawn at the floor
    assert "1 probe x 100 steps" in fig.layout.title.text


def test_layer_and_convexity_figures_share_their_scales():
    from dashboard.figures import landscape as fl
    from dashboard.figures.theme import PRESENTATION

    section = spectra_section()
    fig = fl.layer_sharpness(section, [{"label": "dense s0"}], PRESENTATION)
    assert [list(t.y) for t in fig.data] == [[3.0, 9.0], [20.0, 80.0]]
    assert list(fig.data[1].error_y.array) == [1.0, 2.0]
    conv = fl.convexity_map(section, None)
    maps = [t for t in conv.data if t.type == "heatmap"]
    assert len(maps) == 2 and {m.zmax for m in maps} == {0.3} and maps[0].showscale
    items = fl.catalogue({"spectrum": section}, None)
    assert [i.name for i in items] == [
        "landscape-hessian-density", "landscape-layer-sharpness", "landscape-convexity"]  # fmt: skip
    assert fl.catalogue({"spectrum": {"asked": False, "runs": []}}, None) == []
