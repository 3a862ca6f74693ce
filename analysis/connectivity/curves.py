"""The ``curve`` kind: a trained curve between two networks (Garipov et al. 2018).

Garipov et al. 2018, "Loss Surfaces, Mode Connectivity, and Fast Ensembling of
DNNs" (reference code: timgaripov/dnn-mode-connectivity): two independently
trained networks that the straight line joins only over a loss barrier are
joined by a simple curve of low loss. The curve ``phi(t)``, t in [0, 1], has
control points ``theta_0 = A``, ``theta_1 .. theta_{n-1}`` (the bends, trained)
and ``theta_n = P(B)`` (B aligned to A by the pair's permutation, or not):

- ``bezier``: ``phi(t) = sum_i C(n, i) t^i (1 - t)^(n - i) theta_i`` (one bend:
  the quadratic Bezier curve of the paper);
- ``polychain``: the polygonal chain through the control points at
  ``t = i / n``, linear in between (one bend: the paper's polygonal chain).

The bends start on the straight line (``theta_i = (1 - i/n) A + (i/n) P(B)``, as
the reference's ``init_linear``) and are trained to minimise the expected loss
``E_{t ~ U(0, 1)} L(phi(t))``: one ``t`` per batch, cross-entropy on the run's
training split, endpoints fixed. Masks: the bends live in the union of the
endpoint masks, as on the straight path (zero outside it, their gradient masked
and re-applied after every step), so every point of the curve is too.
BatchNorm: training uses batch statistics; at every evaluated point the
statistics are recomputed on the training subset (the reference's ``update_bn``,
the project's rule, :mod:`analysis.batchnorm`).

Deviations from the paper: the optimiser, learning rate, weight decay and batch
size are run A's own recipe, at a constant learning rate, without data
augmentation, for ``epochs`` epochs (the paper: SGD with its own schedule for
hundreds of epochs). At ``t = 0`` and ``1`` every coefficient is 0 or 1, so the
curve reproduces the endpoints exactly.

Randomness: the data order and the ``t`` draws come from CPU generators seeded
by the spec, moved to the device, so the same spec trains the same curve on
any device (up to float error).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from analysis import api
from analysis.api import Context, Study
from analysis.batchnorm import apply_bn_rule, bn_rule, bn_rule_record
from analysis.connectivity.barriers import curve_barriers
from analysis.connectivity.kind import (
    ConnectivitySpec,
    check_curve,
    connectivity_specs,
    summarize_connectivity,
)
from analysis.connectivity.path import EvalData, eval_data, on, union_masks, zero_fraction
from analysis.data import load
from analysis.device import full_fp32
from analysis.errors import SpecError
from analysis.feed import Batches
from analysis.permutation import apply_permutation
from analysis.seeding import generator, seed_63
from analysis.specs import SPEC, check_int, check_literals
from analysis.train import evaluate, make_optimizer, steps_per_epoch

State = dict[str, torch.Tensor]

#: Entropy that tells a curve's random streams from every other use of its seed.
CURVE_STREAMS = 17


@dataclass(**SPEC)
class CurveSpec:
    """A trained ``curve`` with ``bends`` bends between the ends of ``line`` (its permutation).

    ``line`` is the straight path of the same pair and alignment (no REPAIR):
    the curve's B is aligned by that result's permutation, evaluated on its
    alphas and subsets, and drawn beside it. ``epochs``: training epochs of the
    bends (0: the curve stays the straight line). ``seed`` seeds the data order
    and the ``t`` draws.
    """

    kind: ClassVar[str] = "curve"
    line: ConnectivitySpec = field(default_factory=ConnectivitySpec)
    curve: Literal["bezier", "polychain"] = "bezier"
    bends: int = 1
    epochs: int = 5
    seed: int = 0

    def __post_init__(self) -> None:
        """Validate every field; raise SpecError naming the first bad one."""
        check_literals(self)
        check_curve("CurveSpec", self.bends, self.epochs)
        check_int("CurveSpec", "seed", self.seed, lo=0)
        if self.line.repair:
            raise SpecError(
                "line",
                "a straight path without REPAIR (the curve is evaluated with the plain rule)",
                "repair=True",
                owner="CurveSpec",
            )

    @property
    def label(self) -> str:
        """Human label."""
        line = self.line
        return (
            f"curve ({self.curve}, {self.bends} bend{'s' * (self.bends != 1)}, "
            f"{line.alignment}): {line.run_a.label} ~ {line.run_b.label}"
        )


def coefficients(curve: str, bends: int, t: float) -> list[float]:
    """The weights of the ``bends + 2`` control points at ``t`` in [0, 1] (they sum to 1).

    ``bezier``: Bernstein polynomials of degree ``bends + 1``; ``polychain``:
    linear between the points at ``i / (bends + 1)``. Exactly one 1 at t = 0 and 1.
    """
    n = bends + 1
    if curve == "bezier":
        return [math.comb(n, i) * t**i * (1.0 - t) ** (n - i) for i in range(n + 1)]
    seg = min(int(t * n), n - 1)  # the segment t falls in; t = 1 is the last one's end
    s = t * n - seg
    out = [0.0] * (n + 1)
    out[seg], out[seg + 1] = 1.0 - s, s
    return out


def point(control: list[State], coeffs: list[float]) -> State:
    """``sum_i coeffs[i] * control[i]`` for every tensor (1 * x + 0 * y is exactly x)."""
    out = {}
    for key in control[0]:
        total = coeffs[0] * control[0][key]
        for c, theta in zip(coeffs[1:], control[1:], strict=True):
            total = total + c * theta[key]
        out[key] = total
    return out


def initial_bends(state_a: State, state_b: State, bends: int) -> list[State]:
    """Bends on the straight line: ``(1 - i/n) A + (i/n) B``, i = 1..bends (n = bends + 1)."""
    n = bends + 1
    return [
        {k: (1.0 - i / n) * state_a[k] + (i / n) * state_b[k] for k in state_a} for i in range(1, n)
    ]


@dataclass
class Curve:
    """The control points of a curve: fixed ends, trainable bends (parameters only)."""

    kind: str
    ends: tuple[State, State]
    bends: list[State]
    masks: dict[str, torch.Tensor]

    def control(self) -> list[State]:
        """``[A, bend_1, ..., bend_n-1, B]``."""
        return [self.ends[0], *self.bends, self.ends[1]]

    def at(self, t: float) -> State:
        """The weights phi(t) (parameters only)."""
        return point(self.control(), coefficients(self.kind, len(self.bends), t))

    @torch.no_grad()
    def keep_masks(self) -> None:
        """Zero every bend outside the union mask."""
        for bend in self.bends:
            for name, m in self.masks.items():
                bend[name].mul_(m)


def _epoch(
    model: nn.Module,
    curve: Curve,
    buffers: State,
    opt: torch.optim.Optimizer,
    batches: Batches,
    order: torch.Tensor,
    ts: torch.Tensor,
    batch_size: int,
) -> float:
    """One epoch of bend training: a ``t`` per batch; returns the mean batch loss."""
    model.train()
    total = torch.zeros((), device=batches.device, dtype=torch.float64)
    steps = len(ts)
    for s in range(steps):
        x, y = batches.take(order[s * batch_size : (s + 1) * batch_size])
        weights = curve.at(float(ts[s]))
        loss = F.cross_entropy(torch.func.functional_call(model, {**weights, **buffers}, (x,)), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        for bend in curve.bends:  # masked gradients: the optimiser never leaves the union
            for name, m in curve.masks.items():
                if bend[name].grad is not None:
                    bend[name].grad.mul_(m)
        opt.step()
        curve.keep_masks()
        total += loss.detach()
    return float(total) / max(steps, 1)


def train_curve(
    spec: CurveSpec,
    model: nn.Module,
    curve: Curve,
    buffers: State,
    batches: Batches,
    progress: Callable[[int, int], None],
) -> list[dict]:
    """Train ``curve``'s bends for ``spec.epochs`` epochs; the history, one record per epoch."""
    train = spec.line.run_a.train
    params = [p for bend in curve.bends for p in bend.values()]
    for p in params:
        p.requires_grad_(True)
    opt = make_optimizer(params, train, train.lr)
    n = len(batches.x)
    steps = steps_per_epoch(n, train.batch_size)
    data_gen = generator(seed_63(spec.seed, CURVE_STREAMS, 0))  # the data order
    t_gen = generator(seed_63(spec.seed, CURVE_STREAMS, 1))  # one t per batch
    history = []
    for epoch in range(spec.epochs):
        progress(epoch, spec.epochs)
        start = time.perf_counter()
        order = batches.order(torch.randperm(n, generator=data_gen))
        ts = torch.rand(steps, generator=t_gen, dtype=torch.float64)
        loss = _epoch(model, curve, buffers, opt, batches, order, ts, train.batch_size)
        history.append({"epoch": epoch + 1, "loss": loss, "seconds": time.perf_counter() - start})
    for p in params:
        p.requires_grad_(False)
    return history


