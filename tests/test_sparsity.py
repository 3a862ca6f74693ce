"""Contract tests for every registered sparsity method, plus unit tests of the mask utilities.

The contract tests are parametrized over ``analysis.sparsity.methods()``: a new
method added to the registry is checked here with no new test code (its
sparsity is read from its ``unit``; only ``dense`` must be 0). Every run is
trained once per module (a module-scoped store) on a tiny spec: a 32x2 MLP on
300 digits, one epoch of four steps. The accuracy contract (a method's defaults
keep the pruned network at least 4x above chance) trains on the tiny study of
tests/_tiny.py, and on the same data and recipe with a 256x2 MLP, where a
global magnitude ranking would prune the whole output layer.
"""

from __future__ import annotations

import dataclasses
import functools
import math

import pytest
import torch

import analysis.train
from analysis import api
from analysis.data import load
from analysis.errors import SpecError
from analysis.models import build_for
from analysis.sparsity import get_method, methods, sparsity_spec
from analysis.sparsity.base import (
    OUTPUT_LAYER,
    erk_densities,
    masks_from_scores,
    output_layer_sparsity,
    random_masks,
)
from analysis.sparsity.gmp import cubic_sparsity
from analysis.sparsity.grasp import grasp_scores
from analysis.sparsity.lottery import round_sparsity
from analysis.sparsity.snip import snip_scores
from analysis.sparsity.synflow import synflow_masks
from analysis.specs import DataSpec, ModelSpec, RunSpec, TrainSpec, spec_key
from analysis.store import Store
from analysis.train import Callback, fit
from tests._tiny import tiny_study

DATA = DataSpec(name="digits", train_size=300)
MLP = ModelSpec(arch="mlp", width=32, depth=2)
# lottery with rewind_step=2 needs step 2 snapshotted by the dense run
TRAIN = TrainSpec(epochs=1, batch_size=64, snapshot_steps=(2,))
BASE = RunSpec(data=DATA, model=MLP, train=TRAIN)

METHODS = list(methods())
#: Non-default options the contract specs use (everything else: the method's defaults).
#: dessilbi retrains from the path: from init a removed unit is dead (zero row, column and
#: bias), so even unmasked training cannot regrow it and the regrowth check would be vacuous.
#: l1-sensitivity: max_drop 1 prunes every layer at the sparsity (the channel contract).
CONTRACT_OPTIONS = {
    "lottery": {"rewind_step": 2},
    "dessilbi": {"retrain": "path"},
    "l1-sensitivity": {"max_drop": 1.0},
}
#: Extra option settings checked for reaching the requested sparsity.
VARIANTS = [
    ("random", {"distribution": "erk"}),
    ("magnitude", {"scope": "layerwise"}),
    ("gmp", {"scope": "global"}),
    ("gmp", {"begin": 0.5, "end": 0.5}),  # one-shot window: used to leave the net dense
    ("lottery", {"rounds": 1, "scope": "layerwise"}),
]
#: Methods whose mask depends on the seed even before training.
SEEDED_MASKS = [m for m in ("random", "snip", "grasp", "synflow") if m in methods()]


def sparsity_for(name: str) -> float:
    """The contract sparsity of a method: 0 for dense, half the channels, 80% of the weights."""
    if name == "dense":
        return 0.0
    return 0.5 if get_method(name).unit == "channels" else 0.8


