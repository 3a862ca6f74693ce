"""Representations: aligned UMAP embeddings, CKA, geometry, flips, PIEs and their summary.

One tiny digits study (dense and magnitude 80%, seeds 0 and 1) is trained and analysed
once per module: UMAP's first fit in a process pays a ~25 s numba compile.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from torch import nn

from analysis import api
from analysis.errors import SpecError
from analysis.plan import summarize
from analysis.representations import (
    FeaturesSpec,
    UmapSpec,
    _pies,
    geometry,
    linear_cka,
    modal,
    procrustes_align,
    representation_specs,
)
from analysis.specs import RunSpec, SparsitySpec, spec_key
from analysis.store import Store
from tests._tiny import compute, copy_entries, tiny_study, tiny_text

REP = {"subset_size": 200}

# umap-learn warns that a fixed random_state means one thread; that is what we want.
pytestmark = pytest.mark.filterwarnings("ignore:n_jobs value:UserWarning")


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """(study, store) with the runs and the representations part computed."""
    study = tiny_study(representations=REP)
    store = Store(tmp_path_factory.mktemp("rep") / "cache")
    compute(study, store, "runs", "representations")
    return study, store


@pytest.fixture(scope="module")
def section(tiny):
    """The ``representations`` section of the summary (one objective)."""
    study, store = tiny
    out = summarize(study, store)["representations"]
    assert len(out) == 1
    return out[0]


@pytest.fixture(scope="module")
def entry(tiny):
    """(spec, summary.json, embeddings.npz) of the study's representations entry."""
    study, store = tiny
    (spec,) = representation_specs(study)
    e = api.get(spec, store=store, compute=False)
    return spec, e.read("summary.json"), e.read("embeddings.npz")


# ---------------------------------------------------------------------------
# the summary


def test_summary_fields(section):
    assert section["status"] == "cached" and section["objective"] == "ce"
    assert section["reference"] == "dense s0"
    labels = [r["label"] for r in section["runs"]]
    assert labels == ["dense s0", "dense s1", "magnitude 80% s0", "magnitude 80% s1"]
    for r in section["runs"]:
        for key in ("trustworthiness_2d", "trustworthiness_3d", "knn_acc", "silhouette"):
            assert isinstance(r[key], float) and math.isfinite(r[key]), (r["label"], key)
        assert 0.0 <= r["knn_acc"] <= 1.0 and -1.0 <= r["silhouette"] <= 1.0
        assert set(r["geometry_mean"]) == {"angle", "norm", "margin"}
        assert 0.0 <= r["geometry_mean"]["angle"] <= 180.0 and r["geometry_mean"]["norm"] > 0
        assert isinstance(r["flips_lost"], int) and isinstance(r["flips_gained"], int)
        assert len(r["flips_lost_per_class"]) == 10 and len(r["class_acc_delta"]) == 10
        assert sum(r["flips_lost_per_class"]) == r["flips_lost"]
    assert set(section["pie_counts"]) == {"magnitude 80%"}
    cka = section["cka"]
    assert cka["labels"] == labels
    m = np.array(cka["matrix"])
    assert m.shape == (4, 4)
    np.testing.assert_allclose(m, m.T, atol=1e-5)  # float32 features: (a, b) vs (b, a) ~1e-6
    np.testing.assert_allclose(np.diag(m), 1.0, atol=1e-5)
    assert (m >= 0).all() and (m <= 1 + 1e-6).all()
    json.dumps(section, allow_nan=False)  # what `show --json` prints


def test_embeddings_are_faithful(section, entry):
    for r in section["runs"]:
        assert r["trustworthiness_2d"] > 0.8 and r["trustworthiness_3d"] > 0.8, r
    _, _, arrays = entry
    assert arrays["embedding_2d"].shape == (4, 200, 2)
    assert arrays["embedding_3d"].shape == (4, 200, 3)
    assert np.isfinite(arrays["embedding_2d"]).all() and np.isfinite(arrays["embedding_3d"]).all()
    assert arrays["images"].shape == (200, 1, 28, 28) and arrays["images"].dtype == np.uint8


