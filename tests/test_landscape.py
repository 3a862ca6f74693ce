"""Loss landscapes: Li et al. 2018's filter-normalised directions, the engine, planes, sharpness.

Claims checked: the centre of a surface is the model's own loss; filter
normalisation gives every filter of a direction its weight's norm; mask-respecting
directions keep a sparse model sparse at every grid point; the first-layer
linearity trick and bf16 give the plain loop's surface; grids resume after an
interruption; Lanczos on Hessian-vector products finds the explicit Hessian's top
eigenvalues and Hutchinson its trace.
"""

from __future__ import annotations

import copy
import json
from functools import cache

import numpy as np
import pytest
import torch
from torch import nn

from analysis import api
from analysis.batchnorm import has_batchnorm, reset_bn_stats
from analysis.data import load
from analysis.errors import SpecError
from analysis.landscape import (
    HessianProblem,
    LandscapeSettings,
    LandscapeSpec,
    PlaneSpec,
    SharpnessSpec,
    SurfaceProblem,
    compute_grid,
    filter_normalize,
    fuse_linear_relu,
    fused_linear_relu,
    grid_axis,
    hutchinson_trace,
    lanczos_top,
    landscape_specs,
    model_plane,
    precision_error,
    random_directions,
    surface_directions,
    trainable,
    trajectory_plane,
)
from analysis.models import build_for
from analysis.permutation import PermutationError
from analysis.specs import DataSpec, ModelSpec, RunSpec, TrainSpec
from analysis.train import evaluate, fit

DIGITS = DataSpec(name="digits", train_size=200)
SMALL = {
    "mlp": ModelSpec(arch="mlp", width=32, depth=2),
    "lenet": ModelSpec(arch="lenet"),
    "vgg": ModelSpec(arch="vgg", width_mult=0.25),  # BatchNorm, eval mode
}


@cache
def trained(arch: str, seed: int = 0) -> nn.Module:
    """A tiny network after 10 Adam steps on digits (eval mode). Do not mutate."""
    data = load(DIGITS)
    torch.manual_seed(seed)
    net = build_for(SMALL[arch], data.info)
    fit(net, data, TrainSpec(epochs=1, batch_size=32), seed=seed, max_steps=10)
    return net.eval()


@cache
def batch(n: int = 200) -> tuple[torch.Tensor, torch.Tensor]:
    """The first ``n`` digits test images."""
    data = load(DIGITS)
    return data.test_x[:n], data.test_y[:n]


def problem(arch: str, dims: int = 2, masks=None, seed: int = 0, **kw) -> SurfaceProblem:
    """A surface problem around the tiny trained ``arch`` network."""
    model = trained(arch)
    dirs = surface_directions(model, masks, dims=dims, seed=seed, **kw)
    x, y = batch()
    bn_x = x if has_batchnorm(model) else None  # statistics recomputed on x at every point
    return SurfaceProblem(model=model, centre=trainable(model), dirs=dirs, x=x, y=y, bn_x=bn_x)


def random_masks(model: nn.Module, keep: float = 0.5, seed: int = 0) -> dict:
    """Random bool masks on every prunable weight."""
    gen = torch.Generator().manual_seed(seed)
    params = dict(model.named_parameters())
    return {n: torch.rand(params[n].shape, generator=gen) < keep for n in model.prunable_names()}


def sparse_copy(arch: str) -> tuple[nn.Module, dict]:
    """The tiny trained network with random 50% masks applied."""
    model = copy.deepcopy(trained(arch))
    masks = random_masks(model)
    with torch.no_grad():
        for n, p in model.named_parameters():
            if n in masks:
                p.mul_(masks[n])
    return model, masks


# ---------------------------------------------------------------------------
# directions


