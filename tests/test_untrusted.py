"""Untrusted checkpoints: `prunescope check` vets a colleague's file and never runs code from it."""

from __future__ import annotations

import os
import pickle
import warnings
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from analysis import api
from analysis.checkpoints import check_masks, inspect_checkpoint, read_checkpoint
from analysis.errors import CheckpointError
from analysis.store import Store
from dashboard.cli import main
from tests._tiny import tiny_text


class Payload:
    """A pickle payload: unpickling it would create ``marker`` (i.e. run code)."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """The tiny study (one seed, dense + magnitude 80%) with its runs in a store."""
    root = tmp_path_factory.mktemp("untrusted")
    study_path = root / "study.toml"
    study_path.write_text(tiny_text(seeds=(0,), epochs=2))
    from analysis.study import load_study

    study = load_study(study_path)
    store = Store(root / "cache")
    runs = {r.sparsity.method: api.get(r, store=store) for r in study.runs()}
    return study_path, study, store, runs


def _good_state(trained) -> dict[str, torch.Tensor]:
    return dict(trained[3]["magnitude"].state)


def _cli(*args: str) -> int:
    return main(list(args))


def test_valid_checkpoint_reports_sparsity_and_accuracy_without_writing(trained, tmp_path, capsys):
    study_path, study, store, runs = trained
    run = runs["magnitude"]
    ckpt = run.entry.file("model.safetensors")  # masks.safetensors sits beside it
    before = sorted(p for p in store.root.rglob("*"))
    report = inspect_checkpoint(ckpt, run.spec)
    assert report["masks"].endswith("masks.safetensors")
    assert report["sparsity"] == pytest.approx(run.metrics["achieved_sparsity"], abs=1e-6)
    assert report["test_acc"] == pytest.approx(run.metrics["test_acc"])
    assert set(report["layer_sparsity"]) == set(run.masks)
    code = _cli(
        "check",
        str(ckpt),
        "--study",
        str(study_path),
        "--run",
        run.label,
        "--cache-dir",
        str(store.root),
    )
    out = capsys.readouterr().out
    assert code == 0
    assert "valid mlp checkpoint" in out and "% pruned" in out and "test accuracy" in out
    assert f"the study's run {run.label}" in out
    assert sorted(p for p in store.root.rglob("*")) == before  # read-only: nothing written


def test_pickle_with_payload_is_refused_and_never_run(trained, tmp_path, capsys):
    marker = tmp_path / "pwned"
    for name, dump in (
        ("evil.pt", lambda f: torch.save({"w": Payload(marker)}, f)),
        ("evil.pkl", lambda f: pickle.dump({"w": Payload(marker)}, f)),
    ):
        path = tmp_path / name
        with open(path, "wb") as fh:
            dump(fh)
        with warnings.catch_warnings(record=True) as seen:
            warnings.simplefilter("always")
            with pytest.raises(CheckpointError, match="refused: it pickles objects other"):
                read_checkpoint(path)
        assert not [w for w in seen if "pickle protocol" in str(w.message)]  # one line, no more
        code = _cli("check", str(path), "--study", str(trained[0]), "--cache-dir", str(tmp_path))
        err = capsys.readouterr().err.strip()
        assert code == 2 and len(err.splitlines()) == 1 and "nothing from it was run" in err
        assert "weights_only" not in err  # torch's "retry with weights_only=False" is dropped
    assert "it imports posix.system" in str(read_checkpoint_error(tmp_path / "evil.pt"))
    assert not marker.exists()


def read_checkpoint_error(path: Path) -> CheckpointError:
    """The CheckpointError reading ``path`` raises."""
    with pytest.raises(CheckpointError) as info:
        read_checkpoint(path)
    return info.value


def _wrong_shape(state):
    state["body.fc0.weight"] = torch.zeros(7, 3)


def _wrong_dtype(state):
    state["head.weight"] = state["head.weight"].double()


def _missing_key(state):
    del state["head.bias"]


def _extra_key(state):
    state["body.fc9.weight"] = torch.zeros(2, 2)


def _nan(state):
    state["head.weight"] = torch.full_like(state["head.weight"], float("nan"))


@pytest.mark.parametrize(
    ("edit", "fragment"),
    [
        (_wrong_shape, "body.fc0.weight has shape (7, 3)"),
        (_wrong_dtype, "head.weight has dtype torch.float64"),
        (_missing_key, "missing ['head.bias']"),
        (_extra_key, "unexpected ['body.fc9.weight']"),
        (_nan, "head.weight holds NaN"),
    ],
)
def test_safetensors_not_matching_the_model_is_refused(trained, tmp_path, capsys, edit, fragment):
    state = _good_state(trained)
    edit(state)
    path = tmp_path / "colleague.safetensors"
    save_file(state, str(path))
    with pytest.raises(CheckpointError) as info:
        inspect_checkpoint(path, trained[3]["magnitude"].spec)
    assert fragment in str(info.value)
    code = _cli("check", str(path), "--study", str(trained[0]), "--cache-dir", str(tmp_path))
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and fragment in err


def test_truncated_safetensors_is_refused(trained, tmp_path):
    path = tmp_path / "cut.safetensors"
    save_file(_good_state(trained), str(path))
    path.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(CheckpointError, match="not a valid safetensors file"):
        read_checkpoint(path)


def test_pickle_named_safetensors_is_refused_without_unpickling(trained, tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "disguised.safetensors"
    path.write_bytes(pickle.dumps({"w": Payload(marker)}))
    with pytest.raises(CheckpointError, match="not a valid safetensors file"):
        read_checkpoint(path)
    assert not marker.exists()


def test_plain_tensor_torch_save_is_accepted(trained, tmp_path):
    path = tmp_path / "plain.pt"
    torch.save({"state_dict": _good_state(trained)}, path)
    report = inspect_checkpoint(path, trained[3]["magnitude"].spec)
    assert report["masks"] is None  # no masks beside it: sparsity from exact zeros
    assert report["sparsity"] == pytest.approx(0.8, abs=0.01)


def test_masks_that_do_not_match_are_refused(trained, tmp_path):
    run = trained[3]["magnitude"]
    model = run.model()
    good = {k: v.clone() for k, v in run.masks.items()}
    assert set(check_masks(model, good)) == set(good)
    name = next(iter(good))
    bad_shape = dict(good, **{name: good[name][:1]})
    with pytest.raises(CheckpointError, match=f"{name} has shape"):
        check_masks(model, bad_shape)
    all_ones_dropped = dict(good, **{name: torch.zeros_like(good[name])})
    with pytest.raises(CheckpointError, match=f"{name} is masked but its weight is not zero"):
        check_masks(model, all_ones_dropped)
    with pytest.raises(CheckpointError, match="not prunable weights"):
        check_masks(model, {"head.bias": torch.ones(10, dtype=torch.bool)})
    with pytest.raises(CheckpointError, match="values other than 0 and 1"):
        check_masks(model, {name: good[name].float() * 2})


def test_check_unknown_run_label_lists_the_valid_ones(trained, tmp_path, capsys):
    ckpt = trained[3]["dense"].entry.file("model.safetensors")
    code = _cli("check", str(ckpt), "--study", str(trained[0]), "--run", "nope")
    assert code == 2 and "dense s0" in capsys.readouterr().err
