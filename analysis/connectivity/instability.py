"""The ``instability`` kind: Frankle et al. 2020's linear mode connectivity test.

"Linear Mode Connectivity and the Lottery Ticket Hypothesis": from one run's
weights at rewind step k, two copies are trained with different data orders
for the rest of the schedule, and the barrier between them is measured (the
same curve as ``connectivity``, no alignment: they share a start). The two
trained copies are cached in the entry. Their interpolations are evaluated
under ``analysis.batchnorm``'s rule (statistics reset at every alpha on
BatchNorm networks), recorded in the result. The copies train where
:func:`analysis.train.fit` trains them; their path is evaluated on
``ctx.device``; the stored copies are CPU tensors.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from analysis.api import Context
from analysis.batchnorm import bn_rule, bn_rule_record
from analysis.connectivity.barriers import curve_barriers
from analysis.connectivity.kind import InstabilitySpec
from analysis.connectivity.path import eval_data, interpolation_curve, on
from analysis.data import load
from analysis.device import full_fp32
from analysis.errors import SpecError
from analysis.sparsity.base import apply_masks
from analysis.specs import RunSpec, SparsitySpec
from analysis.train import fit, state_of, sub_seed


def copy_data_seed(spec: InstabilitySpec, copy: int) -> int:
    """The data-order seed of copy 0 or 1 (distinct from the run's own order)."""
    return sub_seed(spec.run.seed, "data", spec.seed, copy + 1)


def instability_fetches(spec: InstabilitySpec) -> list[RunSpec]:
    """The dense run of the same seed, whose rewind point a sparse run's copies start from."""
    if spec.run.sparsity.method == "dense":
        return []
    return [spec.run.replace(sparsity=SparsitySpec(method="dense", sparsity=0.0))]


def rewind_start(spec: InstabilitySpec, run: Any, ctx: Context) -> dict[str, torch.Tensor]:
    """The dense run's weights at ``spec.rewind_step`` (its initialisation for 0), same seed.

    Raises SpecError naming ``rewind_step`` if the dense run did not snapshot it.
    """
    fetched = instability_fetches(spec)
    dense = ctx.get(fetched[0]) if fetched else run
    k = spec.rewind_step
    if k == 0:
        return dense.init_state
    if k in dense.trajectory:
        return dense.trajectory[k]
    raise SpecError(
        "rewind_step",
        f"a step the dense run snapshotted {sorted(dense.trajectory)}",
        k,
        owner="InstabilitySpec",
    )


def train_copies(
    spec: InstabilitySpec, run: Any, start: dict[str, torch.Tensor], ctx: Context
) -> tuple[list[dict[str, torch.Tensor]], int]:
    """The two copies trained from ``start`` (steps k..T, schedule continuing), and T - k.

    Raises SpecError if the rewind step is past the T training steps of the schedule.
    """
    splits = load(spec.run.data)
    train = spec.run.train
    total = max(1, len(splits.train_x) // train.batch_size) * train.epochs
    k = spec.rewind_step
    if k > total:
        raise SpecError(
            "rewind_step", f"at most the {total} training steps", k, owner="InstabilitySpec"
        )
    copies = []
    for copy in (0, 1):
        model = run.skeleton()
        model.load_state_dict(start)
        model.to(ctx.device)  # fit trains on the model's device (masks follow it)
        masks = {name: mask.to(ctx.device) for name, mask in run.masks.items()}
        apply_masks(model, masks)
        fit(
            model,
            splits,
            train,
            seed=spec.run.seed,
            masks=masks,
            data_seed=copy_data_seed(spec, copy),
            start_step=k,
            max_steps=total - k,
            progress=ctx.progress,
            label=f"{spec.label}: copy {copy + 1}",
        )
        copies.append(state_of(model))
    return copies, total - k


def compute_instability(spec: InstabilitySpec, ctx: Context) -> tuple[dict, dict]:
    """Train two copies from the rewind point with different data orders; their barrier.

    The start is the dense run's weights at ``rewind_step`` (its initialisation
    for 0) of the same seed, with the run's masks for a sparse run (Frankle et
    al. 2020's IMP setting). Each copy trains the rest of the schedule: steps
    ``k..T`` with the learning-rate schedule continuing from step k.
    """
    run = ctx.get(spec.run)
    copies, steps = train_copies(spec, run, rewind_start(spec, run, ctx), ctx)
    copies = [on(c, torch.device("cpu")) for c in copies]  # what is stored
    dev = ctx.device
    data = eval_data(spec.run.data, spec.train_subset, spec.test_subset, spec.seed).to(dev)
    model = run.skeleton().to(dev)
    bn = bn_rule(model)
    with full_fp32():  # the path in fp32 (no TF32 on CUDA), whatever training used
        curve = interpolation_curve(
            model,
            on(copies[0], dev),
            on(copies[1], dev),
            on(run.masks, dev),
            np.linspace(0.0, 1.0, spec.alphas),
            data,
            bn=bn,
            progress=lambda i, n: ctx.progress(spec.label, i, n),
        )
    barriers = curve_barriers(curve)
    doc = {
        "run": spec.run.label,
        "rewind_step": spec.rewind_step,
        "steps_trained": steps,
        "bn": bn,
        "bn_rule": bn_rule_record(bn, len(data.train_x)),
        "curve": curve,
        "barriers": barriers,
        "n_train": len(data.train_x),
        "n_test": len(data.test_x),
    }
    files = {
        "instability.json": doc,
        "copy_a.safetensors": copies[0],
        "copy_b.safetensors": copies[1],
    }
    return files, {f"{s}_{n}": v for s, b in barriers.items() for n, v in b.items()}
