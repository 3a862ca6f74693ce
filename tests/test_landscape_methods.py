"""A figure named after a method computes that method: the trajectory plane is Li et al.'s
(centred) PCA, the trace's probes reach a stated error, landscapes use the training loss.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from analysis.landscape import (
    LandscapeSettings,
    LandscapeSpec,
    PlaneSpec,
    SharpnessSpec,
    hutchinson_trace,
    probe_seeds,
    trajectory_plane,
)
from analysis.specs import RunSpec, spec_key


def off_centre_path(steps: int = 6, dim: int = 40, seed: int = 0):
    """Snapshots (dicts) of a curved path that ends far from the mean of its points, and the end."""
    gen = torch.Generator().manual_seed(seed)
    final = {"w": torch.randn(dim, generator=gen), "b": torch.randn(3, generator=gen)}
    e = [torch.randn(dim + 3, generator=gen) for _ in range(3)]
    snaps = []
    for t in np.linspace(1.0, 0.0, steps):
        delta = 4.0 * t * e[0] + np.sin(3 * t) * e[1] + 0.3 * t**2 * e[2]
        snaps.append({"w": final["w"] + delta[:dim], "b": final["b"] + delta[dim:]})
    return snaps, final


def test_trajectory_plane_is_centred_pca_as_in_li_et_al():
    snaps, final = off_centre_path()
    (d1, d2), coords, ratio = trajectory_plane(snaps, final)
    rows = np.stack([np.concatenate([s["b"] - final["b"], s["w"] - final["w"]]) for s in snaps])
    rows = rows.astype(np.float64)  # parameters in name order: b, w
    centred = rows - rows.mean(0)
    _, sv, vt = np.linalg.svd(centred, full_matrices=False)
    np.testing.assert_allclose(ratio, sv[:2] ** 2 / (sv**2).sum(), rtol=1e-6)
    # not the energy ratio of the uncentred rows (what the plane reported before)
    energy = np.linalg.svd(rows, compute_uv=False)
    assert abs(ratio[0] - energy[0] ** 2 / (energy**2).sum()) > 0.01
    axes = np.stack([torch.cat([d["b"], d["w"]]).numpy() for d in (d1, d2)])
    np.testing.assert_allclose(np.abs(axes @ vt[:2].T), np.eye(2), atol=1e-5)  # same axes
    np.testing.assert_allclose(coords, rows @ axes.T, rtol=1e-5, atol=1e-5)  # Li et al.'s "cos"


def test_a_two_snapshot_path_has_no_second_axis_variance():
    snaps, final = off_centre_path(steps=2)
    _, _, ratio = trajectory_plane(snaps, final)
    assert ratio[0] == pytest.approx(1.0) and ratio[1] == pytest.approx(0.0, abs=1e-12)


def quadratic(dim: int = 30, seed: int = 0):
    """A fixed symmetric matrix's hvp (dim, dim) and its trace."""
    gen = torch.Generator().manual_seed(seed)
    a = torch.randn(dim, dim, generator=gen)
    h = a @ a.T / dim + torch.eye(dim)
    return (lambda v: h @ v), float(torch.trace(h))


def test_hutchinson_probes_until_the_stated_relative_error():
    hvp, true = quadratic()
    gen = torch.Generator().manual_seed(0)
    est = hutchinson_trace(hvp, 30, 5000, gen, rel_error=0.02)
    assert est.rel_error <= 0.02 and 10 <= est.probes < 5000
    assert abs(est.trace - true) < 5 * est.stderr
    capped = hutchinson_trace(hvp, 30, 12, torch.Generator().manual_seed(0), rel_error=1e-6)
    assert capped.probes == 12 and capped.rel_error > 1e-6  # the cap wins, and it says so
    with pytest.raises(ValueError, match="2 probes"):
        hutchinson_trace(hvp, 30, 1, gen)


def test_probes_are_seeded_per_run():
    a, b = RunSpec(), RunSpec(seed=1)
    assert probe_seeds(0, spec_key(a)) == probe_seeds(0, spec_key(a))
    assert probe_seeds(0, spec_key(a)) != probe_seeds(0, spec_key(b))
    assert probe_seeds(0, spec_key(a)) != probe_seeds(1, spec_key(a))


def test_landscapes_and_sharpness_default_to_the_training_split():
    assert LandscapeSettings().split == "train"
    for spec in (LandscapeSpec(), PlaneSpec(), SharpnessSpec()):
        assert spec.split == "train"
        assert spec_key(spec) != spec_key(spec.__class__(split="test"))  # the option stays
    # the keys of the runs they look at do not move
    assert LandscapeSpec().run == RunSpec() and spec_key(LandscapeSpec().run) == spec_key(RunSpec())
