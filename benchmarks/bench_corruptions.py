"""Throughput of analysis.corruptions (batched) against imagecorruptions (one image at a time).

    uv run python benchmarks/bench_corruptions.py [--n 200] [--repeats 3]

Colour suite: all 15 CIFAR-10-C corruptions x 5 severities on the same N synthetic CIFAR-like
32x32 images, ours on the whole batch (uint8 in, uint8 out, conversions timed) against
``imagecorruptions.corrupt(image, corruption_name=..., severity=...)`` per HxWx3 uint8 image.
Both run in this one process, interleaved per corruption, with the order flipped every repeat
(the machine is shared and noisy); medians over repeats are reported. Grayscale suite (MNIST-C,
28x28): ours only -- imagecorruptions has no MNIST-C corruptions and refuses images under 32 px.
Single-threaded by default on both sides (``--threads``). Writes benchmarks/results/corruptions.json.
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib.metadata
import json
import os
import platform
import statistics
import sys
import time
import types
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from analysis.atomic import write_atomic
from analysis.corruptions import COLOR_CORRUPTIONS, GRAY_CORRUPTIONS, SEVERITIES, corrupt

RESULTS = Path(__file__).parent / "results" / "corruptions.json"


def load_imagecorruptions() -> tuple[types.ModuleType, list[str]]:
    """Import imagecorruptions with the minimal patches today's stack needs; say which."""
    notes = []
    if "pkg_resources" not in sys.modules:
        try:
            import pkg_resources  # noqa: F401
        except ImportError:
            # setuptools >= 81 no longer ships pkg_resources; imagecorruptions only uses
            # resource_filename to find its frost images next to its own module
            stub = types.ModuleType("pkg_resources")
            stub.resource_filename = lambda pkg, path: os.path.join(
                os.path.dirname(sys.modules[pkg].__file__), path
            )
            sys.modules["pkg_resources"] = stub
            notes.append("stubbed pkg_resources.resource_filename (setuptools no longer ships it)")
    import imagecorruptions
    import imagecorruptions.corruptions as ic

    if not hasattr(np, "float_"):
        np.float_ = np.float64  # plasma_fractal (fog) uses the alias numpy 2 removed
        notes.append("np.float_ = np.float64 for imagecorruptions' fog (removed in numpy 2)")
    original = ic.gaussian

    def gaussian(image, *args, multichannel=None, **kwargs):
        """skimage's gaussian with the pre-0.19 ``multichannel`` keyword mapped to channel_axis."""
        if multichannel:
            kwargs["channel_axis"] = -1
        return original(image, *args, **kwargs)

    ic.gaussian = gaussian
    notes.append("wrapped skimage gaussian(multichannel=True) -> channel_axis=-1 for glass_blur")
    return imagecorruptions, notes


