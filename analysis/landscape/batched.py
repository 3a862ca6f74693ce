"""The batched surface engine: a chunk of grid points per forward pass, for accelerators.

The pointwise engine (:mod:`.engine`) evaluates one point at a time. On a GPU
a point of the demo MLP is a few dozen small kernels, so launch overhead, not
arithmetic, sets its rate. This engine evaluates K points at once:
``torch.vmap`` over the points' coefficients of ``torch.func.functional_call``
of the network, each point with its own parameters ``centre + sum_k c_k dir_k``
(a batched matmul, or a grouped convolution, per layer). It is the linear
engine's maths: the first layer's output comes from the same cached products,
``y0 + sum_k c_k (x D_k)`` (:class:`_Replay`), summed in the same order
(the other directions first, then the first), and only the rest of the network
runs per point; the two engines agree to float rounding
(``tests/test_landscape_batched.py``).

BatchNorm, prunescope's rule as in the pointwise engine: every point's
statistics are recomputed on ``bn_x`` in the batches of
:func:`analysis.batchnorm.reset_bn_stats` (``BN_BATCH``, near-equal splits).
A BatchNorm module cannot keep per-point running statistics under ``vmap``, so
each one is replaced by :class:`_PointNorm`, which does what ``reset_bn_stats``
does to it: in the statistics pass it normalises each batch by the batch's own
mean and biased variance (train mode) and keeps the mean and unbiased variance;
their average over the batches is torch's ``momentum=None`` running statistics;
the evaluation then normalises with them (eval mode).

Masks: the directions are zero on pruned weights, so every point keeps the
centre's zeros, as in the pointwise engine. ``precision="bf16"``: each point's
parameters and first-layer output are summed in fp32 and rounded to bf16 once
(as the pointwise bf16 engine does); BatchNorm and the loss stay fp32.

Which engine runs where is decided by measurement (:func:`choose_engine`): on
the CPU the pointwise engine (faster there: ``benchmarks/landscape_gpu.py``);
elsewhere both are timed on the grid's first points on that device and the
faster one computes the grid; the choice and both rates are recorded with the
surface (``engine``).
"""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.func import functional_call

from analysis.batchnorm import BN_BATCH, batchnorms
from analysis.device import full_fp32
from analysis.landscape.engine import SurfaceProblem, _Inputs, batch_sums

#: Most points per vmapped call; the memory budget may allow fewer (:func:`chunk_size`).
MAX_CHUNK = 256
#: What :func:`calibrate` times (after one untimed warm-up each): points of the pointwise
#: engine, chunk-sized calls of the batched one.
CALIBRATION_POINTS = {"pointwise": 16, "batched calls": 2}
DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16}


def _slices(n: int, parts: int) -> list[slice]:
    """The slices of ``torch.tensor_split`` of ``n`` items into ``parts`` near-equal parts."""
    sizes = [len(t) for t in torch.tensor_split(torch.empty(n, 0), max(1, parts))]
    bounds = np.cumsum([0, *sizes])
    return [slice(int(a), int(b)) for a, b in zip(bounds[:-1], bounds[1:], strict=True)]


class _Replay(nn.Module):
    """Stands in for the first layer: ``y0 + sum_{k>=1} c_k along_k + c_0 along_0`` of some samples.

    :meth:`load` sets the samples' products (y0 (m, *F), along (D, m, *F)) and the
    point's coefficients ``c`` (D,) before each call; the input is ignored.
    """

    def __init__(self, dtype: torch.dtype) -> None:
        """A replay whose output is rounded to ``dtype``."""
        super().__init__()
        self.dtype = dtype
        self.rows: tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None = None

    def load(self, inputs: tuple[torch.Tensor, torch.Tensor], sl: slice, c: torch.Tensor) -> None:
        """Serve samples ``sl`` of ``inputs`` (y0, stacked along) at coefficients ``c``."""
        self.rows = (inputs[0][sl], inputs[1][:, sl], c)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The loaded samples' first-layer output (x itself is ignored)."""
        y0, along, c = self.rows
        out = y0
        for k in range(1, len(along)):
            out = out + c[k] * along[k]
        return (out + c[0] * along[0]).to(self.dtype)


