"""REPAIR on an MLP without BatchNorm: barriers with and without it, and the variance collapse.

Usage::

    uv run python benchmarks/repair_check.py [--epochs 5] [--seeds 0 1] [--threads 1]

Jordan et al. 2022 (REPAIR) report, for MLPs and plain VGGs, that after
permutation alignment the interpolated network's hidden units lose variance
(variance collapse), and that renormalising each unit's pre-activation to the
endpoints' interpolated statistics lowers the barrier further. This trains the
demo MLP (784-512-512-10, Adam 1e-3, cosine, batch 128) for ``--epochs`` epochs
on Fashion-MNIST (scikit-learn's digits where Fashion-MNIST is not installed;
the JSON says which) for each seed, then asks the ``connectivity`` kind for
every pair of seeds (against the first), every alignment, without and with
REPAIR (25 alphas, the study defaults), in a temporary store. Reported per
alignment: the test and train loss barriers (Entezari), the test accuracy
barrier, the variance-collapse ratios at alpha 0.5 before and after REPAIR, and
the checks: REPAIR lowers the aligned (weight, activation) test-loss barrier;
the pre-activation ratio is below 1 before REPAIR and within 0.02 of 1 after.
Results go to ``benchmarks/results/repair.json``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import analysis.parts  # noqa: E402,F401  (installs every analysis kind)
from analysis import api  # noqa: E402
from analysis.atomic import write_atomic  # noqa: E402
from analysis.connectivity import ALIGNMENTS, ConnectivitySpec  # noqa: E402
from analysis.data import load  # noqa: E402
from analysis.errors import DataError  # noqa: E402
from analysis.specs import DataSpec, ModelSpec, RunSpec, TrainSpec  # noqa: E402
from analysis.store import Store  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results" / "repair.json"
MODEL = ModelSpec(arch="mlp", width=512, depth=2)


def data_spec() -> DataSpec:
    """Fashion-MNIST if it is installed, else digits."""
    try:
        load(DataSpec(name="fashion-mnist"))
        return DataSpec(name="fashion-mnist")
    except DataError:
        return DataSpec(name="digits")


def pair_record(store: Store, run_a: RunSpec, run_b: RunSpec, alignment: str) -> dict:
    """Barriers without and with REPAIR, and the variance collapse, of one aligned pair."""
    out: dict = {}
    for repair in (False, True):
        spec = ConnectivitySpec(run_a=run_a, run_b=run_b, alignment=alignment, repair=repair)
        start = time.perf_counter()
        doc = api.get(spec, store=store).read("connectivity.json")
        name = "repair" if repair else "plain"
        out[name] = {
            "test_loss_barrier": doc["barriers"]["test"]["barrier_entezari"],
            "train_loss_barrier": doc["barriers"]["train"]["barrier_entezari"],
            "test_accuracy_barrier": doc["barriers"]["test"]["accuracy_barrier"],
            "midpoint_test_acc": doc["curve"]["test_acc"][len(doc["curve"]["alphas"]) // 2],
            "seconds": time.perf_counter() - start,
        }
        if repair:
            out["variance"] = doc["variance"]
    return out


def checks(pairs: dict) -> dict:
    """The issue's checks over every pair and alignment."""
    lowers, collapse, restored = [], [], []
    for by_alignment in pairs.values():
        for alignment, rec in by_alignment.items():
            if alignment != "naive":
                lowers.append(
                    rec["repair"]["test_loss_barrier"] < rec["plain"]["test_loss_barrier"]
                )
            collapse += [r < 1.0 for r in rec["variance"]["pre"]["before"]]
            restored += [abs(r - 1.0) < 0.02 for r in rec["variance"]["pre"]["after"]]
    return {
        "repair_lowers_the_aligned_barrier": all(lowers),
        "collapse_before_repair": all(collapse),
        "ratio_near_1_after_repair": all(restored),
    }


def main() -> None:
    """Train the seeds, compute every pair, write the JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    data = data_spec()
    train = TrainSpec(optimizer="adam", lr=1e-3, batch_size=128, epochs=args.epochs)
    runs = [RunSpec(data=data, model=MODEL, train=train, seed=s) for s in args.seeds]
    start = time.perf_counter()
    pairs: dict = {}
    with tempfile.TemporaryDirectory() as tmp:
        store = Store(Path(tmp) / "cache")
        accs = {r.seed: api.get(r, store=store).metrics["test_acc"] for r in runs}
        for run_b in runs[1:]:
            pairs[f"{runs[0].seed}~{run_b.seed}"] = {
                a: pair_record(store, runs[0], run_b, a) for a in ALIGNMENTS
            }
    doc = {
        "what": "REPAIR on the Fashion-MNIST MLP: barriers with/without it, variance collapse",
        "when": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "command": "uv run python benchmarks/repair_check.py " + " ".join(sys.argv[1:]),
        "data": data.name,
        "model": "mlp 784-512-512-10",
        "epochs": args.epochs,
        "endpoint_test_acc": accs,
        "pairs": pairs,
        "checks": checks(pairs),
        "seconds": time.perf_counter() - start,
        "machine": {
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
            "torch": torch.__version__,
            "torch_threads": torch.get_num_threads(),
        },
    }
    write_atomic(RESULTS, json.dumps(doc, indent=1).encode(), what="the REPAIR check")
    print(json.dumps({"checks": doc["checks"], "seconds": round(doc["seconds"], 1)}))


if __name__ == "__main__":
    main()
