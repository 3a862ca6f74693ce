"""What sparsity methods and the training loop share: masks, training state, callbacks, results.

This module sits below both :mod:`analysis.train` and :mod:`analysis.sparsity`
(it imports neither), so a method can name what training hands it and training
can apply a method's masks without either importing the other's internals.
:class:`RunContext` is a Protocol: methods are written against it, and
:mod:`analysis.runs` provides the store-backed implementation.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

import torch
from torch import nn

if TYPE_CHECKING:
    from analysis.data import Splits
    from analysis.specs import RunSpec

#: ``{weight name: bool tensor of the weight's shape}``; False marks a pruned weight.
Masks = dict[str, torch.Tensor]


def apply_masks(model: nn.Module, masks: Masks) -> None:
    """Zero the pruned weights of ``model`` in place."""
    params = dict(model.named_parameters())
    with torch.no_grad():
        for name, mask in masks.items():
            params[name].mul_(mask.to(params[name].dtype))


def state_of(model: nn.Module) -> dict[str, torch.Tensor]:
    """A detached copy of a model's state_dict."""
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


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


@dataclass
class MethodOutput:
    """What a sparsity method hands back: final weights, masks, history, trajectory."""

    state: dict[str, torch.Tensor]
    masks: Masks
    history: list[dict]
    init_state: dict[str, torch.Tensor]
    snapshots: dict[int, dict[str, torch.Tensor]] = field(default_factory=dict)
    notes: dict = field(default_factory=dict)


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
        """The network at its seeded initialisation (the same for every method of one seed)."""
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
        """A fixed, seeded batch of ``n`` training samples: x (n, C, H, W), y (n,)."""
        ...
