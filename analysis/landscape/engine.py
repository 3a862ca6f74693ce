"""The surface engine: loss and accuracy at ``centre + sum_k c_k dirs[k]``, fast.

Tuned by measurement (``benchmarks/bench_landscape.py``). The first layer is
linear in its weights, so on fixed inputs
``f1(x; W + a D1 + b D2) = x W + a x D1 + b x D2``: the three products are
computed once and combined per grid point; only the rest of the network runs
per point. Along a grid row (fixed second coefficient) the sums over the other
directions are cached, so a point costs one ``row + a * dir_0`` per moving
tensor. ``precision="bf16"`` runs the rest on a bfloat16 copy of the network
(weights summed in fp32 and rounded once per point, straight into the bf16
parameters; BatchNorm kept in fp32, which torch's CPU kernels accept beside
bf16 activations; Linear+ReLU pairs fused where oneDNN runs that, see
:mod:`analysis.landscape.fused`); the plain engine uses ``torch.autocast``.

BatchNorm (prunescope's rule, :mod:`analysis.batchnorm`): the weights of a grid
point are not any trained network's own, so their running statistics are
recomputed at every point, the centre included, by
:func:`analysis.batchnorm.reset_bn_stats` on a fixed training subset
(``bn_x``), as on connectivity paths. The linear engine replays the first
layer's output for those samples too (:class:`_Replay`): the reset costs one
train-mode pass of the rest of the network over ``bn_x`` per point, which
roughly doubles a point's cost when ``bn_x`` is as large as ``x``.

Devices: a problem computes on ``device`` (default: x's device); the model,
centre, directions and data are moved there once. The directions are drawn on
the CPU (:mod:`analysis.landscape.directions`) and moved, so a surface is the
same experiment on every device. :mod:`analysis.landscape.batched` evaluates a
chunk of points at once (for accelerators); this module evaluates one point at
a time (pointwise).
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import torch
from torch import nn
from torch.func import functional_call

from analysis.batchnorm import apply_bn_rule, batchnorms, bn_rule, reset_bn_stats
from analysis.device import float64_device, full_fp32
from analysis.landscape.directions import Params
from analysis.landscape.fused import fuse_linear_relu

#: Samples per forward pass of the engine.
ENGINE_BATCH = 2000
PRECISIONS = ("fp32", "bf16")


def first_layer(model: nn.Module) -> str:
    """Name of the first Linear/Conv2d in forward (registration) order; ValueError if none."""
    for name, m in model.named_modules():
        if isinstance(m, nn.Linear | nn.Conv2d):
            return name
    raise ValueError("the model has no Linear or Conv2d layer")


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


class _Replay(nn.Module):
    """Stands in for the first layer: returns ``row + a * along`` for the next samples, in order.

    Each call with an input of m samples serves the next m rows of the
    precomputed output (so any batching that walks the samples in order, the
    engine's or :func:`reset_bn_stats`'s, gets its own slices), written into
    ``out`` (never into the cached ``row``, so an in-place op downstream cannot
    corrupt the cache).
    """

    def __init__(self, row: torch.Tensor, along: torch.Tensor | None, a: float, out: torch.Tensor):
        """row, along, out: (N, *first_out); ``along`` None or ``a`` 0: the row itself."""
        super().__init__()
        self.row, self.along, self.a, self.out, self.pos = row, along, a, out, 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The next ``len(x)`` rows of the first layer's output (x itself is ignored)."""
        sl = slice(self.pos, self.pos + len(x))
        if sl.stop > len(self.row):
            raise RuntimeError("the first-layer replay ran past its precomputed samples")
        self.pos = sl.stop
        if self.along is not None and self.a != 0.0:
            return torch.add(self.row[sl], self.along[sl], alpha=self.a, out=self.out[sl])
        return self.out[sl].copy_(self.row[sl])


@dataclass
class _Inputs:
    """A fixed input set of the linear engine: x (N, C, H, W) and first-layer products (fp32).

    ``y0`` (N, *first_out): the first layer's output at the centre; ``along``:
    its output along each direction (``x D_k`` plus the bias direction).
    """

    x: torch.Tensor
    y0: torch.Tensor
    along: list[torch.Tensor]


@dataclass
class _Working:
    """A private eval-mode copy of the network for one precision of the engine.

    ``model``/``params`` are in ``dtype`` (BatchNorm stays fp32). ``row_*``
    cache, for the coefficients of every direction but the first (one grid
    row), ``centre + sum_{k>=1} c_k dir_k`` of the rest parameters and
    ``y0 + sum_{k>=1} c_k along_k`` per input set, in fp32; ``out`` are the
    preallocated first-layer outputs (one per input set) in ``dtype``.
    """

    model: nn.Module
    params: Params
    dtype: torch.dtype = torch.float32
    row_key: tuple[float, ...] | None = None
    row_params: Params = field(default_factory=dict)
    rows: list[torch.Tensor] = field(default_factory=list)
    out: list[torch.Tensor] = field(default_factory=list)
    fused: int = 0
    fused_why: str = "fp32 surfaces use the public ops"


