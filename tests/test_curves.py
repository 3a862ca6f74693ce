"""Curved mode connectivity (Garipov et al. 2018): a trained bend joins two networks.

Claims checked: the curve's coefficients make it pass through its control
points, exactly at the ends; a quadratic Bezier curve trained a few epochs
between two seeds has a barrier far below the naive straight line's, and at t
= 0 and 1 reproduces the endpoints exactly; the bends stay in the union mask;
BatchNorm nets get their statistics recomputed at every point; bad settings are
one-line errors naming the field, before anything is written.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from analysis import api
from analysis.api import Context
from analysis.connectivity import (
    ConnectivitySettings,
    ConnectivitySpec,
    CurveSpec,
    coefficients,
    compute_curve,
    curve_specs,
    summarize,
)
from analysis.connectivity.curves import point
from analysis.errors import SpecError
from analysis.permutation import apply_permutation
from analysis.plan import compute_study
from analysis.sparsity import sparsity_spec
from analysis.specs import DataSpec, ModelSpec, RunSpec, TrainSpec
from analysis.study import parse_study


@pytest.mark.parametrize("kind", ["bezier", "polychain"])
@pytest.mark.parametrize("bends", [1, 2, 3])
def test_coefficients_pass_through_the_control_points(kind: str, bends: int) -> None:
    """They sum to 1, are one-hot at 0 and 1; the chain hits bend i at t = i / (bends + 1)."""
    n = bends + 1
    assert coefficients(kind, bends, 0.0) == [1.0] + [0.0] * n
    assert coefficients(kind, bends, 1.0) == [0.0] * n + [1.0]
    for t in np.linspace(0, 1, 13):
        c = coefficients(kind, bends, float(t))
        assert sum(c) == pytest.approx(1.0) and min(c) >= 0.0
    if kind == "polychain":
        for i in range(n + 1):
            assert coefficients(kind, bends, i / n)[i] == pytest.approx(1.0)
    a, b = torch.randn(5), torch.randn(5)
    control = [{"w": a}, *[{"w": torch.randn(5)} for _ in range(bends)], {"w": b}]
    assert torch.equal(point(control, coefficients(kind, bends, 0.0))["w"], a)
    assert torch.equal(point(control, coefficients(kind, bends, 1.0))["w"], b)


def mlp_run(seed: int, **sparsity) -> RunSpec:
    """A 128x2 MLP trained 10 epochs on digits (as test_connectivity's: a real naive barrier)."""
    extra = {"sparsity": sparsity_spec(**sparsity)} if sparsity else {}
    return RunSpec(
        data=DataSpec(name="digits"),
        model=ModelSpec(arch="mlp", width=128, depth=2),
        train=TrainSpec(epochs=10, lr=0.003, batch_size=64),
        seed=seed,
        **extra,
    )


def tiny_run(seed: int, **sparsity) -> RunSpec:
    """A 32-wide MLP trained 1 epoch on 200 digits."""
    return mlp_run(seed, **sparsity).replace(
        data=DataSpec(name="digits", train_size=200),
        model=ModelSpec(arch="mlp", width=32, depth=1),
        train=TrainSpec(epochs=1, batch_size=50),
    )


def line(alignment: str = "naive", run=mlp_run, **sparsity) -> ConnectivitySpec:
    """The straight path between seeds 0 and 1 of ``run``."""
    return ConnectivitySpec(
        run_a=run(0, **sparsity),
        run_b=run(1, **sparsity),
        alignment=alignment,
        alphas=9,
        train_subset=500,
    )


@pytest.mark.slow  # two 10-epoch runs and a 10-epoch curve: about a minute on a busy CPU
def test_a_trained_bezier_curve_removes_the_naive_barrier(store) -> None:
    """The curve's barrier is far below the naive line's; its ends are the runs, exactly."""
    spec = CurveSpec(line=line(), epochs=10)
    entry = api.get(spec, store=store)
    doc = entry.read("curve.json")
    straight = doc["line"]
    naive = straight["barriers"]["test"]["barrier_entezari"]
    assert naive > 0.2
    assert doc["barriers"]["test"]["barrier_entezari"] < 0.25 * naive, (doc["barriers"], naive)
    for k in ("train_loss", "test_loss", "train_acc", "test_acc"):
        assert doc["curve"][k][0] == straight["curve"][k][0]
        assert doc["curve"][k][-1] == straight["curve"][k][-1]
    assert doc["curve"]["alphas"] == straight["curve"]["alphas"]
    assert [h["epoch"] for h in doc["history"]] == list(range(1, 11))
    assert doc["history"][-1]["loss"] < doc["history"][0]["loss"]
    assert doc["bn"] == "none" and doc["curve_kind"] == "bezier"
    bends = entry.read("bends.safetensors")
    run_a = api.get(mlp_run(0), store=store)
    assert set(bends) == {f"0/{n}" for n, _ in run_a.model().named_parameters()}
    # retraining is never needed: the cached entry answers
    assert api.get(spec, store=store).read("curve.json")["barriers"] == doc["barriers"]


def test_a_sparse_pairs_bends_stay_in_the_union_mask(store) -> None:
    """Pruned in both ends (after alignment) = zero in every bend, so on the whole curve."""
    sparse = {"method": "random", "sparsity": 0.8}  # pruned at init: cheap, and masks differ
    spec = CurveSpec(line=line("weight", tiny_run, **sparse), curve="polychain", epochs=2)
    bends = api.get(spec, store=store).read("bends.safetensors")
    runs = [api.get(tiny_run(s, **sparse), store=store) for s in (0, 1)]
    ps = runs[0].model().permutation_spec()
    perm = api.get(spec.line, store=store).read("permutation.safetensors")
    masks_b = apply_permutation(ps, perm, runs[1].masks)
    holes = 0
    for name, mask_a in runs[0].masks.items():
        union = mask_a | masks_b[name]
        holes += int((~union).sum())
        assert bool((bends[f"0/{name}"][~union] == 0).all()), name
    assert holes > 0
    doc = api.get(spec, store=store).read("curve.json")
    assert min(doc["curve"]["sparsity"]) > 0.0


def vgg_run(seed: int) -> RunSpec:
    """A tiny VGG (BatchNorm) on 200 digits, one epoch."""
    return RunSpec(
        data=DataSpec(name="digits", train_size=200),
        model=ModelSpec(arch="vgg", width_mult=0.125),
        train=TrainSpec(epochs=1, batch_size=50, lr=0.003),
        seed=seed,
    )


def bn_curve() -> CurveSpec:
    """One epoch of a Bezier bend between two tiny VGGs."""
    straight = ConnectivitySpec(
        run_a=vgg_run(0), run_b=vgg_run(1), alphas=3, train_subset=100, test_subset=100
    )
    return CurveSpec(line=straight, epochs=1)


def test_batchnorm_statistics_are_recomputed_along_the_curve(store) -> None:
    """A BN net's curve evaluates with the reset rule; its ends match the line's exactly."""
    doc = api.get(bn_curve(), store=store).read("curve.json")
    assert doc["bn"] == doc["bn_rule"]["rule"] == "reset"
    for k in ("test_loss", "train_acc"):
        assert doc["curve"][k][0] == doc["line"]["curve"][k][0]
        assert doc["curve"][k][-1] == doc["line"]["curve"][k][-1]


def test_a_curve_matches_the_cpu(store, device) -> None:
    """The same spec trains the same curve on ``device`` (losses within 1e-3)."""
    spec = bn_curve()
    got = compute_curve(spec, Context(store=store, device=device))[0]["curve.json"]
    want = compute_curve(spec, Context(store=store, device=torch.device("cpu")))[0]["curve.json"]
    for k in ("train_loss", "test_loss"):
        np.testing.assert_allclose(got["curve"][k], want["curve"][k], rtol=1e-3)
    np.testing.assert_allclose(
        [h["loss"] for h in got["history"]], [h["loss"] for h in want["history"]], rtol=1e-3
    )


def test_bad_curves_are_one_line_errors_naming_the_field() -> None:
    """0 bends, negative epochs, an unknown kind, a REPAIR line: SpecError naming each."""
    cases = [
        (lambda: CurveSpec(bends=0), "bends"),
        (lambda: CurveSpec(epochs=-1), "epochs"),
        (lambda: CurveSpec(line=ConnectivitySpec(repair=True)), "line"),
        (lambda: ConnectivitySettings(curve_bends=0), "curve_bends"),
        (lambda: ConnectivitySettings(curve_epochs=-3), "curve_epochs"),
        (lambda: ConnectivitySettings(curves=("spline",)), "curves"),
        (lambda: ConnectivitySettings(curves=("bezier",), alignments=("naive",)), "curve_align"),
    ]
    for make, field in cases:
        with pytest.raises(SpecError, match=field) as err:
            make()
        assert "\n" not in str(err.value)


STUDY = """
name = "curves"
seeds = [0, 1]
[data]
name = "digits"
train_size = 200
[model]
arch = "mlp"
width = 16
depth = 1
[train]
epochs = 1
batch_size = 50
[[methods]]
method = "dense"
[analyses.connectivity]
alphas = 3
train_subset = 100
repair = false
instability = false
curves = {curves}
curve_epochs = {epochs}
"""


def test_a_study_trains_its_curves_and_summarizes_them(store, tmp_path) -> None:
    """Bezier and chain per (naive, weight) pair of seeds; bad settings write nothing."""
    with pytest.raises(SpecError, match="curve_epochs"):
        parse_study(STUDY.format(curves='["bezier"]', epochs=-1))
    study = parse_study(STUDY.format(curves='["bezier", "polychain"]', epochs=1))
    specs = curve_specs(study)
    assert [(s.line.alignment, s.curve) for s in specs] == [
        ("naive", "bezier"), ("naive", "polychain"), ("weight", "bezier"), ("weight", "polychain")
    ]  # fmt: skip
    report = compute_study(study, store, only="connectivity")
    assert not report.failed, report.failed
    doc = summarize(study, store)
    assert doc["settings"]["curves"] == ["bezier", "polychain"]
    assert len(doc["curves"]) == 4
    for item in doc["curves"]:
        assert item["status"] == "cached" and item["epochs"] == 1
        assert set(item["barriers"]) == {"train", "test"}
        assert len(item["curve"]["test_loss"]) == len(item["line"]["curve"]["test_loss"]) == 3
        assert len(item["history"]) == 1


# ---------------------------------------------------------------------------
# figures (hand-made summary records: no store, no torch)


def curve_record(alignment: str, kind: str, barrier: float) -> dict:
    """A cached curve record shaped like ``curve_item``'s."""
    ts = [0.0, 0.5, 1.0]

    def values(h: float) -> dict:
        return {
            "alphas": ts,
            **{f"{s}_loss": [0.3, 0.3 + h, 0.3] for s in ("train", "test")},
            **{f"{s}_acc": [0.9, 0.9 - h / 10, 0.9] for s in ("train", "test")},
        }

    def barriers(h: float) -> dict:
        return {s: {"barrier_entezari": h} for s in ("train", "test")}

    return {
        "status": "cached", "curve_kind": kind, "bends": 1, "epochs": 2,
        "alignment": alignment, "run_a": "dense s0", "run_b": "dense s1", "method": "dense",
        "curve": values(barrier), "barriers": barriers(barrier),
        "line": {"curve": values(1.0), "barriers": barriers(1.0)},
        "history": [{"epoch": 1, "loss": 0.9}, {"epoch": 2, "loss": 0.5}],
    }  # fmt: skip


FIG_RUNS = [{"label": "dense s0", "method": "dense"}, {"label": "dense s1", "method": "dense"}]


@pytest.mark.parametrize("theme", ["normal", "presentation"])
def test_curve_figures_draw_the_curve_beside_its_line(theme) -> None:
    """One dotted line per alignment and pair, a solid curve per kind; barriers side by side."""
    from dashboard.figures import NORMAL, PRESENTATION
    from dashboard.figures import connectivity as fc
    from dashboard.figures import curves as fcv

    th = {"normal": NORMAL, "presentation": PRESENTATION}[theme]
    conn = {
        "pairs": [],
        "curves": [
            curve_record("naive", "bezier", 0.1),
            curve_record("naive", "polychain", 0.2),
            curve_record("weight", "bezier", 0.05),
        ],
    }
    fig = fcv.curve_paths(conn, FIG_RUNS, "test", th)
    names = [t.name for t in fig.data]
    # loss + accuracy per trace: 2 straight lines (naive, weight) and 3 curves
    assert len(fig.data) == 2 * 5 and names.count("naive (no alignment), straight line") == 2
    curve = next(t for t in fig.data if t.name == "weight matching, Bezier (1 bend)")
    assert list(curve.y) == [0.3, 0.35, 0.3] and curve.line.dash is None
    bars = fcv.curve_barriers(conn, FIG_RUNS, "test", th)
    assert [t.name for t in bars.data] == ["straight line", "curve"]
    assert list(bars.data[1].x) == [0.1, 0.2, 0.05] and set(bars.data[0].x) == {1.0}
    assert len(fcv.curve_history(conn, FIG_RUNS, th).data) == 3
    assert fig.layout.title.font.size == th.title_size
    assert fcv.curve_paths(conn, FIG_RUNS[:1]).data == ()  # run B hidden: nothing shown
    items = fc.catalogue({"connectivity": conn, "runs": FIG_RUNS}, None)
    assert [i.name for i in items] == ["connectivity-curves", "connectivity-curve-barriers"]


# ---------------------------------------------------------------------------
# the Connectivity page, read-only, on a study with two seeds and a curve


@pytest.mark.slow  # computes a small study (runs, paths, a curve) before the app starts
def test_the_connectivity_page_draws_curves_ensembles_and_variance(
    tmp_path, monkeypatch, request
) -> None:
    from streamlit.testing.v1 import AppTest

    from analysis.store import Store
    from tests.test_dashboard_app import APP, TIMEOUT, charts

    text = STUDY.format(curves='["bezier"]', epochs=1).replace("repair = false", "repair = true")
    study_file = tmp_path / "curves.toml"
    study_file.write_text(text)
    cache = tmp_path / "cache"
    report = compute_study(parse_study(text), Store(cache))
    assert not report.failed, report.failed
    request.getfixturevalue("compute_forbidden")  # from here on, pages may only read
    monkeypatch.setenv("PRUNESCOPE_STUDY", str(study_file))
    monkeypatch.setenv("PRUNESCOPE_CACHE", str(cache))
    for present in ("0", "1"):
        app = AppTest.from_file(str(APP), default_timeout=TIMEOUT)
        app.query_params = {"present": present}
        app.run()
        app.switch_page("app_pages/connectivity.py").run()
        assert not app.exception, [e.value for e in app.exception]
        assert {"curves", "curve_bars", "curve_history", "ensembles", "variance"} <= set(
            charts(app)
        )
