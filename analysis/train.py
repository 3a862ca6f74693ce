"""The training loop: supervised cross-entropy or supervised contrastive, masks as callbacks.

The loop stays small; behaviour is added as callbacks (open_lth's
``standard_callbacks`` pattern): mask re-application, gradual-pruning schedules,
snapshots for rewinding and for the trajectory plane, a divergence guard.
Everything random is drawn from CPU ``torch.Generator``s seeded from the run's
seed through ``numpy.random.SeedSequence`` and moved to the training device, so
a run is reproducible, and the same experiment on every device. A step's
device-side work (precision, memory format, compile) is in :mod:`analysis.train_step`.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from functools import partial
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from analysis.data import DatasetInfo, Splits, augment
from analysis.errors import TrainingDiverged
from analysis.feed import Batches
from analysis.qat import qat_callbacks
from analysis.specs import DataSpec, TrainSpec
from analysis.train_step import Stepper, Tally
from analysis.training_types import (  # re-exported: callbacks and the state they see
    Callback,
    Fit,
    Masks,
    TrainState,
    apply_masks,
    autocast_for,
    device_of,
    state_of,
)
from analysis.transforms import to_device

__all__ = [  # the loop's own names, and the shared types it re-exports for old imports
    "Callback",
    "DivergenceGuard",
    "Fit",
    "KeepMasks",
    "Snapshots",
    "TrainState",
    "evaluate",
    "features_of",
    "fit",
    "fit_probe",
    "generator",
    "knn_accuracy",
    "lr_factor",
    "planned_steps",
    "state_of",
    "steps_per_epoch",
    "sub_seed",
    "supcon_loss",
    "train_set_size",
]

#: Sub-seed purposes: one independent stream per use of randomness.
PURPOSES = {"init": 0, "data": 1, "prune": 2, "augment": 3, "probe": 4, "score": 5, "head": 6}

EVAL_BATCH = 2048


def sub_seed(seed: int, purpose: str, *extra: int) -> int:
    """A 63-bit seed for one purpose, derived from the run seed by SeedSequence."""
    ss = np.random.SeedSequence([seed, PURPOSES[purpose], *extra])
    return int(ss.generate_state(2, dtype=np.uint32).astype(np.uint64) @ [1 << 31, 1]) & (
        (1 << 63) - 1
    )


def generator(seed: int, purpose: str, *extra: int) -> torch.Generator:
    """A CPU generator seeded for one purpose."""
    return torch.Generator().manual_seed(sub_seed(seed, purpose, *extra))


def lr_factor(step: int, total: int, schedule: str) -> float:
    """Learning-rate multiplier at ``step`` of ``total`` (constant, cosine to 0, or step decay)."""
    if schedule == "constant" or total <= 0:
        return 1.0
    frac = min(step / total, 1.0)
    if schedule == "cosine":
        return 0.5 * (1.0 + math.cos(math.pi * frac))
    return 0.1 ** ((frac >= 0.5) + (frac >= 0.75))  # "step": x0.1 at 50% and 75%


def _sum_dtype(device: torch.device) -> torch.dtype:
    """The dtype of loss sums on ``device``: float64, or float32 on MPS (which has no float64)."""
    return torch.float32 if device.type == "mps" else torch.float64


@torch.no_grad()
def evaluate(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    batch: int = EVAL_BATCH,
    *,
    precision: str = "fp32",
) -> tuple[float, float]:
    """(mean cross-entropy, accuracy) of ``model`` in eval mode. x: (N, C, H, W), y: (N,).

    Runs on the model's device (x and y may live anywhere: batches are moved),
    under the autocast of ``precision``; sums stay on the device, read once.
    """
    device = device_of(model)
    was_training = model.training
    model.eval()
    loss_sum = torch.zeros((), dtype=_sum_dtype(device), device=device)
    correct = torch.zeros((), dtype=torch.int64, device=device)
    with autocast_for(device, precision):
        for i in range(0, len(x), batch):
            yb = to_device(y[i : i + batch], device)
            logits = model(to_device(x[i : i + batch], device)).float()
            loss_sum += F.cross_entropy(logits, yb, reduction="sum")
            correct += (logits.argmax(1) == yb).sum()
    model.train(was_training)
    n = max(len(x), 1)
    return float(loss_sum) / n, int(correct) / n


@torch.no_grad()
def features_of(
    model: nn.Module, x: torch.Tensor, batch: int = EVAL_BATCH, *, precision: str = "fp32"
) -> torch.Tensor:
    """Penultimate features in eval mode, float32 on the model's device. x: (N, C, H, W) -> (N, D)."""
    device = device_of(model)
    was_training = model.training
    model.eval()
    with autocast_for(device, precision):
        parts = [
            model.features(to_device(x[i : i + batch], device)).float()
            for i in range(0, len(x), batch)
        ]
    model.train(was_training)
    return torch.cat(parts)


