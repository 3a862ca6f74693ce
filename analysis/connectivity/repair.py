"""REPAIR (Jordan et al. 2022) for every network, and the variance collapse it repairs.

Jordan et al. 2022, "REPAIR: REnormalizing Permuted Activations for
Interpolation Repair": in the network ``(1 - a) A + a P(B)`` each hidden
unit's pre-activation has a smaller standard deviation than in either endpoint
(variance collapse). REPAIR rescales and shifts it so that its mean and std on
training data equal ``(1 - a) * stats_A + a * stats_B``, the interpolation of
the endpoints' statistics.

The points: the input of every ``nn.ReLU`` module, in forward order, i.e. every
hidden unit's pre-activation: the outputs of an MLP's or LeNet's hidden layers,
of VGG's BatchNorms, and in ResNet-20 the stem and inner BatchNorms and every
residual junction (the sum ``bn2(conv2(.)) + shortcut(x)`` that ``relu2``
receives). Each ReLU module must run once per forward pass (checked).

Deviations from the authors' notebooks (KellerJordan/REPAIR), which insert a
BatchNorm after each layer, calibrate it with one train-mode pass (each layer
normalised by its batch's statistics) and fuse it into the weights:

- the correction is a forward pre-hook on the ReLU (weights are never changed,
  so pruning masks hold trivially, and residual junctions, which have no weight
  to fuse into, are covered);
- the statistics are exact rather than batch estimates: the points are
  corrected one after another, each measured on the whole training subset with
  every earlier point already corrected (a pass stops at the point it measures);
- BatchNorm networks first get their statistics reset on the same subset (the
  project's rule, :func:`analysis.batchnorm.reset_bn_stats`), then REPAIR.

Statistics sum in float64 on the model's device (the CPU for MPS); the
corrections are float32 on the model's device.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from analysis.batchnorm import BN_BATCH, apply_bn_rule, base_rule
from analysis.device import float64_device

#: Added to a unit's variance before dividing by its std (BatchNorm's and REPAIR's eps).
EPS = 1e-5

#: Per point, (mean (C,), std (C,)) of the tensor there over samples and positions.
Stats = dict[str, tuple[torch.Tensor, torch.Tensor]]


class _Stop(Exception):
    """Raised by a hook to end a forward pass once the point it measures is reached."""


def repair_points(model: nn.Module) -> list[str]:
    """Names of the model's ReLU modules (REPAIR's points: their inputs), registration order."""
    return [n for n, m in model.named_modules() if isinstance(m, nn.ReLU)]


class _Moments:
    """Per-channel float64 sums of the (N, C, ...) tensors seen at one point."""

    def __init__(self) -> None:
        """Empty sums."""
        self.sum: Any = 0.0
        self.sq: Any = 0.0
        self.n = 0

    def add(self, t: torch.Tensor) -> None:
        """Add ``t`` (N, C, ...) as N * ... samples of C channels."""
        o = t.detach().movedim(1, -1).reshape(-1, t.shape[1])
        o = o.to(float64_device(o.device), torch.float64)
        self.sum = self.sum + o.sum(0)
        self.sq = self.sq + (o * o).sum(0)
        self.n += len(o)

    def result(self, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        """(mean, std) over everything added, float32 (C,) on ``device`` (std: population)."""
        mean = self.sum / self.n
        std = (self.sq / self.n - mean**2).clamp(min=0).sqrt()
        return mean.to(device, torch.float32), std.to(device, torch.float32)


@dataclass(frozen=True)
class Correction:
    """REPAIR at one point: ``(x - mean) * scale + goal_mean`` per channel, each (C,)."""

    mean: torch.Tensor
    scale: torch.Tensor
    goal_mean: torch.Tensor

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        """Apply to x (N, C, ...)."""
        shape = (1, -1) + (1,) * (x.dim() - 2)
        return (x - self.mean.view(shape)) * self.scale.view(shape) + self.goal_mean.view(shape)


@dataclass
class _Pass:
    """What one measuring pass records: pre- and post-activation moments, the call order."""

    pre: dict[str, _Moments]
    post: dict[str, _Moments]
    order: list[str]


@torch.no_grad()
def _measure(
    model: nn.Module,
    x: torch.Tensor,
    corrections: dict[str, Correction],
    *,
    stop_at: str | None = None,
    batch: int = BN_BATCH,
) -> _Pass:
    """Moments at every point over x (N, ...) in eval mode, ``corrections`` applied.

    With ``stop_at``, each forward pass ends at that point (its input measured,
    nothing after it). Raises ValueError if a ReLU module runs twice in a pass.
    """
    record = _Pass(pre={}, post={}, order=[])
    calls: list[str] = []

    def before(name: str):
        """A pre-hook: correct the ReLU's input, record it, or stop at it."""

        def hook(_module, args):
            """Apply and record at ``name``."""
            (inp,) = args
            calls.append(name)
            if name in corrections:
                inp = corrections[name](inp)
            if stop_at is None or name == stop_at:
                record.pre.setdefault(name, _Moments()).add(inp)
            if name == stop_at:
                raise _Stop
            return (inp,)

        return hook

    def after(name: str):
        """A forward hook recording the ReLU's output."""

        def hook(_module, _args, out):
            """Record at ``name``."""
            if stop_at is None:
                record.post.setdefault(name, _Moments()).add(out)

        return hook

    model.eval()
    modules = dict(model.named_modules())
    handles = []
    for name in repair_points(model):
        handles.append(modules[name].register_forward_pre_hook(before(name)))
        handles.append(modules[name].register_forward_hook(after(name)))
    try:
        for xb in x.split(batch):
            calls.clear()
            with suppress(_Stop):
                model(xb)
            if len(set(calls)) != len(calls):
                twice = sorted({c for c in calls if calls.count(c) > 1})
                raise ValueError(
                    f"REPAIR needs each ReLU module run once per pass; {twice} ran twice"
                )
            record.order = list(calls)
    finally:
        for h in handles:
            h.remove()
    return record