def spec_for(
    name: str, seed: int = 0, options: dict | None = None, base: RunSpec = BASE
) -> RunSpec:
    """The contract RunSpec of method ``name``."""
    opts = CONTRACT_OPTIONS.get(name, {}) if options is None else options
    sparsity = sparsity_spec(name, sparsity_for(name), options=opts)
    return base.replace(sparsity=sparsity, seed=seed)


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """Tiny models run faster on one thread, and far faster on a shared, busy machine
    (two spinning intra-op threads on two contended cores can cost 50x on a conv)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def run_store(tmp_path_factory) -> Store:
    """One store for the module: every run is trained once."""
    return Store(tmp_path_factory.mktemp("sparsity-store"))


@pytest.fixture(scope="module")
def other_store(tmp_path_factory) -> Store:
    """A second, independent store (determinism: the same spec computed again)."""
    return Store(tmp_path_factory.mktemp("sparsity-store-2"))


@pytest.fixture(scope="module")
def digits():
    """The contract data splits."""
    return load(DATA)


# ---------------------------------------------------------------------------
# contract checks (shared by the MLP, LeNet and ResNet tests)


def layer_is_layerwise(spec: RunSpec) -> bool:
    """Whether the method prunes every layer to the target (per-layer counts are exact)."""
    opts = dict(spec.sparsity.options)
    if "scope" in opts:
        return opts["scope"] == "layerwise"
    return opts.get("distribution") == "uniform"


def output_layer_target(spec: RunSpec) -> float | None:
    """The output layer's own sparsity under the spec's ``output_layer`` option (None: ranked)."""
    opts = dict(spec.sparsity.options)
    if "output_layer" not in opts:
        return None
    return output_layer_sparsity(
        opts["output_layer"], spec.sparsity.sparsity, opts.get("rounds", 1)
    )


def check_weight_sparsity(run, spec: RunSpec) -> None:
    """round(s * total) weights pruned: within one per layer (globally), exact-ish per layer.

    An output layer the method keeps out of the ranking holds its own sparsity,
    and the other layers make up the difference (layerwise: all at one rate).
    """
    masks, s = run.masks, spec.sparsity.sparsity
    pruned = {n: int((~m).sum()) for n, m in masks.items()}
    total = sum(m.numel() for m in masks.values())
    assert abs(sum(pruned.values()) - round(s * total)) <= len(masks), pruned
    head = output_layer_target(spec)
    rate = s
    if head is not None:
        assert abs(pruned[OUTPUT_LAYER] - round(head * masks[OUTPUT_LAYER].numel())) <= 1
        rest = total - masks[OUTPUT_LAYER].numel()
        rate = (s * total - pruned[OUTPUT_LAYER]) / rest
    if layer_is_layerwise(spec):
        for n, m in masks.items():
            if n != OUTPUT_LAYER or head is None:
                assert abs(pruned[n] - round(rate * m.numel())) <= 1, (n, pruned[n], m.numel())


def check_channel_sparsity(model, masks, fraction: float) -> dict[str, int]:
    """Every singly-produced group loses round(fraction * n) whole rows and matching columns.

    Returns the number of removed channels per group. The masks must be exactly
    the union of the removed producer rows and consumer columns.
    """
    ps = model.permutation_spec()
    prunable = set(model.prunable_names())
    expected = {n: torch.ones_like(m) for n, m in masks.items()}
    removed = {}
    for group, axes in ps.perm_to_axes.items():
        producers = [k for k, a in axes if a == 0 and k in prunable]
        if len(producers) != 1:
            continue
        prod = masks[producers[0]]
        n = prod.shape[0]
        dead = ~prod.reshape(n, -1).any(1)  # (n,) all-zero rows
        assert int(dead.sum()) == round(fraction * n), (group, int(dead.sum()), n)
        for key, axis in axes:
            if key in expected:
                shape = [1] * expected[key].dim()
                shape[axis] = n
                expected[key] &= (~dead).view(shape)
        removed[group] = int(dead.sum())
    assert removed, "no prunable channel group found"
    for n, m in masks.items():
        assert torch.equal(m, expected[n]), f"{n}: mask is not whole rows/columns"
    return removed


def check_masks_contract(run, spec: RunSpec) -> None:
    """Masks: bool, weight-shaped, one per prunable weight; sparsity reached and reported."""
    model = run.model()
    masks = run.masks
    params = dict(model.named_parameters())
    if spec.sparsity.method == "dense":
        assert masks == {}
        assert run.metrics["achieved_sparsity"] == 0.0
        return
    assert set(masks) == set(model.prunable_names())
    assert len(masks) == len(model.prunable_names())
    for n, m in masks.items():
        assert m.dtype == torch.bool, n
        assert m.shape == params[n].shape, n
    if get_method(spec.sparsity.method).unit == "channels":
        check_channel_sparsity(model, masks, spec.sparsity.sparsity)
    else:
        check_weight_sparsity(run, spec)
    kept = sum(int(m.sum()) for m in masks.values())
    total = sum(m.numel() for m in masks.values())
    assert run.metrics["achieved_sparsity"] == pytest.approx(1.0 - kept / total, abs=1e-12)
    assert run.metrics["kept_prunable_params"] == kept


def check_zeros(model_or_state, masks) -> None:
    """Every masked-out weight is exactly 0."""
    if isinstance(model_or_state, dict):
        values = model_or_state
    else:
        values = dict(model_or_state.named_parameters())
    for n, m in masks.items():
        bad = int((values[n].detach()[~m] != 0).sum())
        assert bad == 0, f"{n}: {bad} pruned weights are nonzero"


# ---------------------------------------------------------------------------
# the contract, for every registered method


@pytest.mark.parametrize("name", METHODS)
def test_masks_and_sparsity(name, run_store):
    spec = spec_for(name)
    run = api.get(spec, store=run_store)
    check_masks_contract(run, spec)
    assert run.metrics["requested_sparsity"] == spec.sparsity.sparsity
    assert run.metrics["sparsity_unit"] == get_method(name).unit


@pytest.mark.parametrize(
    ("name", "options"),
    [
        pytest.param(n, o, id=n + "-" + "-".join(f"{k}={v}" for k, v in o.items()))
        for n, o in VARIANTS
        if n in methods()
    ],
)
def test_option_variants_reach_sparsity(name, options, run_store):
    spec = spec_for(name, options={**CONTRACT_OPTIONS.get(name, {}), **options})
    check_masks_contract(api.get(spec, store=run_store), spec)


@pytest.mark.parametrize("name", METHODS)
def test_pruned_weights_are_zero_and_stay_zero(name, run_store, digits):
    spec = spec_for(name)
    run = api.get(spec, store=run_store)
    masks = run.masks
    check_zeros(run.state, masks)
    if not masks:
        pytest.skip(f"{name} has no masks")
    sgd = TrainSpec(
        optimizer="sgd", lr=0.05, momentum=0.9, weight_decay=1e-3, epochs=1, batch_size=64
    )
    adam = TrainSpec(optimizer="adam", lr=1e-2, weight_decay=1e-3, epochs=1, batch_size=64)
    for train in (sgd, adam):
        model = run.model()
        before = {n: p.detach().clone() for n, p in model.named_parameters()}
        fit(model, digits, train, seed=3, masks=masks)
        check_zeros(model, masks)
        changed = any(
            not torch.equal(p.detach()[masks[n]], before[n][masks[n]])
            for n, p in model.named_parameters()
            if n in masks
        )
        assert changed, f"{train.optimizer}: the kept weights did not train"
    if name == "l1-scratch":
        return  # trained thin from a zero-bias init, its removed channels are dead: none can regrow
    # Without the masks the same training regrows pruned weights: the check above has teeth.
    model = run.model()
    fit(model, digits, sgd, seed=3, masks=None)
    params = dict(model.named_parameters())
    regrown = sum(int((params[n].detach()[~m] != 0).sum()) for n, m in masks.items())
    assert regrown > 0


def test_zeros_check_fails_without_keep_masks(run_store, digits, monkeypatch):
    """With KeepMasks replaced by a no-op callback, momentum and decay regrow pruned weights."""
    name = "magnitude" if "magnitude" in methods() else METHODS[-1]
    run = api.get(spec_for(name), store=run_store)
    monkeypatch.setattr(analysis.train, "KeepMasks", Callback)
    model = run.model()
    sgd = TrainSpec(
        optimizer="sgd", lr=0.05, momentum=0.9, weight_decay=1e-3, epochs=1, batch_size=64
    )
    fit(model, digits, sgd, seed=3, masks=run.masks)
    with pytest.raises(AssertionError, match="pruned weights are nonzero"):
        check_zeros(model, run.masks)


@pytest.mark.parametrize("name", METHODS)
def test_seed_deterministic(name, run_store, other_store):
    spec = spec_for(name)
    a = api.get(spec, store=run_store)
    b = api.get(spec, store=other_store)
    assert a.state.keys() == b.state.keys()
    for k in a.state:
        assert torch.equal(a.state[k], b.state[k]), k
    assert a.masks.keys() == b.masks.keys()
    for k in a.masks:
        assert torch.equal(a.masks[k], b.masks[k]), k
    for k in a.init_state:
        assert torch.equal(a.init_state[k], b.init_state[k]), k
    strip = [{k: v for k, v in h.items() if k != "seconds"} for h in a.history]
    assert strip == [{k: v for k, v in h.items() if k != "seconds"} for h in b.history]


@pytest.mark.parametrize("name", SEEDED_MASKS)
def test_different_seeds_different_masks(name, run_store):
    a = api.get(spec_for(name, seed=0), store=run_store)
    b = api.get(spec_for(name, seed=1), store=run_store)
    assert any(not torch.equal(a.masks[k], b.masks[k]) for k in a.masks)


# ---------------------------------------------------------------------------
# a method's defaults must not destroy the network it prunes

#: Chance is 0.1 (ten classes); a pruned network at default settings must reach 4x that.
ABOVE_CHANCE = 0.4
#: Methods that can keep the output layer out of their ranking.
OUTPUT_LAYER_METHODS = [
    m for m in METHODS if any(p.name == "output_layer" for p in get_method(m).params)
]


@functools.cache
def tiny_base() -> RunSpec:
    """The dense run of the tiny study (tests/_tiny.py: 400 digits, 784-32-10, 3 epochs)."""
    return tiny_study(seeds=(0,), magnitude=False).dense_runs()[0]


def head_base() -> RunSpec:
    """The tiny study's data and recipe on a 784-256-256-10 MLP at lr 0.003.

    Its output layer keeps PyTorch's small default initialisation while the
    hidden weights grow, so a global magnitude ranking at 90% removes all of it
    (as on the demo MLP; ``test_the_head_config_strips_a_ranked_output_layer``).
    """
    base = tiny_base()
    return base.replace(
        model=ModelSpec(arch="mlp", width=256, depth=2),
        train=dataclasses.replace(base.train, lr=0.003),
    )


def default_spec(name: str, base: RunSpec, sparsity: float, **options) -> RunSpec:
    """Method ``name`` at its default options (``options`` aside) on ``base``."""
    if name == "dense":
        sparsity = 0.0
    elif get_method(name).unit == "channels":
        sparsity = 0.5
    return base.replace(sparsity=sparsity_spec(name, sparsity, options))


#: A learned supermask trains only scores on frozen random weights: the tiny study's 24 steps
#: are too few (14%); tests/test_supermask.py checks it learns, given 6 epochs of digits (66%).
TRAINED_WEIGHTS = [m for m in METHODS if m != "learned-supermask"]


@pytest.mark.parametrize("name", TRAINED_WEIGHTS)
def test_defaults_stay_above_chance_on_the_tiny_study(name, run_store):
    run = api.get(default_spec(name, tiny_base(), 0.8), store=run_store)
    assert run.metrics["test_acc"] >= ABOVE_CHANCE, run.metrics["layer_sparsity"]


@pytest.mark.parametrize("name", TRAINED_WEIGHTS)
def test_defaults_keep_the_output_layer_alive_at_90_percent(name, run_store):
    """Issue: global magnitude and lottery at 90% pruned the whole output layer (chance accuracy)."""
    run = api.get(default_spec(name, head_base(), 0.9), store=run_store)
    assert run.metrics["test_acc"] >= ABOVE_CHANCE, run.metrics["layer_sparsity"]
    if run.masks:
        assert run.masks[OUTPUT_LAYER].any(1).all(), "a class lost every input"


#: lottery-criterion ranks by growth (|w_f| - |w_i|), not size: a small head is not singled out.
@pytest.mark.parametrize("name", [m for m in OUTPUT_LAYER_METHODS if m != "lottery-criterion"])
def test_the_head_config_strips_a_ranked_output_layer(name, run_store):
    """The test above has teeth: ranked with the rest (globally), the output layer is pruned
    away; layerwise, it is pruned at the method's rate like every other layer."""
    spec = default_spec(name, head_base(), 0.9, output_layer="prune", scope="global")
    run = api.get(spec, store=run_store)
    assert run.metrics["layer_sparsity"][OUTPUT_LAYER] == 1.0
    assert run.metrics["test_acc"] < 0.2
    layerwise = default_spec(name, head_base(), 0.9, output_layer="prune", scope="layerwise")
    sparsity = api.get(layerwise, store=run_store).metrics["layer_sparsity"][OUTPUT_LAYER]
    assert sparsity == pytest.approx(0.9, abs=0.01)