@pytest.mark.parametrize("arch", ["mlp", "lenet"])
def test_filter_normalisation_gives_each_filter_its_weight_norm(arch):
    model = trained(arch)
    params = trainable(model)
    (d,) = surface_directions(model, None, dims=1, seed=3)
    for name, w in params.items():
        if w.dim() <= 1:
            assert torch.equal(d[name], torch.zeros_like(w))  # bias/BN ignored by default
            continue
        assert torch.allclose(d[name].flatten(1).norm(dim=1), w.flatten(1).norm(dim=1), rtol=1e-5)


def test_include_bias_bn_uses_the_parameter_itself():
    model = trained("mlp")
    (d,) = surface_directions(model, None, dims=1, seed=0, include_bias_bn=True)
    assert torch.equal(d["head.bias"], model.head.bias.detach())


def test_same_seed_same_raw_directions_for_runs_of_one_shape():
    a, b = trained("mlp", 0), trained("mlp", 1)
    ra, rb = random_directions(trainable(a), 5, 0), random_directions(trainable(b), 5, 0)
    assert all(torch.equal(ra[k], rb[k]) for k in ra)
    other = random_directions(trainable(a), 6, 0)
    second = random_directions(trainable(a), 5, 1)
    assert not torch.equal(ra["head.weight"], other["head.weight"])
    assert not torch.equal(ra["head.weight"], second["head.weight"])
    # normalised directions of two runs differ only by the per-filter scale
    da = filter_normalize(ra, trainable(a))["body.fc0.weight"]
    db = filter_normalize(rb, trainable(b))["body.fc0.weight"]
    cos = torch.nn.functional.cosine_similarity(da, db, dim=1)
    assert torch.allclose(cos, torch.ones_like(cos), atol=1e-5)


@pytest.mark.parametrize("arch", ["mlp", "lenet"])
def test_mask_respecting_directions_keep_every_grid_point_sparse(arch):
    model, masks = sparse_copy(arch)
    dirs = surface_directions(model, masks, dims=2, seed=0, respect_mask=True)
    params = trainable(model)
    for name, m in masks.items():
        for d in dirs:
            assert not d[name][~m].any()
            # normalised over the surviving weights: norm equals the (masked) weight's
            assert torch.allclose(
                d[name].flatten(1).norm(dim=1), params[name].flatten(1).norm(dim=1), rtol=1e-5
            )
    x, y = batch()
    prob = SurfaceProblem(model=model, centre=params, dirs=dirs, x=x, y=y)
    for a, b in [(1.0, -1.0), (0.3, 0.7), (-1.0, -1.0)]:
        prob.evaluate((a, b), engine="plain")
        for name, m in masks.items():
            assert not prob.params[name][~m].any(), (name, a, b)
    free = surface_directions(model, masks, dims=1, seed=0, respect_mask=False)[0]
    assert any(free[n][~m].any() for n, m in masks.items())


# ---------------------------------------------------------------------------
# the engine


@pytest.mark.parametrize("arch", ["mlp", "lenet", "vgg"])
def test_centre_equals_the_models_own_loss(arch):
    # BatchNorm nets (vgg): statistics are recomputed at every point, the centre too,
    # so the centre is the network with its statistics reset on the same samples
    prob = problem(arch)
    x, y = batch()
    ref = copy.deepcopy(trained(arch))
    reset_bn_stats(ref, x)  # a no-op (eval mode) without BatchNorm
    loss, acc = evaluate(ref, x, y)
    xs = grid_axis(5, 1.0)
    grid = compute_grid(prob, xs, xs)
    assert xs[2] == 0.0
    assert grid["loss"][2, 2] == pytest.approx(loss, rel=1e-6)
    assert grid["acc"][2, 2] == pytest.approx(acc)
    line = compute_grid(problem(arch, dims=1), xs)
    assert line["loss"][2] == pytest.approx(loss, rel=1e-6)
    if arch != "vgg":
        assert loss == pytest.approx(evaluate(trained(arch), x, y)[0], rel=1e-6)


