"""Lottery-ticket anatomy: the controls reuse the ticket, change one ingredient each; mask
criteria; mask overlap, movement and supermasks (analysis.masks).

The registry contract tests (tests/test_sparsity.py) already check every new
method's masks, sparsity, zeros and determinism; these check what each is for.
"""

from __future__ import annotations

import pytest
import torch

from analysis import api
from analysis.errors import SpecError
from analysis.masks import (
    MaskPairSpec,
    SupermaskSpec,
    iou,
    mask_specs,
    movement,
    signed_constant_masked,
    summarize_masks,
)
from analysis.sparsity import get_method, sparsity_spec
from analysis.sparsity.lottery import Lottery
from analysis.sparsity.lottery_controls import ticket_of
from analysis.sparsity.lottery_criterion import criterion_scores
from analysis.specs import DataSpec, ModelSpec, RunSpec, TrainSpec
from analysis.store import Store
from tests._tiny import compute, tiny_study

BASE = RunSpec(
    data=DataSpec(name="digits", train_size=300),
    model=ModelSpec(arch="mlp", width=32, depth=2),
    train=TrainSpec(epochs=1, batch_size=64, lr=0.01),
)


def at(method: str, sparsity: float = 0.8, **options) -> RunSpec:
    """``method`` at ``sparsity`` on the tiny base, one lottery round unless said."""
    return BASE.replace(sparsity=sparsity_spec(method, sparsity, {"rounds": 1, **options}))