class _PointNorm(nn.Module):
    """A BatchNorm layer as :func:`~analysis.batchnorm.reset_bn_stats` then eval mode use it.

    Holds the BatchNorm's own ``weight`` and ``bias`` Parameters (so parameter
    names are unchanged). With ``stats`` None it is in the statistics pass:
    normalise by the batch (mean, biased variance) and keep (mean, unbiased
    variance) in ``seen``; :meth:`settle` averages them into ``stats``, which the
    evaluation then normalises by. Computes in fp32; returns the input's dtype.
    """

    def __init__(self, bn: nn.modules.batchnorm._BatchNorm) -> None:
        """Share ``bn``'s affine parameters and epsilon."""
        super().__init__()
        self.weight, self.bias, self.eps = bn.weight, bn.bias, bn.eps
        self.seen: list[tuple[torch.Tensor, torch.Tensor]] = []
        self.stats: tuple[torch.Tensor, torch.Tensor] | None = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (m, C, ...) -> normalised x, same shape and dtype."""
        xf = x.float()
        shape = (1, -1) + (1,) * (x.dim() - 2)
        if self.stats is None:
            dims = [0, *range(2, x.dim())]
            mean, var = xf.mean(dims), xf.var(dims, unbiased=False)
            count = xf.numel() // xf.shape[1]
            self.seen.append((mean, var * count / max(count - 1, 1)))
        else:
            mean, var = self.stats
        y = (xf - mean.view(shape)) * torch.rsqrt(var.view(shape) + self.eps)
        if self.weight is not None:
            y = y * self.weight.float().view(shape) + self.bias.float().view(shape)
        return y.to(x.dtype)

    def settle(self) -> None:
        """The running statistics: the average of the batches' (torch's momentum=None)."""
        means, variances = zip(*self.seen, strict=True)
        self.stats = (torch.stack(means).mean(0), torch.stack(variances).mean(0))
        self.seen = []

    def clear(self) -> None:
        """Forget this point's statistics (none may outlive a vmapped call)."""
        self.seen, self.stats = [], None


def _stacked(inputs: _Inputs) -> tuple[torch.Tensor, torch.Tensor]:
    """(y0 (N, *F), along stacked (D, N, *F)) of one input set."""
    return inputs.y0, torch.stack(inputs.along)


