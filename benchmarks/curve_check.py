"""Curved paths and ensembles on the Fashion-MNIST MLP: the curve's barrier against the line's.

Usage::

    uv run python benchmarks/curve_check.py [--epochs 5] [--curve-epochs 3] [--threads 1]

Garipov et al. 2018 report that two independently trained networks, joined
by the straight line only over a loss barrier, are joined by a quadratic
Bezier curve of nearly constant loss once its bend is trained. This trains the
demo MLP (784-512-512-10, Adam 1e-3, cosine, batch 128) for ``--epochs`` epochs
on Fashion-MNIST (digits where it is not installed; the JSON says which) for
seeds 0 and 1, then asks the ``curve`` kind for a one-bend Bezier curve trained
``--curve-epochs`` epochs between them, naive and weight-matched, in a
temporary store. Reported per alignment: the test and train loss barriers of
the straight line and of the curve, whether the curve's ends equal the line's
exactly, the bend's training history, and (Entezari et al. 2022) the
endpoints' ensemble accuracy beside the midpoint's. Checks: the curve's test
barrier is below a quarter of the naive line's; the ends are exact. Results go
to ``benchmarks/results/curves.json``.
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
from analysis.connectivity import ConnectivitySpec, CurveSpec  # noqa: E402
from analysis.data import load  # noqa: E402
from analysis.errors import DataError  # noqa: E402
from analysis.specs import DataSpec, ModelSpec, RunSpec, TrainSpec  # noqa: E402
from analysis.store import Store  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results" / "curves.json"
MODEL = ModelSpec(arch="mlp", width=512, depth=2)
KEYS = ("train_loss", "test_loss", "train_acc", "test_acc")


def data_spec() -> DataSpec:
    """Fashion-MNIST if it is installed, else digits."""
    try:
        load(DataSpec(name="fashion-mnist"))
        return DataSpec(name="fashion-mnist")
    except DataError:
        return DataSpec(name="digits")


def curve_record(store: Store, line: ConnectivitySpec, epochs: int) -> dict:
    """The line's and the curve's barriers, exact ends, history, ensemble and midpoint."""
    start = time.perf_counter()
    doc = api.get(CurveSpec(line=line, epochs=epochs), store=store).read("curve.json")
    pair = api.get(line, store=store).read("connectivity.json")
    straight = doc["line"]
    return {
        "line_test_barrier": straight["barriers"]["test"]["barrier_entezari"],
        "curve_test_barrier": doc["barriers"]["test"]["barrier_entezari"],
        "line_train_barrier": straight["barriers"]["train"]["barrier_entezari"],
        "curve_train_barrier": doc["barriers"]["train"]["barrier_entezari"],
        "ends_exact": all(
            doc["curve"][k][i] == straight["curve"][k][i] for k in KEYS for i in (0, -1)
        ),
        "curve_test_loss": doc["curve"]["test_loss"],
        "line_test_loss": straight["curve"]["test_loss"],
        "history": doc["history"],
        "ensemble_test_acc": pair["ensemble"]["test_acc"],
        "midpoint_test_acc": pair["midpoint"]["test_acc"],
        "ends_test_acc": [pair["curve"]["test_acc"][0], pair["curve"]["test_acc"][-1]],
        "seconds": time.perf_counter() - start,
    }


def main() -> None:
    """Train the seeds, the curves, write the JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--curve-epochs", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    data = data_spec()
    train = TrainSpec(optimizer="adam", lr=1e-3, batch_size=128, epochs=args.epochs)
    runs = [RunSpec(data=data, model=MODEL, train=train, seed=s) for s in (0, 1)]
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        store = Store(Path(tmp) / "cache")
        curves = {
            a: curve_record(
                store,
                ConnectivitySpec(run_a=runs[0], run_b=runs[1], alignment=a),
                args.curve_epochs,
            )
            for a in ("naive", "weight")
        }
    naive = curves["naive"]["line_test_barrier"]
    doc = {
        "what": "Bezier curves (1 bend) vs the straight line, and ensembles vs the midpoint",
        "when": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "command": "uv run python benchmarks/curve_check.py " + " ".join(sys.argv[1:]),
        "data": data.name,
        "model": "mlp 784-512-512-10",
        "epochs": args.epochs,
        "curve_epochs": args.curve_epochs,
        "curves": curves,
        "checks": {
            "curve_far_below_the_naive_line": all(
                c["curve_test_barrier"] < 0.25 * naive for c in curves.values()
            ),
            "ends_exact": all(c["ends_exact"] for c in curves.values()),
        },
        "seconds": time.perf_counter() - start,
        "machine": {
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
            "torch": torch.__version__,
            "torch_threads": torch.get_num_threads(),
        },
    }
    write_atomic(RESULTS, json.dumps(doc, indent=1).encode(), what="the curve check")
    print(json.dumps({"checks": doc["checks"], "seconds": round(doc["seconds"], 1)}))


if __name__ == "__main__":
    main()