@pytest.mark.parametrize("arch", ["mlp", "lenet", "vgg"])
def test_first_layer_linearity_gives_the_plain_loops_surface(arch):
    prob = problem(arch, include_bias_bn=True)
    xs = grid_axis(4, 0.8)
    plain = compute_grid(prob, xs, xs, engine="plain")
    fast = compute_grid(prob, xs, xs, engine="linear")
    np.testing.assert_allclose(fast["loss"], plain["loss"], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(fast["acc"], plain["acc"], atol=1.5 / len(batch()[0]))


def test_bf16_is_close_to_fp32():
    prob = problem("mlp")
    xs = grid_axis(3, 1.0)
    ref = compute_grid(prob, xs, xs)
    low = compute_grid(prob, xs, xs, precision="bf16")
    np.testing.assert_allclose(low["loss"], ref["loss"], rtol=0.03)
    err = precision_error(prob, xs, xs, low["loss"])
    assert 0 < err < 0.03


def test_row_cache_gives_the_same_values_in_any_order_and_mix_of_engines():
    # the linear engine caches the sums of a grid row; out-of-order points and
    # plain evaluations in between (which overwrite the fp32 model) must not leak
    prob = problem("mlp", include_bias_bn=True)
    pts = [(0.5, -0.3), (0.0, 0.7), (-0.4, -0.3), (0.5, 0.7), (0.0, 0.0), (0.3,)]
    fresh = [problem("mlp", include_bias_bn=True).evaluate(c) for c in pts]
    for precision in ("fp32", "bf16"):
        for c, ref in zip(pts + pts[::-1], fresh + fresh[::-1], strict=True):
            prob.evaluate(c, engine="plain")
            got = prob.evaluate(c, precision=precision)
            tol = 1e-6 if precision == "fp32" else 0.03
            assert got[0] == pytest.approx(ref[0], rel=tol)
            assert got == prob.evaluate(c, precision=precision)


def test_fused_linear_relu_matches_the_unfused_network():
    net = copy.deepcopy(trained("mlp")).to(torch.bfloat16)
    fused = copy.deepcopy(net)
    pairs, why = fuse_linear_relu(fused, skip="body.fc0")
    kinds = {n: type(m).__name__ for n, m in fused.named_modules()}
    assert kinds["body.fc0"] == "Linear" and kinds["body.relu0"] == "ReLU"  # skipped
    op, reason = fused_linear_relu()
    assert why == reason
    if op is None:  # this CPU cannot run the op: nothing fused, and it says why
        assert pairs == 0 and kinds["body.fc1"] == "Linear" and reason
    else:
        assert pairs == 1 and kinds["body.fc1"] == "LinearReLU"
        assert kinds["body.relu1"] == "Identity"
    assert dict(fused.named_parameters()).keys() == dict(net.named_parameters()).keys()
    x = batch()[0].to(torch.bfloat16)
    with torch.no_grad():
        torch.testing.assert_close(fused(x).float(), net(x).float(), rtol=0.02, atol=0.02)


def test_interrupted_grid_resumes_at_the_missing_rows(tmp_path):
    prob = problem("mlp")
    xs = grid_axis(5, 1.0)

    class Stop(Exception):
        pass

    def stop_after_two(i, n):
        if i == 2:
            raise Stop

    with pytest.raises(Stop):
        compute_grid(prob, xs, xs, partial=tmp_path, on_row=stop_after_two)
    assert sorted(p.name for p in tmp_path.glob("row_*.npz")) == ["row_00000.npz", "row_00001.npz"]
    calls = []
    resumed = compute_grid(prob, xs, xs, partial=tmp_path, on_row=lambda i, n: calls.append(i))
    assert resumed["evaluated_rows"].tolist() == [2, 3, 4]
    assert calls == [1, 2, 3, 4, 5]
    whole = compute_grid(prob, xs, xs)
    np.testing.assert_array_equal(resumed["loss"], whole["loss"])
    np.testing.assert_array_equal(resumed["acc"], whole["acc"])
    # a damaged chunk is recomputed, never served
    (tmp_path / "row_00003.npz").write_bytes(b"junk")
    again = compute_grid(prob, xs, xs, partial=tmp_path)
    assert again["evaluated_rows"].tolist() == [3]
    np.testing.assert_array_equal(again["loss"], whole["loss"])


# ---------------------------------------------------------------------------
# planes


def test_model_plane_coordinates_reconstruct_the_three_networks():
    a, b, c = (trainable(trained("mlp", s)) for s in (0, 1, 2))
    (u, v), coords = model_plane(a, b, c)
    assert coords[0].tolist() == [0.0, 0.0] and coords[1].tolist() == [1.0, 0.0]
    for n in a:
        rebuilt = a[n] + coords[2, 0] * u[n] + coords[2, 1] * v[n]
        assert torch.allclose(rebuilt, c[n], atol=1e-4)
    flat_u = torch.cat([u[n].flatten() for n in sorted(u)]).double()
    flat_v = torch.cat([v[n].flatten() for n in sorted(v)]).double()
    assert abs(float(flat_u @ flat_v)) < 1e-3 * float(flat_u.norm() ** 2)


def test_trajectory_plane_recovers_a_planar_path():
    final = trainable(trained("mlp"))
    gen = torch.Generator().manual_seed(0)
    e1 = {n: torch.randn(p.shape, generator=gen) for n, p in final.items()}
    e2 = {n: torch.randn(p.shape, generator=gen) for n, p in final.items()}
    path = [(3.0, 1.0), (2.0, 0.5), (1.0, -0.4), (0.5, 0.1)]
    snaps = [{n: final[n] + s * e1[n] + t * e2[n] for n in final} for s, t in path]
    (d1, d2), coords, ratio = trajectory_plane(snaps, final)
    assert ratio.sum() == pytest.approx(1.0, abs=1e-6)
    for (s, t), (p, q) in zip(path, coords, strict=True):
        for n in final:
            rebuilt = final[n] + p * d1[n] + q * d2[n]
            assert torch.allclose(rebuilt, final[n] + s * e1[n] + t * e2[n], atol=1e-4)


# ---------------------------------------------------------------------------
# sharpness


def tiny_mlp_problem(masks=None) -> tuple[HessianProblem, torch.Tensor]:
    """A 4-8-3 tanh MLP on random data and its explicit Hessian (dim, dim)."""
    from torch.func import functional_call, hessian

    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(4, 8), nn.Tanh(), nn.Linear(8, 3))
    x, y = torch.randn(32, 4), torch.randint(0, 3, (32,))
    prob = HessianProblem(net, x, y, masks)
    names = prob.names
    shapes = [prob.params[n].shape for n in names]
    sizes = [prob.params[n].numel() for n in names]

    net64 = copy.deepcopy(net).double()

    def loss(vec):
        pieces = [p.view(s) for p, s in zip(vec.split(sizes), shapes, strict=True)]
        parts = dict(zip(names, pieces, strict=True))
        return nn.functional.cross_entropy(functional_call(net64, parts, (x.double(),)), y)

    vec = torch.cat([prob.params[n].flatten() for n in names]).double()
    return prob, hessian(loss)(vec)


