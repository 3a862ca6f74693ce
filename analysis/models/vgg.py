"""VGG-11 (Simonyan & Zisserman 2015) with BatchNorm (Ioffe & Szegedy 2015), for small images.

The classifier is global average pooling + one linear head (as in the CIFAR
VGGs used by Git Re-Basin and Entezari et al.) instead of VGG's three FC layers,
so the head's input is independent of the image size.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence

import torch
from torch import nn

from analysis.models.base import AxesToPerm, InputInfo, PrunableNet, init_weights, scaled
from analysis.specs import ModelSpec

#: VGG-11's convolutions ("M": 2x2 max-pool); the final pool is replaced by global pooling.
VGG11_CFG: tuple[int | str, ...] = (64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512)


class VGG(PrunableNet):
    """body.conv{i}-bn{i}-relu{i} (+ body.pool{j}); permutation ``P_conv{i}`` per conv."""

    def __init__(
        self,
        *,
        in_channels: int,
        image_size: int,
        num_classes: int,
        width_mult: float,
        mean: Sequence[float],
        std: Sequence[float],
        cfg: Sequence[int | str] = VGG11_CFG,
    ) -> None:
        """Build the conv body from ``cfg``; pools that would shrink the map below 1 are skipped."""
        super().__init__(mean, std)
        layers: OrderedDict[str, nn.Module] = OrderedDict()
        channels, side, n_conv, n_pool = in_channels, image_size, 0, 0
        for item in cfg:
            if item == "M":
                if side >= 2:  # a 1x1 map cannot be pooled (28 -> 14 -> 7 -> 3 -> 1 is fine)
                    layers[f"pool{n_pool}"] = nn.MaxPool2d(2)
                    side //= 2
                    n_pool += 1
                continue
            out = scaled(int(item), width_mult)
            # No conv bias: the BatchNorm that follows would cancel it.
            layers[f"conv{n_conv}"] = nn.Conv2d(channels, out, 3, padding=1, bias=False)
            layers[f"bn{n_conv}"] = nn.BatchNorm2d(out)
            layers[f"relu{n_conv}"] = nn.ReLU()
            channels, n_conv = out, n_conv + 1
        self.n_conv = n_conv
        self.body = nn.Sequential(layers)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.feature_dim = channels
        self.head = nn.Linear(channels, num_classes)
        init_weights(self)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Global-average-pooled last feature map (N, C_last) of x (N, C, H, W) in [0, 1]."""
        return self.pool(self.body(self.normalize(x))).flatten(1)

    def axes_to_perm(self) -> AxesToPerm:
        """conv{i}: (P_conv{i}, P_conv{i-1}); bn{i}: P_conv{i}; head: (None, P_conv{last})."""
        axes: AxesToPerm = {}
        p_in: str | None = None
        for i in range(self.n_conv):
            p = f"P_conv{i}"
            axes |= self._axes(f"body.conv{i}", p_in, p) | self._axes(f"body.bn{i}", p, p)
            p_in = p
        return axes | self._axes("head", p_in, None)

    def perm_points(self) -> dict[str, str]:
        """P_conv{i} is carried by body.relu{i}."""
        return {f"P_conv{i}": f"body.relu{i}" for i in range(self.n_conv)}


def build_vgg(spec: ModelSpec, info: InputInfo) -> VGG:
    """A VGG-11-BN scaled by ``spec.width_mult``."""
    return VGG(
        in_channels=info.in_channels,
        image_size=info.image_size,
        num_classes=info.num_classes,
        width_mult=spec.width_mult,
        mean=tuple(info.mean),
        std=tuple(info.std),
    )
