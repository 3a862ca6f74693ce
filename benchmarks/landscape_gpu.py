"""Landscape engine points/s on the demo MLP grid: CPU pointwise against the device's engines.

Usage (from the repository root, with any Python that has torch and numpy; no downloads)::

    python3 benchmarks/landscape_gpu.py --device cuda --json OUT
        [--repeats 3] [--seconds 3] [--threads N (default: the cores this process may use)]

The problem is the demo study's 2-D surface: the 784-512-512-10 MLP of
``assets/studies/demo.toml`` (its initial weights: the speed does not depend on
them) on 1,000 synthetic Fashion-MNIST-shaped samples (28 x 28, 10 classes,
seeded), over the grid its ``[analyses.landscape]`` settings define (none in the
demo: ``LandscapeSettings``' defaults, 31 x 31 over [-1, 1]^2), along its
filter-normalised directions (direction seed 0).

Measured, interleaved over ``--repeats`` (rotating order; medians), each for
``--seconds`` of grid rows (cycling over the grid), after one untimed row:

- ``cpu_pointwise_fp32``: the CPU engine the analyses use on the CPU (the baseline);
- ``cpu_batched_fp32``: the batched engine on the CPU (why the CPU keeps the pointwise one);
- ``<device>_pointwise_fp32``, ``<device>_batched_fp32``: both engines on ``--device``;
- ``<device>_pointwise_bf16``, ``<device>_batched_bf16``: the bf16 mode, with its loss
  error against fp32 on the first row.

Reported: points/s of each, the ratios ``device best / CPU`` (the issue's target on
CUDA: at least 20x) and batched / pointwise on the device, which engine ``auto``
picks there (the one-off calibration the analyses run), each engine's largest
relative loss difference from the CPU on the first row, and the chunk size.
Writes the JSON to ``--json`` (default ``benchmarks/results/landscape_gpu-<device>.json``).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from analysis import device as devices  # noqa: E402
from analysis.data import dataset_info  # noqa: E402
from analysis.landscape.batched import (  # noqa: E402
    EngineChoice,
    batched_engine,
    choose_engine,
    chunk_size,
)
from analysis.landscape.directions import surface_directions, trainable  # noqa: E402
from analysis.landscape.engine import SurfaceProblem  # noqa: E402
from analysis.landscape.grid import grid_axis, rows_per_call  # noqa: E402
from analysis.landscape.specs import DEFAULT_SUBSET, LandscapeSettings  # noqa: E402
from analysis.models import build_for  # noqa: E402
from analysis.specs import ModelSpec  # noqa: E402

DEMO = ROOT / "assets" / "studies" / "demo.toml"
TARGET = 20.0


def demo_settings() -> tuple[ModelSpec, LandscapeSettings, str]:
    """The demo study's model and landscape settings (from its TOML where tomllib exists)."""
    model, table, source = {"arch": "mlp", "width": 512, "depth": 2}, {}, "built-in copy"
    try:
        import tomllib

        doc = tomllib.loads(DEMO.read_text())
        model = {k: doc["model"][k] for k in ("arch", "width", "depth")}
        table, source = doc.get("analyses", {}).get("landscape", {}), str(DEMO.relative_to(ROOT))
    except (ImportError, OSError, KeyError):  # an older Python: the copy above (demo.toml's)
        pass
    table = {k: tuple(v) if isinstance(v, list) else v for k, v in table.items()}
    return ModelSpec(**model), LandscapeSettings(**table), source


def problems(
    device: torch.device, model_spec: ModelSpec, s: LandscapeSettings
) -> tuple[dict, np.ndarray]:
    """One surface problem on the CPU and one on ``device`` (same network, data, directions)."""
    info = dataset_info("fashion-mnist")
    torch.manual_seed(0)
    net = build_for(model_spec, info).eval()
    n = s.subset or DEFAULT_SUBSET
    gen = torch.Generator().manual_seed(0)
    x = torch.rand(n, info.in_channels, info.image_size, info.image_size, generator=gen)
    y = torch.randint(0, len(info.classes), (n,), generator=gen)
    dirs = surface_directions(net, None, dims=2, seed=s.direction_seed)
    out = {}
    for dev in dict.fromkeys([torch.device("cpu"), device]):
        out[dev.type] = SurfaceProblem(
            model=net, centre=trainable(net), dirs=dirs, x=x, y=y, device=dev
        )
    return out, grid_axis(s.grid, s.span)


def row_points(axis: np.ndarray, first: int, count: int = 1) -> np.ndarray:
    """Rows ``first`` .. ``first + count - 1`` (cycling) of the grid as coefficients (count * X, 2)."""
    rows = [axis[(first + k) % len(axis)] for k in range(count)]
    return np.concatenate([np.stack([axis, np.full_like(axis, b)], axis=1) for b in rows])


def evaluate(problem: SurfaceProblem, engine: str, precision: str, pts: np.ndarray) -> np.ndarray:
    """Losses (P,) at ``pts`` (P, 2) by ``engine`` ('pointwise' or 'batched'), in one call."""
    if engine == "batched":
        return batched_engine(problem, precision).evaluate(pts)[0]
    return np.array([problem.evaluate(tuple(map(float, p)), precision=precision)[0] for p in pts])