@torch.no_grad()
def evaluate_curve(
    model: nn.Module, curve: Curve, buffers: State, ts: np.ndarray, data: EvalData, rule: str
) -> dict[str, list[float]]:
    """Loss, accuracy (train and test) and sparsity at every ``t``, as the straight path's."""
    names = model.prunable_names()
    out: dict[str, list[float]] = {
        k: [] for k in ("train_loss", "train_acc", "test_loss", "test_acc", "sparsity")
    }
    for t in ts:
        model.load_state_dict({**curve.at(float(t)), **buffers})
        apply_bn_rule(model, rule, data.train_x)
        for split, x, y in (
            ("train", data.train_x, data.train_y),
            ("test", data.test_x, data.test_y),
        ):
            loss, acc = evaluate(model, x, y)
            out[f"{split}_loss"].append(loss)
            out[f"{split}_acc"].append(acc)
        out["sparsity"].append(zero_fraction(dict(model.named_parameters()), names))
    return {"alphas": [float(t) for t in ts], **out}


def _ends(spec: CurveSpec, ctx: Context, model: nn.Module) -> tuple[State, State, dict, State]:
    """(A's parameters, P(B)'s parameters, the union mask, A's buffers) on the device."""
    dev = ctx.device
    runs = (ctx.get(spec.line.run_a), ctx.get(spec.line.run_b))
    perm = on(ctx.get(spec.line).read("permutation.safetensors"), dev)
    ps = model.permutation_spec()
    state_a = on(runs[0].state, dev)
    state_b = apply_permutation(ps, perm, on(runs[1].state, dev))
    masks = union_masks(on(runs[0].masks, dev), apply_permutation(ps, perm, on(runs[1].masks, dev)))
    params = {n for n, _ in model.named_parameters()}
    buffers = {k: v.clone() for k, v in state_a.items() if k not in params}
    pa = {k: v for k, v in state_a.items() if k in params}
    pb = {k: v for k, v in state_b.items() if k in params}
    return pa, pb, masks, buffers


@full_fp32()
def compute_curve(spec: CurveSpec, ctx: Context) -> tuple[dict, dict]:
    """Train the bends, then loss/accuracy along the curve beside the straight line's.

    Garipov et al. 2018 (see the module docstring). Returns ``curve.json``
    (the curve on the line's alphas, its barriers, the line's curve and
    barriers, the training history) and ``bends.safetensors`` (the trained
    bends, ``"<i>/<name>"``). Losses are mean cross-entropy in nats.
    """
    line = spec.line
    dev = ctx.device
    model = ctx.get(line.run_a).model().to(dev)
    pa, pb, masks, buffers = _ends(spec, ctx, model)
    curve = Curve(spec.curve, (pa, pb), initial_bends(pa, pb, spec.bends), masks)
    curve.keep_masks()
    batches = Batches(load(line.run_a.data), dev)
    task = spec.label
    history = train_curve(
        spec, model, curve, buffers, batches, lambda i, n: ctx.progress(task, i, n)
    )
    ctx.progress(task, spec.epochs, spec.epochs)
    data = eval_data(line.run_a.data, line.train_subset, line.test_subset, line.seed).to(dev)
    rule = bn_rule(model)
    ts = np.linspace(0.0, 1.0, line.alphas)
    values = evaluate_curve(model, curve, buffers, ts, data, rule)
    straight = ctx.get(line).read("connectivity.json")
    barriers = curve_barriers(values)
    doc = {
        "curve_kind": spec.curve,
        "bends": spec.bends,
        "epochs": spec.epochs,
        "alignment": line.alignment,
        "run_a": line.run_a.label,
        "run_b": line.run_b.label,
        "bn": rule,
        "bn_rule": bn_rule_record(rule, len(data.train_x)),
        "curve": values,
        "barriers": barriers,
        "line": {"curve": straight["curve"], "barriers": straight["barriers"]},
        "history": history,
    }
    bends = {f"{i}/{k}": v.detach().cpu() for i, b in enumerate(curve.bends) for k, v in b.items()}
    summary = {f"{s}_{k}": v for s, b in barriers.items() for k, v in b.items()}
    return {"curve.json": doc, "bends.safetensors": bends}, summary


