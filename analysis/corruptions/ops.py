"""Tensor operations the corruptions share: seeded randomness, filters, resampling, streaks.

Each reproduces one library operation the references call (scipy.ndimage, skimage, OpenCV,
ImageMagick), batched over ``x: (N, C, H, W)``; the docstrings name the operation and any
difference from it.

Devices: every operation runs on ``x``'s device and creates its tensors there. Random numbers
are drawn from a CPU ``torch.Generator`` and moved (:func:`randn`, :func:`rand`,
:func:`uniform`, :func:`randint`), so a corruption draws the same numbers on every device;
small index and coordinate tables are built on the CPU (float64 where the reference needs it,
which MPS lacks) and moved.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

Tensor = torch.Tensor

#: A corruption: (function(x, parameter, generator) -> x', its parameters at severities 1..5).
Corruption = tuple[Callable[[Tensor, Any, torch.Generator], Tensor], tuple[Any, ...]]


# ---------------------------------------------------------------------------
# randomness


def generator(seed: int, suite: str, name: str, severity: int) -> torch.Generator:
    """A CPU torch.Generator seeded from (seed, suite, name, severity) via numpy's SeedSequence."""
    # crc32, not hash(): Python's str hash is salted per process and would break determinism.
    ss = np.random.SeedSequence([seed, zlib.crc32(f"{suite}:{name}".encode()), severity])
    state = int(ss.generate_state(1, dtype=np.uint64)[0]) >> 1  # torch wants < 2**63
    return torch.Generator().manual_seed(state)


def _drawn(values: Tensor, device: torch.device | str | None) -> Tensor:
    """``values`` drawn on the CPU, moved to ``device`` (None: stays on the CPU)."""
    return values if device is None else values.to(device)


def randn(g: torch.Generator, shape: tuple[int, ...], device: torch.device | None = None) -> Tensor:
    """Standard normal samples of the given shape, drawn on the CPU, on ``device``."""
    return _drawn(torch.randn(shape, generator=g), device)


def rand(g: torch.Generator, shape: tuple[int, ...], device: torch.device | None = None) -> Tensor:
    """Uniform [0, 1) samples of the given shape, drawn on the CPU, on ``device``."""
    return _drawn(torch.rand(shape, generator=g), device)


def uniform(
    g: torch.Generator,
    shape: tuple[int, ...],
    lo: float,
    hi: float,
    device: torch.device | None = None,
) -> Tensor:
    """Uniform samples in [lo, hi) of the given shape (drawn and scaled on the CPU), on ``device``."""
    return _drawn(lo + (hi - lo) * torch.rand(shape, generator=g), device)


def randint(
    g: torch.Generator, shape: tuple[int, ...], lo: int, hi: int, device: torch.device | None = None
) -> Tensor:
    """Integers in [lo, hi) like ``np.random.randint`` (high exclusive), on ``device``."""
    return _drawn(torch.randint(lo, hi, shape, generator=g), device)


def random_sign(g: torch.Generator, n: int, device: torch.device | None = None) -> Tensor:
    """``n`` signs in {-1, +1}: (n,), on ``device``."""
    return _drawn(randint(g, (n,), 0, 2).float() * 2 - 1, device)


def to_uint8_levels(x: Tensor, rounding: str) -> Tensor:
    """Quantise [0, 1] values to the 256 levels of a uint8 image, as float again.

    ``floor`` is numpy's ``np.uint8(x * 255)`` (and ImageMagick's 8-bit PNG output),
    ``round`` is PIL's ``fromarray`` of rounded values.
    """
    op = torch.floor if rounding == "floor" else torch.round
    return op(x.clamp(0, 1) * 255) / 255


# ---------------------------------------------------------------------------
# filtering


def border_index(n: int, pad: int, mode: str) -> Tensor:
    """Source indices of a length-``n`` axis padded by ``pad`` each side, scipy.ndimage modes.

    ``nearest`` repeats the edge, ``reflect`` is half-sample symmetric (d c b a | a b c d),
    ``mirror`` is whole-sample (d c b | a b c d, OpenCV's BORDER_REFLECT_101).
    """
    i = np.arange(-pad, n + pad)
    if mode == "nearest":
        j = np.clip(i, 0, n - 1)
    elif mode == "reflect":
        j = np.mod(i, 2 * n)
        j = np.where(j >= n, 2 * n - 1 - j, j)
    elif mode == "mirror":
        period = max(2 * n - 2, 1)
        j = np.mod(i, period)
        j = np.where(j >= n, period - j, j)
    else:  # pragma: no cover - internal misuse
        raise ValueError(mode)
    return torch.from_numpy(j.astype(np.int64))


