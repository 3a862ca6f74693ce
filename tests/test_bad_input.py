"""Bad input of any shape gets one line: deep TOML, huge lists, duplicate entries, hostile archives."""

from __future__ import annotations

import io
import zipfile

import pytest
import torch
from torch import nn

from analysis.checkpoints import expected_bytes, read_checkpoint
from analysis.errors import CheckpointError, SpecError
from analysis.study import parse_study

DENSE = '[[methods]]\nmethod = "dense"\n'


def one_line(err: BaseException, most: int = 400) -> str:
    text = str(err)
    assert "\n" not in text and len(text) <= most, text
    return text


def test_toml_nested_thousands_deep_is_one_line():
    with pytest.raises(SpecError) as info:
        parse_study("a = " + "[" * 5000 + "]" * 5000)
    assert "nested" in one_line(info.value)


def test_ten_thousand_seeds_are_named_in_a_short_line():
    text = "seeds = [" + ", ".join(map(str, range(10_000))) + "]\n" + DENSE
    with pytest.raises(SpecError) as info:
        parse_study(text)
    message = one_line(info.value)
    assert "'seeds'" in message and "10000 items" in message


def test_duplicate_method_tables_are_refused():
    with pytest.raises(SpecError) as info:
        parse_study("seeds = [0]\n" + DENSE + DENSE)
    assert "methods[1]" in one_line(info.value)


def _zip_checkpoint(tmp_path, compression: int, payload: bytes) -> str:
    path = tmp_path / "ckpt.pt"
    with zipfile.ZipFile(path, "w", compression=compression) as archive:
        archive.writestr("archive/data.pkl", payload)
    return path


def test_a_compressed_record_is_refused_before_it_is_inflated(tmp_path):
    path = _zip_checkpoint(tmp_path, zipfile.ZIP_DEFLATED, b"\0" * 50_000_000)
    assert path.stat().st_size < 1_000_000  # a zip bomb in small
    with pytest.raises(CheckpointError) as info:
        read_checkpoint(path, limit=10_000_000)
    assert "compressed" in one_line(info.value)


def test_records_larger_than_the_model_are_refused_before_loading(tmp_path):
    path = _zip_checkpoint(tmp_path, zipfile.ZIP_STORED, b"\0" * 3_000_000)
    with pytest.raises(CheckpointError) as info:
        read_checkpoint(path, limit=2_000_000)
    assert "bytes" in one_line(info.value)


def test_a_sparse_tensor_is_refused(tmp_path):
    path = tmp_path / "sparse.pt"
    buf = io.BytesIO()
    torch.save({"w": torch.eye(3).to_sparse()}, buf)
    path.write_bytes(buf.getvalue())
    with pytest.raises(CheckpointError) as info:
        read_checkpoint(path)
    assert "sparse" in one_line(info.value)


def test_a_real_checkpoint_fits_its_limit(tmp_path):
    model = nn.Linear(100, 10)
    path = tmp_path / "fine.pt"
    torch.save(model.state_dict(), path)
    state = read_checkpoint(path, limit=expected_bytes(model) + (1 << 20))
    assert set(state) == {"weight", "bias"}
