"""From a spec to a stored entry: the data, the surface problem, the grid, the summary numbers.

The compute functions registered in :mod:`analysis.landscape.kind` call
:func:`landscape_entry`, :func:`plane_entry` and :func:`sharpness_entry`. Every
number that reaches an entry is finite or comes with a stated reason: a
non-finite loss at the centre (or everywhere) is an error, non-finite grid
points are counted and said (``nonfinite_points``, ``nonfinite_reason``).

Devices: every surface, plane and sharpness computes on ``ctx.device``: the
loaded runs (CPU) and the data are moved there, the directions are drawn on the
CPU and moved, plane axes are built on the CPU (float64, scikit-learn's PCA),
weight matching for the models plane runs its costs on the device. The grid
engine (pointwise or batched, chosen by measurement off the CPU) is recorded
in the entry (``engine``). Stored arrays are CPU numpy.
"""

from __future__ import annotations

import time
from contextlib import suppress
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import nn

from analysis.api import Context
from analysis.batchnorm import bn_rule_record, has_batchnorm
from analysis.data import eval_subset, load
from analysis.errors import PrunescopeError, SpecError
from analysis.landscape.directions import Params, surface_directions, trainable
from analysis.landscape.engine import SurfaceProblem
from analysis.landscape.grid import compute_grid, grid_axis, precision_error
from analysis.landscape.planes import box_axes, model_plane, trajectory_plane
from analysis.landscape.sharpness import HessianProblem, hutchinson_trace, lanczos_top, probe_seeds
from analysis.permutation import apply_permutation, check_same_architecture, weight_matching
from analysis.sparsity.base import Masks
from analysis.specs import DataSpec, spec_key

if TYPE_CHECKING:
    from analysis.landscape.specs import LandscapeSpec, PlaneSpec, SharpnessSpec


