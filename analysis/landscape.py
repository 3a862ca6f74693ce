"""Loss landscapes: surfaces around a trained network, planes through networks, sharpness.

Kinds:

- ``landscape``: the 1-D (line) or 2-D surface of loss and accuracy around a
  trained run along filter-normalised random directions (Li et al. 2018,
  "Visualizing the Loss Landscape of Neural Nets"), on a fixed, seeded subset
  of the test (or training) set. The grid is ``span * linspace(-1, 1, grid)``
  per axis; the centre value (coordinate 0) is always evaluated too, and
  equals the run's own loss on the same data.
- ``landscape_plane``: a 2-D surface in a plane through networks: the plane of
  three networks (A, B and C, or A, B and B aligned to A by weight matching),
  or the PCA plane of one run's training trajectory (Li et al. 2018, sec. 7).
  The networks' (or the path's) coordinates in the plane are stored.
- ``sharpness``: the top-k Hessian eigenvalues (Lanczos) and the Hessian trace
  (Hutchinson 1989, Rademacher probes) from Hessian-vector products
  (``torch.func``), on a fixed batch.

Directions (Li et al. 2018, sec. 4): a Gaussian direction ``d`` is drawn for
every parameter, then each filter (conv: output channel; linear: output
neuron) is rescaled to the norm of the weight's filter,
``d_f <- d_f / ||d_f|| * ||w_f||``. Raw directions depend only on
``direction_seed`` and the parameters' names and shapes, so runs of one
architecture (dense and pruned) share them. Biases and BatchNorm parameters
(every parameter of one dimension) get a zero direction by default; with
``include_bias_bn`` their direction is the parameter itself, ``d = w``, as Li
et al.'s reference code does (``net_plotter.normalize_directions_for_weights``
with ``ignore=''``): each element is a filter of norm ``|w|``, and the random
draw is replaced by w itself, so both directions move these parameters alike
(multiplicatively, by ``1 + a + b``). BatchNorm running statistics are never moved and
BN runs in eval mode. Sparse networks with ``respect_mask`` (our convention,
not in Li et al.): the direction is zero on pruned weights and each filter is
normalised over its surviving weights only, so every point of the surface
keeps the run's sparsity.

Engine (tuned by measurement, ``benchmarks/bench_landscape.py``): the first
layer is linear in its weights, so on a fixed batch
``f1(x; W + a D1 + b D2) = x W + a x D1 + b x D2``: the three products are
computed once per batch and combined per grid point; only the rest of the
network runs per point. Along a grid row (fixed second coefficient) the sums
over the other directions are cached, so a point costs one
``row + a * dir_0`` per moving tensor. ``precision="bf16"`` runs the rest on a
bfloat16 copy of the network (weights summed in fp32 and rounded once per
point, straight into the bf16 parameters; the first-layer combination
likewise; Linear+ReLU pairs of a Sequential fused into one oneDNN call; the
plain engine uses ``torch.autocast("cpu", bfloat16)``); five grid points are
also evaluated in fp32 and the largest relative loss error is stored. Rows of the grid are
written to ``store.partial_dir(spec)`` as they finish, so an interrupted
computation resumes at the first missing row.
"""

from __future__ import annotations

import copy
import math
import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from analysis import limits
from analysis.api import Analysis, Context, Kind, Study
from analysis.data import eval_subset, load
from analysis.errors import SpecError
from analysis.permutation import (
    PermutationError,
    apply_permutation,
    check_same_architecture,
    weight_matching,
)
from analysis.sparsity.base import Masks
from analysis.specs import (
    SPEC,
    DataSpec,
    RunSpec,
    check_bool,
    check_float,
    check_int,
    check_literals,
    check_option,
    spec_key,
)

Params = dict[str, torch.Tensor]
#: Samples per forward pass of the engine.
ENGINE_BATCH = 2000
#: Grid points also evaluated in fp32 when the surface is computed in bf16.
CHECK_POINTS = 5


# ---------------------------------------------------------------------------
# specs


def _check_grid(owner: str, grid: Any, span: Any) -> None:
    """Raise SpecError unless ``grid`` is an int in [2, 401] and ``span`` a float > 0."""
    check_int(owner, "grid", grid, lo=2, hi=401)
    check_float(owner, "span", span, 0.0, 1e6, lo_open=True)


def _check_data(owner: str, subset: Any, subset_seed: Any) -> None:
    """Raise SpecError unless the subset size and seed are valid."""
    check_int(owner, "subset", subset, lo=1, hi=1_000_000)
    check_int(owner, "subset_seed", subset_seed, lo=0)


@dataclass(**SPEC)
class LandscapeSettings:
    """``[analyses.landscape]`` of a study.

    ``dims`` which surfaces (1: a line, 2: a grid) per run, each ``grid``
    points per axis over ``[-span, span]``; ``subset`` samples of the test set
    (``split``), seeded by ``subset_seed``. ``seeds``: the runs of the first
    seed only (default, keeps the demo cheap) or of every seed. ``trajectory``
    adds each run's PCA trajectory plane; ``model_plane`` (2+ seeds) adds the
    plane through run A (seed 0), B (seed 1) and B aligned to A by weight
    matching. ``sharpness_topk`` Hessian eigenvalues (0: none) and
    ``hutchinson_samples`` probes of the trace, on ``sharpness_batch`` samples.
    """

    grid: int = 31
    span: float = 1.0
    subset: int = 1000
    subset_seed: int = 0
    split: str = "test"
    direction_seed: int = 0
    respect_mask: bool = True
    include_bias_bn: bool = False
    precision: str = "fp32"
    dims: tuple[int, ...] = (1, 2)
    seeds: str = "first"
    trajectory: bool = True
    model_plane: bool = False
    plane_grid: int = 21
    plane_margin: float = 0.3
    sharpness_topk: int = 3
    hutchinson_samples: int = 20
    sharpness_batch: int = 1000

    def __post_init__(self) -> None:
        owner = "landscape"
        _check_grid(owner, self.grid, self.span)
        _check_data(owner, self.subset, self.subset_seed)
        check_option(owner, "split", self.split, ("test", "train"))
        check_option(owner, "precision", self.precision, ("fp32", "bf16"))
        check_option(owner, "seeds", self.seeds, ("first", "all"))
        check_int(owner, "direction_seed", self.direction_seed, lo=0)
        for name in ("respect_mask", "include_bias_bn", "trajectory", "model_plane"):
            check_bool(owner, name, getattr(self, name))
        if not self.dims or len(set(self.dims)) != len(self.dims) or set(self.dims) - {1, 2}:
            raise SpecError("dims", "a non-empty list of 1 and/or 2", self.dims, owner=owner)
        check_int(owner, "plane_grid", self.plane_grid, lo=2, hi=401)
        check_float(owner, "plane_margin", self.plane_margin, 0.0, 10.0)
        check_int(owner, "sharpness_topk", self.sharpness_topk, lo=0, hi=50)
        check_int(owner, "hutchinson_samples", self.hutchinson_samples, lo=0, hi=10_000)
        check_int(owner, "sharpness_batch", self.sharpness_batch, lo=1, hi=100_000)


