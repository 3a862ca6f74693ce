"""Fault injection: full disks, read-only stores, diverging runs, concurrent sessions,
memory limits, and SIGKILL of a real `prunescope compute` at chosen and random moments.

Each test names the fault it injects; the closing tally of the suite (faults,
trials, what was lost) is in the report of the work that added it.
"""

from __future__ import annotations

import builtins
import dataclasses
import errno
import hashlib
import io
import json
import multiprocessing as mp
import os
import random
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import numpy as np
import pytest
import torch

import analysis.store as store_mod
from analysis import api
from analysis.errors import PrunescopeError, StoreError
from analysis.specs import SPEC, spec_key, to_canonical
from analysis.store import Store
from analysis.study import parse_study
from tests._tiny import copy_entries, tiny_text

REPO = Path(__file__).resolve().parents[1]


# ---------------------------------------------------------------------------
# a toy kind: cheap, counts its computations


@dataclass(**SPEC)
class FaultSpec:
    """A toy spec whose compute appends to a counter file."""

    kind: ClassVar[str] = "test-faults"
    value: int = 1
    counter: str = ""

    @property
    def label(self) -> str:
        return f"fault {self.value}"


def _compute_fault(spec: FaultSpec, ctx: api.Context):
    if spec.counter:
        with open(spec.counter, "a") as fh:
            fh.write("x")
    files = {
        "weights.safetensors": {"w": torch.full((4,), float(spec.value))},
        "table.json": {"value": spec.value},
    }
    return files, {"value": spec.value}


api.install([api.Kind("test-faults", FaultSpec, _compute_fault)])


def verify_store(root: Path) -> int:
    """Check every entry under ``root`` against its meta.json; return how many there are.

    An entry is ``<kind>/<xx>/<key>/`` (temp folders ``.tmp-*`` are not entries:
    they are never served). Each must have a meta.json naming its own key, and
    every listed file must have the listed size and sha256.
    """
    count = 0
    for kind_dir in root.iterdir() if root.exists() else ():
        if kind_dir.name.startswith(".") or not kind_dir.is_dir():
            continue
        for entry in kind_dir.glob("*/*"):
            if entry.name.startswith(".tmp-"):
                continue
            meta = json.loads((entry / "meta.json").read_text())
            assert meta["key"] == entry.name, entry
            for name, info in meta["files"].items():
                data = (entry / name).read_bytes()
                assert len(data) == info["bytes"], (entry, name)
                assert hashlib.sha256(data).hexdigest() == info["sha256"], (entry, name)
            count += 1
    return count


# ---------------------------------------------------------------------------
# disk full and read-only stores


@pytest.fixture
def counted(store, tmp_path):
    """A store holding one earlier entry (value 1) and a counter file for value 2."""
    earlier = FaultSpec(value=1)
    api.get(earlier, store=store)
    return store, earlier, FaultSpec(value=2, counter=str(tmp_path / "calls"))


