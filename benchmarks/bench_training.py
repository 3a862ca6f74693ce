"""Training throughput of the demo MLP, and the wall time of the demo study.

Usage::

    uv run python benchmarks/bench_training.py [--repeats 5] [--steps 40]
    uv run python benchmarks/bench_training.py --demo      # also time the demo study, cold then warm

Throughput: samples/s of prunescope's training loop (``analysis.train.fit``,
with its callbacks: masks kept at 90% sparsity, snapshots, divergence guard)
against a plain PyTorch loop on the same model, data and batch size, in one
process, interleaved, medians over repeats (the machine is shared and noisy).
The demo study is timed with ``prunescope compute`` in a fresh cache (cold) and
again (warm: everything served from the store). Results go to
``benchmarks/results/training.json``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from analysis.data import load  # noqa: E402
from analysis.models import build_for  # noqa: E402
from analysis.sparsity.base import masks_from_scores  # noqa: E402
from analysis.specs import DataSpec, ModelSpec, TrainSpec  # noqa: E402
from analysis.train import fit  # noqa: E402


def plain_loop(model, x, y, batch: int, steps: int) -> float:
    """Seconds for ``steps`` Adam steps of a bare PyTorch loop."""
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    perm = torch.randperm(len(x))
    t = time.perf_counter()
    for s in range(steps):
        idx = perm[s * batch : (s + 1) * batch]
        loss = F.cross_entropy(model(x[idx]), y[idx])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return time.perf_counter() - t


def prunescope_loop(model, data, batch: int, steps: int, masks) -> float:
    """Seconds for ``steps`` steps of analysis.train.fit (one epoch of a subset, no eval cost counted)."""
    sub = type(data)(
        info=data.info,
        source=data.source,
        train_x=data.train_x[: batch * steps],
        train_y=data.train_y[: batch * steps],
        val_x=data.val_x[:0],
        val_y=data.val_y[:0],
        test_x=data.test_x[:0],
        test_y=data.test_y[:0],
    )
    spec = TrainSpec(epochs=1, batch_size=batch, optimizer="adam")
    t = time.perf_counter()
    fit(model, sub, spec, seed=0, masks=masks)
    return time.perf_counter() - t


def main() -> None:
    """Run the benchmark and write the JSON result."""
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--steps", type=int, default=40)
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--demo", action="store_true", help="also time the demo study (cold and warm)")
    args = ap.parse_args()
    data = load(DataSpec(name="fashion-mnist"))
    model = build_for(ModelSpec(), data.info)
    params = dict(model.named_parameters())
    masks = masks_from_scores({n: params[n].detach().abs() for n in model.prunable_names()}, 0.9)
    plain, ours = [], []
    n = args.batch * args.steps
    plain_loop(model, data.train_x, data.train_y, args.batch, 5)  # warm-up
    for _ in range(args.repeats):
        plain.append(
            n
            / plain_loop(
                build_for(ModelSpec(), data.info),
                data.train_x,
                data.train_y,
                args.batch,
                args.steps,
            )
        )
        ours.append(
            n
            / prunescope_loop(
                build_for(ModelSpec(), data.info), data, args.batch, args.steps, masks
            )
        )
    result = {
        "command": "uv run python benchmarks/bench_training.py" + (" --demo" if args.demo else ""),
        "date": time.strftime("%Y-%m-%d %H:%M"),
        "model": f"MLP 784-512-512-10, Adam, batch {args.batch}, fp32, {torch.get_num_threads()} threads",
        "plain_samples_per_s": statistics.median(plain),
        "prunescope_samples_per_s": statistics.median(ours),
        "ratio_prunescope_over_plain": statistics.median(ours) / statistics.median(plain),
        "all_plain": plain,
        "all_prunescope": ours,
    }
    if args.demo:
        with tempfile.TemporaryDirectory() as cache:
            cmd = [
                sys.executable,
                "-m",
                "dashboard.cli",
                "compute",
                str(ROOT / "assets/studies/demo.toml"),
                "--cache-dir",
                cache,
                "-q",
            ]
            t = time.perf_counter()
            subprocess.run(cmd, check=True, cwd=ROOT)
            cold = time.perf_counter() - t
            t = time.perf_counter()
            subprocess.run(cmd, check=True, cwd=ROOT)
            warm = time.perf_counter() - t
        result.update({"demo_cold_seconds": cold, "demo_warm_seconds": warm})
    print(json.dumps(result, indent=1))
    out = ROOT / "benchmarks/results/training.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
