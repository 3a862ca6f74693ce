"""What is served is what was checked: edited listings, edited files, edited meta, wrong structure."""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from typing import ClassVar

import pytest

from analysis import api
from analysis.specs import SPEC
from analysis.store import Store, meta_digest


@dataclass(**SPEC)
class TableSpec:
    """A toy result with one JSON table and one array file."""

    kind: ClassVar[str] = "test-table"
    value: int = 1


COMPUTED: list[int] = []


def _compute(spec: TableSpec, ctx: api.Context) -> tuple[dict, dict]:
    COMPUTED.append(spec.value)
    return {"table.json": {"value": spec.value}, "arrays.npz": {"a": [spec.value]}}, {}


api.install(
    [
        api.Kind(
            "test-table",
            TableSpec,
            _compute,
            files={"table.json": ("value",), "arrays.npz": object},
        )
    ]
)


def forge(path, name: str, value) -> None:
    """Rewrite one file and make meta.json agree with it (sizes, checksums, digest): a clean forgery."""
    data = json.dumps(value).encode()
    (path / name).write_bytes(data)
    meta = json.loads((path / "meta.json").read_text())
    meta["files"][name] = {"sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data)}
    meta["digest"] = meta_digest(meta)
    (path / "meta.json").write_text(json.dumps(meta))


def edit_meta(path, change) -> None:
    """Edit meta.json in place (without updating its digest)."""
    meta = json.loads((path / "meta.json").read_text())
    change(meta)
    (path / "meta.json").write_text(json.dumps(meta))


def fresh(store: Store, value: int = 3) -> tuple[TableSpec, os.PathLike]:
    spec = TableSpec(value=value)
    api.get(spec, store=store)
    return spec, store.path(spec)


def test_a_file_dropped_from_the_listing_and_edited_is_not_served(store):
    spec, path = fresh(store)

    def drop(meta):
        del meta["files"]["table.json"]

    edit_meta(path, drop)
    (path / "table.json").write_text(json.dumps({"value": 99}))
    assert Store(store.root).load(spec) is None  # a fresh process would not serve it
    assert list((store.root / ".damaged").iterdir())


@pytest.mark.parametrize("listing", [{}, None])
def test_an_emptied_listing_is_damage(store, listing):
    spec, path = fresh(store)
    edit_meta(path, lambda meta: meta.update(files=listing))
    assert Store(store.root).load(spec) is None


def test_an_edited_meta_json_breaks_its_digest(store):
    spec, path = fresh(store)
    edit_meta(path, lambda meta: meta["summary"].update(test_acc=0.99))
    assert Store(store.root).load(spec) is None


def test_a_long_running_process_checks_files_edited_after_it_verified_them(store):
    spec, path = fresh(store)
    assert store.load(spec) is not None  # verified and remembered
    (path / "table.json").write_text(json.dumps({"value": 4}))  # same size, new content
    assert store.load(spec) is None


def test_a_checksum_valid_entry_of_the_wrong_structure_is_recomputed(store):
    spec, path = fresh(store, value=5)
    forge(path, "table.json", [])
    assert store.load(spec) is not None  # checksums and digest agree: the store alone serves it
    assert api.status(spec, store) == "missing"  # but its kind's structure does not
    COMPUTED.clear()
    assert api.get(spec, store=store).read("table.json") == {"value": 5}
    assert COMPUTED == [5]


def test_an_entry_from_before_the_digest_is_still_served(store):
    spec, path = fresh(store, value=6)
    edit_meta(path, lambda meta: meta.pop("digest"))
    assert Store(store.root).load(spec) is not None
