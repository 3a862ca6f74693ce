"""Robustness: accuracy under data corruption (mCE, relative mCE) and under weight noise.

Kinds:

- ``corrupted``: the corruption suite of a dataset (MNIST-C for grayscale sets,
  CIFAR-10-C for CIFAR-10; see ``analysis.corruptions``) applied to a fixed,
  seeded test subset, stored once per dataset as uint8 images (the published
  suites are uint8 images too) and shared by every run;
- ``robustness``: one run's accuracy and loss for every corruption x severity
  (severity 0 is the clean subset itself, in full precision, so it reproduces
  the clean accuracy exactly) and its weight-perturbation curve: multiplicative
  Gaussian noise ``w + z`` with ``z_i ~ N(0, (w_i sigma)^2)`` on every parameter,
  several seeded draws per sigma; pruned weights are 0 and so stay exactly 0.

Corruption errors (Hendrycks & Dietterich 2019) are computed when summarising:
``CE_c = sum_s E_{s,c} / sum_s E^dense_{s,c}``, mCE is their mean over
corruptions; relative CE subtracts each model's clean error first:
``sum_s (E_{s,c} - E_clean) / sum_s (E^dense_{s,c} - E^dense_clean)``. The
baseline is the study's dense run of the same seed and objective.

Devices: corruptions are generated, and every evaluation (clean, corrupted,
under weight noise) runs, on the computation's device (``ctx.device``); the
weight noise is drawn from CPU generators seeded by the spec and moved there
(a few million numbers at most), so the same experiment runs on every device.
The stored images, tables and curves are CPU numpy / JSON.
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
from analysis.corruptions import SEVERITIES, corrupt, corruptions_for
from analysis.data import dataset_info, eval_subset, load
from analysis.device import full_fp32
from analysis.errors import SpecError
from analysis.specs import (
    SPEC,
    DataSpec,
    RunSpec,
    SparsitySpec,
    check_float,
    check_int,
    check_option,
    spec_key,
)


@dataclass(**SPEC)
class RobustnessSettings:
    """``[analyses.robustness]`` of a study."""

    subset_size: int = 1000
    subset_seed: int = 0
    corruptions: tuple[str, ...] = ()  # empty: the whole suite of the dataset
    severities: tuple[int, ...] = SEVERITIES
    corruption_seed: int = 0
    sigmas: tuple[float, ...] = (0.0, 0.05, 0.1, 0.2, 0.3, 0.5, 0.75)
    trials: int = 5
    noise_seed: int = 0

    def __post_init__(self) -> None:
        check_int("robustness", "subset_size", self.subset_size, lo=1, hi=20000)
        check_int("robustness", "subset_seed", self.subset_seed, lo=0)
        if not self.severities:
            raise SpecError(
                "severities",
                "a non-empty list drawn from 1..5",
                self.severities,
                owner="robustness",
            )
        for s in self.severities:
            check_option("robustness", "severities", s, SEVERITIES)
        if list(self.severities) != sorted(set(self.severities)):
            raise SpecError(
                "severities", "a sorted list without repeats", self.severities, owner="robustness"
            )
        if not self.sigmas or len(self.sigmas) > 50:
            raise SpecError("sigmas", "1 to 50 floats in [0, 10]", self.sigmas, owner="robustness")
        for s in self.sigmas:
            check_float("robustness", "sigmas", s, 0.0, 10.0)
        check_int("robustness", "trials", self.trials, lo=1, hi=100)
        check_int("robustness", "noise_seed", self.noise_seed, lo=0)
        check_int("robustness", "corruption_seed", self.corruption_seed, lo=0)

    def names_for(self, dataset: str) -> tuple[str, ...]:
        """The corruptions used on ``dataset``; an unknown name lists the suite's valid ones."""
        suite = corruptions_for(dataset_info(dataset).in_channels)
        for name in self.corruptions:
            check_option("robustness", "corruptions", name, suite)
        return self.corruptions or suite


@dataclass(**SPEC)
class CorruptedSpec:
    """A dataset's corruption suite on a fixed test subset (computed once per dataset)."""

    kind: ClassVar[str] = "corrupted"
    #: 2: every corruption as its reference ran (CIFAR-10-C glass blur copies, ...).
    version: ClassVar[int] = 2
    dataset: str = "digits"
    subset_size: int = 1000
    subset_seed: int = 0
    names: tuple[str, ...] = ()
    severities: tuple[int, ...] = SEVERITIES
    seed: int = 0

    @property
    def label(self) -> str:
        """Human label."""
        return f"corruptions of {self.dataset}"


@dataclass(**SPEC)
class RobustnessSpec:
    """One run's corruption table and weight-perturbation curve."""

    kind: ClassVar[str] = "robustness"
    run: RunSpec = field(default_factory=RunSpec)
    corrupted: CorruptedSpec = field(default_factory=CorruptedSpec)
    sigmas: tuple[float, ...] = (0.0, 0.1)
    trials: int = 5
    noise_seed: int = 0

    @property
    def label(self) -> str:
        """Human label."""
        return f"robustness of {self.run.label}"