def cifar_like(n: int, seed: int) -> np.ndarray:
    """Synthetic CIFAR-like images: smooth colour field, a few coloured blobs, fine texture: (n, 32, 32, 3) uint8."""
    g = torch.Generator().manual_seed(seed)
    field = F.interpolate(torch.rand((n, 3, 4, 4), generator=g), size=(32, 32), mode="bicubic")
    yy, xx = torch.meshgrid(torch.arange(32.0), torch.arange(32.0), indexing="ij")
    img = field.clamp(0, 1)
    for _ in range(3):
        cy, cx = torch.rand((2, n, 1, 1), generator=g) * 32
        ry, rx = 3 + torch.rand((2, n, 1, 1), generator=g) * 8
        blob = (((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2 < 1).float()[:, None]
        img = img * (1 - blob) + torch.rand((n, 3, 1, 1), generator=g) * blob
    img = (img + 0.03 * torch.randn(img.shape, generator=g)).clamp(0, 1)
    return (img * 255).round().to(torch.uint8).permute(0, 2, 3, 1).contiguous().numpy()


def mnist_like(n: int) -> np.ndarray:
    """sklearn's digits upscaled to 20 px in a 4 px border, tiled to n: (n, 28, 28) uint8."""
    from sklearn.datasets import load_digits

    d = torch.tensor(load_digits().images / 16.0, dtype=torch.float32)[:, None]
    d = F.pad(F.interpolate(d, size=(20, 20), mode="bilinear", antialias=True), (4, 4, 4, 4))
    d = d.repeat(-(-n // len(d)), 1, 1, 1)[:n]
    return (d.clamp(0, 1)[:, 0] * 255).round().to(torch.uint8).numpy()


def ours_one(images: np.ndarray, name: str, severity: int) -> float:
    """Seconds for ours on the whole uint8 batch, conversions to and from float included."""
    t = time.perf_counter()
    x = torch.from_numpy(images)
    x = (x[:, None] if x.ndim == 3 else x.permute(0, 3, 1, 2)).float() / 255
    y = corrupt(x, name, severity, seed=0)
    y = (y * 255).round().to(torch.uint8)
    _ = (y[:, 0] if images.ndim == 3 else y.permute(0, 2, 3, 1)).numpy()
    return time.perf_counter() - t


def theirs_one(ic: types.ModuleType, images: np.ndarray, name: str, severity: int) -> float:
    """Seconds for imagecorruptions, one HxWx3 uint8 image per call, same images."""
    np.random.seed(0)  # imagecorruptions draws from numpy's global RNG
    t = time.perf_counter()
    for img in images:
        ic.corrupt(img, corruption_name=name, severity=severity)
    return time.perf_counter() - t


def main() -> None:
    """Run the interleaved benchmark, print a table and write the JSON result."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=200, help="images per corruption and severity")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=RESULTS)
    ap.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch intra-op threads (default 1: imagecorruptions is single-threaded numpy)",
    )
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    ic, notes = load_imagecorruptions()
    color = cifar_like(args.n, args.seed)
    gray = mnist_like(args.n)
    compared = []
    for name in COLOR_CORRUPTIONS:  # both must run on these 32x32 images, or we say so
        try:
            ic.corrupt(color[0], corruption_name=name, severity=5)
            compared.append(name)
        except Exception as err:  # noqa: BLE001 - report whatever breaks
            notes.append(f"imagecorruptions {name} fails on 32x32 ({type(err).__name__}): excluded")
    for name in compared:  # warm both up once (lazy imports, allocator, libjpeg)
        ours_one(color[:8], name, 3)
        theirs_one(ic, color[:8], name, 3)
    for name in GRAY_CORRUPTIONS:
        ours_one(gray[:8], name, 3)

    per: dict[str, dict[str, list[float]]] = {n: {"ours": [], "theirs": []} for n in compared}
    gray_runs: list[float] = []
    for r in range(args.repeats):
        for name in compared:
            o = t = 0.0
            for s in SEVERITIES:
                if r % 2 == 0:  # flip who goes first every repeat
                    o += ours_one(color, name, s)
                    t += theirs_one(ic, color, name, s)
                else:
                    t += theirs_one(ic, color, name, s)
                    o += ours_one(color, name, s)
            per[name]["ours"].append(o)
            per[name]["theirs"].append(t)
        gray_runs.append(sum(ours_one(gray, n, s) for n in GRAY_CORRUPTIONS for s in SEVERITIES))
        print(f"repeat {r + 1}/{args.repeats} done", flush=True)

    ours_tot = [sum(per[n]["ours"][r] for n in compared) for r in range(args.repeats)]
    theirs_tot = [sum(per[n]["theirs"][r] for n in compared) for r in range(args.repeats)]
    n_color = args.n * len(compared) * len(SEVERITIES)
    n_gray = args.n * len(GRAY_CORRUPTIONS) * len(SEVERITIES)
    med = statistics.median
    medians = {
        "color_ours_s": med(ours_tot),
        "color_theirs_s": med(theirs_tot),
        "color_ours_images_per_s": n_color / med(ours_tot),
        "color_theirs_images_per_s": n_color / med(theirs_tot),
        "gray_ours_s": med(gray_runs),
        "gray_ours_images_per_s": n_gray / med(gray_runs),
    }
    ratio = med(theirs_tot) / med(ours_tot)
    # the total is dominated by imagecorruptions' two slowest (Python-loop glass blur, frost
    # photo read from disk per call), so also give summaries that are not
    rest = [n for n in compared if n not in ("glass_blur", "frost")]
    ratio_rest = med([sum(per[n]["theirs"][r] for n in rest) for r in range(args.repeats)]) / med(
        [sum(per[n]["ours"][r] for n in rest) for r in range(args.repeats)]
    )
    per_med = {
        n: {
            "ours_s": med(v["ours"]),
            "theirs_s": med(v["theirs"]),
            "ratio": med(v["theirs"]) / med(v["ours"]),
        }
        for n, v in per.items()
    }

    print(
        f"\n{'corruption':18s} {'ours s':>8s} {'theirs s':>9s} {'ratio':>7s}   (x5 severities, n={args.n})"
    )
    for n, v in per_med.items():
        print(f"{n:18s} {v['ours_s']:8.3f} {v['theirs_s']:9.3f} {v['ratio']:7.1f}")
    print(
        f"\ncolour suite ({len(compared)} x 5): ours {medians['color_ours_images_per_s']:,.0f} img/s, "
        f"imagecorruptions {medians['color_theirs_images_per_s']:,.0f} img/s, ratio {ratio:.1f}x"
    )
    geo = statistics.geometric_mean([v["ratio"] for v in per_med.values()])
    print(
        f"  without glass_blur and frost: {ratio_rest:.1f}x; geometric mean of per-corruption ratios: {geo:.1f}x"
    )
    print(f"gray suite (15 x 5, ours only): {medians['gray_ours_images_per_s']:,.0f} img/s")

    notes += [
        f"one process, interleaved per corruption, order flipped each repeat; medians of {args.repeats}",
        "images/s = corrupted images produced per second (n x corruptions x 5 severities / seconds)",
        "ratio = imagecorruptions' median time / ours for the whole colour suite; it is dominated by "
        "glass_blur and frost, so ratio_without_glass_blur_and_frost and the geometric mean of "
        "per-corruption ratios are given too",
        "ours: whole batch per call, uint8 -> float -> uint8 conversions included in the time",
        "theirs: imagecorruptions.corrupt per 32x32x3 uint8 image (no upsampling needed: 32 px is its minimum)",
        "same images, different parameters: ours uses CIFAR-10-C's 32x32 severities, imagecorruptions "
        "ImageNet-C's (e.g. larger glass-blur shifts, longer motion blur, its own frost photos)",
        "gray suite: ours only; imagecorruptions has no MNIST-C corruptions and rejects 28x28",
        f"torch intra-op threads {torch.get_num_threads()} (--threads), {os.cpu_count()} cores, "
        "shared machine: with 2 threads under outside load every small torch op waits ~8 ms at "
        "OpenMP barriers, so one thread each is both fairer and more stable",
        "synthetic CIFAR-like images (smooth colour field, blobs, texture) seeded by --seed",
    ]
    result = {
        "command": "uv run python benchmarks/bench_corruptions.py " + " ".join(sys.argv[1:]),
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "n": args.n,
        "repeats": args.repeats,
        "medians": medians,
        "ratio": ratio,
        "ratio_without_glass_blur_and_frost": ratio_rest,
        "ratio_geometric_mean_per_corruption": geo,
        "per_corruption": per_med,
        "compared": compared,
        "runs": {"color_ours_s": ours_tot, "color_theirs_s": theirs_tot, "gray_ours_s": gray_runs},
        "versions": {
            "python": platform.python_version(),
            "torch": torch.__version__,
            "numpy": np.__version__,
            "imagecorruptions": importlib.metadata.version("imagecorruptions"),
        },
        "notes": notes,
    }
    write_atomic(args.out, (json.dumps(result, indent=2) + "\n").encode(), what="benchmark result")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
