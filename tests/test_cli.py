"""The command line: compute, show --json (the documented contract), demo, one-line errors."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from dashboard.cli import main

SMALL = """
name = "small"
seeds = [0]
[data]
name = "digits"
train_size = 300
[model]
arch = "mlp"
width = 16
depth = 1
[train]
epochs = {epochs}
batch_size = 50
lr = 0.01
[[methods]]
method = "dense"
[[methods]]
method = "magnitude"
sparsities = [0.5]
finetune_epochs = 1
"""


@pytest.fixture
def study(tmp_path):
    path = tmp_path / "small.toml"
    path.write_text(SMALL.format(epochs=3))
    return path


def run_cli(*args: str) -> int:
    return main(list(args))


def test_compute_then_show_json(study, tmp_path, capsys):
    cache = str(tmp_path / "cache")
    assert run_cli("compute", str(study), "--only", "runs", "--cache-dir", cache, "-q") == 0
    out = capsys.readouterr().out
    assert "2 computed, 0 cached, 0 failed" in out
    assert run_cli("compute", str(study), "--only", "runs", "--cache-dir", cache, "-q") == 0
    assert "0 computed, 2 cached" in capsys.readouterr().out
    assert run_cli("show", str(study), "--cache-dir", cache, "--json") == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["schema"] == 1 and doc["study"]["name"] == "small"
    assert doc["counts"] == {"runs": 2, "cached": 2, "missing": 0, "failed": 0}
    by_method = {r["method"]: r for r in doc["runs"]}
    for record in doc["runs"]:
        for key in (
            "label",
            "key",
            "requested_sparsity",
            "achieved_sparsity",
            "test_acc",
            "test_loss",
            "nonzero_params",
            "seconds",
            "status",
        ):
            assert key in record
    assert by_method["magnitude"]["achieved_sparsity"] == pytest.approx(0.5, abs=1e-3)
    assert by_method["dense"]["test_acc"] > 0.5


def test_show_before_compute_lists_missing(study, tmp_path, capsys):
    assert run_cli("show", str(study), "--cache-dir", str(tmp_path / "c"), "--json") == 0
    doc = json.loads(capsys.readouterr().out)
    assert {r["status"] for r in doc["runs"]} == {"missing"}


def test_cache_dir_from_environment(study, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("PRUNESCOPE_CACHE", str(tmp_path / "envcache"))
    assert run_cli("compute", str(study), "--only", "runs", "-q") == 0
    assert (tmp_path / "envcache" / "run").is_dir()


@pytest.mark.parametrize(
    ("edit", "fragment"),
    [
        (lambda t: t.replace("\nepochs = 3", "\nepoch = 3"), "'train.epoch'"),
        (lambda t: t.replace('method = "magnitude"', 'method = "magnitud"'), "'lottery'"),
        (lambda t: t.replace("[0.5]", "[1.5]"), "[0, 1)"),
    ],
)
def test_bad_study_is_one_line_error(study, tmp_path, capsys, edit, fragment):
    study.write_text(edit(SMALL.format(epochs=3)))
    assert run_cli("compute", str(study), "--cache-dir", str(tmp_path / "c"), "-q") == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("prunescope: error:") and fragment in err
    assert len(err.splitlines()) == 1


def test_truncated_checkpoint_is_recomputed_not_served(study, tmp_path, capsys):
    cache = tmp_path / "cache"
    assert run_cli("compute", str(study), "--only", "runs", "--cache-dir", str(cache), "-q") == 0
    ckpts = sorted(cache.glob("run/*/*/model.safetensors"))
    assert len(ckpts) == 2
    ckpts[0].write_bytes(ckpts[0].read_bytes()[:100])
    capsys.readouterr()
    assert run_cli("compute", str(study), "--only", "runs", "--cache-dir", str(cache), "-q") == 0
    out = capsys.readouterr().out
    assert "1 computed, 1 cached" in out  # the other run is kept, not retrained
    assert run_cli("show", str(study), "--cache-dir", str(cache), "--json") == 0
    assert json.loads(capsys.readouterr().out)["counts"]["cached"] == 2


@pytest.mark.slow
def test_sigkill_during_compute_loses_nothing(tmp_path):
    """Kill `prunescope compute` at several moments; the rerun completes, nothing damaged."""
    study = tmp_path / "kill.toml"
    study.write_text(SMALL.format(epochs=4).replace("train_size = 300", "train_size = 1000"))
    cache = tmp_path / "cache"
    env = dict(os.environ, PRUNESCOPE_CACHE=str(cache))
    cmd = [sys.executable, "-m", "dashboard.cli", "compute", str(study), "-q"]
    for delay in (2.0, 4.0, 6.0):
        proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(delay)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    assert not list(cache.rglob(".damaged"))  # nothing half-written was ever found
    from analysis.store import Store
    from analysis.study import load_study

    store = Store(cache)
    assert all(store.load(spec) is not None for spec in load_study(study).runs())
    leftovers = [p for p in cache.rglob(".tmp-*")]
    assert all(not p.name.startswith(".tmp-") or p.parent.name != "run" for p in leftovers)


@pytest.mark.slow
def test_console_script_demo_fallback(tmp_path):
    """`prunescope demo` is installed as a console script and runs (tiny study swapped in)."""
    study = tmp_path / "small.toml"
    study.write_text(SMALL.format(epochs=3))
    exe = Path(sys.executable).with_name("prunescope")
    done = subprocess.run(
        [
            str(exe),
            "demo",
            "--no-dashboard",
            "--study",
            str(study),
            "--cache-dir",
            str(tmp_path / "c"),
            "-q",
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr
    assert "dense" in done.stdout and "magnitude 50%" in done.stdout


@pytest.mark.slow
def test_demo_in_a_terminal_ends_serving_the_dashboard(tmp_path):
    """In a terminal, `prunescope demo` computes, prints the summary, then serves the app."""
    import pty
    import re
    import select
    import urllib.request

    from tests._browser import free_port

    study = tmp_path / "small.toml"
    study.write_text(SMALL.format(epochs=1))
    exe = Path(sys.executable).with_name("prunescope")
    cmd = [str(exe), "demo", "--study", str(study), "--cache-dir", str(tmp_path / "c"), "-q"]
    cmd += ["--port", str(free_port())]
    master, slave = pty.openpty()  # stdout is a terminal: demo opens the dashboard
    env = {k: v for k, v in os.environ.items() if k != "CI"}
    proc = subprocess.Popen(
        cmd, stdin=slave, stdout=slave, stderr=slave, env=env, start_new_session=True
    )
    os.close(slave)
    out, url = b"", None
    served = b"(Ctrl+C stops it)"  # the last line demo prints, after its summary
    try:
        deadline = time.monotonic() + 600
        while served not in out and time.monotonic() < deadline and proc.poll() is None:
            if select.select([master], [], [], 1)[0]:
                try:
                    out += os.read(master, 65536)
                except OSError:
                    break
        found = re.search(rb"at (http://127\.0\.0\.1:\d+)", out)
        url = found.group(1).decode() if found else None
        assert url and served in out, out.decode(errors="replace")[-2000:]
        # The address first (the server answers while demo computes), then the summary.
        assert out.index(b"at http") < out.index(b"magnitude 50%") < out.index(served)
        assert b"dense" in out
        # A clean terminal: the server's lines are in its log, torch's warning is filtered.
        assert b"server log: " in out and b"Uvicorn" not in out and b"Streamlit app" not in out
        assert b"FutureWarning" not in out and b"torch.jit.script" not in out
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as resp:
                    if resp.read() == b"ok":
                        break
            except OSError:
                time.sleep(0.5)
        with urllib.request.urlopen(url, timeout=10) as resp:
            assert resp.status == 200 and b"<html" in resp.read().lower()
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
        os.close(master)


def test_an_unexpected_error_is_one_line_with_status_2(monkeypatch, capsys):
    """A bug or a library's surprise reaches the terminal as one line, never a traceback."""
    from dashboard import cli

    def boom(args):
        raise KeyError("snapshot 500")

    monkeypatch.setitem(cli.COMMANDS, "show", boom)
    assert cli.main(["show", "whatever.toml"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "KeyError" in err and "snapshot 500" in err


def test_a_command_resolves_the_dataset_once(monkeypatch, tmp_path):
    """demo computes and summarises the same study even if the dataset appears in between."""
    import argparse

    import analysis.study as study_mod
    from dashboard import cli

    calls = []
    real = study_mod.with_available_data

    def counting(study, root=None):
        calls.append(study.name)
        return real(study, root)

    monkeypatch.setattr(study_mod, "with_available_data", counting)
    args = argparse.Namespace(data_root=None)
    path = str(cli.STUDIES / "tiny.toml")
    first, second = cli._study(args, path), cli._study(args, path)
    assert first is second and len(calls) == 1


def test_only_help_and_the_readme_name_every_part(capsys):
    """``--only``'s choices are written out (listing them would import torch): kept in step."""
    from analysis.parts import PARTS
    from dashboard import cli

    with pytest.raises(SystemExit):
        cli.main(["compute", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    command = readme[readme.index("prunescope compute STUDY.toml [--only PART]") :][:600]
    assert all(part in text and part in command for part in PARTS), list(PARTS)
