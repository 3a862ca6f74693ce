"""A real Ray cluster on 127.0.0.1 runs the tiny digits study and gets the local results exactly.

The fixture starts ``ray start --head`` bound to loopback with Ray's token
authentication on (a fresh token in a temporary folder), the driver joins it
by address, and teardown stops it with ``ray stop``. While the cluster is up
the test reads the kernel's table of listening TCP sockets (``/proc/net/tcp``
and ``tcp6``) and fails if any Ray process listens on a non-loopback address.
"""

from __future__ import annotations

import ipaddress
import os
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from analysis.executor import LOCAL_ONLY_ENV, RayExecutor
from analysis.plan import compute_study
from analysis.store import Store
from tests._tiny import tiny_study
from tests.test_executor import differences

pytestmark = pytest.mark.slow

RAY = str(Path(sys.executable).with_name("ray"))


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _address(hex_addr: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    """An address of /proc/net/tcp{,6} (little-endian 32-bit words in hex)."""
    raw = bytes.fromhex(hex_addr)
    words = b"".join(raw[i : i + 4][::-1] for i in range(0, len(raw), 4))
    return ipaddress.ip_address(words)


def listening() -> list[tuple[str, int, int, str]]:
    """Every listening TCP socket: (address, port, pid, command line) of this machine."""
    inodes: dict[str, tuple[str, int]] = {}
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(table) as fh:
            for line in fh.readlines()[1:]:
                cols = line.split()
                if cols[3] == "0A":  # LISTEN
                    host, port = cols[1].split(":")
                    inodes[cols[9]] = (str(_address(host)), int(port, 16))
    out = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            fds = os.listdir(f"/proc/{pid}/fd")
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        for fd in fds:
            try:
                target = os.readlink(f"/proc/{pid}/fd/{fd}")
            except OSError:
                continue
            inode = target[len("socket:[") : -1] if target.startswith("socket:[") else None
            if inode in inodes:
                out.append((*inodes[inode], int(pid), cmd))
    return out


def is_loopback(address: str) -> bool:
    """127.0.0.0/8, ::1, or an IPv4-mapped loopback (``::ffff:127.0.0.1``)."""
    ip = ipaddress.ip_address(address)
    mapped = getattr(ip, "ipv4_mapped", None)
    return ip.is_loopback or bool(mapped and mapped.is_loopback)


@pytest.fixture
def ray_cluster(monkeypatch):
    """A one-node Ray cluster on 127.0.0.1 with token auth; yields (address, env); stopped after."""
    # A short folder: Ray's unix sockets live under it and paths are limited to 107 bytes.
    tmp = Path(tempfile.mkdtemp(prefix="ray-"))
    token = tmp / "token"
    token.write_text(secrets.token_hex(32))
    token.chmod(0o600)
    env = {
        "RAY_AUTH_MODE": "token",  # on explicitly, whatever the machine's default
        "RAY_AUTH_TOKEN_PATH": str(token),
        LOCAL_ONLY_ENV: "0",  # every Ray service binds loopback
        "RAY_USAGE_STATS_ENABLED": "0",
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    port = free_port()
    start = [
        RAY,
        "start",
        "--head",
        "--node-ip-address=127.0.0.1",
        f"--port={port}",
        f"--ray-client-server-port={free_port()}",
        "--num-cpus=2",
        "--include-dashboard=false",
        "--dashboard-host=127.0.0.1",
        f"--temp-dir={tmp / 'ray'}",
        "--disable-usage-stats",
    ]
    try:
        done = subprocess.run(start, capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stdout + done.stderr
        yield f"127.0.0.1:{port}", port, tmp
    finally:
        subprocess.run([RAY, "stop"], capture_output=True, timeout=300)
        shutil.rmtree(tmp, ignore_errors=True)


STUDY = dict(
    epochs=2,
    representations={"subset_size": 100, "n_neighbors": 5},
    robustness={"subset_size": 100, "trials": 2, "sigmas": [0.0, 0.1]},
    connectivity={"alphas": 5, "train_subset": 200},
    landscape={
        "grid": 5,
        "dims": [1, 2],
        "subset": 100,
        "plane_grid": 4,
        "sharpness_topk": 1,
        "hutchinson_samples": 2,
        "sharpness_batch": 100,
    },
)


def test_tiny_study_on_a_ray_cluster_matches_the_local_executor(ray_cluster, tmp_path):
    """Same keys and same numbers (bit for bit, timings aside) as in-process; loopback only."""
    address, port, tmp = ray_cluster
    # Token auth is on: a driver holding another token is turned away.
    wrong = tmp / "wrong"
    wrong.write_text(secrets.token_hex(32))
    probe = subprocess.run(
        [
            sys.executable,
            "-c",
            f"import ray; ray.init(address='{address}', "
            "_node_ip_address='127.0.0.1', log_to_driver=False)",
        ],
        env={**os.environ, "RAY_AUTH_TOKEN_PATH": str(wrong)},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert probe.returncode != 0 and "uthentic" in probe.stdout + probe.stderr

    study = tiny_study(**STUDY)
    local, remote = Store(tmp_path / "local"), Store(tmp_path / "ray")
    local_report = compute_study(study, local)
    seen = []
    with RayExecutor(address) as executor:
        assert executor.parallelism == 2
        ray_report = compute_study(
            study, remote, executor=executor, progress=lambda *a: seen.append(a)
        )
        sockets = listening()
    assert not local_report.failed and not ray_report.failed, ray_report.failed
    assert (ray_report.done, ray_report.cached) == (local_report.done, local_report.cached)
    assert differences(local.root, remote.root) == []
    assert any(t == "dense s0: train" for t, *_ in seen)  # progress crossed from the workers
    ray_sockets = [s for s in sockets if "ray" in s[3] or s[2] == os.getpid()]
    assert any(p == port for _, p, _, _ in ray_sockets), "the GCS port was not seen listening"
    exposed = [s for s in ray_sockets if not is_loopback(s[0])]
    assert exposed == [], f"Ray listens beyond loopback: {exposed}"