# ---------------------------------------------------------------------------
# study level


def curve_specs(study: Study) -> list[CurveSpec]:
    """A curve of each kind in ``curves`` for every pair of seeds the study connects.

    The pairs are the study's straight paths (``connectivity_specs``) between two
    seeds, without REPAIR, for the ``curve_alignments``.
    """
    s = study.analysis("connectivity")
    return [
        CurveSpec(line=line, curve=kind, bends=s.curve_bends, epochs=s.curve_epochs)
        for line in connectivity_specs(study)
        if isinstance(line, ConnectivitySpec)
        and not line.repair
        and line.run_a.seed != line.run_b.seed
        and line.alignment in s.curve_alignments
        for kind in s.curves
    ]


def study_specs(study: Study) -> list[Any]:
    """Every spec of the connectivity part: straight paths, instability, then curves."""
    return [*connectivity_specs(study), *curve_specs(study)]


def curve_item(spec: CurveSpec, store: Any) -> dict:
    """One curve of the summary: what it joins and, when cached, its values and history."""
    line = spec.line
    item = {
        "label": spec.label,
        **api.status_record(spec, store),
        "curve_kind": spec.curve,
        "bends": spec.bends,
        "epochs": spec.epochs,
        "alignment": line.alignment,
        "run_a": line.run_a.label,
        "run_b": line.run_b.label,
        "method": line.run_b.sparsity.method,
        "sparsity": line.run_b.sparsity.sparsity,
        "objective": line.run_b.train.objective,
    }
    if item["status"] == "cached":
        doc = api.get(spec, store=store, compute=False).read("curve.json")
        item.update({k: doc[k] for k in ("bn", "curve", "barriers", "line", "history")})
    return item


def summarize(study: Study, store: Any) -> dict:
    """The ``connectivity`` section of ``show --json``, with its ``curves`` (docs/summary.md)."""
    s = study.analysis("connectivity")
    doc = summarize_connectivity(study, store)
    doc["settings"].update(
        curves=list(s.curves),
        curve_alignments=list(s.curve_alignments),
        curve_bends=s.curve_bends,
        curve_epochs=s.curve_epochs,
    )
    doc["curves"] = [curve_item(spec, store) for spec in curve_specs(study)]
    return doc