def _residual(emb: np.ndarray, ref: np.ndarray) -> float:
    """Mean distance between the same points, relative to the RMS spread of ``ref``."""
    spread = np.sqrt(((ref - ref.mean(0)) ** 2).sum(1).mean())
    return float(np.linalg.norm(emb - ref, axis=1).mean() / spread)


def test_umap_leaves_torch_threads_alone(tiny):
    """numba's OpenMP layer resets the process's OpenMP thread count when it starts (on the
    module's first UMAP fit); compute_umap puts torch's back (conftest pins 1)."""
    assert torch.get_num_threads() == 1
    study, store = tiny
    s = study.analysis("representations")
    fspec = FeaturesSpec(run=study.runs()[0], subset_size=s.subset_size, subset_seed=s.subset_seed)
    api.get(UmapSpec(features=fspec, seed=7), store=store)
    assert torch.get_num_threads() == 1


@pytest.mark.parametrize("dims", [2, 3])
def test_aligned_embeddings_share_a_frame(tiny, entry, dims):
    _, store = tiny
    spec, doc, arrays = entry
    s = spec.settings
    aligned = arrays[f"embedding_{dims}d"]
    raw = []
    for run in spec.runs:
        fspec = FeaturesSpec(
            run=run, subset_size=s.subset_size, subset_seed=s.subset_seed, layer=s.layer
        )
        uspec = UmapSpec(
            features=fspec,
            n_components=dims,
            n_neighbors=s.n_neighbors,
            min_dist=s.min_dist,
            seed=s.umap_seed,
        )
        raw.append(api.get(uspec, store=store, compute=False).read("embedding.npz")["embedding"])
    # the reference (dense s0) is left where it is
    np.testing.assert_allclose(aligned[0], raw[0], atol=1e-4)
    pruned = doc["labels_of_runs"].index("magnitude 80% s0")
    after = _residual(aligned[pruned], aligned[0])
    before = _residual(raw[pruned], raw[0])
    assert after < 0.75 * before, (after, before)
    # alignment keeps the reference's spread
    centred = aligned[pruned] - aligned[pruned].mean(0)
    ref = raw[0] - raw[0].mean(0)
    assert np.linalg.norm(centred) == pytest.approx(np.linalg.norm(ref), rel=1e-4)


@pytest.mark.parametrize("dims", [2, 3])
def test_procrustes_align_is_exact_for_a_similarity_copy(dims):
    rng = np.random.default_rng(dims)
    ref = rng.normal(size=(50, dims)) * 3 + 1
    q, _ = np.linalg.qr(rng.normal(size=(dims, dims)))
    if np.linalg.det(q) < 0:
        q[:, 0] *= -1  # a proper rotation ...
    reflect = np.diag([-1.0] + [1.0] * (dims - 1))  # ... then a reflection
    copy = 0.37 * ref @ q @ reflect + rng.normal(size=dims) * 10
    assert np.linalg.det(q @ reflect) == pytest.approx(-1.0)
    np.testing.assert_allclose(procrustes_align(copy, ref), ref, atol=1e-4)
    np.testing.assert_allclose(procrustes_align(ref, ref), ref, atol=1e-5)


# ---------------------------------------------------------------------------
# linear CKA


def test_linear_cka_properties():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(300, 12))
    q, _ = np.linalg.qr(rng.normal(size=(12, 12)))
    assert linear_cka(x, x) == pytest.approx(1.0, abs=1e-12)
    assert linear_cka(x, x @ q) == pytest.approx(1.0, abs=1e-10)
    assert linear_cka(x, 7.5 * x) == pytest.approx(1.0, abs=1e-12)
    assert linear_cka(x, x + 3.0) == pytest.approx(1.0, abs=1e-12)  # centred
    y = x @ rng.normal(size=(12, 5)) + 0.5 * rng.normal(size=(300, 5))
    assert linear_cka(x @ q, 2 * y) == pytest.approx(linear_cka(x, y), abs=1e-10)
    assert linear_cka(x, y) == pytest.approx(linear_cka(y, x), abs=1e-12)
    unrelated = rng.normal(size=(300, 8))
    low = linear_cka(x, unrelated)
    assert 0.0 <= low < 0.2 and low < linear_cka(x, y)
    assert linear_cka(x, np.zeros((300, 3))) == 0.0  # degenerate, not NaN


