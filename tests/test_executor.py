"""The executor: dependency graph, schedule, failures, retries, the process pool, landscape chunks.

The pool tests run real spawned workers; the crash tests use the toy kinds below
(a worker imports this module to rebuild their specs, which registers them).
"""

from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import ClassVar

import numpy as np
import pytest

from analysis import api
from analysis.executor import (
    InProcess,
    ProcessPool,
    dependencies,
    make_executor,
    plan_jobs,
    spec_from_payload,
    spec_payload,
)
from analysis.plan import compute_study, study_specs
from analysis.specs import SPEC, spec_key
from analysis.store import Store
from tests._tiny import tiny_study

# ---------------------------------------------------------------------------
# toy kinds: a job that can crash its worker, fail, or depend on another


@dataclass(**SPEC)
class ToySpec:
    """A toy job: its worker dies on the first ``crashes`` attempts; ``error`` fails it for good."""

    kind: ClassVar[str] = "test_toy"
    name: str = "a"
    crashes: int = 0
    error: bool = False

    @property
    def label(self) -> str:
        """Human label."""
        return f"toy {self.name}"


@dataclass(**SPEC)
class ParentSpec:
    """A toy job that needs its child first."""

    kind: ClassVar[str] = "test_parent"
    child: ToySpec = field(default_factory=ToySpec)

    @property
    def label(self) -> str:
        """Human label."""
        return f"parent of {self.child.label}"


def attempts(store: Store, name: str) -> int:
    """How many times the toy job ``name`` started."""
    return len(list((store.root / "attempts").glob(f"{name}-*")))


def compute_toy(spec: ToySpec, ctx: api.Context) -> tuple[dict, dict]:
    """Count the attempt in the store's folder, then die, fail or succeed as the spec says."""
    n = attempts(ctx.store, spec.name)
    (ctx.store.root / "attempts").mkdir(parents=True, exist_ok=True)
    (ctx.store.root / "attempts" / f"{spec.name}-{n}").touch()
    ctx.progress(spec.label, 1, 2)
    if n < spec.crashes:
        os._exit(1)  # the worker process dies on the spot, as when it is killed
    if spec.error:
        raise ValueError("bad input on purpose")
    return {"value.json": {"attempt": n}}, {}


def compute_parent(spec: ParentSpec, ctx: api.Context) -> tuple[dict, dict]:
    """Read the child's value."""
    (ctx.store.root / "attempts").mkdir(parents=True, exist_ok=True)
    (ctx.store.root / "attempts" / f"parent-{spec.child.name}").touch()
    return {"value.json": ctx.get(spec.child).read("value.json")}, {}


api.install(
    [
        api.Kind("test_toy", ToySpec, compute_toy),
        api.Kind("test_parent", ParentSpec, compute_parent),
    ]
)


@pytest.fixture(scope="module")
def pool():
    """One 2-worker process pool for the module (spawning workers costs seconds)."""
    with ProcessPool(2, retries=2) as ex:
        yield ex


# ---------------------------------------------------------------------------
# comparing two stores


def _strip_timing(value):
    """A JSON document without its wall-clock fields (they differ run to run): times, and the
    compression entry's measured latencies and their ratio."""
    if isinstance(value, dict):
        return {
            k: _strip_timing(v)
            for k, v in value.items()
            if not k.endswith("seconds")
            and not k.startswith("latency")
            and k not in ("rows_evaluated", "speedup")
        }
    if isinstance(value, list):
        return [_strip_timing(v) for v in value]
    return value


def differences(a: Path, b: Path) -> list[str]:
    """What differs between two stores: entry keys, and any file (timings aside), bit for bit."""
    metas = [{p.parent.name: p for p in root.glob("*/*/*/meta.json")} for root in (a, b)]
    out = [f"only in {a}: {k}" for k in metas[0].keys() - metas[1].keys()]
    out += [f"only in {b}: {k}" for k in metas[1].keys() - metas[0].keys()]
    for key in metas[0].keys() & metas[1].keys():
        ma, mb = (json.loads(m[key].read_text()) for m in metas)
        for name, info in ma["files"].items():
            if info["sha256"] == mb["files"][name]["sha256"]:
                continue
            if name.endswith(".json"):
                da, db = (json.loads((m[key].parent / name).read_text()) for m in metas)
                if _strip_timing(da) == _strip_timing(db):
                    continue
            out.append(f"{ma['kind']} {key[:12]} {name} differs")
    return out


# ---------------------------------------------------------------------------
# the graph


