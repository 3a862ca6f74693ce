"""Mask anatomy: how the masks of two runs overlap, how far kept and pruned weights moved,
and the supermask (a run's masked initial network, evaluated without training).

Kinds:

- ``mask-pair``: two runs ``a`` and ``b``. Per prunable layer, the intersection
  over union of their kept weights (a dense run keeps every weight), and the
  movement of each run's weights during its own training (``init`` -> final,
  the run entry's ``init.safetensors`` and ``model.safetensors``) split by the
  OTHER run's mask: mean ``|w_f - w_i|`` and mean ``|w_f| - |w_i|`` over the
  weights the other run keeps and over those it prunes. With ``a`` the dense
  run and ``b`` a ticket, this is Zhou et al. 2019's observation
  ("Deconstructing Lottery Tickets", Section 3): the weights a ticket keeps
  are those that moved, and grew, most in dense training.
- ``supermask``: one run's mask applied to the network it started from (the
  run's ``init.safetensors``: the initialisation, or a lottery ticket's rewind
  point), evaluated on the test set without any training, as it is and with
  every kept weight set to ``sign(w_i) * std(layer's w_i)`` (Zhou et al.,
  Section 5, "Supermasks"; the signed constant made their supermasks better).
  BatchNorm keeps its initial statistics (Zhou et al. used networks without it).

Devices: the arithmetic is elementwise on the CPU tensors the store holds (no
device needed); the supermask's evaluation runs on ``ctx.device`` in fp32.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Any, ClassVar

import torch

from analysis.api import Analysis, Context, Kind, Study, status_record
from analysis.api import get as get_result
from analysis.device import full_fp32
from analysis.specs import SPEC, RunSpec, spec_key

#: Movement statistics of one side of a mask (kept or pruned weights).
MOVE_FIELDS = ("count", "mean_move", "mean_growth", "mean_init_magnitude")


@dataclass(**SPEC)
class MaskPairSpec:
    """The mask overlap of two runs and the movement of each run's weights split by the other's mask."""

    kind: ClassVar[str] = "mask-pair"
    a: RunSpec = field(default_factory=RunSpec)
    b: RunSpec = field(default_factory=RunSpec)

    @property
    def label(self) -> str:
        """Human label."""
        return f"masks of {self.a.label} vs {self.b.label}"


@dataclass(**SPEC)
class SupermaskSpec:
    """One run's mask on its initial network, evaluated on the test set without training."""

    kind: ClassVar[str] = "supermask"
    run: RunSpec = field(default_factory=RunSpec)

    @property
    def label(self) -> str:
        """Human label."""
        return f"supermask of {self.run.label}"


def kept_masks(run: Any) -> dict[str, torch.Tensor]:
    """{prunable name: bool mask} of a stored run (all True for a run without masks)."""
    if run.masks:
        return run.masks
    return {n: torch.ones_like(run.state[n], dtype=torch.bool) for n in prunable_names(run)}


def prunable_names(run: Any) -> list[str]:
    """The prunable weight names of a stored run's architecture."""
    return list(run.skeleton().prunable_names())


def iou(a: torch.Tensor, b: torch.Tensor) -> float:
    """Intersection over union of two bool masks of one shape (1.0 when both are empty)."""
    union = int((a | b).sum())
    return 1.0 if union == 0 else int((a & b).sum()) / union


def mean_where(values: torch.Tensor, where: torch.Tensor) -> float | None:
    """Mean of ``values`` where ``where`` is True (None when it is nowhere True)."""
    return float(values[where].double().mean()) if bool(where.any()) else None


def movement(
    init: torch.Tensor, final: torch.Tensor, keep: torch.Tensor
) -> dict[str, dict[str, float | int | None]]:
    """How far weights moved from ``init`` to ``final``, for ``keep`` True and False.

    init, final, keep: one shape. Per side (``kept``, ``pruned``): ``count``,
    ``mean_move`` (mean ``|w_f - w_i|``), ``mean_growth`` (mean ``|w_f| - |w_i|``)
    and ``mean_init_magnitude`` (mean ``|w_i|``); the means are None for an empty side.
    """
    move, growth = (final - init).abs(), final.abs() - init.abs()
    out = {}
    for side, where in (("kept", keep), ("pruned", ~keep)):
        out[side] = {
            "count": int(where.sum()),
            "mean_move": mean_where(move, where),
            "mean_growth": mean_where(growth, where),
            "mean_init_magnitude": mean_where(init.abs(), where),
        }
    return out


def split_movement(run: Any, masks: dict[str, torch.Tensor]) -> dict[str, dict]:
    """{layer: movement(run's init -> final, split by ``masks``)} for every prunable layer."""
    init, final = run.init_state, run.state
    return {n: movement(init[n].float(), final[n].float(), m.bool()) for n, m in masks.items()}