def test_lanczos_top_eigenvalues_match_the_explicit_hessian():
    prob, h = tiny_mlp_problem()
    assert prob.dim == 4 * 8 + 8 + 8 * 3 + 3
    true = torch.linalg.eigvalsh(h).flip(0)
    got = lanczos_top(prob.hvp, prob.dim, 3, 40, torch.Generator().manual_seed(1))
    np.testing.assert_allclose(got, true[:3].numpy(), rtol=1e-3, atol=1e-5)


def test_masked_hessian_is_the_surviving_weights_block():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(4, 8), nn.Tanh(), nn.Linear(8, 3))
    masks = {"0.weight": torch.rand(8, 4) < 0.5, "2.weight": torch.rand(3, 8) < 0.5}
    prob0, h = tiny_mlp_problem()
    prob = HessianProblem(prob0.model, prob0.x, prob0.y, masks)
    keep = prob.mask.bool()
    true = torch.linalg.eigvalsh(h[keep][:, keep]).flip(0)
    got = lanczos_top(prob.hvp, prob.dim, 2, 60, torch.Generator().manual_seed(1), prob.mask)
    np.testing.assert_allclose(got, true[:2].numpy(), rtol=1e-3, atol=1e-5)
    del net


def test_hutchinson_trace_is_close_to_the_true_trace():
    prob, h = tiny_mlp_problem()
    est = hutchinson_trace(prob.hvp, prob.dim, 800, torch.Generator().manual_seed(0))
    true = float(torch.trace(h))
    assert est.probes == 800  # no target: every probe
    assert abs(est.trace - true) < max(4 * est.stderr, 0.05 * abs(true))


