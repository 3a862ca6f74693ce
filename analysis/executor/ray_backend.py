"""Ray back end: jobs as Ray tasks on a cluster or a private local Ray bound to 127.0.0.1."""

from __future__ import annotations

import contextlib
import logging
import os
from typing import Any

import torch

from analysis.api import Progress
from analysis.errors import PrunescopeError
from analysis.executor.graph import Job
from analysis.executor.private import (
    LOCAL_ONLY_ENV,
    ray_local_only_after_import,
    ray_loopback_node,
)
from analysis.executor.schedule import DEFAULT_RETRIES, Executor, WorkerLost
from analysis.executor.worker import STARTED, job_payload, run_job
from analysis.store import Store


def loopback(address: str | None) -> bool:
    """Whether a Ray address (``host:port`` or ``ray://host:port``) points at this machine's loopback."""
    if not address:
        return True
    host = address.split("://")[-1].rsplit(":", 1)[0]
    return host in ("127.0.0.1", "localhost", "::1", "[::1]")


def ray_device(device: str, resources: dict, gpus_per_job: float | None) -> tuple[str, float]:
    """(device name inside a task, GPUs each task requests) for ``--device`` on a Ray cluster.

    Ray gives a task that requests GPUs its own (``CUDA_VISIBLE_DEVICES``), so the
    task computes on ``cuda``; ``auto`` asks for GPUs when the cluster has any.
    The driver itself may have none: the name is checked where the task runs.

    Raises:
        PrunescopeError: ``cuda`` asked of a cluster without GPUs, or ``mps``
            (Ray does not schedule Apple GPUs).
    """
    name = (device or "auto").strip().lower()
    have = float(resources.get("GPU", 0))
    share = 1.0 if gpus_per_job is None else gpus_per_job
    if name.startswith("cuda") or (name == "auto" and have > 0):
        if have <= 0:
            raise PrunescopeError(
                f"--device {name}: the Ray cluster has no GPUs (resources: {resources})"
            )
        return "cuda", share
    if name == "mps":
        raise PrunescopeError("--device mps is not available on Ray: use --executor local")
    return "cpu", 0.0


class RayExecutor(Executor):
    """Runs jobs as Ray tasks, one CPU each, on a cluster or a private local Ray.

    ``address=None`` starts a local Ray bound to 127.0.0.1 with ``workers`` CPUs
    and no dashboard; otherwise it connects to the running cluster at
    ``address`` (``host:port`` of its head node; the driver must run on a node
    of the cluster, with the store's shared filesystem mounted at the same path).
    """

    _resubmits = False  # Ray reruns a task whose worker died (max_retries)

    def __init__(
        self,
        address: str | None = None,
        *,
        workers: int | None = None,
        retries: int = DEFAULT_RETRIES,
        device: str = "cpu",
        gpus_per_job: float | None = None,
    ):
        super().__init__([torch.device("cpu")])
        # Ray resolves 127.0.0.1 to the machine's outward address and binds its services
        # to every interface unless told it is a single-machine Ray; with this (inherited
        # by the raylet, agents and workers) all of them bind loopback only. Ray reads it
        # when imported: if it already was, set the constant it was read into.
        if loopback(address) and os.environ.setdefault(LOCAL_ONLY_ENV, "0") == "0":
            ray_local_only_after_import()
        import ray
        from ray.util.queue import Queue

        self.retries = retries
        self.address = address
        self._owns = False
        quiet = dict(log_to_driver=False, logging_level=logging.ERROR)
        if not ray.is_initialized():
            if address is None:
                ray.init(
                    num_cpus=workers or os.cpu_count() or 1,
                    include_dashboard=False,
                    **ray_loopback_node(),
                    **quiet,
                )
            else:
                extra = ray_loopback_node() if loopback(address) else {}
                try:
                    ray.init(address=address, **quiet, **extra)
                except ConnectionError as err:
                    raise PrunescopeError(
                        f"cannot join the Ray cluster at {address}: {err} (is `ray start "
                        "--head` running there, and is this machine's token the cluster's?)"
                    ) from err
            self._owns = True
        cpus = int(ray.cluster_resources().get("CPU", 1))
        self.parallelism = max(1, min(workers or cpus, cpus))
        self._ray = ray
        self._queue = Queue(actor_options={"num_cpus": 0})
        self._device, gpus = ray_device(device, ray.cluster_resources(), gpus_per_job)
        self._live: set[Any] = set()  # refs of the tasks submitted and not yet seen done
        self._task = ray.remote(run_job).options(
            num_cpus=1, num_gpus=gpus, max_retries=retries, retry_exceptions=False
        )

    def _submit(self, job: Job, store: Store) -> Any:
        payload = job_payload(job, store, self.threads, device=self._device)
        ref = self._task.remote(payload, self._queue)
        self._live.add(ref)
        return ref

    def _wait(self, handles: list[Any], timeout: float) -> list[tuple[Any, dict | Exception]]:
        done, _ = self._ray.wait(handles, num_returns=1, timeout=timeout)
        out: list[tuple[Any, dict | Exception]] = []
        self._live.difference_update(done)
        for ref in done:
            try:
                out.append((ref, self._ray.get(ref)))
            except self._ray.exceptions.RayError as err:
                text = str(err).strip().splitlines()
                out.append((ref, WorkerLost(f"{type(err).__name__}: {text[0] if text else ''}")))
        return out

    def _abandon(self) -> None:
        """Cancel the tasks still running after an interrupt (Ctrl+C, a cancel request).

        ``ray.cancel(force=True)`` ends each task's worker process, on whichever node it
        runs: a job commits its entry only when it has finished, so nothing half-done
        lands in the store, and a cluster's workers do not go on computing for nobody.
        """
        live, self._live = list(self._live), set()
        for ref in live:
            with contextlib.suppress(Exception):  # already finished, or its node is gone
                self._ray.cancel(ref, force=True)

    def _drain(self, progress: Progress) -> None:
        with contextlib.suppress(Exception):
            for task, done, total in self._queue.get_nowait_batch(self._queue.qsize()):
                if task != STARTED:
                    progress(task, done, total)

    def close(self) -> None:
        """Drop the progress queue; shut Ray down if this executor started or joined it."""
        with contextlib.suppress(Exception):
            self._queue.shutdown()
        if self._owns:
            self._ray.shutdown()
            self._owns = False
