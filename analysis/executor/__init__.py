"""Where specs are computed: in this process, in a local process pool, or on a Ray cluster.

Every back end runs the same schedule. The specs asked for, and every spec they
nest (a connectivity spec holds two runs; see :func:`dependencies`), form a
dependency graph; a job is submitted once all of its dependencies are done, and
when one fails its dependents are reported failed ("because <dep> failed")
without running. A 2-D loss surface is split into row chunks
(:func:`analysis.landscape.fill_rows`) that run as separate jobs filling the
same partial grid in the store, followed by the job that assembles it.

Workers open the store themselves (``Store(root)``: on a cluster, a shared
filesystem mounted at the same path on every node) and send back only a small
record (key, status, seconds, error): results never travel through the driver,
which reads them from the store like everyone else. Specs travel as canonical
JSON (module, class and fields), not as pickles, and the worker checks that the
rebuilt spec has the same key. Every worker pins ``torch.set_num_threads`` to
its share of the cores (``cores // workers``, at most the driver's value:
oversubscribed OpenMP threads spin against each other).

Devices: each job is placed on a device (:meth:`Executor._place`): the least
loaded of the GPUs the command may use, at most ``floor(1 / gpus_per_job)`` jobs
per GPU; a worker computes on the device its job names. On Ray, tasks request
``num_gpus`` and compute on the GPU Ray gives them.

Failures: a compute error (``ComputeFailed`` or any exception raised by the
computation) is deterministic, so it is reported once with the spec's label and
reason and never retried. A worker that dies (killed, out of memory, segfault)
is retried up to ``retries`` times (Ray's ``max_retries``; the pool is rebuilt
and the lost jobs resubmitted); whatever finished before it died is already
committed to the store and is not lost.

Progress: remote jobs send ``(task, done, total)`` through a queue (a
``multiprocessing`` manager queue for the pool, ``ray.util.queue.Queue`` for
Ray) that the driver drains between waits and forwards to its ``progress``
callback, so the CLI's bars and the dashboard's compute page move.
"""

from __future__ import annotations

import os

from analysis import device as devices
from analysis.errors import PrunescopeError
from analysis.executor.graph import Job, dependencies, is_spec, label_of, plan_jobs
from analysis.executor.pool import ProcessPool
from analysis.executor.ray_backend import LOCAL_ONLY_ENV, RayExecutor, loopback
from analysis.executor.schedule import (
    DEFAULT_RETRIES,
    Executor,
    InProcess,
    Outcome,
    RunResult,
    WorkerLost,
)
from analysis.executor.worker import (
    PROGRESS_INTERVAL,
    STARTED,
    job_payload,
    run_job,
    spec_from_payload,
    spec_payload,
)

__all__ = [
    "DEFAULT_RETRIES",
    "LOCAL_ONLY_ENV",
    "PROGRESS_INTERVAL",
    "STARTED",
    "Executor",
    "InProcess",
    "Job",
    "Outcome",
    "ProcessPool",
    "RayExecutor",
    "RunResult",
    "WorkerLost",
    "dependencies",
    "is_spec",
    "job_payload",
    "label_of",
    "loopback",
    "make_executor",
    "plan_jobs",
    "run_job",
    "spec_from_payload",
    "spec_payload",
]


def make_executor(
    name: str = "local",
    *,
    workers: int = 1,
    address: str | None = None,
    retry_failed: bool = False,
    device: str | None = None,
    gpus_per_job: float | None = None,
) -> Executor:
    """The executor named on the command line: ``local`` (N>1 workers: a pool) or ``ray``.

    ``retry_failed``: compute again the specs whose earlier computation failed
    (by default they are reported with their recorded reason, not recomputed).
    ``device``: ``auto``, ``cpu``, ``cuda``, ``cuda:N`` or ``mps`` (default
    ``$PRUNESCOPE_DEVICE``, else auto); locally ``cuda``/``auto`` spread jobs over
    every GPU here, ``cuda:N`` keeps them on that one. ``gpus_per_job``: the share
    of a GPU each job takes (0.5: two jobs per GPU at once; Ray's ``num_gpus``).

    Raises:
        PrunescopeError: an unknown executor name, ``address`` for the local one,
            or a ``gpus_per_job`` outside (0, 1].
        DeviceError: a device this machine does not have (names those it has).
    """
    if gpus_per_job is not None and not 0 < gpus_per_job <= 1:
        raise PrunescopeError(f"--gpus-per-job must be in (0, 1], got {gpus_per_job}")
    if name == "local":
        if address:
            raise PrunescopeError("--address is for --executor ray; the local executor has none")
        placed = devices.spread(device)
        devices.use(placed[0])  # this process too (the in-process executor, nested gets)
        executor: Executor = (
            ProcessPool(workers, devices=placed) if workers > 1 else InProcess(placed[:1])
        )
        executor.gpus_per_job = gpus_per_job
    elif name == "ray":
        executor = RayExecutor(
            address,
            workers=workers if workers > 1 else None,
            device=device or os.environ.get(devices.ENV_VAR) or "auto",
            gpus_per_job=gpus_per_job,
        )
    else:
        raise PrunescopeError(f"unknown executor {name!r}: use 'local' or 'ray'")
    executor.retry_failed = retry_failed
    return executor