def eval_batch(data: DataSpec, split: str, n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """A fixed, seeded subset of ``n`` samples (at most all) of the test or train split.

    x (n, C, H, W), y (n,). A study's settings are checked against the split's
    size when it loads (:func:`analysis.landscape.kind.check_settings`); a spec
    built by hand that asks for more gets the whole split, and the entry
    records the samples used (``n``).
    """
    splits = load(data)
    x, y = (splits.test_x, splits.test_y) if split == "test" else (splits.train_x, splits.train_y)
    idx = eval_subset(min(n, len(x)), len(x), seed)
    return x[idx], y[idx]


def bn_samples(
    model: nn.Module, data: DataSpec, split: str, n: int, seed: int, x: torch.Tensor
) -> torch.Tensor | None:
    """The training samples BatchNorm statistics are recomputed on (None without BatchNorm).

    The seeded training subset of ``n`` samples: ``x`` itself when ``x`` is
    that subset (``split == "train"``), so the engine shares its products.
    """
    if not has_batchnorm(model):
        return None
    return x if split == "train" else eval_batch(data, "train", n, seed)[0]


def sparsity(params: Params, masks: Masks) -> float:
    """Fraction of exact zeros among the masked (prunable) weights (0 if dense)."""
    if not masks:
        return 0.0
    zeros = sum(int((params[n] == 0).sum()) for n in masks)
    return zeros / max(sum(params[n].numel() for n in masks), 1)


def surface_doc(
    grid: dict, problem: SurfaceProblem, precision: str, xs, ys, label: str
) -> dict[str, Any]:
    """Summary numbers of a surface: centre, min/max, precision error, BN rule, fused path.

    Raises:
        PrunescopeError: the loss is not finite at the centre, or nowhere on the grid.
    """
    centre_loss, centre_acc = problem.evaluate(tuple(0.0 for _ in problem.dirs))
    if not np.isfinite(centre_loss):
        raise PrunescopeError(f"{label}: the loss at the centre is {centre_loss} (not finite)")
    loss, acc = np.asarray(grid["loss"]), np.asarray(grid["acc"])
    finite = np.isfinite(loss)
    if not finite.any():
        raise PrunescopeError(f"{label}: the loss is NaN or inf at every grid point")
    fused, path = problem.fused
    out = {
        "centre_loss": centre_loss,
        "centre_acc": centre_acc,
        "min_loss": float(loss[finite].min()),
        "max_loss": float(loss[finite].max()),
        "max_acc": float(acc.max()),
        "min_acc": float(acc.min()),
        "precision": precision,
        "precision_rel_error": None,  # fp32: nothing to compare with
        "bn": problem.bn,
        "bn_rule": bn_rule_record(problem.bn, 0 if problem.bn_x is None else len(problem.bn_x)),
        "fused": fused,
        "fused_path": path,
        "nonfinite_points": int((~finite).sum()),
    }
    if out["nonfinite_points"]:
        out["nonfinite_reason"] = (
            f"the loss overflowed (NaN or inf) at {out['nonfinite_points']} of {loss.size} grid "
            "points, far from the network; min_loss/max_loss are over the finite points"
        )
    if precision == "bf16":
        out["precision_rel_error"] = precision_error(problem, xs, ys, loss)
    return out


def cleanup(partial: Path) -> None:
    """Remove the finished partial chunks (the entry is about to be committed)."""
    for f in partial.glob("*.npz"):
        f.unlink(missing_ok=True)
    with suppress(OSError):
        partial.rmdir()


# -- surfaces around a run ---------------------------------------------------------------


def landscape_problem(
    spec: LandscapeSpec, run: Any, device: torch.device | None = None
) -> tuple[SurfaceProblem, np.ndarray, np.ndarray | None]:
    """The surface problem of ``spec`` around the trained ``run`` (on ``device``), and its axes."""
    model = run.model()
    x, y = eval_batch(spec.run.data, spec.split, spec.subset, spec.subset_seed)
    dirs = surface_directions(
        model,
        run.masks,
        dims=spec.dims,
        seed=spec.direction_seed,
        respect_mask=spec.respect_mask,
        include_bias_bn=spec.include_bias_bn,
    )
    bn_x = bn_samples(model, spec.run.data, spec.split, spec.subset, spec.subset_seed, x)
    problem = SurfaceProblem(
        model=model, centre=trainable(model), dirs=dirs, x=x, y=y, bn_x=bn_x, device=device
    )
    xs = grid_axis(spec.grid, spec.span)
    return problem, xs, (xs if spec.dims == 2 else None)


def landscape_entry(spec: LandscapeSpec, ctx: Context) -> tuple[dict, dict]:
    """Files and summary of a surface around ``spec.run`` (Li et al. 2018's directions)."""
    ctx.check_memory(spec)  # refuse a grid that cannot fit, before anything starts
    run = ctx.get(spec.run)
    problem, xs, ys = landscape_problem(spec, run, ctx.device)
    partial = ctx.store.partial_dir(spec)
    start = time.perf_counter()
    grid = compute_grid(
        problem,
        xs,
        ys,
        precision=spec.precision,
        partial=partial,
        on_row=lambda i, n: ctx.progress(spec.label, i, n),
        label=spec.label,
    )
    seconds = time.perf_counter() - start
    doc = {
        "run": spec.run.label,
        "dims": spec.dims,
        "n": len(problem.x),
        "split": spec.split,
        "respect_mask": spec.respect_mask,
        "sparsity": sparsity(problem.centre, run.masks),
        "grid_seconds": seconds,
        "rows_evaluated": int(len(grid["evaluated_rows"])),
        "engine": grid["engine"],
        **surface_doc(grid, problem, spec.precision, xs, ys, spec.label),
    }
    arrays = {"x": xs, "loss": grid["loss"], "acc": grid["acc"]}
    if ys is not None:
        arrays["y"] = ys
    cleanup(partial)
    return {"surface.npz": arrays, "landscape.json": doc}, entry_summary(doc)


def entry_summary(doc: dict) -> dict:
    """The small summary stored beside a surface or plane entry."""
    keys = ("centre_loss", "min_loss", "max_loss", "precision_rel_error", "split", "bn", "fused")
    return {k: doc[k] for k in keys} | {"engine": doc["engine"]}


# -- planes through networks -------------------------------------------------------------


def _trajectory_axes(run: Any, final: Params) -> tuple[list[Params], np.ndarray, dict]:
    """PCA axes, path coordinates and notes of ``run``'s training trajectory."""
    traj = run.trajectory
    snaps = [{n: s[n] for n in final} for s in traj.values()]
    dirs, coords, ratio = trajectory_plane(snaps, final)
    extra: dict[str, Any] = {
        "steps": list(traj),
        "explained_variance": ratio.tolist(),
        "explained_variance_method": "sklearn PCA (centred), explained_variance_ratio_",
    }
    if len(snaps) < 3:
        extra["note"] = "2 snapshots: the path is a line, its second axis carries no variance"
    return dirs, coords, extra


def _models_axes(
    spec: PlaneSpec, runs: list[Any], params: list[Params], model: nn.Module, device: torch.device
):
    """Axes, coordinates (3, 2) and notes of the plane through A, B and C (or B aligned to A).

    The axes are built on the CPU (float64); weight matching's costs on ``device``.
    """
    a, b = params[0], params[1]
    if spec.align:
        ps = model.permutation_spec()
        check_same_architecture(ps, runs[0].state, runs[1].state)
        state_a, state_b = ({k: v.to(device) for k, v in r.state.items()} for r in runs[:2])
        perm = weight_matching(ps, state_a, state_b, seed=spec.subset_seed)  # CPU permutation
        c = {n: v for n, v in apply_permutation(ps, perm, runs[1].state).items() if n in a}
    else:
        c = params[2]
    dirs, coords = model_plane(a, b, c)
    names = [r.label for r in spec.runs] + (["B aligned to A"] if spec.align else [])
    return dirs, coords, {"models": names}


def plane_problem(
    spec: PlaneSpec, runs: list[Any], device: torch.device | None = None
) -> tuple[SurfaceProblem, np.ndarray, np.ndarray, np.ndarray, dict]:
    """The surface problem of ``spec`` through the trained ``runs`` (on ``device``): problem,
    axes, coords, notes."""
    device = torch.device(device or "cpu")
    model = runs[0].model()
    params = [trainable(r.model()) for r in runs]
    if spec.plane == "trajectory":
        dirs, coords, extra = _trajectory_axes(runs[0], params[0])
    else:
        dirs, coords, extra = _models_axes(spec, runs, params, model, device)
    data = spec.runs[0].data
    x, y = eval_batch(data, spec.split, spec.subset, spec.subset_seed)
    bn_x = bn_samples(model, data, spec.split, spec.subset, spec.subset_seed, x)
    problem = SurfaceProblem(
        model=model, centre=params[0], dirs=dirs, x=x, y=y, bn_x=bn_x, device=device
    )
    xs, ys = box_axes(coords, spec.grid, spec.margin)
    return problem, xs, ys, coords, extra


def plane_entry(spec: PlaneSpec, ctx: Context) -> tuple[dict, dict]:
    """Files and summary of the surface in the plane of three networks or of a trajectory."""
    ctx.check_memory(spec)  # refuse a grid that cannot fit, before anything starts
    problem, xs, ys, coords, extra = plane_problem(
        spec, [ctx.get(r) for r in spec.runs], ctx.device
    )
    partial = ctx.store.partial_dir(spec)
    grid = compute_grid(
        problem,
        xs,
        ys,
        precision=spec.precision,
        partial=partial,
        on_row=lambda i, n: ctx.progress(spec.label, i, n),
        label=spec.label,
    )
    doc = {
        "plane": spec.plane,
        "coords": coords.tolist(),
        "n": len(problem.x),
        "split": spec.split,
        "engine": grid["engine"],
        **extra,
        **surface_doc(grid, problem, spec.precision, xs, ys, spec.label),
    }
    if spec.plane == "models":  # the networks lie in their plane: each one's own point
        at = [problem.evaluate((float(p), float(q))) for p, q in coords]
        doc["network_loss"] = [loss for loss, _ in at]
        doc["network_acc"] = [acc for _, acc in at]
    cleanup(partial)
    arrays = {"x": xs, "y": ys, "loss": grid["loss"], "acc": grid["acc"], "coords": coords}
    return {"surface.npz": arrays, "plane.json": doc}, entry_summary(doc)


def surface_problem(spec: Any, ctx: Context) -> tuple[SurfaceProblem, np.ndarray, Any]:
    """(problem, xs, ys) of a surface or plane spec (the runs fetched through ``ctx``)."""
    if spec.kind == "landscape":
        return landscape_problem(spec, ctx.get(spec.run), ctx.device)
    problem, xs, ys, _, _ = plane_problem(spec, [ctx.get(r) for r in spec.runs], ctx.device)
    return problem, xs, ys


# -- sharpness ---------------------------------------------------------------------------


def sharpness_entry(spec: SharpnessSpec, ctx: Context) -> tuple[dict, dict]:
    """Top-k Hessian eigenvalues (Lanczos) and Hutchinson trace of the run's loss.

    Raises:
        SpecError: ``topk`` exceeds the parameters left free by the masks.
    """
    run = ctx.get(spec.run)
    x, y = eval_batch(spec.run.data, spec.split, spec.batch, spec.subset_seed)
    prob = HessianProblem(
        run.model().to(ctx.device), x, y, run.masks if spec.respect_mask else None
    )  # x, y and the masks follow the model to ctx.device
    free = int(prob.mask.sum())
    if spec.topk > free:
        raise SpecError("topk", f"at most the {free} free parameters", spec.topk, owner=spec.label)
    lanczos_seed, probe_seed = probe_seeds(spec.seed, spec_key(spec.run))
    start = time.perf_counter()
    doc: dict[str, Any] = {"run": spec.run.label, "eigenvalues": [], "split": spec.split}
    if spec.topk:
        ctx.progress(spec.label, 0, 2)
        gen = torch.Generator().manual_seed(lanczos_seed)
        iters = min(spec.lanczos_iters, free)
        doc["eigenvalues"] = lanczos_top(prob.hvp, prob.dim, spec.topk, iters, gen, prob.mask)
    if spec.hutchinson_samples:
        ctx.progress(spec.label, 1, 2)
        gen = torch.Generator().manual_seed(probe_seed)
        est = hutchinson_trace(
            prob.hvp, prob.dim, spec.hutchinson_samples, gen, prob.mask,
            rel_error=spec.hutchinson_rel_error,
        )  # fmt: skip
        doc |= {"trace": est.trace, "trace_stderr": est.stderr, "trace_probes": est.probes}
        doc["trace_rel_error"] = est.rel_error if np.isfinite(est.rel_error) else None
        if doc["trace_rel_error"] is None:
            doc["trace_reason"] = "the trace estimate is 0: its relative error is undefined"
    else:
        doc |= {"trace": None, "trace_stderr": None, "trace_probes": 0, "trace_rel_error": None}
        doc["trace_reason"] = "not computed (hutchinson_samples = 0)"
    ctx.progress(spec.label, 2, 2)
    doc |= {
        "n": len(x),
        "params": prob.dim,
        "free_params": free,
        "bn": "own",  # the trained network's own weights: its own statistics, eval mode
        "seconds": time.perf_counter() - start,
    }
    keys = ("eigenvalues", "trace", "trace_rel_error", "trace_probes", "split")
    return {"sharpness.json": doc}, {k: doc[k] for k in keys}
