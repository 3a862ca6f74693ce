"""CIFAR-10-C and CIFAR-100-C (Hendrycks & Dietterich, ICLR 2019, hendrycks/robustness
``ImageNet-C/create_c/make_cifar_c.py``): 15 corruptions of 32x32 colour images at the five
CIFAR severities, verbatim (not the ImageNet parameters of ``imagecorruptions``).

One table serves both: the authors made CIFAR-100-C with the same script and parameters as
CIFAR-10-C, run on CIFAR-100's test images (:data:`BENCHMARKS`); the corruptions do not
depend on the labels.

Two of the table's rungs barely differ: motion blur s3 (radius 6, sigma 2) and s4 (8, 2) are the
same kernel (the extra taps weigh < 2e-8), and frost s3 (0.9, 0.4) and s4 (0.85, 0.4) differ by
~4% in damage.
"""

from __future__ import annotations

import functools

import numpy as np
import torch

from analysis.corruptions import common
from analysis.corruptions.jpeg import jpeg_compression
from analysis.corruptions.ops import (
    Corruption,
    Tensor,
    clipped_zoom,
    conv_same,
    gaussian,
    legacy_scipy_reflect,
    motion_streak,
    pixel_grid,
    randint,
    randn,
    sample,
    to_uint8_levels,
    uniform,
)

# ---------------------------------------------------------------------------
# blur


def _disk_kernel(radius: float, alias_blur: float) -> Tensor:
    """The reference's ``disk``: an aliased disk on a 17 x 17 grid, Gaussian-blurred 3 x 3.

    Cropped to its support (taps under 1e-8 of the peak dropped). Radii here are <= 8, the case
    where the grid is fixed at 17 x 17 and the blur at 3 x 3.
    """
    t = np.arange(-8, 9)
    xx, yy = np.meshgrid(t, t)
    disk = ((xx**2 + yy**2) <= radius**2).astype(np.float64)
    disk /= disk.sum()
    # OpenCV's getGaussianKernel(3, sigma) for sigma > 0: exp(-i^2 / 2 sigma^2), i in -1..1
    g1 = np.exp(-(np.arange(-1, 2) ** 2) / (2 * alias_blur**2))
    g1 /= g1.sum()
    padded = np.pad(disk, 1)
    out = sum(g1[i] * g1[j] * padded[i : i + 17, j : j + 17] for i in range(3) for j in range(3))
    # drop taps the sigma-0.1 anti-alias blur leaves at ~e^-50: same output to 1e-7, fewer passes
    out[out < 1e-8 * out.max()] = 0
    rows = np.flatnonzero(out.any(axis=1))
    cols = np.flatnonzero(out.any(axis=0))
    return torch.from_numpy(out[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]).float()


def defocus_blur(x: Tensor, c: tuple[float, float], g: torch.Generator) -> Tensor:
    """Convolve with an anti-aliased disk; c = (radius, alias_blur), OpenCV's reflect-101 border."""
    return conv_same(x, _disk_kernel(*c), "mirror")


def zoom_blur(x: Tensor, zooms: tuple[float, ...], g: torch.Generator) -> Tensor:
    """Average of the image and its clipped zooms by each factor in ``zooms``."""
    out = x.clone()
    for z in zooms:
        out += clipped_zoom(x, z)
    return out / (len(zooms) + 1)


# CIFAR-C's glass blur visits every pixel and copies rather than swaps (see local_shuffle)
glass_blur = functools.partial(common.glass_blur, p_visit=1.0, swap=False, rows_only=False)

# ---------------------------------------------------------------------------
# weather