def test_dependencies_are_the_nested_specs_deduplicated(tiny_run):
    """Nested specs are found in fields, tuples and settings; each once; none of the spec itself."""
    from analysis.connectivity import ConnectivitySpec
    from analysis.robustness import CorruptedSpec, RobustnessSpec

    other = tiny_run.replace(seed=1)
    conn = ConnectivitySpec(run_a=tiny_run, run_b=other)
    assert [spec_key(d) for d in dependencies(conn)] == [spec_key(tiny_run), spec_key(other)]
    same = ConnectivitySpec(run_a=tiny_run, run_b=tiny_run)
    assert [spec_key(d) for d in dependencies(same)] == [spec_key(tiny_run)]
    corrupted = CorruptedSpec(dataset="digits", subset_size=50)
    rob = RobustnessSpec(run=tiny_run, corrupted=corrupted)
    assert [d.kind for d in dependencies(rob)] == ["run", "corrupted"]
    assert dependencies(tiny_run) == []  # dense: trains from scratch


def test_parent_waits_for_child_and_order_is_topological():
    """Every job comes after all of its dependencies; a shared dependency is one job."""
    study = tiny_study(seeds=(0, 1), connectivity={"alphas": 3, "alignments": ["naive"]})
    specs = study_specs(study)
    jobs = plan_jobs(specs)
    seen: set[str] = set()
    for job in jobs:
        assert set(job.deps) <= seen, f"{job.label} scheduled before its dependencies"
        seen.add(job.id)
    assert len(seen) == len(jobs)  # no job twice
    conn = next(s for s in specs if s.kind == "connectivity")
    job = next(j for j in jobs if j.key == spec_key(conn))
    assert set(job.deps) == {spec_key(conn.run_a), spec_key(conn.run_b)}
    magnitude = next(s for s in specs if s.kind == "run" and s.sparsity.method == "magnitude")
    dense = magnitude.replace(sparsity=next(s for s in specs if s.kind == "run").sparsity)
    mjob = next(j for j in jobs if j.key == spec_key(magnitude))
    assert spec_key(dense) in mjob.deps  # fine-tuning starts from the dense run


def test_surfaces_split_into_row_chunks():
    """A 2-D surface becomes row chunks covering every row once, then its assembly; a line does not."""
    study = tiny_study(
        seeds=(0,),
        magnitude=False,
        landscape={
            "grid": 7,
            "dims": [1, 2],
            "plane_grid": 5,
            "sharpness_topk": 0,
            "hutchinson_samples": 0,
        },
    )
    jobs = plan_jobs(study_specs(study, "landscape"), chunks=3)
    for kind, rows in (("landscape", 7), ("landscape_plane", 5)):
        chunks = [j for j in jobs if j.spec.kind == kind and j.rows]
        covered = sorted(i for j in chunks for i in range(*j.rows))
        assert covered == list(range(rows)) and len(chunks) == 3
        main = next(
            j
            for j in jobs
            if j.spec.kind == kind and j.rows is None and getattr(j.spec, "dims", 2) == 2
        )
        assert {c.id for c in chunks} <= set(main.deps)
    line = next(j for j in jobs if j.spec.kind == "landscape" and j.spec.dims == 1)
    assert not any(j.rows for j in jobs if j.key == line.key)


def test_specs_travel_as_json_and_come_back_equal():
    """Every spec of a study survives the trip to a worker as JSON, key and value."""
    study = tiny_study(
        seeds=(0, 1),
        representations={"subset_size": 50},
        landscape={"grid": 3},
    )
    for job in plan_jobs(study_specs(study)):
        payload = json.loads(json.dumps(spec_payload(job.spec)))
        back = spec_from_payload(payload)
        assert back == job.spec and spec_key(back) == job.key
    bad = spec_payload(ToySpec())
    bad["fields"]["name"] = "changed"
    with pytest.raises(api.PrunescopeError, match="key"):
        spec_from_payload(bad)


def _strict_gets(monkeypatch) -> None:
    """Make nested gets read-only: a compute asking for an unscheduled spec fails NotComputed."""

    def strict_get(self, spec):
        return api.get(spec, store=self.store, progress=self.progress, compute=False)

    monkeypatch.setattr(api.Context, "get", strict_get)


