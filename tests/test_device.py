"""Devices: names, errors that list what exists, where jobs are placed, what is recorded."""

from __future__ import annotations

import json

import pytest
import torch

from analysis import api
from analysis import device as devices
from analysis.executor import InProcess, make_executor
from analysis.executor.graph import Job
from analysis.executor.ray_backend import ray_device
from analysis.executor.schedule import cpu_threads
from analysis.executor.worker import job_payload
from dashboard.cli import main

HAVE = devices.available()


def test_auto_picks_the_first_available_and_cpu_is_always_there():
    assert HAVE[-1] == "cpu"
    assert str(devices.resolve("auto")) == HAVE[0]
    assert devices.resolve("cpu") == torch.device("cpu")


@pytest.mark.parametrize("name", ["gpu", "cuda:x", "tpu", "cpu:0"])
def test_a_name_that_is_no_device_is_refused_with_the_choices(name):
    with pytest.raises(devices.DeviceError, match=r"use auto, cpu, cuda, cuda:N or mps \(here: "):
        devices.resolve(name)


@pytest.mark.parametrize("name", ["cuda", "cuda:7", "mps"])
def test_a_device_not_here_names_the_devices_that_are(name):
    full = "cuda:0" if name == "cuda" else name
    if full in HAVE:
        pytest.skip(f"{name} exists here")
    with pytest.raises(devices.DeviceError) as err:
        devices.resolve(name)
    assert f"device {name!r} is not available here; devices: {', '.join(HAVE)}" == str(err.value)


def test_the_environment_variable_is_the_default(monkeypatch):
    monkeypatch.setenv(devices.ENV_VAR, "cpu")
    assert devices.resolve(None) == torch.device("cpu")
    monkeypatch.setenv(devices.ENV_VAR, "nonsense")
    with pytest.raises(devices.DeviceError, match="unknown device 'nonsense'"):
        devices.resolve(None)


def test_use_sets_the_default_device_of_every_context(store):
    before = devices.current()
    try:
        devices.use("cpu")
        assert api.Context(store=store).device == torch.device("cpu")
    finally:
        devices.use(before)