def test_gmp_keeps_the_output_layer_dense_by_default(run_store):
    run = api.get(default_spec("gmp", head_base(), 0.9), store=run_store)
    assert run.metrics["layer_sparsity"][OUTPUT_LAYER] == 0.0
    assert run.metrics["achieved_sparsity"] == pytest.approx(0.9, abs=0.005)


# ---------------------------------------------------------------------------
# spec validation


def test_unknown_method_lists_every_valid_name():
    with pytest.raises(SpecError) as err:
        sparsity_spec("no-such-method", 0.5)
    msg = str(err.value)
    assert "no-such-method" in msg
    for name in METHODS:
        assert repr(name) in msg


@pytest.mark.parametrize("name", METHODS)
def test_unknown_option_names_it_and_the_valid_ones(name):
    with pytest.raises(SpecError) as err:
        sparsity_spec(name, sparsity_for(name), options={"bogus_option": 1})
    msg = str(err.value)
    assert "bogus_option" in msg
    params = get_method(name).params
    for p in params:
        assert repr(p.name) in msg
    if not params:
        assert "no options" in msg


@pytest.mark.parametrize("name", METHODS)
def test_bad_option_values_rejected(name):
    for p in get_method(name).params:
        if p.type is str and p.options is None:
            continue  # a free-form string accepts anything
        bad = "not-a-valid-value"
        with pytest.raises(SpecError, match=p.name):
            sparsity_spec(name, sparsity_for(name), options={p.name: bad})


