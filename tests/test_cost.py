"""The cost preview: ``prunescope plan``, ``compute --dry-run``, the calibration and the estimate."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from analysis import cost
from analysis.specs import ModelSpec
from analysis.store import Store
from dashboard.cli import main
from tests._tiny import compute, tiny_study, tiny_text


@pytest.fixture
def calibrated(tmp_path, monkeypatch):
    """A calibration folder of the test's own, with a known (fake) speed in it."""
    folder = tmp_path / "calibration"
    monkeypatch.setenv("PRUNESCOPE_CALIBRATION", str(folder))
    calls = []

    def fake(device, threads, seconds=0.4):
        calls.append(threads)
        rate = {"train_macs_per_s": 1e9, "forward_macs_per_s": 3e9}
        return {
            "version": cost.CALIBRATION_VERSION,
            "device": "cpu",
            "threads": threads,
            "mlp": rate,
            "conv": rate,
            "when": "now",
        }

    monkeypatch.setattr(cost, "calibrate", fake)
    monkeypatch.setattr(cost, "busy_factor", lambda workers: (0.0, 1.0))  # an idle machine
    return calls


def test_macs_are_counted_per_layer():
    mlp = ModelSpec(arch="mlp", width=256, depth=2)
    assert cost.model_macs(mlp, "fashion-mnist") == 784 * 256 + 256 * 256 + 256 * 10
    assert cost.model_macs(ModelSpec(arch="resnet20"), "cifar10") == pytest.approx(40.8e6, rel=0.01)


def test_the_estimate_scales_with_the_work(calibrated, tmp_path):
    study = tiny_study(seeds=(0, 1, 2))
    small = cost.plan_study(tiny_study(seeds=(0,)), Store(tmp_path / "a"), only="runs")
    large = cost.plan_study(study, Store(tmp_path / "a"), only="runs")
    assert small.parts["run"].todo == 2 and large.parts["run"].todo == 6
    assert large.seconds == pytest.approx(3 * small.seconds)
    two = cost.plan_study(study, Store(tmp_path / "a"), only="runs", workers=2)
    assert two.seconds == pytest.approx(large.seconds / 2)
    assert calibrated == [1]  # measured once (one thread), then remembered


def test_cached_entries_are_counted_and_correct_the_estimate(calibrated, tmp_path):
    store = Store(tmp_path / "cache")
    study = tiny_study(seeds=(0,), magnitude=False)
    compute(study, store, "runs")
    plan = cost.plan_study(tiny_study(seeds=(0, 1), magnitude=False), store, only="runs")
    part = plan.parts["run"]
    assert (part.cached, part.todo) == (1, 1)
    took = store.load(study.runs()[0]).meta["seconds"]
    guess = cost.estimate_seconds(study.runs()[0], plan.calibration)
    assert part.correction == pytest.approx(took / guess)
    assert part.seconds == pytest.approx(guess * part.correction)


def test_plan_and_dry_run_print_the_plan_and_write_nothing(calibrated, tmp_path, capsys):
    path = tmp_path / "tiny.toml"
    path.write_text(tiny_text())
    cache = tmp_path / "cache"
    assert main(["plan", str(path), "--cache-dir", str(cache)]) == 0
    out = capsys.readouterr().out
    assert "plan for study tiny-analyses" in out and "to compute" in out and "total:" in out
    assert main(["compute", str(path), "--cache-dir", str(cache), "--dry-run", "-q"]) == 0
    assert "total:" in capsys.readouterr().out
    assert not cache.exists() or not any(cache.rglob("meta.json"))
    assert main(["plan", str(path), "--cache-dir", str(cache), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["to_compute"] > 0 and doc["estimated_seconds"] > 0
    assert {p["kind"] for p in doc["parts"]} >= {"run", "robustness", "connectivity"}


def test_plan_refuses_bad_workers_and_parts(calibrated, tmp_path, capsys):
    path = tmp_path / "tiny.toml"
    path.write_text(tiny_text())
    assert main(["plan", str(path), "--workers", "0"]) == 2
    assert main(["plan", str(path), "--only", "nothing"]) == 2
    err = capsys.readouterr().err
    assert "--workers" in err and "--only" in err


def test_a_busy_machine_scales_the_estimate(monkeypatch):
    monkeypatch.setattr(cost.os, "getloadavg", lambda: (11.0, 9.0, 8.0))
    monkeypatch.setattr(cost.devices, "usable_cores", lambda: 2)
    assert cost.busy_factor(2) == (11.0, 6.5)
    monkeypatch.setattr(cost.os, "getloadavg", lambda: (0.2, 0.2, 0.2))
    assert cost.busy_factor(1) == (0.2, 1.0)


def test_the_real_calibration_measures_this_machine(tmp_path):
    doc = cost.calibrate(torch.device("cpu"), threads=1, seconds=0.05)
    assert doc["step_overhead_s"]["train"] > 0
    for family in ("mlp", "conv"):
        assert doc[family]["train_macs_per_s"] > 0
        assert doc[family]["forward_macs_per_s"] > doc[family]["train_macs_per_s"] / 10


STUDIES = sorted((Path(__file__).resolve().parents[1] / "assets" / "studies").glob("*.toml"))


@pytest.mark.parametrize("path", STUDIES, ids=lambda p: p.stem)
def test_plan_prints_an_estimate_for_every_shipped_study(path, calibrated, tmp_path, capsys):
    assert main(["plan", str(path), "--cache-dir", str(tmp_path / "empty"), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["to_compute"] > 0 and doc["estimated_seconds"] > 0
    assert all(p["seconds"] > 0 for p in doc["parts"] if p["todo"])