def _stats(moments: dict[str, _Moments], device: torch.device) -> Stats:
    """Each point's (mean, std) on ``device``."""
    return {name: m.result(device) for name, m in moments.items()}


def ready(model: nn.Module, x: torch.Tensor) -> None:
    """The project's rule before REPAIR: BatchNorm statistics reset on x, else nothing; eval mode."""
    apply_bn_rule(model, base_rule(model), x)


def activation_stats(
    model: nn.Module, x: torch.Tensor, corrections: dict[str, Correction] | None = None
) -> tuple[Stats, Stats]:
    """(pre-activation, post-activation) statistics of the loaded network at every point.

    x: (N, C, H, W) training subset. The model is measured as loaded (call
    :func:`ready` first) with ``corrections`` applied; each stat is (mean, std),
    float32 (C,) on x's device.
    """
    record = _measure(model, x, corrections or {})
    return _stats(record.pre, x.device), _stats(record.post, x.device)


def endpoint_stats(
    model: nn.Module, states: list[dict[str, torch.Tensor]], x: torch.Tensor
) -> list[tuple[Stats, Stats]]:
    """REPAIR's goals: per state, :func:`ready` on x, then :func:`activation_stats`.

    ``model`` is any network of the architecture; its weights are overwritten.
    """
    out = []
    for state in states:
        model.load_state_dict(state)
        ready(model, x)
        out.append(activation_stats(model, x))
    return out


def goal(stats: list[tuple[Stats, Stats]], alpha: float) -> Stats:
    """``(1 - alpha) * stats_A + alpha * stats_B`` of the pre-activation (mean, std)."""
    (pre_a, _), (pre_b, _) = stats
    return {
        name: (
            (1.0 - alpha) * pre_a[name][0] + alpha * pre_b[name][0],
            (1.0 - alpha) * pre_a[name][1] + alpha * pre_b[name][1],
        )
        for name in pre_a
    }


@torch.no_grad()
def repair_corrections(
    model: nn.Module, goals: Stats, x: torch.Tensor, batch: int = BN_BATCH
) -> dict[str, Correction]:
    """REPAIR's per-point corrections of the loaded (and :func:`ready`) network.

    Jordan et al. 2022, section 4: each pre-activation channel gets mean and
    std ``goals[point]``. Points are solved in forward order, each on x (N, C, H,
    W) with the earlier ones applied, so after all of them every point has
    exactly its goal (up to :data:`EPS`). One pass per point, each stopping there.
    """
    order = _measure(model, x[:1], {}).order
    corrections: dict[str, Correction] = {}
    for name in order:
        moments = _measure(model, x, corrections, stop_at=name, batch=batch).pre[name]
        mean, std = moments.result(x.device)
        goal_mean, goal_std = goals[name]
        corrections[name] = Correction(mean, goal_std / (std**2 + EPS).sqrt(), goal_mean)
    return corrections


@contextmanager
def corrected(model: nn.Module, corrections: dict[str, Correction]) -> Iterator[nn.Module]:
    """The model with ``corrections`` applied as ReLU pre-hooks while inside; removed after."""
    modules = dict(model.named_modules())
    handles = [
        modules[name].register_forward_pre_hook(lambda _m, args, c=c: (c(args[0]),))
        for name, c in corrections.items()
    ]
    try:
        yield model
    finally:
        for h in handles:
            h.remove()


def _ratios(stats: Stats, ends: list[Stats], names: list[str]) -> list[float]:
    """Per point: mean std over channels here / mean over channels of the endpoints' mean std."""
    out = []
    for name in names:
        ref = 0.5 * (ends[0][name][1] + ends[1][name][1])
        out.append(float(stats[name][1].mean() / ref.mean().clamp(min=1e-12)))
    return out


def variance_collapse(
    model: nn.Module,
    state: dict[str, torch.Tensor],
    ends: list[tuple[Stats, Stats]],
    x: torch.Tensor,
    alpha: float = 0.5,
) -> dict[str, Any]:
    """Jordan et al. 2022's variance collapse at ``alpha``, before and after REPAIR.

    ``state`` is the interpolated network's weights at ``alpha``, ``ends`` the
    endpoints' :func:`endpoint_stats`. Per point (forward order, under
    ``layers``): the mean over channels of the interpolated network's std divided
    by that of the endpoints' average std, for the pre-activation (``pre``,
    where REPAIR acts: 1 after it by construction) and the ReLU's output
    (``post``), each ``{"before": [...], "after": [...]}``.
    """
    model.load_state_dict(state)
    ready(model, x)
    before = activation_stats(model, x)
    after = activation_stats(model, x, repair_corrections(model, goal(ends, alpha), x))
    names = list(before[0])
    return {
        "alpha": alpha,
        "layers": names,
        **{
            where: {
                "before": _ratios(before[i], [e[i] for e in ends], names),
                "after": _ratios(after[i], [e[i] for e in ends], names),
            }
            for i, where in enumerate(("pre", "post"))
        },
    }
