"""DessiLBI check: the support grows along the path, and the early-stopped subnet trains as well
as magnitude pruning at the same sparsity (Fu et al. 2020, Section 5.3).

Usage (from the repository root)::

    python3 benchmarks/dessilbi_check.py                        # Fashion-MNIST (or digits), MLP + LeNet
    python3 benchmarks/dessilbi_check.py --archs mlp --train-size 5000 --epochs 5   # quicker

For each architecture (a 784-256-256-10 MLP and LeNet-5), on Fashion-MNIST when it
is installed (else scikit-learn's digits; the JSON says which), with the recipe
Adam 1e-3, batch 128, cosine, ``--epochs`` epochs on ``--train-size`` training
images, it trains:

- ``dense``;
- ``dessilbi`` at ``--sparsity`` of the filters/neurons of every layer (its
  path: SGD momentum 0.9, lr 0.1, kappa 1, lambda 1, and ``--nu``: the
  authors' 100 grows the support over some 1,000s of steps, so a short run
  uses a smaller coupling), its subnet retrained from the initialisation
  (``retrain = "init"``) and, with ``--path-retrain``, from the path;
- ``magnitude`` (global, output layer kept, 5 fine-tuning epochs) at the weight
  sparsity dessilbi achieved (read from its masks, rounded to 3 decimals);
- ``l1-structured`` at the same channel fraction (5 fine-tuning epochs).

It reports the support of Gamma per layer and epoch, the early-stopped epoch,
and the test accuracies, with the gap ``dessilbi - magnitude`` in points. Results go
to ``--json`` (default ``benchmarks/results/dessilbi.json``).
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

import analysis.parts  # noqa: E402,F401  (installs the kinds)
from analysis import api  # noqa: E402
from analysis.sparsity import sparsity_spec  # noqa: E402
from analysis.specs import DataSpec, ModelSpec, RunSpec, TrainSpec  # noqa: E402
from analysis.store import Store  # noqa: E402


def dataset() -> str:
    """fashion-mnist where its files are found, else digits."""
    from analysis.data import load
    from analysis.errors import DataError

    try:
        load(DataSpec(name="fashion-mnist", train_size=10), download=False)
        return "fashion-mnist"
    except DataError:
        return "digits"


def base_spec(arch: str, data: str, args: argparse.Namespace) -> RunSpec:
    """The dense run of ``arch`` with the check's recipe."""
    return RunSpec(
        data=DataSpec(name=data, train_size=args.train_size),
        model=ModelSpec(arch=arch, width=256, depth=2),
        train=TrainSpec(optimizer="adam", lr=1e-3, batch_size=128, epochs=args.epochs),
    )


def record(run, t0: float) -> dict:
    """Accuracy and sparsity of one run."""
    m = run.metrics
    return {
        "label": m["label"],
        "test_acc": m["test_acc"],
        "achieved_sparsity": m["achieved_sparsity"],
        "layer_sparsity": m["layer_sparsity"],
        "seconds": round(time.perf_counter() - t0, 1),
    }


def check_arch(arch: str, data: str, store: Store, args: argparse.Namespace) -> dict:
    """Every run of one architecture, and the path of its dessilbi run."""
    base = base_spec(arch, data, args)
    out: dict = {"arch": arch}
    t0 = time.perf_counter()
    out["dense"] = record(api.get(base, store=store), t0)
    modes = ["init", "path"] if args.path_retrain else ["init"]
    for mode in modes:
        t0 = time.perf_counter()
        opts = {"nu": args.nu, "retrain": mode}
        spec = base.replace(sparsity=sparsity_spec("dessilbi", args.sparsity, opts))
        run = api.get(spec, store=store)
        out[f"dessilbi_{mode}"] = record(run, t0)
        notes = run.metrics["notes"]
        out["path"] = {
            "epochs": notes["path"]["epochs"],
            "test_acc": notes["path"]["test_acc"],
            "support": {n: layer["support"] for n, layer in notes["path"]["layers"].items()},
            "stop_epoch": notes["stop_epoch"],
            "support_reached": notes["support_reached"],
        }
        print(arch, mode, "path support:", json.dumps(out["path"]["support"]), flush=True)
    weight_sparsity = round(out["dessilbi_init"]["achieved_sparsity"], 3)
    t0 = time.perf_counter()
    magnitude = base.replace(sparsity=sparsity_spec("magnitude", weight_sparsity))
    out["magnitude"] = record(api.get(magnitude, store=store), t0)
    t0 = time.perf_counter()
    l1 = base.replace(sparsity=sparsity_spec("l1-structured", args.sparsity))
    out["l1_structured"] = record(api.get(l1, store=store), t0)
    out["gap_points_vs_magnitude"] = round(
        100 * (out["dessilbi_init"]["test_acc"] - out["magnitude"]["test_acc"]), 2
    )
    for key in ("dense", *[f"dessilbi_{m}" for m in modes], "magnitude", "l1_structured"):
        r = out[key]
        print(f"{arch:6s} {key:15s} acc {r['test_acc']:.4f}  sparsity {r['achieved_sparsity']:.3f}")
    return out


def public_args(argv: list[str]) -> list[str]:
    """The command-line arguments without ``--cache-dir`` and its value (a local path)."""
    out, skip = [], False
    for arg in argv:
        if skip or arg.startswith("--cache-dir"):
            skip = arg == "--cache-dir" and not skip
            continue
        out.append(arg)
    return out


def main() -> None:
    """Run the check and write the JSON."""
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--archs", nargs="+", default=["mlp", "lenet"])
    p.add_argument("--sparsity", type=float, default=0.5, help="fraction of units removed")
    p.add_argument("--nu", type=float, default=20.0)
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--train-size", type=int, default=10000)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--path-retrain", action="store_true", help="also retrain from the path")
    p.add_argument("--cache-dir", default=None, help="store (default: a fresh temporary one)")
    p.add_argument("--json", default=str(ROOT / "benchmarks/results/dessilbi.json"))
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    store = Store(args.cache_dir or tempfile.mkdtemp(prefix="dessilbi-check-"))
    data = dataset()
    doc = {
        "command": " ".join(["python3 benchmarks/dessilbi_check.py", *public_args(sys.argv[1:])]),
        "dataset": data,
        "settings": {
            "train_size": args.train_size,
            "epochs": args.epochs,
            "recipe": "adam 1e-3, batch 128, cosine",
            "sparsity_channels": args.sparsity,
            "dessilbi": {"nu": args.nu, "kappa": 1.0, "lr": 0.1, "lam": 1.0, "momentum": 0.9},
        },
        "machine": {"platform": platform.platform(), "threads": args.threads},
        "torch": torch.__version__,
        "results": [check_arch(arch, data, store, args) for arch in args.archs],
    }
    Path(args.json).write_text(json.dumps(doc, indent=1) + "\n")
    print("wrote", args.json)


if __name__ == "__main__":
    main()
