"""The ``run`` kind: one trained (and possibly pruned) network, cached in the store.

Files of a run entry:

- ``model.safetensors``: final weights and buffers (pruned weights are exactly 0);
- ``masks.safetensors``: one bool mask per prunable weight (empty for dense);
- ``init.safetensors``: the weights at initialisation (for rewinding);
- ``trajectory.safetensors``: snapshots ``"<step:08d>/<name>"`` at step 0, every
  epoch end and the spec's snapshot steps (rewinding, the trajectory plane);
- ``history.json``: per-epoch train/validation/test loss and accuracy;
- ``metrics.json``: final test/validation metrics, requested and achieved
  sparsity, per-layer sparsity, parameter counts, seconds (and
  ``compile_seconds`` when the ``torch.compile`` option was on).

A run trains on its context's device (``ctx.device``): the data and the model
go there, prerequisite runs are read from the store to the CPU and moved, and
every stored tensor comes back to the CPU in fp32.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import torch
from torch import nn

from analysis import device as devices
from analysis.api import Context
from analysis.checkpoints import check_state
from analysis.data import Splits, load
from analysis.errors import TrainingDiverged
from analysis.feed import place, take
from analysis.sparsity import check_run, get_method
from analysis.sparsity.base import Masks, count_kept, layer_sparsity, sparsity_of
from analysis.specs import RunSpec
from analysis.store import Entry
from analysis.train import (
    Snapshots,
    evaluate,
    features_of,
    fit,
    generator,
    knn_accuracy,
    planned_steps,
    sub_seed,
)
from analysis.training_types import Fit, check_precision


@dataclass
class TrainedRun:
    """A run loaded from the store: spec, metrics, history; weights read on demand."""

    spec: RunSpec
    entry: Entry
    metrics: dict
    history: list[dict]
    _cache: dict = field(default_factory=dict, repr=False)

    @cached_property
    def state(self) -> dict[str, torch.Tensor]:
        """Final weights and buffers, checked against the architecture of the spec."""
        state = self.entry.read("model.safetensors")
        check_state(
            self.skeleton(), state, what=f"checkpoint {self.entry.file('model.safetensors')}"
        )
        return state

    @cached_property
    def masks(self) -> Masks:
        """Bool masks per prunable weight (empty for a dense run)."""
        return {k: v.bool() for k, v in self.entry.read("masks.safetensors").items()}

    @cached_property
    def init_state(self) -> dict[str, torch.Tensor]:
        """The weights at initialisation."""
        return self.entry.read("init.safetensors")

    @cached_property
    def trajectory(self) -> dict[int, dict[str, torch.Tensor]]:
        """Snapshots by step: {step: state_dict}."""
        flat = self.entry.read("trajectory.safetensors")
        out: dict[int, dict[str, torch.Tensor]] = {}
        for key, value in flat.items():
            step, name = key.split("/", 1)
            out.setdefault(int(step), {})[name] = value
        return dict(sorted(out.items()))

    def skeleton(self) -> nn.Module:
        """An untrained network of this run's architecture."""
        from analysis.data import dataset_info
        from analysis.models import build_for

        return build_for(self.spec.model, dataset_info(self.spec.data.name))

    def model(self, state: dict[str, torch.Tensor] | None = None) -> nn.Module:
        """The trained network (or one with ``state`` loaded), in eval mode."""
        model = self.skeleton()
        model.load_state_dict(self.state if state is None else state)
        return model.eval()

    @property
    def label(self) -> str:
        """Human label of the run."""
        return self.spec.label


@dataclass
class StoreRunContext:
    """The :class:`~analysis.training_types.RunContext` of a run computed into the store."""

    spec: RunSpec
    data: Splits
    api: Context
    #: Extra seconds the first steps of this run's fits spent compiling (compile option).
    compile_seconds: float = 0.0

    @property
    def device(self) -> torch.device:
        """Where this run trains (its context's device)."""
        return self.api.device

    def build(self) -> nn.Module:
        """The network at its seeded initialisation (the same for every method of one seed),
        initialised on the CPU (the same numbers on every device) and moved to the run's device."""
        from analysis.models import build_for

        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(sub_seed(self.spec.seed, "init"))
            model = build_for(self.spec.model, self.data.info)
        return model.to(self.device)

    def generator(self, purpose: str, *extra: int) -> torch.Generator:
        """A generator for one purpose of this run."""
        return generator(self.spec.seed, purpose, *extra)

    def total_steps(self) -> int:
        """Optimizer steps of a full training run of the spec on this data."""
        return planned_steps(len(self.data.train_x), self.spec.train)

    def fit(
        self, model: nn.Module, masks: Masks | None = None, *, phase: str = "train", **kw: Any
    ) -> Fit:
        """Train with the run's spec and seed; snapshots at every epoch and at snapshot_steps."""
        steps = kw.pop("snapshot_steps", self.spec.train.snapshot_steps)
        callbacks = [Snapshots(steps), *kw.pop("callbacks", ())]
        out = fit(
            model,
            self.data,
            self.spec.train,
            seed=self.spec.seed,
            masks=masks,
            callbacks=callbacks,
            progress=self.api.progress,
            label=f"{self.spec.label}: {phase}",
            **kw,
        )
        self.compile_seconds += out.compile_seconds or 0.0
        return out

    def get(self, spec: RunSpec) -> TrainedRun:
        """A run this one builds on (from the store, or trained once)."""
        return self.api.get(spec)

    def score_batch(self, n: int) -> tuple[torch.Tensor, torch.Tensor]:
        """A fixed, seeded batch of ``n`` training samples for pruning-at-init scores, on the
        run's device (the indices drawn on the CPU): x (n, C, H, W), y (n,)."""
        idx = torch.randperm(len(self.data.train_x), generator=self.generator("score"))[:n]
        x, y = take(self.data.train_x, idx), take(self.data.train_y, idx)
        return x.to(self.device), y.to(self.device)


