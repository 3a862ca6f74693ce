"""Post-training weight quantization: accuracy and loss against bits, deterministic and stochastic.

Every prunable weight (the Conv2d and Linear weights, head included) of a
trained run is quantized to ``k`` bits, uniformly, per output channel (filter
or neuron) and symmetrically: with ``L = 2**(k-1) - 1`` levels each side and
``s_c = max_i |w_ci| / L``, ``q = clamp(round(w / s_c), -L, L)`` and
``w_q = s_c * q``. Rounding is to nearest (half to even), or stochastic:
``floor(x) + Bernoulli(x - floor(x))``, unbiased (Gupta et al. 2015, "Deep
Learning with Limited Numerical Precision"; Li et al. 2017, "Training Quantized
Nets: A Deeper Understanding", Section 3). ``k = 1`` is BinaryConnect's sign
code (Courbariaux et al. 2015) with a per-channel scale ``s_c = mean |w_c|``
over the nonzero weights: ``sign(w) s_c``, stochastically ``+s_c`` with
probability ``clip((w / s_c + 1) / 2, 0, 1)``. Biases and BatchNorm stay in
float32 (weight-only quantization). A pruned weight is exactly 0 and stays 0
under every code (it is multiplied by its nonzero indicator; the entry records
that it did). At 32 bits the step is ``max|w| / (2**31 - 1)``, below float32's
resolution, so the float accuracy is reproduced.

Devices: arithmetic in float64 on ``ctx.device`` (the MPS backend has no
float64: there, float32); the stochastic draws come from CPU generators seeded
by the spec (``seed``, the index of ``bits``, the draw), then move to the
device, so the same experiment runs on any device.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
import torch
import torch.nn.functional as F

from analysis import seeding
from analysis.api import Analysis, Context, Kind, Study, status_record
from analysis.api import get as get_result
from analysis.device import full_fp32
from analysis.errors import SpecError
from analysis.qat import MAX_BITS, MIN_BITS, quantize
from analysis.specs import SPEC, RunSpec, check_int


def check_bits(owner: str, bits: Any) -> None:
    """Raise SpecError naming ``bits`` unless it is a non-empty, sorted list of ints in [1, 32]."""
    if not isinstance(bits, tuple | list) or not bits or len(bits) > 32:
        raise SpecError("bits", "1 to 32 ints in the range [1, 32]", bits, owner=owner)
    for b in bits:
        check_int(owner, "bits", b, lo=MIN_BITS, hi=MAX_BITS)
    if list(bits) != sorted(set(bits)):
        raise SpecError("bits", "a sorted list without repeats", bits, owner=owner)


@dataclass(**SPEC)
class QuantizationSettings:
    """``[analyses.quantization]`` of a study."""

    bits: tuple[int, ...] = (1, 2, 3, 4, 6, 8, 16, 32)
    draws: int = 5
    seed: int = 0
    subset_size: int = 2000
    subset_seed: int = 0

    def __post_init__(self) -> None:
        check_bits("quantization", self.bits)
        check_int("quantization", "draws", self.draws, lo=1, hi=100)
        check_int("quantization", "seed", self.seed, lo=0)
        check_int("quantization", "subset_size", self.subset_size, lo=1, hi=100000)
        check_int("quantization", "subset_seed", self.subset_seed, lo=0)


@dataclass(**SPEC)
class QuantizationSpec:
    """One run's accuracy and loss with its weights quantized to each of ``bits``."""

    kind: ClassVar[str] = "quantization"
    run: RunSpec = field(default_factory=RunSpec)
    bits: tuple[int, ...] = (1, 2, 4, 8, 32)
    draws: int = 5
    seed: int = 0
    subset_size: int = 2000
    subset_seed: int = 0

    def __post_init__(self) -> None:
        check_bits("QuantizationSpec", self.bits)
        QuantizationSettings(
            bits=self.bits,
            draws=self.draws,
            seed=self.seed,
            subset_size=self.subset_size,
            subset_seed=self.subset_seed,
        )

    @property
    def label(self) -> str:
        """Human label."""
        return f"quantization of {self.run.label}"


def quantized_state(
    state: dict[str, torch.Tensor],
    names: list[str],
    bits: int,
    generator: torch.Generator | None = None,
) -> dict[str, torch.Tensor]:
    """``state`` with each named weight quantized; stochastic when ``generator`` (CPU) is given.

    The draws are taken in ``names`` order on the CPU and moved to each weight's device.
    """
    out = dict(state)
    for n in names:
        w = state[n]
        uniform = None
        if generator is not None:
            uniform = torch.rand(w.shape, generator=generator, dtype=torch.float64).to(w.device)
        out[n] = quantize(w, bits, uniform)
    return out


