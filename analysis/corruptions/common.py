"""Corruptions both suites use, each in the form its reference runs it.

Noise, glass blur, motion blur, fog and brightness appear in MNIST-C (google-research/mnist-c
``corruptions.py``) and CIFAR-10-C (hendrycks/robustness ``make_cifar_c.py``) with the same
code; where the two references run that code differently (glass blur's swap, the skimage
blur) the difference is a keyword here and the suite modules pick it.
"""

from __future__ import annotations

import functools

import torch

from analysis.corruptions.ops import (
    Tensor,
    gaussian,
    motion_streak,
    rand,
    randint,
    randn,
    to_uint8_levels,
    uniform,
)

# ---------------------------------------------------------------------------
# noise


def gaussian_noise(x: Tensor, sigma: float, g: torch.Generator) -> Tensor:
    """Additive N(0, sigma^2) per pixel and channel."""
    return x + sigma * randn(g, x.shape, x.device)


def shot_noise(x: Tensor, photons: float, g: torch.Generator) -> Tensor:
    """Poisson(x * photons) / photons per pixel and channel (drawn on the CPU, then moved)."""
    return torch.poisson((x * photons).cpu(), generator=g).to(x.device) / photons


def impulse_noise(x: Tensor, amount: float, g: torch.Generator) -> Tensor:
    """skimage ``random_noise(mode='s&p')``: a fraction ``amount`` of values set to 0 or 1 (50/50).

    skimage 0.14 and 0.15, as the references ran it, draw each value's hit independently.
    """
    hit = rand(g, x.shape, x.device) < amount
    salt = (rand(g, x.shape, x.device) < 0.5).to(x.dtype)
    return torch.where(hit, salt, x)


# ---------------------------------------------------------------------------
# glass blur


@functools.cache
def _wavefronts(
    h: int, w: int, delta: int, device: torch.device
) -> tuple[tuple[Tensor, Tensor], ...]:
    """(row index, column index) pairs of the reference loop, grouped into parallel steps.

    The loop visits rows h - delta .. delta + 1 and, in each, columns w - delta .. delta + 1,
    both descending; visit (i, j) (i-th row, j-th column of that order) touches pixels within
    rows and columns [-delta, delta - 1] of itself. Giving it step 2 * delta * i + j keeps the
    order of every two visits whose neighbourhoods overlap, and puts only visits 2 * delta or
    more columns apart in one step: running steps in order equals the sequential loop.
    Built on the CPU, returned on ``device`` (cached per device).
    """
    rows, cols = h - 2 * delta, w - 2 * delta
    if rows <= 0 or cols <= 0:
        return ()
    i = torch.arange(rows)[:, None].expand(rows, cols)
    j = torch.arange(cols)[None, :].expand(rows, cols)
    t = (2 * delta * i + j).flatten()
    order = torch.argsort(t, stable=True)
    counts = torch.bincount(t).tolist()
    ii, jj = i.flatten()[order].split(counts), j.flatten()[order].split(counts)
    return tuple((a.to(device), b.to(device)) for a, b in zip(ii, jj, strict=True))