@pytest.mark.parametrize(
    ("step", "code", "says"),
    [
        ("file", errno.ENOSPC, "while writing weights.safetensors"),
        ("meta", errno.ENOSPC, "while writing meta.json"),
        ("meta", errno.EROFS, "while writing meta.json"),
        ("rename", errno.EROFS, "while renaming the finished entry into place"),
        ("rename", errno.ENOSPC, "while renaming the finished entry into place"),
    ],
)
def test_failed_commit_leaves_store_consistent(counted, monkeypatch, step, code, says):
    store, earlier, spec = counted
    real_write, real_rename = store_mod._write_synced, os.rename

    def write(path, data, *, atomic=False):
        if (step == "file" and path.name == "weights.safetensors") or (
            step == "meta" and path.name == "meta.json"
        ):
            raise OSError(code, os.strerror(code))
        return real_write(path, data, atomic=atomic)

    def rename(src, dst, *a, **kw):
        if step == "rename" and Path(src).name.startswith(".tmp-"):
            raise OSError(code, os.strerror(code))
        return real_rename(src, dst, *a, **kw)

    monkeypatch.setattr(store_mod, "_write_synced", write)
    monkeypatch.setattr(os, "rename", rename)
    with pytest.raises(StoreError) as info:
        api.get(spec, store=store)
    message = str(info.value)
    # which entry, where, at which step, and why (in words a user can act on)
    assert "'fault 2'" in message and spec_key(spec)[:12] in message
    assert str(store.path(spec)) in message and says in message
    assert ("disk holding" in message) if code == errno.ENOSPC else ("read-only" in message)
    assert "the store is unchanged" in message
    monkeypatch.undo()
    assert store.load(spec) is None and not store.path(spec).exists()  # no partial entry
    assert list(store.root.rglob(".tmp-*")) == []  # temp folder cleaned
    assert store.failure(spec) is None  # a store fault is not the computation's failure
    fresh = Store(store.root)
    assert fresh.load(earlier).read("table.json") == {"value": 1}  # earlier entry intact
    assert api.get(spec, store=fresh).read("table.json") == {"value": 2}  # a retry succeeds
    assert Path(spec.counter).read_text() == "xx"
    assert verify_store(store.root) == 2


@pytest.fixture
def read_only(monkeypatch):
    """Make a folder behave like a read-only filesystem (works as root, unlike chmod).

    Every call that would create, change or remove something under the folder
    raises EROFS, as the kernel does on a read-only mount; reads go through.
    """
    roots: list[Path] = []
    real_open, real_os_open = builtins.open, os.open
    real = {n: getattr(os, n) for n in ("mkdir", "rename", "replace", "unlink", "rmdir")}

    def inside(path, dir_fd=None) -> bool:
        if dir_fd is not None:
            return True  # fd-relative removals (shutil.rmtree) only happen inside the store here
        try:
            p = Path(os.fsdecode(path)).absolute()
        except TypeError:
            return False
        return any(p == r or r in p.parents for r in roots)

    def refuse(path):
        raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(path))

    def fake_open(file, mode="r", *a, **kw):
        if isinstance(file, str | bytes | os.PathLike) and inside(file) and set(mode) & set("wax+"):
            refuse(file)
        return real_open(file, mode, *a, **kw)

    def fake_os_open(path, flags, *a, **kw):
        writes = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND
        if inside(path, kw.get("dir_fd")) and flags & writes:
            refuse(path)
        return real_os_open(path, flags, *a, **kw)

    def fake_mkdir(path, *a, **kw):
        if inside(path, kw.get("dir_fd")):
            if Path(path).exists():
                raise FileExistsError(errno.EEXIST, os.strerror(errno.EEXIST), str(path))
            refuse(path)
        return real["mkdir"](path, *a, **kw)

    def guard(name):
        def fake(path, *a, **kw):
            if inside(path, kw.get("dir_fd") or kw.get("src_dir_fd")):
                refuse(path)
            return real[name](path, *a, **kw)

        return fake

    monkeypatch.setattr(builtins, "open", fake_open)
    monkeypatch.setattr(io, "open", fake_open)
    monkeypatch.setattr(os, "open", fake_os_open)
    monkeypatch.setattr(os, "mkdir", fake_mkdir)
    for name in ("rename", "replace", "unlink", "rmdir"):
        monkeypatch.setattr(os, name, guard(name))
    return roots.append


def test_read_only_store_serves_cached_results_and_refuses_to_compute(store, read_only):
    cached = FaultSpec(value=7)
    api.get(cached, store=store)
    read_only(store.root)
    fresh = Store(store.root)  # a new process: nothing verified in memory yet
    assert api.get(cached, store=fresh).read("table.json") == {"value": 7}
    with pytest.raises(StoreError) as info:
        api.get(FaultSpec(value=8), store=fresh)
    message = str(info.value)
    assert "read-only" in message and str(store.root) in message and "'fault 8'" in message
    assert "--cache-dir" in message  # says what to do about it


