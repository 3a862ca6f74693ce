"""Real compression: the physically smaller network, its counts, size on disk and latency.

Li et al. 2017 ("Pruning Filters for Efficient ConvNets", Section 4) remove
pruned filters together with the next layer's matching input channels, so the
network really gets smaller and faster; unstructured sparsity keeps every
layer's shape, so a masked network computes as many multiply-accumulates as
the dense one ("compression is not acceleration").

:func:`compress` removes every hidden channel (a filter or a neuron) whose
outputs no later weight reads: a permutation group of the model's spec with
exactly one producing weight (as ``l1-structured`` prunes) whose consumer
slices (the next layers' input columns) are all masked. The producer's rows,
its bias and BatchNorm entries (weight, bias, running mean and variance) and
the consumers' columns go; shapes, and the modules' ``in_/out_features``,
``in_/out_channels`` and ``num_features``, shrink accordingly. A removed
channel's output was multiplied by zero columns only, so the smaller network
computes the same function (up to float summation order). Residual streams
(several producers) are left whole, as Li et al. do for ResNets.

The ``compression`` kind records, for one run: parameters and MACs per sample
(dense, effective = nonzero weights only, compressed), the bytes of the
state as safetensors (dense layout, CSR layout of the prunable weights, the
compressed network), the largest output difference between the masked and
the compressed network, and their measured inference latency on ``ctx.device``
(median of ``repeats`` timed batches, interleaved, after warm-up).
"""

from __future__ import annotations

import copy
import statistics
import tempfile
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import torch
from torch import nn

from analysis.api import Analysis, Context, Kind, Study, status_record
from analysis.api import get as get_result
from analysis.device import full_fp32
from analysis.specs import SPEC, RunSpec, check_int

#: Tolerance of "same outputs": float32 summation order differs between the two networks.
OUTPUT_ATOL = 1e-4


@dataclass(**SPEC)
class CompressionSettings:
    """``[analyses.compression]`` of a study: the latency measurement."""

    batch: int = 256
    repeats: int = 20

    def __post_init__(self) -> None:
        check_int("compression", "batch", self.batch, lo=1, hi=65536)
        check_int("compression", "repeats", self.repeats, lo=1, hi=1000)


@dataclass(**SPEC)
class CompressionSpec:
    """One run's counts, sizes and latencies, masked against physically compressed."""

    kind: ClassVar[str] = "compression"
    run: RunSpec = field(default_factory=RunSpec)
    batch: int = 256
    repeats: int = 20

    def __post_init__(self) -> None:
        CompressionSettings(batch=self.batch, repeats=self.repeats)

    @property
    def label(self) -> str:
        """Human label."""
        return f"compression of {self.run.label}"