def test_implied_dependencies_cover_the_hidden_gets_of_runs_and_instability(store, monkeypatch):
    """Run a study where a job may only read what its listed dependencies produced.

    Nested gets are made with ``compute=False``: a compute function asking for
    something the graph did not schedule before it fails with NotComputed. The
    study has the hidden gets of runs: fine-tuning's dense run, the lottery's
    previous round and dense run, and a sparse (lottery) run's instability.
    """
    from analysis.study import parse_study
    from tests._tiny import tiny_text

    text = tiny_text(
        seeds=(0,),
        epochs=1,
        connectivity={"alphas": 3, "instability_method": "lottery", "train_subset": 100},
    )
    text += '\n[[methods]]\nmethod = "lottery"\nsparsities = [0.5]\nrounds = 2\n'
    study = parse_study(text, source="hidden gets")
    assert [r.sparsity.method for r in study.runs()] == ["dense", "magnitude", "lottery"]
    instability = study_specs(study, "connectivity")
    assert [s.kind for s in instability] == ["instability"]
    _strict_gets(monkeypatch)
    # Not the dense run: only the graph can bring it (and lottery round 1) in first.
    asked = [r for r in study.runs() if r.sparsity.method != "dense"] + instability
    result = InProcess().run(asked, store)
    assert {o.status for o in result.jobs.values()} == {"done"}, result.jobs
    assert len(result.jobs) == 5  # + the dense run and lottery's first round


@pytest.mark.slow
def test_implied_dependencies_cover_the_features_and_umaps_of_representations(store, monkeypatch):
    """The representations job only reads features and UMAPs the graph ran as jobs before it."""
    study = tiny_study(seeds=(0,), epochs=1, representations={"subset_size": 60, "n_neighbors": 5})
    compute_study(study, store, only="runs")
    _strict_gets(monkeypatch)
    result = InProcess().run(study_specs(study, "representations"), store)
    statuses = {o.label: o.status for o in result.jobs.values()}
    assert set(statuses.values()) == {"cached", "done"}, result.jobs  # runs cached, rest done
    assert statuses["representations (2 runs, ce)"] == "done"
    assert sum(o.label.startswith("UMAP") for o in result.jobs.values()) == 2 * len(study.runs())


# ---------------------------------------------------------------------------
# failures and retries


def test_a_failure_fails_its_dependents_without_running_them(store):
    """The dependent is reported failed 'because' its dependency failed, and never starts."""
    bad = ToySpec(name="bad", error=True)
    result = InProcess().run([ParentSpec(child=bad), ToySpec(name="fine")], store)
    assert result.of(bad).status == "failed"
    assert "bad input on purpose" in result.of(bad).error
    parent = result.of(ParentSpec(child=bad))
    assert parent.status == "failed"
    assert parent.error.startswith("parent of toy bad failed because toy bad failed: ")
    assert "bad input on purpose" in parent.error and "\n" not in parent.error  # the root cause
    assert not (store.root / "attempts" / "parent-bad").exists()
    assert "bad input on purpose" in store.failure(ParentSpec(child=bad))
    assert result.of(ToySpec(name="fine")).status == "done"  # the rest went on


def test_pool_retries_a_killed_worker_and_keeps_finished_results(pool, store):
    """A worker that dies is replaced and its job rerun; results finished before stay."""
    done_first = pool.run([ToySpec(name="early")], store)
    assert done_first.of(ToySpec(name="early")).status == "done"
    flaky = ToySpec(name="flaky", crashes=1)
    seen, lines = [], []
    result = pool.run(
        [ParentSpec(child=flaky), ToySpec(name="other")],
        store,
        progress=lambda *a: seen.append(a),
        log=lines.append,
    )
    outcome = result.of(flaky)
    assert outcome.status == "done" and outcome.attempts == 2
    assert attempts(store, "flaky") == 2
    assert api.get(flaky, store=store, compute=False).read("value.json") == {"attempt": 1}
    assert result.of(ParentSpec(child=flaky)).status == "done"
    assert result.of(ToySpec(name="other")).status == "done"
    assert store.exists(ToySpec(name="early"))  # not lost with the dead worker
    assert ("toy flaky", 1, 2) in seen  # progress from a worker reached the driver
    assert any(line.startswith("toy flaky: worker lost") for line in lines)


def test_pool_gives_up_after_its_retries(pool, store):
    """A job whose worker always dies is reported failed with its label after 1 + retries tries."""
    doomed = ToySpec(name="doomed", crashes=99)
    result = pool.run([ParentSpec(child=doomed)], store)
    outcome = result.of(doomed)
    assert outcome.status == "failed" and attempts(store, "doomed") == 3
    assert outcome.error.startswith("toy doomed failed: its worker died 3 time(s)")
    assert "because toy doomed failed" in result.of(ParentSpec(child=doomed)).error


