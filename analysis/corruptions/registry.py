"""The public entry points: suite names, validation, and applying a corruption to a batch."""

from __future__ import annotations

from collections.abc import Callable, Iterable

import torch

from analysis.corruptions import cifar_c, mnist_c
from analysis.corruptions.ops import Corruption, Tensor, generator
from analysis.device import full_fp32
from analysis.errors import SpecError

GRAY_CORRUPTIONS: tuple[str, ...] = tuple(mnist_c.TABLE)
COLOR_CORRUPTIONS: tuple[str, ...] = tuple(cifar_c.TABLE)
SEVERITIES: tuple[int, ...] = (1, 2, 3, 4, 5)

#: Corruptions that draw no random numbers: same input, same output, whatever the seed.
DETERMINISTIC_CORRUPTIONS: frozenset[str] = frozenset(
    {
        "gray:scale",
        "gray:brightness",
        "gray:stripe",
        "gray:canny_edges",
        "color:defocus_blur",
        "color:zoom_blur",
        "color:brightness",
        "color:contrast",
        "color:pixelate",
        "color:jpeg_compression",
    }
)

_SUITES: dict[int, tuple[str, tuple[str, ...], dict[str, Corruption]]] = {
    1: ("gray", GRAY_CORRUPTIONS, mnist_c.TABLE),
    3: ("color", COLOR_CORRUPTIONS, cifar_c.TABLE),
}


def corruptions_for(in_channels: int) -> tuple[str, ...]:
    """The suite for ``in_channels``: 1 -> MNIST-C (28x28 gray), 3 -> CIFAR-10-C (32x32 colour).

    Raises SpecError naming ``in_channels`` for any other value.
    """
    if isinstance(in_channels, bool) or in_channels not in _SUITES:
        raise SpecError(
            "in_channels", "1 (grayscale) or 3 (colour)", in_channels, owner="corruptions_for"
        )
    return _SUITES[in_channels][1]


def _check_severity(severity: object, owner: str) -> None:
    """Raise SpecError unless ``severity`` is an int in 0..5."""
    if isinstance(severity, bool) or not isinstance(severity, int) or not 0 <= severity <= 5:
        raise SpecError("severity", "an int in the range [0, 5]", severity, owner=owner)


def _check_name(name: object, names: tuple[str, ...], owner: str) -> None:
    """Raise SpecError listing the suite's valid names unless ``name`` is one of them."""
    if name not in names:
        listed = ", ".join(repr(n) for n in names)
        raise SpecError("name", f"one of {{{listed}}}", name, owner=owner)


def corrupt(x: Tensor, name: str, severity: int, *, seed: int) -> Tensor:
    """Corrupt a batch ``x: (N, C, H, W)`` float in [0, 1] with ``name`` at ``severity`` (0..5).

    C = 1 uses the MNIST-C suite (Mu & Gilmer 2019), C = 3 the CIFAR-10-C suite (Hendrycks &
    Dietterich 2019). Returns a new tensor of the same shape, dtype and device, clipped to
    [0, 1]; severity 0 returns an unchanged copy. The result is a pure function of (x, name,
    severity, seed), computed in float32 on ``x``'s device; the random numbers are drawn on
    the CPU and moved, so every device draws the same ones (the CPU and a GPU then agree to
    float rounding, which can move a value quantised to a uint8 level by one level; TF32
    is off inside), and Canny's skimage step runs on the CPU. Raises SpecError naming ``x``, ``name``,
    ``severity`` or ``seed`` when one is invalid.
    """
    if not isinstance(x, torch.Tensor) or x.ndim != 4 or not x.is_floating_point():
        shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
        raise SpecError("x", "a float tensor of shape (N, C, H, W)", shape, owner="corrupt")
    suite, names, table = _SUITES.get(x.shape[1], (None, (), {}))
    if suite is None:
        raise SpecError("x", "a batch with 1 or 3 channels", tuple(x.shape), owner="corrupt")
    _check_name(name, names, "corrupt")
    _check_severity(severity, "corrupt")
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise SpecError("seed", "a non-negative int", seed, owner="corrupt")
    if severity == 0 or x.shape[0] == 0:
        return x.clone()
    fn, params = table[name]
    g = generator(seed, suite, name, severity)
    with torch.no_grad(), full_fp32():  # exact integer sums in matmuls (pixelate, JPEG)
        out = fn(x.detach().float(), params[severity - 1], g).clamp(0, 1)
    return out.to(x.dtype)


def corrupt_suite(
    x: Tensor,
    in_channels: int,
    *,
    seed: int,
    names: Iterable[str] | None = None,
    severities: Iterable[int] = SEVERITIES,
    progress: Callable[[str, float, float], None] | None = None,
) -> dict[tuple[str, int], Tensor]:
    """Every (name, severity) of the suite for ``in_channels`` applied to ``x: (N, C, H, W)``.

    ``names`` defaults to the whole suite; ``progress(task, done, total)`` is called after each
    corruption. Returns {(name, severity): corrupted batch}. Raises SpecError for a batch whose
    channels differ from ``in_channels``, an unknown name or a bad severity.
    """
    suite_names = corruptions_for(in_channels)
    if x.ndim != 4 or x.shape[1] != in_channels:
        raise SpecError(
            "x", f"a batch of shape (N, {in_channels}, H, W)", tuple(x.shape), owner="corrupt_suite"
        )
    chosen = suite_names if names is None else tuple(names)
    for name in chosen:
        _check_name(name, suite_names, "corrupt_suite")
    sevs = tuple(severities)
    for s in sevs:
        _check_severity(s, "corrupt_suite")
    total = len(chosen) * len(sevs)
    out: dict[tuple[str, int], Tensor] = {}
    for name in chosen:
        for s in sevs:
            out[(name, s)] = corrupt(x, name, s, seed=seed)
            if progress is not None:
                progress(f"corrupt {name} severity {s}", len(out), total)
    return out