@dataclass(**SPEC)
class LandscapeSpec:
    """A 1-D or 2-D surface of loss/accuracy around ``run`` along random directions."""

    kind: ClassVar[str] = "landscape"
    run: RunSpec = field(default_factory=RunSpec)
    dims: int = 2
    grid: int = 31
    span: float = 1.0
    subset: int = 1000
    subset_seed: int = 0
    split: Literal["test", "train"] = "test"
    direction_seed: int = 0
    respect_mask: bool = True
    include_bias_bn: bool = False
    precision: Literal["fp32", "bf16"] = "fp32"

    def __post_init__(self) -> None:
        check_literals(self)
        check_int("LandscapeSpec", "dims", self.dims, lo=1, hi=2)
        _check_grid("LandscapeSpec", self.grid, self.span)
        _check_data("LandscapeSpec", self.subset, self.subset_seed)
        check_int("LandscapeSpec", "direction_seed", self.direction_seed, lo=0)
        check_bool("LandscapeSpec", "respect_mask", self.respect_mask)
        check_bool("LandscapeSpec", "include_bias_bn", self.include_bias_bn)

    @property
    def label(self) -> str:
        """Human label."""
        shape = f"{self.grid}" if self.dims == 1 else f"{self.grid}x{self.grid}"
        return f"landscape {self.dims}-D {shape} ({self.precision}): {self.run.label}"


@dataclass(**SPEC)
class PlaneSpec:
    """A 2-D surface in the plane through networks.

    ``plane="models"``: ``runs`` holds 3 runs (A, B, C), or 2 runs (A, B) with
    ``align=True``, C then being B aligned to A by weight matching (seed
    ``subset_seed``). ``plane="trajectory"``: ``runs`` holds 1 run, the plane
    is the PCA plane of its trajectory around the final weights. The grid
    covers the networks' (path's) coordinates plus ``margin`` of their extent
    on each side, ``grid`` points per axis.
    """

    kind: ClassVar[str] = "landscape_plane"
    runs: tuple[RunSpec, ...] = (RunSpec(),)
    plane: Literal["models", "trajectory"] = "trajectory"
    align: bool = False
    grid: int = 21
    margin: float = 0.3
    subset: int = 1000
    subset_seed: int = 0
    split: Literal["test", "train"] = "test"
    precision: Literal["fp32", "bf16"] = "fp32"

    def __post_init__(self) -> None:
        owner = "PlaneSpec"
        check_literals(self)
        check_bool(owner, "align", self.align)
        check_int(owner, "grid", self.grid, lo=2, hi=401)
        check_float(owner, "margin", self.margin, 0.0, 10.0)
        _check_data(owner, self.subset, self.subset_seed)
        want = 1 if self.plane == "trajectory" else (2 if self.align else 3)
        if len(self.runs) != want:
            raise SpecError(
                "runs",
                f"{want} run(s) for plane={self.plane!r}, align={self.align}",
                len(self.runs),
                owner=owner,
            )
        first = self.runs[0]
        for r in self.runs[1:]:
            if r.data != first.data or r.model != first.model:
                raise SpecError(
                    "runs",
                    f"runs of the same data and model as the first ({first.data}, {first.model})",
                    f"{r.data}, {r.model}",
                    owner=owner,
                )

    @property
    def label(self) -> str:
        """Human label."""
        names = " / ".join(r.label for r in self.runs)
        extra = " + aligned" if self.align else ""
        return f"landscape plane ({self.plane}{extra}): {names}"


@dataclass(**SPEC)
class SharpnessSpec:
    """Top-k Hessian eigenvalues and Hutchinson trace of ``run``'s loss on a fixed batch."""

    kind: ClassVar[str] = "sharpness"
    run: RunSpec = field(default_factory=RunSpec)
    topk: int = 3
    hutchinson_samples: int = 20
    batch: int = 1000
    subset_seed: int = 0
    split: Literal["test", "train"] = "test"
    seed: int = 0
    lanczos_iters: int = 30
    respect_mask: bool = True

    def __post_init__(self) -> None:
        owner = "SharpnessSpec"
        check_literals(self)
        check_int(owner, "topk", self.topk, lo=0, hi=50)
        check_int(owner, "hutchinson_samples", self.hutchinson_samples, lo=0, hi=10_000)
        _check_data(owner, self.batch, self.subset_seed)
        check_int(owner, "seed", self.seed, lo=0)
        check_int(owner, "lanczos_iters", self.lanczos_iters, lo=max(1, self.topk), hi=1000)
        check_bool(owner, "respect_mask", self.respect_mask)

    @property
    def label(self) -> str:
        """Human label."""
        return f"sharpness: {self.run.label}"


# ---------------------------------------------------------------------------
# directions


def trainable(model: nn.Module) -> Params:
    """The model's parameters by state-dict name (detached)."""
    return {n: p.detach() for n, p in model.named_parameters()}


def random_directions(params: Params, seed: int, index: int) -> Params:
    """Raw N(0, 1) directions for every parameter, seeded by (seed, index) only.

    One generator walks the parameters in name order, so the draws depend only
    on the seed, the direction index and the names and shapes.
    """
    entropy = np.random.SeedSequence([seed, index]).generate_state(2)
    gen = torch.Generator().manual_seed(int(entropy[0]) << 32 | int(entropy[1]))
    return {
        name: torch.randn(p.shape, generator=gen, dtype=torch.float32)
        for name, p in sorted(params.items())
    }


def filter_normalize(
    direction: Params,
    params: Params,
    masks: Masks | None = None,
    *,
    include_bias_bn: bool = False,
) -> Params:
    """Li et al. 2018's filter normalisation: ``d_f <- d_f / ||d_f|| * ||w_f||`` per filter.

    A filter is an output channel (conv, (out, in, kh, kw)) or an output neuron
    (linear, (out, in)). 1-D parameters (biases, BatchNorm) get ``0``, or
    ``w`` itself with ``include_bias_bn`` (Li et al.'s code). With ``masks``,
    the direction is zeroed on pruned weights first, so each filter is
    normalised over its surviving weights (a filter with none stays 0).
    """
    out = {}
    masks = masks or {}
    for name, w in params.items():
        d = direction[name].to(w.dtype)
        if w.dim() <= 1:
            out[name] = w.clone() if include_bias_bn else torch.zeros_like(w)
            continue
        if name in masks:
            d = d * masks[name].to(d.dtype)
        d_norm = d.flatten(1).norm(dim=1)
        w_norm = w.flatten(1).norm(dim=1)
        scale = torch.where(d_norm > 0, w_norm / d_norm.clamp_min(1e-30), torch.zeros_like(w_norm))
        out[name] = d * scale.view(-1, *([1] * (d.dim() - 1)))
    return out


