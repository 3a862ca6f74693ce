"""Wall time of weight matching and activation matching on the demo MLP (784-512-512-10).

Usage::

    uv run python benchmarks/bench_alignment.py [--repeats 7] [--train-steps 300] [--threads 1]

Two demo MLPs are trained briefly (``--train-steps`` Adam steps of the demo
recipe, seeds 0 and 1) on Fashion-MNIST, or on scikit-learn's digits (upscaled
to 28x28, so the model is the same) where Fashion-MNIST is not installed; the
JSON says which. Then, in this one process, interleaved, ``weight_matching``
(Git Re-Basin, coordinate descent until a pass changes nothing) and
``activation_matching`` (correlation of the hidden activations on the study's
default 2000-sample training subset) are timed ``--repeats`` times; medians are
reported (the machine is shared and noisy). Torch runs on ``--threads`` threads
(default 1: on a shared 2-core machine, two OpenMP threads wait on each other
and make small matrix products ~5x slower; the tests pin 1 thread too). As a
sanity check the midpoint test loss of the naive and aligned interpolations is
reported. Targets: weight matching under 0.5 s, activation matching under 0.3 s.
Results go to ``benchmarks/results/alignment.json``.
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

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from analysis.connectivity import eval_data, mix_weights  # noqa: E402
from analysis.data import load  # noqa: E402
from analysis.errors import DataError  # noqa: E402
from analysis.models import build_for  # noqa: E402
from analysis.permutation import (  # noqa: E402
    activation_matching,
    apply_permutation,
    identity_permutation,
    weight_matching,
)
from analysis.specs import DataSpec, ModelSpec, TrainSpec  # noqa: E402
from analysis.train import evaluate, fit, sub_seed  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results" / "alignment.json"
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


def main() -> None:
    """Train the pair, time both matchers interleaved, write the JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--train-steps", type=int, default=300)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    data_spec = demo_data()
    start = time.perf_counter()
    model_a = trained_mlp(data_spec, 0, args.train_steps)
    model_b = trained_mlp(data_spec, 1, args.train_steps)
    train_seconds = time.perf_counter() - start
    ev = eval_data(data_spec, train_subset=2000, test_subset=0, seed=0)
    ps = model_a.permutation_spec()
    state_a, state_b = model_a.state_dict(), model_b.state_dict()

    # warm-up: imports (scipy), allocator and BLAS initialisation are not what we measure
    weight_matching(ps, state_a, state_b)
    activation_matching(model_a, model_b, ev.train_x)
    times: dict[str, list[float]] = {"weight_matching_s": [], "activation_matching_s": []}
    for r in range(args.repeats):
        order = ("weight", "activation") if r % 2 == 0 else ("activation", "weight")
        for which in order:
            t = time.perf_counter()
            if which == "weight":
                perm_w = weight_matching(ps, state_a, state_b)
            else:
                perm_a = activation_matching(model_a, model_b, ev.train_x)
            times[f"{which}_matching_s"].append(time.perf_counter() - t)
    medians = {k: statistics.median(v) for k, v in times.items()}

    midpoint = {}
    probe = build_for(DEMO_MODEL, load(data_spec).info)
    for name, perm in (
        ("naive", identity_permutation(ps, state_b)),
        ("weight", perm_w),
        ("activation", perm_a),
    ):
        probe.load_state_dict(mix_weights(state_a, apply_permutation(ps, perm, state_b), 0.5))
        midpoint[name] = evaluate(probe, ev.test_x, ev.test_y)[0]

    result = {
        "command": " ".join(["uv run python benchmarks/bench_alignment.py", *sys.argv[1:]]),
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": {
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
            "torch": torch.__version__,
            "torch_threads": torch.get_num_threads(),
            "loadavg_at_end": os.getloadavg()[0],
        },
        "model": "mlp 784-512-512-10 (the demo MLP)",
        "dataset": data_spec.name,
        "data_source": load(data_spec).source,
        "train_steps_per_model": args.train_steps,
        "train_seconds": train_seconds,
        "activation_samples": len(ev.train_x),
        "repeats": args.repeats,
        "medians": medians,
        "times": times,
        "targets": TARGETS,
        "meets_targets": {k: medians[k] < TARGETS[k] for k in TARGETS},
        "midpoint_test_loss": midpoint,
        "endpoint_test_loss": [
            evaluate(model_a, ev.test_x, ev.test_y)[0],
            evaluate(model_b, ev.test_x, ev.test_y)[0],
        ],
    }
    print(json.dumps(result, indent=1))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
