"""Studies that sweep: axes, settings, ladders, lottery chains, all seed pairs, label noise."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch

from analysis.axes import ladder
from analysis.connectivity import ConnectivitySpec, InstabilitySpec, connectivity_specs
from analysis.data import load
from analysis.errors import SpecError
from analysis.label_noise import noisy_labels
from analysis.models import build_for
from analysis.models.resnet import BasicBlock
from analysis.sparsity.lottery import previous_round
from analysis.specs import DataSpec, ModelSpec, RunSpec, spec_key
from analysis.study import load_study, parse_study
from tests.test_bad_input import one_line

ROOT = Path(__file__).resolve().parents[1]

SWEEP = """
name = "sweep"
seeds = [0, 1]
[data]
name = "digits"
train_size = 300
label_noise = {noise}
[model]
arch = "mlp"
width = {width}
depth = 1
[train]
epochs = 1
batch_size = 50
[[methods]]
method = "dense"
[[methods]]
method = "magnitude"
sparsities = [0.8]
finetune_epochs = 1
"""


def sweep(width="[16, 32]", noise="0.0", extra: str = "") -> str:
    return SWEEP.format(width=width, noise=noise) + extra


def test_a_study_without_axes_is_the_study_it_was():
    study = load_study(ROOT / "assets/studies/demo.toml")
    assert len(study.settings()) == 1 and study.axes == ()
    runs = study.runs()
    bare = [
        RunSpec(data=r.data, model=r.model, train=r.train, sparsity=r.sparsity, seed=r.seed)
        for r in runs
    ]
    assert [spec_key(r) for r in runs] == [spec_key(r) for r in bare]
    assert runs[0].label == "dense s0" and runs[0].setting == ()


def test_each_combination_of_the_axes_is_a_setting_named_by_what_varies():
    study = parse_study(sweep(noise="[0.0, 0.25]"))
    assert [a.name for a in study.axes] == ["model.width", "data.label_noise"]
    assert len(study.settings()) == 4
    runs = study.runs()
    assert len(runs) == 4 * 2 * 2
    labels = {r.label for r in runs}
    assert len(labels) == len(runs)
    assert "width 32, noise 0.25 · magnitude 80% s1" in labels
    widths = {r.setting: r.model.width for r in runs}
    assert widths[(("model.width", 32), ("data.label_noise", 0.25))] == 32


def test_a_setting_is_a_label_not_part_of_the_key():
    swept = parse_study(sweep()).runs()
    alone = parse_study(sweep(width="32")).runs()
    by_key = {spec_key(r): r for r in swept}
    for run in alone:
        assert spec_key(run) in by_key
        assert by_key[spec_key(run)] == run  # equal: the setting is not compared
        assert by_key[spec_key(run)].label == f"width 32 · {run.label}"


@pytest.mark.parametrize(
    ("text", "field"),
    [
        (sweep(width="[]"), "model.width"),
        (sweep(width="[16, 16]"), "model.width"),
        (sweep(width="[16, 0]"), "model.width"),
        (sweep(noise="[0.0, 1.0]"), "data.label_noise"),
        (sweep(noise="1.0"), "data.label_noise"),
        (sweep().replace('arch = "mlp"', 'arch = "vgg"'), "model.width"),
        (sweep().replace("[train]", '[train]\nobjective = ["ce", "supcon"]'), "train.objective"),
        (
            sweep().replace(
                "sparsities = [0.8]",
                "sparsities = { ladder = 'geometric', from = 0.5, to = 1.2, steps = 3 }",
            ),
            "methods[1].sparsities.to",
        ),
        (
            sweep().replace(
                "sparsities = [0.8]", "sparsities = { ladder = 'lottery', rate = 0.0, steps = 3 }"
            ),
            "methods[1].sparsities.rate",
        ),
        (
            sweep().replace("sparsities = [0.8]", "sparsities = { ladder = 'cubic', steps = 3 }"),
            "methods[1].sparsities.ladder",
        ),
    ],
)
def test_bad_axes_and_ladders_get_one_line_naming_the_field(text, field):
    with pytest.raises(SpecError) as info:
        parse_study(text)
    assert repr(field) in one_line(info.value) or field in one_line(info.value)


def test_a_grid_past_the_run_limit_is_refused_with_its_count():
    widths = "[" + ", ".join(str(w) for w in range(8, 38)) + "]"
    text = sweep(width=widths, noise="[0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9]")
    text = text.replace("seeds = [0, 1]", "seeds = [0, 1, 2, 3]")
    with pytest.raises(SpecError) as info:
        parse_study(text)
    message = one_line(info.value)
    assert "at most 2000 runs" in message and "2400 runs (300 settings)" in message
    with pytest.raises(SpecError, match="at most 500 settings"):
        parse_study(
            sweep(width=widths.replace("[", "[100, 101, "), noise="[0.0, 0.1] ").replace(
                "[data]", "[data]\nsplit_seed = [" + ", ".join(map(str, range(9))) + "]"
            )
        )


def test_a_bad_axis_writes_nothing(tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text(sweep(width="[16, -1]"))
    cache = tmp_path / "cache"
    proc = subprocess.run(
        [sys.executable, "-m", "dashboard.cli", "compute", str(path), "--cache-dir", str(cache)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=300,
    )
    assert proc.returncode == 2, proc.stderr
    assert "model.width" in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
    assert not cache.exists() or not any(cache.rglob("meta.json"))


def test_ladders():
    geo = ladder({"ladder": "geometric", "from": 0.5, "to": 0.98, "steps": 6}, "s")
    assert geo[0] == 0.5 and geo[-1] == 0.98 and len(geo) == 6
    densities = [1 - s for s in geo]
    ratios = [b / a for a, b in zip(densities, densities[1:], strict=False)]
    assert max(ratios) - min(ratios) < 1e-8
    assert ladder({"ladder": "lottery", "rate": 0.2, "steps": 3}, "s") == [0.2, 0.36, 0.488]
    assert ladder({"ladder": "linear", "from": 0.1, "to": 0.9, "steps": 5}, "s")[2] == 0.5


def test_lottery_levels_of_an_entry_are_one_chain_per_seed():
    text = sweep(width="32").replace(
        'method = "magnitude"\nsparsities = [0.8]\nfinetune_epochs = 1',
        'method = "lottery"\nsparsities = { ladder = "lottery", rate = 0.3, steps = 4 }',
    )
    runs = [r for r in parse_study(text).runs() if r.sparsity.method == "lottery"]
    keys = {spec_key(r) for r in runs}
    for run in runs:
        previous = previous_round(run) if run.sparsity.opt("rounds") > 1 else None
        if previous is not None:
            assert spec_key(previous) in keys, run.label  # round k - 1 is a study run
    assert sorted(r.sparsity.opt("rounds") for r in runs if r.seed == 0) == [1, 2, 3, 4]


def test_an_explicit_list_of_lottery_levels_is_one_chain_too():
    text = sweep(width="32").replace(
        'method = "magnitude"\nsparsities = [0.8]\nfinetune_epochs = 1',
        'method = "lottery"\nsparsities = [0.9, 0.5, 0.7]\nrounds = 2',
    )
    runs = [r for r in parse_study(text).runs() if r.sparsity.method == "lottery" and r.seed == 0]
    chain = {r.sparsity.sparsity: r for r in runs}
    assert spec_key(previous_round(chain[0.9])) == spec_key(chain[0.7])
    assert spec_key(previous_round(chain[0.7])) == spec_key(chain[0.5])
    assert chain[0.5].sparsity.opt("rounds") == 2  # the first level in the entry's rounds


def test_every_pair_of_seeds_is_compared_and_every_seed_is_tested_for_instability():
    study = parse_study(sweep(width="32").replace("seeds = [0, 1]", "seeds = [0, 1, 2]"))
    specs = connectivity_specs(study)
    pairs = {
        (s.run_a.seed, s.run_b.seed)
        for s in specs
        if isinstance(s, ConnectivitySpec) and s.run_b.sparsity.method == "magnitude"
    }
    assert pairs == {(0, 1), (0, 2), (1, 2)}
    assert {s.run.seed for s in specs if isinstance(s, InstabilitySpec)} == {0, 1, 2}


def test_label_noise_makes_exactly_that_fraction_wrong_and_only_in_training():
    labels = torch.arange(1000) % 10
    noisy = noisy_labels(labels, 0.2, 10, seed=3)
    assert int((noisy != labels).sum()) == 200
    assert torch.equal(noisy, noisy_labels(labels, 0.2, 10, seed=3))
    assert not torch.equal(noisy, noisy_labels(labels, 0.2, 10, seed=4))
    clean, dirty = load(DataSpec(name="digits")), load(DataSpec(name="digits", label_noise=0.3))
    assert int((clean.train_y != dirty.train_y).sum()) == round(0.3 * len(clean.train_y))
    assert torch.equal(clean.val_y, dirty.val_y) and torch.equal(clean.test_y, dirty.test_y)


def test_resnet_depths_and_the_noshort_variant():
    info = load(DataSpec(name="digits")).info
    x = torch.rand(2, 1, 28, 28)
    for arch, blocks in (("resnet20", 9), ("resnet32", 15), ("resnet56", 27)):
        net = build_for(ModelSpec(arch=arch, width_mult=0.25), info)
        assert sum(isinstance(m, BasicBlock) for m in net.modules()) == blocks
        assert net(x).shape == (2, 10)
    plain = build_for(ModelSpec(arch="resnet20", width_mult=0.25, shortcuts=False), info)
    assert not any("shortcut.conv" in name for name, _ in plain.named_parameters())
    assert all(not b.residual for b in plain.modules() if isinstance(b, BasicBlock))
    with pytest.raises(SpecError, match="shortcuts"):
        ModelSpec(arch="mlp", shortcuts=False)


def test_a_chain_prunes_the_output_layer_at_half_of_each_rounds_rate():
    from analysis.sparsity.base import output_layer_sparsity
    from analysis.sparsity.lottery import round_sparsity

    chain = (round_sparsity(0.9, 3, 1), round_sparsity(0.9, 3, 2))
    equal = output_layer_sparsity("half", 0.9, 3)
    assert output_layer_sparsity("half", 0.9, 3, chain) == pytest.approx(equal)
    # an uneven chain: 50% then 80%: rates 0.5 and 0.6, the head pruned at 0.25 and 0.3
    assert output_layer_sparsity("half", 0.8, 2, (0.5,)) == pytest.approx(1 - 0.75 * 0.7)


def test_a_lottery_ladder_of_4_levels_and_2_seeds_trains_2_chains(tmp_path):
    from analysis.plan import compute_study
    from analysis.store import Store

    text = sweep(width="32").replace(
        'method = "magnitude"\nsparsities = [0.8]\nfinetune_epochs = 1',
        'method = "lottery"\nsparsities = { ladder = "lottery", rate = 0.2, steps = 4 }',
    )
    study = parse_study(text)
    store = Store(tmp_path / "cache")
    report = compute_study(study, store, only="runs")
    assert not report.failed
    stored = [p.parent for p in (tmp_path / "cache" / "run").rglob("meta.json")]
    assert len(stored) == 2 + 8  # the dense run and the 4 levels of one chain, per seed
    for run in study.runs():
        assert store.exists(run), run.label


def test_mask_pairs_stay_within_a_setting():
    from analysis.masks import pair_specs

    pairs = pair_specs(parse_study(sweep(width="[16, 32, 64]")))
    assert len(pairs) == 3 * 2  # one pair (dense, magnitude) per width and seed
    assert all(p.a.model == p.b.model for p in pairs)