def test_pool_does_not_retry_a_compute_error(pool, store):
    """A compute error is deterministic: reported once, with the spec's label and the reason."""
    bad = ToySpec(name="wrong", error=True)
    outcome = pool.run([bad], store).of(bad)
    assert outcome.status == "failed" and outcome.attempts == 1
    assert attempts(store, "wrong") == 1
    assert "toy wrong failed" in outcome.error and "bad input on purpose" in outcome.error
    assert store.failure(bad)


# ---------------------------------------------------------------------------
# same numbers everywhere


def test_pool_gives_the_in_process_results_bit_for_bit(pool, tmp_path):
    """Runs and (chunked) surfaces from 2 spawned workers equal the in-process ones exactly."""
    study = tiny_study(
        seeds=(0,),
        epochs=1,
        landscape={
            "grid": 5,
            "dims": [2],
            "subset": 100,
            "plane_grid": 4,
            "sharpness_topk": 0,
            "hutchinson_samples": 0,
        },
    )
    here, there = Store(tmp_path / "here"), Store(tmp_path / "there")
    reports = [compute_study(study, here, only=p) for p in ("runs", "landscape")]
    seen = []
    pooled = [
        compute_study(study, there, only=p, executor=pool, progress=lambda *a: seen.append(a))
        for p in ("runs", "landscape")
    ]
    for a, b in zip(reports, pooled, strict=True):
        assert (a.done, a.cached, a.failed) == (b.done, b.cached, b.failed)
    assert differences(here.root, there.root) == []
    tasks = {t for t, *_ in seen}
    assert "dense s0: train" in tasks  # training progress from a worker
    assert any(" rows " in t for t in tasks)  # the surface ran as row chunks
    for spec in study_specs(study, "landscape"):
        doc = api.get(spec, store=there, compute=False).read(
            "landscape.json" if spec.kind == "landscape" else "plane.json"
        )
        assert doc.get("rows_evaluated", 0) == 0  # the assembly found every row done


def test_chunked_surface_equals_the_single_job_surface(store, tmp_path, tiny_run):
    """Rows filled by separate chunk jobs give exactly the surface of one job."""
    from analysis.landscape import LandscapeSpec

    spec = LandscapeSpec(run=tiny_run, dims=2, grid=5, subset=80)
    api.get(tiny_run, store=store)
    single = api.get(spec, store=store).read("surface.npz")
    other = Store(tmp_path / "other")
    api.get(tiny_run, store=other)
    ex = InProcess()
    ex.chunks = 3
    result = ex.run([spec], other)
    assert sum(":rows" in i for i in result.jobs) == 3
    chunked = api.get(spec, store=other, compute=False).read("surface.npz")
    for name in ("loss", "acc", "x", "y"):
        np.testing.assert_array_equal(chunked[name], single[name])
    assert not any(other.partial_dir(spec).glob("*.npz"))  # rows cleaned up after assembly


def test_a_chunk_fills_only_its_rows(store, tiny_run):
    """``fill_rows`` evaluates and saves just its rows; a second call finds them done."""
    from analysis.landscape import LandscapeSpec, fill_rows

    spec = LandscapeSpec(run=tiny_run, dims=2, grid=5, subset=80)
    ctx = api.Context(store=store)
    assert fill_rows(spec, ctx, range(1, 3)) == [1, 2]
    saved = sorted(p.name for p in store.partial_dir(spec).glob("row_*.npz"))
    assert saved == ["row_00001.npz", "row_00002.npz"]
    assert fill_rows(spec, ctx, range(0, 3)) == [0]  # resumes: rows 1-2 are read back


# ---------------------------------------------------------------------------
# choosing an executor


def test_make_executor_picks_the_back_end():
    """local -> in-process (1 worker) or a pool; an address without Ray is refused."""
    assert isinstance(make_executor("local"), InProcess)
    with make_executor("local", workers=2) as ex:
        assert isinstance(ex, ProcessPool) and ex.parallelism == 2
    with pytest.raises(api.PrunescopeError, match="--address"):
        make_executor("local", address="127.0.0.1:6379")
    with pytest.raises(api.PrunescopeError, match="unknown executor"):
        make_executor("dask")


def test_cli_accepts_the_executor_options():
    """``compute`` and ``demo`` take --executor, --workers and --address."""
    from dashboard.cli import build_parser

    args = build_parser().parse_args(
        ["compute", "s.toml", "--executor", "ray", "--address", "10.0.0.1:6379", "--workers", "4"]
    )
    assert (args.executor, args.address, args.workers) == ("ray", "10.0.0.1:6379", 4)
    args = build_parser().parse_args(["demo", "--workers", "2"])
    assert (args.executor, args.workers, args.address) == ("local", 2, None)


