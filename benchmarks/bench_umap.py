"""Wall time of a study's representations part (features, UMAP 2-D/3-D, alignment, CKA, ...).

Usage::

    uv run python benchmarks/bench_umap.py                       # the demo study, ./cache
    uv run python benchmarks/bench_umap.py --study assets/studies/tiny.toml --cache-dir /tmp/c

In one process: first one tiny UMAP fit (200 random points) and a second identical
one, so numba's one-off JIT compile of umap-learn is measured on its own
(``numba_first_fit_s``; the second fit is the same work without compiling). Then
the study's trained runs are taken from ``--cache-dir`` (trained there first if
missing: slow for the demo study) and their ``run`` entries copied into a fresh
temporary store, so nothing is retrained; the representations part is computed
there (cold: every features, UMAP and representations entry is new) and asked for
again (warm: everything cached), and the dashboard's read of the result
(``summarize_representations``) is timed on the warm store, and once more through a
new ``Store`` object (as a new process: checksums re-verified). Writes
``benchmarks/results/umap.json``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib.metadata
import json
import os
import platform
import sys
import tempfile
import time
import warnings
from collections import defaultdict
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from analysis.data import load  # noqa: E402
from analysis.plan import compute_study  # noqa: E402
from analysis.representations import representation_specs, summarize_representations  # noqa: E402
from analysis.store import Store, default_root  # noqa: E402
from analysis.study import load_study, with_available_data  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results" / "umap.json"


def tiny_fit_seconds() -> float:
    """Seconds for one seeded 2-D UMAP fit of 200 random 32-D points (same code path as ours)."""
    import umap

    x = np.random.default_rng(0).normal(size=(200, 32)).astype(np.float32)
    threads = torch.get_num_threads()
    t = time.perf_counter()
    umap.UMAP(n_components=2, n_neighbors=15, min_dist=0.1, random_state=0).fit_transform(x)
    seconds = time.perf_counter() - t
    torch.set_num_threads(threads)  # numba's OpenMP start resets it, as compute_umap knows
    return seconds


def torch_probe_seconds(repeats: int = 3) -> float:
    """Median seconds of a fixed small torch workload (MLP forward passes, like robustness's).

    Timed before and after UMAP runs: numba's OpenMP threads left behind by a fit can slow
    every later torch op of the process on a busy machine.
    """
    g = torch.Generator().manual_seed(0)
    net = torch.nn.Sequential(
        torch.nn.Flatten(), torch.nn.Linear(784, 512), torch.nn.ReLU(), torch.nn.Linear(512, 10)
    )
    x = torch.rand((256, 1, 28, 28), generator=g)
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        with torch.no_grad():
            for _ in range(100):
                net(x).argmax(1)
        times.append(time.perf_counter() - t)
    return sorted(times)[len(times) // 2]


def numba_layer() -> str | None:
    """numba's threading layer once it has run a parallel function (else None)."""
    import numba

    try:
        return numba.threading_layer()
    except ValueError:
        return None


def seconds_by_kind(store: Store) -> dict[str, dict[str, float]]:
    """{kind: {"entries": n, "seconds": sum}} from the meta.json files of a store."""
    out: dict[str, dict[str, float]] = defaultdict(lambda: {"entries": 0, "seconds": 0.0})
    for meta_path in store.root.glob("*/*/*/meta.json"):
        meta = json.loads(meta_path.read_text())
        out[meta["kind"]]["entries"] += 1
        out[meta["kind"]]["seconds"] += float(meta.get("seconds", 0.0))
    return {k: {"entries": v["entries"], "seconds": round(v["seconds"], 3)} for k, v in out.items()}


def copy_runs(runs: list, src: Store, dst: Store) -> None:
    """Copy the ``run`` entries (content-addressed directories) from ``src`` to ``dst``."""
    import shutil

    for spec in runs:
        target = dst.path(spec)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copytree(src.path(spec), target)


def main() -> None:
    """Time the representations part cold and warm, print and write the JSON result."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--study", default=str(ROOT / "assets" / "studies" / "demo.toml"))
    ap.add_argument("--cache-dir", help="store holding (or receiving) the trained runs")
    ap.add_argument("--data-root", help="folder holding datasets (default: $PRUNESCOPE_DATA)")
    ap.add_argument("--threads", type=int, default=1, help="torch intra-op threads (default 1)")
    ap.add_argument(
        "--numba-threads",
        type=int,
        help="set NUMBA_NUM_THREADS before umap/numba load (default: numba's own, all cores)",
    )
    ap.add_argument("--out", type=Path, default=RESULTS)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    if args.numba_threads is not None:
        if "numba" in sys.modules:
            raise SystemExit("--numba-threads must be set before numba is imported")
        os.environ["NUMBA_NUM_THREADS"] = str(args.numba_threads)
    warnings.filterwarnings("ignore", message="n_jobs value", category=UserWarning)
    notes: list[str] = []

    probe_before_s = torch_probe_seconds()
    t = time.perf_counter()
    import umap  # noqa: F401

    import_s = time.perf_counter() - t
    first_fit_s = tiny_fit_seconds()
    second_fit_s = tiny_fit_seconds()
    print(
        f"import umap {import_s:.1f} s; tiny fit: first {first_fit_s:.1f} s (numba compile), "
        f"second {second_fit_s:.2f} s",
        flush=True,
    )

    study = load_study(args.study)
    study, note = with_available_data(study, args.data_root)
    if note:
        notes.append(note.splitlines()[0])
        print(f"note: {note.splitlines()[0]}", flush=True)
    source = Store(Path(args.cache_dir) if args.cache_dir else default_root())
    runs = study.runs()
    missing = [r for r in runs if not source.exists(r)]
    runs_s = None
    if missing:
        print(f"training {len(missing)} of {len(runs)} runs into {source.root} (slow)", flush=True)
        t = time.perf_counter()
        report = compute_study(study, source, only="runs")
        runs_s = time.perf_counter() - t
        if report.failed:
            raise SystemExit(f"training failed: {report.failed}")
        notes.append(f"{len(missing)} runs were trained first ({runs_s:.1f} s, not counted)")
    settings = representation_specs(study)[0].settings

    with tempfile.TemporaryDirectory(prefix="bench-umap-") as tmp:
        store = Store(Path(tmp) / "cache")
        copy_runs(runs, source, store)
        t = time.perf_counter()
        cold = compute_study(study, store, only="representations")
        cold_s = time.perf_counter() - t
        if cold.failed:
            raise SystemExit(f"representations failed: {cold.failed}")
        t = time.perf_counter()
        warm = compute_study(study, store, only="representations")
        warm_s = time.perf_counter() - t
        t = time.perf_counter()
        section = summarize_representations(study, store)
        summary_s = time.perf_counter() - t
        fresh = Store(store.root)  # as a new process would: entries re-verified (sha256)
        t = time.perf_counter()
        compute_study(study, fresh, only="representations")
        summarize_representations(study, fresh)
        warm_fresh_s = time.perf_counter() - t
        kinds = seconds_by_kind(store)
        kinds.pop("run", None)
    probe_after_s = torch_probe_seconds()

    n_points = min(settings.subset_size, len(load(study.data, args.data_root).test_x))
    print(
        f"{study.name} on {study.data.name}: {len(runs)} runs, "
        f"cold {cold_s:.1f} s, warm {warm_s:.3f} s, summary read {summary_s:.3f} s, "
        f"warm with a fresh Store (checksums) {warm_fresh_s:.3f} s"
    )
    print(
        f"torch probe (100 MLP forwards): {probe_before_s:.3f} s before any UMAP, "
        f"{probe_after_s:.3f} s after"
    )
    for kind, v in sorted(kinds.items()):
        print(f"  {kind:16s} {v['entries']:3d} entries {v['seconds']:8.1f} s (from meta.json)")

    notes += [
        "one process; the numba JIT compile is paid by the tiny first fit, so cold_s is "
        "representations work only (a first `prunescope compute` in a fresh process adds "
        "numba_first_fit_s - tiny_fit_warm_s)",
        "cold: a fresh store holding only copies of the run entries (no retraining); "
        "every features, umap (2-D and 3-D per run) and representations entry computed",
        "warm: the same compute_study call again, everything found in the store (the Store "
        "object remembers verified entries); warm_fresh_store_s: compute_study + summary with a "
        "new Store on the same folder, so the entry's files are re-checksummed as in a new process",
        "per_kind seconds come from meta.json; a representations entry's seconds include "
        "the features and umap entries it computed on the way, so they overlap",
        "torch_probe_*: median of 3 x 100 forward passes of a 784-512-10 MLP on 256 images, "
        "before anything touched numba and after the cold and warm passes; they differ a lot "
        "when a UMAP fit leaves torch on all cores (numba's OpenMP start resets the thread "
        "count; compute_umap restores it)",
        f"torch intra-op threads {torch.get_num_threads()}; umap with a fixed random_state "
        f"runs single-threaded; {os.cpu_count()} cores, shared machine",
    ]
    result = {
        "command": "uv run python benchmarks/bench_umap.py " + " ".join(sys.argv[1:]),
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "study": study.name,
        "dataset": study.data.name,
        "runs": len(runs),
        "objectives": list(study.objectives),
        "subset_size": settings.subset_size,
        "subset_points": n_points,
        "umap_fits": 2 * len(runs),
        "cold_s": round(cold_s, 3),
        "warm_s": round(warm_s, 4),
        "warm_summary_read_s": round(summary_s, 4),
        "warm_fresh_store_s": round(warm_fresh_s, 4),
        "warm_cached": warm.cached,
        "numba_first_fit_s": round(first_fit_s, 3),
        "tiny_fit_warm_s": round(second_fit_s, 3),
        "import_umap_s": round(import_s, 3),
        "runs_trained_s": None if runs_s is None else round(runs_s, 1),
        "per_kind": kinds,
        "torch_probe_before_umap_s": round(probe_before_s, 4),
        "torch_probe_after_umap_s": round(probe_after_s, 4),
        "trustworthiness_2d": [r["trustworthiness_2d"] for r in section[0].get("runs", [])],
        "numba_threads": None if args.numba_threads is None else args.numba_threads,
        "numba_threading_layer": numba_layer(),
        "versions": {
            "python": platform.python_version(),
            "torch": torch.__version__,
            "umap-learn": importlib.metadata.version("umap-learn"),
            "numba": importlib.metadata.version("numba"),
        },
        "notes": notes,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