# ---------------------------------------------------------------------------
# geometry


def test_geometry_angle_margin_norm():
    torch.manual_seed(0)
    head = nn.Linear(6, 3)
    w = head.weight.detach()
    labels = torch.tensor([0, 1, 2, 1])
    feats = torch.stack([2.0 * w[0], 0.5 * w[1], -w[2], torch.zeros(6)])
    # an orthogonal feature for the last sample: remove w[1]'s component from a random vector
    v = torch.randn(6)
    feats[3] = v - (v @ w[1]) / (w[1] @ w[1]) * w[1]
    logits = torch.tensor([[3.0, 1.0, 0.5], [0.0, -1.0, 2.0], [1.0, 1.0, 1.0], [0.2, 0.2, -5.0]])
    g = geometry(feats, logits, labels, head)
    np.testing.assert_allclose(g["angle"], [0.0, 0.0, 180.0, 90.0], atol=0.1)
    np.testing.assert_allclose(g["norm"], feats.norm(dim=1).numpy(), rtol=1e-6)
    # margin: true-class logit minus the largest other (negative when wrong, 0 on a tie)
    np.testing.assert_allclose(g["margin"], [2.0, -3.0, 0.0, 0.0], atol=1e-6)
    assert {k: v.dtype for k, v in g.items()} == dict.fromkeys(g, np.float32)


def test_stored_geometry_matches_the_head(tiny):
    study, store = tiny
    run = study.runs()[0]
    s = study.analysis("representations")
    feats = api.get(
        FeaturesSpec(run=run, subset_size=s.subset_size, subset_seed=s.subset_seed),
        store=store,
        compute=False,
    ).read("features.npz")
    model = api.get(run, store=store, compute=False).model()
    f = torch.from_numpy(feats["features"])
    logits = model.head(f)
    np.testing.assert_allclose(logits.detach().numpy(), feats["logits"], atol=1e-4)
    margin = np.sort(feats["logits"], axis=1)
    correct = feats["preds"] == feats["labels"]
    # correct predictions have a positive margin, wrong ones a negative one
    assert (feats["margin"][correct] >= 0).all() and (feats["margin"][~correct] <= 0).all()
    np.testing.assert_allclose(
        np.abs(feats["margin"][correct]), (margin[:, -1] - margin[:, -2])[correct], atol=1e-4
    )
    np.testing.assert_allclose(feats["norm"], np.linalg.norm(feats["features"], axis=1), rtol=1e-5)


# ---------------------------------------------------------------------------
# flips and PIEs


def test_flips_match_the_stored_predictions(section, entry):
    _, doc, arrays = entry
    preds, labels = arrays["preds"], arrays["labels"]
    correct = preds == labels[None]
    order = doc["labels_of_runs"]
    for i, r in enumerate(section["runs"]):
        dense = order.index(f"dense s{r['seed']}")
        assert doc["runs"][i]["flips_vs"] == f"dense s{r['seed']}"
        lost = correct[dense] & ~correct[i]
        gained = ~correct[dense] & correct[i]
        assert r["flips_lost"] == lost.sum() and r["flips_gained"] == gained.sum()
        assert r["flips_lost_per_class"] == np.bincount(labels[lost], minlength=10).tolist()
        delta = [
            correct[i][labels == c].mean() - correct[dense][labels == c].mean() for c in range(10)
        ]
        np.testing.assert_allclose(r["class_acc_delta"], delta, atol=1e-12)
        net = r["flips_gained"] - r["flips_lost"]
        assert correct[i].sum() - correct[dense].sum() == net
        if r["method"] == "dense":
            assert r["flips_lost"] == r["flips_gained"] == 0
            assert r["class_acc_delta"] == [0.0] * 10
    # the pruned runs do differ from dense on this subset
    assert sum(r["flips_lost"] for r in section["runs"]) > 0