def compute_mask_pair(spec: MaskPairSpec, ctx: Context) -> tuple[dict, dict]:
    """Per-layer IoU of the kept weights of ``a`` and ``b``; each run's movement split by the
    other's mask. Raises ValueError when the two runs' architectures differ."""
    a, b = ctx.get(spec.a), ctx.get(spec.b)
    ma, mb = kept_masks(a), kept_masks(b)
    if {n: m.shape for n, m in ma.items()} != {n: m.shape for n, m in mb.items()}:
        raise ValueError(f"{spec.a.label} and {spec.b.label} have different architectures")
    layers = {
        n: {
            "iou": iou(ma[n], mb[n]),
            "kept_a": int(ma[n].sum()),
            "kept_b": int(mb[n].sum()),
            "both": int((ma[n] & mb[n]).sum()),
            "size": ma[n].numel(),
        }
        for n in ma
    }
    both = sum(v["both"] for v in layers.values())
    union = sum(v["kept_a"] + v["kept_b"] - v["both"] for v in layers.values())
    doc = {
        "a": spec.a.label,
        "b": spec.b.label,
        "iou": 1.0 if union == 0 else both / union,
        "layers": layers,
        "a_by_b": split_movement(a, mb),
        "b_by_a": split_movement(b, ma),
    }
    return {"masks.json": doc}, {"iou": doc["iou"]}


def signed_constant_masked(
    init: dict[str, torch.Tensor], masks: dict[str, torch.Tensor]
) -> dict[str, torch.Tensor]:
    """``init`` with each masked layer set to ``sign(w_i) * std(w_i) * mask`` (Zhou et al.)."""
    out = dict(init)
    for n, m in masks.items():
        w = init[n]
        out[n] = torch.sign(w) * w.float().std().to(w.dtype) * m.to(w.dtype)
    return out


def masked(state: dict[str, torch.Tensor], masks: dict[str, torch.Tensor]) -> dict:
    """``state`` with every masked weight multiplied by its mask."""
    return {k: v * masks[k].to(v.dtype) if k in masks else v for k, v in state.items()}


@full_fp32()
def compute_supermask(spec: SupermaskSpec, ctx: Context) -> tuple[dict, dict]:
    """Test accuracy and loss of the run's masked initial network, untrained (two weightings)."""
    from analysis.data import load
    from analysis.train import evaluate

    run = ctx.get(spec.run)
    data = load(spec.run.data)
    masks = kept_masks(run)
    model = run.skeleton().to(ctx.device)
    doc: dict[str, Any] = {"run": spec.run.label, "trained_test_acc": run.metrics["test_acc"]}
    variants = {
        "original": masked(run.init_state, masks),
        "signed_constant": signed_constant_masked(run.init_state, masks),
    }
    for name, state in variants.items():
        model.load_state_dict(state)
        loss, acc = evaluate(model.eval(), data.test_x, data.test_y)
        doc[name] = {"test_acc": acc, "test_loss": loss}
    doc["density"] = sum(int(m.sum()) for m in masks.values()) / max(
        sum(m.numel() for m in masks.values()), 1
    )
    return {"supermask.json": doc}, {"test_acc": doc["original"]["test_acc"]}


# ---------------------------------------------------------------------------
# study level


def pair_specs(study: Study) -> list[MaskPairSpec]:
    """Every pair of runs of one seed, objective and setting (the dense run first when it is
    in the pair): runs of one network shape, on one seed."""
    groups: dict[tuple, list[RunSpec]] = {}
    for run in study.runs():
        groups.setdefault((run.train.objective, run.seed, run.setting), []).append(run)
    out = []
    for runs in groups.values():
        runs = sorted(runs, key=lambda r: r.sparsity.method != "dense")
        out.extend(MaskPairSpec(a=a, b=b) for a, b in itertools.combinations(runs, 2))
    return out


def supermask_specs(study: Study) -> list[SupermaskSpec]:
    """One supermask per pruned run (a run with masks) of the study."""
    return [SupermaskSpec(run=r) for r in study.runs() if r.sparsity.method != "dense"]


def mask_specs(study: Study) -> list[Any]:
    """Every spec of the masks part: the pairs, then the supermasks."""
    return [*pair_specs(study), *supermask_specs(study)]


def pair_record(spec: MaskPairSpec, store: Any) -> dict:
    """One record of ``masks.pairs``: the two runs, status, and (cached) IoU and movement."""
    status = status_record(spec, store)
    record = {"a": spec.a.label, "b": spec.b.label, "a_key": spec_key(spec.a)}
    record.update(b_key=spec_key(spec.b), **status)
    if status["status"] == "cached":
        doc = get_result(spec, store=store, compute=False).read("masks.json")
        record.update({k: doc[k] for k in ("iou", "layers", "a_by_b", "b_by_a")})
    return record


def supermask_record(spec: SupermaskSpec, store: Any) -> dict:
    """One record of ``masks.supermasks``."""
    status = status_record(spec, store)
    record = {"label": spec.run.label, "run_key": spec_key(spec.run), **status}
    if status["status"] == "cached":
        doc = get_result(spec, store=store, compute=False).read("supermask.json")
        record.update({k: doc[k] for k in ("original", "signed_constant", "density")})
        record["trained_test_acc"] = doc["trained_test_acc"]
    return record


def summarize_masks(study: Study, store: Any) -> dict:
    """The ``masks`` section of ``show --json`` (docs/summary.md)."""
    return {
        "pairs": [pair_record(s, store) for s in pair_specs(study)],
        "supermasks": [supermask_record(s, store) for s in supermask_specs(study)],
    }


ANALYSIS = Analysis(
    name="masks",
    kinds=(
        Kind(
            "mask-pair",
            MaskPairSpec,
            compute_mask_pair,
            files={"masks.json": ("a", "b", "iou", "layers", "a_by_b", "b_by_a")},
        ),
        Kind(
            "supermask",
            SupermaskSpec,
            compute_supermask,
            files={"supermask.json": ("run", "original", "signed_constant", "density")},
        ),
    ),
    specs=mask_specs,
    summarize=summarize_masks,
)
