"""The store: atomic entries, damage detection, per-key locks, clear errors on failed writes."""

from __future__ import annotations

import json
import multiprocessing as mp
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import numpy as np
import pytest
import torch

from analysis import api
from analysis.errors import StoreError
from analysis.specs import SPEC, spec_key
from analysis.store import Store


@dataclass(**SPEC)
class CountSpec:
    """A toy spec whose compute counts its calls in a file."""

    kind: ClassVar[str] = "test-count"
    value: int = 1
    counter: str = ""
    sleep: float = 0.0

    @property
    def label(self) -> str:
        return f"count {self.value}"


def _compute(spec: CountSpec, ctx: api.Context):
    if spec.counter:
        with open(spec.counter, "a") as fh:
            fh.write("x")
    time.sleep(spec.sleep)
    files = {
        "weights.safetensors": {"w": torch.full((3,), float(spec.value))},
        "arrays.npz": {"a": np.arange(spec.value)},
        "table.json": {"value": spec.value},
    }
    return files, {"value": spec.value}


api.install([api.Kind("test-count", CountSpec, _compute)])


def test_commit_then_load_roundtrip(store):
    spec = CountSpec(value=4)
    entry = api.get(spec, store=store)
    assert entry.read("table.json") == {"value": 4}
    assert torch.equal(entry.read("weights.safetensors")["w"], torch.full((3,), 4.0))
    assert entry.read("arrays.npz")["a"].tolist() == [0, 1, 2, 3]
    meta = json.loads((entry.path / "meta.json").read_text())
    assert meta["key"] == spec_key(spec) and meta["summary"] == {"value": 4}
    assert entry.path.parent.parent.name == "test-count"
    assert entry.path.parent.name == spec_key(spec)[:2]


def test_second_get_is_served_from_store(store, tmp_path):
    counter = tmp_path / "calls"
    spec = CountSpec(value=2, counter=str(counter))
    api.get(spec, store=store)
    api.get(spec, store=store)
    api.get(spec, store=Store(store.root))  # a new process would see the same
    assert counter.read_text() == "x"


def _damage_truncate(path: Path) -> None:
    target = path / "weights.safetensors"
    target.write_bytes(target.read_bytes()[:10])


def _damage_empty(path: Path) -> None:
    (path / "table.json").write_bytes(b"")


def _damage_bitflip(path: Path) -> None:
    target = path / "arrays.npz"
    data = bytearray(target.read_bytes())
    data[len(data) // 2] ^= 0x01
    target.write_bytes(bytes(data))


def _damage_meta_spec(path: Path) -> None:
    meta = json.loads((path / "meta.json").read_text())
    meta["canonical"] = meta["canonical"].replace('"value":3', '"value":4')
    (path / "meta.json").write_text(json.dumps(meta))


def _damage_old_schema(path: Path) -> None:
    meta = json.loads((path / "meta.json").read_text())
    meta["schema"] = 0
    (path / "meta.json").write_text(json.dumps(meta))


def _damage_meta_garbage(path: Path) -> None:
    (path / "meta.json").write_text("{not json")


def _damage_missing_file(path: Path) -> None:
    (path / "table.json").unlink()


@pytest.mark.parametrize(
    "damage",
    [
        _damage_truncate,
        _damage_empty,
        _damage_bitflip,
        _damage_meta_spec,
        _damage_old_schema,
        _damage_meta_garbage,
        _damage_missing_file,
    ],
)
def test_damaged_entry_is_detected_quarantined_and_recomputed(store, tmp_path, damage, caplog):
    counter = tmp_path / "calls"
    spec = CountSpec(value=3, counter=str(counter))
    entry = api.get(spec, store=Store(store.root))
    damage(entry.path)
    fresh = Store(store.root)
    assert fresh.load(spec) is None  # never served
    assert "damaged cache entry" in caplog.text
    assert any((store.root / ".damaged").iterdir())  # kept aside for inspection, reported once
    again = api.get(spec, store=fresh)
    assert again.read("table.json") == {"value": 3}
    assert counter.read_text() == "xx"


def test_cached_verification_notices_rewritten_meta(store):
    spec = CountSpec(value=5)
    entry = api.get(spec, store=store)
    time.sleep(0.01)
    _damage_old_schema(entry.path)
    os.utime(entry.path / "meta.json", ns=(time.time_ns() + 10**9, time.time_ns() + 10**9))
    assert store.load(spec) is None


def _worker(root: str, counter: str, out: str) -> None:
    entry = api.get(CountSpec(value=9, counter=counter, sleep=1.0), store=Store(Path(root)))
    Path(out).write_text(json.dumps(entry.read("table.json")))


def test_two_processes_compute_once(tmp_path):
    ctx = mp.get_context("spawn")
    counter = tmp_path / "calls"
    procs = [
        ctx.Process(
            target=_worker, args=(str(tmp_path / "cache"), str(counter), str(tmp_path / f"out{i}"))
        )
        for i in range(2)
    ]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
        assert p.exitcode == 0
    assert counter.read_text() == "x"
    assert all(json.loads((tmp_path / f"out{i}").read_text()) == {"value": 9} for i in range(2))


def _hold_lock_forever(root: str) -> None:
    store = Store(Path(root))
    with store.lock(CountSpec(value=11)):
        time.sleep(600)


def test_lock_of_a_killed_process_does_not_block(tmp_path):
    ctx = mp.get_context("spawn")
    root = tmp_path / "cache"
    holder = ctx.Process(target=_hold_lock_forever, args=(str(root),))
    holder.start()
    lock_file = root / ".locks" / f"test-count-{spec_key(CountSpec(value=11))}.lock"
    deadline = time.time() + 60
    while not lock_file.exists() and time.time() < deadline:
        time.sleep(0.05)
    time.sleep(0.5)
    blocked = Store(root, lock_timeout=0.5)
    with pytest.raises(StoreError, match="timed out"):
        api.get(CountSpec(value=11), store=blocked)
    holder.kill()  # SIGKILL: no cleanup runs in the holder
    holder.join()
    entry = api.get(CountSpec(value=11), store=Store(root, lock_timeout=10))
    assert entry.read("table.json") == {"value": 11}


@pytest.mark.skipif(os.geteuid() == 0, reason="root ignores directory permissions")
def test_read_only_store_gives_clear_error(tmp_path):  # pragma: no cover - non-root only
    root = tmp_path / "cache"
    root.mkdir()
    os.chmod(root, 0o500)
    with pytest.raises(StoreError):
        api.get(CountSpec(value=1), store=Store(root))


def test_failed_write_leaves_store_consistent(store, monkeypatch):
    import analysis.store as store_mod

    real = store_mod._write_synced
    calls = {"n": 0}

    def failing(path, data, *, atomic=False):
        calls["n"] += 1
        if calls["n"] == 2:
            raise OSError(28, "No space left on device")
        return real(path, data, atomic=atomic)

    monkeypatch.setattr(store_mod, "_write_synced", failing)
    spec = CountSpec(value=6)
    with pytest.raises(StoreError) as info:
        api.get(spec, store=store)
    assert "No space left on device" in str(info.value) and str(store.root) in str(info.value)
    monkeypatch.setattr(store_mod, "_write_synced", real)
    assert store.load(spec) is None
    leftovers = [p for p in store.root.rglob(".tmp-*")]
    assert leftovers == []
    assert api.get(spec, store=store).read("table.json") == {"value": 6}


def test_compute_false_raises_not_computed(store):
    with pytest.raises(api.NotComputed):
        api.get(CountSpec(value=12), store=store, compute=False)