@pytest.mark.parametrize("name", METHODS)
@pytest.mark.parametrize("sparsity", [1.5, -0.1, 1.0, float("nan")])
def test_out_of_range_sparsity(name, sparsity):
    with pytest.raises(SpecError, match="sparsity"):
        sparsity_spec(name, sparsity)


def test_dense_must_have_zero_sparsity():
    with pytest.raises(SpecError, match="sparsity"):
        sparsity_spec("dense", 0.5)


@pytest.mark.parametrize("name", [m for m in METHODS if m != "dense"])
def test_pruning_methods_need_positive_sparsity(name):
    with pytest.raises(SpecError, match="sparsity"):
        sparsity_spec(name, 0.0)


def test_lottery_defaults_filled_in():
    opts = dict(sparsity_spec("lottery", 0.5).options)
    assert {"rounds", "rewind_step", "scope"} <= set(opts)
    assert opts == {"rounds": 3, "rewind_step": 0, "scope": "global", "output_layer": "keep"}


@pytest.mark.parametrize("name", METHODS)
def test_defaults_do_not_change_the_key(name):
    s = sparsity_for(name)
    implicit = sparsity_spec(name, s)
    params = get_method(name).params
    assert [k for k, _ in implicit.options] == sorted(p.name for p in params if not p.omit_default)
    explicit = sparsity_spec(name, s, {p.name: p.default for p in params})
    as_tuple = sparsity_spec(name, s, tuple((p.name, p.default) for p in params))
    keys = {spec_key(BASE.replace(sparsity=x)) for x in (implicit, explicit, as_tuple)}
    assert len(keys) == 1
    # one option written out alone also keys like the implicit default
    for p in params:
        one = sparsity_spec(name, s, {p.name: p.default})
        assert spec_key(BASE.replace(sparsity=one)) == spec_key(BASE.replace(sparsity=implicit))