# ---------------------------------------------------------------------------
# bad input


@pytest.mark.parametrize(
    "kwargs, param",
    [
        (dict(span=0.0), "span"),
        (dict(span=-1.0), "span"),
        (dict(grid=1), "grid"),
        (dict(dims=3), "dims"),
        (dict(precision="fp16"), "precision"),
    ],
)
def test_bad_surface_specs_name_the_field(kwargs, param):
    with pytest.raises(SpecError) as err:
        LandscapeSpec(**kwargs)
    assert err.value.param == param


def test_bad_settings_and_planes():
    with pytest.raises(SpecError, match="'span'"):
        LandscapeSettings(span=0.0)
    with pytest.raises(SpecError, match="'dims'"):
        LandscapeSettings(dims=(3,))
    run = RunSpec(data=DIGITS, model=SMALL["mlp"])
    other = run.replace(model=ModelSpec(arch="mlp", width=16, depth=2), seed=1)
    with pytest.raises(SpecError, match="'runs'"):
        PlaneSpec(runs=(run, other), plane="models", align=True)
    with pytest.raises(SpecError, match="'runs'"):
        PlaneSpec(runs=(run, run.replace(seed=1)), plane="models")  # 3 needed without align
    a = trainable(trained("mlp"))
    b = {n: torch.zeros(3, *p.shape[1:]) if p.dim() > 1 else p for n, p in a.items()}
    with pytest.raises(PermutationError, match="same architecture"):
        model_plane(a, b, a)


# ---------------------------------------------------------------------------
# study level


def test_study_landscape_end_to_end(store):
    from analysis.plan import PARTS, summarize
    from tests._tiny import compute, tiny_study

    assert "landscape" in PARTS
    study = tiny_study(
        seeds=(0,),
        epochs=2,
        landscape=dict(
            grid=3,
            plane_grid=3,
            subset=100,
            dims=[1, 2],
            sharpness_topk=2,
            hutchinson_samples=3,
            sharpness_batch=100,
        ),
    )
    specs = landscape_specs(study)
    kinds = sorted(s.kind for s in specs)
    assert kinds.count("landscape") == 4 and kinds.count("sharpness") == 2
    assert kinds.count("landscape_plane") == 2
    compute(study, store, "runs", "landscape")
    doc = summarize(study, store)["landscape"]
    json.dumps(doc)
    assert len(doc["runs"]) == 2 and len(doc["planes"]) == 2
    for rec in doc["runs"]:
        run = next(r for r in study.runs() if r.label == rec["label"])
        trained_run = api.get(run, store=store)
        from analysis.landscape import eval_batch

        x, y = eval_batch(run.data, "train", 100, 0)
        loss, _ = evaluate(trained_run.model(), x, y)
        for surf in rec["surfaces"]:
            assert surf["status"] == "cached"
            assert surf["centre_loss"] == pytest.approx(loss, rel=1e-5)
            assert surf["min_loss"] <= surf["centre_loss"] <= surf["max_loss"]
            assert "loss" not in surf and surf["key"]
            if rec["method"] != "dense":
                assert surf["sparsity"] == pytest.approx(rec["sparsity"], abs=0.01)
        sharp = rec["sharpness"]
        assert len(sharp["eigenvalues"]) == 2
        assert sharp["eigenvalues"][0] >= sharp["eigenvalues"][1]
        # 3 probes at most: the error reached is reported beside the trace
        assert sharp["trace_probes"] == 3 and sharp["trace_rel_error"] > 0
        assert sharp["split"] == "train" and sharp["n"] == 100
    for surf in (s for rec in doc["runs"] for s in rec["surfaces"]):
        assert surf["split"] == "train" and surf["bn"] == "none" and surf["n"] == 100
        assert surf["fused"] is False and surf["fused_path"] and surf["nonfinite_points"] == 0
    for plane in doc["planes"]:
        ev = plane["explained_variance"]
        assert 0 <= ev[1] <= ev[0] <= 1 and ev[0] + ev[1] <= 1 + 1e-9
        assert plane["explained_variance_method"].startswith("sklearn PCA")
    spec = next(s for s in specs if s.kind == "landscape" and s.dims == 2)
    arrays = api.get(spec, store=store).read("surface.npz")
    assert arrays["loss"].shape == (3, 3)
    assert not any(store.partial_dir(spec).iterdir())  # partial chunks cleaned up