def test_any_error_of_one_job_is_recorded_once_and_the_rest_goes_on(store, monkeypatch):
    """A bug (KeyError, TypeError...) in one job is one line; the others still run."""
    real = api.KINDS["test_toy"]

    def buggy(spec, ctx):
        if spec.name == "buggy":
            return {}[spec.name]  # KeyError, as a method's missing snapshot gave
        return real.compute(spec, ctx)

    monkeypatch.setitem(api.KINDS, "test_toy", dataclasses.replace(real, compute=buggy))
    result = InProcess().run([ToySpec(name="buggy"), ToySpec(name="fine")], store)
    error = result.of(ToySpec(name="buggy")).error
    assert error.startswith("toy buggy failed") and "KeyError" in error and "\n" not in error
    assert "KeyError" in store.failure(ToySpec(name="buggy"))
    assert result.of(ToySpec(name="fine")).status == "done"


def test_a_recorded_failure_is_not_recomputed_unless_asked(store):
    """The second run reports the earlier failure without starting it; retry_failed reruns it."""
    bad = ToySpec(name="again", error=True)
    assert InProcess().run([bad], store).of(bad).status == "failed"
    assert attempts(store, "again") == 1
    second = InProcess().run([bad], store).of(bad)
    assert second.status == "failed" and "failed earlier" in second.error
    assert "bad input on purpose" in second.error
    assert attempts(store, "again") == 1  # not started again
    retry = make_executor("local", retry_failed=True)
    assert retry.run([bad], store).of(bad).status == "failed"
    assert attempts(store, "again") == 2


def test_concurrent_computes_count_only_their_own_work(store):
    """Two executors on one spec: one computed it, the other found it done (no double claim)."""
    import threading

    spec = ToySpec(name="shared")
    results = []

    def run():
        results.append(InProcess().run([spec], store).of(spec).status)

    threads = [threading.Thread(target=run) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert sorted(results) == ["cached", "done"]
    assert attempts(store, "shared") == 1


def test_an_entry_that_cannot_be_written_fails_alone(store, monkeypatch):
    """A store error on one entry (an immutable folder, a full disk) fails that job only."""
    from analysis.errors import StoreError

    real = Store.commit

    def commit(self, spec, files, **kw):
        if getattr(spec, "name", "") == "stuck":
            raise StoreError(f"could not write the test_toy result {spec.name} (while renaming)")
        return real(self, spec, files, **kw)

    monkeypatch.setattr(Store, "commit", commit)
    specs = [ToySpec(name="stuck"), ToySpec(name="after")]
    result = InProcess().run(specs, store)
    assert result.of(specs[0]).status == "failed" and "renaming" in result.of(specs[0]).error
    assert result.of(specs[1]).status == "done"
    assert store.failure(specs[0]) is None  # not remembered: freeing the disk and rerunning works


def test_an_interrupted_ray_pass_cancels_the_tasks_still_running(monkeypatch):
    """Ray's back end keeps the refs it submitted until it sees them done; on an interrupt
    each one still running is cancelled with force (its worker ends; nothing commits)."""
    from analysis.executor import ray_backend

    cancelled: list[tuple[str, bool]] = []

    class Ray:
        """What the back end asks of ``ray``: the first handle finishes, then cancels."""

        exceptions = SimpleNamespace(RayError=RuntimeError)

        def wait(self, handles, num_returns, timeout):
            return handles[:1], handles[1:]

        def get(self, ref):
            return {"ref": ref}

        def cancel(self, ref, force):
            cancelled.append((ref, force))

    refs = iter(["a", "b", "c"])
    ex = object.__new__(ray_backend.RayExecutor)
    ex._ray, ex._live, ex._queue, ex._device = Ray(), set(), None, "cpu"
    monkeypatch.setattr(ray_backend.RayExecutor, "threads", 1)
    ex._task = SimpleNamespace(remote=lambda payload, queue: next(refs))
    monkeypatch.setattr(ray_backend, "job_payload", lambda *a, **k: {})
    handles = [ex._submit(None, None) for _ in range(3)]
    assert ex._wait(handles, timeout=0.1) == [("a", {"ref": "a"})]
    ex._abandon()
    assert sorted(cancelled) == [("b", True), ("c", True)] and not ex._live
