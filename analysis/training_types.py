"""What sparsity methods and the training loop share: masks, training state, callbacks, results.

This module sits below both :mod:`analysis.train` and :mod:`analysis.sparsity`
(it imports neither), so a method can name what training hands it and training
can apply a method's masks without either importing the other's internals.
:class:`RunContext` is a Protocol: methods are written against it, and
:mod:`analysis.runs` provides the store-backed implementation.

Devices: training runs on the device of the model it is handed; masks may live
on any device (they are moved to their weight's), and every state dict handed
back (:func:`state_of`, snapshots) is a contiguous fp32 copy on the CPU, the
form the store writes, whatever device or memory format trained it.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

import torch
from torch import nn

from analysis.errors import PrunescopeError, SpecError

if TYPE_CHECKING:
    from analysis.data import Splits
    from analysis.specs import RunSpec

#: ``{weight name: bool tensor of the weight's shape}``; False marks a pruned weight.
Masks = dict[str, torch.Tensor]


#: Autocast dtype of each ``TrainSpec.precision`` (fp32: no autocast).
PRECISIONS: dict[str, torch.dtype | None] = {
    "fp32": None,
    "bf16": torch.bfloat16,
    "fp16": torch.float16,
}


class PrecisionError(PrunescopeError):
    """A training precision the device cannot run (fp16 on the CPU)."""


def check_precision(precision: str, device: torch.device) -> None:
    """Raise unless ``device`` can train in ``precision`` (called before any step is taken).

    Raises:
        SpecError: ``precision`` is not one of fp32, bf16, fp16.
        PrecisionError: fp16 on the CPU (CPU autocast is meant for bf16; fp16
            needs a GPU and its gradient scaler); the message names the alternatives.
    """
    if precision not in PRECISIONS:
        allowed = f"one of {{{', '.join(map(repr, PRECISIONS))}}}"
        raise SpecError("train.precision", allowed, precision, owner="TrainSpec")
    if precision == "fp16" and device.type == "cpu":
        raise PrecisionError(
            "[train] precision = 'fp16' needs a GPU (cuda or mps); on the CPU use 'fp32' or 'bf16'"
        )


def autocast_for(device: torch.device, precision: str) -> contextlib.AbstractContextManager:
    """``torch.autocast`` on ``device`` for ``precision`` (a no-op context for fp32)."""
    check_precision(precision, device)
    dtype = PRECISIONS[precision]
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=dtype)


def device_of(model: nn.Module) -> torch.device:
    """The device of ``model``'s parameters (the CPU for a model without any)."""
    param = next(model.parameters(), None)
    return torch.device("cpu") if param is None else param.device


def to_cpu(tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Detached, contiguous CPU copies of ``tensors`` (any device, any memory format)."""
    return {
        k: v.detach().to("cpu", memory_format=torch.contiguous_format, copy=True)
        for k, v in tensors.items()
    }


def apply_masks(model: nn.Module, masks: Masks) -> None:
    """Zero the pruned weights of ``model`` in place (masks on any device)."""
    params = dict(model.named_parameters())
    with torch.no_grad():
        for name, mask in masks.items():
            param = params[name]
            param.mul_(mask.to(device=param.device, dtype=param.dtype))


def state_of(model: nn.Module) -> dict[str, torch.Tensor]:
    """A detached copy of a model's state_dict, on the CPU and contiguous (as the store keeps it)."""
    return to_cpu(model.state_dict())


@dataclass
class TrainState:
    """What callbacks see and may change."""

    model: nn.Module
    optimizer: torch.optim.Optimizer
    total_steps: int
    steps_per_epoch: int
    masks: Masks = field(default_factory=dict)
    step: int = 0
    epoch: int = 0
    #: The step's loss on the CPU; on an accelerator the epoch's running mean, read
    #: every few steps (``analysis.train_step.Tally``), sparing a host sync per step.
    loss: float = 0.0
    snapshots: dict[int, dict[str, torch.Tensor]] = field(default_factory=dict)
    history: list[dict] = field(default_factory=list)


class Callback:
    """A hook into training; override what you need."""

    def on_start(self, state: TrainState) -> None:
        """Before the first step."""

    def before_step(self, state: TrainState) -> None:
        """After backward, before the optimizer step."""

    def after_step(self, state: TrainState) -> None:
        """After the optimizer step (``state.step`` already counts it)."""

    def on_epoch_end(self, state: TrainState) -> None:
        """After an epoch's last step."""


@dataclass
class Fit:
    """The outcome of one training phase."""

    history: list[dict]
    snapshots: dict[int, dict[str, torch.Tensor]]
    masks: Masks
    steps: int
    #: Extra seconds of the first step under ``torch.compile`` (None: not compiled).
    compile_seconds: float | None = None


@dataclass
class MethodOutput:
    """What a sparsity method hands back: final weights, masks, history, trajectory."""

    state: dict[str, torch.Tensor]
    masks: Masks
    history: list[dict]
    init_state: dict[str, torch.Tensor]
    snapshots: dict[int, dict[str, torch.Tensor]] = field(default_factory=dict)
    notes: dict = field(default_factory=dict)

    def to_cpu(self) -> MethodOutput:
        """This output with every tensor a contiguous CPU copy (masks stay bool)."""
        return MethodOutput(
            state=to_cpu(self.state),
            masks=to_cpu(self.masks),
            history=self.history,
            init_state=to_cpu(self.init_state),
            snapshots={step: to_cpu(s) for step, s in self.snapshots.items()},
            notes=self.notes,
        )


class StoredRun(Protocol):
    """A run read back from the store, as far as a method uses it (see ``analysis.runs.TrainedRun``)."""

    state: dict[str, torch.Tensor]
    masks: Masks
    init_state: dict[str, torch.Tensor]
    metrics: dict


class RunContext(Protocol):
    """Everything a sparsity method needs to train the network of ``spec``."""

    spec: RunSpec
    data: Splits

    def build(self) -> nn.Module:
        """The network at its seeded initialisation (the same for every method of one seed),
        on the run's device (initialised on the CPU, so the same on every device)."""
        ...

    def generator(self, purpose: str, *extra: int) -> torch.Generator:
        """A generator for one purpose of this run."""
        ...

    def total_steps(self) -> int:
        """Optimizer steps of a full training run of ``spec`` on ``data``."""
        ...

    def fit(
        self, model: nn.Module, masks: Masks | None = None, *, phase: str = "train", **kw: Any
    ) -> Fit:
        """Train with the run's spec and seed (``analysis.train.fit``'s keywords pass through)."""
        ...

    def get(self, spec: RunSpec) -> StoredRun:
        """A run this one builds on (it must be among the method's prerequisites)."""
        ...

    def score_batch(self, n: int) -> tuple[torch.Tensor, torch.Tensor]:
        """A fixed, seeded batch of ``n`` training samples on the run's device: x (n, C, H, W), y (n,)."""
        ...