def test_int_and_float_option_values_key_alike():
    a = sparsity_spec("magnitude", 0.5, {"finetune_lr_scale": 1})
    b = sparsity_spec("magnitude", 0.5, {"finetune_lr_scale": 1.0})
    assert spec_key(BASE.replace(sparsity=a)) == spec_key(BASE.replace(sparsity=b))


# ---------------------------------------------------------------------------
# base.py: mask utilities


def _scores(seed: int = 0) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return {
        "a": torch.rand(20, 30, generator=g),
        "b": torch.rand(30, 10, generator=g),
        "c": torch.rand(10, 5, 1, 1, generator=g),
    }


def _pruned(masks) -> int:
    return sum(int((~m).sum()) for m in masks.values())


@pytest.mark.parametrize("sparsity", [0.0, 0.37, 0.6, 0.999])
def test_masks_from_scores_global_exact_and_ranked(sparsity):
    scores = _scores()
    masks = masks_from_scores(scores, sparsity, scope="global")
    total = sum(s.numel() for s in scores.values())
    assert _pruned(masks) == round(sparsity * total)
    kept = torch.cat([scores[n][masks[n]] for n in scores])
    gone = torch.cat([scores[n][~masks[n]] for n in scores])
    if len(gone) and len(kept):
        assert gone.max() <= kept.min()
    for n in scores:
        assert masks[n].dtype == torch.bool and masks[n].shape == scores[n].shape


