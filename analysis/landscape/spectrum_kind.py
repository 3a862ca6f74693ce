"""The Hessian spectrum part: its kinds' computations, the study's specs and ``show --json``.

Kinds (specs in :mod:`analysis.landscape.spectrum_specs`, the mathematics in
:mod:`analysis.landscape.spectrum`):

- ``hessian_density``: the eigenvalue spectral density by stochastic Lanczos
  quadrature (Ghorbani et al. 2019), smoothed as PyHessian's ``density``;
- ``layer_sharpness``: the top eigenvalue (Lanczos) and trace (Hutchinson) of
  each layer's Hessian block;
- ``convexity_map``: Li et al. 2018's ``|lambda_min / lambda_max|`` (eigsh)
  over a coarse grid of the 2-D surface's plane.

All three take the Hessian of the mean cross-entropy on the sharpness batch of
``[analyses.landscape]`` (restricted to the surviving weights with its
``respect_mask``), at the trained weights with their own BatchNorm statistics
(the map: statistics reset at every point, as on the surface). They compute on
``ctx.device``; probes and start vectors come from CPU generators seeded by the
spec's ``seed`` and the run's key, so each is the same experiment on every device.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import torch

from analysis.api import Analysis, Context, Kind, Study
from analysis.batchnorm import reset_bn_stats
from analysis.device import full_fp32
from analysis.errors import PrunescopeError
from analysis.landscape.directions import surface_directions, trainable
from analysis.landscape.grid import grid_axis
from analysis.landscape.kind import landscape_runs, resolved_sizes
from analysis.landscape.sharpness import HessianProblem, hutchinson_trace, lanczos_top
from analysis.landscape.spectrum import (
    block_hvp,
    extreme_eigenvalues,
    layer_blocks,
    pooled,
    slq,
    spectral_density,
)
from analysis.landscape.spectrum_specs import (
    ConvexitySpec,
    DensitySpec,
    LayerSharpnessSpec,
    SpectrumSettings,
)
from analysis.landscape.surfaces import bn_samples, eval_batch
from analysis.specs import spec_key

#: Points of the density in ``show --json`` (bin means of the stored curve; the entry's
#: ``spectrum.npz`` holds every bin).
SUMMARY_POINTS = 500


def generator(spec: Any, salt: int) -> torch.Generator:
    """A CPU generator seeded by the spec's ``seed``, its run's key and ``salt`` (SeedSequence)."""
    state = np.random.SeedSequence([spec.seed, int(spec_key(spec.run), 16), salt]).generate_state(2)
    return torch.Generator().manual_seed(int(state[0]) << 32 | int(state[1]))


def hessian_problem(spec: Any, ctx: Context, state: dict | None = None) -> HessianProblem:
    """The Hessian of ``spec.run``'s loss on its batch, on ``ctx.device`` (``state``: other weights)."""
    run = ctx.get(spec.run)
    x, y = eval_batch(spec.run.data, spec.split, spec.batch, spec.subset_seed)
    masks = run.masks if spec.respect_mask else None
    return HessianProblem(run.model(state).to(ctx.device), x, y, masks)


def facts(spec: Any, prob: HessianProblem, start: float) -> dict[str, Any]:
    """What every entry records: run, batch, parameters, BatchNorm rule, seconds."""
    return {
        "run": spec.run.label,
        "n": len(prob.x),
        "split": spec.split,
        "params": prob.dim,
        "free_params": int(prob.mask.sum()),
        "seconds": time.perf_counter() - start,
    }


@full_fp32()  # fp32 means fp32 on CUDA too (no TF32), as for sharpness
def compute_density(spec: DensitySpec, ctx: Context) -> tuple[dict, dict]:
    """The eigenvalue density of the run's Hessian (SLQ, PyHessian's smoothing)."""
    start = time.perf_counter()
    prob = hessian_problem(spec, ctx)
    ctx.progress(spec.label, 0, 1)
    quad = slq(prob.hvp, prob.dim, spec.probes, spec.lanczos_steps, generator(spec, 11), prob.mask)
    grid, density, mass = spectral_density(quad, spec.bins, spec.sigma_squared)
    x, d = pooled(grid, density, SUMMARY_POINTS)
    doc = {
        "lambda_max": float(quad.nodes.max()),  # the largest Ritz value
        "lambda_min": float(quad.nodes.min()),
        "probes": spec.probes,
        "lanczos_steps": spec.lanczos_steps,
        "steps_used": quad.steps_used.tolist(),
        "hvps": int(quad.steps_used.sum()),
        "bins": spec.bins,
        "sigma_squared": spec.sigma_squared,
        "mass_on_grid": mass,
        "density_x": x.tolist(),
        "density": d.tolist(),
        "bn": "own",
        **facts(spec, prob, start),
    }
    ctx.progress(spec.label, 1, 1)
    arrays = {"grid": grid, "density": density, "nodes": quad.nodes, "weights": quad.weights}
    keys = ("lambda_max", "lambda_min", "mass_on_grid", "hvps")
    return {"spectrum.npz": arrays, "density.json": doc}, {k: doc[k] for k in keys}