def measure(problem, engine, precision, axis, seconds) -> tuple[int, float]:
    """(points, seconds) of whole rows evaluated, cycling over the grid, for ``seconds``.

    Rows go as :func:`analysis.landscape.grid.compute_grid` sends them: one at a
    time to the pointwise engine, a chunk's worth of rows per call to the batched one.
    """
    choice = EngineChoice(engine, "benchmark", str(problem.device))
    per_call = rows_per_call(problem, choice, precision, len(axis))
    done, i, start = 0, 0, time.perf_counter()
    while True:
        pts = row_points(axis, i, per_call)
        evaluate(problem, engine, precision, pts)
        done, i = done + len(pts), i + per_call
        if time.perf_counter() - start >= seconds:
            return done, time.perf_counter() - start


def cases(device: torch.device) -> list[tuple[str, str, str, str]]:
    """(name, problem key, engine, precision) of every measurement."""
    out = [("cpu_pointwise_fp32", "cpu", "pointwise", "fp32"), ("cpu_batched_fp32", "cpu", "batched", "fp32")]  # fmt: skip
    d = device.type
    if d != "cpu":
        out += [(f"{d}_pointwise_fp32", d, "pointwise", "fp32"), (f"{d}_batched_fp32", d, "batched", "fp32")]  # fmt: skip
    out += [(f"{d}_pointwise_bf16", d, "pointwise", "bf16"), (f"{d}_batched_bf16", d, "batched", "bf16")]  # fmt: skip
    return out


def run(args: argparse.Namespace) -> dict:
    """Every measurement, interleaved; the figures as one JSON document."""
    device = devices.resolve(args.device)
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    torch.set_num_threads(args.threads or cores or 1)  # the cores this process may use
    model_spec, s, source = demo_settings()
    probs, axis = problems(device, model_spec, s)
    todo = cases(device)
    first = {}
    for name, key, engine, precision in todo:  # warm-up: one untimed row each (kept)
        first[name] = evaluate(probs[key], engine, precision, row_points(axis, 0))
    per: dict[str, list[float]] = {name: [] for name, *_ in todo}
    for rep in range(args.repeats):
        shift = rep % len(todo)
        for name, key, engine, precision in todo[shift:] + todo[:shift]:
            points, secs = measure(probs[key], engine, precision, axis, args.seconds)
            per[name].append(points / secs)
            print(f"repeat {rep + 1}: {name:24s} {points / secs:10.1f} points/s", flush=True)
    rates = {k: statistics.median(v) for k, v in per.items()}
    d = device.type
    best = max(rates[f"{d}_pointwise_fp32"], rates[f"{d}_batched_fp32"])
    ref = first["cpu_pointwise_fp32"]
    doc = {
        "command": " ".join(["python3", *sys.argv]),
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),  # noqa: UP017
        "machine": {
            "platform": platform.platform(),
            "python": platform.python_version(),
            "cpu_threads": torch.get_num_threads(),
            **devices.describe(device),
        },  # fmt: skip
        "problem": {
            "model": f"mlp {28 * 28}-{model_spec.width}x{model_spec.depth}-10 (initial weights)",
            "data": f"{len(probs['cpu'].x)} synthetic Fashion-MNIST-shaped samples (seeded)",
            "grid": [s.grid, s.grid],
            "span": s.span,
            "settings_from": source,
            "chunk_points": chunk_size(probs[d], torch.float32),
            "rows_per_batched_call": rows_per_call(
                probs[d], EngineChoice("batched", "", d), "fp32", len(axis)
            ),
        },
        "points_per_second": rates,
        "repeats": per,
        "ratios": {
            "device_best_vs_cpu": best / rates["cpu_pointwise_fp32"],
            "batched_vs_pointwise_on_device": rates[f"{d}_batched_fp32"]
            / rates[f"{d}_pointwise_fp32"],
            "cpu_batched_vs_cpu_pointwise": rates["cpu_batched_fp32"] / rates["cpu_pointwise_fp32"],
        },
        "target_device_vs_cpu": TARGET,
        "meets_target": (best / rates["cpu_pointwise_fp32"] >= TARGET) if d == "cuda" else None,
        "auto_choice": choose_engine(probs[d], row_points(axis, 0), "fp32").record(),
        "max_rel_loss_diff_vs_cpu_first_row": {
            name: float(np.max(np.abs(loss - ref) / np.abs(ref))) for name, loss in first.items()
        },
        "notes": [
            "bf16 rows: their max relative loss difference from the CPU fp32 row is the bf16 error",
            f"medians of {args.repeats} interleaved repeats of {args.seconds} s each (rotating order)",
        ],
    }
    if hasattr(os, "getloadavg"):
        doc["machine"]["load_average_1min"] = os.getloadavg()[0]
    if d == "cuda":
        doc["machine"]["max_memory_allocated_bytes"] = torch.cuda.max_memory_allocated(device)
    return doc


def main() -> None:
    """Parse the command line, measure, print and write the JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N or mps")
    parser.add_argument("--json", type=Path, default=None, help="where to write the figures")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=3.0, help="per measurement and repeat")
    parser.add_argument("--threads", type=int, default=0, help="CPU threads (0: the usable cores)")
    args = parser.parse_args()
    doc = run(args)
    out = args.json or ROOT / "benchmarks" / "results" / f"landscape_gpu-{doc['machine']['device'].split(':')[0]}.json"  # fmt: skip
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(doc, indent=1) + "\n")
    print(json.dumps({"points_per_second": doc["points_per_second"], "ratios": doc["ratios"]}, indent=1))  # fmt: skip
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
