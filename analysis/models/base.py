"""The contract every prunescope network keeps, and helpers for declaring its symmetries.

Every network takes raw images in [0, 1] of shape (N, C, H, W) and normalises
them itself, so callers never have to remember a dataset's mean and std. Its
last layer is an ``nn.Linear`` called ``head`` on top of ``features(x)``.

Initialisation (shared by every family): conv and hidden linear weights are
Kaiming-normal with fan_in and the ReLU gain (He et al. 2015), biases are zero,
BatchNorm is (gamma=1, beta=0); the ``head`` keeps PyTorch's default uniform
init, whose small scale keeps the initial logits near zero.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import torch
from torch import nn

from analysis.errors import SpecError
from analysis.permspec import AxesToPerm, PermutationSpec, permutation_spec_from_axes_to_perm
from analysis.specs import check_int

__all__ = ["AxesToPerm", "InputInfo", "PrunableNet", "check_input_info", "init_weights"]


class InputInfo(Protocol):
    """What a model needs to know about its data (``analysis.data.DatasetInfo`` has it)."""

    @property
    def in_channels(self) -> int: ...
    @property
    def image_size(self) -> int: ...
    @property
    def num_classes(self) -> int: ...
    @property
    def mean(self) -> Sequence[float]: ...
    @property
    def std(self) -> Sequence[float]: ...


def scaled(channels: int, width_mult: float) -> int:
    """``channels`` scaled by ``width_mult``, rounded, and at least 1."""
    return max(1, round(channels * width_mult))


def module_axes(module: nn.Module, prefix: str, p_in: str | None, p_out: str | None) -> AxesToPerm:
    """Axis declarations for the state-dict entries of one Conv2d, Linear or BatchNorm2d.

    Conv2d weight (out, in, kh, kw) and Linear weight (out, in) get
    ``(p_out, p_in, ...)``; their bias (out,) gets ``(p_out,)``. BatchNorm2d acts
    per channel, so weight, bias, running_mean and running_var (C,) all get
    ``(p_out,)`` (``p_in`` must equal ``p_out``); ``num_batches_tracked`` is a
    scalar and is left out.
    """
    axes: AxesToPerm = {}
    if isinstance(module, nn.Conv2d | nn.Linear):
        spatial = (None, None) if isinstance(module, nn.Conv2d) else ()
        axes[f"{prefix}.weight"] = (p_out, p_in, *spatial)
        if module.bias is not None:
            axes[f"{prefix}.bias"] = (p_out,)
    elif isinstance(module, nn.BatchNorm2d):
        if p_in != p_out:
            raise ValueError(f"BatchNorm {prefix!r} cannot change the permutation")
        if module.affine:
            axes[f"{prefix}.weight"] = (p_out,)
            axes[f"{prefix}.bias"] = (p_out,)
        if module.track_running_stats:
            axes[f"{prefix}.running_mean"] = (p_out,)
            axes[f"{prefix}.running_var"] = (p_out,)
    else:
        raise TypeError(f"no permutation rule for {type(module).__name__} at {prefix!r}")
    return axes


def init_weights(net: nn.Module) -> None:
    """Kaiming-normal (fan_in, ReLU) conv/hidden-linear weights, zero biases, BN at (1, 0).

    A skeleton on the ``meta`` device (shapes only) is left as it is: it has no values,
    and a random init there costs seconds (torch imports its decompositions for it).
    """
    for name, m in net.named_modules():
        if any(p.is_meta for p in m.parameters(recurse=False)):
            continue
        if name == "head":
            continue  # PyTorch's default: small logits at init
        if isinstance(m, nn.Conv2d | nn.Linear):
            nn.init.kaiming_normal_(m.weight, mode="fan_in", nonlinearity="relu")
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)


class PrunableNet(nn.Module):
    """Base class: in-model normalisation, ``features`` -> ``head``, symmetry declarations.

    Subclasses register their modules in forward order, set ``feature_dim`` and
    ``head``, and implement :meth:`features`, :meth:`axes_to_perm` and
    :meth:`perm_points`.
    """

    feature_dim: int
    head: nn.Linear

    def __init__(self, mean: Sequence[float], std: Sequence[float]) -> None:
        """Store the input normalisation as non-persistent (C,)-> (1, C, 1, 1) buffers."""
        super().__init__()
        # Non-persistent: they are a property of the dataset, not learned
        # parameters, so they stay out of the state dict (and out of alignment,
        # interpolation and checkpoints) but still follow .to(device).
        self.register_buffer(
            "input_mean",
            torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1),
            persistent=False,
        )
        self.register_buffer(
            "input_std", torch.tensor(std, dtype=torch.float32).view(1, -1, 1, 1), persistent=False
        )

    def normalize(self, x: torch.Tensor) -> torch.Tensor:
        """(x - mean) / std per channel; x (N, C, H, W) in [0, 1]."""
        return (x - self.input_mean) / self.input_std

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Penultimate features (N, feature_dim) of raw images x (N, C, H, W) in [0, 1]."""
        raise NotImplementedError

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits (N, num_classes) of raw images x (N, C, H, W) in [0, 1]."""
        return self.head(self.features(x))

    def prunable_names(self) -> list[str]:
        """State-dict keys of every Conv2d and Linear weight, head included, in forward order."""
        return [
            f"{name}.weight"
            for name, m in self.named_modules()
            if isinstance(m, nn.Conv2d | nn.Linear)
        ]

    def axes_to_perm(self) -> AxesToPerm:
        """Per state-dict key (except num_batches_tracked), the permutation on each axis."""
        raise NotImplementedError

    def permutation_spec(self) -> PermutationSpec:
        """The hidden-unit permutation symmetries of this network."""
        return permutation_spec_from_axes_to_perm(self.axes_to_perm())

    def perm_points(self) -> dict[str, str]:
        """Per permutation, a module (``named_modules`` name) whose output carries it on dim 1."""
        raise NotImplementedError

    def _axes(self, prefix: str, p_in: str | None, p_out: str | None) -> AxesToPerm:
        """:func:`module_axes` for the submodule called ``prefix``."""
        return module_axes(self.get_submodule(prefix), prefix, p_in, p_out)


def check_input_info(info: InputInfo) -> None:
    """Raise SpecError (owner ``from_spec``) unless the input geometry and normalisation fit."""
    c = info.in_channels
    check_int("from_spec", "in_channels", c, lo=1, hi=64)
    check_int("from_spec", "image_size", info.image_size, lo=1, hi=4096)
    check_int("from_spec", "num_classes", info.num_classes, lo=1, hi=1_000_000)
    if len(info.mean) != c:
        raise SpecError("mean", f"a tuple of {c} floats", info.mean, owner="from_spec")
    if len(info.std) != c or any(s <= 0 for s in info.std):
        raise SpecError("std", f"a tuple of {c} positive floats", info.std, owner="from_spec")