def test_sharpness_spec_validates():
    with pytest.raises(SpecError, match="'topk'"):
        SharpnessSpec(topk=-1)


def test_study_model_plane_through_a_run_its_twin_and_the_aligned_twin(store):
    from analysis.landscape import eval_batch
    from analysis.plan import summarize
    from tests._tiny import compute, tiny_study

    study = tiny_study(
        seeds=(0, 1),
        epochs=2,
        magnitude=False,
        landscape=dict(
            grid=3,
            plane_grid=3,
            subset=100,
            dims=[1],
            trajectory=False,
            model_plane=True,
            sharpness_topk=0,
            hutchinson_samples=0,
        ),
    )
    compute(study, store, "runs", "landscape")
    (plane,) = summarize(study, store)["landscape"]["planes"]
    assert plane["status"] == "cached" and plane["plane"] == "models" and plane["align"]
    a, b, c = plane["coords"]
    assert a == [0.0, 0.0] and b == [1.0, 0.0] and c[1] != 0.0
    run_a = api.get(study.runs()[0], store=store)
    x, y = eval_batch(run_a.spec.data, "train", 100, 0)
    assert plane["centre_loss"] == pytest.approx(evaluate(run_a.model(), x, y)[0], rel=1e-5)
    # each network's own point of the plane gives its own loss (no BatchNorm here)
    run_b = api.get(study.runs()[1], store=store)
    assert run_b.spec.seed == 1
    assert plane["network_loss"][0] == pytest.approx(plane["centre_loss"], rel=1e-6)
    assert plane["network_loss"][1] == pytest.approx(evaluate(run_b.model(), x, y)[0], rel=1e-4)
    assert plane["network_loss"][2] == pytest.approx(plane["network_loss"][1], rel=1e-4)


def test_a_parameter_shared_by_two_networks_gets_one_direction():
    """Li et al. 2018, Figure 5: with and without shortcuts, the shared layers' directions agree."""
    from analysis.data import dataset_info
    from analysis.models import build_for
    from analysis.specs import ModelSpec

    info = dataset_info("digits")
    short = trainable(build_for(ModelSpec(arch="resnet20", width_mult=0.25), info))
    plain = trainable(build_for(ModelSpec(arch="resnet20", width_mult=0.25, shortcuts=False), info))
    assert set(plain) < set(short)  # the noshort network lacks the projection shortcuts
    a, b = random_directions(short, 3, 0), random_directions(plain, 3, 0)
    assert all(torch.equal(a[name], b[name]) for name in plain)