@pytest.fixture(autouse=True)
def one_thread():
    """Tiny models run faster on one thread on a shared machine."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> Store:
    """One store for the module: every run is trained once."""
    return Store(tmp_path_factory.mktemp("anatomy"))


# ---------------------------------------------------------------------------
# the controls


def test_each_control_names_its_ticket_and_the_criterion_picks_the_chain():
    assert ticket_of(at("lottery-reinit")) == at("lottery")
    assert ticket_of(at("lottery-signs", criterion="movement")) == at(
        "lottery-criterion", criterion="movement"
    )
    for name in ("lottery-reinit", "lottery-random-mask", "lottery-signs"):
        assert get_method(name).prerequisites(at(name)) == [at("lottery")]


def test_controls_read_the_ticket_from_the_store_and_never_retrain_it(store, monkeypatch):
    api.get(at("lottery"), store=store)
    calls = []
    original = Lottery.run
    monkeypatch.setattr(
        Lottery, "run", lambda self, ctx: calls.append(ctx.spec) or original(self, ctx)
    )
    for name in ("lottery-reinit", "lottery-random-mask", "lottery-signs"):
        api.get(at(name), store=store)
    assert calls == []


def test_reinit_keeps_the_mask_and_draws_new_weights(store):
    ticket, control = (
        api.get(at("lottery"), store=store),
        api.get(at("lottery-reinit"), store=store),
    )
    for n, m in ticket.masks.items():
        assert torch.equal(control.masks[n], m)
        kept = m
        assert not torch.allclose(control.init_state[n][kept], ticket.init_state[n][kept])
    assert control.metrics["notes"]["ticket"] == ticket.spec.label


def test_random_mask_keeps_each_layers_count_and_the_tickets_init(store):
    ticket = api.get(at("lottery"), store=store)
    control = api.get(at("lottery-random-mask"), store=store)
    differs = False
    for n, m in ticket.masks.items():
        assert int(control.masks[n].sum()) == int(m.sum()), n
        differs |= not torch.equal(control.masks[n], m)
        both = control.masks[n] & m  # where both keep a weight, both start from the same init
        assert torch.equal(control.init_state[n][both], ticket.init_state[n][both])
    assert differs


def test_signs_keep_the_tickets_signs_at_one_magnitude_per_layer(store):
    ticket, control = api.get(at("lottery"), store=store), api.get(at("lottery-signs"), store=store)
    for n, m in ticket.masks.items():
        start = control.init_state[n][m]
        assert torch.equal(torch.sign(start), torch.sign(ticket.init_state[n][m]))
        assert torch.unique(start.abs()).numel() == 1, n


def test_a_control_refuses_a_criterion_it_does_not_know():
    with pytest.raises(SpecError, match="criterion"):
        sparsity_spec("lottery-reinit", 0.8, {"criterion": "largest"})


# ---------------------------------------------------------------------------
# mask criteria (Zhou et al. 2019)


def test_criteria_rank_as_their_formulas_say():
    wi = {"w": torch.tensor([1.0, -1.0, 0.1, 0.5])}
    wf = {"w": torch.tensor([1.1, 0.2, 0.9, -2.0])}
    order = {
        c: torch.argsort(criterion_scores(c, wf, wi)["w"], descending=True).tolist()
        for c in ("large_final", "magnitude_increase", "movement", "large_final_same_sign")
    }
    assert order["large_final"] == [3, 0, 2, 1]
    assert order["magnitude_increase"][:2] == [3, 2]  # grew by 1.5 and 0.8
    assert order["movement"] == [3, 1, 2, 0]  # moved 2.5, 1.2, 0.8, 0.1
    scores = criterion_scores("large_final_same_sign", wf, wi)["w"]
    assert scores.tolist()[1] == 0.0 and scores.tolist()[3] == 0.0  # the signs flipped
    assert all(float(s.min()) >= 0 for s in criterion_scores("magnitude_increase", wf, wi).values())


def test_a_criterion_ticket_differs_from_the_magnitude_ticket(store):
    plain = api.get(at("lottery"), store=store)
    moved = api.get(at("lottery-criterion", criterion="movement"), store=store)
    assert moved.metrics["achieved_sparsity"] == pytest.approx(plain.metrics["achieved_sparsity"])
    assert any(not torch.equal(moved.masks[n], m) for n, m in plain.masks.items())


# ---------------------------------------------------------------------------
# mask analytics


def test_iou_and_movement_by_hand():
    a = torch.tensor([True, True, False, False])
    b = torch.tensor([True, False, True, False])
    assert iou(a, b) == pytest.approx(1 / 3)
    assert iou(a, a) == 1.0
    init, final = torch.tensor([1.0, -1.0, 0.5, 0.0]), torch.tensor([2.0, -1.0, 0.0, 0.0])
    out = movement(init, final, a)
    assert out["kept"] == {
        "count": 2,
        "mean_move": 0.5,
        "mean_growth": 0.5,
        "mean_init_magnitude": 1.0,
    }
    assert out["pruned"]["mean_move"] == pytest.approx(0.25)
    assert movement(init, final, torch.ones(4, dtype=torch.bool))["pruned"]["mean_move"] is None


def test_a_run_against_itself_overlaps_fully_and_against_dense_at_its_density(store):
    ticket = at("lottery")
    same = api.get(MaskPairSpec(a=ticket, b=ticket), store=store).read("masks.json")
    assert same["iou"] == 1.0
    doc = api.get(MaskPairSpec(a=BASE, b=ticket), store=store).read("masks.json")
    run = api.get(ticket, store=store)
    assert doc["iou"] == pytest.approx(1.0 - run.metrics["achieved_sparsity"])
    for n, m in run.masks.items():
        assert doc["layers"][n]["kept_b"] == int(m.sum())
        assert doc["a_by_b"][n]["kept"]["count"] == int(m.sum())
    # Zhou et al.: the weights a magnitude ticket keeps grew more in dense training than the rest
    first = next(iter(run.masks))
    assert (
        doc["a_by_b"][first]["kept"]["mean_growth"] > doc["a_by_b"][first]["pruned"]["mean_growth"]
    )


def test_supermask_evaluates_the_masked_init_untrained(store):
    from analysis.data import load
    from analysis.train import evaluate

    spec = at("lottery")
    doc = api.get(SupermaskSpec(run=spec), store=store).read("supermask.json")
    run = api.get(spec, store=store)
    model = run.model(run.init_state)  # the ticket's init is stored masked already
    data = load(spec.data)
    loss, acc = evaluate(model, data.test_x, data.test_y)
    assert doc["original"]["test_acc"] == pytest.approx(acc)
    assert doc["density"] == pytest.approx(1.0 - run.metrics["achieved_sparsity"])
    state = signed_constant_masked(run.init_state, run.masks)
    for n, m in run.masks.items():
        assert bool((state[n][~m] == 0).all())


def test_the_masks_section_lists_same_seed_pairs_and_supermasks(tmp_path):
    study = tiny_study(seeds=(0,), epochs=1)
    store = Store(tmp_path)
    compute(study, store, "runs", "masks")
    section = summarize_masks(study, store)
    assert [(p["a"], p["b"]) for p in section["pairs"]] == [("dense s0", "magnitude 80% s0")]
    (pair,) = section["pairs"]
    assert pair["status"] == "cached" and 0 < pair["iou"] < 1
    (sm,) = section["supermasks"]
    assert sm["label"] == "magnitude 80% s0" and 0 <= sm["original"]["test_acc"] <= 1
    assert len(mask_specs(study)) == 2


# ---------------------------------------------------------------------------
# figures of the Anatomy page (summary records in, plotly figures out)


def test_anatomy_figures_draw_what_the_summary_holds():
    from dashboard.figures import anatomy as fa

    runs = [
        {"label": "dense s0", "method": "dense", "status": "cached", "requested_sparsity": 0.0,
         "test_acc": 0.9},
        {"label": "lottery 90% s0", "method": "lottery", "status": "cached",
         "requested_sparsity": 0.9, "test_acc": 0.88},
        {"label": "lottery-reinit 90% s0", "method": "lottery-reinit", "status": "cached",
         "requested_sparsity": 0.9, "test_acc": 0.8},
    ]  # fmt: skip
    side = {"w": {"kept": {"mean_move": 0.2, "count": 5}, "pruned": {"mean_move": 0.1, "count": 5}}}
    pair = {"a": "dense s0", "b": "lottery 90% s0", "status": "cached", "iou": 0.1,
            "layers": {"w": {"iou": 0.1}}, "a_by_b": side, "b_by_a": side}  # fmt: skip
    masks = {
        "pairs": [pair],
        "supermasks": [
            {"label": "lottery 90% s0", "status": "cached", "original": {"test_acc": 0.3}}
        ],
    }
    heat = fa.overlap_heatmap(runs, masks).data[0]
    assert list(heat.x) == ["dense s0", "lottery 90% s0"] and heat.z[0][1] == pytest.approx(10.0)
    rows = fa.controls_rows(runs, masks)
    assert [(r["method"], r["mean"]) for r in rows] == [
        ("lottery", 88.0),
        ("lottery-reinit", 80.0),
        ("supermask (untrained)", 30.0),
    ]
    assert len(fa.controls_bars(runs, masks).data) == 3
    assert list(fa.movement_bars(pair).data[0].y) == [0.2]
    comp = {
        "label": "lottery 90% s0",
        "status": "cached",
        **{f: 1 for _, f, _ in fa.COMPRESSION_COLUMNS[1:]},
    }
    comp.update(label="lottery 90% s0", outputs_equal=True)
    table = fa.compression_table(runs, [comp]).data[0]
    assert list(table.cells.values[0]) == ["lottery 90% s0"]
    point = {"bits": 4, "accuracy": 0.8, "stochastic_accuracy_mean": 0.7,
             "stochastic_accuracy_std": 0.05}  # fmt: skip
    curve = fa.bits_curves(runs, [{"label": "dense s0", "status": "cached", "curve": [point]}])
    assert [t.name for t in curve.data[1:]] == ["dense s0 (nearest)", "dense s0 (stochastic)"]


def test_the_export_catalogue_has_an_anatomy_section_when_computed():
    from dashboard.figures import anatomy as fa
    from dashboard.figures.catalogue import sections

    assert sections()["Anatomy"] is fa.catalogue
    assert fa.catalogue({"runs": [], "masks": {}}, None) == []
