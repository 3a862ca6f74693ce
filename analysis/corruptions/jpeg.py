"""JPEG compression as CIFAR-10-C ran it: PIL ``save(format='JPEG', quality=q)`` and reload, with
the IJG libjpeg 9 that Pillow's wheels then bundled (Pillow 6.2.2 carries 9.3), batched on tensors.

libjpeg 9 differs from the libjpeg-turbo in today's Pillow and torchvision where it matters at
32 x 32: it subsamples chroma (4:2:0) in the DCT domain (a 16-point DCT of full-resolution
chroma keeps its 8 lowest frequencies, ``do_fancy_downsampling``) and upsamples it the same
way on decoding (a 16-point inverse DCT), where libjpeg-turbo averages 2 x 2 pixels and
interpolates. On the reference images turbo changes pixels ~10% less (mean |change| 5.24 vs
5.80 grey levels at quality 80). Here: libjpeg's integer colour conversions, the standard
quantisation tables scaled by ``jpeg_set_quality`` (baseline), quantisation rounding half away
from zero, and float DCTs in place of libjpeg's integer ones. Checked against Pillow
6.2.2 / libjpeg 9.3 on the reference images: the same mean |change| (5.80 at quality 80, 8.83 at
40); the integer DCTs round some coefficients the other way, so 16% of pixels differ by a grey
level or more (mean |difference| 0.26).
"""

from __future__ import annotations

import functools
import math

import torch
import torch.nn.functional as F

from analysis.corruptions.ops import Tensor

_LUMA = (
    (16, 11, 10, 16, 24, 40, 51, 61),
    (12, 12, 14, 19, 26, 58, 60, 55),
    (14, 13, 16, 24, 40, 57, 69, 56),
    (14, 17, 22, 29, 51, 87, 80, 62),
    (18, 22, 37, 56, 68, 109, 103, 77),
    (24, 35, 55, 64, 81, 104, 113, 92),
    (49, 64, 78, 87, 103, 121, 120, 101),
    (72, 92, 95, 98, 112, 100, 103, 99),
)
_CHROMA = (
    (17, 18, 24, 47, 99, 99, 99, 99),
    (18, 21, 26, 66, 99, 99, 99, 99),
    (24, 26, 56, 99, 99, 99, 99, 99),
    (47, 66, 99, 99, 99, 99, 99, 99),
) + ((99,) * 8,) * 4


def _fix(v: float) -> int:
    """libjpeg's FIX(): a constant in 16-bit fixed point."""
    return int(v * 65536 + 0.5)


@functools.cache
def quant_table(quality: int, chroma: bool) -> Tensor:
    """``jpeg_set_quality(quality, force_baseline=TRUE)`` applied to a standard table: (8, 8)."""
    q = min(max(quality, 1), 100)
    scale = 5000 // q if q < 50 else 200 - 2 * q
    base = torch.tensor(_CHROMA if chroma else _LUMA, dtype=torch.float64)
    return torch.floor((base * scale + 50) / 100).clamp(1, 255).float()


@functools.cache
def dct_matrix(n: int) -> Tensor:
    """Orthonormal DCT-II of length ``n`` (JPEG's 8-point DCT for n = 8): (n, n)."""
    k = torch.arange(n, dtype=torch.float64)[:, None]
    i = torch.arange(n, dtype=torch.float64)[None, :]
    m = torch.cos(math.pi * (2 * i + 1) * k / (2 * n)) * math.sqrt(2 / n)
    m[0] /= math.sqrt(2)
    return m


@functools.cache
def dct_2d(size: int) -> Tensor:
    """The 8 x 8 lowest frequencies of a ``size`` x ``size`` 2-D DCT as one matrix: (size^2, 64).

    A flattened block times this matrix gives its coefficients (row-major); one matrix product
    then codes every block of the batch.
    """
    a = dct_matrix(size)[:8]  # (8, size)
    return torch.kron(a, a).T.float()


