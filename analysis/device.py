"""Which device a computation runs on: ``auto``, ``cpu``, ``cuda``, ``cuda:N`` or ``mps``.

The device is an execution choice, not part of a result's meaning: it is never
in a spec or its key, and a result computed on one device is served on every
other. It is recorded beside each result (``meta.json``'s ``device``) with the
device's name, the torch and CUDA versions and whether deterministic
algorithms were on, so a number can be traced to the hardware that made it.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import torch

from analysis.device_names import ENV_VAR as ENV_VAR  # re-exported: where users look
from analysis.device_names import PATTERN as _PATTERN
from analysis.device_names import requested
from analysis.errors import PrunescopeError

#: The device this process computes on (set by ``use``; CPU until a command picks one).
_CURRENT: list[torch.device] = [torch.device("cpu")]


class DeviceError(PrunescopeError):
    """A device that is not there (or not a device at all) was asked for."""


def available() -> list[str]:
    """The devices this machine has, in preference order (CPU always last)."""
    out = []
    if torch.cuda.is_available():
        out += [f"cuda:{i}" for i in range(torch.cuda.device_count())]
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        out.append("mps")
    return [*out, "cpu"]


def resolve(name: str | None = None) -> torch.device:
    """The ``torch.device`` for ``name`` (default ``$PRUNESCOPE_DEVICE``, else ``auto``).

    ``auto`` picks CUDA, then MPS, then the CPU.

    Raises:
        DeviceError: ``name`` is not a device name, or names one this machine
            does not have; the message lists the devices that exist.
    """
    name = requested(name)
    if not _PATTERN.match(name):
        raise DeviceError(
            f"unknown device {name!r}: use auto, cpu, cuda, cuda:N or mps "
            f"(here: {', '.join(available())})"
        )
    have = available()
    if name == "auto":
        return torch.device(have[0])
    full = "cuda:0" if name == "cuda" else name
    if full not in have:
        raise DeviceError(f"device {name!r} is not available here; devices: {', '.join(have)}")
    return torch.device(full)


def spread(name: str | None = None) -> list[torch.device]:
    """The devices jobs may be spread over for ``name``: every GPU for ``cuda`` (and for
    ``auto`` on a CUDA machine), else the one device :func:`resolve` gives.

    Raises:
        DeviceError: see :func:`resolve`.
    """
    first = resolve(name)
    asked = requested(name)
    if first.type == "cuda" and asked in ("auto", "cuda"):
        return [torch.device(d) for d in available() if d.startswith("cuda")]
    return [first]


def describe(device: torch.device) -> dict[str, Any]:
    """What is recorded beside a result about the device that computed it."""
    doc: dict[str, Any] = {
        "device": str(device),
        "torch": torch.__version__,
        "deterministic": torch.are_deterministic_algorithms_enabled(),
        "threads": torch.get_num_threads(),
    }
    if device.type == "cuda":
        doc["name"] = torch.cuda.get_device_name(device)
        doc["cuda"] = torch.version.cuda
    elif device.type == "mps":
        doc["name"] = "Apple MPS"
    else:
        import platform

        doc["name"] = platform.processor() or platform.machine()
    return doc


def use(device: torch.device | str | None) -> torch.device:
    """Make ``device`` (a name for :func:`resolve`, or a ``torch.device``) this process's device.

    Every computation started afterwards in this process (``analysis.api.Context``'s
    default) runs on it. Returns the resolved device.

    Raises:
        DeviceError: see :func:`resolve`.
    """
    dev = device if isinstance(device, torch.device) else resolve(device)
    _CURRENT[0] = dev
    if dev.type == "cuda" and not torch.are_deterministic_algorithms_enabled():
        torch.backends.cudnn.benchmark = True  # fixed shapes: cuDNN picks its fastest kernels
    return dev


def current() -> torch.device:
    """The device computations of this process run on (see :func:`use`; default CPU)."""
    return _CURRENT[0]


def usable_cores() -> int:
    """CPU cores this process may run on (its affinity where the OS tells, else all)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        return os.cpu_count() or 1


def say(device: torch.device) -> str:
    """One line for people: which device, and its name (``cuda:0 (NVIDIA H200)``)."""
    doc = describe(device)
    return f"{doc['device']} ({doc['name']})" if doc.get("name") else doc["device"]


#: Execution options of this process (never in a key): ``compile`` wraps training in
#: ``torch.compile`` (its compile time reported in the run's notes).
_OPTIONS: dict[str, Any] = {"compile": False}


def set_compile(on: bool) -> None:
    """Turn the ``torch.compile`` execution option on or off for this process."""
    _OPTIONS["compile"] = bool(on)


def compiling() -> bool:
    """Whether computations of this process should ``torch.compile`` their models."""
    return bool(_OPTIONS["compile"])


def float64_device(device: torch.device) -> torch.device:
    """Where a float64 step of a computation on ``device`` runs: ``device``, or the CPU for MPS.

    MPS has no float64; the few float64 steps (Lanczos vectors, correlation sums,
    matching objectives) move there to the CPU instead of dropping to float32.
    """
    return torch.device("cpu") if device.type == "mps" else device


@contextmanager
def full_fp32() -> Iterator[None]:
    """Inside: float32 matmuls and convolutions in full precision (no TF32); settings restored.

    CUDA runs float32 convolutions in TF32 by default (cuDNN), and a training
    loop may turn TF32 on for matmuls too: about 3 significant digits instead
    of 7. An analysis asked for fp32 (``precision = "fp32"``) computes in fp32,
    so its numbers agree with the CPU's to float rounding; usable as a
    decorator. No effect off CUDA.
    """
    matmul = torch.backends.cuda.matmul.allow_tf32
    conv = torch.backends.cudnn.allow_tf32
    precision = torch.get_float32_matmul_precision()
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    torch.set_float32_matmul_precision("highest")
    try:
        yield
    finally:
        torch.set_float32_matmul_precision(precision)
        torch.backends.cuda.matmul.allow_tf32 = matmul
        torch.backends.cudnn.allow_tf32 = conv
