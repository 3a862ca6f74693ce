"""A study's plan against what its computation took, and the width sweep's barrier figures.

    uv run python benchmarks/sweep_check.py assets/studies/width-sweep.toml --cache-dir DIR \\
        [--compute --workers 2 --only connectivity] [--out benchmarks/results/width_sweep.json]

1. **Plan accuracy.** ``prunescope plan``'s estimate of every job of the study (as
   if nothing were cached, with the machine's remembered calibration) against the
   time the jobs took: with ``--compute`` the wall time of the computation (timed
   here, after the estimate), and always the sum of the stored entries' own
   seconds (``meta.json``), divided by the workers. The load average is recorded
   beside them: on a shared machine the ratio moves with it.
2. **Barrier against width** (Entezari et al. 2022, Figure 1), for a study with a
   ``model.width`` axis: per method and width, the naive and weight-matched test
   barrier (mean and 95% interval over seed pairs, from ``show --json``'s
   ``groups``), and the verdicts: the aligned barrier of the widest networks is
   below the narrowest's, and alignment removes most (> 50%) of the naive barrier
   at the widest width.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

NAIVE = "barrier.naive.test.barrier_entezari"
ALIGNED = "barrier.weight.test.barrier_entezari"


def estimate(study, workers: int, only: str | None):
    """The plan of every job of the study, as if nothing were cached (an empty store)."""
    from analysis.cost import plan_study
    from analysis.executor.schedule import cpu_threads
    from analysis.store import Store

    with tempfile.TemporaryDirectory() as empty:
        return plan_study(
            study, Store(Path(empty)), workers=workers, threads=cpu_threads(workers), only=only
        )


def plan_accuracy(study, store, plan, workers: int, only: str | None, wall: float | None) -> dict:
    """The estimate (made before computing) against the stored entries' seconds and the wall."""
    from analysis.executor.graph import plan_jobs
    from analysis.plan import study_specs

    took = 0.0
    jobs = [j for j in plan_jobs(study_specs(study, only), chunks=1) if j.rows is None]
    for job in jobs:
        entry = store.load(job.spec) if store.exists(job.spec) else None
        took += float(entry.meta.get("seconds", 0.0)) if entry is not None else 0.0
    doc = {
        "estimated_seconds": round(plan.seconds, 1),
        "stored_job_seconds_per_worker": round(took / workers, 1),
        "ratio_stored_to_estimate": round(took / workers / plan.seconds, 2),
        "workers": workers,
        "busy_factor_at_estimate": round(plan.busy, 2),
        "load_at_estimate": round(plan.load, 2),
        "calibration": plan.calibration,
    }
    if wall is not None:
        doc["wall_seconds"] = round(wall, 1)
        doc["ratio_wall_to_estimate"] = round(wall / plan.seconds, 2)
    return doc


def barrier_table(summary: dict) -> dict:
    """Per method and width: naive and aligned barriers, their intervals, and the verdicts."""
    rows: dict[str, list[dict]] = {}
    for g in summary["groups"]:
        width = g["setting"].get("model.width")
        if width is None or ALIGNED not in g["metrics"]:
            continue
        rows.setdefault(g["method"], []).append(
            {"width": width, "naive": g["metrics"].get(NAIVE), "aligned": g["metrics"][ALIGNED]}
        )
    verdicts = {}
    for method, items in rows.items():
        items.sort(key=lambda r: r["width"])
        narrow, wide = items[0], items[-1]
        removed = 1.0 - wide["aligned"]["mean"] / wide["naive"]["mean"]
        verdicts[method] = {
            "aligned_falls_with_width": wide["aligned"]["mean"] < narrow["aligned"]["mean"],
            "aligned_ratio_widest_to_narrowest": round(
                wide["aligned"]["mean"] / narrow["aligned"]["mean"], 3
            ),
            "intervals_apart": wide["aligned"]["ci95"][1] < narrow["aligned"]["ci95"][0]
            if wide["aligned"]["ci95"] and narrow["aligned"]["ci95"]
            else None,
            "fraction_of_naive_removed_at_widest": round(removed, 3),
            "alignment_removes_most": removed > 0.5,
        }
    return {"rows": rows, "verdicts": verdicts}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("study")
    parser.add_argument("--cache-dir", required=True)
    parser.add_argument("--compute", action="store_true")
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--only")
    parser.add_argument("--out")
    args = parser.parse_args()
    import analysis.parts  # noqa: F401  (installs every analysis)
    from analysis.executor import make_executor
    from analysis.plan import compute_study, summarize
    from analysis.store import Store
    from analysis.study import load_study, with_available_data

    study, _ = with_available_data(load_study(args.study))
    store = Store(Path(args.cache_dir))
    wall = None
    plan = estimate(study, args.workers, args.only)
    if args.compute:
        executor = make_executor("local", workers=args.workers)
        start = time.perf_counter()
        try:
            report = compute_study(study, store, only=args.only, executor=executor)
        finally:
            executor.close()
        wall = time.perf_counter() - start
        assert not report.failed, report.failed
    summary = summarize(study, store)
    doc = {
        "study": args.study,
        "dataset": summary["study"]["dataset"],
        "load_average": os.getloadavg(),
        "cpu_count": os.cpu_count(),
        "plan": plan_accuracy(study, store, plan, args.workers, args.only, wall),
    }
    if "model.width" in summary["study"]["axes"]:
        doc["barrier_vs_width"] = barrier_table(summary)
    text = json.dumps(doc, indent=1)
    print(text)
    if args.out:
        Path(args.out).write_text(text + "\n")


if __name__ == "__main__":
    main()