@torch.no_grad()
def accuracy_loss(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor) -> tuple[float, float]:
    """(accuracy, mean cross-entropy) of ``model`` in eval mode; x (N, C, H, W), y (N,)."""
    model.eval()
    correct, loss = 0, 0.0
    for i in range(0, len(x), 2048):
        logits = model(x[i : i + 2048]).float()
        correct += int((logits.argmax(1) == y[i : i + 2048]).sum())
        loss += float(F.cross_entropy(logits, y[i : i + 2048], reduction="sum"))
    return correct / len(x), loss / len(x)


def _evaluate_state(model, state, x, y) -> dict[str, float]:
    """Load ``state`` into ``model`` and evaluate it: {"accuracy", "loss"}."""
    model.load_state_dict(state)
    acc, loss = accuracy_loss(model, x, y)
    return {"accuracy": acc, "loss": loss}


@full_fp32()
def compute_quantization(spec: QuantizationSpec, ctx: Context) -> tuple[dict, dict]:
    """Accuracy and loss of one run at every bit width: one deterministic and ``draws``
    stochastic quantizations each, on a fixed seeded test subset, on ``ctx.device``."""
    from analysis.data import eval_subset, load

    run = ctx.get(spec.run)
    data = load(spec.run.data)
    idx = eval_subset(min(spec.subset_size, len(data.test_x)), len(data.test_x), spec.subset_seed)
    x, y = data.test_x[idx].to(ctx.device), data.test_y[idx].to(ctx.device)
    model = run.model().to(ctx.device)
    names = model.prunable_names()
    state = {k: v.to(ctx.device) for k, v in run.state.items()}
    doc: dict[str, Any] = {"run": spec.run.label, "float": _evaluate_state(model, state, x, y)}
    zero = {n: state[n] == 0 for n in names}
    curve, stays_zero = [], True
    for i, bits in enumerate(spec.bits):
        ctx.progress(spec.label, i, len(spec.bits))
        det = quantized_state(state, names, bits)
        point = {"bits": bits, "deterministic": _evaluate_state(model, det, x, y), "stochastic": []}
        for draw in range(spec.draws):
            gen = seeding.generator(seeding.seed_word(spec.seed, i, draw))
            q = quantized_state(state, names, bits, gen)
            stays_zero &= all(bool((q[n][zero[n]] == 0).all()) for n in names)
            point["stochastic"].append(_evaluate_state(model, q, x, y))
        stays_zero &= all(bool((det[n][zero[n]] == 0).all()) for n in names)
        curve.append(point)
    ctx.progress(spec.label, len(spec.bits), len(spec.bits))
    doc.update(curve=curve, pruned_stay_zero=stays_zero, n=len(y))
    return {"quantization.json": doc}, {"float_accuracy": doc["float"]["accuracy"]}


# ---------------------------------------------------------------------------
# study level


def quantization_specs(study: Study) -> list[QuantizationSpec]:
    """One quantization spec per run of the study."""
    s = study.analysis("quantization")
    return [
        QuantizationSpec(
            run=r,
            bits=tuple(s.bits),
            draws=s.draws,
            seed=s.seed,
            subset_size=s.subset_size,
            subset_seed=s.subset_seed,
        )
        for r in study.runs()
    ]


def curve_record(point: dict) -> dict:
    """One point of a run's bits curve for the summary: deterministic, and stochastic mean/std."""
    accs = [d["accuracy"] for d in point["stochastic"]]
    losses = [d["loss"] for d in point["stochastic"]]
    return {
        "bits": point["bits"],
        "accuracy": point["deterministic"]["accuracy"],
        "loss": point["deterministic"]["loss"],
        "stochastic_accuracy_mean": float(np.mean(accs)),
        "stochastic_accuracy_std": float(np.std(accs)),
        "stochastic_loss_mean": float(np.mean(losses)),
        "stochastic_loss_std": float(np.std(losses)),
        "draws": len(accs),
    }


def summarize_quantization(study: Study, store: Any) -> list[dict]:
    """The ``quantization`` section: one record per run (docs/summary.md)."""
    out = []
    for spec in quantization_specs(study):
        record = {"label": spec.run.label, "method": spec.run.sparsity.method}
        record.update(status_record(spec, store))
        if record["status"] == "cached":
            doc = get_result(spec, store=store, compute=False).read("quantization.json")
            record.update(
                float_accuracy=doc["float"]["accuracy"],
                float_loss=doc["float"]["loss"],
                pruned_stay_zero=doc["pruned_stay_zero"],
                n=doc["n"],
                curve=[curve_record(p) for p in doc["curve"]],
            )
        out.append(record)
    return out


ANALYSIS = Analysis(
    name="quantization",
    kinds=(
        Kind(
            "quantization",
            QuantizationSpec,
            compute_quantization,
            files={"quantization.json": ("float", "curve", "pruned_stay_zero", "n")},
        ),
    ),
    specs=quantization_specs,
    summarize=summarize_quantization,
    settings=QuantizationSettings,
)