@full_fp32()
def compute_layers(spec: LayerSharpnessSpec, ctx: Context) -> tuple[dict, dict]:
    """Top eigenvalue and trace of each layer's Hessian block."""
    start = time.perf_counter()
    prob = hessian_problem(spec, ctx)
    blocks = layer_blocks(prob)
    layers = []
    for i, (name, block) in enumerate(blocks.items()):
        ctx.progress(spec.label, i, len(blocks))
        hvp, free = block_hvp(prob, block), int(block.sum())
        steps = min(spec.lanczos_steps, free)
        top = lanczos_top(hvp, prob.dim, 1, steps, generator(spec, 100 + 2 * i), block)[0]
        est = hutchinson_trace(
            hvp, prob.dim, spec.hutchinson_samples, generator(spec, 101 + 2 * i), block,
            rel_error=spec.hutchinson_rel_error,
        )  # fmt: skip
        rel = est.rel_error if np.isfinite(est.rel_error) else None
        layers.append(
            {"layer": name, "free_params": free, "top_eigenvalue": top, "lanczos_steps": steps,
             "trace": est.trace, "trace_stderr": est.stderr, "trace_probes": est.probes,
             "trace_rel_error": rel}
        )  # fmt: skip
    ctx.progress(spec.label, len(blocks), len(blocks))
    doc = {
        "layers": layers,
        "trace_sum": float(sum(r["trace"] for r in layers)),  # = tr(H): the blocks' diagonal
        "bn": "own",
        **facts(spec, prob, start),
    }
    return {"layers.json": doc}, {"layers": len(layers), "trace_sum": doc["trace_sum"]}


def _point_state(run: Any, centre: dict, dirs: list, a: float, b: float) -> dict:
    """The run's state with its parameters moved to ``centre + a d1 + b d2`` (CPU)."""
    moved = {n: centre[n] + a * dirs[0][n] + b * dirs[1][n] for n in centre}
    return {**run.state, **moved}


@full_fp32()
def compute_convexity(spec: ConvexitySpec, ctx: Context) -> tuple[dict, dict]:
    """Li et al. 2018's ``|lambda_min / lambda_max|`` over a coarse grid of the surface's plane."""
    start = time.perf_counter()
    run = ctx.get(spec.run)
    model = run.model()
    centre = trainable(model)
    dirs = surface_directions(model, run.masks, dims=2, seed=spec.direction_seed,
                              respect_mask=spec.respect_mask, include_bias_bn=spec.include_bias_bn)  # fmt: skip
    x, y = eval_batch(spec.run.data, spec.split, spec.batch, spec.subset_seed)
    bn_x = bn_samples(model, spec.run.data, spec.split, spec.batch, spec.subset_seed, x)
    masks = run.masks if spec.respect_mask else None
    axis = grid_axis(spec.grid, spec.span)
    g = spec.grid
    lmax, lmin, ratio = np.full((g, g), np.nan), np.full((g, g), np.nan), np.full((g, g), np.nan)
    converged, hvps = np.zeros((g, g, 2), bool), 0
    for i, b in enumerate(axis):  # rows: the second direction, as the surface's grid
        for j, a in enumerate(axis):
            ctx.progress(spec.label, i * g + j, g * g)
            point = run.model(_point_state(run, centre, dirs, a, b)).to(ctx.device)
            if bn_x is not None:  # statistics reset at every point, as on the surface
                with torch.no_grad():
                    reset_bn_stats(point, bn_x.to(ctx.device))
            prob = HessianProblem(point, x, y, masks)
            ext = extreme_eigenvalues(prob, generator(spec, 21), tol=spec.tol, maxiter=spec.maxiter)
            lmax[i, j], lmin[i, j], ratio[i, j] = ext.lambda_max, ext.lambda_min, ext.ratio
            converged[i, j], hvps = ext.converged, hvps + ext.hvps
    ctx.progress(spec.label, g * g, g * g)
    if not np.isfinite(lmax).any():
        raise PrunescopeError(f"{spec.label}: eigsh returned no eigenvalue at any grid point")
    doc = _convexity_doc(spec, axis, lmax, lmin, ratio, converged)
    doc |= {"hvps": hvps, "bn": "reset" if bn_x is not None else "none", "run": spec.run.label,
            "n": len(x), "split": spec.split, "seconds": time.perf_counter() - start}  # fmt: skip
    arrays = {"x": axis, "y": axis, "lambda_max": lmax, "lambda_min": lmin, "ratio": ratio}
    keys = ("centre_ratio", "max_ratio", "unconverged_points")
    return {"convexity.npz": arrays, "convexity.json": doc}, {k: doc[k] for k in keys}


