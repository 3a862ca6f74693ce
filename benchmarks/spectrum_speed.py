"""What the Hessian spectra cost on the demo MLP, in Hessian-vector products (HVPs).

Usage::

    uv run --frozen python benchmarks/spectrum_speed.py [--repeats 3] [--train-steps 100]
        [--batch 500] [--threads 1] [--out PATH]

Model: the demo's 784-256-256-10 MLP, trained ``--train-steps`` Adam steps on
Fashion-MNIST (or scikit-learn's digits upscaled to 28x28 where it is not
installed: the JSON says which); the Hessian of the mean cross-entropy on
``--batch`` training samples (the demo's ``sharpness_batch``). In this one
process, interleaved, ``--repeats`` times (medians; the machine is shared):

- ``hvp``: one Hessian-vector product (the baseline; median of 10 per repeat);
- ``density``: the SLQ density with the defaults (1 probe x 100 Lanczos steps,
  PyHessian's smoothing on 10,000 bins);
- ``layers``: every layer's top eigenvalue (30 Lanczos steps) and trace
  (Hutchinson to 5% relative error, at most 100 probes);
- ``convexity_point``: lambda_max and lambda_min by scipy's eigsh (tol 1e-2,
  Li et al.) at the trained weights: one point of the convexity map.

Each is reported in seconds and as a ratio to one HVP (its cost in HVPs), with
the products it actually made. Results go to ``benchmarks/results/spectrum.json``.
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

import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from analysis.data import load  # noqa: E402
from analysis.errors import DataError  # noqa: E402
from analysis.landscape.sharpness import (  # noqa: E402
    HessianProblem,
    hutchinson_trace,
    lanczos_top,
)
from analysis.landscape.spectrum import (  # noqa: E402
    block_hvp,
    extreme_eigenvalues,
    layer_blocks,
    slq,
    spectral_density,
)
from analysis.models import build_for  # noqa: E402
from analysis.specs import DataSpec, ModelSpec  # noqa: E402

MODEL = ModelSpec(arch="mlp", width=256, depth=2)


def demo_problem(train_steps: int, batch: int) -> tuple[HessianProblem, str]:
    """The trained demo MLP's Hessian problem on ``batch`` training samples; the dataset's name."""
    for name in ("fashion-mnist", "digits"):
        try:
            splits = load(DataSpec(name=name), download=False)
            break
        except DataError:
            continue
    else:
        raise SystemExit("no dataset available")
    torch.manual_seed(0)
    model = build_for(MODEL, splits.info)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    gen = torch.Generator().manual_seed(0)
    for _ in range(train_steps):
        idx = torch.randint(0, len(splits.train_x), (128,), generator=gen)
        loss = F.cross_entropy(model(splits.train_x[idx]), splits.train_y[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
    x, y = splits.train_x[:batch], splits.train_y[:batch]
    return HessianProblem(model, x, y), name


def counted(prob: HessianProblem) -> tuple[list[int], object]:
    """A product function that counts its calls (the counter is the list's one item)."""
    calls = [0]

    def hvp(v: torch.Tensor) -> torch.Tensor:
        calls[0] += 1
        return prob.hvp(v)

    return calls, hvp


def time_hvp(prob: HessianProblem) -> float:
    """Median seconds of one product over 10."""
    v = torch.randn(prob.dim, generator=torch.Generator().manual_seed(0))
    times = []
    for _ in range(10):
        t = time.perf_counter()
        prob.hvp(v)
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def time_density(prob: HessianProblem) -> tuple[float, int]:
    """Seconds and products of the default density (1 probe x 100 steps, 10,000 bins)."""
    calls, hvp = counted(prob)
    t = time.perf_counter()
    quad = slq(hvp, prob.dim, 1, 100, torch.Generator().manual_seed(0), prob.mask)
    spectral_density(quad)
    return time.perf_counter() - t, calls[0]


def time_layers(prob: HessianProblem) -> tuple[float, int]:
    """Seconds and products of every layer's top eigenvalue and trace (the defaults)."""
    n = 0
    t = time.perf_counter()
    for block in layer_blocks(prob).values():
        inner, calls = block_hvp(prob, block), [0]

        def hvp(v: torch.Tensor, inner=inner, calls=calls) -> torch.Tensor:
            """The block's product, counted."""
            calls[0] += 1
            return inner(v)

        lanczos_top(hvp, prob.dim, 1, 30, torch.Generator().manual_seed(0), block)
        hutchinson_trace(hvp, prob.dim, 100, torch.Generator().manual_seed(1), block,
                         rel_error=0.05)  # fmt: skip
        n += calls[0]
    return time.perf_counter() - t, n


def time_convexity_point(prob: HessianProblem) -> tuple[float, int, dict]:
    """Seconds, products and values of eigsh's lambda_max and lambda_min (tol 1e-2)."""
    t = time.perf_counter()
    ext = extreme_eigenvalues(prob, torch.Generator().manual_seed(0), tol=1e-2, maxiter=100)
    values = {"lambda_max": ext.lambda_max, "lambda_min": ext.lambda_min,
              "converged": list(ext.converged)}  # fmt: skip
    return time.perf_counter() - t, ext.hvps, values


def main() -> None:
    """Measure, print and write the JSON."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--train-steps", type=int, default=100)
    ap.add_argument("--batch", type=int, default=500)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "spectrum.json"))
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    load_start = os.getloadavg()[0]
    prob, dataset = demo_problem(args.train_steps, args.batch)
    rows: dict[str, list[float]] = {"hvp": [], "density": [], "layers": [], "convexity_point": []}
    hvps: dict[str, int] = {}
    values: dict = {}
    for r in range(args.repeats):  # interleaved: every measure once per round
        rows["hvp"].append(time_hvp(prob))
        seconds, hvps["density"] = time_density(prob)
        rows["density"].append(seconds)
        seconds, hvps["layers"] = time_layers(prob)
        rows["layers"].append(seconds)
        seconds, hvps["convexity_point"], values = time_convexity_point(prob)
        rows["convexity_point"].append(seconds)
        print(f"round {r + 1}: " + ", ".join(f"{k} {v[-1]:.3f} s" for k, v in rows.items()))
    hvp = statistics.median(rows["hvp"])
    out = {
        "command": "uv run --frozen python benchmarks/spectrum_speed.py " + " ".join(sys.argv[1:]),
        "date": dt.date.today().isoformat(),
        "machine": {
            "cpu": platform.processor() or platform.machine(),
            "cores": os.cpu_count(),
            "threads": args.threads,
            "torch": torch.__version__,
        },  # fmt: skip
        "load_average_1min": {"start": load_start, "end": os.getloadavg()[0]},
        "model": f"mlp 784-256-256-10 ({prob.dim} parameters), {args.train_steps} Adam steps",
        "data": f"{dataset}, {args.batch} training samples",
        "repeats": args.repeats,
        "hvp_seconds": hvp,
        "measures": {
            name: {
                "seconds": statistics.median(rows[name]),
                "hvps_made": hvps[name],
                "ratio_to_one_hvp": statistics.median(rows[name]) / hvp,
            }
            for name in ("density", "layers", "convexity_point")
        },  # fmt: skip
        "convexity_point_values": values,
        "convexity_map_5x5_estimate_seconds": 25 * statistics.median(rows["convexity_point"]),
    }
    Path(args.out).write_text(json.dumps(out, indent=2) + "\n")
    print(json.dumps(out["measures"], indent=2))


if __name__ == "__main__":
    main()
