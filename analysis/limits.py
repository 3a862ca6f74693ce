"""Memory limits: estimate what a UMAP fit or a landscape grid needs, refuse it before it starts.

A computation that cannot fit must fail in a second with a message, not after
an hour by the kernel's OOM killer (which takes the whole sweep with it). The
estimates below count the big arrays each computation holds at its peak; they
are deliberately on the high side. The budget is a fraction of the memory
available now (``psutil`` when installed, else ``/proc/meminfo``, else
``os.sysconf``), or ``$PRUNESCOPE_MEMORY_LIMIT`` (e.g. ``"2GiB"``, ``"512MB"``,
bytes) when set.

What cannot be chunked is refused: the landscape engine already walks its
subset in batches of ``ENGINE_BATCH``, but it keeps the first layer's outputs
for the whole subset (that is what makes it fast), and UMAP / scikit-learn's
trustworthiness hold (N, N) matrices. The refusal names the estimate, the
budget and the setting to lower.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from typing import Any

from analysis.errors import PrunescopeError

ENV_VAR = "PRUNESCOPE_MEMORY_LIMIT"

#: Share of the currently available memory one computation may plan to use.
DEFAULT_FRACTION = 0.7

_UNITS = {
    "": 1,
    "b": 1,
    "k": 1000,
    "kb": 1000,
    "kib": 1 << 10,
    "m": 1000**2,
    "mb": 1000**2,
    "mib": 1 << 20,
    "g": 1000**3,
    "gb": 1000**3,
    "gib": 1 << 30,
    "t": 1000**4,
    "tb": 1000**4,
    "tib": 1 << 40,
}


class MemoryLimitError(PrunescopeError):
    """A computation would need more memory than the budget allows (refused before it starts)."""


def parse_size(text: str) -> int:
    """``"2GiB"`` / ``"512 MB"`` / ``"1e9"`` -> bytes; raises PrunescopeError naming the setting."""
    match = re.fullmatch(r"\s*([0-9]*\.?[0-9]+(?:[eE][+-]?[0-9]+)?)\s*([A-Za-z]*)\s*", str(text))
    unit = match.group(2).lower() if match else None
    if match is None or unit not in _UNITS or float(match.group(1)) <= 0:
        raise PrunescopeError(
            f"${ENV_VAR} must be a positive size such as '2GiB', '512MB' or a number of bytes. "
            f"Got {text!r} instead."
        )
    return int(float(match.group(1)) * _UNITS[unit])


def human(n: float) -> str:
    """Bytes as a short human string (binary units)."""
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TiB"  # pragma: no cover - the loop always returns


def available_memory() -> int:
    """Bytes of memory available to a new allocation now."""
    try:
        import psutil

        return int(psutil.virtual_memory().available)
    except ImportError:
        pass
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")


@dataclass(frozen=True)
class Budget:
    """How many bytes one computation may plan to use, and where that number came from."""

    bytes: int
    source: str


def memory_budget() -> Budget:
    """The budget: ``$PRUNESCOPE_MEMORY_LIMIT`` if set, else a fraction of the available memory."""
    setting = os.environ.get(ENV_VAR, "").strip()
    if setting:
        return Budget(parse_size(setting), f"${ENV_VAR}={setting}")
    avail = available_memory()
    return Budget(
        int(DEFAULT_FRACTION * avail),
        f"{DEFAULT_FRACTION:.0%} of the {human(avail)} available; ${ENV_VAR} overrides it",
    )


def check_memory(what: str, estimate: int, *, lower: str) -> int:
    """Raise MemoryLimitError if ``estimate`` bytes exceed the budget; return the estimate.

    ``lower`` names the settings that shrink the computation.
    """
    budget = memory_budget()
    if estimate > budget.bytes:
        raise MemoryLimitError(
            f"{what} would need about {human(estimate)} of memory, more than the budget of "
            f"{human(budget.bytes)} ({budget.source}); refused before starting: lower {lower}"
        )
    return estimate


# ---------------------------------------------------------------------------
# estimates


def umap_bytes(n: int, dim: int, n_neighbors: int, n_components: int) -> int:
    """Peak bytes of a UMAP fit plus its trustworthiness on ``n`` points of ``dim`` features.

    umap-learn: below 4096 points an exact (n, n) float64 distance matrix;
    above, NN-descent heaps (n x k indices, distances, flags) and its random
    projection forest; then the fuzzy graph (~2 n k entries of row, column and
    weight, copied while symmetrised) and the embedding. scikit-learn's
    ``trustworthiness`` holds an (n, n) float64 distance matrix, its (n, n)
    int64 argsort and an (n, n) int64 inverted index at once: 24 n^2 bytes.
    """
    feats = n * dim * (4 + 8)  # the float32 features and a float64 working copy
    knn = 8 * n * n if n < 4096 else n * n_neighbors * 20 + n * 8 * 64
    graph = n * n_neighbors * 2 * 16 * 3
    embedding = n * n_components * 8 * 4
    trust = 24 * n * n
    return feats + max(knn + graph + embedding, trust)


def landscape_bytes(
    *,
    n: int,
    input_numel: int,
    first_out: int,
    params: int,
    dims: int,
    grid: int,
    precision: str,
    batch: int,
) -> int:
    """Peak bytes of a landscape grid (see ``analysis.landscape.SurfaceProblem``).

    The evaluation subset (n, input) in fp32; per sample the first layer's output
    at the centre and along each direction, the row sum and the working output
    (fp32; one more bf16 copy in bf16 mode); one batch of activations through
    the rest of the network (a few first-layer-sized tensors); the network
    copies (working model, centre, directions, row sums; a bf16 copy); the grid.
    """
    subset = n * input_numel * 4 * 2
    products = n * first_out * 4 * (1 + dims + 2) + (
        n * first_out * 2 if precision == "bf16" else 0
    )
    activations = min(batch, n) * first_out * 4 * 4
    weights = params * 4 * (4 + dims) + (params * 2 if precision == "bf16" else 0)
    surface = grid**dims * 8 * 4
    return subset + products + activations + weights + surface


def check_umap(spec: Any, n: int, dim: int) -> int:
    """Refuse a UMAP fit of ``n`` points of ``dim`` features that would not fit in memory."""
    estimate = umap_bytes(n, dim, spec.n_neighbors, spec.n_components)
    return check_memory(
        f"{spec.label} ({n} points x {dim} features)",
        estimate,
        lower="[analyses.representations] subset_size",
    )