def snow(x: Tensor, c: tuple[float, ...], g: torch.Generator) -> Tensor:
    """CIFAR-C snow: thresholded zoomed noise, motion-blurred, added twice; the scene whitened.

    c = (loc, scale, zoom, threshold, blur radius, blur sigma, blend). The snow layer is
    quantised to uint8 as the reference's PNG round trips do: truncated before ImageMagick's
    blur (``astype(np.uint8)``) and after it (ImageMagick's 8-bit output).
    """
    loc, scale, zoom, thr, radius, sigma, blend = c
    n, _, h, w = x.shape
    layer = loc + scale * randn(g, (n, 1, h, w), x.device)
    layer = clipped_zoom(layer, zoom) if zoom != 1 else layer
    layer = torch.where(layer < thr, torch.zeros_like(layer), layer)
    layer = to_uint8_levels(layer, "floor")
    angles = uniform(g, (n,), -135.0, -45.0)  # on the CPU: motion_streak's offsets
    layer = to_uint8_levels(motion_streak(layer, int(radius), sigma, angles), "floor")
    # OpenCV's RGB2GRAY weights; whiten the scene before the flakes land on it
    weights = torch.tensor([0.299, 0.587, 0.114], device=x.device)
    gray = (x * weights.view(1, 3, 1, 1)).sum(1, keepdim=True)
    x = blend * x + (1 - blend) * torch.maximum(x, gray * 1.5 + 0.5)
    return x + layer + torch.flip(layer, dims=(2, 3))


# The five frost photos CIFAR-C draws from (``randint(5)``: frost6 is never used), as 32 x 32
# crops of the photos resized by 0.2 (cv2 INTER_LINEAR): mean R, G, B; within-crop standard
# deviation; and the texture's weights on white noise, a sigma-1.5 and a sigma-4 blurred field,
# fitted to the crops' mean |horizontal difference| and lag-8 autocorrelation. Measured once
# on 400 crops per photo; frost2 and frost3 are near-identical photos.
FROST_PHOTOS = (
    # (r, g, b), sd, (white, sigma 1.5, sigma 4)
    ((0.308, 0.584, 0.647), 0.062, (0.38, 0.13, 0.49)),
    ((0.779, 0.797, 0.833), 0.071, (0.53, 0.04, 0.43)),
    ((0.778, 0.795, 0.831), 0.071, (0.53, 0.04, 0.43)),
    ((0.564, 0.622, 0.672), 0.103, (0.67, 0.03, 0.30)),
    ((0.397, 0.442, 0.488), 0.132, (0.56, 0.28, 0.16)),
)


def _unit(z: Tensor) -> Tensor:
    """Each image of ``z: (n, 1, h, w)`` shifted and scaled to mean 0, standard deviation 1."""
    z = z - z.mean(dim=(2, 3), keepdim=True)
    return z / z.std(dim=(2, 3), keepdim=True).clamp(min=1e-6)


def frost_texture(
    n: int, h: int, w: int, g: torch.Generator, device: torch.device | None = None
) -> Tensor:
    """Procedural stand-in for a frost-photo crop, one per image: (n, 3, h, w) in [0, 1], on ``device``.

    Deviation from CIFAR-10-C, which blends crops of frost photographs that prunescope does not
    ship: each image draws one of the five photos' statistics (:data:`FROST_PHOTOS`) and gets a
    Gaussian texture with that photo's mean colour, contrast and roughness.
    """
    photo = randint(g, (n,), 0, len(FROST_PHOTOS))
    table = torch.tensor([[*rgb, sd, *mix] for rgb, sd, mix in FROST_PHOTOS])[photo].to(device)
    rgb, sd, mix = table[:, :3, None, None], table[:, 3, None, None, None], table[:, 4:]
    fields = [
        _unit(randn(g, (n, 1, h, w), device)),
        _unit(gaussian(randn(g, (n, 1, h, w), device), 1.5)),
        _unit(gaussian(randn(g, (n, 1, h, w), device), 4.0)),
    ]
    tex = sum(mix[:, k, None, None, None].sqrt() * f for k, f in enumerate(fields))
    return (rgb + sd * tex).clamp(0, 1)


def frost(x: Tensor, c: tuple[float, float], g: torch.Generator) -> Tensor:
    """c[0] * x + c[1] * frost, with the procedural frost of :func:`frost_texture`."""
    n, _, h, w = x.shape
    return c[0] * x + c[1] * frost_texture(n, h, w, g, x.device)


# ---------------------------------------------------------------------------
# digital


def contrast(x: Tensor, factor: float, g: torch.Generator) -> Tensor:
    """Scale each channel's deviation from its own spatial mean by ``factor``."""
    mean = x.mean(dim=(2, 3), keepdim=True)
    return (x - mean) * factor + mean