def surface_directions(
    model: nn.Module,
    masks: Masks | None,
    *,
    dims: int,
    seed: int,
    respect_mask: bool = True,
    include_bias_bn: bool = False,
) -> list[Params]:
    """``dims`` filter-normalised random directions for ``model``'s parameters."""
    params = trainable(model)
    use = masks if respect_mask else None
    return [
        filter_normalize(
            random_directions(params, seed, i), params, use, include_bias_bn=include_bias_bn
        )
        for i in range(dims)
    ]


# ---------------------------------------------------------------------------
# planes through networks


def flat(params: Params, names: list[str]) -> torch.Tensor:
    """Concatenate the named tensors into one float64 vector."""
    return torch.cat([params[n].detach().double().flatten() for n in names])


def unflat(vec: torch.Tensor, like: Params, names: list[str]) -> Params:
    """Split a vector back into tensors shaped like ``like`` (float32)."""
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
    PermutationError unless the three have the same keys and shapes.
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

    The rows ``w_t - w_final`` are decomposed by ``torch.linalg.svd``; the top
    two right-singular vectors are the (unit-norm) directions. Returns
    ([d1, d2], path coords (T, 2), explained variance ratio of the two).
    """
    names = sorted(final)
    end = flat(final, names)
    rows = torch.stack([flat(s, names) - end for s in snapshots])
    if len(rows) < 2:
        raise SpecError(
            "run.trajectory", "at least 2 snapshots besides the final weights", len(rows)
        )
    _, sv, vh = torch.linalg.svd(rows, full_matrices=False)
    basis = vh[:2]
    coords = (rows @ basis.T).numpy()
    ratio = (sv[:2] ** 2 / (sv**2).sum().clamp_min(1e-300)).numpy()
    return [unflat(basis[0], final, names), unflat(basis[1], final, names)], coords, ratio


def box_axes(coords: np.ndarray, grid: int, margin: float) -> tuple[np.ndarray, np.ndarray]:
    """Two axes covering ``coords`` (K, 2) plus ``margin`` of the extent on each side."""
    axes = []
    for k in range(2):
        lo, hi = float(coords[:, k].min()), float(coords[:, k].max())
        extent = max(hi - lo, 1e-3 * max(abs(lo), abs(hi), 1.0))
        axes.append(np.linspace(lo - margin * extent, hi + margin * extent, grid))
    return axes[0], axes[1]


# ---------------------------------------------------------------------------
# the engine


def grid_axis(grid: int, span: float) -> np.ndarray:
    """``span * linspace(-1, 1, grid)`` with the middle point exactly 0 for odd grids."""
    axis = span * np.linspace(-1.0, 1.0, grid)
    if grid % 2:
        axis[grid // 2] = 0.0
    return axis


class _Fixed(nn.Module):
    """Stands in for the first layer: returns a precomputed output, ignores its input."""

    def __init__(self) -> None:
        """No output yet."""
        super().__init__()
        self.out: torch.Tensor | None = None

    def forward(self, _x: torch.Tensor) -> torch.Tensor:
        """The precomputed output."""
        assert self.out is not None
        return self.out


@contextmanager
def _swapped(model: nn.Module, name: str, new: nn.Module) -> Iterator[None]:
    """Temporarily replace submodule ``name`` of ``model`` by ``new``."""
    parent_name, _, attr = name.rpartition(".")
    parent = model.get_submodule(parent_name) if parent_name else model
    old = getattr(parent, attr)
    setattr(parent, attr, new)
    try:
        yield
    finally:
        setattr(parent, attr, old)


def first_layer(model: nn.Module) -> str:
    """Name of the first Linear/Conv2d in forward (registration) order."""
    for name, m in model.named_modules():
        if isinstance(m, nn.Linear | nn.Conv2d):
            return name
    raise ValueError("the model has no Linear or Conv2d layer")


def _layer_out(layer: nn.Module, x: torch.Tensor, w: torch.Tensor, b: torch.Tensor | None):
    """The first layer's op with weight ``w`` and bias ``b`` on input ``x``."""
    if isinstance(layer, nn.Conv2d):
        return layer._conv_forward(x, w, b)
    return F.linear(x, w, b)


class _LinearReLU(nn.Linear):
    """``relu(linear(x))`` in one oneDNN call (bias and ReLU fused into the matmul)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The fused op, or the two ops where this torch lacks it."""
        try:
            return torch.ops.mkldnn._linear_pointwise(x, self.weight, self.bias, "relu", [], "")
        except (AttributeError, RuntimeError):
            return F.relu(F.linear(x, self.weight, self.bias))


def _fuse_linear_relu(model: nn.Module, skip: str) -> None:
    """In every ``nn.Sequential``, fuse each Linear directly followed by a ReLU.

    The Linear keeps its name and parameters (its class becomes
    :class:`_LinearReLU`); the ReLU becomes an Identity. ``skip`` (the first
    layer, which the engine swaps for its precomputed output) is left alone.
    """
    for prefix, seq in model.named_modules():
        if not isinstance(seq, nn.Sequential):
            continue
        names = list(seq._modules)
        for cur, nxt in zip(names, names[1:], strict=False):
            lin, act = seq._modules[cur], seq._modules[nxt]
            if f"{prefix}.{cur}".lstrip(".") == skip:
                continue
            if type(lin) is nn.Linear and type(act) is nn.ReLU:
                lin.__class__ = _LinearReLU
                seq._modules[nxt] = nn.Identity()


@dataclass
class _Working:
    """A private eval-mode copy of the network for one precision of the linear engine.

    ``model``/``params``/``h`` are in ``dtype`` (float32, or bfloat16); centre,
    directions and first-layer products stay float32. ``row_*`` cache, for the
    coefficients of every direction but the first (one grid row),
    ``centre + sum_{k>=1} c_k dir_k`` of the rest parameters and
    ``y0 + sum_{k>=1} c_k y_k`` of the first layer, in fp32: per point only
    ``row + c_0 * dir_0`` is left, one op per tensor, computed in fp32 and
    written (rounded once) straight into the model's parameters and into ``h``
    (the preallocated first-layer outputs, one per batch).
    """

    model: nn.Module
    params: Params
    centre: Params
    dirs: list[Params]
    products: list[tuple[torch.Tensor, list[torch.Tensor]]] = field(default_factory=list)
    dtype: torch.dtype = torch.float32
    row_key: tuple[float, ...] | None = None
    row_params: Params = field(default_factory=dict)
    row_h: list[torch.Tensor] = field(default_factory=list)
    h: list[torch.Tensor] = field(default_factory=list)


