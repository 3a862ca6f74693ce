"""Per-channel normalisation and label-safe augmentation of image batches, on their own device.

Both take the dataset's static facts (a :class:`analysis.data.DatasetInfo`) and
work on whole (N, C, H, W) batches: no per-image Python, so they run as well on
a GPU as on a CPU. :func:`to_device` moves a CPU tensor to a GPU without
blocking the host (through pinned memory).
"""

from __future__ import annotations

from typing import Protocol

import torch
import torch.nn.functional as F


def to_device(t: torch.Tensor, device: torch.device) -> torch.Tensor:
    """``t`` on ``device`` (itself when already there).

    CPU -> CUDA copies go through pinned memory and do not block the host (the
    caching host allocator keeps the pinned buffer until the copy is done), so a
    training loop never waits for the GPU to drain to hand it a batch or a draw.
    """
    if t.device == device:
        return t
    if device.type == "cuda" and t.device.type == "cpu":
        return t.pin_memory().to(device, non_blocking=True)
    return t.to(device)


class ImageInfo(Protocol):
    """What normalisation and augmentation read of a dataset (``DatasetInfo`` is one)."""

    name: str
    in_channels: int
    mean: tuple[float, ...]
    std: tuple[float, ...]


def _channel_view(values: tuple[float, ...], x: torch.Tensor) -> torch.Tensor:
    """Per-channel constants shaped (C, 1, 1) on x's device and dtype."""
    return torch.tensor(values, dtype=x.dtype, device=x.device).view(-1, 1, 1)


def normalize(x: torch.Tensor, info: ImageInfo) -> torch.Tensor:
    """(x - mean) / std per channel; x: (..., C, H, W) with C == info.in_channels."""
    if x.ndim < 3 or x.shape[-3] != info.in_channels:
        raise ValueError(
            f"normalize: expected (..., {info.in_channels}, H, W) for {info.name}, got {tuple(x.shape)}"
        )
    return (x - _channel_view(info.mean, x)) / _channel_view(info.std, x)


#: Datasets whose classes survive a left-right mirror (a flipped digit is another glyph).
_FLIPPABLE = frozenset({"cifar10", "cifar100", "fashion-mnist"})


def augment(x: torch.Tensor, info: ImageInfo, generator: torch.Generator) -> torch.Tensor:
    """Random crop (zero padding 2, or 4 for 3-channel sets) + mirror where label-safe.

    x: (N, C, H, W) in [0, 1] -> (N, C, H, W), same dtype and device. Each image
    gets its own shift (and flip for cifar10 / cifar100 / fashion-mnist), drawn only from
    ``generator``, so the same generator state gives the same batch.
    """
    if x.ndim != 4:
        raise ValueError(f"augment: expected (N, C, H, W), got {tuple(x.shape)}")
    n, _c, h, w = x.shape
    pad = 4 if info.in_channels == 3 else 2
    # Draw on the generator's device, then move: the stream depends only on the generator.
    shifts = torch.randint(0, 2 * pad + 1, (n, 2), generator=generator, device=generator.device)
    shifts = to_device(shifts, x.device)
    # Zero padding, as in the standard CIFAR recipe; a crop window of the padded
    # image is a shifted image with a zero border, so values stay in [0, 1].
    padded = F.pad(x, (pad, pad, pad, pad))
    # Crop every image at once with two gathers instead of a Python loop over images:
    # rows[i] = shifts[i, 0] + arange(h), cols[i] = shifts[i, 1] + arange(w).
    rows = shifts[:, 0, None] + torch.arange(h, device=x.device)  # (N, H)
    cols = shifts[:, 1, None] + torch.arange(w, device=x.device)  # (N, W)
    wp = padded.shape[-1]
    out = padded.gather(2, rows[:, None, :, None].expand(n, x.shape[1], h, wp))  # (N, C, H, W+2p)
    out = out.gather(3, cols[:, None, None, :].expand(n, x.shape[1], h, w))  # (N, C, H, W)
    if info.name in _FLIPPABLE:
        flip = torch.rand(n, generator=generator, device=generator.device) < 0.5
        out = torch.where(to_device(flip, x.device)[:, None, None, None], out.flip(-1), out)
    return out
