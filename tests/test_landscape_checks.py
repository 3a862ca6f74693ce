"""Bad sizes are caught when the study loads; no NaN becomes a silent null; a full disk while
saving a grid row ends with one line and the grid resumes where it stopped.
"""

from __future__ import annotations

import errno
import os

import numpy as np
import pytest
import torch
from torch import nn

from analysis.errors import PrunescopeError, SpecError, StoreError
from analysis.landscape import (
    SurfaceProblem,
    compute_grid,
    grid_axis,
    hutchinson_trace,
    kind,
    lanczos_top,
    landscape_specs,
    split_sizes,
)
from analysis.landscape.surfaces import surface_doc
from analysis.specs import DataSpec
from tests._tiny import tiny_study


@pytest.mark.parametrize(
    "settings, field",
    [
        (dict(subset=401), "analyses.landscape.subset"),  # train_size = 400
        (dict(subset=360, split="test"), "analyses.landscape.subset"),  # digits test: 359
        (dict(subset=100, sharpness_batch=500), "analyses.landscape.sharpness_batch"),
        (dict(subset=100, sharpness_batch=100, hutchinson_samples=1), "hutchinson_samples"),
    ],
)
def test_sizes_are_checked_when_the_study_loads(settings, field):
    with pytest.raises(SpecError) as err:
        landscape_specs(tiny_study(seeds=(0,), landscape=settings))
    assert err.value.param.endswith(field) and "\n" not in str(err.value)


def test_unset_sizes_fit_the_data_and_the_summary_says_them(store):
    from analysis.landscape import summarize_landscape

    study = tiny_study(seeds=(0,), magnitude=False)  # no [analyses.landscape]: defaults
    specs = landscape_specs(study)
    assert {s.subset for s in specs if s.kind != "sharpness"} == {400}  # the whole train split
    assert {s.batch for s in specs if s.kind == "sharpness"} == {400}
    settings = summarize_landscape(study, store)["settings"]
    assert settings["subset"] == settings["sharpness_batch"] == 400
    assert settings["bn"] == "none" and settings["bn_rule"]["rule"] == "none"


def test_split_sizes_match_the_loaded_data():
    from analysis.data import load

    for data in (DataSpec(name="digits"), DataSpec(name="digits", train_size=300)):
        splits = load(data)
        assert split_sizes(data) == {"train": len(splits.train_y), "test": len(splits.test_y)}


def test_lanczos_steps_and_the_trajectory_are_checked_against_the_study(monkeypatch):
    study = tiny_study(seeds=(0,), landscape=dict(subset=100, sharpness_batch=100))
    monkeypatch.setattr(kind, "shape_facts", lambda model, data: (784, 32, 20, False))
    with pytest.raises(SpecError, match="sharpness_topk") as err:
        landscape_specs(study)
    assert "20 parameters" in str(err.value)
    monkeypatch.undo()
    with pytest.raises(SpecError, match="trajectory"):  # refused as the study loads
        tiny_study(seeds=(0,), epochs=0, landscape=dict(subset=100, sharpness_batch=100))
    tiny_study(seeds=(0,), epochs=0, landscape=dict(trajectory=False))  # loads


def tiny_problem(nan: bool = False) -> SurfaceProblem:
    """A 4-8-3 MLP problem on random data (its centre NaN when asked)."""
    torch.manual_seed(0)
    net = nn.Sequential(nn.Flatten(), nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3))
    centre = {n: p.detach().clone() for n, p in net.named_parameters()}
    if nan:
        centre["3.bias"][0] = float("nan")
    dirs = [{n: torch.randn_like(p) for n, p in centre.items()} for _ in range(2)]
    x, y = torch.randn(20, 1, 2, 2), torch.randint(0, 3, (20,))
    return SurfaceProblem(model=net, centre=centre, dirs=dirs, x=x, y=y)


def test_non_finite_losses_are_counted_and_said_never_silent():
    prob = tiny_problem()
    xs = grid_axis(3, 1.0)
    grid = compute_grid(prob, xs, xs)
    grid["loss"][0, 0] = np.inf
    grid["loss"][2, 1] = np.nan
    doc = surface_doc(grid, prob, "fp32", xs, xs, "a surface")
    assert doc["nonfinite_points"] == 2 and "2 of 9 grid points" in doc["nonfinite_reason"]
    assert np.isfinite([doc["min_loss"], doc["max_loss"]]).all()
    grid["loss"][:] = np.nan
    with pytest.raises(PrunescopeError, match="every grid point"):
        surface_doc(grid, prob, "fp32", xs, xs, "a surface")
    bad = tiny_problem(nan=True)
    with pytest.raises(PrunescopeError, match="at the centre"):
        surface_doc(compute_grid(bad, xs, xs), bad, "fp32", xs, xs, "a surface")


def test_a_nan_hessian_is_an_error():
    gen = torch.Generator().manual_seed(0)

    def hvp(v):
        return v * float("nan")

    with pytest.raises(PrunescopeError, match="NaN"):
        hutchinson_trace(hvp, 5, 10, gen)
    with pytest.raises(PrunescopeError, match="NaN"):
        lanczos_top(hvp, 5, 2, 5, gen)


def test_a_full_disk_while_saving_a_row_is_one_line_and_the_grid_resumes(tmp_path, monkeypatch):
    prob = tiny_problem()
    xs = grid_axis(5, 1.0)
    whole = compute_grid(prob, xs, xs)
    real, calls = os.fsync, []

    def fsync(fd):
        calls.append(fd)
        if len(calls) == 3:  # the third row's write
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    with pytest.raises(StoreError) as err:
        compute_grid(prob, xs, xs, partial=tmp_path, label="landscape 2-D 5x5 (fp32): dense s0")
    message = str(err.value)
    assert "\n" not in message
    for part in ("grid row 2", "dense s0", str(tmp_path / "row_00002.npz"), "writing a temp file",
                 "No space left on device", "full"):  # fmt: skip
        assert part in message, part
    monkeypatch.undo()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["row_00000.npz", "row_00001.npz"]
    resumed = compute_grid(prob, xs, xs, partial=tmp_path)
    assert resumed["evaluated_rows"].tolist() == [2, 3, 4]
    np.testing.assert_array_equal(resumed["loss"], whole["loss"])
