"""Memory is estimated for every job, training included, before anything runs."""

from __future__ import annotations

import pytest

from analysis.errors import PrunescopeError
from analysis.executor import InProcess
from analysis.plan import study_specs
from analysis.run_part import run_bytes
from analysis.specs import DataSpec, ModelSpec, RunSpec, TrainSpec
from analysis.study import parse_study

STUDY = """
name = "preflight"
seeds = [0]
[data]
name = "digits"
[model]
arch = "mlp"
width = {width}
depth = {depth}
[train]
epochs = {epochs}
[[methods]]
method = "dense"
"""


def test_the_training_estimate_grows_with_what_training_holds():
    base = RunSpec(data=DataSpec(name="fashion-mnist"))
    wide = base.replace(model=ModelSpec(width=16384, depth=16))
    long = base.replace(train=TrainSpec(epochs=10000))
    assert run_bytes(base) < 1 << 30  # the demo network: well under a GiB
    assert run_bytes(wide) > 25 << 30  # 4e9 weights with Adam: refused on any laptop
    assert run_bytes(long) > 10 * run_bytes(base)  # a snapshot per epoch


def test_a_study_that_cannot_fit_is_refused_before_anything_trains(store, monkeypatch):
    monkeypatch.setenv("PRUNESCOPE_MEMORY_LIMIT", "2GiB")
    study = parse_study(STUDY.format(width=16384, depth=16, epochs=1))
    result = InProcess().run(study_specs(study, "runs"), store)
    (outcome,) = result.jobs.values()
    assert outcome.status == "failed" and "memory" in outcome.error and "\n" not in outcome.error
    assert "GiB" in store.failure(study.runs()[0])
    assert not (store.root / "run").exists()  # nothing was trained


def test_a_malformed_memory_limit_is_one_error(store, monkeypatch):
    monkeypatch.setenv("PRUNESCOPE_MEMORY_LIMIT", "lots")
    study = parse_study(STUDY.format(width=8, depth=1, epochs=1))
    with pytest.raises(PrunescopeError, match="PRUNESCOPE_MEMORY_LIMIT"):
        InProcess().run(study_specs(study, "runs"), store)