@pytest.mark.parametrize("sparsity", [0.37, 0.6])
def test_masks_from_scores_layerwise_exact_and_ranked(sparsity):
    scores = _scores()
    masks = masks_from_scores(scores, sparsity, scope="layerwise")
    for n, s in scores.items():
        assert int((~masks[n]).sum()) == round(sparsity * s.numel())
        assert s[~masks[n]].max() <= s[masks[n]].min()


@pytest.mark.parametrize("scope", ["global", "layerwise"])
def test_masks_from_scores_current_masks_stay_pruned(scope):
    scores = _scores()
    # prune the 10% HIGHEST scores first: a fresh ranking would keep them
    current = {n: s < torch.quantile(s.flatten(), 0.9) for n, s in scores.items()}
    masks = masks_from_scores(scores, 0.5, scope=scope, current=current)
    for n in scores:
        assert not (masks[n] & ~current[n]).any(), f"{n}: a pruned weight came back"
    total = sum(s.numel() for s in scores.values())
    if scope == "global":
        assert _pruned(masks) == round(0.5 * total)
    else:
        for n, s in scores.items():
            assert int((~masks[n]).sum()) == round(0.5 * s.numel())
    # a lower target never regrows anything
    again = masks_from_scores(scores, 0.01, scope=scope, current=masks)
    for n in scores:
        assert torch.equal(again[n], masks[n])


def test_masks_from_scores_rejects_bad_scope():
    with pytest.raises(SpecError, match="scope"):
        masks_from_scores(_scores(), 0.5, scope="per-channel")


ERK_SHAPES = {
    "conv1": torch.Size((6, 1, 5, 5)),
    "conv2": torch.Size((16, 6, 5, 5)),
    "fc1": torch.Size((120, 400)),
    "fc2": torch.Size((84, 120)),
    "head": torch.Size((10, 84)),
}


@pytest.mark.parametrize("density", [0.05, 0.2, 0.5, 0.9])
def test_erk_densities(density):
    d = erk_densities(ERK_SHAPES, density)
    total = sum(math.prod(s) for s in ERK_SHAPES.values())
    kept = sum(d[n] * math.prod(s) for n, s in ERK_SHAPES.items())
    assert kept == pytest.approx(density * total, rel=1e-9)
    assert all(0.0 < v <= 1.0 for v in d.values())
    # smaller (relative to fan-in + fan-out) layers are denser, up to the cap
    ratio = {n: sum(s) / math.prod(s) for n, s in ERK_SHAPES.items()}
    order = sorted(ERK_SHAPES, key=ratio.get)
    for lo, hi in zip(order, order[1:], strict=False):
        assert d[lo] <= d[hi] + 1e-12
    if density >= 0.5:
        assert max(d.values()) == 1.0  # capped


