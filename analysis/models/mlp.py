"""A fully connected ReLU network: flatten -> depth x (Linear + ReLU) -> head."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence

import torch
from torch import nn

from analysis.models.base import AxesToPerm, InputInfo, PrunableNet, init_weights
from analysis.specs import ModelSpec


class MLP(PrunableNet):
    """``depth`` hidden layers of ``width`` ReLU units; permutation ``P_i`` on hidden layer i."""

    def __init__(
        self,
        *,
        in_features: int,
        width: int,
        depth: int,
        num_classes: int,
        mean: Sequence[float],
        std: Sequence[float],
    ) -> None:
        """Build body.fc{i} / body.relu{i} for i < depth, then head."""
        super().__init__(mean, std)
        self.depth = depth
        layers: OrderedDict[str, nn.Module] = OrderedDict(flatten=nn.Flatten())
        fan_in = in_features
        for i in range(depth):
            layers[f"fc{i}"] = nn.Linear(fan_in, width)
            layers[f"relu{i}"] = nn.ReLU()
            fan_in = width
        self.body = nn.Sequential(layers)
        self.feature_dim = width
        self.head = nn.Linear(width, num_classes)
        init_weights(self)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Last hidden ReLU activation (N, width) of x (N, C, H, W) in [0, 1]."""
        return self.body(self.normalize(x))

    def axes_to_perm(self) -> AxesToPerm:
        """fc{i}: (P_i, P_{i-1}); head: (None, P_{depth-1})."""
        axes: AxesToPerm = {}
        p_in: str | None = None
        for i in range(self.depth):
            axes |= self._axes(f"body.fc{i}", p_in, f"P_{i}")
            p_in = f"P_{i}"
        return axes | self._axes("head", p_in, None)

    def perm_points(self) -> dict[str, str]:
        """P_i is carried by body.relu{i}."""
        return {f"P_{i}": f"body.relu{i}" for i in range(self.depth)}


def build_mlp(spec: ModelSpec, info: InputInfo) -> MLP:
    """An MLP of ``spec.width`` x ``spec.depth`` on flattened (C, H, W) images."""
    return MLP(
        in_features=info.in_channels * info.image_size**2,
        width=spec.width,
        depth=spec.depth,
        num_classes=info.num_classes,
        mean=tuple(info.mean),
        std=tuple(info.std),
    )
