"""The model registry: one builder per architecture name, all keeping the PrunableNet contract.

:func:`from_spec` is the one public way to build a network: a ModelSpec plus
the input it will see (:class:`InputInfo`: ``analysis.data.DatasetInfo``, or an
:class:`InputGeometry` written out by hand).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from analysis.errors import SpecError
from analysis.models.base import InputInfo, PrunableNet, check_input_info
from analysis.models.lenet import build_lenet
from analysis.models.mlp import build_mlp
from analysis.models.resnet import build_resnet20
from analysis.models.vgg import build_vgg
from analysis.specs import ModelSpec

__all__ = ["MODELS", "InputGeometry", "InputInfo", "PrunableNet", "build_for", "from_spec"]

#: arch name -> builder(spec, info); reached only through :func:`from_spec`.
MODELS: dict[str, Callable[[ModelSpec, InputInfo], PrunableNet]] = {
    "mlp": build_mlp,
    "lenet": build_lenet,
    "vgg": build_vgg,
    "resnet20": build_resnet20,
    "resnet32": build_resnet20,
    "resnet56": build_resnet20,
}


@dataclass(frozen=True, slots=True, kw_only=True)
class InputGeometry:
    """An :class:`InputInfo` by hand: (C, S, S) images in [0, 1], their per-channel mean/std."""

    in_channels: int
    image_size: int
    num_classes: int
    mean: tuple[float, ...]
    std: tuple[float, ...]


def from_spec(spec: ModelSpec, info: InputInfo) -> PrunableNet:
    """A freshly initialised network for ``spec`` on the input ``info`` describes (seed first).

    The network takes raw images (N, C, S, S) in [0, 1] and returns logits
    (N, num_classes). Raises SpecError naming the field for an unknown arch or
    an inconsistent ``info`` (mean/std not one per channel, std <= 0, ...).
    """
    if spec.arch not in MODELS:
        listed = ", ".join(repr(name) for name in MODELS)
        raise SpecError("arch", f"one of {{{listed}}}", spec.arch, owner="ModelSpec")
    check_input_info(info)
    return MODELS[spec.arch](spec, info)


#: The name most callers use; the same function as :func:`from_spec`.
build_for = from_spec