def removable_channels(model: nn.Module, masks: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """{group: int64 indices of the channels kept} for each singly produced group that loses any.

    A channel is removable when every consumer slice of it is masked (no weight reads it).
    """
    ps = model.permutation_spec()
    prunable = set(model.prunable_names())
    out = {}
    for group, axes in ps.perm_to_axes.items():
        producers = [k for k, a in axes if a == 0 and k in prunable]
        consumers = [(k, a) for k, a in axes if a > 0]
        if len(producers) != 1 or not consumers or any(k not in masks for k, _ in consumers):
            continue
        n = masks[consumers[0][0]].shape[consumers[0][1]]
        read = torch.zeros(n, dtype=torch.bool)
        for key, axis in consumers:
            read |= masks[key].movedim(axis, 0).reshape(n, -1).any(1).cpu()
        if 0 < int(read.sum()) < n:
            out[group] = read.nonzero().flatten()
    return out


def _set_tensor(model: nn.Module, key: str, value: torch.Tensor) -> None:
    """Replace the parameter or buffer ``key`` of ``model`` by ``value`` (a new shape)."""
    owner, _, name = key.rpartition(".")
    module = model.get_submodule(owner)
    if name in module._parameters:
        module._parameters[name] = nn.Parameter(value, requires_grad=value.requires_grad)
    else:
        module._buffers[name] = value


def _fix_attributes(model: nn.Module) -> None:
    """Make the modules' size attributes agree with their (sliced) tensors."""
    for m in model.modules():
        if isinstance(m, nn.Linear):
            m.out_features, m.in_features = m.weight.shape
        elif isinstance(m, nn.Conv2d):
            m.out_channels, m.in_channels = m.weight.shape[0], m.weight.shape[1] * m.groups
        elif isinstance(m, nn.modules.batchnorm._BatchNorm):
            m.num_features = m.weight.shape[0] if m.weight is not None else m.running_mean.shape[0]


@torch.no_grad()
def compress(model: nn.Module, masks: dict[str, torch.Tensor]) -> nn.Module:
    """A physically smaller copy of ``model`` with its unread channels removed (see module doc).

    ``model`` holds the masked weights; the copy keeps the masks' zeros
    elsewhere. Without masks (a dense run) it is a plain copy.
    """
    small = copy.deepcopy(model)
    keep = removable_channels(model, masks) if masks else {}
    ps = model.permutation_spec()
    state = dict(small.state_dict())
    for group, idx in keep.items():
        for key, axis in ps.perm_to_axes[group]:
            state[key] = state[key].index_select(axis, idx.to(state[key].device))
    for key, value in state.items():
        if value.shape != small.state_dict()[key].shape:
            _set_tensor(small, key, value.clone())
    _fix_attributes(small)
    return small


def macs_per_sample(model: nn.Module, x: torch.Tensor, effective: bool = False) -> int:
    """Multiply-accumulates of one sample through every Conv2d and Linear of ``model``.

    x: (N, C, H, W) any batch. ``effective`` counts only nonzero weights (what a
    sparse kernel would do): each nonzero conv weight is used at every output position.
    """
    total = 0

    def hook(module: nn.Module, _inp: Any, out: torch.Tensor) -> None:
        nonlocal total
        weights = int((module.weight != 0).sum()) if effective else module.weight.numel()
        positions = out[0].shape[-2] * out[0].shape[-1] if isinstance(module, nn.Conv2d) else 1
        total += weights * positions

    layers = [m for m in model.modules() if isinstance(m, nn.Conv2d | nn.Linear)]
    handles = [m.register_forward_hook(hook) for m in layers]
    try:
        with torch.no_grad():
            model.eval()(x[:1])
    finally:
        for h in handles:
            h.remove()
    return total


def saved_bytes(tensors: dict[str, torch.Tensor]) -> int:
    """Bytes of ``tensors`` written as one safetensors file (written, measured, deleted)."""
    from safetensors.torch import save_file

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "model.safetensors"
        save_file({k: v.detach().cpu().contiguous() for k, v in tensors.items()}, str(path))
        return path.stat().st_size


def csr_state(state: dict[str, torch.Tensor], names: list[str]) -> dict[str, torch.Tensor]:
    """``state`` with each named weight stored as CSR over its rows (values fp32, int32 indices)."""
    out = {k: v for k, v in state.items() if k not in names}
    for n in names:
        with warnings.catch_warnings():  # "sparse CSR support is in beta": we only read it
            warnings.simplefilter("ignore", UserWarning)
            w = state[n].reshape(state[n].shape[0], -1).to_sparse_csr()
        out[f"{n}.values"] = w.values()
        out[f"{n}.col_indices"] = w.col_indices().to(torch.int32)
        out[f"{n}.crow_indices"] = w.crow_indices().to(torch.int32)
    return out


def _sync(device: torch.device) -> None:
    """Wait for the device's queued work (timings must include it)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


@torch.no_grad()
def latencies(models: dict[str, nn.Module], x: torch.Tensor, repeats: int) -> dict[str, float]:
    """Median seconds per batch ``x`` of each model, the models timed interleaved (warm-up first)."""
    device = x.device
    times: dict[str, list[float]] = {name: [] for name in models}
    for m in models.values():
        m.eval()(x)
    names = list(models)
    for r in range(repeats):
        for name in names if r % 2 == 0 else names[::-1]:  # alternate who goes first
            m = models[name]
            _sync(device)
            start = time.perf_counter()
            m(x)
            _sync(device)
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(t) for name, t in times.items()}


def param_count(model: nn.Module) -> int:
    """Every parameter of ``model``."""
    return sum(p.numel() for p in model.parameters())


@full_fp32()
def compute_compression(spec: CompressionSpec, ctx: Context) -> tuple[dict, dict]:
    """Counts, sizes, output check and latencies of one run, masked against compressed."""
    from analysis.data import load

    run = ctx.get(spec.run)
    masked = run.model().to(ctx.device)
    small = compress(masked, run.masks)
    kept_channels = removable_channels(masked, run.masks) if run.masks else {}
    data = load(spec.run.data)
    x = data.test_x[: spec.batch].to(ctx.device)
    with torch.no_grad():
        diff = float((masked(x) - small(x)).abs().max())
    prunable = masked.prunable_names()
    kept = sum(int(m.sum()) for m in run.masks.values()) if run.masks else None
    small_prunable = sum(dict(small.named_parameters())[n].numel() for n in prunable)
    seconds = latencies({"masked": masked, "compressed": small}, x, spec.repeats)
    doc = {
        "run": spec.run.label,
        "params_dense": param_count(masked),
        "params_effective": sum(int((p != 0).sum()) for p in masked.parameters()),
        "params_compressed": param_count(small),
        "prunable_kept": kept,
        "prunable_compressed": small_prunable,
        "macs_dense": macs_per_sample(masked, x),
        "macs_effective": macs_per_sample(masked, x, effective=True),
        "macs_compressed": macs_per_sample(small, x),
        "bytes_dense": saved_bytes(masked.state_dict()),
        "bytes_csr": saved_bytes(csr_state(masked.state_dict(), prunable)),
        "bytes_compressed": saved_bytes(small.state_dict()),
        "max_output_diff": diff,
        "outputs_equal": diff <= OUTPUT_ATOL,
        "channels_kept": {g: int(i.numel()) for g, i in kept_channels.items()},
        "latency_masked_s": seconds["masked"],
        "latency_compressed_s": seconds["compressed"],
        "batch": int(x.shape[0]),
        "shapes_compressed": {
            n: list(p.shape) for n, p in small.named_parameters() if n in prunable
        },
    }
    doc["speedup"] = doc["latency_masked_s"] / max(doc["latency_compressed_s"], 1e-12)
    summary = {k: doc[k] for k in ("params_compressed", "macs_compressed", "speedup")}
    return {"compression.json": doc}, summary


# ---------------------------------------------------------------------------
# study level


def compression_specs(study: Study) -> list[CompressionSpec]:
    """One compression spec per run of the study."""
    s = study.analysis("compression")
    return [CompressionSpec(run=r, batch=s.batch, repeats=s.repeats) for r in study.runs()]


#: Fields of a cached record copied into the ``compression`` section.
RECORD_FIELDS = (
    "params_dense", "params_effective", "params_compressed", "prunable_kept",
    "prunable_compressed", "macs_dense", "macs_effective", "macs_compressed", "bytes_dense",
    "bytes_csr", "bytes_compressed", "max_output_diff", "outputs_equal", "latency_masked_s",
    "latency_compressed_s", "speedup", "batch", "shapes_compressed", "channels_kept",
)  # fmt: skip


def summarize_compression(study: Study, store: Any) -> list[dict]:
    """The ``compression`` section: one record per run (docs/summary.md)."""
    out = []
    for spec in compression_specs(study):
        record = {"label": spec.run.label, "method": spec.run.sparsity.method}
        record.update(status_record(spec, store))
        if record["status"] == "cached":
            doc = get_result(spec, store=store, compute=False).read("compression.json")
            record.update({k: doc[k] for k in RECORD_FIELDS})
        out.append(record)
    return out


ANALYSIS = Analysis(
    name="compression",
    kinds=(
        Kind(
            "compression",
            CompressionSpec,
            compute_compression,
            files={"compression.json": ("params_dense", "macs_dense", "latency_masked_s")},
        ),
    ),
    specs=compression_specs,
    summarize=summarize_compression,
    settings=CompressionSettings,
)