def test_random_masks_exact_counts_and_seeded():
    shapes = {n: s for n, s in ERK_SHAPES.items()}
    dens = erk_densities(shapes, 0.3)
    a = random_masks(shapes, dens, torch.Generator().manual_seed(0))
    b = random_masks(shapes, dens, torch.Generator().manual_seed(0))
    c = random_masks(shapes, dens, torch.Generator().manual_seed(1))
    for n, s in shapes.items():
        assert int(a[n].sum()) == round(dens[n] * s.numel())
        assert torch.equal(a[n], b[n])
    assert any(not torch.equal(a[n], c[n]) for n in shapes if 0 < dens[n] < 1)


def test_gmp_cubic_sparsity_schedule():
    begin, end, final = 100, 500, 0.9
    assert cubic_sparsity(0, begin, end, final) == 0.0
    assert cubic_sparsity(begin, begin, end, final) == 0.0
    assert cubic_sparsity(end, begin, end, final) == final
    assert cubic_sparsity(end + 1000, begin, end, final) == final
    values = [cubic_sparsity(t, begin, end, final) for t in range(0, 700)]
    assert all(b >= a for a, b in zip(values, values[1:], strict=False))
    # Zhu & Gupta: s_t = s_f + (s_i - s_f) (1 - (t - t0) / (n dt))^3
    mid = 300
    expected = final + (0.0 - final) * (1 - (mid - begin) / (end - begin)) ** 3
    assert cubic_sparsity(mid, begin, end, final) == pytest.approx(expected)
    assert cubic_sparsity(mid, begin, end, final) == pytest.approx(0.9 * (1 - 0.5**3))
    # an empty window (begin == end) is a one-shot prune to the final sparsity
    assert cubic_sparsity(begin, begin, begin, final) == final
    # with an initial sparsity
    assert cubic_sparsity(begin, begin, end, final, initial=0.2) == 0.2


@pytest.mark.parametrize("final", [0.5, 0.8, 0.9, 0.95, 0.99, 0.3])
@pytest.mark.parametrize("rounds", [1, 2, 3, 5, 10])
def test_lottery_round_sparsity_telescopes(final, rounds):
    assert round_sparsity(final, rounds, 0) == 0.0
    assert round_sparsity(final, rounds, rounds) == final
    seq = [round_sparsity(final, rounds, r) for r in range(rounds + 1)]
    survive = [(1 - seq[r]) / (1 - seq[r - 1]) for r in range(1, rounds + 1)]
    for f in survive:  # each round keeps the same fraction of survivors
        assert f == pytest.approx((1 - final) ** (1 / rounds), abs=1e-8)


def _tiny_mlp(depth: int = 3, seed: int = 0):
    info = load(DATA).info
    torch.manual_seed(seed)
    return build_for(ModelSpec(arch="mlp", width=32, depth=depth), info)


def test_synflow_finite_scores_and_exact_sparsity(monkeypatch):
    import analysis.sparsity.synflow as synflow

    seen = []
    original = synflow.masks_from_scores

    def spy(scores, sparsity, **kw):
        for n, s in scores.items():
            assert torch.isfinite(s).all(), f"{n}: non-finite SynFlow score"
        seen.append(sparsity)
        return original(scores, sparsity, **kw)

    monkeypatch.setattr(synflow, "masks_from_scores", spy)
    model = _tiny_mlp(depth=6)
    masks = synflow_masks(model, 0.9, 20, (1, 28, 28))
    assert len(seen) == 20 and seen[-1] == pytest.approx(0.9)
    total = sum(m.numel() for m in masks.values())
    assert _pruned(masks) == round(0.9 * total)
    assert all(m.any() for m in masks.values()), "a layer collapsed"
    # scoring works on a copy: the model's own weights are untouched (no abs_ leak)
    assert any((p < 0).any() for p in model.parameters())