@dataclass
class SurfaceProblem:
    """What a surface evaluates: ``centre + a * dirs[0] (+ b * dirs[1])`` on (x, y).

    ``model`` is any network of the architecture (not modified). x: (N, C, H,
    W), y: (N,). ``bn_x`` (M, C, H, W): the training samples every BatchNorm's
    statistics are recomputed on at each point (required for a network with
    BatchNorm, ignored without; pass ``x`` itself to share its first-layer
    products). Engines: ``plain`` sets every weight and runs the whole network;
    ``linear`` combines the cached first-layer products and runs the rest.
    Precision ``bf16``: the plain engine runs under bf16 autocast; the linear
    engine on a bfloat16 copy (see the module docstring); losses summed in fp32.
    ``device``: where it computes (default: x's device); everything given is
    moved there (``bn_x`` given as ``x`` itself stays shared).

    Raises:
        ValueError: a BatchNorm network without ``bn_x``.
    """

    model: nn.Module
    centre: Params
    dirs: list[Params]
    x: torch.Tensor
    y: torch.Tensor
    bn_x: torch.Tensor | None = None
    batch: int = ENGINE_BATCH
    device: torch.device | None = None
    _work: dict = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        """Move everything to the device; work on a private eval-mode copy with the centre loaded."""
        dev = self.device = torch.device(self.device or self.x.device)
        shared = self.bn_x is self.x
        self.x, self.y = self.x.to(dev), self.y.to(dev)
        self.bn_x = self.x if shared else (None if self.bn_x is None else self.bn_x.to(dev))
        self.centre = {n: v.to(dev) for n, v in self.centre.items()}
        self.dirs = [{n: v.to(dev) for n, v in d.items()} for d in self.dirs]
        model = copy.deepcopy(self.model).to(dev).eval()
        with torch.no_grad():
            for n, p in model.named_parameters():
                p.requires_grad_(False)
                p.copy_(self.centre[n])
        self.bn = bn_rule(model)  # "reset" with BatchNorm, "none" without
        if self.bn == "reset" and self.bn_x is None:
            raise ValueError(
                "a network with BatchNorm needs bn_x: its statistics are recomputed on those "
                "training samples at every grid point (analysis.batchnorm.reset_bn_stats)"
            )
        self.first = first_layer(model)
        params = dict(model.named_parameters())
        self._work["fp32"] = _Working(model, params)
        # which directions move each parameter (biases/BN are usually still): checked once
        self.moving = {n: [k for k, d in enumerate(self.dirs) if d[n].any()] for n in params}
        self.rest = [n for n in params if not n.startswith(self.first + ".")]
        self.moving_first = [n for n in self.rest if 0 in self.moving[n]]
        self._inputs: list[_Inputs] = []  # [eval] or [eval, BN statistics], on first use

    @property
    def working_model(self) -> nn.Module:
        """The private fp32 eval-mode copy of the network on the device (weights: the last point's)."""
        return self._work["fp32"].model

    @property
    def params(self) -> Params:
        """The fp32 working model's parameters (what the last fp32 evaluation used)."""
        return self._work["fp32"].params

    @property
    def fused(self) -> tuple[bool, str]:
        """(whether bf16 evaluations ran oneDNN's fused Linear+ReLU, which path and why)."""
        work = self._work.get("bf16")
        if work is None:
            return False, self._work["fp32"].fused_why
        return work.fused > 0, work.fused_why

    def evaluate(
        self, coeffs: tuple[float, ...], *, engine: str = "linear", precision: str = "fp32"
    ) -> tuple[float, float]:
        """(mean cross-entropy, accuracy) at ``centre + sum_k coeffs[k] * dirs[k]``.

        Raises ValueError for an unknown engine or precision.
        """
        if precision not in PRECISIONS:
            raise ValueError(f"precision must be 'fp32' or 'bf16', got {precision!r}")
        with torch.no_grad(), full_fp32():  # fp32 means fp32: no TF32 on CUDA
            if engine == "plain":
                return self._evaluate_plain(coeffs, precision)
            if engine == "linear":
                return self._evaluate_linear(coeffs, precision)
        raise ValueError(f"engine must be 'plain' or 'linear', got {engine!r}")

    # -- the plain engine -------------------------------------------------------------

    def _set(self, work: _Working, names: list[str], coeffs: tuple[float, ...]) -> None:
        """Write ``centre + sum_k c_k dir_k`` into the working model's named parameters."""
        for n in names:
            p = work.params[n]
            steps = [(coeffs[k], self.dirs[k][n]) for k in self.moving[n] if k < len(coeffs)]
            steps = [(c, d) for c, d in steps if c != 0.0]
            if not steps:
                p.copy_(self.centre[n])
                continue
            torch.add(self.centre[n], steps[0][1], alpha=steps[0][0], out=p)
            for c, d in steps[1:]:
                p.add_(d, alpha=c)

    def _evaluate_plain(self, coeffs: tuple[float, ...], precision: str) -> tuple[float, float]:
        """Set every weight, reset BatchNorm statistics (fp32), run the whole network."""
        work = self._work["fp32"]
        work.row_key = None  # the linear engine's row parameters are overwritten
        self._set(work, list(work.params), tuple(coeffs))
        apply_bn_rule(work.model, self.bn, self.bn_x)  # statistics reset (fp32), eval mode
        sums = _Sums(self.device)
        for xb, yb in zip(self.x.split(self.batch), self.y.split(self.batch), strict=True):
            with torch.autocast(
                self.device.type, dtype=torch.bfloat16, enabled=precision == "bf16"
            ):
                logits = work.model(xb)
            sums.add(logits, yb)
        return sums.means(len(self.x))

    # -- the linear engine ------------------------------------------------------------

    def _evaluate_linear(self, coeffs: tuple[float, ...], precision: str) -> tuple[float, float]:
        """Combine the cached first-layer products; reset BatchNorm statistics; run the rest."""
        work = self._linear_work(precision)
        coeffs = tuple(coeffs) + (0.0,) * (len(self.dirs) - len(coeffs))
        self._row(work, coeffs)
        a = coeffs[0] if coeffs else 0.0
        # per point only the parameters moved by the first direction; the rest were
        # written by _row (copying the ~13 still biases every point cost 0.3 ms of ~12 ms)
        for n in self.moving_first:
            if a != 0.0:
                torch.add(work.row_params[n], self.dirs[0][n], alpha=a, out=work.params[n])
            else:
                work.params[n].copy_(work.row_params[n])
        if self.bn == "reset":
            k = len(self._inputs) - 1  # the BN set is the last (the eval set itself if shared)
            with _swapped(work.model, self.first, self._replay(work, k, a)):
                # everything before the first layer is per-pixel and its output ignored:
                # feed 1x1 slices so it costs nothing
                reset_bn_stats(work.model, self._inputs[k].x[..., :1, :1])
        replay = self._replay(work, 0, a)
        sums = _Sums(self.device)
        with _swapped(work.model, self.first, replay):
            for xb, yb in zip(self.x.split(self.batch), self.y.split(self.batch), strict=True):
                sums.add(work.model(xb[..., :1, :1]), yb)
        return sums.means(len(self.x))

    def _replay(self, work: _Working, k: int, a: float) -> _Replay:
        """The first-layer stand-in of input set ``k`` at first coefficient ``a``."""
        along = self._inputs[k].along
        return _Replay(work.rows[k], along[0] if along else None, a, work.out[k])

    def products(self) -> list[_Inputs]:
        """The first-layer products per input set: [eval] or [eval, BN statistics] (computed once)."""
        self._linear_work("fp32")
        return self._inputs

    def _linear_work(self, precision: str) -> _Working:
        """The working copy for the linear engine, first-layer products computed once."""
        work = self._work["fp32"]
        if not self._inputs:
            self._inputs = [self._products(work, self.x)]
            if self.bn == "reset":
                same = self.bn_x is self.x
                self._inputs.append(self._inputs[0] if same else self._products(work, self.bn_x))
        if not work.out:
            work.out = self._outputs(torch.float32)
        if precision == "fp32":
            return work
        if "bf16" not in self._work:
            # The per-point sums stay in fp32 and are rounded once, straight into the
            # bf16 parameters and first-layer output (a mixed-dtype add, one pass).
            # Keeping the directions and products in bf16 was no faster by measurement
            # and tripled the loss error at the grid's corners (0.83% against 0.24%).
            model = copy.deepcopy(work.model).to(torch.bfloat16)
            for bn in batchnorms(model).values():
                bn.float()  # statistics accumulate in fp32; torch's CPU BN takes bf16 input
            fused, why = 0, "the fused oneDNN op runs on the CPU only"
            if self.device.type == "cpu":
                fused, why = fuse_linear_relu(model, self.first)
            self._work["bf16"] = _Working(
                model,
                dict(model.named_parameters()),
                dtype=torch.bfloat16,
                out=self._outputs(torch.bfloat16),
                fused=fused,
                fused_why=why,
            )
        return self._work["bf16"]

    def _outputs(self, dtype: torch.dtype) -> list[torch.Tensor]:
        """A first-layer output buffer per input set (one shared when the BN set is the eval set)."""
        out = [torch.empty_like(self._inputs[0].y0, dtype=dtype)]
        for inputs in self._inputs[1:]:
            same = inputs is self._inputs[0]
            out.append(out[0] if same else torch.empty_like(inputs.y0, dtype=dtype))
        return out

    def _row(self, work: _Working, coeffs: tuple[float, ...]) -> None:
        """Make ``work.row_*`` the sums for ``coeffs[1:]`` (in fp32, once per grid row)."""
        key = tuple(coeffs[1:])
        if work.row_key == key:
            return
        work.row_key = None  # (an interruption leaves no half-written row behind)
        for n in self.rest:
            acc = self.centre[n].clone()
            for k in self.moving[n]:
                if k >= 1 and coeffs[k] != 0.0:
                    acc.add_(self.dirs[k][n], alpha=coeffs[k])
            work.row_params[n] = acc
            if 0 not in self.moving[n]:  # constant along the row: written once here
                work.params[n].copy_(acc)
        work.rows = []
        for inputs in self._inputs:
            if work.rows and inputs is self._inputs[0]:
                work.rows.append(work.rows[0])  # the BN set is the eval set: one row sum
                continue
            acc = inputs.y0.clone()
            for c, yd in zip(coeffs[1:], inputs.along[1:], strict=True):
                if c != 0.0:
                    acc.add_(yd, alpha=c)
            work.rows.append(acc)
        work.row_key = key

    def _products(self, work: _Working, x: torch.Tensor) -> _Inputs:
        """The first layer's output on ``x`` at the centre and along each direction (fp32)."""
        layer = work.model.get_submodule(self.first)
        w, b = f"{self.first}.weight", f"{self.first}.bias"
        captured: list[torch.Tensor] = []
        hook = layer.register_forward_pre_hook(lambda _m, args: captured.append(args[0]))
        y0, along = [], [[] for _ in self.dirs]
        try:
            self._set(work, list(work.params), ())
            work.row_key = None
            for xb in x.split(self.batch):
                captured.clear()
                work.model(xb)  # captures the first layer's input
                y0.append(layer(captured[0]))
                for k, d in enumerate(self.dirs):
                    # f1 is affine in (W, b): its change along (D_W, D_b) is x D_W + D_b
                    step = {"weight": d[w]} | ({"bias": d[b]} if layer.bias is not None else {})
                    along[k].append(functional_call(layer, step, (captured[0],)))
        finally:
            hook.remove()
        return _Inputs(x=x, y0=torch.cat(y0), along=[torch.cat(parts) for parts in along])


