"""MNIST-C (Mu & Gilmer 2019, google-research/mnist-c ``corruptions.py``): 15 corruptions of 28x28
grayscale digits, and the severity ladder prunescope builds around MNIST-C's single setting.

Severity 3 is exactly MNIST-C's setting (each function's default severity); 1, 2, 4, 5 come from
the neighbouring rungs of the (unused) five-rung ladder in the same file where it has one and are
extrapolated past its ends otherwise::

    name           parameter                      s1         s2         s3 (MNIST-C)  s4          s5
    shot_noise     Poisson photons per unit       12         5          3             2           1.5
    impulse_noise  salt-and-pepper fraction       .06        .09        .17           .27         .40
    glass_blur     (sigma, max shift, passes)     (.5,1,1)   (.7,1,1)   (.7,1,2)      (.9,2,1)    (1,2,3)
    motion_blur    (radius, sigma) pixels         (6,1)      (8,2)      (10,3)        (15,5)      (15,8)
    shear          shear angle (rad, random sign) .1         .2         .4            .6          .8
    scale          shrink factor                  .9         .8         .7            .6          .5
    rotate         angle (rad, random sign)       .1         .2         .4            .6          .8
    brightness     added to V of HSV              .3         .4         .5            .6          .7
    translate      pixels in x and in y           1          2          3             4           5
    stripe         inverted columns at each side  3          5          7             9           11
    fog            (strength, wibble decay)       (2,2)      (2.5,1.7)  (3,1.4)       (3.5,1.4)   (4,1.4)
    spatter        mud coverage (see SPATTER)     ~5%        ~10%       ~14%          ~20%        ~31%
    dotted_line    (lines, columns spanned)       (1,14)     (1,20)     (1,28)        (2,28)      (3,28)
    zigzag         (zigzags, columns spanned)     (1,11)     (1,15)     (1,23)        (2,23)      (3,23)
    canny_edges    (edge weight, canny sigma)     (.4,1)     (.7,1)     (1,1)         (1,1.5)     (1,2)

``fog`` skips MNIST-C's rung (2.5, 1.5), as strong as (2.5, 1.7), and keeps decay >= 1.4 (see
:func:`~.common.plasma_fractal`). ``canny_edges`` below MNIST-C blends edges into the digit, above
it takes edges of a smoother image (less detail). stripe, dotted_line, zigzag and canny_edges
are fixed in MNIST-C, so only their s3 has a reference.
"""

from __future__ import annotations

import functools

import numpy as np
import torch
from skimage import feature

from analysis.corruptions import common
from analysis.corruptions.ops import (
    Corruption,
    Tensor,
    gaussian,
    linear_about_centre,
    randint,
    randn,
    random_sign,
)

# ---------------------------------------------------------------------------
# geometry (skimage ``warp`` with an ``AffineTransform`` as the inverse map, about (13.5, 13.5))


def shear(x: Tensor, angle: float, g: torch.Generator) -> Tensor:
    """Shear about the centre, random sign per image.

    MNIST-C's skimage (0.15) built ``AffineTransform(shear=s)`` as [[1, -sin s], [0, cos s]]
    and used it as the inverse map; that matrix is kept (skimage >= 0.22 changed the meaning).
    """
    s = angle * random_sign(g, x.shape[0], x.device)
    zeros, ones = torch.zeros_like(s), torch.ones_like(s)
    mats = torch.stack(
        [torch.stack([ones, -torch.sin(s)], -1), torch.stack([zeros, torch.cos(s)], -1)], 1
    )
    return linear_about_centre(x, mats)


def rotate(x: Tensor, angle: float, g: torch.Generator) -> Tensor:
    """Rotate about the centre by ``angle`` radians, random sign per image."""
    r = angle * random_sign(g, x.shape[0], x.device)
    cos, sin = torch.cos(r), torch.sin(r)
    mats = torch.stack([torch.stack([cos, -sin], -1), torch.stack([sin, cos], -1)], 1)
    return linear_about_centre(x, mats)


def scale(x: Tensor, factor: float, g: torch.Generator) -> Tensor:
    """Shrink about the centre by ``factor`` (MNIST-C's inverse map scales by 1 / factor)."""
    mats = torch.eye(2, device=x.device).expand(x.shape[0], 2, 2) / factor
    return linear_about_centre(x, mats)


def translate(x: Tensor, px: int, g: torch.Generator) -> Tensor:
    """Shift by ``px`` pixels along x and along y, each with a random sign, zero fill."""
    n = x.shape[0]
    shift = px * torch.stack([random_sign(g, n, x.device), random_sign(g, n, x.device)], dim=1)
    return linear_about_centre(x, torch.eye(2, device=x.device).expand(n, 2, 2), shift)


# ---------------------------------------------------------------------------
# strokes


def stripe(x: Tensor, width: int, g: torch.Generator) -> Tensor:
    """Invert ``width`` columns at the left and at the right edge (MNIST-C: 7 of 28 each)."""
    w = x.shape[-1]
    cols = torch.arange(w, device=x.device)
    band = (cols < width) | (cols >= w - width)
    return torch.where(band, 1 - x, x)