def knn_accuracy(
    bank: torch.Tensor,
    bank_y: torch.Tensor,
    query: torch.Tensor,
    query_y: torch.Tensor,
    k: int = 20,
) -> float:
    """Cosine k-NN accuracy (majority vote), on the bank's device. bank: (M, D), query: (N, D)."""
    device = bank.device
    bank = F.normalize(bank, dim=1)
    query = F.normalize(to_device(query, device), dim=1)
    bank_y, query_y = to_device(bank_y, device), to_device(query_y, device)
    correct = torch.zeros((), dtype=torch.int64, device=device)
    n_classes = int(max(bank_y.max(), query_y.max())) + 1
    for i in range(0, len(query), 1024):
        sims = query[i : i + 1024] @ bank.T
        idx = sims.topk(min(k, len(bank)), dim=1).indices
        votes = F.one_hot(bank_y[idx], n_classes).sum(1)
        correct += (votes.argmax(1) == query_y[i : i + 1024]).sum()
    return int(correct) / max(len(query), 1)


def supcon_loss(z: torch.Tensor, y: torch.Tensor, temperature: float) -> torch.Tensor:
    """Supervised contrastive loss, L_out of Khosla et al. 2020 (eq. 2).

    z: (2B, P) L2-normalised projections of two views; y: (2B,) labels. For each
    anchor, the mean log-probability of its positives (same label, other sample)
    under a softmax over all other samples at ``temperature``. The similarities
    are taken in float32 whatever the autocast (the -1e9 mask overflows fp16).
    """
    sim = (z @ z.T).float() / temperature
    n = len(z)
    self_mask = torch.eye(n, dtype=torch.bool, device=z.device)
    sim = sim.masked_fill(self_mask, -1e9)
    log_prob = sim - torch.logsumexp(sim, dim=1, keepdim=True)
    pos = (y[:, None] == y[None, :]) & ~self_mask
    pos_count = pos.sum(1).clamp(min=1)
    return -((log_prob * pos).sum(1) / pos_count).mean()


# ---------------------------------------------------------------------------
# the loop and its callbacks


class KeepMasks(Callback):
    """Masks stay applied: gradients of pruned weights are zeroed before the step and the
    weights re-zeroed after it, so neither momentum nor weight decay (SGD or Adam)
    can regrow a pruned weight.

    Only masked weights are touched, with float masks made once on the weight's
    device (again only when a schedule replaces a mask).
    """

    def on_start(self, state: TrainState) -> None:
        self._params = dict(state.model.named_parameters())
        self._float: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}
        apply_masks(state.model, state.masks)

    def _pairs(self, state: TrainState) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """(weight, float mask) of every masked weight."""
        out = []
        for name, mask in state.masks.items():
            param = self._params[name]
            cached = self._float.get(name)
            if cached is None or cached[0] is not mask:
                cached = (mask, mask.to(device=param.device, dtype=param.dtype))
                self._float[name] = cached
            out.append((param, cached[1]))
        return out

    def before_step(self, state: TrainState) -> None:
        for param, mask in self._pairs(state):
            if param.grad is not None:
                param.grad.mul_(mask)

    def after_step(self, state: TrainState) -> None:
        with torch.no_grad():
            for param, mask in self._pairs(state):
                param.mul_(mask)