@dataclass
class SurfaceProblem:
    """What a surface evaluates: ``centre + a * dirs[0] (+ b * dirs[1])`` on (x, y).

    ``model`` is any network of the architecture (not modified); BatchNorm in
    eval mode with the model's own statistics. x: (N, C, H, W), y: (N,).
    Engines: ``plain`` sets every weight and runs the whole network;
    ``linear`` combines the cached first-layer products and runs the rest.
    Precision ``bf16``: the plain engine runs under bf16 autocast; the linear
    engine keeps a bfloat16 copy of the network, centre, directions and
    products (computed in fp32, rounded once), so weights and activations
    move half the bytes; losses are summed in fp32.
    """

    model: nn.Module
    centre: Params
    dirs: list[Params]
    x: torch.Tensor
    y: torch.Tensor
    batch: int = ENGINE_BATCH
    _work: dict = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        """Work on a private eval-mode copy of the model with the centre loaded."""
        model = copy.deepcopy(self.model).eval()
        with torch.no_grad():
            for n, p in model.named_parameters():
                p.requires_grad_(False)
                p.copy_(self.centre[n])
        self.first = first_layer(model)
        params = dict(model.named_parameters())
        self._work["fp32"] = _Working(model, params, self.centre, self.dirs)
        # which directions move each parameter (biases/BN are usually still): checked once
        self.moving = {n: [k for k, d in enumerate(self.dirs) if d[n].any()] for n in params}
        self.rest = [n for n in params if not n.startswith(self.first + ".")]
        self.moving_first = [n for n in self.rest if 0 in self.moving[n]]

    @property
    def params(self) -> Params:
        """The fp32 working model's parameters (what the last fp32 evaluation used)."""
        return self._work["fp32"].params

    def _set(self, work: _Working, names: list[str], coeffs: tuple[float, ...]) -> None:
        """Write ``centre + sum_k c_k dir_k`` into the working model's named parameters."""
        with torch.no_grad():
            for n in names:
                p = work.params[n]
                steps = [(coeffs[k], work.dirs[k][n]) for k in self.moving[n] if k < len(coeffs)]
                steps = [(c, d) for c, d in steps if c != 0.0]
                if not steps:
                    p.copy_(work.centre[n])
                    continue
                torch.add(work.centre[n], steps[0][1], alpha=steps[0][0], out=p)
                for c, d in steps[1:]:
                    p.add_(d, alpha=c)

    def _linear_work(self, precision: str) -> _Working:
        """The working copy for the linear engine, first-layer products computed once."""
        work = self._work["fp32"]
        if not work.products:
            work.products = self._first_products(work)
            work.h = [torch.empty_like(y0) for y0, _ in work.products]
        if precision == "fp32":
            return work
        if "bf16" not in self._work:
            # The per-point sums stay in fp32 and are rounded once, straight
            # into the bf16 parameters and first-layer output (a mixed-dtype
            # ``torch.add(..., out=bf16)``, one pass). Keeping the directions and
            # products in bf16 was no faster by measurement and tripled the
            # loss error at the grid's corners (0.83% against 0.24%).
            low = torch.bfloat16
            model = copy.deepcopy(work.model).to(low)
            # bias + ReLU fused into the matmul: measured -3..5% per grid point
            _fuse_linear_relu(model, self.first)
            self._work["bf16"] = _Working(
                model,
                dict(model.named_parameters()),
                self.centre,
                self.dirs,
                work.products,
                dtype=low,
                h=[torch.empty_like(y0, dtype=low) for y0 in work.h],
            )
        return self._work["bf16"]

    def _row(self, work: _Working, coeffs: tuple[float, ...]) -> None:
        """Make ``work.row_*`` the sums for ``coeffs[1:]`` (computed in fp32, once per row).

        A grid is walked row by row (``compute_grid``), so this runs once per
        row and the per-point work is a single ``row + c_0 * dir_0``.
        """
        key = tuple(coeffs[1:])
        if work.row_key == key:
            return
        work.row_key = None  # (an interruption leaves no half-written row behind)
        with torch.no_grad():
            for n in self.rest:
                acc = self.centre[n].clone()
                for k in self.moving[n]:
                    if k >= 1 and coeffs[k] != 0.0:
                        acc.add_(self.dirs[k][n], alpha=coeffs[k])
                work.row_params[n] = acc
                if 0 not in self.moving[n]:  # constant along the row: written once here
                    work.params[n].copy_(acc)
            work.row_h = []
            for y0, ys in work.products:
                acc = y0.clone()
                for c, yd in zip(coeffs[1:], ys[1:], strict=True):
                    if c != 0.0:
                        acc.add_(yd, alpha=c)
                work.row_h.append(acc)
        work.row_key = key

    def _first_products(self, work: _Working) -> list[tuple[torch.Tensor, list[torch.Tensor]]]:
        """Per batch: (first-layer output at the centre, [its output along each direction])."""
        layer = work.model.get_submodule(self.first)
        w, b = f"{self.first}.weight", f"{self.first}.bias"
        captured: list[torch.Tensor] = []
        hook = layer.register_forward_pre_hook(lambda _m, args: captured.append(args[0]))
        out = []
        try:
            with torch.no_grad():
                self._set(work, list(work.params), ())
                for xb in self.x.split(self.batch):
                    captured.clear()
                    work.model(xb)  # captures the first layer's input
                    inp = captured[0]
                    y0 = layer(inp)
                    ys = [
                        _layer_out(layer, inp, d[w], d.get(b) if layer.bias is not None else None)
                        for d in self.dirs
                    ]
                    out.append((y0, ys))
        finally:
            hook.remove()
        return out

    def evaluate(
        self, coeffs: tuple[float, ...], *, engine: str = "linear", precision: str = "fp32"
    ) -> tuple[float, float]:
        """(mean cross-entropy, accuracy) at ``centre + sum_k coeffs[k] * dirs[k]``."""
        if precision not in ("fp32", "bf16"):
            raise ValueError(f"precision must be 'fp32' or 'bf16', got {precision!r}")
        loss_sum, correct = 0.0, 0
        with torch.no_grad():
            if engine == "plain":
                work = self._work["fp32"]
                work.row_key = None  # the linear engine's row parameters are overwritten
                self._set(work, list(work.params), coeffs)
                for xb, yb in zip(self.x.split(self.batch), self.y.split(self.batch), strict=True):
                    if precision == "bf16":
                        with torch.autocast("cpu", dtype=torch.bfloat16):
                            logits = work.model(xb)
                    else:
                        logits = work.model(xb)
                    loss_sum, correct = _accumulate(logits, yb, loss_sum, correct)
            elif engine == "linear":
                work = self._linear_work(precision)
                coeffs = tuple(coeffs) + (0.0,) * (len(self.dirs) - len(coeffs))
                self._row(work, coeffs)
                a = coeffs[0] if coeffs else 0.0
                # per point only the parameters moved by the first direction; the
                # rest were written by _row (copying the ~13 still biases every
                # point cost 0.3 ms of ~12 ms per bf16 point)
                for n in self.moving_first:
                    if a != 0.0:
                        torch.add(work.row_params[n], work.dirs[0][n], alpha=a, out=work.params[n])
                    else:
                        work.params[n].copy_(work.row_params[n])
                fixed = _Fixed()
                for xb, yb, h, base, (_, ys) in zip(
                    self.x.split(self.batch),
                    self.y.split(self.batch),
                    work.h,
                    work.row_h,
                    work.products,
                    strict=True,
                ):
                    # always written into h (never the cached row itself), so
                    # even an in-place op in the model cannot corrupt the cache
                    if a != 0.0 and ys:
                        torch.add(base, ys[0], alpha=a, out=h)
                    else:
                        h.copy_(base)
                    fixed.out = h
                    with _swapped(work.model, self.first, fixed):
                        # Everything before the first layer is per-pixel (input
                        # normalisation, flatten) and its output is ignored: feed
                        # a 1x1 slice so it costs nothing.
                        logits = work.model(xb[..., :1, :1])
                    loss_sum, correct = _accumulate(logits, yb, loss_sum, correct)
            else:
                raise ValueError(f"engine must be 'plain' or 'linear', got {engine!r}")
        n = max(len(self.x), 1)
        return loss_sum / n, correct / n


