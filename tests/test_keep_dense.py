"""``keep_dense``: every method can leave named layers (or the first and last) dense."""

from __future__ import annotations

import pytest
import torch

from analysis import api
from analysis.errors import SpecError
from analysis.sparsity import get_method, methods, sparsity_spec
from analysis.sparsity.base import kept_dense
from analysis.specs import DataSpec, ModelSpec, RunSpec, TrainSpec, spec_key
from analysis.store import Store
from analysis.study import parse_study
from tests.test_bad_input import one_line

BASE = RunSpec(
    data=DataSpec(name="digits", train_size=300),
    model=ModelSpec(arch="mlp", width=32, depth=2),
    train=TrainSpec(epochs=1, batch_size=64),
)
FIRST, LAST = "body.fc0.weight", "head.weight"
PRUNING = [m for m in methods() if m != "dense"]


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> Store:
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield Store(tmp_path_factory.mktemp("keep-dense"))
    torch.set_num_threads(before)


def test_the_names_resolve_against_the_network():
    names = ["body.fc0.weight", "body.fc1.weight", "head.weight"]
    spec = sparsity_spec("magnitude", 0.9, {"keep_dense": "first,head"})
    assert kept_dense(spec, names) == {"body.fc0.weight", "head.weight"}
    with pytest.raises(SpecError, match="keep_dense") as info:
        kept_dense(sparsity_spec("magnitude", 0.9, {"keep_dense": "conv9"}), names)
    assert "body.fc1" in one_line(info.value)


def test_an_empty_option_keeps_the_key():
    plain = sparsity_spec("snip", 0.9)
    assert "keep_dense" not in dict(plain.options)
    assert spec_key(BASE.replace(sparsity=plain)) == spec_key(
        BASE.replace(sparsity=sparsity_spec("snip", 0.9, {"keep_dense": ""}))
    )
    assert get_method("dense").all_params == get_method("dense").params


@pytest.mark.parametrize("name", PRUNING)
def test_every_method_leaves_the_first_and_last_layers_dense(name, store):
    unit = get_method(name).unit
    level = 0.5 if unit == "channels" else 0.7
    # Structured: a kept layer loses no channel on either side, so keeping both ends of
    # a 2-hidden-layer MLP would leave nothing to prune; keep the first only.
    options = {"keep_dense": "first" if unit == "channels" else "first,last"}
    if name in ("magnitude", "l1-structured", "l1-sensitivity"):
        options["finetune_epochs"] = 1
    if name == "l1-sensitivity":
        options["max_drop"] = 1.0  # every layer pruned at the level (as the contract tests)
    spec = BASE.replace(sparsity=sparsity_spec(name, level, options))
    run = api.get(spec, store=store)
    layers = run.metrics["layer_sparsity"]
    assert layers[FIRST] == 0.0, layers
    assert layers[LAST] == 0.0 or unit == "channels", layers
    assert layers["body.fc1.weight"] > 0.0
    if unit == "weights":  # the kept layers are out of the count: the rest is at the level
        assert layers["body.fc1.weight"] == pytest.approx(level, abs=0.01)


def test_a_study_takes_a_list_and_refuses_a_layer_that_is_not_there():
    text = """
seeds = [0]
[data]
name = "digits"
[model]
arch = "mlp"
width = 32
[[methods]]
method = "dense"
[[methods]]
method = "snip"
sparsities = [0.9]
keep_dense = ["first", "last"]
"""
    (_, run) = parse_study(text).runs()
    assert run.sparsity.opt("keep_dense") == "first,last"
    with pytest.raises(SpecError) as info:
        parse_study(text.replace('"last"]', '"conv1"]'))
    assert "methods[1].keep_dense" in one_line(info.value)
