"""Content-addressed result store: one directory per (kind, key), written atomically.

Layout: ``<root>/<kind>/<key[:2]>/<key>/`` holding the result files and a
``meta.json`` (the spec, the schema and library versions, seconds spent, and the
sha256 and size of every file). An entry is written into a temporary sibling
directory and renamed into place (``os.rename`` of a directory is atomic on one
filesystem), so a reader sees either a whole entry or none. A per-key file lock
(``filelock``, i.e. ``flock``: the kernel drops it when its holder dies, so a
killed process never leaves a lock that blocks) makes identical concurrent
computations run once; a temp folder left by a writer killed mid-commit is
removed by the next holder of that key's lock. A failed write (disk full,
read-only store) raises a StoreError naming the entry, the step and the
reason, and leaves the store as it was. Every load re-checks the key, schema
and checksums; a damaged entry is moved to ``<root>/.damaged/``, reported once,
and recomputed, never served.

Files are (de)serialised by extension: ``.safetensors`` (dict of tensors),
``.npz`` (dict of arrays, loaded with ``allow_pickle=False``), ``.json`` and
``.parquet`` (pandas). Nothing is ever unpickled.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import logging
import os
import platform
import shutil
import time
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import filelock
import numpy as np

from analysis.atomic import fsync_dir as _fsync_dir
from analysis.atomic import write_problem
from analysis.atomic import write_synced as _write_synced
from analysis.errors import StoreError
from analysis.specs import SCHEMA_VERSION, canonical_json, spec_key, to_canonical

log = logging.getLogger("prunescope.store")

ENV_VAR = "PRUNESCOPE_CACHE"


def default_root() -> Path:
    """The store root: ``$PRUNESCOPE_CACHE`` if set, else ``./cache``."""
    return Path(os.environ.get(ENV_VAR) or "cache")


def sha256_file(path: Path) -> str:
    """sha256 hex digest of a file, read in 1 MiB blocks."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _host(value: Any) -> np.ndarray:
    """An array in host memory (a tensor on any device comes to the CPU first)."""
    if hasattr(value, "detach"):
        value = value.detach().cpu()
    return np.asarray(value)


def encode(name: str, value: Any) -> bytes:
    """Serialise one result file by its extension."""
    if name.endswith(".safetensors"):
        from safetensors.torch import save

        tensors = {k: v.detach().contiguous().cpu() for k, v in value.items()}
        return save(tensors)
    if name.endswith(".npz"):
        buf = io.BytesIO()
        np.savez(buf, **{k: _host(v) for k, v in value.items()})
        return buf.getvalue()
    if name.endswith(".json"):
        return json.dumps(value, indent=1, sort_keys=True, allow_nan=True).encode()
    if name.endswith(".parquet"):
        buf = io.BytesIO()
        value.to_parquet(buf, index=False)
        return buf.getvalue()
    raise StoreError(f"cannot store {name!r}: use .safetensors, .npz, .json or .parquet")


def decode(path: Path) -> Any:
    """Read one result file by its extension (never unpickles)."""
    name = path.name
    if name.endswith(".safetensors"):
        from safetensors.torch import load_file

        return load_file(str(path))
    if name.endswith(".npz"):
        with np.load(path, allow_pickle=False) as z:
            return {k: z[k] for k in z.files}
    if name.endswith(".json"):
        return json.loads(path.read_text())
    if name.endswith(".parquet"):
        import pandas as pd

        return pd.read_parquet(path)
    raise StoreError(f"unknown result file type: {path}")


@dataclass(frozen=True)
class Entry:
    """A verified, complete result directory."""

    path: Path
    meta: dict

    def file(self, name: str) -> Path:
        """Path of one result file of this entry."""
        return self.path / name

    def read(self, name: str) -> Any:
        """Decode one result file of this entry."""
        return decode(self.path / name)

    @property
    def summary(self) -> dict:
        """The small summary the compute function attached (may be empty)."""
        return self.meta.get("summary", {})


def _versions() -> dict:
    """Library versions written into every meta.json."""
    import torch

    from analysis import __version__

    return {
        "prunescope": __version__,
        "torch": torch.__version__,
        "python": platform.python_version(),
    }