def _convexity_doc(spec, axis, lmax, lmin, ratio, converged) -> dict[str, Any]:
    """The map's JSON record: axes, the three (grid, grid) maps as lists, convergence."""
    c = len(axis) // 2
    finite = np.isfinite(ratio)
    bad = int((~converged.all(axis=2)).sum())

    def listed(a: np.ndarray) -> list:
        """A (g, g) array as nested lists, NaN as None."""
        return [[float(v) if np.isfinite(v) else None for v in row] for row in a]

    doc = {
        "x": axis.tolist(), "y": axis.tolist(),
        "lambda_max": listed(lmax), "lambda_min": listed(lmin), "ratio": listed(ratio),
        "centre_ratio": float(ratio[c, c]) if spec.grid % 2 and finite[c, c] else None,
        "max_ratio": float(ratio[finite].max()) if finite.any() else None,
        "unconverged_points": bad, "tol": spec.tol, "maxiter": spec.maxiter,
    }  # fmt: skip
    if bad:
        doc["unconverged_reason"] = (
            f"eigsh did not reach tol {spec.tol} within {spec.maxiter} restarts at {bad} of "
            f"{ratio.size} points; their values are ARPACK's best (NaN where it had none)"
        )
    return doc


# ---------------------------------------------------------------------------
# study level


def asked(study: Study) -> bool:
    """Whether the study has an ``[analyses.spectrum]`` section (its presence asks)."""
    return any(name == "spectrum" for name, _ in getattr(study, "analyses", ()))


def spectrum_specs(study: Study) -> list[Any]:
    """The density, per-layer and convexity specs of the study (none unless it asks).

    Per run of the landscape part (first seed, or all with its ``seeds="all"``),
    on its sharpness batch; the map on its 2-D surface's directions.
    """
    if not asked(study):
        return []
    s: SpectrumSettings = study.analysis("spectrum")
    land = study.analysis("landscape")
    out: list[Any] = []
    for r in landscape_runs(study, land):
        common = dict(run=r, batch=resolved_sizes(r, land)[1], subset_seed=land.subset_seed,
                      split=land.split, respect_mask=land.respect_mask, seed=s.seed)  # fmt: skip
        if s.probes:
            out.append(DensitySpec(probes=s.probes, lanczos_steps=s.lanczos_steps, bins=s.bins,
                                   sigma_squared=s.sigma_squared, **common))  # fmt: skip
        if s.layers:
            out.append(LayerSharpnessSpec(lanczos_steps=s.layer_steps,
                hutchinson_samples=s.layer_probes, hutchinson_rel_error=s.layer_rel_error,
                **common))  # fmt: skip
        if s.convexity_grid:
            out.append(ConvexitySpec(grid=s.convexity_grid, span=land.span,
                direction_seed=land.direction_seed, include_bias_bn=land.include_bias_bn,
                tol=s.convexity_tol, maxiter=s.convexity_maxiter, **common))  # fmt: skip
    return out


#: The summary record's name and the entry's JSON file of each kind.
RECORDS = {
    "hessian_density": ("density", "density.json"),
    "layer_sharpness": ("layers", "layers.json"),
    "convexity_map": ("convexity", "convexity.json"),
}


def summarize_spectrum(study: Study, store: Any) -> dict:
    """The ``spectrum`` section of ``show --json`` (schema: docs/summary.md)."""
    from analysis import api

    s: SpectrumSettings = study.analysis("spectrum")
    by_run: dict[str, dict] = {}
    for spec in spectrum_specs(study):
        item: dict = {"label": spec.label, **api.status_record(spec, store)}
        name, file = RECORDS[spec.kind]
        if item["status"] == "cached":
            doc = api.get(spec, store=store, compute=False).read(file)
            item.update({k: v for k, v in doc.items() if k not in ("run", "seconds")})
        empty = {"density": None, "layers": None, "convexity": None}
        by_run.setdefault(spec_key(spec.run), {**spec.run.identity(), **empty})[name] = item
    settings = {f: getattr(s, f) for f in SpectrumSettings.__dataclass_fields__}
    return {"asked": asked(study), "settings": settings, "runs": list(by_run.values())}


ANALYSIS = Analysis(
    name="spectrum",
    kinds=(
        Kind("hessian_density", DensitySpec, compute_density,
             files={"spectrum.npz": object, "density.json": ("lambda_max", "density")}),
        Kind("layer_sharpness", LayerSharpnessSpec, compute_layers,
             files={"layers.json": ("layers", "trace_sum")}),
        Kind("convexity_map", ConvexitySpec, compute_convexity,
             files={"convexity.npz": object, "convexity.json": ("ratio", "lambda_min")}),
    ),
    specs=spectrum_specs,
    summarize=summarize_spectrum,
    settings=SpectrumSettings,
)  # fmt: skip