def test_subset(dataset: str, size: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The fixed clean test subset: x (N, C, H, W) in [0, 1], y (N,)."""
    data = load(DataSpec(name=dataset))
    idx = eval_subset(min(size, len(data.test_x)), len(data.test_x), seed)
    return data.test_x[idx], data.test_y[idx]


def compute_corrupted(spec: CorruptedSpec, ctx: Context) -> tuple[dict, dict]:
    """Apply every corruption x severity to the subset (on ``ctx.device``); store uint8 images.

    The images (K, S, N, C, H, W) come back to the CPU as uint8.
    """
    x, y = test_subset(spec.dataset, spec.subset_size, spec.subset_seed)
    xd = x.to(ctx.device)
    out = np.empty((len(spec.names), len(spec.severities), *x.shape), dtype=np.uint8)
    for i, name in enumerate(spec.names):
        ctx.progress(spec.label, i, len(spec.names))
        for j, severity in enumerate(spec.severities):
            img = corrupt(xd, name, severity, seed=spec.seed)
            out[i, j] = (img.clamp(0, 1) * 255).round().to(torch.uint8).cpu().numpy()
    ctx.progress(spec.label, len(spec.names), len(spec.names))
    arrays = {
        "images": out,
        "labels": y.numpy(),
        "clean": (x * 255).round().to(torch.uint8).numpy(),
    }
    return {"corrupted.npz": arrays}, {"names": list(spec.names), "n": int(len(y))}


@torch.no_grad()
def accuracy_and_loss(
    model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, batch: int = 2048
) -> tuple[float, float]:
    """(accuracy, mean cross-entropy) of ``model`` in eval mode. x: (N, C, H, W) in [0, 1]."""
    model.eval()
    correct, loss = 0, 0.0
    for i in range(0, len(x), batch):
        logits = model(x[i : i + batch])
        correct += int((logits.argmax(1) == y[i : i + batch]).sum())
        loss += float(F.cross_entropy(logits, y[i : i + batch], reduction="sum"))
    return correct / len(x), loss / len(x)


def perturb(
    state: dict[str, torch.Tensor], names: list[str], sigma: float, gen: torch.Generator
) -> dict[str, torch.Tensor]:
    """Multiplicative Gaussian noise on the named parameters: w + w * sigma * eps (zeros stay zero).

    ``eps`` is drawn from the CPU generator ``gen`` (in name order) and moved to each
    weight's device, so a seed gives the same noise on every device.
    """
    out = dict(state)
    for n in names:
        w = state[n]
        eps = torch.randn(w.shape, generator=gen, dtype=w.dtype).to(w.device)
        out[n] = w + w * sigma * eps
    return out


@full_fp32()  # no TF32 on CUDA: the CPU's numbers to float rounding
def compute_robustness(spec: RobustnessSpec, ctx: Context) -> tuple[dict, dict]:
    """Accuracy/loss per corruption and severity, and under weight noise, for one run."""
    run = ctx.get(spec.run)
    corrupted = ctx.get(spec.corrupted).read("corrupted.npz")
    c = spec.corrupted
    dev = ctx.device
    x, y = (t.to(dev) for t in test_subset(c.dataset, c.subset_size, c.subset_seed))
    model = run.model().to(dev)
    clean_acc, clean_loss = accuracy_and_loss(model, x, y)
    rows = [{"corruption": "clean", "severity": 0, "accuracy": clean_acc, "loss": clean_loss}]
    images = corrupted["images"]
    for i, name in enumerate(c.names):
        ctx.progress(spec.label, i, len(c.names) + len(spec.sigmas))
        for j, severity in enumerate(c.severities):
            xc = torch.from_numpy(images[i, j]).to(dev).float() / 255.0
            acc, loss = accuracy_and_loss(model, xc, y)
            rows.append(
                {"corruption": name, "severity": int(severity), "accuracy": acc, "loss": loss}
            )
    state = {k: v.to(dev, copy=True) for k, v in run.state.items()}
    masks = {k: m.to(dev) for k, m in run.masks.items()}
    names = [n for n, _ in model.named_parameters()]
    noise = []
    for si, sigma in enumerate(spec.sigmas):
        ctx.progress(spec.label, len(c.names) + si, len(c.names) + len(spec.sigmas))
        for trial in range(spec.trials):
            gen = seeding.generator(seeding.seed_word(spec.noise_seed, si, trial))
            noisy = perturb(state, names, sigma, gen)
            model.load_state_dict(noisy)
            acc, loss = accuracy_and_loss(model, x, y)
            zeros_kept = all(bool((noisy[n][masks[n] == 0] == 0).all()) for n in masks)
            noise.append(
                {
                    "sigma": float(sigma),
                    "trial": trial,
                    "accuracy": acc,
                    "loss": loss,
                    "pruned_stay_zero": zeros_kept,
                }
            )
    ctx.progress(spec.label, 1, 1)
    mean_acc = (
        float(np.mean([r["accuracy"] for r in rows if r["severity"] > 0]))
        if len(rows) > 1
        else float("nan")
    )
    doc = {
        "corruption": rows,
        "noise": noise,
        "clean_accuracy": clean_acc,
        "mean_corruption_accuracy": mean_acc,
    }
    return {"robustness.json": doc}, {
        "clean_accuracy": clean_acc,
        "mean_corruption_accuracy": mean_acc,
    }


# ---------------------------------------------------------------------------
# study level


def robustness_specs(study: Study) -> list[RobustnessSpec]:
    """One robustness spec per run of the study (they share one corruption suite)."""
    s = study.analysis("robustness")
    corrupted = CorruptedSpec(
        dataset=study.data.name,
        subset_size=s.subset_size,
        subset_seed=s.subset_seed,
        names=s.names_for(study.data.name),
        severities=tuple(s.severities),
        seed=s.corruption_seed,
    )
    return [
        RobustnessSpec(
            run=run,
            corrupted=corrupted,
            sigmas=tuple(s.sigmas),
            trials=s.trials,
            noise_seed=s.noise_seed,
        )
        for run in study.runs()
    ]


def corruption_errors(table: list[dict]) -> dict[str, dict[int, float]]:
    """{corruption: {severity: error}} from a run's corruption rows (clean under 'clean')."""
    out: dict[str, dict[int, float]] = {}
    for row in table:
        out.setdefault(row["corruption"], {})[row["severity"]] = 1.0 - row["accuracy"]
    return out


def mce(errors: dict, baseline: dict) -> tuple[float, float, dict[str, float]]:
    """(mCE, relative mCE, CE per corruption), normalised by the baseline per corruption."""
    ce, rel = {}, {}
    clean, base_clean = errors["clean"][0], baseline["clean"][0]
    for name, by_sev in errors.items():
        if name == "clean":
            continue
        sevs = sorted(by_sev)
        base = sum(baseline[name][s] for s in sevs)
        ce[name] = sum(by_sev[s] for s in sevs) / base if base > 0 else float("nan")
        base_rel = sum(baseline[name][s] - base_clean for s in sevs)
        rel[name] = (
            sum(by_sev[s] - clean for s in sevs) / base_rel
            if abs(base_rel) > 1e-12
            else float("nan")
        )
    return float(np.mean(list(ce.values()))), float(np.nanmean(list(rel.values()))), ce


def summarize_robustness(study: Study, store: Any) -> list[dict]:
    """The ``robustness`` section: per run, corruption table, mCE, relative mCE, noise curve."""
    specs = robustness_specs(study)
    records = {spec_key(spec.run): status_record(spec, store) for spec in specs}
    docs = {}
    for spec in specs:
        if records[spec_key(spec.run)]["status"] == "cached":
            docs[spec_key(spec.run)] = get_result(spec, store=store, compute=False).read(
                "robustness.json"
            )
    dense = {spec_key(r) for r in study.dense_runs()}
    out = []
    for spec in specs:
        run = spec.run
        record = records[spec_key(run)]
        item: dict = {
            "label": run.label,
            "key": spec_key(run),
            "status": record["status"],
            "setting": dict(run.setting),
        }
        if "error" in record:
            item["error"] = record["error"]
        doc = docs.get(spec_key(run))
        if doc is not None:
            errors = corruption_errors(doc["corruption"])
            twin = spec_key(run.replace(sparsity=SparsitySpec(method="dense", sparsity=0.0)))
            base_doc = docs.get(twin) if twin in dense else None
            if base_doc is not None:
                m, rm, ce = mce(errors, corruption_errors(base_doc["corruption"]))
                item.update(mce=m, relative_mce=rm, ce=ce)
            sigmas = sorted({r["sigma"] for r in doc["noise"]})
            item.update(
                clean_accuracy=doc["clean_accuracy"],
                mean_corruption_accuracy=doc["mean_corruption_accuracy"],
                corruption=doc["corruption"],
                noise=[
                    {
                        "sigma": s,
                        "accuracy_mean": float(
                            np.mean([r["accuracy"] for r in doc["noise"] if r["sigma"] == s])
                        ),
                        "accuracy_std": float(
                            np.std([r["accuracy"] for r in doc["noise"] if r["sigma"] == s])
                        ),
                        "loss_mean": float(
                            np.mean([r["loss"] for r in doc["noise"] if r["sigma"] == s])
                        ),
                        "loss_std": float(
                            np.std([r["loss"] for r in doc["noise"] if r["sigma"] == s])
                        ),
                    }
                    for s in sigmas
                ],
            )
        out.append(item)
    return out


ANALYSIS = Analysis(
    name="robustness",
    kinds=(
        Kind("corrupted", CorruptedSpec, compute_corrupted, files={"corrupted.npz": object}),
        Kind(
            "robustness",
            RobustnessSpec,
            compute_robustness,
            files={
                "robustness.json": (
                    "corruption",
                    "noise",
                    "clean_accuracy",
                    "mean_corruption_accuracy",
                )
            },
        ),
    ),
    specs=robustness_specs,
    summarize=summarize_robustness,
    settings=RobustnessSettings,
)