class BatchedEngine:
    """Evaluates chunks of points of one :class:`SurfaceProblem` at one precision.

    Built once per problem and precision (:func:`batched_engine`); it shares the
    problem's device, centre, directions, data and first-layer products.
    """

    def __init__(self, problem: SurfaceProblem, precision: str) -> None:
        """A private copy of the network with the first layer replayed and BatchNorms functional."""
        if precision not in DTYPES:
            raise ValueError(f"precision must be 'fp32' or 'bf16', got {precision!r}")
        self.problem, self.dtype = problem, DTYPES[precision]
        sets = problem.products()
        self.eval_set = _stacked(sets[0])
        self.bn_set = _stacked(sets[-1]) if problem.bn == "reset" else None
        self.model = copy.deepcopy(problem.working_model)
        self.replay = _Replay(self.dtype)
        self.norms = []
        for name, bn in batchnorms(self.model).items():
            norm = _PointNorm(bn)
            self.norms.append(norm)
            _set_submodule(self.model, name, norm)
        _set_submodule(self.model, problem.first, self.replay)
        bn_names = {
            f"{n}.{p}" for n in batchnorms(problem.working_model) for p in ("weight", "bias")
        }
        self.keep_fp32 = bn_names  # BatchNorm parameters stay fp32, as in the pointwise engine
        rest = problem.rest
        self.moving = [n for n in rest if problem.moving[n]]
        self.still = {n: self._cast(n, problem.centre[n]) for n in rest if not problem.moving[n]}
        self.batch = chunk_samples(problem)

    def _cast(self, name: str, value: torch.Tensor) -> torch.Tensor:
        """``value`` in the engine's dtype (fp32 for BatchNorm parameters)."""
        return value if name in self.keep_fp32 else value.to(self.dtype)

    def _params(self, c: torch.Tensor) -> dict[str, torch.Tensor]:
        """The rest's parameters at coefficients ``c`` (D,): still ones shared, moving ones summed."""
        p = self.problem
        params = dict(self.still)
        for n in self.moving:
            ks = p.moving[n]
            acc = p.centre[n]
            for k in (k for k in ks if k >= 1):  # the pointwise engine's order: the row first
                acc = acc + c[k] * p.dirs[k][n]
            if 0 in ks:
                acc = acc + c[0] * p.dirs[0][n]
            params[n] = self._cast(n, acc)
        return params

    def _point(self, c: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(per-batch loss sums (B,), per-batch correct counts (B,)) at ``c`` (D,); vmapped."""
        p = self.problem
        params = self._params(c)
        try:
            if self.bn_set is not None:
                bn_x = p.bn_x[..., :1, :1]  # what precedes the first layer is per-pixel: ignored
                for sl in _slices(len(bn_x), -(-len(bn_x) // BN_BATCH)):
                    self.replay.load(self.bn_set, sl, c)
                    functional_call(self.model, params, (bn_x[sl],))
                for norm in self.norms:
                    norm.settle()
            losses, correct = [], []
            x = p.x[..., :1, :1]
            for start in range(0, len(x), self.batch):
                sl = slice(start, start + self.batch)
                self.replay.load(self.eval_set, sl, c)
                loss, right = batch_sums(functional_call(self.model, params, (x[sl],)), p.y[sl])
                losses.append(loss)
                correct.append(right)
            return torch.stack(losses), torch.stack(correct)
        finally:
            self.replay.rows = None
            for norm in self.norms:
                norm.clear()

    @torch.no_grad()
    @full_fp32()  # fp32 means fp32: no TF32 on CUDA
    def evaluate(self, coeffs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(mean cross-entropy (P,), accuracy (P,)) at the points ``coeffs`` (P, D), as CPU arrays.

        Chunks of :func:`chunk_size` points per vmapped call.
        """
        coeffs = np.asarray(coeffs, dtype=np.float64).reshape(len(coeffs), -1)
        dims = len(self.problem.dirs)
        full = np.zeros((len(coeffs), dims))
        full[:, : coeffs.shape[1]] = coeffs
        c = torch.tensor(full, dtype=torch.float32, device=self.problem.device)
        k = chunk_size(self.problem, self.dtype)
        losses, correct = [], []
        for chunk in c.split(k):
            loss, right = torch.vmap(self._point, randomness="error")(chunk)
            losses.append(loss.cpu().double())  # (K, B) -> summed per point on the CPU
            correct.append(right.cpu())
        n = max(len(self.problem.x), 1)
        loss_sum = torch.cat(losses).sum(1) if losses else torch.zeros(0, dtype=torch.float64)
        right = torch.cat(correct).sum(1) if correct else torch.zeros(0)
        return (loss_sum / n).numpy(), (right.double() / n).numpy()


def _set_submodule(model: nn.Module, name: str, new: nn.Module) -> None:
    """Replace submodule ``name`` of ``model`` by ``new`` (for good)."""
    parent_name, _, attr = name.rpartition(".")
    parent = model.get_submodule(parent_name) if parent_name else model
    setattr(parent, attr, new)


# -- how many points and samples per call ------------------------------------------------

#: Live activations per sample, in multiples of the largest layer output (input,
#: output and a temporary of the widest layer), used to size a chunk.
LIVE_FACTOR = 4


def chunk_samples(problem: SurfaceProblem) -> int:
    """Samples per vmapped forward pass: the problem's batch (or all of x when fewer)."""
    return max(1, min(len(problem.x), problem.batch))


def memory_budget(device: torch.device) -> int:
    """Bytes a chunk's activations may take: 30% of the free GPU memory (at most 24 GiB), else 1 GiB."""
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        return int(min(0.3 * free, 24 * 2**30))
    return 2**30


def _widest(problem: SurfaceProblem) -> int:
    """The largest output (elements per sample) of any module of the network (measured once)."""
    if "widest" not in problem._work:
        model = problem.working_model
        seen = [int(problem.x[:1].numel())]
        hooks = [
            m.register_forward_hook(lambda _m, _i, out: seen.append(out[0].numel()))
            for m in model.modules()
            if not list(m.children())
        ]
        try:
            with torch.no_grad():
                model(problem.x[:1])
        finally:
            for h in hooks:
                h.remove()
        problem._work["widest"] = max(seen)
    return problem._work["widest"]


def chunk_size(problem: SurfaceProblem, dtype: torch.dtype) -> int:
    """Points per vmapped call: as many as :func:`memory_budget` allows, 1 to :data:`MAX_CHUNK`.

    A point costs its moving parameters and, per sample of a pass, about
    :data:`LIVE_FACTOR` times the widest layer output (fp32).
    """
    params = sum(problem.centre[n].numel() for n in problem.rest if problem.moving[n])
    per_point = 4 * params + 4 * LIVE_FACTOR * chunk_samples(problem) * _widest(problem)
    return int(min(MAX_CHUNK, max(1, memory_budget(problem.device) // per_point)))


def batched_engine(problem: SurfaceProblem, precision: str) -> BatchedEngine:
    """The problem's batched engine at ``precision`` (built on first use, then kept)."""
    key = f"batched-{precision}"
    if key not in problem._work:
        problem._work[key] = BatchedEngine(problem, precision)
    return problem._work[key]


# -- which engine computes a grid ---------------------------------------------------------

ENGINES = ("auto", "linear", "plain", "batched")


@dataclass(frozen=True)
class EngineChoice:
    """The engine a grid is computed with, and why.

    ``name``: "pointwise" (:class:`SurfaceProblem`'s ``linear`` or ``plain``
    engine, ``pointwise``) or "batched"; ``rates``: points per second each
    measured on ``device`` (None when nothing was measured).
    """

    name: str
    reason: str
    device: str
    pointwise: str = "linear"
    rates: dict[str, float] | None = None

    def record(self) -> dict[str, Any]:
        """What a surface entry stores about its engine (JSON)."""
        return {
            "name": self.name,
            "pointwise_engine": self.pointwise,
            "device": self.device,
            "points_per_second": self.rates,
            "reason": self.reason,
        }


def choose_engine(
    problem: SurfaceProblem, points: np.ndarray, precision: str, engine: str = "auto"
) -> EngineChoice:
    """The engine for a grid whose first points are ``points`` (P, D).

    ``engine``: "linear" or "plain" (pointwise), "batched", or "auto": on the
    CPU the pointwise linear engine, kept by measurement
    (``benchmarks/landscape_gpu.py``: the batched one is slower there); on any
    other device both are timed on the first points, after one untimed warm-up
    each (:data:`CALIBRATION_POINTS`), and the faster one is chosen.

    Raises:
        ValueError: an unknown engine.
    """
    dev = str(problem.device)
    if engine not in ENGINES:
        raise ValueError(f"engine must be one of {ENGINES}, got {engine!r}")
    if engine in ("linear", "plain"):
        return EngineChoice("pointwise", "asked for", dev, pointwise=engine)
    if engine == "batched":
        return EngineChoice("batched", "asked for", dev)
    if problem.device.type == "cpu":
        why = "on the CPU the pointwise engine is faster (benchmarks/landscape_gpu.py)"
        return EngineChoice("pointwise", why, dev)
    rates = calibrate(problem, points, precision)
    best = max(rates, key=rates.get)
    why = f"faster on {dev} by measurement on the grid's first points"
    return EngineChoice(best, why, dev, rates=rates)


def calibrate(problem: SurfaceProblem, points: np.ndarray, precision: str) -> dict[str, float]:
    """Points per second of the pointwise and the batched engine here, on a grid row ``points``.

    The pointwise engine is timed on the row's first :data:`CALIBRATION_POINTS`
    points; the batched one on calls of as many whole copies of the row as a
    chunk holds (as :func:`~analysis.landscape.grid.compute_grid` sends rows).
    Each is warmed up once, untimed; every evaluation reads its result back to
    the CPU, which waits for the device.
    """
    points = np.asarray(points, dtype=np.float64).reshape(len(points), -1)
    one = points[: CALIBRATION_POINTS["pointwise"]]
    rows = max(1, chunk_size(problem, DTYPES[precision]) // len(points))
    many = np.concatenate([points] * rows)
    engine = batched_engine(problem, precision)
    problem.evaluate(tuple(map(float, one[0])), precision=precision)
    engine.evaluate(many)
    start = time.perf_counter()
    for c in one:
        problem.evaluate(tuple(map(float, c)), precision=precision)
    pointwise = len(one) / max(time.perf_counter() - start, 1e-9)
    start = time.perf_counter()
    for _ in range(CALIBRATION_POINTS["batched calls"]):
        engine.evaluate(many)
    seconds = max(time.perf_counter() - start, 1e-9)
    return {
        "pointwise": pointwise,
        "batched": CALIBRATION_POINTS["batched calls"] * len(many) / seconds,
    }