def _accumulate(
    logits: torch.Tensor, y: torch.Tensor, loss_sum: float, correct: int
) -> tuple[float, int]:
    """Add a batch's summed cross-entropy (in fp32) and correct count.

    ``logsumexp - logit[y]`` rather than ``F.cross_entropy``: on (2000, 10)
    logits the latter's log_softmax over a last dimension of 10 took 0.40 ms,
    this 0.15 ms (same value to fp32 rounding).
    """
    logits = logits.float()
    picked = logits.gather(1, y.unsqueeze(1)).squeeze(1)
    loss_sum += float((torch.logsumexp(logits, 1) - picked).sum())
    return loss_sum, correct + int((logits.argmax(1) == y).sum())


def _save_row(path: Path, i: int, loss: np.ndarray, acc: np.ndarray) -> None:
    """Write row ``i`` atomically (temp file + rename)."""
    target = path / f"row_{i:05d}.npz"
    tmp = path / f".row_{i:05d}.{os.getpid()}.tmp.npz"
    np.savez(tmp, loss=loss, acc=acc)
    os.replace(tmp, target)


def _load_row(path: Path | None, i: int, n: int) -> tuple[np.ndarray, np.ndarray] | None:
    """Row ``i`` if a complete chunk of length ``n`` is there, else None (damaged: ignored)."""
    if path is None:
        return None
    target = path / f"row_{i:05d}.npz"
    if not target.exists():
        return None
    try:
        with np.load(target, allow_pickle=False) as z:
            loss, acc = z["loss"], z["acc"]
    except (OSError, ValueError, KeyError):
        return None
    if loss.shape != (n,) or acc.shape != (n,):
        return None
    return loss, acc


def compute_grid(
    problem: SurfaceProblem,
    xs: np.ndarray,
    ys: np.ndarray | None = None,
    *,
    engine: str = "linear",
    precision: str = "fp32",
    partial: Path | None = None,
    on_row: Callable[[int, int], None] | None = None,
    only: range | None = None,
) -> dict[str, np.ndarray]:
    """Loss and accuracy on the grid ``xs`` (x ``ys``), row by row, resumable.

    Returns ``loss``/``acc`` of shape (len(xs),) for a line or (len(ys),
    len(xs)) for a plane (row i is ``ys[i]``), and ``evaluated_rows``: the rows
    computed by this call (the others were read from ``partial``). ``on_row(i,
    rows)`` is called after each row is saved; an exception from it interrupts.
    ``only``: visit just these rows (a chunk run as its own job; the others stay 0).
    """
    rows = [None] if ys is None else list(ys)
    loss = np.zeros((len(rows), len(xs)))
    acc = np.zeros((len(rows), len(xs)))
    evaluated = []
    for i, b in enumerate(rows):
        if only is not None and i not in only:
            continue
        done = _load_row(partial, i, len(xs))
        if done is None:
            for j, a in enumerate(xs):
                coeffs = (float(a),) if b is None else (float(a), float(b))
                loss[i, j], acc[i, j] = problem.evaluate(coeffs, engine=engine, precision=precision)
            if partial is not None:
                _save_row(partial, i, loss[i], acc[i])
            evaluated.append(i)
        else:
            loss[i], acc[i] = done
        if on_row is not None:
            on_row(i + 1, len(rows))
    if ys is None:
        loss, acc = loss[0], acc[0]
    return {"loss": loss, "acc": acc, "evaluated_rows": np.array(evaluated, dtype=np.int64)}