def _random_affine(x: Tensor, rng_px: float, g: torch.Generator) -> Tensor:
    """``cv2.warpAffine`` of ``x: (N, C, H, W)`` by the affine moving three points U(-rng, rng).

    The points sit around the centre at +-size//3; OpenCV's bilinear warp reads source
    coordinates rounded to 1/32 pixel (INTER_BITS = 5) with the reflect-101 border. The
    coordinates are computed on the CPU in float64 (MPS has none), the warp on ``x``'s device.
    """
    n, _, h, w = x.shape
    centre = torch.tensor([float(w // 2), float(h // 2)])
    sq = min(h, w) // 3
    pts1 = torch.stack([centre + sq, centre + torch.tensor([sq, -sq]), centre - sq])  # (3, 2)
    pts2 = pts1 + uniform(g, (n, 3, 2), -rng_px, rng_px)
    # M (2x3) with M [p; 1] = q for the three pairs: solve [pts1 1] M^T = pts2
    ph = torch.cat([pts1, torch.ones(3, 1)], dim=1).double()
    mt = torch.linalg.solve(ph.expand(n, 3, 3), pts2.double())  # (n, 3, 2)
    a, t = mt[:, :2, :].transpose(1, 2), mt[:, 2, :]  # dst = a @ src + t
    p = pixel_grid(h, w).reshape(1, -1, 2).double()
    src = torch.einsum("nij,npj->npi", torch.linalg.inv(a), p - t[:, None, :])
    src = (torch.round(src * 32) / 32).float().to(x.device)
    return sample(x, src.reshape(n, h, w, 2), "reflection", align_corners=True)


def elastic_transform(x: Tensor, c: tuple[float, float, float], g: torch.Generator) -> Tensor:
    """CIFAR-C elastic: random affine, then a smooth random displacement field.

    c = (alpha, sigma, affine_range) in pixels. The field is U(-1, 1) noise Gaussian-filtered
    (sigma, truncate 3, reflect) times alpha, read with ``map_coordinates(order=1,
    mode='reflect')`` as the scipy of 2018 did it (:func:`~.ops.legacy_scipy_reflect`) --
    two resamplings, as the reference does.
    """
    alpha, sigma, rng_px = c
    n, _, h, w = x.shape
    x = _random_affine(x, rng_px, g)
    noise = uniform(g, (n, 2, h, w), -1.0, 1.0, x.device)
    disp = gaussian(noise, sigma, truncate=3.0, mode="reflect") * alpha  # (n, 2, h, w): dx, dy
    src = pixel_grid(h, w, x.device) + disp.permute(0, 2, 3, 1)
    src = torch.stack([legacy_scipy_reflect(src[..., 0], w), legacy_scipy_reflect(src[..., 1], h)])
    return sample(x, src.permute(1, 2, 3, 0), "border", align_corners=True)


@functools.cache
def _pil_box(n_in: int, n_out: int) -> tuple[Tensor, Tensor]:
    """PIL's 8-bit ``Image.BOX`` resampling of one axis: (taps (n_out, n_in), weight (n_out,)).

    PIL samples the box at input pixel centres (no partial coverage) and normalises each
    output's equal weights to an integer scaled by 2^22 (``normalize_coeffs_8bpc``): an output
    is (weight * sum of its taps' values + 2^21) >> 22.
    """
    scale = n_in / n_out
    support = 0.5 * max(scale, 1.0)
    centre = (np.arange(n_out) + 0.5) * scale
    t = (np.arange(n_in)[None, :] + 0.5 - centre[:, None]) / max(scale, 1.0)
    taps = (t > -0.5) & (t <= 0.5)
    # PIL's window also stops at int(centre +- support + 0.5); the box never reaches past it
    lo = np.maximum((centre - support + 0.5).astype(int), 0)
    hi = np.minimum((centre + support + 0.5).astype(int), n_in)
    idx = np.arange(n_in)[None, :]
    taps &= (idx >= lo[:, None]) & (idx < hi[:, None])
    weight = np.floor(0.5 + (1 << 22) / taps.sum(axis=1))
    return torch.from_numpy(taps).float(), torch.from_numpy(weight).to(torch.int32)


def _pil_resize_rows(x: Tensor, n_out: int) -> Tensor:
    """One PIL 8-bit BOX pass along the last axis of uint8 levels ``x: (..., n_in)``.

    The sums of uint8 values are exact in float32 and the fixed-point products fit int32, so
    the result is PIL's to the grey level; one matrix product for the whole batch.
    """
    taps, weight = (t.to(x.device) for t in _pil_box(x.shape[-1], n_out))
    sums = (x.reshape(-1, x.shape[-1]) @ taps.T).to(torch.int32)
    out = ((sums * weight + (1 << 21)) >> 22).clamp(0, 255)
    return out.reshape(*x.shape[:-1], n_out).float()


def pixelate(x: Tensor, factor: float, g: torch.Generator) -> Tensor:
    """PIL BOX-resize down to ``int(size * factor)`` and back, PIL's 8-bit arithmetic kept.

    Each resize runs PIL's two passes (horizontal, then vertical) on uint8 values with its
    fixed-point weights and rounding, so the result equals Pillow's to the grey level.
    """
    h, w = x.shape[-2:]
    dh, dw = int(h * factor), int(w * factor)
    y = torch.round(x.clamp(0, 1) * 255)
    for ow, oh in ((dw, dh), (w, h)):
        y = _pil_resize_rows(y, ow)  # horizontal pass, then vertical
        y = _pil_resize_rows(y.transpose(-1, -2), oh).transpose(-1, -2)
    return y / 255


# ---------------------------------------------------------------------------
# severity table: corruption -> (function, parameters at severities 1..5)


def _zooms(stop: float, step: float) -> tuple[float, ...]:
    """``np.arange(1, stop, step)`` as CIFAR-C writes it (float steps can include ~stop)."""
    return tuple(float(z) for z in np.arange(1, stop, step))


#: The benchmark this table makes of each colour dataset's test images.
BENCHMARKS = {"cifar10": "CIFAR-10-C", "cifar100": "CIFAR-100-C"}


TABLE: dict[str, Corruption] = {
    "gaussian_noise": (common.gaussian_noise, (0.04, 0.06, 0.08, 0.09, 0.10)),
    "shot_noise": (common.shot_noise, (500, 250, 100, 75, 50)),
    "impulse_noise": (common.impulse_noise, (0.01, 0.02, 0.03, 0.05, 0.07)),
    "defocus_blur": (defocus_blur, ((0.3, 0.4), (0.4, 0.5), (0.5, 0.6), (1, 0.2), (1.5, 0.1))),
    "glass_blur": (
        glass_blur,
        ((0.05, 1, 1), (0.25, 1, 1), (0.4, 1, 1), (0.25, 1, 2), (0.4, 1, 2)),
    ),
    "motion_blur": (common.motion_blur, ((6, 1), (6, 1.5), (6, 2), (8, 2), (9, 2.5))),
    "zoom_blur": (
        zoom_blur,
        tuple(_zooms(stop, 0.01) for stop in (1.06, 1.11, 1.16, 1.21, 1.26)),
    ),
    "snow": (
        snow,
        (
            (0.1, 0.2, 1, 0.6, 8, 3, 0.95),
            (0.1, 0.2, 1, 0.5, 10, 4, 0.9),
            (0.15, 0.3, 1.75, 0.55, 10, 4, 0.9),
            (0.25, 0.3, 2.25, 0.6, 12, 6, 0.85),
            (0.3, 0.3, 1.25, 0.65, 14, 12, 0.8),
        ),
    ),
    "frost": (frost, ((1, 0.2), (1, 0.3), (0.9, 0.4), (0.85, 0.4), (0.75, 0.45))),
    "fog": (
        common.fog,
        ((0.2, 3, 32), (0.5, 3, 32), (0.75, 2.5, 32), (1, 2, 32), (1.5, 1.75, 32)),
    ),
    "brightness": (common.brightness, (0.05, 0.1, 0.15, 0.2, 0.3)),
    "contrast": (contrast, (0.75, 0.5, 0.4, 0.3, 0.15)),
    "elastic_transform": (
        elastic_transform,
        tuple(
            (32 * a, 32 * s, 32 * r)
            for a, s, r in (
                (0, 0, 0.08),
                (0.05, 0.2, 0.07),
                (0.08, 0.06, 0.06),
                (0.1, 0.04, 0.05),
                (0.1, 0.03, 0.03),
            )
        ),
    ),
    "pixelate": (pixelate, (0.95, 0.9, 0.85, 0.75, 0.65)),
    "jpeg_compression": (jpeg_compression, (80, 65, 58, 50, 40)),
}
