"""How many torch threads each worker should have: jobs x threads on this machine's cores.

The demo MLP's training step (784-512-512-10, Adam, batch 128, Fashion-MNIST's shape)
runs in separate processes, as the executor's workers do, in three layouts:

- ``1x<cores>``: one job with every core's thread (the in-process executor);
- ``<cores>x1``: one job per core, one thread each (the executor's default now);
- ``<cores>x<cores>``: one job per core, each with every core's thread (what
  ``--workers N`` did when every worker copied the driver's thread count).

Rounds interleave the layouts; the figure of a layout is its total optimizer steps
per second across its concurrent jobs, median over rounds, with the load average.

    uv run --frozen python benchmarks/bench_threads.py [--rounds 3] [--steps 300]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

OUT = Path(__file__).resolve().parent / "results" / "threads.json"


def train_steps(threads: int, steps: int) -> float:
    """Steps/s of ``steps`` bare training steps of the demo MLP with ``threads`` torch threads."""
    import torch
    import torch.nn.functional as F
    from torch import nn

    torch.set_num_threads(threads)
    gen = torch.Generator().manual_seed(0)
    x = torch.rand(54000, 1, 28, 28, generator=gen)
    y = torch.randint(0, 10, (54000,), generator=gen)
    model = nn.Sequential(
        nn.Flatten(),
        nn.Linear(784, 512),
        nn.ReLU(),
        nn.Linear(512, 512),
        nn.ReLU(),
        nn.Linear(512, 10),
    )
    opt = torch.optim.Adam(model.parameters(), 1e-3)
    perm = torch.randperm(54000, generator=gen)
    for warm in (True, False):
        start = time.perf_counter()
        for b in range(20 if warm else steps):
            idx = perm[(b * 128) % 53000 : (b * 128) % 53000 + 128]
            loss = F.cross_entropy(model(x[idx]), y[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            float(loss.detach())
    return steps / (time.perf_counter() - start)


def layout(jobs: int, threads: int, steps: int) -> float:
    """Total steps/s of ``jobs`` concurrent processes of ``threads`` threads each."""
    here = str(Path(__file__).parent)
    code = (
        f"import sys; sys.path.insert(0, {here!r}); from bench_threads import train_steps; "
        f"print(train_steps({threads}, {steps}))"
    )
    env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
    procs = [
        subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True, env=env)
        for _ in range(jobs)
    ]
    rates = [float(p.communicate()[0].strip().splitlines()[-1]) for p in procs]
    return sum(rates)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--steps", type=int, default=300)
    args = parser.parse_args()
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    layouts = {
        f"1x{cores}": (1, cores),
        f"{cores}x1": (cores, 1),
        f"{cores}x{cores}": (cores, cores),
    }
    rates: dict[str, list[float]] = {name: [] for name in layouts}
    loads = []
    for _ in range(args.rounds):
        for name, (jobs, threads) in layouts.items():
            loads.append(os.getloadavg()[0])
            rates[name].append(layout(jobs, threads, args.steps))
            print(f"{name}: {rates[name][-1]:.1f} steps/s", flush=True)
    medians = {name: statistics.median(r) for name, r in rates.items()}
    base = medians[f"1x{cores}"]
    doc = {
        "what": "total training steps/s of the demo MLP across concurrent jobs, jobs x threads",
        "cores": cores,
        "rounds": args.rounds,
        "steps": args.steps,
        "steps_per_s_median": medians,
        "steps_per_s_all": rates,
        "ratio_to_one_job": {name: m / base for name, m in medians.items()},
        "load_average_during": [round(x, 2) for x in loads],
        "command": "uv run --frozen python benchmarks/bench_threads.py",
    }
    OUT.write_text(json.dumps(doc, indent=1))
    print(json.dumps(doc["ratio_to_one_job"], indent=1))


if __name__ == "__main__":
    main()
