"""CIFAR ResNets (He et al. 2016, section 4.2): ResNet-20/32/56, scaled by width_mult.

Stem conv3x3 + BN + ReLU, three stages of n BasicBlocks (depth 6n + 2: n = 3,
5, 9) with 16/32/64 channels (stride 2 entering stages 2 and 3), global
average pooling, head. Shortcuts are identity, or 1x1 conv + BN where the
shape changes ("option B"). ``shortcuts = False`` drops every shortcut, the
"noshort" networks of Li et al. 2018 ("Visualizing the Loss Landscape of
Neural Nets", Figure 5).

Symmetries: the residual stream of a stage is summed across blocks, so it can
only be permuted as a whole: one tied permutation ``P_stage{s}`` covers the
stem (for stage 1) or the entry block's shortcut (stages 2, 3) and every
block's conv2/bn2 output in the stage. Each block's inner channels
(conv1/bn1 output) have their own ``P_layer{s}.{b}.inner``. This is the
ResNet spec of Git Re-Basin (Ainsworth et al. 2023). Without shortcuts the
same tied permutations are still a symmetry (every block's output is then only
read by the next block), just not the most general one.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence

import torch
from torch import nn

from analysis.models.base import AxesToPerm, InputInfo, PrunableNet, init_weights, scaled
from analysis.specs import ModelSpec

STAGE_CHANNELS = (16, 32, 64)
#: arch -> BasicBlocks per stage (6n + 2 layers).
BLOCKS_PER_STAGE = {"resnet20": 3, "resnet32": 5, "resnet56": 9}


class BasicBlock(nn.Module):
    """relu(bn2(conv2(relu(bn1(conv1(x))))) + shortcut(x)), each ReLU a named module."""

    def __init__(self, c_in: int, c_out: int, stride: int, shortcut: bool = True) -> None:
        """Two 3x3 convs; a 1x1 conv + BN shortcut when stride or channels change.

        ``shortcut=False``: no residual connection at all (Li et al.'s noshort).
        """
        super().__init__()
        self.residual = shortcut
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(c_out)
        self.relu1 = nn.ReLU()
        self.conv2 = nn.Conv2d(c_out, c_out, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.projects = shortcut and (stride != 1 or c_in != c_out)
        if self.projects:
            self.shortcut: nn.Module = nn.Sequential(
                OrderedDict(
                    conv=nn.Conv2d(c_in, c_out, 1, stride=stride, bias=False),
                    bn=nn.BatchNorm2d(c_out),
                )
            )
        else:
            self.shortcut = nn.Identity()
        self.relu2 = nn.ReLU()  # output: the residual stream after this block

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, c_in, H, W) -> (N, c_out, H / stride, W / stride)."""
        out = self.relu1(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu2(out + self.shortcut(x) if self.residual else out)


class ResNet20(PrunableNet):
    """conv1-bn1-relu, layer1..layer3 (``blocks`` BasicBlocks each), global pool, head.

    The name is historical: ``blocks`` 3, 5 and 9 give ResNet-20, -32 and -56.
    """

    def __init__(
        self,
        *,
        in_channels: int,
        num_classes: int,
        width_mult: float,
        mean: Sequence[float],
        std: Sequence[float],
        blocks: int = 3,
        shortcuts: bool = True,
    ) -> None:
        """Build stem, three stages and head; channels 16/32/64 times width_mult."""
        super().__init__(mean, std)
        self.blocks = blocks
        widths = [scaled(c, width_mult) for c in STAGE_CHANNELS]
        self.conv1 = nn.Conv2d(in_channels, widths[0], 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(widths[0])
        self.relu = nn.ReLU()
        c_in = widths[0]
        for s, c_out in enumerate(widths, start=1):
            stage = [
                BasicBlock(
                    c_in if b == 0 else c_out, c_out, 2 if (b == 0 and s > 1) else 1, shortcuts
                )
                for b in range(blocks)
            ]
            self.add_module(f"layer{s}", nn.Sequential(*stage))
            c_in = c_out
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.feature_dim = c_in
        self.head = nn.Linear(c_in, num_classes)
        init_weights(self)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Global-average-pooled stage-3 map (N, 64*wm) of x (N, C, H, W) in [0, 1]."""
        x = self.relu(self.bn1(self.conv1(self.normalize(x))))
        for s in range(1, len(STAGE_CHANNELS) + 1):
            x = self.get_submodule(f"layer{s}")(x)
        return self.pool(x).flatten(1)

    def axes_to_perm(self) -> AxesToPerm:
        """Tied P_stage{s} on each residual stream, P_layer{s}.{b}.inner inside each block."""
        axes = self._axes("conv1", None, "P_stage1") | self._axes("bn1", "P_stage1", "P_stage1")
        p_stream = "P_stage1"
        for s in range(1, len(STAGE_CHANNELS) + 1):
            p_out = f"P_stage{s}"
            for b in range(self.blocks):
                name = f"layer{s}.{b}"
                block = self.get_submodule(name)
                assert isinstance(block, BasicBlock)
                inner = f"P_{name}.inner"
                axes |= self._axes(f"{name}.conv1", p_stream, inner)
                axes |= self._axes(f"{name}.bn1", inner, inner)
                axes |= self._axes(f"{name}.conv2", inner, p_out)
                axes |= self._axes(f"{name}.bn2", p_out, p_out)
                if block.projects:
                    axes |= self._axes(f"{name}.shortcut.conv", p_stream, p_out)
                    axes |= self._axes(f"{name}.shortcut.bn", p_out, p_out)
                elif block.residual and p_stream != p_out:
                    # An identity shortcut adds the input stream to the output
                    # stream, which is only invariant if they share a permutation.
                    raise AssertionError(f"identity shortcut in {name} changes permutation")
                p_stream = p_out
        return axes | self._axes("head", p_stream, None)

    def perm_points(self) -> dict[str, str]:
        """P_stage{s}: the last block's post-addition ReLU; inner perms: each block's relu1."""
        points: dict[str, str] = {}
        for s in range(1, len(STAGE_CHANNELS) + 1):
            points[f"P_stage{s}"] = f"layer{s}.{self.blocks - 1}.relu2"
            for b in range(self.blocks):
                points[f"P_layer{s}.{b}.inner"] = f"layer{s}.{b}.relu1"
        return points


def build_resnet20(spec: ModelSpec, info: InputInfo) -> ResNet20:
    """A ResNet-20/32/56 (``spec.arch``) scaled by ``spec.width_mult``, any image_size.

    ``spec.shortcuts`` False builds the noshort variant.
    """
    return ResNet20(
        blocks=BLOCKS_PER_STAGE[spec.arch],
        shortcuts=spec.shortcuts,
        in_channels=info.in_channels,
        num_classes=info.num_classes,
        width_mult=spec.width_mult,
        mean=tuple(info.mean),
        std=tuple(info.std),
    )