class Snapshots(Callback):
    """Keep copies of the weights at step 0, at every epoch end and at chosen steps.

    Copies go to the CPU as they are taken (:func:`state_of`), so a long run's
    trajectory does not hold device memory.
    """

    def __init__(self, steps: Sequence[int] = ()):
        self.steps = set(steps)

    def _take(self, state: TrainState) -> None:
        state.snapshots[state.step] = state_of(state.model)

    def on_start(self, state: TrainState) -> None:
        self._take(state)

    def after_step(self, state: TrainState) -> None:
        if state.step in self.steps:
            self._take(state)

    def on_epoch_end(self, state: TrainState) -> None:
        self._take(state)


class DivergenceGuard(Callback):
    """Stop with a clear message when the loss stops being finite.

    ``state.loss`` is every step's loss on the CPU; on an accelerator it is the
    epoch's running mean, read every ``GUARD_EVERY`` steps and at the epoch's end
    (any non-finite loss makes it non-finite), sparing a host sync per step.
    """

    def _check(self, state: TrainState) -> None:
        if not math.isfinite(state.loss):
            raise TrainingDiverged(
                f"training diverged: loss is {state.loss} at step {state.step} (epoch {state.epoch}); "
                "lower the learning rate or check the data"
            )

    def before_step(self, state: TrainState) -> None:
        self._check(state)

    def on_epoch_end(self, state: TrainState) -> None:
        self._check(state)


def make_optimizer(params: Any, spec: TrainSpec, lr: float) -> torch.optim.Optimizer:
    """SGD (momentum) or Adam as the spec says; weight decay is L2 (coupled), as in open_lth."""
    if spec.optimizer == "sgd":
        return torch.optim.SGD(
            params, lr=lr, momentum=spec.momentum, weight_decay=spec.weight_decay
        )
    return torch.optim.Adam(params, lr=lr, weight_decay=spec.weight_decay)


def projection_head(dim_in: int, dim_out: int, gen: torch.Generator) -> nn.Module:
    """SupCon's projection head: Linear-ReLU-Linear (Khosla et al. 2020), seeded init."""
    head = nn.Sequential(nn.Linear(dim_in, dim_in), nn.ReLU(), nn.Linear(dim_in, dim_out))
    with torch.no_grad():
        for p in head.parameters():
            bound = 1.0 / math.sqrt(p.shape[-1]) if p.dim() > 1 else 0.01
            p.uniform_(-bound, bound, generator=gen)
    return head


#: Size of each dataset's pool that train and validation are split from (the
#: training split; digits: the 80% not held out for testing). Mirrors what
#: ``analysis.data.load`` yields, without loading anything (tests/test_train.py checks digits).
TRAIN_POOL = {"digits": 1438, "fashion-mnist": 60000, "mnist": 60000, "cifar10": 50000,
              "cifar100": 50000}  # fmt: skip


def train_set_size(spec: DataSpec) -> int:
    """Training samples ``analysis.data.load(spec)`` yields, computed without loading the data."""
    pool = TRAIN_POOL[spec.name]
    rest = pool - round(spec.val_fraction * pool)
    return rest if spec.train_size is None else min(spec.train_size, rest)


