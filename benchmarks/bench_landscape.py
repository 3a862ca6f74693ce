"""Grid evaluations per second of the loss-landscape engine against a plain loop and loss-landscapes.

Usage::

    uv run python benchmarks/bench_landscape.py [--grid 11] [--repeats 3] [--train-steps 200]
        [--threads 1] [--quick] [--out PATH]

``--quick`` (a few minutes on a busy 2-core machine): a 5 x 5 grid, 2 repeats,
50 training steps, no loss-landscapes column; it writes
``benchmarks/results/landscape-quick.json`` unless ``--out`` says otherwise.

Model: the 784-512-512-512-10 MLP, trained ``--train-steps`` Adam steps; data:
2,000 test images of Fashion-MNIST (via ``analysis.data``), or of scikit-learn's
digits upscaled to 28x28 where Fashion-MNIST is not installed (the JSON says
which). On the same ``--grid`` x ``--grid`` grid over [-1, 1]^2 with the same
filter-normalised directions, in this one process, interleaved, ``--repeats``
times (medians; the machine is shared and noisy):

- ``plain``: the baseline, every grid point sets all weights and runs the network;
- ``engine_fp32``: ``analysis.landscape`` (first layer by linearity);
- ``engine_bf16``: the same with the rest of the network on a bfloat16 copy
  (weights summed in fp32, rounded once per point), and its max relative loss
  error against the fp32 engine over the whole grid;
- ``loss_landscapes``: ``loss_landscapes.random_plane`` (PyPI, 3.0.6) with
  ``normalization='filter'`` and a ``metrics.Loss`` metric. Speed only: 3.0.6 draws
  its directions from uniform [0, 1) (not Gaussian), walks its grid in a zig-zag
  and never evaluates the centre, so its values are not comparable with ours.

BatchNorm (``bn_reset``): on a digits VGG-11 (width_mult 0.125, 12 SGD steps,
400 training samples, shared by the evaluation and the statistics reset) the
engine's points per second with the statistics recomputed at every point (the
rule since Issue 12) against the same grid under the network's own statistics
(the old behaviour, timed only for the cost ratio), and the plain loop with the reset.

The machine's fp32 and bf16 matmul rates are measured in the same run on
(2000 x 784) @ (784 x 512) products; each engine's *nominal* FLOP rate is
``2 * N * sum(in * out)`` per grid point times points per second (the first-layer
trick skips most of the first layer's FLOPs, so the engine's nominal rate may
exceed the matmul rate). Targets: engine fp32 >= 1.4x plain; bf16 >= 3.5x plain
with loss error < 0.5%. Results go to ``benchmarks/results/landscape.json``.
"""

from __future__ import annotations

import argparse
import copy
import datetime as dt
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from analysis.batchnorm import reset_bn_stats  # noqa: E402
from analysis.data import load  # noqa: E402
from analysis.errors import DataError  # noqa: E402
from analysis.landscape import (  # noqa: E402
    SurfaceProblem,
    compute_grid,
    grid_axis,
    surface_directions,
    trainable,
)
from analysis.models import build_for  # noqa: E402
from analysis.specs import DataSpec, ModelSpec, TrainSpec  # noqa: E402
from analysis.train import evaluate, fit  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results" / "landscape.json"
QUICK_RESULTS = ROOT / "benchmarks" / "results" / "landscape-quick.json"
MODEL = ModelSpec(arch="mlp", width=512, depth=3)
N = 2000
TARGETS = {"engine_fp32_vs_plain": 1.4, "engine_bf16_vs_plain": 3.5, "bf16_rel_error": 0.005}


def demo_data() -> tuple[DataSpec, object]:
    """Fashion-MNIST if it is installed, else digits; (spec, splits)."""
    for name in ("fashion-mnist", "digits"):
        spec = DataSpec(name=name)
        try:
            return spec, load(spec, download=False)
        except DataError:
            continue
    raise SystemExit("no dataset available")


def matmul_rate(dtype: torch.dtype, repeats: int = 20) -> float:
    """FLOP/s of (2000 x 784) @ (784 x 512) in ``dtype`` (median over ``repeats``)."""
    gen = torch.Generator().manual_seed(0)
    a = torch.randn(N, 784, generator=gen).to(dtype)
    b = torch.randn(512, 784, generator=gen).to(dtype)
    F.linear(a, b)
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        F.linear(a, b)
        times.append(time.perf_counter() - t)
    return 2 * N * 784 * 512 / statistics.median(times)


def loss_landscapes_plane(model, x, y, grid: int) -> np.ndarray:
    """``loss_landscapes.random_plane`` over [-1, 1]^2 (its distance 2 spans +-1 around the start)."""
    import loss_landscapes
    import loss_landscapes.metrics

    metric = loss_landscapes.metrics.Loss(torch.nn.CrossEntropyLoss(), x, y)
    with torch.no_grad():
        return loss_landscapes.random_plane(
            model, metric, distance=2.0, steps=grid, normalization="filter", deepcopy_model=True
        )