def test_stored_preds_are_the_features_preds(tiny, entry):
    _, store = tiny
    spec, _, arrays = entry
    s = spec.settings
    for i, run in enumerate(spec.runs):
        f = api.get(
            FeaturesSpec(run=run, subset_size=s.subset_size, subset_seed=s.subset_seed),
            store=store,
            compute=False,
        ).read("features.npz")
        np.testing.assert_array_equal(arrays["preds"][i], f["preds"])
        np.testing.assert_array_equal(arrays["labels"], f["labels"])
        np.testing.assert_array_equal(arrays["indices"], f["indices"])
        np.testing.assert_array_equal(f["preds"], f["logits"].argmax(1))


def test_pies_in_the_study(section, entry):
    spec, doc, arrays = entry
    expect = _pies(spec.runs, arrays["preds"])
    assert {k: len(v) for k, v in expect.items()} == section["pie_counts"]
    assert {k: v.tolist() for k, v in expect.items()} == doc["pies"]


def _run(method: str, seed: int, sparsity: float = 0.0) -> RunSpec:
    return RunSpec(sparsity=SparsitySpec(method=method, sparsity=sparsity), seed=seed)


def test_modal_and_tie_rule():
    preds = np.array([[1, 2, 3, 0], [2, 2, 1, 4], [1, 0, 3, 4]])
    np.testing.assert_array_equal(modal(preds), [1, 2, 3, 4])
    # a tie goes to the smallest label
    np.testing.assert_array_equal(modal(np.array([[3, 0, 9], [1, 5, 2]])), [1, 0, 2])


def test_pies_exactly():
    runs = (
        _run("dense", 0),
        _run("dense", 1),
        _run("magnitude", 0, 0.8),
        _run("magnitude", 1, 0.8),
        _run("random", 0, 0.8),  # one seed: no PIEs for it
        _run("snip", 0, 0.5),
        _run("snip", 1, 0.5),
        _run("snip", 2, 0.5),
    )
    preds = np.array(
        [
            [0, 1, 2, 3, 4],  # dense s0
            [0, 1, 2, 3, 9],  # dense s1: ties on the last sample -> 4
            [0, 1, 5, 3, 4],  # magnitude s0
            [0, 2, 5, 3, 9],  # magnitude s1: ties 1/2 -> 1 (same as dense); 4/9 -> 4 (same)
            [7, 7, 7, 7, 7],
            [0, 8, 2, 3, 9],  # snip: majority of three
            [0, 8, 2, 6, 9],
            [1, 1, 2, 6, 4],
        ]
    )
    out = _pies(runs, preds)
    assert set(out) == {"magnitude 80%", "snip 50%"}
    np.testing.assert_array_equal(out["magnitude 80%"], [2])
    np.testing.assert_array_equal(out["snip 50%"], [1, 3, 4])
    # with a single dense seed there is no dense population to compare with
    assert _pies(runs[1:], preds[1:]) == {}


# ---------------------------------------------------------------------------
# bad input, named layers


def test_bad_layer_lists_module_names():
    with pytest.raises(SpecError) as err:  # refused when the study loads
        tiny_study(representations={"layer": "nope"})
    msg = str(err.value)
    assert err.value.param.endswith("layer") and "'nope'" in msg
    for name in ("'penultimate'", "'body.fc0'", "'body.relu0'", "'head'"):
        assert name in msg


@pytest.mark.parametrize(
    ("table", "field"),
    [
        ({"subset_size": 0}, "subset_size"),
        ({"subset_size": 10**6}, "subset_size"),
        ({"layer": ""}, "layer"),
        ({"n_neighbors": 1}, "n_neighbors"),
        ({"min_dist": 2.0}, "min_dist"),
        ({"knn_k": 0}, "knn_k"),
        ({"subset_sise": 200}, "subset_sise"),
    ],
)
def test_bad_settings_name_the_field(table, field):
    with pytest.raises(SpecError) as err:
        tiny_study(representations=table)
    assert field in err.value.param and f"'{err.value.param}'" in str(err.value)


def test_mlp_module_names_are_what_the_error_lists():
    from analysis.data import dataset_info
    from analysis.models import build_for
    from analysis.representations import module_names

    study = tiny_study()
    model = build_for(study.model, dataset_info("digits"))
    names = [n for n, _ in model.named_modules() if n]
    assert names == ["body", "body.flatten", "body.fc0", "body.relu0", "head"]
    assert module_names(model) == ["penultimate", *names]