def local_shuffle(
    x: Tensor, delta: int, passes: int, g: torch.Generator, *, p_visit: float, swap: bool
) -> Tensor:
    """The references' glass-blur pixel loop on ``x: (N, C, H, W)``, sequential order kept.

    Each visit, with probability ``p_visit``, draws ``dy, dx = randint(-delta, delta)`` (high
    exclusive) and exchanges pixel (h, w) with (h + dy, w + dx). ``swap=True`` is a real swap
    (MNIST-C: scalars of a 2-D array); ``swap=False`` is what CIFAR-C's
    ``x[h, w], x[h', w'] = x[h', w'], x[h, w]`` does to an (H, W, 3) array whose rows are views:
    x[h, w] takes x[h', w'] and x[h', w'] keeps its value -- a copy. Visits run in parallel
    wavefronts (:func:`_wavefronts`) that give the sequential loop's result exactly.
    """
    n, ch, h, w = x.shape
    dev = x.device
    steps = _wavefronts(h, w, delta, dev)
    if not steps:
        return x
    rows, cols = h - 2 * delta, w - 2 * delta
    r = (h - delta - torch.arange(rows, device=dev))[:, None]
    c = (w - delta - torch.arange(cols, device=dev))[None, :]
    here = (r * w + c).expand(rows, cols)
    flat = x.reshape(n, ch, h * w).clone()
    for _ in range(passes):
        dy = randint(g, (n, rows, cols), -delta, delta, dev)
        dx = randint(g, (n, rows, cols), -delta, delta, dev)
        there = (r + dy) * w + (c + dx)
        if p_visit < 1:
            there = torch.where(rand(g, (n, rows, cols), dev) < p_visit, there, here)
        if not swap and delta == 1:
            # copies from offsets in {-1, 0}^2 read pixels the loop has not reached yet (or the
            # pixel itself), so every visit sees the original image: one gather does the pass
            src = torch.arange(h * w, device=dev).repeat(n, 1)
            src[:, here.flatten()] = there.reshape(n, -1)
            flat = flat.gather(2, src[:, None, :].expand(n, ch, h * w))
            continue
        for ii, jj in steps:
            p = here[ii, jj]  # (k,)
            q = there[:, ii, jj][:, None, :].expand(n, ch, p.numel())  # (n, ch, k)
            moved = flat.gather(2, q)
            if swap:
                flat.scatter_(2, q, flat[:, :, p])
            flat[:, :, p] = moved
    return flat.reshape(n, ch, h, w)


def glass_blur(
    x: Tensor,
    c: tuple[float, int, int],
    g: torch.Generator,
    *,
    p_visit: float,
    swap: bool,
    rows_only: bool,
) -> Tensor:
    """Blur, locally shuffle pixels, blur again; c = (sigma, max_shift, passes).

    Both references: skimage ``gaussian(multichannel=True)``, ``np.uint8`` (truncating), the
    pixel loop of :func:`local_shuffle`, the same blur again. ``rows_only``: MNIST-C's blur of a
    2-D image with ``multichannel=True`` filters rows only (see :func:`~.ops.gaussian`).
    """
    sigma, delta, passes = c
    x = to_uint8_levels(gaussian(x, sigma, rows_only=rows_only), "floor")
    x = local_shuffle(x, delta, passes, g, p_visit=p_visit, swap=swap)
    return gaussian(x, sigma, rows_only=rows_only)


# ---------------------------------------------------------------------------
# motion blur


def motion_blur(x: Tensor, c: tuple[int, float], g: torch.Generator) -> Tensor:
    """ImageMagick motion blur, c = (radius, sigma), angle ~ U(-45, 45) degrees per image.

    The references round-trip through an 8-bit PNG; ImageMagick's output is the floor of the
    streak (see :func:`~.ops.motion_streak`), kept here.
    """
    angles = uniform(g, (x.shape[0],), -45.0, 45.0)  # on the CPU: motion_streak's offsets
    return to_uint8_levels(motion_streak(x, c[0], c[1], angles), "floor")


# ---------------------------------------------------------------------------
# fog


def _noisy_mean(total: Tensor, wibble: float, g: torch.Generator) -> Tensor:
    """Diamond-square update: mean of four neighbours plus wibble * U(-wibble, wibble)."""
    return total / 4 + wibble * uniform(g, tuple(total.shape), -wibble, wibble, total.device)


def _diamond_square(m: Tensor, step: int, wibble: float, decay: float, g: torch.Generator) -> float:
    """Run the diamond-square levels from ``step`` down to 2 in place on ``m: (n, S, S)``.

    Neighbours wrap around (``roll``), as in the references. Returns the next level's wibble.
    """
    while step >= 2:
        half = step // 2
        corners = m[:, 0::step, 0::step]
        squares = corners + torch.roll(corners, -1, dims=1)
        squares = squares + torch.roll(squares, -1, dims=2)
        m[:, half::step, half::step] = _noisy_mean(squares, wibble, g)
        centres = m[:, half::step, half::step]
        corners = m[:, 0::step, 0::step]
        left = centres + torch.roll(centres, 1, dims=1) + corners + torch.roll(corners, -1, 2)
        m[:, 0::step, half::step] = _noisy_mean(left, wibble, g)
        top = centres + torch.roll(centres, 1, dims=2) + corners + torch.roll(corners, -1, 1)
        m[:, half::step, 0::step] = _noisy_mean(top, wibble, g)
        step = half
        wibble /= decay
    return wibble


