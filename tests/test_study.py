"""Study files: the examples load, and every mistake names its field."""

from __future__ import annotations

import pytest

from analysis.errors import DataError, SpecError
from analysis.specs import spec_key
from analysis.study import load_study, parse_study, with_available_data
from tests.conftest import STUDIES

GOOD = """
name = "t"
seeds = [0, 1]
[data]
name = "digits"
[model]
arch = "mlp"
width = 16
[train]
epochs = 1
[[methods]]
method = "dense"
[[methods]]
method = "lottery"
sparsities = [0.5, 0.8]
rounds = 2
rewind_step = 7
"""


@pytest.mark.parametrize("path", sorted(STUDIES.glob("*.toml")), ids=lambda p: p.stem)
def test_example_studies_load(path):
    study = load_study(path)
    assert study.runs()
    per_setting = len(study.seeds) * len(study.objectives)
    assert len(study.dense_runs()) == per_setting * len(study.settings())


def test_runs_expand_the_grid_and_share_one_training_spec():
    study = parse_study(GOOD)
    runs = study.runs()
    assert len(runs) == 2 * (1 + 2)
    assert all(r.train == study.train for r in runs)  # the rewind step is no one else's
    assert study.train.snapshot_steps == ()
    assert {r.sparsity.sparsity for r in runs} == {0.0, 0.5, 0.8}
    assert dict(runs[1].sparsity.options)["rounds"] == 2


def test_a_lottery_entry_does_not_rekey_the_other_runs():
    """Issue: a lottery entry with rewind_step > 0 used to re-key (and retrain) every run."""
    without = GOOD.split('[[methods]]\nmethod = "lottery"')[0]
    without += '[[methods]]\nmethod = "magnitude"\nsparsities = [0.5]\n'
    with_lottery = (
        without + '[[methods]]\nmethod = "lottery"\nsparsities = [0.5]\nrewind_step = 3\n'
    )
    before = {spec_key(r) for r in parse_study(without).runs()}
    after = {spec_key(r) for r in parse_study(with_lottery).runs()}
    assert before < after and len(after - before) == 2  # only the two lottery runs are new


@pytest.mark.parametrize(
    ("text", "field", "fragment"),
    [
        (GOOD.replace("[train]\nepochs = 1", "[train]\nepoch = 1"), "train.epoch", "epochs"),
        (GOOD.replace('name = "t"', 'name = "t"\nseed = [1]'), "seed", "seeds"),
        (GOOD.replace('method = "lottery"', 'method = "lotery"'), "methods[1].method", "'lottery'"),
        (GOOD.replace("[0.5, 0.8]", "[0.5, 1.5]"), "methods[1].sparsities", "[0, 1)"),
        (
            GOOD.replace("sparsities = [0.5, 0.8]", "sparsity = 1.5"),
            "methods[1].sparsity",
            "[0, 1)",
        ),
        (GOOD.replace("rounds = 2", "rounds = 0"), "methods[1].rounds", "[1, 50]"),
        (GOOD.replace("rounds = 2", "roundz = 2"), "methods[1].roundz", "'rounds'"),
        # digits, batch 128, 1 epoch: 1294 // 128 = 10 training steps
        (GOOD.replace("rewind_step = 7", "rewind_step = 500"), "methods[1].rewind_step", "[0, 9]"),
        (GOOD.replace("rewind_step = 7", "rewind_step = 10"), "methods[1].rewind_step", "10 steps"),
        (
            GOOD.replace("sparsities = [0.5, 0.8]", 'sparsities = [0.5]\noutput_layer = "drop"'),
            "methods[1].output_layer",
            "'keep'",
        ),
        (GOOD.replace('arch = "mlp"', 'arch = "mlpp"'), "model.arch", "'resnet20'"),
        (GOOD.replace('name = "digits"', 'name = "imagenet"'), "data.name", "'cifar10'"),
        (GOOD.replace("width = 16", 'width = "wide"'), "model.width", "int"),
        (GOOD.replace("seeds = [0, 1]", "seeds = [0, 0]"), "seeds", "distinct"),
        (GOOD.replace('name = "t"', 'name = "../../x"'), "name", "letters"),
        (GOOD + "\n[analyses.telepathy]\nx = 1\n", "analyses", "sections"),
        ("name = [", "file", "valid TOML"),
        ('name = "t"', "methods", "non-empty"),
    ],
)
def test_errors_name_the_field(text, field, fragment):
    with pytest.raises(SpecError) as info:
        parse_study(text)
    message = str(info.value)
    assert f"'{field}'" in message, message
    assert fragment in message, message
    assert "\n" not in message.strip() or field == "file"


def test_huge_file_refused():
    with pytest.raises(SpecError, match="KiB"):
        parse_study("#" * 300_000)


def test_fallback_dataset_is_said_plainly(monkeypatch):
    import analysis.data as data

    real_load = data.load

    def fake_load(spec, root=None, **kw):
        if spec.name == "fashion-mnist":
            raise DataError("Fashion-MNIST not found; looked in: nowhere")
        return real_load(spec, root, **kw)

    monkeypatch.setattr(data, "load", fake_load)
    study = load_study(STUDIES / "demo.toml")
    resolved, note = with_available_data(study)
    assert resolved.data.name == "digits"
    assert "fashion-mnist is not available" in note and "digits" in note
    nofallback = parse_study(GOOD.replace('name = "digits"', 'name = "fashion-mnist"'))
    with pytest.raises(DataError):
        with_available_data(nofallback)


def test_a_study_with_analyses_loads_in_a_fresh_process(tmp_path):
    """The analysis modules register their settings on import; load_study imports them."""
    import subprocess
    import sys

    path = tmp_path / "s.toml"
    path.write_text(
        'name = "s"\nseeds = [0]\n[data]\nname = "digits"\n[model]\narch = "mlp"\n'
        '[[methods]]\nmethod = "dense"\n[analyses.representations]\nsubset_size = 100\n'
    )
    code = "import sys; from analysis.study import load_study; load_study(sys.argv[1])"
    done = subprocess.run(
        [sys.executable, "-c", code, str(path)], capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr
