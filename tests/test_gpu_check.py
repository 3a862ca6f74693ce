"""benchmarks/gpu_check.sh and its summary: they must work the day a CUDA machine runs them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

import study_estimate  # noqa: E402


def test_the_study_estimate_counts_every_job_and_scales_with_the_rate():
    slow = study_estimate.estimate(str(ROOT / "assets/studies/cifar10-resnet20.toml"), 10000.0)
    fast = study_estimate.estimate(str(ROOT / "assets/studies/cifar10-resnet20.toml"), 20000.0)
    # 2 seeds x (dense + 2 x (random, magnitude, gmp, snip, synflow) + l1) = 22 runs listed,
    # plus one lottery chain per seed: its first level in 5 rounds, the second one more
    # round (6 jobs; before the levels shared a chain, 2 x 5): 36 run jobs
    assert slow["jobs"]["run"] == 36
    assert {"connectivity", "robustness", "landscape", "sharpness"} <= set(slow["jobs"])
    train = slow["seconds_by_kind"]["run"]
    assert train == pytest.approx(2 * fast["seconds_by_kind"]["run"], rel=1e-3)
    assert slow["minutes"] > fast["minutes"] > 0


def test_targets_are_judged_from_the_measured_figures(tmp_path):
    def write(name, doc):
        (tmp_path / name).write_text(json.dumps(doc))
        return str(tmp_path / name)

    args = type("Args", (), {})()
    args.study = str(ROOT / "assets/studies/demo.toml")
    args.tests = write("t.json", {"total": 3, "failed": 0, "skipped": 0, "passed": 3})
    args.train = write(
        "tr.json", {"train_steps": {"fit_images_per_s": 40000.0, "ratio_images_per_s": 0.85}}
    )
    args.study_train = write("st.json", {"train_steps": {"fit_images_per_s": 20000.0}})
    args.landscape = write("l.json", {"ratios": {"device_best_vs_cpu": 25.0}})
    doc = study_estimate.combine(args)
    targets = doc["targets"]
    assert targets["train_images_per_s"]["met"] is True
    assert targets["train_ratio_to_bare"]["met"] is False  # 0.85 < 0.9
    assert targets["landscape_speedup_over_cpu"]["met"] is True
    assert doc["study_estimate"]["train_images_per_s_used"] == 20000.0
    assert doc["tests_passed"] is True


@pytest.mark.slow
def test_gpu_check_runs_end_to_end_in_its_smoke_mode_on_the_cpu(tmp_path):
    """The script with the machine's Python, on the CPU, with tiny sizes: one JSON comes out."""
    out = tmp_path / "gpu_check.json"
    env = {**os.environ, "GPU_CHECK_SMOKE": "1", "PRUNESCOPE_DEVICE": "cpu"}
    env["PYTHON"] = sys.executable
    done = subprocess.run(
        ["bash", str(ROOT / "benchmarks/gpu_check.sh"), str(out)],
        capture_output=True,
        text=True,
        timeout=900,
        env=env,
        cwd=ROOT,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    doc = json.loads(out.read_text())
    assert "error" not in doc["train"], done.stderr[-2000:]
    assert doc["train"]["train_steps"]["fit_images_per_s"] > 0
    assert doc["landscape"]["ratios"]["device_best_vs_cpu"] > 0
    assert doc["study_estimate"]["minutes"] > 0
    assert set(doc["targets"]) == set(study_estimate.TARGETS)
