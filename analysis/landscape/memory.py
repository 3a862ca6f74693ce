"""Refuse a landscape grid that cannot fit in memory, before anything starts.

The estimate is :func:`analysis.limits.landscape_bytes` of the evaluated subset,
plus, for a BatchNorm network evaluated on the test split, the training subset
its statistics are recomputed on (its inputs and first-layer products, the row
sum: the engine's second input set).
"""

from __future__ import annotations

from functools import cache
from typing import Any

from analysis import limits
from analysis.landscape.engine import ENGINE_BATCH, first_layer
from analysis.landscape.surfaces import eval_batch


@cache
def shape_facts(model_spec: Any, data_name: str) -> tuple[int, int, int, bool]:
    """(input numel, first layer's output numel per sample, parameter count, has BatchNorm)."""
    import torch

    from analysis.batchnorm import has_batchnorm
    from analysis.data import dataset_info
    from analysis.models import build_for

    info = dataset_info(data_name)
    model = build_for(model_spec, info).eval()
    layer = model.get_submodule(first_layer(model))
    seen: list[int] = []
    hook = layer.register_forward_hook(lambda _m, _i, out: seen.append(out[0].numel()))
    x = torch.zeros(1, info.in_channels, info.image_size, info.image_size)
    try:
        with torch.no_grad():
            model(x)
    finally:
        hook.remove()
    return x.numel(), seen[0], sum(p.numel() for p in model.parameters()), has_batchnorm(model)


def check_landscape(spec: Any) -> int:
    """Refuse a landscape surface or plane whose grid would not fit in memory; the estimate (bytes).

    Raises:
        analysis.limits.MemoryLimitError: the estimate exceeds the memory budget.
    """
    run = spec.run if hasattr(spec, "run") else spec.runs[0]
    dims = getattr(spec, "dims", 2)
    n = len(eval_batch(run.data, spec.split, spec.subset, spec.subset_seed)[1])
    input_numel, first_out, params, has_bn = shape_facts(run.model, run.data.name)
    estimate = limits.landscape_bytes(
        n=n,
        input_numel=input_numel,
        first_out=first_out,
        params=params,
        dims=dims,
        grid=spec.grid,
        precision=spec.precision,
        batch=ENGINE_BATCH,
    )
    if has_bn and spec.split != "train":  # a second input set: the statistics' training subset
        estimate += n * input_numel * 4 + n * first_out * 4 * (1 + dims + 1)
    return limits.check_memory(
        f"{spec.label} ({n} samples)",
        estimate,
        lower="[analyses.landscape] subset (or grid / plane_grid)",
    )
