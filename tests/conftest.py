"""Shared fixtures: a temporary store, tiny specs, and quiet settings for every test."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

import analysis.parts  # noqa: F401  (installs every analysis, as the entry points do)

REPO = Path(__file__).resolve().parents[1]
STUDIES = REPO / "assets" / "studies"

os.environ.setdefault("HYPOTHESIS_PROFILE", "ci")


@pytest.fixture
def store(tmp_path):
    """A fresh, empty result store."""
    from analysis.store import Store

    return Store(tmp_path / "cache")


@pytest.fixture
def tiny_run():
    """A RunSpec that trains in well under a second (digits subset, small MLP)."""
    from analysis.specs import DataSpec, ModelSpec, RunSpec, TrainSpec

    return RunSpec(
        data=DataSpec(name="digits", train_size=200),
        model=ModelSpec(arch="mlp", width=16, depth=1),
        train=TrainSpec(epochs=1, batch_size=50),
    )


@pytest.fixture
def compute_forbidden(monkeypatch):
    """Make any request to compute fail the test; reading the store still works.

    The dashboard's pages and the export only read: this is how the tests show it.
    """
    from analysis import api

    real = api.get

    def get(spec, *, store=None, progress=None, compute=True, device=None):
        if compute:
            raise AssertionError(f"asked to compute {spec.kind} where only reading is allowed")
        return real(spec, store=store, progress=progress, compute=False)

    monkeypatch.setattr(api, "get", get)


def _device_params() -> list:
    """CPU always; CUDA and MPS marked ``gpu`` and skipped where this machine has none."""
    from analysis.device import available

    have = available()
    params = [pytest.param("cpu", id="cpu")]
    for name, kind in (("cuda:0", "cuda"), ("mps", "mps")):
        marks = [pytest.mark.gpu]
        if name not in have:
            marks.append(pytest.mark.skip(reason=f"no {kind} device here"))
        params.append(pytest.param(name, marks=marks, id=kind))
    return params


@pytest.fixture(params=_device_params())
def device(request):
    """Each device this machine has (a test using it runs once per device; ``-m gpu``: the
    accelerators only). Results must agree with the CPU's within the test's stated tolerance."""
    import torch

    return torch.device(request.param)


@pytest.fixture(autouse=True, scope="session")
def _one_thread():
    """One torch thread per test process: the tests' tensors are small, and on a shared
    2-core machine two OpenMP threads per process oversubscribe the cores (10x slower)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
