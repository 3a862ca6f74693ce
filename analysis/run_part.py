"""The ``runs`` part of a study: every trained run, its prerequisites, and its summary records.

The ``run`` kind itself (training, pruning, the files of an entry) is in
:mod:`analysis.runs`; this module declares it as a part of a study, like every
analysis declares itself.
"""

from __future__ import annotations

from typing import Any

from analysis import limits
from analysis.api import Analysis, Kind, Study, status_record
from analysis.api import get as get_result
from analysis.runs import compute_run, load_run
from analysis.sparsity import prerequisites
from analysis.specs import RunSpec, setting_label
from analysis.store import Store

#: Metrics of a cached run copied into its summary record (docs/summary.md).
RUN_FIELDS = (
    "method",
    "objective",
    "seed",
    "requested_sparsity",
    "achieved_sparsity",
    "sparsity_unit",
    "test_acc",
    "test_loss",
    "val_acc",
    "test_knn_acc",
    "nonzero_params",
    "total_params",
    "prunable_params",
    "kept_prunable_params",
    "seconds",
)


def run_fetches(spec: RunSpec) -> list[RunSpec]:
    """The runs the sparsity method of ``spec`` gets from the store while training.

    Each method declares them (``Method.prerequisites``): the dense run it
    prunes, the previous lottery round. The spec's sparsity is checked first
    (SpecError). ``tests/test_executor.py`` checks them against the gets the
    methods really make.
    """
    return prerequisites(spec)


#: Samples (train + test) of each dataset, for the memory estimate of a run.
DATASET_SAMPLES = {"digits": 1797, "fashion-mnist": 70000, "mnist": 70000, "cifar10": 60000,
                   "cifar100": 60000}  # fmt: skip


def run_bytes(spec: RunSpec) -> int:
    """Peak bytes of training ``spec`` (an estimate on the high side, made without allocating).

    The network is built on PyTorch's ``meta`` device (shapes, no storage), so
    even a 16-layer MLP of width 16384 is measured without its 17 GB. Counts the
    dataset in float32, the weights with gradients, two optimizer moments, the
    initial and final copies and masks, every snapshot the run keeps (one per
    epoch, one per rewind step, the start), and a batch's activations kept for
    the backward pass (three copies of every module's output).
    """
    import torch

    from analysis.data import dataset_info
    from analysis.models import build_for

    info = dataset_info(spec.data.name)
    pixels = info.in_channels * info.image_size**2
    samples = DATASET_SAMPLES.get(spec.data.name, 70000)
    with torch.device("meta"):
        model = build_for(spec.model, info).eval()  # eval: BatchNorm takes a batch of 1
        params = sum(p.numel() for p in model.parameters())
        outputs: list[int] = []
        hooks = [
            m.register_forward_hook(lambda _m, _i, out: outputs.append(out[0].numel()))
            for m in model.modules()
            if not list(m.children())
        ]
        model(torch.zeros(1, info.in_channels, info.image_size, info.image_size))
        for hook in hooks:
            hook.remove()
    batch = spec.train.batch_size * (2 if spec.train.objective == "supcon" else 1)
    snapshots = spec.train.epochs + len(spec.train.snapshot_steps) + 1
    data = samples * pixels * 4
    weights = params * 4 * (6 + snapshots) + params  # masks as bool
    activations = batch * sum(outputs) * 4 * 3
    return data + weights + activations


def check_run_memory(spec: RunSpec) -> int:
    """Refuse a run whose training would not fit in memory, before anything trains."""
    return limits.check_memory(
        f"training {spec.label}",
        run_bytes(spec),
        lower="[model] width / depth / width_mult, [train] batch_size or epochs",
    )


def run_record(spec: RunSpec, store: Store) -> dict:
    """One record of the ``runs`` list: identity, status and (when cached) metrics."""
    status = status_record(spec, store)
    record = {
        "label": spec.label,
        "key": status.pop("key"),
        "method": spec.sparsity.method,
        "objective": spec.train.objective,
        "seed": spec.seed,
        "requested_sparsity": spec.sparsity.sparsity,
        "options": dict(spec.sparsity.options),
        "setting": dict(spec.setting),
        "setting_label": setting_label(spec.setting),
        **status,
    }
    if record["status"] == "cached":
        metrics = get_result(spec, store=store, compute=False).metrics
        record.update({k: metrics.get(k) for k in RUN_FIELDS})
        record["layer_sparsity"] = metrics.get("layer_sparsity", {})
    return record


def summarize_runs(study: Study, store: Store) -> list[dict]:
    """The ``runs`` section of ``show --json``: a record per run."""
    return [run_record(spec, store) for spec in study.runs()]


def study_runs(study: Study) -> list[Any]:
    """Every training run of the study."""
    return study.runs()


ANALYSIS = Analysis(
    name="runs",
    kinds=(
        Kind(
            "run",
            RunSpec,
            compute_run,
            load=load_run,
            fetches=run_fetches,
            memory=check_run_memory,
            files={
                "model.safetensors": object,
                "masks.safetensors": object,
                "init.safetensors": object,
                "trajectory.safetensors": object,
                "history.json": list,
                "metrics.json": ("test_acc", "test_loss", "achieved_sparsity", "layer_sparsity"),
            },
        ),
    ),
    specs=study_runs,
    summarize=summarize_runs,
)
