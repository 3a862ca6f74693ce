"""LeNet-5 (LeCun et al. 1998) with ReLU and max-pooling, scaled by width_mult.

The first fully connected layer is stored as what LeNet-5 called it, the
convolution C5: a ``Conv2d`` whose kernel covers the whole (C, h, w) feature map.
On that map it computes exactly ``Linear(C*h*w, 120)`` of the channel-major
flatten, but its weight keeps the (out, C, h, w) layout, so a permutation of
conv2's channels is an ordinary permutation of axis 1 of ``fc1.weight`` rather
than a permutation of blocks of h*w columns of a flattened matrix. Weight
matching, pruning masks and interpolation then need no reshape-aware rule.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from analysis.errors import SpecError
from analysis.models.base import AxesToPerm, InputInfo, PrunableNet, init_weights, scaled
from analysis.specs import ModelSpec


def lenet_geometry(image_size: int) -> tuple[int, int, int]:
    """(conv1 padding, conv2 padding, side of the last pooled map) for a square input."""
    # LeNet-5 saw 32x32 inputs; padding 28x28 MNIST by 2 reproduces that geometry.
    pad1 = 2 if image_size < 32 else 0
    side1 = image_size + 2 * pad1 - 4
    # Small inputs (e.g. 8x8 digits) would vanish after conv2: pad it too.
    pad2 = 0 if side1 // 2 - 4 >= 2 else 2
    side2 = side1 // 2 + 2 * pad2 - 4
    if side1 < 2 or side2 < 2:
        raise SpecError("image_size", "at least 4 for lenet", image_size, owner="from_spec")
    return pad1, pad2, side2 // 2


class LeNet(PrunableNet):
    """conv1-relu-pool, conv2-relu-pool, fc1(C5)-relu, fc2-relu, head."""

    def __init__(
        self,
        *,
        in_channels: int,
        image_size: int,
        num_classes: int,
        width_mult: float,
        mean: Sequence[float],
        std: Sequence[float],
    ) -> None:
        """Build the layers in forward order; channel counts 6/16/120/84 times width_mult."""
        super().__init__(mean, std)
        c1, c2, f1, f2 = (scaled(c, width_mult) for c in (6, 16, 120, 84))
        pad1, pad2, side = lenet_geometry(image_size)
        self.conv1 = nn.Conv2d(in_channels, c1, 5, padding=pad1)
        self.relu1 = nn.ReLU()
        self.pool1 = nn.MaxPool2d(2)
        self.conv2 = nn.Conv2d(c1, c2, 5, padding=pad2)
        self.relu2 = nn.ReLU()
        self.pool2 = nn.MaxPool2d(2)
        self.fc1 = nn.Conv2d(c2, f1, side)  # = Linear(c2*side*side, f1), see module docstring
        self.flatten = nn.Flatten()
        self.relu3 = nn.ReLU()
        self.fc2 = nn.Linear(f1, f2)
        self.relu4 = nn.ReLU()
        self.feature_dim = f2
        self.head = nn.Linear(f2, num_classes)
        init_weights(self)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """fc2's ReLU activation (N, 84*wm) of x (N, C, H, W) in [0, 1]."""
        x = self.pool1(self.relu1(self.conv1(self.normalize(x))))
        x = self.pool2(self.relu2(self.conv2(x)))
        x = self.relu3(self.flatten(self.fc1(x)))  # (N, f1, 1, 1) -> (N, f1)
        return self.relu4(self.fc2(x))

    def axes_to_perm(self) -> AxesToPerm:
        """P_conv1 -> P_conv2 -> P_fc1 -> P_fc2 -> head."""
        return (
            self._axes("conv1", None, "P_conv1")
            | self._axes("conv2", "P_conv1", "P_conv2")
            | self._axes("fc1", "P_conv2", "P_fc1")
            | self._axes("fc2", "P_fc1", "P_fc2")
            | self._axes("head", "P_fc2", None)
        )

    def perm_points(self) -> dict[str, str]:
        """Each permutation is carried by the ReLU after its layer."""
        return {"P_conv1": "relu1", "P_conv2": "relu2", "P_fc1": "relu3", "P_fc2": "relu4"}


def build_lenet(spec: ModelSpec, info: InputInfo) -> LeNet:
    """A LeNet-5 scaled by ``spec.width_mult``."""
    return LeNet(
        in_channels=info.in_channels,
        image_size=info.image_size,
        num_classes=info.num_classes,
        width_mult=spec.width_mult,
        mean=tuple(info.mean),
        std=tuple(info.std),
    )