def _blocks(p: Tensor, size: int) -> Tensor:
    """(N, H, W) -> (N * H/size * W/size, size * size) flattened tiles."""
    n, h, w = p.shape
    return p.reshape(n, h // size, size, w // size, size).transpose(2, 3).reshape(-1, size * size)


def _unblocks(b: Tensor, n: int, h: int, w: int, size: int) -> Tensor:
    """Inverse of :func:`_blocks`: flattened tiles back to (N, H, W)."""
    b = b.reshape(n, h // size, w // size, size, size)
    return b.transpose(2, 3).reshape(n, h, w)


def _round_away(v: Tensor) -> Tensor:
    """Round half away from zero, as libjpeg's quantiser does."""
    return torch.sign(v) * torch.floor(v.abs() + 0.5)


def _code_plane(p: Tensor, quality: int, chroma: bool) -> Tensor:
    """Encode and decode one level-shifted plane ``p: (N, H, W)`` (multiples of 16).

    Luma: 8 x 8 DCT blocks. Chroma: 16 x 16 blocks whose 16-point DCT keeps its 8 x 8 lowest
    frequencies (halved, so they are the 8-point DCT of the 2x2-averaged plane) -- libjpeg 9's
    DCT-domain 4:2:0 subsampling -- and are decoded with a 16-point inverse DCT.
    """
    size = 16 if chroma else 8
    k = dct_2d(size).to(p.device)  # (size^2, 64)
    gain = 0.5 if chroma else 1.0
    coef = _blocks(p, size) @ k * gain
    q = quant_table(quality, chroma).flatten().to(p.device)
    coef = _round_away(coef / q) * q
    return _unblocks(coef / gain @ k.T, *p.shape, size)


# libjpeg 9's colour conversions as 16-bit fixed-point matrices (rows: outputs, columns: R G B
# or Y Cb Cr); every partial sum is an integer below 2^24, exact in float32
_RGB_TO_YCC = torch.tensor(
    [
        [_fix(0.299), _fix(0.587), _fix(0.114)],
        [-_fix(0.168735892), -_fix(0.331264108), _fix(0.5)],
        [_fix(0.5), -_fix(0.418687589), -_fix(0.081312411)],
    ],
    dtype=torch.float32,
)
_YCC_OFFSET = torch.tensor([1 << 15, (128 << 16) + (1 << 15) - 1, (128 << 16) + (1 << 15) - 1])


def _rgb_to_ycc(rgb: Tensor) -> Tensor:
    """libjpeg 9's ``rgb_ycc_convert`` on uint8 levels ``rgb: (N, 3, H, W)`` -> Y, Cb, Cr."""
    matrix, offset = _RGB_TO_YCC.to(rgb.device), _YCC_OFFSET.to(rgb.device)
    fixed = torch.einsum("ck,nkhw->nchw", matrix, rgb) + offset.view(1, 3, 1, 1)
    return torch.floor(fixed / 65536)


def _ycc_to_rgb(ycc: Tensor) -> Tensor:
    """libjpeg 9's ``ycc_rgb_convert`` (its rounded lookup tables) on Y, Cb, Cr levels, clamped."""
    y, cb, cr = ycc[:, 0], ycc[:, 1] - 128, ycc[:, 2] - 128
    half = 1 << 15
    r = y + torch.floor((_fix(1.402) * cr + half) / 65536)
    b = y + torch.floor((_fix(1.772) * cb + half) / 65536)
    g = y + torch.floor((-_fix(0.344136286) * cb - _fix(0.714136286) * cr + half) / 65536)
    return torch.stack([r, g, b], 1).clamp(0, 255)


def jpeg_compression(x: Tensor, quality: int, g: torch.Generator) -> Tensor:
    """JPEG at ``quality`` and back, as PIL with libjpeg 9 does: ``x: (N, C, H, W)``, C in {1, 3}.

    Colour images are coded as YCbCr 4:2:0, grayscale as one luma plane; sizes that are not a
    multiple of 16 are padded by repeating the last row and column, as libjpeg does. Computed
    in float32 (integer steps exact, DCTs to ~1e-4 of a quantisation step).
    """
    n, ch, h, w = x.shape
    u8 = torch.round(x.clamp(0, 1) * 255)
    planes = _rgb_to_ycc(u8) if ch == 3 else u8
    planes = F.pad(planes, (0, -w % 16, 0, -h % 16), mode="replicate") - 128
    coded = torch.stack([_code_plane(planes[:, k], quality, chroma=k > 0) for k in range(ch)], 1)
    coded = torch.floor(coded + 128.5).clamp(0, 255)[..., :h, :w]
    out = _ycc_to_rgb(coded) if ch == 3 else coded
    return out / 255
