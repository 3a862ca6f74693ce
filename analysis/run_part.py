"""The ``runs`` part of a study: every trained run, its prerequisites, and its summary records.

The ``run`` kind itself (training, pruning, the files of an entry) is in
:mod:`analysis.runs`; this module declares it as a part of a study, like every
analysis declares itself.
"""

from __future__ import annotations

from typing import Any

from analysis.api import Analysis, Kind, Study, status_record
from analysis.api import get as get_result
from analysis.runs import compute_run, load_run
from analysis.sparsity import get_method
from analysis.specs import RunSpec
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
    prunes, the previous lottery round; ``tests/test_executor.py`` checks them
    against the gets the methods really make.
    """
    # interim: until methods declare prerequisites themselves
    from analysis.sparsity.lottery import round_sparsity
    from analysis.specs import SparsitySpec

    s = spec.sparsity
    method = get_method(s.method)
    dense = spec.replace(sparsity=SparsitySpec(method="dense", sparsity=0.0))
    if s.method == "lottery":
        rounds = s.opt("rounds")
        if rounds == 1:
            return [dense]
        previous = SparsitySpec(
            method="lottery",
            sparsity=round_sparsity(s.sparsity, rounds, rounds - 1),
            options=dict(s.options, rounds=rounds - 1),
        )
        return [spec.replace(sparsity=previous), dense]
    if any(p.name == "finetune_epochs" for p in method.params):
        return [dense]
    return []


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