def batch_sums(logits: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """A batch's summed cross-entropy (fp32, 0-d) and correct count (0-d), on logits' device.

    logits: (B, K), y: (B,). ``logsumexp - logit[y]`` rather than
    ``F.cross_entropy``: on (2000, 10) logits the latter's log_softmax over a
    last dimension of 10 took 0.40 ms, this 0.15 ms (same value to fp32 rounding).
    """
    logits = logits.float()
    picked = logits.gather(1, y.unsqueeze(1)).squeeze(1)
    return (torch.logsumexp(logits, 1) - picked).sum(), (logits.argmax(1) == y).sum()


class _Sums:
    """The batches' summed losses and correct counts, kept on the device; read once per point.

    Each batch's fp32 loss sum is added in float64 (as Python floats were), on the
    CPU for MPS (which has no float64).
    """

    def __init__(self, device: torch.device) -> None:
        """Empty sums for a point computed on ``device``."""
        self.losses: list[torch.Tensor] = []
        self.correct: list[torch.Tensor] = []
        self.wide = float64_device(device)

    def add(self, logits: torch.Tensor, y: torch.Tensor) -> None:
        """Add a batch: logits (B, K), y (B,)."""
        loss, correct = batch_sums(logits, y)
        self.losses.append(loss)
        self.correct.append(correct)

    def means(self, n: int) -> tuple[float, float]:
        """(mean cross-entropy, accuracy) over the ``n`` samples added (one device read)."""
        if not self.losses:
            return 0.0, 0.0
        loss = torch.stack(self.losses).to(self.wide, torch.float64)
        total = torch.zeros((), dtype=torch.float64, device=self.wide)
        for part in loss:  # in batch order, as the Python float sums were
            total = total + part
        both = torch.stack([total, torch.stack(self.correct).sum().to(self.wide, torch.float64)])
        loss_sum, correct = both.tolist()
        n = max(n, 1)
        return loss_sum / n, int(correct) / n