@pytest.mark.parametrize("arch", ["mlp", "lenet", "resnet20"])
def test_snip_grasp_scores_shapes(arch):
    data = load(DATA)
    torch.manual_seed(0)
    model = build_for(ModelSpec(arch=arch, width=16, depth=2, width_mult=0.25), data.info)
    x, y = data.train_x[:32], data.train_y[:32]
    buffers = {k: v.clone() for k, v in model.state_dict().items()}
    params = dict(model.named_parameters())
    for scores in (snip_scores(model, x, y), grasp_scores(model, x, y, 200.0)):
        assert list(scores) == model.prunable_names()
        for n, s in scores.items():
            assert s.shape == params[n].shape, n
            assert torch.isfinite(s).all() and (s >= 0).all(), n
    # scoring must not move the real model's BatchNorm statistics or weights
    for k, v in model.state_dict().items():
        assert torch.equal(v, buffers[k]), k


# ---------------------------------------------------------------------------
# conv nets


CONV_TRAIN = TrainSpec(epochs=1, batch_size=64)
FINETUNE = {"finetune_epochs": 1}


@pytest.mark.parametrize("name", ["magnitude", "l1-structured"])
def test_lenet_contract(name, run_store, digits):
    base = RunSpec(data=DATA, model=ModelSpec(arch="lenet", width_mult=0.5), train=CONV_TRAIN)
    spec = spec_for(name, options=FINETUNE, base=base)
    run = api.get(spec, store=run_store)
    check_masks_contract(run, spec)
    check_zeros(run.state, run.masks)
    model = run.model()
    sgd = TrainSpec(
        optimizer="sgd", lr=0.05, momentum=0.9, weight_decay=1e-3, epochs=1, batch_size=64
    )
    fit(model, digits, sgd, seed=3, masks=run.masks)
    check_zeros(model, run.masks)


def test_resnet20_l1_structured_skips_tied_residual_groups(run_store):
    base = RunSpec(data=DATA, model=ModelSpec(arch="resnet20", width_mult=0.25), train=CONV_TRAIN)
    spec = spec_for("l1-structured", options=FINETUNE, base=base)
    run = api.get(spec, store=run_store)
    check_masks_contract(run, spec)
    check_zeros(run.state, run.masks)
    masks = run.masks

    def dead_rows(key):
        m = masks[key]
        return int((~m.reshape(m.shape[0], -1).any(1)).sum())

    # stream producers (stem, every block's conv2, the projection shortcuts) keep every row
    stream = ["conv1.weight"] + [f"layer{s}.{b}.conv2.weight" for s in (1, 2, 3) for b in range(3)]
    shortcuts = [k for k in masks if ".shortcut." in k]
    assert len(shortcuts) == 2
    for key in stream + shortcuts:
        assert dead_rows(key) == 0, key
    # whose inputs are the stream are not masked at all (nor is the head)
    for key in ["conv1.weight", "head.weight", *shortcuts]:
        assert masks[key].all(), key
    # block-internal convs lose half their filters, and their conv2 the matching inputs
    for s in (1, 2, 3):
        for b in range(3):
            conv1, conv2 = f"layer{s}.{b}.conv1.weight", f"layer{s}.{b}.conv2.weight"
            n = masks[conv1].shape[0]
            assert dead_rows(conv1) == round(0.5 * n), conv1
            alive = masks[conv1].reshape(n, -1).any(1)
            assert torch.equal(
                masks[conv2].reshape(masks[conv2].shape[0], n, -1).any(2).any(0), alive
            )
    removed = run.metrics["notes"]["channels_removed"]
    assert set(removed) == {f"P_layer{s}.{b}.inner" for s in (1, 2, 3) for b in range(3)}


def test_lottery_rewind_run_ends_where_the_dense_run_ends(run_store):
    dense = api.get(spec_for("dense"), store=run_store)
    ticket = api.get(spec_for("lottery"), store=run_store)  # rewind_step=2, 4 steps an epoch
    assert ticket.history[-1]["step"] == dense.history[-1]["step"]
