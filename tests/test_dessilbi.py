"""DessiLBI (Fu et al. 2020): the proximal map, the iteration, the path it stores, bad options.

The registry's contract tests (tests/test_sparsity.py) cover masks, sparsity and
determinism; here: the group-lasso map, one step against the paper's equations,
the support growing along the path of a LeNet and an MLP on digits (inverse
scale space), the early-stopped subnet, and one-line refusals of bad kappa / nu.
"""

from __future__ import annotations

import pytest
import torch

import analysis.parts  # noqa: F401  (installs the kinds)
from analysis import api
from analysis.errors import SpecError
from analysis.sparsity import sparsity_spec
from analysis.sparsity.dessilbi import (
    NEVER,
    LBIPath,
    bits_support,
    group_prox,
    stop_epoch,
    support_bits,
)
from analysis.specs import DataSpec, ModelSpec, RunSpec, TrainSpec
from analysis.store import Store
from analysis.study import parse_study
from analysis.training_types import TrainState
from dashboard.cli import main

DATA = DataSpec(name="digits")


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """Tiny models run faster on one thread on a shared machine."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def test_group_prox_zeroes_small_rows_and_shrinks_the_rest_by_lambda():
    z = torch.tensor([[3.0, 4.0], [0.3, 0.4], [0.0, 0.0]])  # row norms 5, 0.5, 0
    out = group_prox(z, 1.0)
    assert torch.allclose(out[0], z[0] * 0.8)  # norm 5 -> 4, same direction
    assert torch.equal(out[1:], torch.zeros(2, 2))
    conv = torch.randn(4, 3, 2, 2)
    lam = float(conv.reshape(4, -1).norm(dim=1).median())
    kept = group_prox(conv, lam).reshape(4, -1).norm(dim=1) > 0
    assert torch.equal(kept, conv.reshape(4, -1).norm(dim=1) > lam)


def test_support_bits_round_trip():
    on = torch.tensor([True, False, False, True, True] + [False] * 70 + [True])
    bits = support_bits(on)
    assert bits_support(bits, len(on)) == on.tolist()
    assert support_bits(torch.zeros(3, dtype=torch.bool)) == "0"


def test_one_step_follows_the_linearized_bregman_iteration():
    """W, Z and Gamma after one step equal eq. 10 of the paper written out by hand."""
    torch.manual_seed(0)
    model = torch.nn.Linear(3, 4, bias=False)
    w0 = model.weight.detach().clone()
    grad = torch.randn(4, 3)
    opt = torch.optim.SGD(model.parameters(), lr=0.5)
    path = LBIPath({"weight": "P"}, kappa=2.0, nu=0.25, lam=0.1, momentum=0.9, weight_decay=0.0)
    state = TrainState(model, opt, total_steps=1, steps_per_epoch=1)
    path.on_start(state)
    path.gamma["weight"] = torch.full((4, 3), 0.05)
    model.weight.grad = grad.clone()
    path.before_step(state)
    gamma0 = torch.full((4, 3), 0.05)
    expected_w = w0 - 2.0 * 0.5 * (grad + (w0 - gamma0) / 0.25)
    expected_z = 0.5 * (w0 - gamma0) / 0.25
    assert torch.allclose(model.weight.detach(), expected_w)
    assert torch.allclose(path.z["weight"], expected_z)
    assert torch.allclose(path.gamma["weight"], 2.0 * group_prox(expected_z, 0.1))
    assert model.weight.grad is None  # the run's optimizer takes no step of its own


def test_stop_epoch_is_the_first_epoch_holding_enough_units():
    path = LBIPath({"a": "P", "b": "Q"}, kappa=1, nu=1, lam=1, momentum=0, weight_decay=0)
    path.fraction = {"a": [0.0, 0.25, 0.5, 1.0], "b": [0.0, 0.0, 0.5, 0.75]}
    path.entry = {"a": torch.full((4,), NEVER), "b": torch.full((4,), NEVER)}
    assert stop_epoch(path, 0.5, 0) == (2, True)
    assert stop_epoch(path, 0.1, 0) == (3, False)  # never 90%: the last epoch
    assert stop_epoch(path, 0.9, 1) == (1, True)
    assert stop_epoch(path, 0.9, 99) == (3, True)


def lbi_spec(arch: str, **options) -> RunSpec:
    """DessiLBI at half the units on digits; nu small so a short run shows its path."""
    model = ModelSpec(arch=arch, width=64, depth=2)
    train = TrainSpec(epochs=8, batch_size=50, lr=1e-3)
    opts = {"nu": 10.0, **options}
    return RunSpec(
        data=DATA, model=model, train=train, sparsity=sparsity_spec("dessilbi", 0.5, opts)
    )


@pytest.mark.slow
@pytest.mark.parametrize("arch", ["mlp", "lenet"])
def test_the_support_grows_along_the_path(arch, tmp_path):
    run = api.get(lbi_spec(arch), store=Store(tmp_path))
    path = run.metrics["notes"]["path"]
    assert path["epochs"] == list(range(9))
    total = {e: 0.0 for e in path["epochs"]}
    for name, layer in path["layers"].items():
        assert layer["support"][0] == 0.0, name  # Z = 0: the support starts empty
        for e, bits in enumerate(layer["on"]):
            on = bits_support(bits, layer["units"])
            assert sum(on) / layer["units"] == pytest.approx(layer["support"][e])
            total[e] += layer["support"][e]
    print(arch, {e: round(t, 2) for e, t in total.items()})
    assert total[0] == 0.0 < total[8]
    assert any(0.0 < t < total[8] for t in total.values())  # grew over epochs, not in one jump
    assert total[8] >= max(total.values()) - 1e-9  # grown, not collapsed, by the end
    notes = run.metrics["notes"]
    assert notes["support_reached"] and 1 <= notes["stop_epoch"] <= 8
    assert run.metrics["test_acc"] > 0.8


@pytest.mark.slow
def test_retrain_from_the_path_starts_at_the_stopped_weights(tmp_path):
    store = Store(tmp_path)
    run = api.get(lbi_spec("mlp", retrain="path", stop_epoch=3), store=store)
    assert run.metrics["notes"]["stop_epoch"] == 3
    assert run.metrics["notes"]["retrain"] == "path"
    init = api.get(lbi_spec("mlp", retrain="init", stop_epoch=3), store=store)
    assert torch.equal(run.masks["body.fc0.weight"], init.masks["body.fc0.weight"])
    assert not torch.equal(run.init_state["body.fc0.weight"], init.init_state["body.fc0.weight"])


@pytest.mark.parametrize("field", ["kappa", "nu", "lr", "lam"])
@pytest.mark.parametrize("value", [0, -1.0])
def test_a_non_positive_option_is_one_line_naming_it(field, value):
    with pytest.raises(SpecError) as info:
        sparsity_spec("dessilbi", 0.5, {field: value})
    message = str(info.value)
    assert f"'{field}'" in message and "\n" not in message


def test_fp16_and_a_stop_past_the_path_are_refused():
    with pytest.raises(SpecError, match="stop_epoch"):
        from analysis.sparsity import check_run

        check_run(lbi_spec("mlp", stop_epoch=9))


STUDY = """
name = "lbi-bad"
seeds = [0]
[data]
name = "digits"
[model]
arch = "mlp"
width = 16
depth = 1
[train]
epochs = 1
[[methods]]
method = "dessilbi"
sparsities = [0.5]
{field} = {value}
"""


@pytest.mark.parametrize("field", ["kappa", "nu"])
def test_a_bad_study_writes_nothing(field, tmp_path, capsys):
    text = STUDY.format(field=field, value=0)
    with pytest.raises(SpecError) as info:
        parse_study(text)
    assert f"methods[0].{field}" in str(info.value)
    study = tmp_path / "bad.toml"
    study.write_text(text)
    cache = tmp_path / "cache"
    assert main(["compute", str(study), "--cache-dir", str(cache), "-q"]) != 0
    err = capsys.readouterr().err.strip()
    assert field in err and len(err.splitlines()) == 1, err
    assert not cache.exists() or not any(p.is_file() for p in cache.rglob("*"))


def test_the_path_figure_draws_a_line_per_layer_and_marks_the_stop():
    from dashboard.figures.sparsity_paths import path_figure

    item = {
        "label": "dessilbi 50% s0",
        "stop_epoch": 2,
        "path": {
            "epochs": [0, 1, 2, 3],
            "layers": {
                "conv1.weight": {"units": 6, "support": [0.0, 0.0, 0.5, 1.0]},
                "fc1.weight": {"units": 120, "support": [0.0, 0.1, 0.2, 0.4]},
            },
        },
    }
    fig = path_figure(item)
    assert [t.name for t in fig.data] == ["conv1 (6)", "fc1 (120)"]
    assert list(fig.data[0].y) == [0.0, 0.0, 50.0, 100.0]
    assert any(s.x0 == 2 for s in fig.layout.shapes)
