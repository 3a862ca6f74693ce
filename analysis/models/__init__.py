"""The model registry: one builder per architecture name, all keeping the PrunableNet contract."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Protocol

from analysis.errors import SpecError
from analysis.models.base import PrunableNet, check_build_args
from analysis.models.lenet import build_lenet
from analysis.models.mlp import build_mlp
from analysis.models.resnet import build_resnet20
from analysis.models.vgg import build_vgg
from analysis.specs import ModelSpec

__all__ = ["MODELS", "InputInfo", "PrunableNet", "build_for", "build_model"]

#: arch name -> builder(spec, *, in_channels, image_size, num_classes, mean, std).
MODELS: dict[str, Callable[..., PrunableNet]] = {
    "mlp": build_mlp,
    "lenet": build_lenet,
    "vgg": build_vgg,
    "resnet20": build_resnet20,
}


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


def build_model(
    spec: ModelSpec,
    *,
    in_channels: int,
    image_size: int,
    num_classes: int,
    mean: Sequence[float],
    std: Sequence[float],
) -> PrunableNet:
    """A freshly initialised network for ``spec`` on (C, S, S) images in [0, 1] (seed first)."""
    if spec.arch not in MODELS:
        listed = ", ".join(repr(name) for name in MODELS)
        raise SpecError("arch", f"one of {{{listed}}}", spec.arch, owner="ModelSpec")
    check_build_args(in_channels, image_size, num_classes, mean, std)
    return MODELS[spec.arch](
        spec,
        in_channels=in_channels,
        image_size=image_size,
        num_classes=num_classes,
        mean=tuple(mean),
        std=tuple(std),
    )


def build_for(spec: ModelSpec, info: InputInfo) -> PrunableNet:
    """:func:`build_model` with the input geometry read from ``info`` (e.g. a DatasetInfo)."""
    return build_model(
        spec,
        in_channels=info.in_channels,
        image_size=info.image_size,
        num_classes=info.num_classes,
        mean=info.mean,
        std=info.std,
    )