def line_profile(seg: Tensor, h: int, w: int) -> Tensor:
    """MNIST-C's ``line_from_points`` for a batch of segments: seg (..., 4) -> (..., H, W).

    seg holds (c0, r0, c1, r1). Intensity log(1 - d / 2.3) + 1 clipped to [0, 1], d the
    *vertical* distance to the line (as MNIST-C defines it), zero outside columns
    [floor(c0), ceil(c1)) and zero for vertical segments (c0 == c1).
    """
    c0, r0, c1, r1 = (seg[..., i, None, None] for i in range(4))
    cc = torch.arange(w, dtype=seg.dtype, device=seg.device).view(1, w)
    rr = torch.arange(h, dtype=seg.dtype, device=seg.device).view(h, 1)
    flat = c1 == c0
    slope = (r1 - r0) / torch.where(flat, torch.ones_like(c1), c1 - c0)
    dist = torch.clamp((rr - (slope * (cc - c0) + r0)).abs(), 0, 2.3 - 1e-10)
    val = torch.clamp(torch.log1p(-dist / 2.3) + 1, 0, 1)
    inside = (cc >= torch.floor(c0)) & (cc < torch.ceil(c1)) & ~flat
    return val * inside


def dotted_line(x: Tensor, c: tuple[int, int], g: torch.Generator) -> Tensor:
    """Add ``lines`` dotted lines spanning ``span`` columns; c = (lines, span).

    MNIST-C draws one line from column 0 to 27 between random rows in [0, 26] and keeps columns
    2-3, 6-7, ... (dashes of 2 on a period of 4). Shorter spans start at a random column.
    """
    lines, span = c
    n, _, h, w = x.shape
    span = min(span, w)
    c0 = randint(g, (n, lines), 0, w - span + 1, x.device).float()
    rows = randint(g, (n, lines, 2), 0, h - 1, x.device).float()
    seg = torch.stack([c0, rows[..., 0], c0 + span - 1, rows[..., 1]], dim=-1)
    dashes = (torch.arange(w, device=x.device) // 2) % 2 == 1
    strokes = (line_profile(seg, h, w) * dashes).sum(dim=1, keepdim=True)
    return x + strokes


def _zigzag_segments(r0: Tensor, r1: Tensor, c0: Tensor, span: int) -> Tensor:
    """Segments of MNIST-C zigzags from (c0, r0) towards (c0 + span, r1): (n, K, 4).

    Along the baseline (rotated by its angle theta, length d) the points are (0, 0), peaks
    ((2i + 1) a, (-1)^i b) for i < (d - a) // 2a + 1 with a = b = 2, and MNIST-C's tail point
    (d, r_last / (2 (d - max_c))), kept as it is. Points past the last repeat it, giving
    zero-width segments that draw nothing. Spans are chosen with span % 4 == 3 and a row drift
    small enough that the tail stays within a pixel of the baseline, as for MNIST-C's span 23.
    """
    a = b = 2.0
    theta = torch.atan((r1 - r0) / span)
    d = span / torch.cos(theta)  # (n,)
    n_peaks = torch.floor((d - a) / (2 * a)) + 1
    max_c = 2 * a * torch.floor(d / (2 * a))
    j = torch.arange(int(n_peaks.max()) + 2, dtype=d.dtype, device=d.device)[None, :]
    peak_c, peak_r = (2 * j - 1) * a, b * (1 - 2 * ((j - 1) % 2))
    last_r = b * (1 - 2 * ((n_peaks - 1) % 2))
    has_tail = d != max_c
    tail_c = torch.where(has_tail, d, (2 * n_peaks - 1) * a)[:, None]
    tail_r = torch.where(has_tail, last_r / (2 * (d - max_c)).clamp(min=1e-6), last_r)[:, None]
    is_peak = (j >= 1) & (j <= n_peaks[:, None])
    cs = torch.where(j == 0, 0.0, torch.where(is_peak, peak_c, tail_c))
    rs = torch.where(j == 0, 0.0, torch.where(is_peak, peak_r, tail_r))
    cos, sin = torch.cos(theta)[:, None], torch.sin(theta)[:, None]
    xs = cos * cs - sin * rs + c0[:, None]
    ys = sin * cs + cos * rs + r0[:, None]
    return torch.stack([xs[:, :-1], ys[:, :-1], xs[:, 1:], ys[:, 1:]], dim=-1)


def zigzag(x: Tensor, c: tuple[int, int], g: torch.Generator) -> Tensor:
    """Add ``count`` zigzag strokes spanning ``span`` columns; c = (count, span).

    MNIST-C: one zigzag from column 2 to 25 (span 23), start row U{0..26}, end row drifting
    U{-5..4}. It clips after each segment; the strokes are >= 0, so one clip at the end is the
    same. Shorter spans start at a random column and drift proportionally less.
    """
    count, span = c
    n, _, h, w = x.shape
    drift = max(1, round(5 * span / 23))
    strokes = torch.zeros((n, 1, h, w), device=x.device)
    for _ in range(count):
        r0 = randint(g, (n,), 0, h - 1, x.device).float()
        r1 = r0 + randint(g, (n,), -drift, drift, x.device).float()
        c0 = randint(g, (n,), 2, max(3, w - 2 - span), x.device).float()
        segs = _zigzag_segments(r0, r1, c0, span)
        strokes += line_profile(segs, h, w).sum(dim=1, keepdim=True)
    return x + strokes


def canny_edges(x: Tensor, c: tuple[float, float], g: torch.Generator) -> Tensor:
    """Replace the digit by its Canny edge map; c = (edge weight, canny sigma).

    MNIST-C: weight 1, sigma 1 (skimage's defaults). Lower weights blend the edges into the
    digit; larger sigmas give coarser outlines with less of the digit's detail.

    ``skimage.feature.canny`` per image: its hysteresis step is a connected-component pass with
    no batched equivalent in torch/torchvision, and MNIST-C used exactly this function (28 x 28
    images take ~0.1 ms each; skimage 0.26 and MNIST-C's 0.15 give the same edges on the
    reference set). Weight w < 1 blends w * edges + (1 - w) * x.
    """
    weight, sigma = c
    imgs = x[:, 0].cpu().numpy()  # skimage: on the CPU, whatever the device
    edges = np.stack([feature.canny(img, sigma=sigma) for img in imgs]).astype(np.float32)
    edges = torch.from_numpy(edges)[:, None].to(x.device)
    return weight * edges + (1 - weight) * x


# ---------------------------------------------------------------------------
# spatter


def spatter(x: Tensor, c: tuple[float, float, float, float, float], g: torch.Generator) -> Tensor:
    """MNIST-C's spatter (always its "mud" branch, grey 63/255); c = (loc, scale, s1, thr, s2).

    Blurred Gaussian noise is thresholded into blobs, the blob mask blurred and kept where it
    is >= 0.8, and the image painted with mud there.
    """
    loc, scale_, s1, thr, s2 = c
    n, _, h, w = x.shape
    liquid = gaussian(loc + scale_ * randn(g, (n, 1, h, w), x.device), s1)
    mask = gaussian((liquid > thr).float(), s2)
    mask = torch.where(mask < 0.8, torch.zeros_like(mask), mask)
    return x * (1 - mask) + (63 / 255) * mask


# ---------------------------------------------------------------------------
# severity table: corruption -> (function, parameters at severities 1..5)

# s1, s2 lower the noise mean / raise the blob threshold: mud covers ~5% and ~10% of an image
# against MNIST-C's ~14% (s4 ~20%, s5 ~31%). MNIST-C's own lower rungs change the blob blur
# instead and are not monotone in coverage (~25%, ~16%), so they are not used.
SPATTER = (
    (0.64, 0.3, 1.0, 0.67, 1.5),
    (0.65, 0.3, 1.0, 0.66, 1.5),
    (0.65, 0.3, 1.0, 0.65, 1.5),  # MNIST-C
    (0.67, 0.4, 1.0, 0.65, 1.5),  # MNIST-C's next rung
    (0.70, 0.45, 1.0, 0.65, 1.5),
)

# MNIST-C's glass blur: each visit swaps with probability 1/2, a real swap (2-D array), and its
# skimage blur of a 2-D image with multichannel=True runs down the rows only
glass_blur = functools.partial(common.glass_blur, p_visit=0.5, swap=True, rows_only=True)

TABLE: dict[str, Corruption] = {
    "shot_noise": (common.shot_noise, (12, 5, 3, 2, 1.5)),
    "impulse_noise": (common.impulse_noise, (0.06, 0.09, 0.17, 0.27, 0.40)),
    "glass_blur": (glass_blur, ((0.5, 1, 1), (0.7, 1, 1), (0.7, 1, 2), (0.9, 2, 1), (1.0, 2, 3))),
    "motion_blur": (common.motion_blur, ((6, 1), (8, 2), (10, 3), (15, 5), (15, 8))),
    "shear": (shear, (0.1, 0.2, 0.4, 0.6, 0.8)),
    "scale": (scale, (0.9, 0.8, 0.7, 0.6, 0.5)),
    "rotate": (rotate, (0.1, 0.2, 0.4, 0.6, 0.8)),
    "brightness": (common.brightness, (0.3, 0.4, 0.5, 0.6, 0.7)),
    "translate": (translate, (1, 2, 3, 4, 5)),
    "stripe": (stripe, (3, 5, 7, 9, 11)),
    "fog": (
        common.fog,
        ((2.0, 2.0, 256), (2.5, 1.7, 256), (3.0, 1.4, 256), (3.5, 1.4, 256), (4.0, 1.4, 256)),
    ),
    "spatter": (spatter, SPATTER),
    "dotted_line": (dotted_line, ((1, 14), (1, 20), (1, 28), (2, 28), (3, 28))),
    "zigzag": (zigzag, ((1, 11), (1, 15), (1, 23), (2, 23), (3, 23))),
    "canny_edges": (canny_edges, ((0.4, 1.0), (0.7, 1.0), (1.0, 1.0), (1.0, 1.5), (1.0, 2.0))),
}