@pytest.mark.parametrize(
    "argv",
    [
        ["compute", "{study}", "--device", "{dev}"],
        ["demo", "--no-dashboard", "--device", "{dev}"],
        ["check", "{ckpt}", "--study", "{study}", "--device", "{dev}"],
    ],
    ids=["compute", "demo", "check"],
)
def test_a_missing_device_is_one_line_exit_2_and_nothing_written(argv, tmp_path, capsys):
    missing = "mps" if "mps" not in HAVE else None
    missing = "cuda" if not any(d.startswith("cuda") for d in HAVE) else missing
    if missing is None:
        pytest.skip("this machine has both CUDA and MPS")
    study = tmp_path / "s.toml"
    study.write_text(TINY)
    cache = tmp_path / "cache"
    args = [a.format(study=study, dev=missing, ckpt=tmp_path / "x.safetensors") for a in argv]
    assert main([*args, "--cache-dir", str(cache), "-q"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and f"device {missing!r} is not available here; devices: cpu" in err[0]
    assert not cache.exists()


TINY = """
name = "tiny-device"
seeds = [0]
[data]
name = "digits"
train_size = 200
[model]
arch = "mlp"
width = 16
depth = 1
[train]
epochs = 1
batch_size = 50
[[methods]]
method = "dense"
"""


def test_computed_on_one_device_served_on_another_and_show_says_where(
    device, tmp_path, tiny_run, capsys
):
    """The run is computed on ``device``; a CPU context reads it without recomputing, and
    both meta.json and ``show --json`` say which device computed it."""
    from analysis.store import Store

    store = Store(tmp_path / "cache")
    entry, computed = api.ensure(tiny_run, store=store, device=device)
    assert computed and entry.meta["device"]["device"] == str(device)
    assert entry.meta["device"]["torch"] == torch.__version__
    assert {"deterministic", "threads", "name"} <= set(entry.meta["device"])
    again, computed = api.ensure(tiny_run, store=store, device=torch.device("cpu"))
    assert not computed and again.meta["device"]["device"] == str(device)
    record = api.status_record(tiny_run, store)
    assert record["status"] == "cached" and record["device"].startswith(str(device))

    study = tmp_path / "s.toml"
    study.write_text(TINY)
    cache = str(tmp_path / "cache2")
    argv = ["compute", str(study), "--only", "runs", "--device", str(device), "--cache-dir", cache]
    assert main([*argv, "-q"]) == 0
    assert f"device: {device}" in capsys.readouterr().out
    assert main(["show", str(study), "--json", "--cache-dir", cache]) == 0
    runs = json.loads(capsys.readouterr().out)["runs"]
    assert runs and all(r["device"].startswith(str(device)) for r in runs)


def _job(i: int) -> Job:
    return Job(spec=None, key=f"k{i}")


def test_jobs_spread_over_gpus_least_loaded_first_with_a_share_cap():
    gpus = [torch.device("cuda:0"), torch.device("cuda:1")]
    ex = InProcess(gpus)
    placed = [ex._place(_job(i)) for i in range(4)]
    assert [str(d) for d in placed] == ["cuda:0", "cuda:1", "cuda:0", "cuda:1"]
    ex = InProcess(gpus)
    ex.gpus_per_job = 0.5  # two jobs per GPU at once
    placed = [ex._place(_job(i)) for i in range(5)]
    assert [str(d) if d else None for d in placed] == [
        "cuda:0",
        "cuda:1",
        "cuda:0",
        "cuda:1",
        None,
    ]
    ex._placed.pop("k1")  # a job on cuda:1 finished: room there again
    assert str(ex._place(_job(9))) == "cuda:1"
    assert ex.device_of(_job(9)) == torch.device("cuda:1")


def test_the_cpu_takes_any_number_of_jobs():
    ex = InProcess([torch.device("cpu")])
    ex.gpus_per_job = 0.5
    assert all(ex._place(_job(i)) == torch.device("cpu") for i in range(6))


def test_threads_are_the_cores_shared_out_never_more_than_the_driver(monkeypatch):
    monkeypatch.setattr(torch, "get_num_threads", lambda: 8)
    monkeypatch.setattr("os.sched_getaffinity", lambda _pid: set(range(4)), raising=False)
    assert cpu_threads(1) == 4 and cpu_threads(2) == 2 and cpu_threads(3) == 1
    assert cpu_threads(16) == 1
    monkeypatch.setattr(torch, "get_num_threads", lambda: 1)
    assert cpu_threads(1) == 1


def test_a_job_payload_names_its_device(store, tiny_run):
    from analysis.specs import spec_key

    payload = job_payload(Job(spec=tiny_run, key=spec_key(tiny_run)), store, 2, device="cuda:1")
    assert payload["device"] == "cuda:1" and payload["threads"] == 2


def test_ray_tasks_request_gpus_only_where_the_cluster_has_them():
    assert ray_device("auto", {"CPU": 8}, None) == ("cpu", 0.0)
    assert ray_device("auto", {"CPU": 8, "GPU": 2}, None) == ("cuda", 1.0)
    assert ray_device("cuda:1", {"GPU": 2}, 0.25) == ("cuda", 0.25)
    assert ray_device("cpu", {"GPU": 2}, None) == ("cpu", 0.0)
    with pytest.raises(devices.PrunescopeError, match="the Ray cluster has no GPUs"):
        ray_device("cuda", {"CPU": 8}, None)
    with pytest.raises(devices.PrunescopeError, match="mps is not available on Ray"):
        ray_device("mps", {"CPU": 8}, None)


@pytest.mark.parametrize("share", [0, -1, 1.5])
def test_a_gpu_share_outside_0_1_is_refused(share):
    with pytest.raises(devices.PrunescopeError, match=r"--gpus-per-job must be in \(0, 1\]"):
        make_executor("local", gpus_per_job=share)


def test_a_device_record_says_the_name_and_versions():
    doc = devices.describe(torch.device("cpu"))
    assert doc["device"] == "cpu" and doc["torch"] == torch.__version__
    assert devices.say(torch.device("cpu")).startswith("cpu")


def test_the_demo_runs_one_job_per_core_compute_one_and_a_second_demo_none(monkeypatch, tmp_path):
    from dashboard import cli

    seen = []
    monkeypatch.setattr(cli, "cmd_compute", lambda args: seen.append(args.workers) or 0)
    monkeypatch.setattr(cli, "cmd_show", lambda args: 0)
    monkeypatch.setattr("os.sched_getaffinity", lambda _pid: set(range(2)), raising=False)
    cache = ["--cache-dir", str(tmp_path / "cache")]
    assert cli.main(["demo", "--no-dashboard", *cache]) == 0  # nothing cached: a pool
    assert cli.main(["demo", "--no-dashboard", "--workers", "1", *cache]) == 0
    monkeypatch.setattr(cli, "_all_cached", lambda args: True)  # a second demo: no pass
    assert cli.main(["demo", "--no-dashboard", *cache]) == 0
    assert seen == [2, 1]
    monkeypatch.setattr("os.sched_getaffinity", lambda _pid: set(range(64)), raising=False)
    assert cli.demo_workers() == 4
    assert cli.build_parser().parse_args(["compute", "s.toml"]).workers is None


def test_fp16_on_the_cpu_is_one_line_naming_the_alternatives_and_nothing_written(tmp_path, capsys):
    study = tmp_path / "s.toml"
    study.write_text(TINY.replace("batch_size = 50", 'batch_size = 50\nprecision = "fp16"'))
    cache = tmp_path / "cache"
    assert main(["compute", str(study), "--device", "cpu", "--cache-dir", str(cache), "-q"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "'fp16' needs a GPU" in err[0] and "'fp32' or 'bf16'" in err[0]
    assert not cache.exists()


def test_all_cached_is_false_on_an_empty_store_and_true_once_computed(tmp_path, monkeypatch):
    from analysis import api
    from dashboard import cli

    study = tmp_path / "s.toml"
    study.write_text(TINY)
    args = cli.build_parser().parse_args(["demo", "--study", str(study)])
    args.cache_dir = str(tmp_path / "cache")
    assert not cli._all_cached(args)
    monkeypatch.setattr(api, "exists", lambda spec, store: True)
    assert cli._all_cached(args)


class _Server:
    """A started dashboard, as ``prunescope demo`` sees it."""

    def __init__(self, order: list[str]):
        self.order = order

    def serve(self) -> int:
        self.order.append("serve")
        return 0

    def announce(self):
        return lambda: self.order.append("address")

    def stop(self) -> None:
        self.order.append("stop")


@pytest.mark.parametrize(
    "device, order",
    [
        (None, ["server", "resolve", "address", "show", "serve"]),  # auto: every machine has it
        ("cpu", ["server", "resolve", "address", "show", "serve"]),
        ("cuda", ["resolve", "server", "show", "serve"]),  # may not be there: checked first
    ],
)
def test_a_second_demo_starts_its_server_first_and_makes_no_pass(device, order, monkeypatch):
    from dashboard import cli

    seen: list[str] = []
    monkeypatch.delenv("CI", raising=False)
    monkeypatch.delenv(devices.ENV_VAR, raising=False)
    monkeypatch.setattr("sys.stdout.isatty", lambda: True)
    monkeypatch.setattr(cli, "_start_server", lambda args: seen.append("server") or _Server(seen))
    monkeypatch.setattr(devices, "resolve", lambda name=None: seen.append("resolve"))
    monkeypatch.setattr(cli, "_all_cached", lambda args: True)
    monkeypatch.setattr(cli, "cmd_compute", lambda args: seen.append("compute") or 0)
    monkeypatch.setattr(cli, "cmd_show", lambda args: seen.append("show") or 0)
    argv = ["demo", *(["--device", device] if device else [])]
    assert cli.main(argv) == 0
    assert seen == order


def test_a_demo_on_a_device_that_is_not_there_starts_no_server(monkeypatch, tmp_path, capsys):
    from dashboard import cli

    if "cuda:7" in HAVE:
        pytest.skip("this machine has an eighth GPU")
    started = []
    monkeypatch.delenv("CI", raising=False)
    monkeypatch.setattr("sys.stdout.isatty", lambda: True)
    monkeypatch.setattr(cli, "_start_server", lambda args: started.append(args))
    cache = tmp_path / "cache"
    assert cli.main(["demo", "--device", "cuda:7", "--cache-dir", str(cache)]) == 2
    assert not started and not cache.exists()
    assert "not available here" in capsys.readouterr().err