def parse_args() -> argparse.Namespace:
    """The command line (``--quick`` sets small defaults)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--grid", type=int, default=None)
    parser.add_argument("--repeats", type=int, default=None)
    parser.add_argument("--train-steps", type=int, default=None)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    small = {"grid": 5, "repeats": 2, "train_steps": 50, "out": QUICK_RESULTS}
    full = {"grid": 11, "repeats": 3, "train_steps": 200, "out": RESULTS}
    for name, value in (small if args.quick else full).items():
        if getattr(args, name) is None:
            setattr(args, name, value)
    return args


def time_engines(problem, model, x, y, args, columns: list[str]) -> tuple[dict, dict, dict]:
    """Seconds per grid of each column, interleaved over repeats; grids; matmul rates."""
    axis = grid_axis(args.grid, 1.0)
    runs: dict[str, list[float]] = {name: [] for name in columns}
    rates: dict[str, list[float]] = {"fp32": [], "bf16": []}
    grids: dict[str, np.ndarray] = {}
    problem.evaluate((0.0, 0.0))  # first-layer products computed once, outside the timing
    for rep in range(args.repeats):
        rates["fp32"].append(matmul_rate(torch.float32))
        rates["bf16"].append(matmul_rate(torch.bfloat16))
        order = columns[rep % len(columns) :] + columns[: rep % len(columns)]  # rotate
        for name in order:
            t = time.perf_counter()
            if name == "plain":
                grids[name] = compute_grid(problem, axis, axis, engine="plain")["loss"]
            elif name == "engine_fp32":
                grids[name] = compute_grid(problem, axis, axis)["loss"]
            elif name == "engine_bf16":
                grids[name] = compute_grid(problem, axis, axis, precision="bf16")["loss"]
            else:
                grids[name] = loss_landscapes_plane(model, x, y, args.grid)
            runs[name].append(time.perf_counter() - t)
            print(f"repeat {rep + 1}: {name:16s} {runs[name][-1]:7.2f} s", flush=True)
    return runs, grids, {k: statistics.median(v) for k, v in rates.items()}


def bn_cost(args) -> dict:
    """Points/s on a BatchNorm VGG: statistics reset at every point vs the network's own (old).

    Interleaved over ``args.repeats`` on a ``args.grid`` x ``args.grid`` grid.
    """
    data_spec = DataSpec(name="digits", train_size=400)
    data = load(data_spec)
    torch.manual_seed(0)
    net = build_for(ModelSpec(arch="vgg", width_mult=0.125), data.info)
    fit(net, data, TrainSpec(epochs=1, batch_size=32, optimizer="sgd", lr=0.05), seed=0,
        max_steps=12)  # fmt: skip
    net.eval()
    x, y = data.train_x, data.train_y
    dirs = surface_directions(net, None, dims=2, seed=0)
    reset = SurfaceProblem(model=net, centre=trainable(net), dirs=dirs, x=x, y=y, bn_x=x)
    own = SurfaceProblem(model=net, centre=trainable(net), dirs=dirs, x=x, y=y, bn_x=x)
    own.bn = "none"  # the old behaviour (the network's own statistics), for the cost ratio only
    axis = grid_axis(args.grid, 1.0)
    cases = {
        "engine_fp32_reset": lambda: compute_grid(reset, axis, axis),
        "plain_reset": lambda: compute_grid(reset, axis, axis, engine="plain"),
        "engine_fp32_own_stats": lambda: compute_grid(own, axis, axis),
    }
    seconds: dict[str, list[float]] = {k: [] for k in cases}
    for rep in range(args.repeats):
        for name, run in cases.items():
            t = time.perf_counter()
            run()
            seconds[name].append(time.perf_counter() - t)
            print(f"repeat {rep + 1}: vgg {name:22s} {seconds[name][-1]:7.2f} s", flush=True)
    pps = {k: args.grid**2 / statistics.median(v) for k, v in seconds.items()}
    check = copy.deepcopy(net)
    reset_bn_stats(check, x)
    centre, want = reset.evaluate((0.0, 0.0))[0], evaluate(check, x, y)[0]
    return {
        "model": "vgg11 width_mult 0.125, digits, 400 samples (evaluation = reset set)",
        "points_per_second": pps,
        "reset_cost_x": pps["engine_fp32_own_stats"] / pps["engine_fp32_reset"],
        "engine_vs_plain_with_reset": pps["engine_fp32_reset"] / pps["plain_reset"],
        "centre_rel_diff_vs_reset_network": abs(centre - want) / want,
    }


def main() -> None:
    """Run the benchmark and write the JSON."""
    args = parse_args()
    torch.set_num_threads(args.threads)
    spec, data = demo_data()
    torch.manual_seed(0)
    model = build_for(MODEL, data.info)
    fit(model, data, TrainSpec(epochs=1, batch_size=128), seed=0, max_steps=args.train_steps)
    model.eval()
    x, y = data.test_x[:N], data.test_y[:N]
    dirs = surface_directions(model, None, dims=2, seed=0)
    problem = SurfaceProblem(model=model, centre=trainable(model), dirs=dirs, x=x, y=y)
    notes = []
    columns = ["plain", "engine_fp32", "engine_bf16"]
    if not args.quick:
        try:
            import loss_landscapes  # noqa: F401

            columns.append("loss_landscapes")
        except Exception as err:  # noqa: BLE001  (any import failure: report it, skip the column)
            notes.append(f"loss-landscapes failed to import ({err!r}); its column is skipped")
    runs, grids, rate = time_engines(problem, model, x, y, args, columns)
    doc = report(args, spec, data, model, problem, runs, grids, rate, notes)
    doc["batchnorm"] = bn_cost(args)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(doc, indent=1) + "\n")
    keys = ("points_per_second", "ratios", "meets_targets", "fused", "batchnorm")
    print(json.dumps({k: doc[k] for k in keys}, indent=1))
    print(f"bf16 error {doc['bf16_max_rel_loss_error_vs_fp32']:.2e}; written to {args.out}")


def report(args, spec, data, model, problem, runs, grids, rate, notes) -> dict:
    """The JSON document: speeds, ratios (plain and paired), errors, FLOP rates, targets.

    Long because most of it is the one JSON literal, field by field.
    """
    points = args.grid * args.grid
    layers = [m for m in model.modules() if isinstance(m, torch.nn.Linear)]
    flops_per_point = 2 * N * sum(m.in_features * m.out_features for m in layers)
    seconds = {k: statistics.median(v) for k, v in runs.items()}
    pps = {k: points / s for k, s in seconds.items()}
    ratio = {f"{k}_vs_plain": pps[k] / pps["plain"] for k in pps if k != "plain"}
    # the load of a shared machine drifts: also the median of per-repeat (paired) ratios
    paired = {
        f"{k}_vs_plain": statistics.median(
            p / t for p, t in zip(runs["plain"], runs[k], strict=True)
        )
        for k in runs
        if k != "plain"
    }
    fp32 = grids["engine_fp32"]
    bf16_error = float(np.max(np.abs(grids["engine_bf16"] - fp32) / np.abs(fp32)))
    nominal = {k: flops_per_point * v for k, v in pps.items()}
    fused, fused_path = problem.fused
    notes = notes + [
        "loss-landscapes 3.0.6 draws its directions from uniform [0, 1) (not Gaussian), "
        "zig-zags its grid and never evaluates the centre: compare its speed only, not values",
        "efficiency = nominal FLOP rate (2 * N * sum(in*out) per grid point) / measured matmul "
        "rate of the same precision; the first-layer trick skips most of the first layer's "
        "FLOPs, so the engines' efficiency can exceed 1",
        f"torch threads: {args.threads}; medians of {args.repeats} interleaved repeats "
        "(rotating order)",
    ]
    return {
        "command": "uv run python benchmarks/bench_landscape.py " + " ".join(sys.argv[1:]),
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": {"platform": platform.platform(), "torch": torch.__version__},
        "data": {"dataset": spec.name, "source": data.source, "n": N},
        "model": "mlp 784-512-512-512-10",
        "train_steps": args.train_steps,
        "grid": [args.grid, args.grid],
        "points": points,
        "seconds_per_grid": seconds,
        "points_per_second": pps,
        "ratios": ratio,
        "paired_ratios": paired,
        "load_average_1min": os.getloadavg()[0],
        "targets": TARGETS,
        "meets_targets": {
            "engine_fp32_vs_plain": ratio["engine_fp32_vs_plain"]
            >= TARGETS["engine_fp32_vs_plain"],
            "engine_bf16_vs_plain": ratio["engine_bf16_vs_plain"]
            >= TARGETS["engine_bf16_vs_plain"],
            "bf16_rel_error": bf16_error < TARGETS["bf16_rel_error"],
        },
        "fused": {"ran": fused, "path": fused_path},
        "bf16_max_rel_loss_error_vs_fp32": bf16_error,
        "engine_fp32_max_rel_diff_vs_plain": float(
            np.max(np.abs(fp32 - grids["plain"]) / np.abs(grids["plain"]))
        ),
        "flops_per_point": flops_per_point,
        "matmul_flops_per_second": rate,
        "nominal_flops_per_second": nominal,
        "efficiency_vs_matmul": {
            k: nominal[k] / (rate["bf16"] if k == "engine_bf16" else rate["fp32"]) for k in nominal
        },
        "centre_loss": float(fp32[args.grid // 2, args.grid // 2]),
        "notes": notes,
    }


if __name__ == "__main__":
    main()