@pytest.mark.parametrize(
    ("layer", "width"),
    [("body.relu0", 32), ("body.fc0", 32), ("body.flatten", 784), ("head", 10)],
)
def test_named_layer_features(tiny, layer, width):
    study, store = tiny
    s = study.analysis("representations")
    named = tiny_study(representations={**REP, "layer": layer})
    assert len(representation_specs(named)) == 1  # a real name passes the check
    run = study.runs()[2]  # magnitude 80% s0
    get = lambda lay: api.get(  # noqa: E731
        FeaturesSpec(run=run, subset_size=s.subset_size, subset_seed=s.subset_seed, layer=lay),
        store=store,
    )
    entry = get(layer)
    feats = entry.read("features.npz")
    assert feats["features"].shape == (200, width) and entry.summary["dim"] == width
    penult = get("penultimate").read("features.npz")
    # the geometry is always the penultimate one, whatever layer is embedded
    np.testing.assert_array_equal(feats["angle"], penult["angle"])
    if layer == "body.relu0":  # the MLP's last hidden ReLU is its penultimate layer
        np.testing.assert_array_equal(feats["features"], penult["features"])
    if layer == "head":
        np.testing.assert_allclose(feats["features"], penult["logits"], atol=1e-5)
    if layer == "body.fc0":  # pre-activation: has negatives, and relu of it is the feature
        assert (feats["features"] < 0).any()
        np.testing.assert_allclose(np.maximum(feats["features"], 0), penult["features"], atol=1e-5)


def test_summary_before_compute_is_missing(tmp_path):
    study = tiny_study(representations=REP)
    (item,) = summarize(study, Store(tmp_path / "empty"))["representations"]
    assert item["status"] == "missing" and item["objective"] == "ce" and "runs" not in item
    (spec,) = representation_specs(study)
    assert item["key"] == spec_key(spec)


def test_show_json_survives_a_small_subset(tiny, tmp_path, capsys):
    """subset_size = 20 (the documented minimum): some class has a single sample, so the
    5-fold k-NN has < 2 folds and knn_acc is NaN; docs/summary.md promises null, not a crash."""
    from dashboard.cli import main

    study, store = tiny
    small = tmp_path / "small.toml"
    small.write_text(tiny_text(representations={"subset_size": 20}))
    copy_entries(study.runs(), store, Store(tmp_path / "cache"))
    cache = str(tmp_path / "cache")
    assert (
        main(["compute", str(small), "--only", "representations", "-q", "--cache-dir", cache]) == 0
    )
    capsys.readouterr()
    assert main(["show", str(small), "--cache-dir", cache, "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    first = doc["representations"][0]["runs"][0]
    assert first["knn_acc"] is None and "2 samples of every class" in first["knn_acc_reason"]


# ---------------------------------------------------------------------------
# both objectives


def test_supervised_and_supcon_runs(tmp_path):
    study = tiny_study(
        seeds=(0,), objectives=("ce", "supcon"), epochs=1, magnitude=False, representations=REP
    )
    store = Store(tmp_path / "cache")
    compute(study, store, "runs", "representations")
    section = summarize(study, store)["representations"]
    assert [s["objective"] for s in section] == ["ce", "supcon"]
    for item in section:
        assert item["status"] == "cached"
        expected = "dense s0" if item["objective"] == "ce" else "dense supcon s0"
        assert [r["label"] for r in item["runs"]] == [expected]
        assert item["reference"] == expected
        assert item["cka"]["matrix"] == [[pytest.approx(1.0)]]
        assert item["pie_counts"] == {}
        r = item["runs"][0]
        assert r["flips_lost"] == 0 and math.isfinite(r["trustworthiness_2d"])
    specs = representation_specs(study)
    assert [s.runs[0].train.objective for s in specs] == ["ce", "supcon"]
    assert "supcon" in specs[1].label and spec_key(specs[0]) != spec_key(specs[1])
    assert section[1]["key"] == spec_key(specs[1])
