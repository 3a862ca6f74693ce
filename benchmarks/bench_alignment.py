"""Wall time of weight matching and activation matching on the demo MLP (784-512-512-10).

Usage::

    uv run python benchmarks/bench_alignment.py [--repeats 7] [--train-steps 300] [--threads 1]
    uv run python benchmarks/bench_alignment.py --orders 32 --pair tiny-dense|fashion-lottery

Two demo MLPs are trained briefly (``--train-steps`` Adam steps of the demo
recipe, seeds 0 and 1) on Fashion-MNIST, or on scikit-learn's digits (upscaled
to 28x28, so the model is the same) where Fashion-MNIST is not installed; the
JSON says which. Then, in this one process, interleaved, ``weight_matching``
(Git Re-Basin, coordinate descent until a pass changes nothing, one visiting
order), weight matching best of ``MATCHING_RESTARTS`` seeded orders (what a
connectivity pair runs), ``activation_matching`` (correlation of the hidden
activations on the study's default 2000-sample training subset) and one
interpolation curve (25 alphas, 2000 train samples and the test set: a weight
pair evaluates one per distinct order) are timed ``--repeats`` times; medians are
reported (the machine is shared and noisy). Torch runs on ``--threads`` threads
(default 1: on a shared 2-core machine, two OpenMP threads wait on each other
and make small matrix products ~5x slower; the tests pin 1 thread too). As a
sanity check the midpoint test loss of the naive and aligned interpolations is
reported. Targets: weight matching under 0.5 s, activation matching under 0.3 s.
Results go to ``benchmarks/results/alignment.json``.

``--orders K --pair NAME`` measures instead how much weight matching's local
optimum depends on the visiting order, to choose ``matching_restarts``: on a
pair of runs (``tiny-dense``: the tiny study's dense seeds 0 and 1;
``fashion-lottery``: 784-512-512-10 lottery tickets at 90% sparsity, 2 rounds,
3 epochs on 10000 Fashion-MNIST images), K seeded orders each give a matching
objective and a test-loss barrier (Entezari; the study's default curve). For
N in 1, 2, 4, 8, 16, best-of-N (the highest objective among N orders drawn
from the K, 4000 draws) is summarised by its chosen barrier (mean, sd, min,
max) and how often it reaches the best objective of all K. Results go to
``benchmarks/results/alignment_orders_<pair>.json``.
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
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from analysis import api  # noqa: E402
from analysis.atomic import write_atomic  # noqa: E402
from analysis.connectivity import (  # noqa: E402
    MATCHING_RESTARTS,
    curve_barriers,
    eval_data,
    interpolation_curve,
    mix_weights,
    union_masks,
)
from analysis.data import load  # noqa: E402
from analysis.errors import DataError  # noqa: E402
from analysis.models import build_for  # noqa: E402
from analysis.permutation import (  # noqa: E402
    activation_matching,
    apply_permutation,
    identity_permutation,
    weight_matching,
    weight_matching_restarts,
)
from analysis.sparsity import sparsity_spec  # noqa: E402
from analysis.specs import DataSpec, ModelSpec, RunSpec, TrainSpec  # noqa: E402
from analysis.store import Store  # noqa: E402
from analysis.study import load_study  # noqa: E402
from analysis.train import evaluate, fit, sub_seed  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results" / "alignment.json"
ORDERS_RESULTS = ROOT / "benchmarks" / "results" / "alignment_orders_{pair}.json"
TARGETS = {"weight_matching_s": 0.5, "activation_matching_s": 0.3}
DEMO_MODEL = ModelSpec(arch="mlp", width=512, depth=2)
DEMO_TRAIN = TrainSpec(optimizer="adam", lr=1e-3, batch_size=128, epochs=10, schedule="cosine")


def demo_data() -> DataSpec:
    """Fashion-MNIST if it is installed, else digits."""
    try:
        load(DataSpec(name="fashion-mnist"))
        return DataSpec(name="fashion-mnist")
    except DataError:
        return DataSpec(name="digits")


def trained_mlp(data_spec: DataSpec, seed: int, steps: int) -> torch.nn.Module:
    """A demo MLP at its seeded init, trained ``steps`` Adam steps of the demo recipe."""
    data = load(data_spec)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(sub_seed(seed, "init"))
        model = build_for(DEMO_MODEL, data.info)
    fit(model, data, DEMO_TRAIN, seed=seed, max_steps=steps)
    return model.eval()


def machine() -> dict:
    """Platform, CPUs, torch version and threads, load average now."""
    return {
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "loadavg_at_end": os.getloadavg()[0],
    }


def time_matchers(model_a, model_b, ev, repeats: int) -> tuple[dict, dict]:
    """Interleaved timings of each matcher and of one curve: (times per repeat, permutations)."""
    ps = model_a.permutation_spec()
    state_a, state_b = model_a.state_dict(), model_b.state_dict()
    probe = copy.deepcopy(model_a)
    grid = np.linspace(0.0, 1.0, 25)
    jobs = {
        "weight_matching_s": lambda: weight_matching(ps, state_a, state_b),
        "weight_matching_best_of_n_s": lambda: weight_matching_restarts(
            ps, state_a, state_b, restarts=MATCHING_RESTARTS
        ),
        "activation_matching_s": lambda: activation_matching(model_a, model_b, ev.train_x),
        "curve_s": lambda: interpolation_curve(probe, state_a, state_b, {}, grid, ev, bn="none"),
    }
    out = {name: job() for name, job in jobs.items()}  # warm-up: imports, allocator, BLAS
    times: dict[str, list[float]] = {name: [] for name in jobs}
    for r in range(repeats):
        for name in list(jobs)[r % len(jobs) :] + list(jobs)[: r % len(jobs)]:
            t = time.perf_counter()
            out[name] = jobs[name]()
            times[name].append(time.perf_counter() - t)
    return times, out


def timing(args: argparse.Namespace) -> dict:
    """Train the demo pair, time the matchers interleaved, check the midpoints."""
    data_spec = demo_data()
    start = time.perf_counter()
    model_a = trained_mlp(data_spec, 0, args.train_steps)
    model_b = trained_mlp(data_spec, 1, args.train_steps)
    train_seconds = time.perf_counter() - start
    ev = eval_data(data_spec, train_subset=2000, test_subset=0, seed=0)
    ps = model_a.permutation_spec()
    state_a, state_b = model_a.state_dict(), model_b.state_dict()
    times, out = time_matchers(model_a, model_b, ev, args.repeats)
    medians = {k: statistics.median(v) for k, v in times.items()}

    midpoint = {}
    probe = build_for(DEMO_MODEL, load(data_spec).info)
    for name, perm in (
        ("naive", identity_permutation(ps, state_b)),
        ("weight", out["weight_matching_s"]),
        ("activation", out["activation_matching_s"]),
    ):
        probe.load_state_dict(mix_weights(state_a, apply_permutation(ps, perm, state_b), 0.5))
        midpoint[name] = evaluate(probe, ev.test_x, ev.test_y)[0]
    return {
        "command": " ".join(["uv run python benchmarks/bench_alignment.py", *sys.argv[1:]]),
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": machine(),
        "model": "mlp 784-512-512-10 (the demo MLP)",
        "dataset": data_spec.name,
        "data_source": load(data_spec).source,
        "train_steps_per_model": args.train_steps,
        "train_seconds": train_seconds,
        "activation_samples": len(ev.train_x),
        "matching_restarts": MATCHING_RESTARTS,
        "repeats": args.repeats,
        "medians": medians,
        "best_of_n_over_one_order": medians["weight_matching_best_of_n_s"]
        / medians["weight_matching_s"],
        "times": times,
        "targets": TARGETS,
        "meets_targets": {k: medians[k] < TARGETS[k] for k in TARGETS},
        "midpoint_test_loss": midpoint,
        "endpoint_test_loss": [
            evaluate(model_a, ev.test_x, ev.test_y)[0],
            evaluate(model_b, ev.test_x, ev.test_y)[0],
        ],
    }


def order_pair(name: str) -> tuple[RunSpec, RunSpec]:
    """The two runs of a named pair (see the module docstring)."""
    if name == "tiny-dense":
        study = load_study(ROOT / "assets" / "studies" / "tiny.toml")
        dense = [r for r in study.runs() if r.sparsity.method == "dense"]
        return dense[0], dense[1]
    lottery = RunSpec(
        data=DataSpec(name="fashion-mnist", train_size=10_000),
        model=DEMO_MODEL,
        train=TrainSpec(optimizer="adam", lr=1e-3, batch_size=128, epochs=3, schedule="cosine"),
        sparsity=sparsity_spec("lottery", 0.9, {"rounds": 2}),
        seed=0,
    )
    return lottery, lottery.replace(seed=1)


def best_of_n(objective: np.ndarray, barrier: np.ndarray, n: int, draws: int = 4000) -> dict:
    """Best-of-n (highest objective among n orders drawn without replacement): its barrier."""
    rng = np.random.default_rng(0)
    chosen = []
    for _ in range(draws):
        pick = rng.choice(len(objective), size=n, replace=False)
        chosen.append(pick[np.argmax(objective[pick])])
    chosen = np.asarray(chosen)
    b = barrier[chosen]
    return {
        "barrier_mean": float(b.mean()),
        "barrier_sd": float(b.std()),
        "barrier_min": float(b.min()),
        "barrier_max": float(b.max()),
        "reaches_best_objective": float(np.mean(objective[chosen] >= objective.max())),
    }


def orders(args: argparse.Namespace) -> dict:
    """Objective and barrier of each of K visiting orders on one pair; best-of-N over them."""
    store = Store(Path(tempfile.mkdtemp(prefix="bench-alignment-")) / "cache")
    spec_a, spec_b = order_pair(args.pair)
    start = time.perf_counter()
    run_a, run_b = api.get(spec_a, store=store), api.get(spec_b, store=store)
    train_seconds = time.perf_counter() - start
    ev = eval_data(spec_a.data, train_subset=2000, test_subset=0, seed=0)
    model = run_a.model()
    ps = model.permutation_spec()
    start = time.perf_counter()
    found = weight_matching_restarts(ps, run_a.state, run_b.state, restarts=args.orders, seed=0)
    matching_seconds = time.perf_counter() - start
    curves: dict[tuple, dict] = {}
    barrier, train_barrier = [], []
    for m in found:
        ident = tuple(m.perm[p].numpy().tobytes() for p in sorted(m.perm))
        if ident not in curves:
            masks = union_masks(run_a.masks, apply_permutation(ps, m.perm, run_b.masks))
            state_b = apply_permutation(ps, m.perm, run_b.state)
            grid = np.linspace(0.0, 1.0, 25)
            curve = interpolation_curve(model, run_a.state, state_b, masks, grid, ev, bn="none")
            curves[ident] = curve_barriers(curve)
        barrier.append(curves[ident]["test"]["barrier_entezari"])
        train_barrier.append(curves[ident]["train"]["barrier_entezari"])
    objective = np.asarray([m.objective for m in found])
    return {
        "command": " ".join(["uv run python benchmarks/bench_alignment.py", *sys.argv[1:]]),
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": machine(),
        "pair": [spec_a.label, spec_b.label],
        "train_seconds": train_seconds,
        "orders": args.orders,
        "matching_seconds_all_orders": matching_seconds,
        "distinct_permutations": len(curves),
        "objective": objective.tolist(),
        "test_barrier_entezari": barrier,
        "train_barrier_entezari": train_barrier,
        "passes": [m.passes for m in found],
        "restart_0": {"objective": float(objective[0]), "test_barrier": barrier[0]},
        "best_of_all": {
            "restart": int(np.argmax(objective)),
            "test_barrier": barrier[int(np.argmax(objective))],
        },
        "best_of_n": {
            n: best_of_n(objective, np.asarray(barrier), n)
            for n in (1, 2, 4, 8, 16)
            if n <= args.orders
        },
    }


def main() -> None:
    """Time the matchers (default) or measure the visiting orders of one pair; write the JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--train-steps", type=int, default=300)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--orders", type=int, default=0, help="measure K visiting orders")
    parser.add_argument("--pair", choices=("tiny-dense", "fashion-lottery"), default="tiny-dense")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if args.orders:
        result = orders(args)
        out = args.out or Path(str(ORDERS_RESULTS).format(pair=args.pair))
    else:
        result = timing(args)
        out = args.out or RESULTS
    print(json.dumps(result, indent=1))
    out.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(out, (json.dumps(result, indent=1) + "\n").encode(), what="benchmark results")


if __name__ == "__main__":
    main()
