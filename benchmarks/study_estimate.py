"""The GPU check's summary: test results, the measured rates, a study's estimated time, targets.

Two uses, both from ``benchmarks/gpu_check.sh``:

    python3 benchmarks/study_estimate.py --junit TESTS.xml --log TESTS.log --json OUT.json
        the gpu-marked tests' counts (and the names of failures) as JSON;
    python3 benchmarks/study_estimate.py --study STUDY.toml --tests T.json --train TR.json \\
        --landscape L.json --out OUT.json
        one JSON with everything, the study's estimated time on this device, and
        whether each of issue 13's GPU targets is met.

The study estimate (the image counts are ``analysis.cost.job_images``, the same
as ``prunescope plan``'s) walks the study's whole job graph (every run, every lottery
round and prerequisite the executor would run, every analysis) and counts the
images each job pushes through the network: training images (epochs x training
set; fine-tuning methods their ``finetune_epochs``; the instability test its two
trainings from the rewind point), forward-only images (evaluation, corruptions,
path and grid points, BatchNorm resets: a forward pass is counted as a third of
a training step's cost) and Hessian-vector products (two training steps' cost per
sample). Divided by the measured training rate of the same network on the same
device at the study's batch size (``train_speed.py --batch 128``), plus a fixed 5 s per UMAP (CPU). It is an estimate,
not a measurement: the JSON says so, with its parts.
"""

from __future__ import annotations

import argparse
import json
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

#: Issue 13's GPU targets.
TARGETS = {
    "train_images_per_s": 30000.0,
    "train_ratio_to_bare": 0.9,
    "landscape_speedup_over_cpu": 20.0,
    "study_minutes": 30.0,
}


def tests_summary(junit: Path, log: Path) -> dict:
    """Counts of the junit report (passed, failed, errors, skipped) and the failed tests' names."""
    if not junit.exists():
        tail = log.read_text().splitlines()[-5:] if log.exists() else []
        return {"error": "pytest wrote no report", "log_tail": tail}
    root = ET.parse(junit).getroot()
    cases = list(root.iter("testcase"))
    failed = [
        f"{c.get('classname')}::{c.get('name')}"
        for c in cases
        if c.find("failure") is not None or c.find("error") is not None
    ]
    skipped = sum(c.find("skipped") is not None for c in cases)
    return {
        "total": len(cases),
        "failed": len(failed),
        "skipped": skipped,
        "passed": len(cases) - len(failed) - skipped,
        "failures": failed[:50],
    }


def estimate(study_path: str, train_rate: float) -> dict:
    """Seconds of every job of the study at ``train_rate`` training images/s (see module doc)."""
    import analysis.parts  # noqa: F401  (installs every analysis)
    from analysis.cost import UMAP_SECONDS, job_images
    from analysis.executor.graph import plan_jobs
    from analysis.plan import study_specs
    from analysis.study import load_study

    study = load_study(study_path)
    jobs = [job for job in plan_jobs(study_specs(study, None), chunks=1) if job.rows is None]
    seconds: dict[str, float] = {}
    counts: dict[str, int] = {}
    for job in jobs:
        images = job_images(job.spec)
        cost = (
            images.get("train", 0) / train_rate
            + images.get("forward", 0) / (3 * train_rate)
            + 2 * images.get("hvp", 0) / train_rate
            + UMAP_SECONDS * images.get("umap", 0)
        )
        seconds[job.spec.kind] = seconds.get(job.spec.kind, 0.0) + cost
        counts[job.spec.kind] = counts.get(job.spec.kind, 0) + 1
    return {
        "study": study_path,
        "jobs": counts,
        "seconds_by_kind": {k: round(v, 1) for k, v in seconds.items()},
        "minutes": round(sum(seconds.values()) / 60, 2),
        "train_images_per_s_used": train_rate,
        "method": "estimate from the measured training rate and each job's image count "
        "(benchmarks/study_estimate.py's docstring)",
    }


def first(doc: dict, *keys: str) -> float | None:
    """The first of ``keys`` present in ``doc`` (numbers only)."""
    for key in keys:
        value = doc.get(key)
        if isinstance(value, int | float):
            return float(value)
    return None


def combine(args: argparse.Namespace) -> dict:
    """Everything in one document, with each target's verdict."""
    read = lambda p: json.loads(Path(p).read_text()) if p and Path(p).exists() else {}  # noqa: E731
    tests, train, landscape = read(args.tests), read(args.train), read(args.landscape)
    study_train = read(args.study_train) or train
    steps = train.get("train_steps", {})
    rate = first(steps, "fit_images_per_s")
    ratio = first(steps, "ratio_images_per_s")
    study_rate = first(study_train.get("train_steps", {}), "fit_images_per_s")
    speedup = first(landscape.get("ratios", {}), "device_best_vs_cpu")
    doc = {"tests": tests, "train": train, "train_study_batch": study_train, "landscape": landscape}
    doc["study_estimate"] = (
        estimate(args.study, study_rate) if study_rate else {"error": "no training rate"}
    )
    minutes = doc["study_estimate"].get("minutes")
    measured = {
        "train_images_per_s": rate,
        "train_ratio_to_bare": ratio,
        "landscape_speedup_over_cpu": speedup,
        "study_minutes": minutes,
    }
    doc["targets"] = {
        name: {
            "target": target,
            "measured": measured[name],
            "met": None
            if measured[name] is None
            else (
                measured[name] <= target if name == "study_minutes" else measured[name] >= target
            ),
        }
        for name, target in TARGETS.items()
    }
    doc["tests_passed"] = bool(tests) and not tests.get("failed") and not tests.get("error")
    return doc


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--junit")
    parser.add_argument("--log")
    parser.add_argument("--json")
    parser.add_argument("--study")
    parser.add_argument("--tests")
    parser.add_argument("--train", help="train_speed.py's JSON at the throughput batch")
    parser.add_argument("--study-train", help="train_speed.py's JSON at the study's batch")
    parser.add_argument("--landscape")
    parser.add_argument("--out")
    args = parser.parse_args()
    if args.junit:
        doc = tests_summary(Path(args.junit), Path(args.log or ""))
        Path(args.json).write_text(json.dumps(doc, indent=1))
        return
    doc = combine(args)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(doc, indent=1))
    print(json.dumps(doc["targets"], indent=1))


if __name__ == "__main__":
    main()
