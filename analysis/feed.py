"""Data that feeds a device: where a run's splits live, and the training batches cut from them.

On a GPU the splits live on the device when they take at most a quarter of
its free memory (CIFAR-10 in float32 is 0.7 GB), so batches are cut and
augmented there with no host round trip, as fast CIFAR trainers do (Keller
Jordan's airbench); otherwise they stay on the CPU in pinned memory and every
batch is copied without blocking the host. On the CPU nothing moves. Datasets
are whole tensors loaded once (:mod:`analysis.data`): nothing is decoded per batch.

The data order is drawn on the CPU (a seeded ``torch.randperm``) and moved,
so a run sees the same batches on every device.
"""

from __future__ import annotations

import torch

from analysis.data import Splits
from analysis.transforms import to_device

#: Largest share of a device's free memory the splits may take to live on it.
DEVICE_SHARE = 0.25


def free_bytes(device: torch.device) -> int | None:
    """Free memory of ``device`` in bytes (None where it cannot be told, and on the CPU)."""
    if device.type == "cuda":
        return int(torch.cuda.mem_get_info(device)[0])
    if device.type == "mps":
        try:
            return int(torch.mps.recommended_max_memory() - torch.mps.driver_allocated_memory())
        except (AttributeError, RuntimeError):
            return None
    return None


def place(data: Splits, device: torch.device) -> Splits:
    """``data`` where training on ``device`` reads it fastest.

    CPU: unchanged. GPU: on the device if all six tensors take at most
    :data:`DEVICE_SHARE` of its free memory; else on the CPU, pinned on CUDA
    (per-batch copies then overlap the computation).
    """
    if device.type == "cpu":
        return data.to(device)
    free = free_bytes(device)
    if free is not None and data.nbytes() <= DEVICE_SHARE * free:
        return data.to(device)
    on_cpu = data.to(torch.device("cpu"))
    return on_cpu.pinned() if device.type == "cuda" else on_cpu


def take(t: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
    """``t[idx]`` for CPU (or any-device) indices ``idx``: (n,) int64, moved to ``t``'s device."""
    return t[to_device(idx, t.device)]


class Batches:
    """Training batches of ``data`` for a model on ``device``.

    An epoch's permutation (drawn on the CPU) is moved once to where the training
    split lives (:meth:`order`); each batch is cut there and moved to ``device``
    (:meth:`take`; a no-op when the split lives on the device).
    """

    def __init__(self, data: Splits, device: torch.device) -> None:
        """Read the training split of ``data``; batches go to ``device``."""
        self.x, self.y, self.device = data.train_x, data.train_y, device

    def order(self, perm: torch.Tensor) -> torch.Tensor:
        """A CPU permutation (n,) int64, moved to where the training split lives."""
        return to_device(perm, self.x.device)

    def take(self, idx: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Batch ``idx`` (from :meth:`order`) on the device: x (B, C, H, W), y (B,)."""
        return to_device(self.x[idx], self.device), to_device(self.y[idx], self.device)
