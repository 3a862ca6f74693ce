"""Does the winning ticket beat its controls at 90%+ sparsity? (Frankle & Carbin 2019, MLPs.)

    uv run --frozen python benchmarks/lottery_controls.py [--seeds 0 1] [--epochs 8]
        [--train-size 20000] [--final 0.98] [--rounds 5] [--cache-dir cache/bench-lottery]

One lottery chain per seed (``rounds`` prune-rewind-retrain rounds to ``final``
sparsity, rewinding to initialisation, as Frankle & Carbin do for LeNet-300-100);
at each of the last three rounds (90%+ for the defaults) the three controls of
that round's ticket: ``lottery-reinit`` (its mask, a fresh random init),
``lottery-random-mask`` (a random mask of its per-layer sparsity, its init) and
``lottery-signs`` (its mask and signs, constant magnitudes; Zhou et al. 2019).
Every control reads the ticket from the store (never retrained). Also the
supermask (the ticket's masked init, untrained) and the mask overlap of ticket
and random mask (``analysis.masks``). Fashion-MNIST when installed
(``/usr/share/datasets/fashion-mnist``), else scikit-learn's digits; the JSON
says which. A 784-300-300-10 MLP, Adam at 1.2e-3 (Frankle & Carbin's rate),
constant schedule, batch 128, one thread. Writes benchmarks/results/lottery_controls.json.
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

import analysis.parts  # noqa: F401  (installs every kind)
from analysis import api
from analysis.atomic import write_atomic
from analysis.data import DEBIAN_FASHION_MNIST
from analysis.masks import MaskPairSpec, SupermaskSpec
from analysis.sparsity import sparsity_spec
from analysis.sparsity.lottery import round_sparsity
from analysis.specs import DataSpec, ModelSpec, RunSpec, TrainSpec
from analysis.store import Store

RESULTS = Path(__file__).parent / "results" / "lottery_controls.json"
CONTROLS = ("lottery-reinit", "lottery-random-mask", "lottery-signs")


def dataset() -> str:
    """fashion-mnist when the Debian package's files are installed, else digits."""
    return "fashion-mnist" if DEBIAN_FASHION_MNIST.is_dir() else "digits"


def base_spec(args: argparse.Namespace, seed: int) -> RunSpec:
    """The dense run of ``seed`` (the recipe every run of the benchmark shares)."""
    name = dataset()
    return RunSpec(
        data=DataSpec(name=name, train_size=args.train_size if name != "digits" else None),
        model=ModelSpec(arch="mlp", width=300, depth=2),
        train=TrainSpec(
            optimizer="adam", lr=1.2e-3, batch_size=128, epochs=args.epochs, schedule="constant"
        ),
        seed=seed,
    )


def at_round(base: RunSpec, method: str, args: argparse.Namespace, r: int) -> RunSpec:
    """``method``'s run at round ``r`` of the chain (the ticket, or a control of it)."""
    level = round_sparsity(args.final, args.rounds, r)
    return base.replace(sparsity=sparsity_spec(method, level, {"rounds": r}))


def measure(args: argparse.Namespace, store: Store) -> list[dict]:
    """One row per seed x round x method: test accuracy, achieved sparsity, seconds."""
    rows = []
    for seed in args.seeds:
        base = base_spec(args, seed)
        dense = api.get(base, store=store)
        rows.append(row(seed, 0, "dense", dense))
        for r in range(1, args.rounds + 1):
            ticket_spec = at_round(base, "lottery", args, r)
            ticket = api.get(ticket_spec, store=store)
            rows.append(row(seed, r, "lottery", ticket))
            print(f"seed {seed} round {r}: ticket {ticket.metrics['test_acc']:.4f}", flush=True)
            if r <= args.rounds - 3:
                continue
            for method in CONTROLS:
                run = api.get(at_round(base, method, args, r), store=store)
                rows.append(row(seed, r, method, run))
                print(f"  {method}: {run.metrics['test_acc']:.4f}", flush=True)
            sm = api.get(SupermaskSpec(run=ticket_spec), store=store).read("supermask.json")
            rows.append(
                {**row(seed, r, "supermask", ticket), "test_acc": sm["original"]["test_acc"]}
            )
            pair = MaskPairSpec(a=ticket_spec, b=at_round(base, "lottery-random-mask", args, r))
            rows[-1]["iou_ticket_vs_random_mask"] = api.get(pair, store=store).read("masks.json")[
                "iou"
            ]
            moved = api.get(MaskPairSpec(a=base, b=ticket_spec), store=store).read("masks.json")
            rows[-1]["dense_movement_by_ticket_mask"] = moved["a_by_b"]
    return rows


def row(seed: int, r: int, method: str, run) -> dict:
    """One measured run."""
    m = run.metrics
    return {
        "seed": seed,
        "round": r,
        "method": method,
        "sparsity": m["achieved_sparsity"],
        "test_acc": m["test_acc"],
        "seconds": m["seconds"],
        "data_source": m["data_source"],
    }


def verdict(rows: list[dict], rounds: int) -> list[dict]:
    """Per round of the last three: mean test accuracy per method over seeds, and the checks."""
    out = []
    for r in range(max(1, rounds - 2), rounds + 1):
        means = {}
        for method in ("lottery", *CONTROLS, "supermask"):
            accs = [x["test_acc"] for x in rows if x["round"] == r and x["method"] == method]
            if accs:
                means[method] = statistics.mean(accs)
        sparsity = next(x["sparsity"] for x in rows if x["round"] == r and x["method"] == "lottery")
        out.append(
            {
                "round": r,
                "sparsity": sparsity,
                "mean_test_acc": means,
                "ticket_beats_reinit": means["lottery"] > means["lottery-reinit"],
                "ticket_beats_random_mask": means["lottery"] > means["lottery-random-mask"],
            }
        )
    return out


def main() -> None:
    """Measure and write the JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--train-size", type=int, default=20000)
    parser.add_argument("--final", type=float, default=0.98)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--cache-dir", default="cache/bench-lottery")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    start = time.perf_counter()
    load = os.getloadavg()[0]
    rows = measure(args, Store(args.cache_dir))
    doc = {
        "command": "uv run --frozen python " + " ".join(sys.argv),
        "date": dt.date.today().isoformat(),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, load {load:.1f} at start",
        "dataset": rows[0]["data_source"],
        "recipe": {k: v for k, v in vars(args).items() if k != "cache_dir"},
        "verdict": verdict(rows, args.rounds),
        "rows": rows,
        "seconds": time.perf_counter() - start,
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(RESULTS, json.dumps(doc, indent=1).encode(), what="lottery controls")
    print(json.dumps(doc["verdict"], indent=1))


if __name__ == "__main__":
    main()