def precision_error(
    problem: SurfaceProblem, xs: np.ndarray, ys: np.ndarray | None, loss: np.ndarray
) -> float:
    """Max relative loss error of ``loss`` (a bf16 grid) against fp32 at a few grid points.

    The points: the four corners (the two ends of a line) and the middle.
    """
    pts = [(0, 0), (0, len(xs) - 1), (0, len(xs) // 2)]
    if ys is not None:
        r = len(ys) - 1
        pts = [(0, 0), (0, len(xs) - 1), (r, 0), (r, len(xs) - 1), (r // 2, len(xs) // 2)]
    err = 0.0
    for i, j in pts[:CHECK_POINTS]:
        coeffs = (float(xs[j]),) if ys is None else (float(xs[j]), float(ys[i]))
        ref, _ = problem.evaluate(coeffs, precision="fp32")
        got = loss[j] if ys is None else loss[i, j]
        err = max(err, abs(float(got) - ref) / max(abs(ref), 1e-12))
    return err


def eval_batch(data: DataSpec, split: str, n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """A fixed, seeded subset of ``n`` samples (at most all) of the test or train split."""
    splits = load(data)
    x, y = (splits.test_x, splits.test_y) if split == "test" else (splits.train_x, splits.train_y)
    idx = eval_subset(min(n, len(x)), len(x), seed)
    return x[idx], y[idx]


def _surface_doc(grid: dict, problem: SurfaceProblem, precision: str, xs, ys) -> dict:
    """Summary numbers of a surface: centre, min/max loss, precision error."""
    centre_loss, centre_acc = problem.evaluate(tuple(0.0 for _ in problem.dirs))
    out = {
        "centre_loss": centre_loss,
        "centre_acc": centre_acc,
        "min_loss": float(np.min(grid["loss"])),
        "max_loss": float(np.max(grid["loss"])),
        "max_acc": float(np.max(grid["acc"])),
        "min_acc": float(np.min(grid["acc"])),
        "precision": precision,
        "precision_rel_error": None,
    }
    if precision == "bf16":
        out["precision_rel_error"] = precision_error(problem, xs, ys, grid["loss"])
    return out


def _sparsity(params: Params, masks: Masks) -> float:
    """Fraction of exact zeros among the masked (prunable) weights (0 if dense)."""
    if not masks:
        return 0.0
    zeros = sum(int((params[n] == 0).sum()) for n in masks)
    return zeros / max(sum(params[n].numel() for n in masks), 1)


def _landscape_problem(
    spec: LandscapeSpec, run: Any
) -> tuple[SurfaceProblem, np.ndarray, np.ndarray | None]:
    """The surface problem of ``spec`` around the trained ``run``, and its grid axes."""
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
    problem = SurfaceProblem(model=model, centre=trainable(model), dirs=dirs, x=x, y=y)
    xs = grid_axis(spec.grid, spec.span)
    return problem, xs, (xs if spec.dims == 2 else None)


def compute_landscape(spec: LandscapeSpec, ctx: Context) -> tuple[dict, dict]:
    """The surface around ``spec.run`` along filter-normalised random directions."""
    ctx.check_memory(spec)  # refuse a grid that cannot fit, before anything starts
    run = ctx.get(spec.run)
    problem, xs, ys = _landscape_problem(spec, run)
    partial = ctx.store.partial_dir(spec)
    start = time.perf_counter()
    grid = compute_grid(
        problem,
        xs,
        ys,
        precision=spec.precision,
        partial=partial,
        on_row=lambda i, n: ctx.progress(spec.label, i, n),
    )
    seconds = time.perf_counter() - start
    doc = {
        "run": spec.run.label,
        "dims": spec.dims,
        "n": len(problem.x),
        "split": spec.split,
        "respect_mask": spec.respect_mask,
        "sparsity": _sparsity(problem.centre, run.masks),
        "grid_seconds": seconds,
        "rows_evaluated": int(len(grid["evaluated_rows"])),
        **_surface_doc(grid, problem, spec.precision, xs, ys),
    }
    arrays = {"x": xs, "loss": grid["loss"], "acc": grid["acc"]}
    if ys is not None:
        arrays["y"] = ys
    _cleanup(partial)
    summary = {k: doc[k] for k in ("centre_loss", "min_loss", "max_loss", "precision_rel_error")}
    return {"surface.npz": arrays, "landscape.json": doc}, summary


def _cleanup(partial: Path) -> None:
    """Remove the finished partial chunks (the entry is about to be committed)."""
    for f in partial.glob("*.npz"):
        f.unlink(missing_ok=True)
    with suppress(OSError):
        partial.rmdir()


def _plane_problem(
    spec: PlaneSpec, runs: list[Any]
) -> tuple[SurfaceProblem, np.ndarray, np.ndarray, np.ndarray, dict]:
    """The surface problem of ``spec`` through the trained ``runs``: problem, axes, coords, notes."""
    model = runs[0].model()
    params = [trainable(r.model()) for r in runs]
    if spec.plane == "trajectory":
        traj = runs[0].trajectory
        names = list(params[0])
        snaps = [{n: s[n] for n in names} for s in traj.values()]
        dirs, coords, ratio = trajectory_plane(snaps, params[0])
        centre, extra = params[0], {"steps": list(traj), "explained_variance": ratio.tolist()}
    else:
        a, b = params[0], params[1]
        if spec.align:
            ps = model.permutation_spec()
            check_same_architecture(ps, runs[0].state, runs[1].state)
            perm = weight_matching(ps, runs[0].state, runs[1].state, seed=spec.subset_seed)
            c = {n: v for n, v in apply_permutation(ps, perm, runs[1].state).items() if n in a}
        else:
            c = params[2]
        dirs, coords = model_plane(a, b, c)
        centre, extra = (
            a,
            {"models": [r.label for r in spec.runs] + (["B aligned to A"] if spec.align else [])},
        )
    x, y = eval_batch(spec.runs[0].data, spec.split, spec.subset, spec.subset_seed)
    problem = SurfaceProblem(model=model, centre=centre, dirs=dirs, x=x, y=y)
    xs, ys = box_axes(coords, spec.grid, spec.margin)
    return problem, xs, ys, coords, extra


def compute_plane(spec: PlaneSpec, ctx: Context) -> tuple[dict, dict]:
    """The surface in the plane of three networks or of a training trajectory."""
    ctx.check_memory(spec)  # refuse a grid that cannot fit, before anything starts
    problem, xs, ys, coords, extra = _plane_problem(spec, [ctx.get(r) for r in spec.runs])
    partial = ctx.store.partial_dir(spec)
    grid = compute_grid(
        problem,
        xs,
        ys,
        precision=spec.precision,
        partial=partial,
        on_row=lambda i, n: ctx.progress(spec.label, i, n),
    )
    doc = {
        "plane": spec.plane,
        "coords": coords.tolist(),
        "n": len(problem.x),
        **extra,
        **_surface_doc(grid, problem, spec.precision, xs, ys),
    }
    _cleanup(partial)
    arrays = {"x": xs, "y": ys, "loss": grid["loss"], "acc": grid["acc"], "coords": coords}
    summary = {k: doc[k] for k in ("centre_loss", "min_loss", "max_loss")}
    return {"surface.npz": arrays, "plane.json": doc}, summary


def grid_rows(spec: Any) -> int | None:
    """Rows of a 2-D surface spec (which the executor can split into chunks), else None."""
    if isinstance(spec, LandscapeSpec) and spec.dims == 2 or isinstance(spec, PlaneSpec):
        return spec.grid
    return None


def fill_rows(spec: LandscapeSpec | PlaneSpec, ctx: Context, rows: range) -> list[int]:
    """Compute ``rows`` of a 2-D surface into its partial grid in the store (resumable).

    A chunk of the grid run as a job of its own: chunks of one surface run in
    parallel, each writing its row files, and the job that then computes
    ``spec`` finds every row present and only assembles them. Returns the rows
    this call evaluated (the others were there already).
    """
    ctx.check_memory(spec)  # as the single job would: refuse a grid that cannot fit
    if isinstance(spec, LandscapeSpec):
        problem, xs, ys = _landscape_problem(spec, ctx.get(spec.run))
    else:
        problem, xs, ys, _, _ = _plane_problem(spec, [ctx.get(r) for r in spec.runs])
    if ys is None:
        raise ValueError(f"{spec.label} is a line, not a grid: it has no rows to split")
    done = 0

    def on_row(i: int, n: int) -> None:
        nonlocal done
        done += 1
        ctx.progress(f"{spec.label} rows {rows.start}-{rows.stop - 1}", done, len(rows))

    grid = compute_grid(
        problem,
        xs,
        ys,
        precision=spec.precision,
        partial=ctx.store.partial_dir(spec),
        on_row=on_row,
        only=rows,
    )
    return [int(i) for i in grid["evaluated_rows"]]


# ---------------------------------------------------------------------------
# sharpness


@dataclass
class HessianProblem:
    """Hessian-vector products of the mean cross-entropy of ``model`` on (x, y).

    Over every parameter (flattened in name order); with ``masks`` the vectors
    are masked, i.e. the Hessian restricted to the surviving weights (pruned
    coordinates give 0). BatchNorm in eval mode.
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
        self.names = sorted(named)  # jvp needs primals and tangents in one key order
        self.params = {n: named[n].detach() for n in self.names}
        self.buffers = dict(self.model.named_buffers())
        self.dim = sum(self.params[n].numel() for n in self.names)
        masks = self.masks or {}
        self.mask = torch.cat(
            [
                (masks[n] if n in masks else torch.ones_like(self.params[n])).float().flatten()
                for n in self.names
            ]
        )

        def loss(p: Params) -> torch.Tensor:
            out = functional_call(self.model, (p, self.buffers), (self.x,))
            return F.cross_entropy(out, self.y)

        def hvp(v: Params) -> Params:
            return jvp(grad(loss), (self.params,), (v,))[1]

        self._hvp = hvp

    def hvp(self, v: torch.Tensor) -> torch.Tensor:
        """H v for a flat (dim,) vector (masked on both sides)."""
        v = v * self.mask
        out = self._hvp(unflat_f32(v, self.params, self.names))
        return torch.cat([out[n].flatten() for n in self.names]) * self.mask


def unflat_f32(vec: torch.Tensor, like: Params, names: list[str]) -> Params:
    """Split a flat vector into float32 tensors shaped like ``like``."""
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
) -> list[float]:
    """Top-``k`` (largest algebraic) eigenvalues of a symmetric operator by Lanczos.

    Lanczos (1950) with full reorthogonalisation (float64 basis), ``iters``
    steps (at most ``dim``), Ritz values from ``torch.linalg.eigvalsh`` of the
    tridiagonal matrix. Stops early on an invariant subspace.
    """
    m = min(iters, dim)
    v = torch.randn(dim, generator=gen, dtype=torch.float64)
    if mask is not None:
        v = v * mask.double()
    v = v / v.norm()
    basis = [v]
    alphas, betas = [], []
    for j in range(m):
        w = hvp(basis[j].float()).double()
        alpha = float(w @ basis[j])
        alphas.append(alpha)
        q = torch.stack(basis)
        w = w - q.T @ (q @ w)
        w = w - q.T @ (q @ w)  # twice is enough (Kahan-Parlett)
        beta = float(w.norm())
        if j == m - 1 or beta < 1e-10:
            break
        betas.append(beta)
        basis.append(w / beta)
    t = torch.diag(torch.tensor(alphas, dtype=torch.float64))
    if betas:
        off = torch.tensor(betas[: len(alphas) - 1], dtype=torch.float64)
        t = t + torch.diag(off, 1) + torch.diag(off, -1)
    ritz = torch.linalg.eigvalsh(t).flip(0)
    return [float(r) for r in ritz[:k]]


def hutchinson_trace(
    hvp: Callable[[torch.Tensor], torch.Tensor],
    dim: int,
    samples: int,
    gen: torch.Generator,
    mask: torch.Tensor | None = None,
) -> tuple[float, float]:
    """Hutchinson's estimate of tr(H): mean of ``v^T H v`` over Rademacher ``v``; (mean, stderr)."""
    vals = []
    for _ in range(samples):
        v = torch.randint(0, 2, (dim,), generator=gen).float() * 2 - 1
        if mask is not None:
            v = v * mask
        vals.append(float(v @ hvp(v)))
    arr = np.asarray(vals)
    stderr = float(arr.std(ddof=1) / math.sqrt(len(arr))) if len(arr) > 1 else float("nan")
    return float(arr.mean()), stderr


def compute_sharpness(spec: SharpnessSpec, ctx: Context) -> tuple[dict, dict]:
    """Top-k Hessian eigenvalues (Lanczos) and Hutchinson trace of the run's loss."""
    run = ctx.get(spec.run)
    x, y = eval_batch(spec.run.data, spec.split, spec.batch, spec.subset_seed)
    masks = run.masks if spec.respect_mask else None
    prob = HessianProblem(run.model(), x, y, masks)
    seeds = np.random.SeedSequence([spec.seed, 7]).generate_state(2)
    start = time.perf_counter()
    eig = []
    if spec.topk:
        ctx.progress(spec.label, 0, 2)
        gen = torch.Generator().manual_seed(int(seeds[0]))
        eig = lanczos_top(prob.hvp, prob.dim, spec.topk, spec.lanczos_iters, gen, prob.mask)
    trace, stderr = float("nan"), float("nan")
    if spec.hutchinson_samples:
        ctx.progress(spec.label, 1, 2)
        gen = torch.Generator().manual_seed(int(seeds[1]))
        trace, stderr = hutchinson_trace(
            prob.hvp, prob.dim, spec.hutchinson_samples, gen, prob.mask
        )
    ctx.progress(spec.label, 2, 2)
    doc = {
        "run": spec.run.label,
        "eigenvalues": eig,
        "trace": trace,
        "trace_stderr": stderr,
        "n": len(x),
        "params": prob.dim,
        "free_params": int(prob.mask.sum()),
        "seconds": time.perf_counter() - start,
    }
    return {"sharpness.json": doc}, {k: doc[k] for k in ("eigenvalues", "trace")}


# ---------------------------------------------------------------------------
# study level


def _runs(study: Study, s: LandscapeSettings) -> list[RunSpec]:
    """The runs the landscape part looks at (first seed only, unless ``seeds='all'``)."""
    runs = study.runs()
    return runs if s.seeds == "all" else [r for r in runs if r.seed == study.seeds[0]]


def landscape_specs(study: Study) -> list[Any]:
    """Every landscape, plane and sharpness spec of the study.

    Per run (see :func:`_runs`): one surface per ``dims``, the trajectory plane
    (if asked), sharpness (if ``sharpness_topk`` or ``hutchinson_samples``);
    with ``model_plane`` and 2+ seeds, per run of the first seed the plane
    through it, its seed-1 twin and the twin aligned by weight matching.
    """
    s = study.analysis("landscape")
    data = dict(subset=s.subset, subset_seed=s.subset_seed, split=s.split)
    out: list[Any] = []
    for r in _runs(study, s):
        out += [
            LandscapeSpec(
                run=r,
                dims=d,
                grid=s.grid,
                span=s.span,
                direction_seed=s.direction_seed,
                respect_mask=s.respect_mask,
                include_bias_bn=s.include_bias_bn,
                precision=s.precision,
                **data,
            )
            for d in s.dims
        ]
        plane = dict(grid=s.plane_grid, margin=s.plane_margin, precision=s.precision, **data)
        if s.trajectory:
            out.append(PlaneSpec(runs=(r,), plane="trajectory", **plane))
        if s.model_plane and len(study.seeds) >= 2 and r.seed == study.seeds[0]:
            out.append(
                PlaneSpec(
                    runs=(r, r.replace(seed=study.seeds[1])), plane="models", align=True, **plane
                )
            )
        if s.sharpness_topk or s.hutchinson_samples:
            out.append(
                SharpnessSpec(
                    run=r,
                    topk=s.sharpness_topk,
                    hutchinson_samples=s.hutchinson_samples,
                    batch=s.sharpness_batch,
                    subset_seed=s.subset_seed,
                    split=s.split,
                    lanczos_iters=max(30, s.sharpness_topk),
                    respect_mask=s.respect_mask,
                )
            )
    return out


SURFACE_FIELDS = (
    "centre_loss",
    "centre_acc",
    "min_loss",
    "max_loss",
    "precision",
    "precision_rel_error",
)


def summarize_landscape(study: Study, store: Any) -> dict:
    """The ``landscape`` section of ``show --json`` (schema: docs/summary.md)."""
    from analysis import api

    s = study.analysis("landscape")
    by_run: dict[str, dict] = {}
    planes = []
    for spec in landscape_specs(study):
        status = api.status(spec, store)
        item: dict = {"label": spec.label, "key": spec_key(spec), "status": status}
        if status == "failed":
            item["error"] = (store.failure(spec) or "").splitlines()[0]
        entry = api.get(spec, store=store, compute=False) if status == "cached" else None
        if isinstance(spec, PlaneSpec):
            item.update(plane=spec.plane, runs=[r.label for r in spec.runs], align=spec.align)
            if entry is not None:
                doc = entry.read("plane.json")
                item.update({k: doc[k] for k in SURFACE_FIELDS})
                item["coords"] = doc["coords"]
                item["explained_variance"] = doc.get("explained_variance")
            planes.append(item)
            continue
        run = spec.run
        rec = by_run.setdefault(
            spec_key(run),
            {**run.identity(), "surfaces": [], "sharpness": None},
        )
        if isinstance(spec, LandscapeSpec):
            item["dims"] = spec.dims
            if entry is not None:
                doc = entry.read("landscape.json")
                item.update({k: doc[k] for k in SURFACE_FIELDS})
                item["sparsity"] = doc["sparsity"]
            rec["surfaces"].append(item)
        else:
            if entry is not None:
                doc = entry.read("sharpness.json")
                item.update({k: doc[k] for k in ("eigenvalues", "trace", "trace_stderr", "n")})
            rec["sharpness"] = item
    return {
        "settings": {
            "grid": s.grid,
            "span": s.span,
            "subset": s.subset,
            "split": s.split,
            "direction_seed": s.direction_seed,
            "respect_mask": s.respect_mask,
            "include_bias_bn": s.include_bias_bn,
            "precision": s.precision,
            "dims": list(s.dims),
            "seeds": s.seeds,
        },
        "runs": list(by_run.values()),
        "planes": planes,
    }


# ---------------------------------------------------------------------------
# memory: refuse a grid that cannot fit, before anything starts


def _shape_facts(model_spec: Any, data_name: str) -> tuple[int, int, int]:
    """(input numel, first layer's output numel per sample, parameter count) of a skeleton."""
    import torch

    from analysis.data import dataset_info
    from analysis.models import build_for

    info = dataset_info(data_name)
    model = build_for(model_spec, info).eval()
    layer = model.get_submodule(first_layer(model))
    seen: list[int] = []
    hook = layer.register_forward_hook(lambda _m, _i, out: seen.append(out[0].numel()))
    x = torch.zeros(1, info.in_channels, info.image_size, info.image_size)
    try:
        with torch.no_grad():
            model(x)
    finally:
        hook.remove()
    return x.numel(), seen[0], sum(p.numel() for p in model.parameters())


def check_landscape(spec: Any) -> int:
    """Refuse a landscape surface or plane whose grid would not fit in memory (before it starts)."""
    run = spec.run if hasattr(spec, "run") else spec.runs[0]
    dims = getattr(spec, "dims", 2)
    n = len(eval_batch(run.data, spec.split, spec.subset, spec.subset_seed)[1])
    input_numel, first_out, params = _shape_facts(run.model, run.data.name)
    estimate = limits.landscape_bytes(
        n=n,
        input_numel=input_numel,
        first_out=first_out,
        params=params,
        dims=dims,
        grid=spec.grid,
        precision=spec.precision,
        batch=ENGINE_BATCH,
    )
    return limits.check_memory(
        f"{spec.label} ({n} samples)",
        estimate,
        lower="[analyses.landscape] subset (or grid / plane_grid)",
    )


ANALYSIS = Analysis(
    name="landscape",
    kinds=(
        Kind(
            "landscape",
            LandscapeSpec,
            compute_landscape,
            rows=grid_rows,
            fill_rows=fill_rows,
            memory=check_landscape,
        ),
        Kind(
            "landscape_plane",
            PlaneSpec,
            compute_plane,
            rows=grid_rows,
            fill_rows=fill_rows,
            memory=check_landscape,
        ),
        Kind("sharpness", SharpnessSpec, compute_sharpness),
    ),
    specs=landscape_specs,
    summarize=summarize_landscape,
    settings=LandscapeSettings,
)