def pad(x: Tensor, ph: int, pw: int, mode: str) -> Tensor:
    """Pad ``x: (N, C, H, W)`` by (ph, pw) with a scipy.ndimage border mode or zeros."""
    if mode == "constant":
        return F.pad(x, (pw, pw, ph, ph))
    fast = {"nearest": "replicate", "mirror": "reflect"}.get(mode)
    if fast is not None and ph < x.shape[2] and pw < x.shape[3]:
        return F.pad(x, (pw, pw, ph, ph), mode=fast)
    # index_select, unlike F.pad, handles pads wider than the image (sigma 6.4 on 32 px).
    x = x.index_select(2, border_index(x.shape[2], ph, mode).to(x.device))
    return x.index_select(3, border_index(x.shape[3], pw, mode).to(x.device))


def conv_same(x: Tensor, kernel: Tensor, mode: str) -> Tensor:
    """Correlate every channel of ``x: (N, C, H, W)`` with a small ``kernel: (kh, kw)``, same size.

    A sum of shifted copies, one per non-zero tap (the disks here have at most 25).
    """
    h, w = x.shape[-2:]
    kh, kw = kernel.shape
    xp = pad(x, kh // 2, kw // 2, mode)
    out = torch.zeros_like(x)
    taps = kernel.to(x.device)
    for i, j in torch.nonzero(kernel.cpu()).tolist():
        out += taps[i, j] * xp[..., i : i + h, j : j + w]
    return out


def gauss_taps(sigma: float, truncate: float) -> Tensor:
    """scipy.ndimage's 1-D Gaussian: radius ``int(truncate * sigma + 0.5)``, sums to 1."""
    radius = int(truncate * sigma + 0.5)
    if sigma <= 0 or radius == 0:
        return torch.ones(1)
    t = torch.arange(-radius, radius + 1, dtype=torch.float64)
    k = torch.exp(-0.5 * (t / sigma) ** 2)
    return (k / k.sum()).float()


def filter_matrix(n: int, taps: Tensor, mode: str) -> Tensor:
    """Correlation with ``taps`` along an axis of length ``n``, border folded in: (n, n).

    Multiplying by this matrix is the same as padding with ``mode`` and correlating; on 28-32
    pixel axes two small matmuls beat conv2d on one-channel images by a wide margin.
    """
    r = taps.numel() // 2
    src = border_index(n, r, mode)  # padded position -> source index
    m = torch.zeros(n, n, dtype=torch.float64)
    for k in range(taps.numel()):
        m.index_put_((torch.arange(n), src[k : k + n]), taps[k].double().expand(n), accumulate=True)
    return m.float()


def gaussian(
    x: Tensor,
    sigma: float,
    *,
    truncate: float = 4.0,
    mode: str = "nearest",
    rows_only: bool = False,
) -> Tensor:
    """``skimage.filters.gaussian`` over H and W of ``x: (N, C, H, W)`` (separable, as matmuls).

    ``rows_only`` filters along H alone: what skimage < 0.19 did to a 2-D grayscale image
    passed with ``multichannel=True`` (it took the columns for channels), as MNIST-C does.
    """
    k = gauss_taps(sigma, truncate)
    if k.numel() == 1:
        return x.clone()
    h, w = x.shape[-2:]
    out = filter_matrix(h, k, mode).to(x.device) @ x
    return out if rows_only else out @ filter_matrix(w, k, mode).to(x.device).T


# ---------------------------------------------------------------------------
# resampling


def pixel_grid(h: int, w: int, device: torch.device | None = None) -> Tensor:
    """Pixel-centre coordinates (x=column, y=row) of an h x w image: (H, W, 2), on ``device``."""
    ys, xs = torch.meshgrid(
        torch.arange(h, dtype=torch.float32, device=device),
        torch.arange(w, dtype=torch.float32, device=device),
        indexing="ij",
    )
    return torch.stack([xs, ys], dim=-1)


def sample(x: Tensor, src: Tensor, padding: str, *, align_corners: bool = False) -> Tensor:
    """Bilinear ``x: (N, C, H, W)`` at pixel coordinates ``src: (N, H, W, 2)`` (x, y).

    ``align_corners=False`` with ``reflection`` is scipy's ``reflect`` border; ``True`` with
    ``reflection`` is OpenCV's BORDER_REFLECT_101; ``zeros`` is skimage's constant 0.
    """
    h, w = x.shape[-2:]
    size = torch.tensor([w, h], dtype=src.dtype, device=src.device)
    # pixel centres sit on the grid's +-1 ends (align_corners) or half a pixel inside them
    grid = 2 * src / (size - 1).clamp(min=1) - 1 if align_corners else (2 * src + 1) / size - 1
    return F.grid_sample(
        x, grid, mode="bilinear", padding_mode=padding, align_corners=align_corners
    )


def legacy_scipy_reflect(c: Tensor, n: int) -> Tensor:
    """Where scipy < 1.6 ``map_coordinates(order=1, mode='reflect')`` reads coordinate ``c``.

    It reflected the coordinate half-sample (-c - 1) and then the interpolation taps
    whole-sample, so within one pixel outside the image it read the wrong side: c in (-1, 0)
    reads 1 + c, c in (n - 1, n) reads 2(n - 1) - c (measured against scipy 1.2.3; scipy 1.6
    fixed it to read the edge pixel). Further out it is the plain half-sample reflection.
    """
    low = (c + 1).abs()
    high = torch.where(c < n, 2 * (n - 1) - c, 2 * n - 1 - c)
    out = torch.where(c < 0, low, torch.where(c > n - 1, high, c))
    return out.clamp(0, n - 1)


def linear_about_centre(x: Tensor, mats: Tensor, shift: Tensor | None = None) -> Tensor:
    """skimage ``warp(x, inverse_map=A)`` about the image centre: out(p) = x(A (p - c) + c + t).

    x: (N, C, H, W); mats: (N, 2, 2) acting on (x, y); shift: (N, 2) or None. Zero fill, as
    skimage's default ``mode='constant'``.
    """
    n, _, h, w = x.shape
    c = torch.tensor([(w - 1) / 2, (h - 1) / 2], device=x.device)
    p = pixel_grid(h, w, x.device).reshape(1, -1, 2) - c
    src = torch.einsum("nij,npj->npi", mats, p.expand(n, -1, -1)) + c
    if shift is not None:
        src = src + shift[:, None, :]
    return sample(x, src.reshape(n, h, w, 2), "zeros")


def clipped_zoom_coords(n: int, z: float) -> Tensor:
    """Source coordinate of each output pixel of the references' ``clipped_zoom``: (n,).

    They crop ``ch = ceil(n / z)`` pixels from ``top = (n - ch) // 2``, zoom the crop with
    ``scipy.ndimage.zoom(order=1)`` to ``round(ch * z)`` pixels (corner-aligned: output j reads
    input ``j (ch - 1) / (out - 1)``), then trim ``(out - n) // 2`` from the top. The zoom is
    therefore not exactly centred; reproducing the mapping keeps it identical.
    """
    ch = math.ceil(n / z)
    top = (n - ch) // 2
    out = round(ch * z)
    trim = (out - n) // 2
    j = torch.arange(n, dtype=torch.float64) + trim
    return (top + j * (ch - 1) / max(out - 1, 1)).float()


def clipped_zoom(x: Tensor, z: float) -> Tensor:
    """The references' ``clipped_zoom`` of ``x: (N, C, H, W)`` by ``z`` >= 1, bilinear."""
    n, _, h, w = x.shape
    # CIFAR-C crops both axes with the height, as it only ever sees square images
    rows = clipped_zoom_coords(h, z).to(x.device)
    cols = clipped_zoom_coords(h, z)[:w] if w <= h else clipped_zoom_coords(w, z)
    cols = cols.to(x.device)
    ys, xs = torch.meshgrid(rows, cols, indexing="ij")
    src = torch.stack([xs, ys], dim=-1).expand(n, h, w, 2)
    return sample(x, src, "border", align_corners=True)


def motion_streak(x: Tensor, radius: int, sigma: float, angles_deg: Tensor) -> Tensor:
    """ImageMagick's MotionBlurImage on ``x: (N, C, H, W)`` with one angle per image: (N,).

    Kernel: ``2 * radius + 1`` taps weighted exp(-i^2 / 2 sigma^2), i >= 0 (a one-sided streak),
    tap i read at offset (ceil(i cos a - 0.5), ceil(i sin a - 0.5)), edge pixels replicated
    (ImageMagick's default virtual-pixel method). One gather per tap, not per image. Checked
    against ImageMagick 6.9.11 (Q16) through Wand: its 8-bit output is the floor of this.
    """
    n, c, h, w = x.shape
    width = 2 * radius + 1
    i = torch.arange(width, dtype=torch.float64)
    weights = torch.exp(-(i**2) / (2 * sigma**2))
    weights = (weights / weights.sum()).float().to(x.device)
    # the offsets per tap and image are small: computed on the CPU in float64, then moved
    rad = torch.deg2rad(angles_deg.detach().to("cpu", torch.float64))
    rows = torch.arange(h, device=x.device).view(1, h, 1)
    cols = torch.arange(w, device=x.device).view(1, 1, w)
    flat = x.reshape(n, c, h * w)
    out = torch.zeros_like(flat)
    for k in range(width):
        dx = torch.ceil(k * torch.cos(rad) - 0.5).long().view(n, 1, 1).to(x.device)
        dy = torch.ceil(k * torch.sin(rad) - 0.5).long().view(n, 1, 1).to(x.device)
        idx = (rows + dy).clamp(0, h - 1) * w + (cols + dx).clamp(0, w - 1)
        out += weights[k] * flat.gather(2, idx.reshape(n, 1, h * w).expand(n, c, h * w))
    return out.reshape(n, c, h, w)
