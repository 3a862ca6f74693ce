"""Wall time of the demo study's runs through each executor, and the executor's overhead per task.

Usage::

    uv run python benchmarks/bench_executor.py                    # runs part, train_size 2000
    uv run python benchmarks/bench_executor.py --train-size 0 --parts runs representations

The study (default: the demo, on Fashion-MNIST, digits where it is missing) is
computed from scratch into a fresh temporary store by each back end in turn:
in-process (the default executor), Ray with 2 workers (a private local Ray on
127.0.0.1; its start-up is timed on its own) and, unless ``--no-pool``, the
local process pool with 2 workers. ``--train-size`` trains on a seeded subset
of the training set so the three passes fit a time box (0: the whole set); the
default is the runs part only.

Overhead per task: ``--tasks`` trivial jobs (a toy kind whose compute returns a
one-number JSON, committed to the store like any result) through each back end,
one ``run([spec])`` at a time (latency: submit, rebuild the spec in a worker,
commit, report back), median; and all at once (seconds per task with the
workers busy). Before the study each back end runs one trivial job per worker
(``warm_workers_s``): a fresh worker's first job pays its imports (torch, the
analysis modules, umap), which the study time then leaves out (the in-process
driver has them already). Writes ``benchmarks/results/executor.json``.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
# Workers (spawned, or started by Ray) import this module to rebuild the toy spec.
os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))

from analysis import api  # noqa: E402
from analysis.specs import SPEC  # noqa: E402
from analysis.store import Store  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results" / "executor.json"


@dataclass(**SPEC)
class NoopSpec:
    """A trivial job: the executor's own cost with nothing to compute."""

    kind: ClassVar[str] = "bench_noop"
    i: int = 0
    tag: str = ""

    @property
    def label(self) -> str:
        """Human label."""
        return f"noop {self.i}"


def compute_noop(spec: NoopSpec, ctx: api.Context) -> tuple[dict, dict]:
    """Return a one-number result."""
    return {"n.json": {"i": spec.i}}, {}


api.install([api.Kind("bench_noop", NoopSpec, compute_noop)])


def executors(pool: bool) -> list[tuple[str, object]]:
    """(name, factory) of the back ends to time, in order."""
    from analysis.executor import InProcess, ProcessPool, RayExecutor

    out = [("in-process", InProcess), ("ray-2", lambda: RayExecutor(None, workers=2))]
    if pool:
        out.append(("pool-2", lambda: ProcessPool(2)))
    return out


def overhead(executor, root: Path, tasks: int, tag: str) -> dict:
    """Seconds per trivial job through ``executor``: one at a time (median) and all at once."""
    from benchmarks.bench_executor import NoopSpec as Noop  # importable by the workers

    store = Store(root)
    latency = []
    for i in range(tasks):
        t = time.perf_counter()
        outcome = executor.run([Noop(i=i, tag=tag)], store).of(Noop(i=i, tag=tag))
        latency.append(time.perf_counter() - t)
        assert outcome.status == "done", outcome
    batch = [Noop(i=i, tag=tag + "-batch") for i in range(tasks)]
    t = time.perf_counter()
    result = executor.run(batch, store)
    batch_s = time.perf_counter() - t
    assert all(o.status == "done" for o in result.jobs.values())
    return {
        "latency_median_s": round(statistics.median(latency), 4),
        "latency_first_s": round(latency[0], 4),
        "batch_s_per_task": round(batch_s / tasks, 4),
    }


def main() -> None:
    """Time the study through each back end, then the per-task overhead; write the JSON."""
    from analysis.plan import compute_study
    from analysis.study import load_study, with_available_data

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--study", default=str(ROOT / "assets" / "studies" / "demo.toml"))
    ap.add_argument("--parts", nargs="+", default=["runs"], help="parts of the study to compute")
    ap.add_argument("--train-size", type=int, default=2000, help="0: the whole training set")
    ap.add_argument("--tasks", type=int, default=30, help="trivial jobs for the overhead")
    ap.add_argument("--no-pool", action="store_true", help="skip the process pool")
    ap.add_argument("--data-root", help="folder holding datasets (default: $PRUNESCOPE_DATA)")
    ap.add_argument("--out", type=Path, default=RESULTS)
    args = ap.parse_args()
    torch.set_num_threads(1)  # one thread per worker and for the driver: 2 cores, 2 workers

    study, note = with_available_data(load_study(args.study), args.data_root)
    if args.train_size:
        data = dataclasses.replace(study.data, train_size=args.train_size)
        study = dataclasses.replace(study, data=data)
    runs = len(study.runs())
    print(
        f"{study.name} on {study.data.name} (train_size {study.data.train_size}): "
        f"{runs} runs, parts {args.parts}",
        flush=True,
    )
    out: dict = {
        "command": "uv run python benchmarks/bench_executor.py " + " ".join(sys.argv[1:]),
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "study": study.name,
        "dataset": study.data.name,
        "train_size": study.data.train_size,
        "parts": args.parts,
        "runs": runs,
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "torch": torch.__version__,
            "torch_threads_per_worker": 1,
            "load_avg_at_start": [round(x, 2) for x in os.getloadavg()],
        },
        "notes": ([note.splitlines()[0]] if note else [])
        + [
            "one pass per back end, in sequence (not interleaved): compare with the load "
            "averages; the lottery's earlier rounds are runs too, so more networks train "
            "than 'runs' counts"
        ],
        "backends": {},
    }
    for name, factory in executors(not args.no_pool):
        with tempfile.TemporaryDirectory(prefix="bench-exec-") as tmp:
            t = time.perf_counter()
            executor = factory()
            start_s = time.perf_counter() - t
            try:
                # One trivial job per worker first: a worker's first job pays its imports
                # (torch, the analysis modules, umap), timed here and not in the study.
                from benchmarks.bench_executor import NoopSpec as Noop

                t = time.perf_counter()
                warm = [Noop(i=i, tag=name + "-warm") for i in range(executor.parallelism)]
                executor.run(warm, Store(Path(tmp) / "noop"))
                warm_s = time.perf_counter() - t
                t = time.perf_counter()
                reports = [
                    compute_study(study, Store(Path(tmp) / "cache"), only=p, executor=executor)
                    for p in args.parts
                ]
                study_s = time.perf_counter() - t
                failed = [f for r in reports for f in r.failed]
                if failed:
                    raise SystemExit(f"{name}: failed jobs {failed}")
                cost = overhead(executor, Path(tmp) / "noop", args.tasks, name)
            finally:
                executor.close()
        row = {
            "start_s": round(start_s, 2),
            "warm_workers_s": round(warm_s, 2),
            "study_s": round(study_s, 2),
            **cost,
        }
        out["backends"][name] = row
        print(f"{name}: {row}", flush=True)
    base = out["backends"]["in-process"]["study_s"]
    out["ratios_vs_in_process"] = {
        name: round(row["study_s"] / base, 3) for name, row in out["backends"].items()
    }
    out["machine"]["load_avg_at_end"] = [round(x, 2) for x in os.getloadavg()]
    args.out.write_text(json.dumps(out, indent=1) + "\n")
    print(json.dumps(out["ratios_vs_in_process"]), f"-> {args.out}")


if __name__ == "__main__":
    main()