@dataclass
class Store:
    """The content-addressed store rooted at ``root``."""

    root: Path = field(default_factory=default_root)
    lock_timeout: float = -1.0  # seconds; -1 waits as long as the holder lives
    _verified: dict = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        self.root = Path(self.root)

    # -- paths -------------------------------------------------------------
    def path(self, spec: Any) -> Path:
        """Directory of the entry of ``spec`` (which may not exist)."""
        key = spec_key(spec)
        return self.root / spec.kind / key[:2] / key

    def partial_dir(self, spec: Any) -> Path:
        """Scratch directory for resumable, in-progress work on ``spec``."""
        key = spec_key(spec)
        path = self.root / ".partial" / spec.kind / key
        path.mkdir(parents=True, exist_ok=True)
        return path

    def failure_path(self, spec: Any) -> Path:
        """Where a failed computation of ``spec`` is recorded."""
        return self.root / ".failed" / spec.kind / f"{spec_key(spec)}.json"

    # -- reading -----------------------------------------------------------
    def load(self, spec: Any) -> Entry | None:
        """The verified entry of ``spec``, or None (a damaged entry is quarantined)."""
        path = self.path(spec)
        meta_path = path / "meta.json"
        if not meta_path.exists():
            if path.exists():
                self._quarantine(path, "meta.json is missing")
            return None
        stamp = _stamp(path)
        if stamp is None:
            return None
        cached = self._verified.get(path)
        if cached is not None and cached.meta.get("_stamp") == stamp:
            return cached  # no file of the entry changed since it was verified
        problem, meta = self._check(spec, path)
        if problem:
            self._quarantine(path, problem)
            return None
        meta["_stamp"] = stamp
        entry = Entry(path=path, meta=meta)
        self._verified[path] = entry
        return entry

    def _check(self, spec: Any, path: Path) -> tuple[str | None, dict]:
        """Return (problem, meta): problem is None when the entry is whole and matches."""
        try:
            meta = json.loads((path / "meta.json").read_text())
        except (OSError, ValueError) as err:
            return f"meta.json unreadable ({err})", {}
        if not isinstance(meta, dict):
            return "meta.json is not an object", {}
        if meta.get("schema") != SCHEMA_VERSION:
            return f"written by schema {meta.get('schema')!r}, this is {SCHEMA_VERSION}", meta
        if meta.get("key") != spec_key(spec) or meta.get("canonical") != canonical_json(spec):
            return "meta.json's spec does not match its key", meta
        digest = meta.get("digest")
        if digest is not None and digest != meta_digest(meta):  # entries before it have none
            return "meta.json was edited after it was written (its digest does not match)", meta
        files = meta.get("files")
        if not isinstance(files, dict) or not all(isinstance(i, dict) for i in files.values()):
            return "meta.json lists no files", meta
        try:
            present = {p.name for p in path.iterdir()} - {"meta.json"}
        except OSError as err:
            return f"the entry cannot be listed ({err})", meta
        if present != set(files):
            extra, missing = sorted(present - set(files)), sorted(set(files) - present)
            return f"files not in meta.json: {extra}, missing: {missing}", meta
        for name, info in files.items():
            fpath = path / name
            try:
                size = fpath.stat().st_size
            except OSError:
                return f"{name} is missing", meta
            if size != info.get("bytes"):
                return f"{name} has {size} bytes, expected {info.get('bytes')}", meta
            if sha256_file(fpath) != info.get("sha256"):
                return f"{name} fails its checksum", meta
        return None, meta

    def quarantine(self, spec: Any, problem: str) -> None:
        """Move the entry of ``spec`` aside as damaged (e.g. a file of the wrong structure)."""
        path = self.path(spec)
        if path.exists():
            self._quarantine(path, problem)

    def _quarantine(self, path: Path, problem: str) -> None:
        """Move a damaged entry aside (never serve it) and report it once."""
        self._verified.pop(path, None)
        dest = self.root / ".damaged" / f"{path.name}-{int(time.time())}-{uuid.uuid4().hex[:6]}"
        try:
            dest.parent.mkdir(parents=True, exist_ok=True)
            os.rename(path, dest)
            where = f"moved to {dest}"
        except OSError:
            shutil.rmtree(path, ignore_errors=True)
            # a read-only store cannot move nor remove it: it stays, and is never served
            where = "left in place (the store is not writable)" if path.exists() else "removed"
        log.warning("damaged cache entry %s: %s; %s, it will be recomputed", path, problem, where)

    def exists(self, spec: Any) -> bool:
        """Whether a verified entry of ``spec`` exists."""
        return self.load(spec) is not None

    # -- writing -----------------------------------------------------------
    @contextlib.contextmanager
    def lock(self, spec: Any) -> Iterator[None]:
        """Hold the per-key lock of ``spec`` (one computation of a key at a time)."""
        lock_dir = self.root / ".locks"
        lock_path = lock_dir / f"{spec.kind}-{spec_key(spec)}.lock"
        try:
            lock_dir.mkdir(parents=True, exist_ok=True)
            lock = filelock.FileLock(str(lock_path))
            lock.acquire(timeout=self.lock_timeout)
        except filelock.Timeout as err:
            raise StoreError(
                f"timed out waiting for the lock of {spec.kind} {spec_key(spec)[:12]}"
            ) from err
        except OSError as err:
            raise StoreError(
                f"cannot lock {_label(spec)} in the store at {self.root}: "
                f"{write_problem(err, lock_path)}"
            ) from err
        try:
            # Holding the key's lock, any temp folder of this key is a dead writer's
            # (killed mid-commit): remove it so crashes do not leak disk space.
            self._sweep_tmp(spec)
            yield
        finally:
            lock.release()

    def _sweep_tmp(self, spec: Any) -> None:
        """Remove the temp folders a killed writer left for ``spec`` (call with its lock held)."""
        final = self.path(spec)
        with contextlib.suppress(OSError):
            for stale in final.parent.glob(f".tmp-{final.name}-*"):
                log.info("removing %s, left by an interrupted write", stale)
                shutil.rmtree(stale, ignore_errors=True)

    def commit(
        self,
        spec: Any,
        files: Mapping[str, Any],
        *,
        seconds: float = 0.0,
        summary: dict | None = None,
        execution: dict | None = None,
    ) -> Entry:
        """Write ``files`` as the entry of ``spec`` atomically and return it.

        ``execution``: where it was computed (``analysis.device.describe``: device,
        its name, torch and CUDA versions, deterministic algorithms), kept in
        meta.json's ``device``; never part of the key.
        """
        final = self.path(spec)
        tmp = final.parent / f".tmp-{final.name}-{uuid.uuid4().hex[:8]}"
        step = f"creating the temp folder {tmp.name}"
        try:
            tmp.mkdir(parents=True)
            listing = {}
            for name, value in files.items():
                if "/" in name or name.startswith(".") or name == "meta.json":
                    raise StoreError(f"bad result file name {name!r}")
                data = encode(name, value)
                step = f"writing {name}"
                _write_synced(tmp / name, data)
                listing[name] = {"sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data)}
            meta = {
                "kind": spec.kind,
                "key": spec_key(spec),
                "schema": SCHEMA_VERSION,
                "canonical": canonical_json(spec),
                "spec": to_canonical(spec),
                "files": listing,
                "seconds": round(float(seconds), 3),
                "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                "versions": _versions(),
                "summary": summary or {},
                "device": execution or {},
            }
            meta["digest"] = meta_digest(meta)
            step = "writing meta.json"
            _write_synced(tmp / "meta.json", json.dumps(meta, indent=1, allow_nan=True).encode())
            if final.exists():
                self._quarantine(final, "replaced by a fresh computation")
            step = "renaming the finished entry into place"
            os.rename(tmp, final)
            _fsync_dir(final.parent)
        except StoreError:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        except OSError as err:
            shutil.rmtree(tmp, ignore_errors=True)
            raise StoreError(
                f"could not write the {spec.kind} result {_label(spec)} to {final} "
                f"(while {step}): {write_problem(err, final)}; the store is unchanged"
            ) from err
        entry = self.load(spec)
        if entry is None:
            raise StoreError(f"the {spec.kind} result written to {final} did not verify")
        return entry

    def record_failure(self, spec: Any, message: str) -> None:
        """Remember that computing ``spec`` failed, with the reason (best effort)."""
        path = self.failure_path(spec)
        doc = {"kind": spec.kind, "spec": to_canonical(spec), "error": message, "time": time.time()}
        with contextlib.suppress(OSError):
            path.parent.mkdir(parents=True, exist_ok=True)
            _write_synced(path, json.dumps(doc, indent=1).encode(), atomic=True)

    def failure(self, spec: Any) -> str | None:
        """The recorded failure message of ``spec``, if its last computation failed."""
        try:
            return json.loads(self.failure_path(spec).read_text())["error"]
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def clear_failure(self, spec: Any) -> None:
        """Forget a recorded failure of ``spec``."""
        with contextlib.suppress(OSError):
            self.failure_path(spec).unlink()


def _label(spec: Any) -> str:
    """A short human name of ``spec`` for messages (its label and key prefix)."""
    label = getattr(spec, "label", spec.kind)
    return f"'{label}' ({spec.kind} {spec_key(spec)[:12]})"


def meta_digest(meta: dict) -> str:
    """sha256 of a meta.json's canonical JSON without its ``digest`` (and private ``_`` keys)."""
    doc = {k: v for k, v in meta.items() if k != "digest" and not k.startswith("_")}
    text = json.dumps(doc, sort_keys=True, separators=(",", ":"), allow_nan=True)
    return hashlib.sha256(text.encode()).hexdigest()


def _stamp(path: Path) -> tuple | None:
    """(name, size, mtime) of every file of an entry: a remembered verification holds while equal.

    None when the entry has gone.
    """
    try:
        return tuple(
            sorted((e.name, e.stat().st_size, e.stat().st_mtime_ns) for e in os.scandir(path))
        )
    except OSError:
        return None


def check_structure(entry: Entry, files: Mapping[str, Any]) -> str | None:
    """The first way ``entry`` differs from the files its kind declares, or None.

    ``files`` maps each required file to what it must hold: for a ``.json`` file
    a type (``dict``/``list``) or a tuple of keys its object must have; for other
    files ``object`` (presence only; their checksums are already verified).
    """
    for name, want in files.items():
        if name not in entry.meta.get("files", {}):
            return f"{name} is missing (its kind requires it)"
        if not name.endswith(".json") or want is object:
            continue
        try:
            value = entry.read(name)
        except (OSError, ValueError) as err:
            return f"{name} is unreadable ({err})"
        if isinstance(want, tuple):
            if not isinstance(value, dict) or any(k not in value for k in want):
                return f"{name} lacks the keys {[k for k in want if k not in (value or {})]}"
        elif not isinstance(value, want):
            return f"{name} holds a {type(value).__name__}, expected a {want.__name__}"
    return None