def test_read_only_store_before_first_use(tmp_path, read_only):
    root = tmp_path / "cache"
    root.mkdir()
    read_only(root)
    with pytest.raises(StoreError, match="read-only"):
        api.get(FaultSpec(value=9), store=Store(root))
    assert list(root.iterdir()) == []


# ---------------------------------------------------------------------------
# training faults: one run diverges, the rest of the study goes on

#: SGD with strong weight decay; the magnitude run fine-tunes at 10x the rate,
#: where lr x weight decay leaves SGD's stable range and the weights blow up.
DIVERGING = (
    tiny_text(seeds=(0,), epochs=2)
    .replace("lr = 0.01", 'lr = 0.1\noptimizer = "sgd"\nweight_decay = 1.0\nschedule = "constant"')
    .replace("finetune_epochs = 1", "finetune_epochs = 12\nfinetune_lr_scale = 10.0")
    + "\n[analyses.landscape]\ndims = [1]\ngrid = 5\nsubset = 100\ntrajectory = false\n"
    "sharpness_topk = 0\nhutchinson_samples = 0\n"
)


def test_diverging_run_is_recorded_and_the_study_goes_on(tmp_path, capsys):
    from analysis.plan import compute_study, summarize
    from dashboard.cli import main

    study_path = tmp_path / "diverging.toml"
    study_path.write_text(DIVERGING)
    study = parse_study(DIVERGING)
    store = Store(tmp_path / "cache")
    dense, magnitude = study.runs()
    report = compute_study(study, store, only="runs")
    assert report.done == 1 and [label for label, _ in report.failed] == [magnitude.label]
    assert "diverged" in report.failed[0][1]
    record = json.loads(store.failure_path(magnitude).read_text())  # recorded with its spec
    assert record["spec"] == to_canonical(magnitude) and "TrainingDiverged" in record["error"]
    assert "lower the learning rate" in record["error"]
    # the analyses that do not need the failed run are computed
    report = compute_study(study, store, only="landscape")
    assert report.done == 1 and len(report.failed) == 1
    summary = summarize(study, store)
    runs = {r["label"]: r for r in summary["runs"]}
    assert runs[dense.label]["status"] == "cached" and runs[dense.label]["test_acc"] > 0.5
    assert runs[magnitude.label]["status"] == "failed"
    assert runs[magnitude.label]["error"].startswith("TrainingDiverged: training diverged")
    assert summary["counts"]["failed"] == 1
    surfaces = [s for r in summary["landscape"]["runs"] for s in r["surfaces"]]
    assert sorted(s["status"] for s in surfaces) == ["cached", "failed"]
    # prunescope show says which run failed and why, in the table and in JSON
    assert main(["show", str(study_path), "--cache-dir", str(store.root)]) == 0
    table = capsys.readouterr().out
    assert f"FAILED {magnitude.label}: TrainingDiverged: training diverged" in table
    assert main(["show", str(study_path), "--cache-dir", str(store.root), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    failed = [r for r in doc["runs"] if r["status"] == "failed"]
    assert [r["label"] for r in failed] == [magnitude.label] and "diverged" in failed[0]["error"]


# ---------------------------------------------------------------------------
# concurrency: two dashboard sessions, two processes on one landscape grid


def test_two_dashboard_sessions_share_one_job_and_compute_once(tmp_path, monkeypatch):
    from analysis.plan import compute_study
    from dashboard.jobs import JobBoard

    study = parse_study(tiny_text(seeds=(0,), epochs=1))
    store = Store(tmp_path / "cache")
    calls: list[str] = []
    real = api.KINDS["run"]

    def counting(spec, ctx):
        calls.append(spec.label)
        return real.compute(spec, ctx)

    monkeypatch.setitem(api.KINDS, "run", dataclasses.replace(real, compute=counting))
    go = threading.Event()
    ran = []

    def session(name):
        def work(progress, log):
            ran.append(name)
            go.wait(60)
            return compute_study(study, store, progress=progress, log=log, only="runs")

        return work

    board = JobBoard()
    key = ("study", str(store.root))
    first = board.start(key, "tiny", session("first"))
    second = board.start(key, "tiny", session("second"))  # another browser tab, same server
    assert second is first and board.get(key).running
    go.set()
    board.join(key, 120)
    view = board.get(key)
    assert view.state == "done" and ran == ["first"]
    assert sorted(calls) == sorted(r.label for r in study.runs())  # each run trained once
    assert view.result.done == 2 and view.landed >= 2  # what the second session sees too
    third = board.start(key, "tiny", session("third"))  # after it ended: a new job, all cached
    board.join(key, 120)
    assert third is not first and board.get(key).result.cached == 2
    assert len(calls) == 2


LANDSCAPE = tiny_text(seeds=(0,), epochs=1, magnitude=False) + (
    "\n[analyses.landscape]\ndims = [2]\ngrid = 9\nsubset = 200\ntrajectory = false\n"
    "sharpness_topk = 0\nhutchinson_samples = 0\n"
)


def _landscape_worker(root: str, text: str, counter: str, out: str) -> None:
    import analysis.landscape as landscape
    import analysis.landscape.grid as grid

    torch.set_num_threads(1)
    real = grid._save_row

    def counting(path, i, loss, acc, **kw):
        with open(counter, "a") as fh:
            fh.write(f"{i}\n")
        real(path, i, loss, acc, **kw)

    grid._save_row = counting
    spec = landscape.landscape_specs(parse_study(text))[0]
    entry = api.get(spec, store=Store(Path(root)))
    Path(out).write_text(json.dumps(entry.read("surface.npz")["loss"].tolist()))


@pytest.mark.slow
def test_two_processes_compute_a_landscape_grid_once(tmp_path):
    from analysis.landscape import landscape_specs

    study = parse_study(LANDSCAPE)
    root = tmp_path / "cache"
    api.get(study.runs()[0], store=Store(root))  # the trained run both will need
    counter = tmp_path / "rows"
    ctx = mp.get_context("spawn")
    procs = [
        ctx.Process(
            target=_landscape_worker,
            args=(str(root), LANDSCAPE, str(counter), str(tmp_path / f"out{i}")),
        )
        for i in range(2)
    ]
    for p in procs:
        p.start()
    for p in procs:
        p.join(300)
        assert p.exitcode == 0
    rows = counter.read_text().split()
    assert sorted(map(int, rows)) == list(range(9))  # every row computed exactly once
    a, b = (json.loads((tmp_path / f"out{i}").read_text()) for i in range(2))
    assert a == b
    assert Store(root).exists(landscape_specs(study)[0])


# ---------------------------------------------------------------------------
# resource limits


def test_parse_size_and_bad_setting(monkeypatch):
    from analysis.limits import memory_budget, parse_size

    assert parse_size("2GiB") == 2 << 30 and parse_size("512 MB") == 512_000_000
    assert parse_size("1e6") == 1_000_000 and parse_size("3kib") == 3072
    for bad in ("lots", "-1GB", "2 parsecs", "0"):
        with pytest.raises(PrunescopeError, match="PRUNESCOPE_MEMORY_LIMIT"):
            parse_size(bad)
    monkeypatch.setenv("PRUNESCOPE_MEMORY_LIMIT", "3MiB")
    assert memory_budget().bytes == 3 << 20
    monkeypatch.delenv("PRUNESCOPE_MEMORY_LIMIT")
    assert memory_budget().bytes > 0


def test_estimates_grow_with_the_work():
    from analysis.limits import landscape_bytes, umap_bytes

    # trustworthiness holds three (n, n) matrices: 20k points need ~9.6 GB
    assert umap_bytes(20_000, 32, 15, 2) >= 24 * 20_000**2
    assert umap_bytes(2_000, 32, 15, 2) < umap_bytes(4_000, 32, 15, 2)
    kw = dict(input_numel=784, first_out=512, params=670_000, grid=31, precision="fp32", batch=2000)
    small, big = landscape_bytes(n=1_000, dims=2, **kw), landscape_bytes(n=100_000, dims=2, **kw)
    assert big > 30 * small
    assert landscape_bytes(n=1_000, dims=2, **dict(kw, precision="bf16")) > small


def _umap_spec():
    from analysis.representations import FeaturesSpec, UmapSpec

    study = parse_study(tiny_text(seeds=(0,), epochs=1, magnitude=False))
    return UmapSpec(features=FeaturesSpec(run=study.runs()[0], subset_size=300))


def test_umap_over_budget_is_refused_before_it_starts(store, monkeypatch):
    import types

    def never(*a, **kw):
        raise AssertionError("UMAP started although it does not fit")

    # a stand-in umap module: proves UMAP is never started (and skips umap's slow import)
    monkeypatch.setitem(sys.modules, "umap", types.SimpleNamespace(UMAP=never))
    spec = _umap_spec()
    api.get(spec.features, store=store)  # the run and its features fit; only UMAP must not
    monkeypatch.setenv("PRUNESCOPE_MEMORY_LIMIT", "1MiB")
    with pytest.raises(api.ComputeFailed) as info:
        api.get(spec, store=store)
    message = str(info.value)
    assert "MemoryLimitError" in message and "would need about" in message
    assert "budget of 1.0 MiB ($PRUNESCOPE_MEMORY_LIMIT=1MiB)" in message
    assert "subset_size" in message
    assert "would need about" in store.failure(spec)


@pytest.mark.slow
def test_umap_within_budget_runs(store, monkeypatch):
    monkeypatch.setenv("PRUNESCOPE_MEMORY_LIMIT", "64GiB")
    assert api.get(_umap_spec(), store=store).read("embedding.npz")["embedding"].shape == (300, 2)


@pytest.mark.parametrize("plane", [False, True])
def test_landscape_over_budget_is_refused_before_anything_runs(store, monkeypatch, plane):
    from analysis.landscape import LandscapeSpec, PlaneSpec

    run = parse_study(tiny_text(seeds=(0,), epochs=1, magnitude=False)).runs()[0]
    spec = PlaneSpec(runs=(run,), grid=11) if plane else LandscapeSpec(run=run, grid=11)
    monkeypatch.setenv("PRUNESCOPE_MEMORY_LIMIT", "2MiB")
    with pytest.raises(api.ComputeFailed, match=r"would need about .* budget of 2\.0 MiB"):
        api.get(spec, store=store)
    assert not store.exists(run)  # refused before even training the run it needs
    monkeypatch.setenv("PRUNESCOPE_MEMORY_LIMIT", "64GiB")
    assert api.get(spec, store=store).read("surface.npz")["loss"].shape == (11, 11)


# ---------------------------------------------------------------------------
# SIGKILL of a real `prunescope compute`


def _cli(study: Path, cache: Path, *extra: str, bars: bool = False) -> subprocess.Popen:
    """Start `python -m dashboard.cli compute` on one thread (so reruns give equal numbers).

    ``bars``: draw progress bars on stderr (a pipe), so the caller sees when work starts.
    """
    env = dict(os.environ, PRUNESCOPE_CACHE=str(cache), OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    env["CI"] = ""  # bars are drawn unless -q
    quiet = [] if bars else ["-q"]
    cmd = [sys.executable, "-m", "dashboard.cli", "compute", str(study), *quiet, *extra]
    return subprocess.Popen(
        cmd,
        env=env,
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE if bars else subprocess.DEVNULL,
    )


def _work_started(proc: subprocess.Popen) -> threading.Event:
    """An event set at the first progress output of ``proc`` (whose stderr is drained)."""
    started = threading.Event()

    def drain() -> None:
        while chunk := proc.stderr.read1(4096):
            if chunk.strip():
                started.set()
        started.set()  # ended without output: do not wait forever

    threading.Thread(target=drain, daemon=True).start()
    return started


def _kill_when(
    proc: subprocess.Popen, ready, timeout: float = 300.0, signal_: int | None = signal.SIGKILL
) -> bool:
    """Poll ``ready()`` as fast as Python can and SIGKILL the process the moment it holds.

    Returns whether ``ready()`` held while the process ran (False: it ended
    first). ``signal_=None`` only waits for the moment, without killing.
    """
    deadline = time.monotonic() + timeout
    while proc.poll() is None and time.monotonic() < deadline:
        if ready():
            if signal_ is not None:
                proc.send_signal(signal_)
                proc.wait()
            return True
    if proc.poll() is None:  # timed out: do not leave it running
        proc.kill()
        proc.wait()
    return False


def _after_kill(cache: Path, specs) -> None:
    """What a kill may leave: only whole entries; nothing half-written is served."""
    verify_store(cache)
    store = Store(cache)
    for spec in specs:
        store.load(spec)  # whole or None, never a damaged entry
    assert not (cache / ".damaged").exists(), list((cache / ".damaged").iterdir())


@pytest.mark.slow
def test_sigkill_during_a_checkpoint_write(tmp_path):
    """Kill the moment a run's temp entry folder appears (mid-commit), then rerun."""
    from analysis.plan import compute_study

    # a wide layer: ~10 MB of safetensors per entry keeps the commit open long enough to see
    text = tiny_text(seeds=(0, 1, 2), epochs=1, magnitude=False).replace(
        "width = 32", "width = 1024"
    )
    study_path = tmp_path / "study.toml"
    study_path.write_text(text)
    specs = parse_study(text).runs()
    cache = tmp_path / "cache"
    folders = {cache / "run" / spec_key(s)[:2] for s in specs}

    def writing() -> bool:
        for folder in folders:
            try:
                if any(e.name.startswith(".tmp-") for e in os.scandir(folder)):
                    return True
            except FileNotFoundError:
                pass
        return False

    hits = attempts = 0
    while not hits and attempts < 3:  # a poll can miss the window; a few attempts catch one
        attempts += 1
        if _kill_when(_cli(study_path, cache, "--only", "runs"), writing):
            hits += writing()  # the temp folder is still there: killed mid-write
        _after_kill(cache, specs)
    assert hits, f"never caught a commit in progress in {attempts} attempts"
    report = compute_study(parse_study(text), Store(cache), only="runs")
    assert not report.failed and report.done + report.cached == len(specs)
    assert list(cache.rglob(".tmp-*")) == []  # the dead writer's temp folder was swept
    assert verify_store(cache) == len(specs)
    assert not (cache / ".damaged").exists()


GRID = 61
LANDSCAPE_KILL = tiny_text(seeds=(0,), epochs=1, magnitude=False).replace(
    "width = 32", "width = 256"
) + (
    f'\n[analyses.landscape]\ndims = [2]\ngrid = {GRID}\nsubset = 400\nsplit = "train"\n'
    "trajectory = false\nsharpness_topk = 0\nhutchinson_samples = 0\n"
)


@pytest.mark.slow
def test_sigkill_while_a_landscape_grid_fills_resumes_from_the_rows(tmp_path):
    from analysis.landscape import landscape_specs

    study = parse_study(LANDSCAPE_KILL)
    study_path = tmp_path / "study.toml"
    study_path.write_text(LANDSCAPE_KILL)
    cache = tmp_path / "cache"
    run = study.runs()[0]
    api.get(run, store=Store(cache))  # trained here: the subprocess only fills the grid
    spec = landscape_specs(study)[0]
    partial = cache / ".partial" / spec.kind / spec_key(spec)

    def some_rows() -> bool:
        try:
            return sum(e.name.startswith("row_") for e in os.scandir(partial)) >= 3
        except FileNotFoundError:
            return False

    assert _kill_when(_cli(study_path, cache, "--only", "landscape"), some_rows)
    rows = sorted(partial.glob("row_*.npz"))
    assert 3 <= len(rows) < GRID
    stamps = {p.name: p.stat().st_mtime_ns for p in rows}
    _after_kill(cache, [run, spec])
    assert not Store(cache).exists(spec)

    import analysis.landscape.grid as landscape

    saved: list[int] = []
    real = landscape._save_row
    landscape._save_row = lambda path, i, loss, acc, **kw: (
        saved.append(i),
        real(path, i, loss, acc, **kw),
    )
    try:
        # the finished rows are reused: not rewritten, not recomputed
        loaded = []
        real_load = landscape._load_row

        def load_row(path, i, n):
            out = real_load(path, i, n)
            if out is not None:
                assert (path / f"row_{i:05d}.npz").stat().st_mtime_ns == stamps[f"row_{i:05d}.npz"]
                loaded.append(i)
            return out

        landscape._load_row = load_row
        resumed = api.get(spec, store=Store(cache))
    finally:
        landscape._save_row, landscape._load_row = real, real_load
    assert sorted(loaded) == sorted(int(n[4:9]) for n in stamps)
    assert set(saved).isdisjoint(loaded) and len(saved) == GRID - len(rows)
    assert resumed.read("landscape.json")["rows_evaluated"] == GRID - len(rows)
    # and the surface equals an uninterrupted computation's
    clean = Store(tmp_path / "clean")
    copy_entries([run], Store(cache), clean)
    whole = api.get(spec, store=clean)
    assert whole.read("landscape.json")["rows_evaluated"] == GRID
    for name in ("loss", "acc"):
        np.testing.assert_allclose(
            resumed.read("surface.npz")[name], whole.read("surface.npz")[name], rtol=1e-6
        )


#: ~12 s of work (2 runs, 4 surfaces of up to 101 x 101): three kills in its first seconds
#: all land mid-work (training, a grid filling, a commit)
RANDOM_STUDY = tiny_text(seeds=(0,), epochs=2).replace("width = 32", "width = 256") + (
    '\n[analyses.landscape]\ndims = [1, 2]\ngrid = 101\nsubset = 400\nsplit = "train"\n'
    "trajectory = false\nsharpness_topk = 0\nhutchinson_samples = 0\n"
)


@pytest.mark.slow
def test_sigkill_at_random_moments_loses_nothing(tmp_path):
    """Seeded random kill times over several trials; every finished entry survives."""
    from analysis.plan import compute_study, study_specs

    study = parse_study(RANDOM_STUDY)
    study_path = tmp_path / "study.toml"
    study_path.write_text(RANDOM_STUDY)
    cache = tmp_path / "cache"
    surfaces = study_specs(study, "landscape")
    specs = list({spec_key(s.run): s.run for s in surfaces}.values()) + surfaces
    rng = random.Random(20261121)
    finished: set[Path] = set()
    kills = 0
    for _trial in range(3):
        proc = _cli(study_path, cache, "--only", "landscape", bars=True)
        # the clock starts when the computation does (interpreter start-up varies a lot)
        assert _work_started(proc).wait(300)
        time.sleep(rng.uniform(0.3, 2.0))
        kills += proc.poll() is None
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        _after_kill(cache, specs)
        now = {p.parent for p in cache.glob("*/*/*/meta.json")}
        assert finished <= now  # nothing finished before is ever lost
        finished = now
    assert kills == 3  # every trial really interrupted a computation
    report = compute_study(study, Store(cache), only="landscape")
    assert not report.failed
    store = Store(cache)
    assert all(store.exists(s) for s in specs)
    assert verify_store(cache) == len(specs)
    assert not (cache / ".damaged").exists()