def load_run(spec: RunSpec, entry: Entry) -> TrainedRun:
    """Loader of the ``run`` kind."""
    return TrainedRun(
        spec=spec,
        entry=entry,
        metrics=entry.read("metrics.json"),
        history=entry.read("history.json"),
    )


def flatten_snapshots(snapshots: dict[int, dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    """{step: state} -> {"<step:08d>/<name>": tensor} for one safetensors file."""
    return {f"{step:08d}/{k}": v for step, state in snapshots.items() for k, v in state.items()}


def run_metrics(
    spec: RunSpec, model: nn.Module, masks: Masks, data: Splits, seconds: float
) -> dict:
    """Final metrics of a trained run (test/val loss and accuracy, sparsity, counts), evaluated
    on the model's device in the run's precision; ``masks`` on the CPU."""
    precision = spec.train.precision
    test_loss, test_acc = evaluate(model, data.test_x, data.test_y, precision=precision)
    val_loss, val_acc = evaluate(model, data.val_x, data.val_y, precision=precision)
    prunable = model.prunable_names()
    params = dict(model.named_parameters())
    prunable_total = sum(params[n].numel() for n in prunable)
    kept, _ = count_kept(masks) if masks else (prunable_total, prunable_total)
    total_params = sum(p.numel() for p in model.parameters())
    nonzero = sum(int((p != 0).sum()) for p in model.parameters())
    method = get_method(spec.sparsity.method)
    metrics = {
        "label": spec.label,
        "method": spec.sparsity.method,
        "objective": spec.train.objective,
        "seed": spec.seed,
        "requested_sparsity": spec.sparsity.sparsity,
        "sparsity_unit": method.unit,
        "achieved_sparsity": sparsity_of(masks) if masks else 0.0,
        "layer_sparsity": layer_sparsity(masks) if masks else {n: 0.0 for n in prunable},
        "prunable_params": prunable_total,
        "kept_prunable_params": kept,
        "total_params": total_params,
        "nonzero_params": nonzero,
        "test_loss": test_loss,
        "test_acc": test_acc,
        "val_loss": val_loss,
        "val_acc": val_acc,
        "data_source": data.source,
        "seconds": seconds,
    }
    if spec.train.objective == "supcon":
        n_bank = min(len(data.train_x), 10000)
        idx = torch.randperm(
            len(data.train_x),
            generator=torch.Generator().manual_seed(sub_seed(spec.seed, "probe", 1)),
        )[:n_bank]
        bank = features_of(model, take(data.train_x, idx), precision=precision)
        test = features_of(model, data.test_x, precision=precision)
        metrics["test_knn_acc"] = knn_accuracy(bank, take(data.train_y, idx), test, data.test_y)
    return metrics


SUMMARY_FIELDS = (
    "method",
    "requested_sparsity",
    "achieved_sparsity",
    "test_acc",
    "test_loss",
    "nonzero_params",
)


def compute_run(spec: RunSpec, ctx: Context) -> tuple[dict[str, Any], dict]:
    """Train (and prune) the network of ``spec`` with its sparsity method on ``ctx.device``.

    Raises:
        SpecError: the sparsity options do not fit the run.
        PrecisionError: the spec's precision cannot run on ``ctx.device`` (fp16 on
            the CPU), raised before any data is read or step taken.
    """
    start = time.perf_counter()
    check_run(spec)
    check_precision(spec.train.precision, ctx.device)
    data = place(load(spec.data), ctx.device)
    run_ctx = StoreRunContext(spec=spec, data=data, api=ctx)
    out = get_method(spec.sparsity.method).run(run_ctx).to_cpu()
    model = run_ctx.build()
    model.load_state_dict(out.state)
    for name, mask in out.masks.items():  # a method bug must never reach the store
        weight = dict(model.named_parameters())[name].detach().cpu()
        if mask.shape != weight.shape or bool((weight[~mask] != 0).any()):
            raise RuntimeError(f"{spec.sparsity.method}: mask of {name} not applied to its weight")
    metrics = run_metrics(spec, model.eval(), out.masks, data, time.perf_counter() - start)
    if not math.isfinite(metrics["test_loss"]):  # the last step may blow up after the guard ran
        raise TrainingDiverged(f"{spec.label}: the trained network gives a non-finite test loss")
    if devices.compiling():
        metrics["compile_seconds"] = run_ctx.compile_seconds
    metrics["notes"] = out.notes
    files = {
        "model.safetensors": out.state,
        "masks.safetensors": out.masks,
        "init.safetensors": out.init_state,
        "trajectory.safetensors": flatten_snapshots(out.snapshots),
        "history.json": out.history,
        "metrics.json": metrics,
    }
    return files, {k: metrics[k] for k in SUMMARY_FIELDS}