def steps_per_epoch(n_train: int, batch_size: int) -> int:
    """Optimizer steps per epoch: the last partial batch is dropped (stable BN, stable steps)."""
    return max(1, n_train // batch_size)


def planned_steps(n_train: int, spec: TrainSpec) -> int:
    """Optimizer steps of a full training run of ``spec`` on ``n_train`` samples."""
    return steps_per_epoch(n_train, spec.batch_size) * spec.epochs


def _batch_loss(
    stepper: Stepper,
    head: nn.Module | None,
    x: torch.Tensor,
    y: torch.Tensor,
    info: DatasetInfo,
    spec: TrainSpec,
    aug_gen: torch.Generator,
) -> tuple[torch.Tensor, torch.Tensor | int]:
    """(loss, correct predictions) of one batch: SupCon through ``head``, else cross-entropy.

    The loss is taken in float32 from the (possibly autocast) logits.
    """
    if head is not None:
        views = torch.cat([augment(x, info, aug_gen), augment(x, info, aug_gen)])
        z = F.normalize(head(stepper.features(stepper.input(views))).float(), dim=1)
        return supcon_loss(z, torch.cat([y, y]), spec.supcon_temperature), 0
    if spec.augment:
        x = augment(x, info, aug_gen)
    logits = stepper.forward(stepper.input(x)).float()
    return F.cross_entropy(logits, y), (logits.argmax(1) == y).sum()


def _epoch_record(
    model: nn.Module,
    data: Splits,
    state: TrainState,
    epoch: int,
    tally: Tally,
    t0: float,
    spec: TrainSpec,
) -> dict:
    """The history row of one finished epoch: LR, train loss/accuracy, val/test metrics."""
    loss_sum, correct, seen = tally.sums()
    record = {
        "epoch": epoch + 1,
        "step": state.step,
        "lr": state.optimizer.param_groups[0]["lr"],
        "train_loss": loss_sum / max(seen, 1),
        "seconds": time.perf_counter() - t0,
    }
    if spec.objective == "supcon":
        record["train_acc"] = None
        record.update(_supcon_epoch_metrics(model, data, spec.precision))
    else:
        record["train_acc"] = correct / max(seen, 1)
        val = evaluate(model, data.val_x, data.val_y, precision=spec.precision)
        test = evaluate(model, data.test_x, data.test_y, precision=spec.precision)
        record["val_loss"], record["val_acc"] = val
        record["test_loss"], record["test_acc"] = test
    return record


def fit(
    model: nn.Module,
    data: Splits,
    spec: TrainSpec,
    *,
    seed: int,
    masks: Masks | None = None,
    epochs: int | None = None,
    lr_scale: float = 1.0,
    callbacks: Sequence[Callback] = (),
    progress: Callable[[str, float, float], None] | None = None,
    label: str = "train",
    data_seed: int | None = None,
    start_step: int = 0,
    max_steps: int | None = None,
    stop_step: int | None = None,
) -> Fit:
    """Train ``model`` in place for ``epochs`` (default: the spec's) and return history and snapshots.

    Training runs on the model's device in the spec's ``precision``
    (:class:`~analysis.train_step.Stepper`); ``data`` may live on the CPU or
    there (:func:`analysis.feed.place`), ``masks`` anywhere. Every random draw
    (data order, augmentation, the SupCon head) comes from a CPU generator
    seeded from ``seed`` and is moved, so a run is the same experiment on every
    device, equal up to floating-point error.

    ``data_seed`` sets the data order (default: from ``seed``): the instability
    test trains two copies from one point with different data orders.
    ``start_step`` is the global step training resumes from (a rewind point):
    step numbers, snapshots and the LR schedule continue from there, and the
    schedule ends at ``start_step + max_steps``. ``max_steps`` caps the steps
    taken (default: ``epochs`` whole epochs). ``stop_step`` stops after that
    global step without shortening the schedule: the weights are then exactly
    those the full run has at that step (a replayed rewind point); a stopped fit
    records no partial epoch and fits no SupCon probe. The loop is one block so
    that the order of random draws, which replays rely on, is visible in one place.

    Raises:
        PrecisionError: fp16 on the CPU (before any step).
        CompileError: the compile option is on and ``torch.compile`` failed.
        TrainingDiverged: the loss stopped being finite.
    """
    stepper = Stepper(model, spec.precision)  # first: channels_last before the optimizer
    device = stepper.device
    epochs = spec.epochs if epochs is None else epochs
    n = len(data.train_x)
    per_epoch = steps_per_epoch(n, spec.batch_size)
    total = per_epoch * epochs if max_steps is None else min(max_steps, per_epoch * epochs)
    end = start_step + total
    stop = end if stop_step is None else max(start_step, min(stop_step, end))
    params = list(model.parameters())
    head = None
    if spec.objective == "supcon":
        head = projection_head(model.feature_dim, spec.projection_dim, generator(seed, "head"))
        head = head.to(device)
        params += list(head.parameters())
    base_lr = spec.lr * lr_scale
    optimizer = make_optimizer(params, spec, base_lr)
    on_device = {name: mask.to(device) for name, mask in (masks or {}).items()}
    state = TrainState(model, optimizer, end, per_epoch, masks=on_device, step=start_step)
    cbs: list[Callback] = [DivergenceGuard(), KeepMasks(), *qat_callbacks(spec, seed), *callbacks]
    order_gen = torch.Generator().manual_seed(
        sub_seed(seed if data_seed is None else data_seed, "data")
    )
    aug_gen = generator(seed if data_seed is None else data_seed, "augment")
    batches = Batches(data, device)
    progress = progress or (lambda *_: None)
    model.train()
    for cb in cbs:
        cb.on_start(state)
    t0 = time.perf_counter()
    for epoch in range(math.ceil(total / per_epoch)):
        state.epoch = epoch
        perm = batches.order(torch.randperm(n, generator=order_gen))
        tally = Tally(device)
        for b in range(min(per_epoch, stop - state.step)):
            x, y = batches.take(perm[b * spec.batch_size : (b + 1) * spec.batch_size])
            for group in optimizer.param_groups:
                group["lr"] = base_lr * lr_factor(state.step, end, spec.schedule)
            loss_fn = partial(_batch_loss, stepper, head, x, y, data.info, spec, aug_gen)
            stepper.step(loss_fn, state, cbs, tally, len(y))
            if b % 20 == 0 or state.step == stop:
                progress(label, state.step - start_step, stop - start_step)
        tally.flush(state)
        if state.step == stop < end:
            break  # stopped early: no partial-epoch record, no probe
        state.history.append(_epoch_record(model, data, state, epoch, tally, t0, spec))
        for cb in cbs:
            cb.on_epoch_end(state)
    if head is not None and state.step == end:
        fit_probe(model, data, spec, seed=seed, masks=state.masks)
    return Fit(
        history=state.history,
        snapshots=state.snapshots,
        masks=state.masks,
        steps=state.step,
        compile_seconds=stepper.compile_seconds,
    )


def _supcon_epoch_metrics(
    model: nn.Module, data: Splits, precision: str, bank_size: int = 5000
) -> dict:
    """Per-epoch k-NN accuracy of a SupCon model's features (no classifier yet)."""
    bank = features_of(model, data.train_x[:bank_size], precision=precision)
    bank_y = data.train_y[:bank_size]
    val = features_of(model, data.val_x, precision=precision)
    test = features_of(model, data.test_x, precision=precision)
    return {
        "val_knn_acc": knn_accuracy(bank, bank_y, val, data.val_y),
        "test_knn_acc": knn_accuracy(bank, bank_y, test, data.test_y),
    }


def fit_probe(model: nn.Module, data: Splits, spec: TrainSpec, *, seed: int, masks: Masks) -> None:
    """Fit ``model.head`` as a linear probe on frozen features (Khosla et al.'s evaluation).

    On the model's device, in float32 on features taken in the spec's precision;
    the batch order is drawn on the CPU. The head's mask (if pruned) is kept
    applied, like every other layer's.
    """
    feats = features_of(model, data.train_x, precision=spec.precision)
    device = feats.device
    labels = to_device(data.train_y, device)
    gen = generator(seed, "probe")
    head: nn.Linear = model.head
    opt = torch.optim.Adam(head.parameters(), lr=1e-2)
    head_mask = masks.get("head.weight")
    if head_mask is not None:
        head_mask = head_mask.to(device=device, dtype=head.weight.dtype)
    n = len(feats)
    steps = max(1, n // 256)
    total = spec.probe_epochs * steps
    for step in range(total):
        if step % steps == 0:
            perm = to_device(torch.randperm(n, generator=gen), device)
        idx = perm[(step % steps) * 256 : (step % steps + 1) * 256]
        for g in opt.param_groups:
            g["lr"] = 1e-2 * lr_factor(step, total, "cosine")
        loss = F.cross_entropy(head(feats[idx]), labels[idx])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        if head_mask is not None:
            head.weight.grad.mul_(head_mask)
        opt.step()
        if head_mask is not None:
            with torch.no_grad():
                head.weight.mul_(head_mask)