def plasma_fractal(
    n: int,
    mapsize: int,
    decay: float,
    h: int,
    w: int,
    g: torch.Generator,
    device: torch.device | None = None,
) -> Tensor:
    """Top-left h x w crops of diamond-square maps normalised to [0, 1]: (n, h, w).

    The references' ``plasma_fractal`` (after FLHerne/mapgen): offsets ``wibble * U(-wibble,
    wibble)``, ``wibble`` starting at 100 and divided by ``decay`` per level, then min-max
    normalised over the whole ``mapsize`` map. Maps up to 64 are computed whole. For MNIST-C's
    256 map (8 ms an image whole) only what the crop needs is computed: the coarse levels on the
    map's 4-pixel lattice, exactly, then the last two levels on a window around the crop, exactly.
    Deviation: min and max come from that lattice, not all pixels. Measured on 128 maps: the
    same extremes for decay >= 1.7; at MNIST-C's 1.4 crop values move by 0.0002 on average
    (at most 0.007); values are clipped to [0, 1]. Decays below 1.4 are not used.
    Computed on ``device`` (draws from the CPU generator ``g``).
    """
    if mapsize <= 64:
        m = torch.zeros(n, mapsize, mapsize, device=device)
        _diamond_square(m, mapsize, 100.0, decay, g)
        lo, hi = m.amin(dim=(1, 2), keepdim=True), m.amax(dim=(1, 2), keepdim=True)
        return ((m - lo) / (hi - lo))[:, :h, :w]
    # levels with step >= 8 only touch multiples of 4: run them on the 4-pixel lattice
    lattice = torch.zeros(n, mapsize // 4, mapsize // 4, device=device)
    wibble = _diamond_square(lattice, mapsize // 4, 100.0, decay, g)
    lo, hi = lattice.amin(dim=(1, 2), keepdim=True), lattice.amax(dim=(1, 2), keepdim=True)
    # the last two levels (steps 4, 2) on a window reaching 16 px past the crop on every side;
    # the window's own wrap-around corrupts at most 6 px at its edges, far from the crop
    pad = 16
    size = -(-(max(h, w) + 2 * pad) // 4) * 4
    lat_idx = torch.div(
        torch.remainder(torch.arange(-pad, size - pad, 4, device=device), mapsize),
        4,
        rounding_mode="floor",
    )
    window = torch.zeros(n, size, size, device=device)
    window[:, 0::4, 0::4] = lattice[:, lat_idx][:, :, lat_idx]
    _diamond_square(window, 4, wibble, decay, g)
    crop = window[:, pad : pad + h, pad : pad + w]
    return ((crop - lo) / (hi - lo)).clamp(0, 1)


def fog(x: Tensor, c: tuple[float, float, int], g: torch.Generator) -> Tensor:
    """Add a plasma fractal and rescale; c = (strength, wibble_decay, fractal map size).

    The fractal is cropped from the top-left of a ``mapsize`` map (MNIST-C: 256, CIFAR-C: 32),
    shared by the channels; ``max_val`` is each image's maximum, as in both references.
    """
    strength, decay, mapsize = c
    n, _, h, w = x.shape
    size = max(mapsize, 1 << (max(h, w) - 1).bit_length())
    fractal = plasma_fractal(n, size, decay, h, w, g, x.device)[:, None]
    max_val = x.amax(dim=(1, 2, 3), keepdim=True)
    return (x + strength * fractal) * max_val / (max_val + strength)


# ---------------------------------------------------------------------------
# photometric


def brightness(x: Tensor, delta: float, g: torch.Generator) -> Tensor:
    """Add ``delta`` to V in HSV (clipped at 1), keeping H and S.

    Closed form of skimage's rgb2hsv -> V + delta -> hsv2rgb: with H and S fixed every channel
    is proportional to V, so rgb * V' / V; black (V = 0, S = 0) becomes grey V'. For one channel
    this is MNIST-C's gray2rgb -> ... -> rgb2gray, i.e. clip(x + delta).
    """
    v = x.amax(dim=1, keepdim=True)
    v_new = (v + delta).clamp(max=1.0)
    return torch.where(v > 0, x * v_new / v.clamp(min=1e-12), v_new.expand_as(x))
