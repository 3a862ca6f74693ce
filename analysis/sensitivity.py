"""Per-layer pruning sensitivity (Li et al. 2017, "Pruning Filters for Efficient ConvNets", Fig. 2).

For a trained run, each prunable layer alone loses 10% .. 90% of its filters
(conv) or neurons (linear), chosen three ways: the smallest L1 norms, at
random, the largest L1 norms; the network's test accuracy is measured without
retraining (``finetune = true``: after one epoch of training with the run's
recipe, the masks kept). One curve per layer and criterion, starting at level 0
with the run's own test accuracy (the whole test set, the run's precision:
``metrics.json``'s ``test_acc``). A layer is a channel group with one producing
weight (``l1-structured``'s: its producer rows and its consumers' input columns
are masked together, so the function is that of the thinner network); a run
already pruned keeps its own masks under the new ones.

Random removals are drawn from CPU generators seeded by the spec (one per
layer, level and trial) and moved, so the same experiment runs on every device.
Cheap: no training by default; by default only the study's dense runs are
measured (``runs = "all"``: every run).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
import torch

from analysis import seeding
from analysis.api import Analysis, Context, Kind, Study, status_record
from analysis.api import get as get_result
from analysis.data import load
from analysis.errors import SpecError
from analysis.feed import place
from analysis.sparsity.l1_structured import (
    CRITERIA,
    channel_groups,
    channel_masks,
    channels_to_remove,
    keep_all_but,
    removal_order,
)
from analysis.specs import SPEC, RunSpec, check_bool, check_int, check_option, spec_key
from analysis.train import evaluate, fit
from analysis.training_types import apply_masks

LEVELS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)


def check_levels(owner: str, levels: Any) -> None:
    """Raise SpecError unless ``levels`` is 1 to 50 sorted, distinct floats in (0, 1)."""
    allowed = "1 to 50 sorted, distinct floats in the range (0, 1)"
    if not isinstance(levels, tuple) or not 1 <= len(levels) <= 50:
        raise SpecError("levels", allowed, levels, owner=owner)
    for x in levels:
        ok = isinstance(x, int | float) and not isinstance(x, bool) and 0.0 < x < 1.0
        if not ok:
            raise SpecError("levels", allowed, x, owner=owner)
    if list(levels) != sorted(set(levels)):
        raise SpecError("levels", allowed, levels, owner=owner)


def check_criteria(owner: str, criteria: Any) -> None:
    """Raise SpecError unless ``criteria`` is a non-empty tuple drawn from :data:`CRITERIA`."""
    if not isinstance(criteria, tuple) or not criteria or len(set(criteria)) != len(criteria):
        raise SpecError("criteria", f"distinct names from {CRITERIA}", criteria, owner=owner)
    for c in criteria:
        check_option(owner, "criteria", c, CRITERIA)


@dataclass(**SPEC)
class SensitivitySettings:
    """``[analyses.sensitivity]`` of a study."""

    levels: tuple[float, ...] = LEVELS
    criteria: tuple[str, ...] = CRITERIA
    trials: int = 3
    seed: int = 0
    finetune: bool = False
    runs: str = "dense"

    def __post_init__(self) -> None:
        check_levels("sensitivity", self.levels)
        check_criteria("sensitivity", self.criteria)
        check_int("sensitivity", "trials", self.trials, lo=1, hi=100)
        check_int("sensitivity", "seed", self.seed, lo=0)
        check_bool("sensitivity", "finetune", self.finetune)
        check_option("sensitivity", "runs", self.runs, ("dense", "all"))


@dataclass(**SPEC)
class SensitivitySpec:
    """One run's per-layer sensitivity curves."""

    kind: ClassVar[str] = "sensitivity"
    version: ClassVar[int] = 1
    run: RunSpec = field(default_factory=RunSpec)
    levels: tuple[float, ...] = LEVELS
    criteria: tuple[str, ...] = CRITERIA
    trials: int = 3
    seed: int = 0
    finetune: bool = False

    def __post_init__(self) -> None:
        check_levels("SensitivitySpec", self.levels)
        check_criteria("SensitivitySpec", self.criteria)
        check_int("SensitivitySpec", "trials", self.trials, lo=1, hi=100)

    @property
    def label(self) -> str:
        """Human label."""
        return f"sensitivity of {self.run.label}"


def draws(spec: SensitivitySpec, criterion: str) -> int:
    """Removals measured per layer and level: ``trials`` at random, one otherwise."""
    return spec.trials if criterion == "random" else 1


class Probe:
    """A trained run's network on the device, evaluated with some channels of one layer removed."""

    def __init__(self, spec: SensitivitySpec, ctx: Context) -> None:
        """Load the run, its masks and its test split onto ``ctx.device``."""
        self.spec, self.run = spec, ctx.get(spec.run)
        self.model = self.run.model().to(ctx.device)
        self.state = {k: v.to(ctx.device) for k, v in self.run.state.items()}
        self.own = {k: m.to(ctx.device) for k, m in self.run.masks.items()}
        data = load(spec.run.data)
        self.data = place(data, ctx.device) if spec.finetune else data
        self.x, self.y = self.data.test_x, self.data.test_y
        self.precision = spec.run.train.precision

    def accuracy(self, group: str | None = None, keep: torch.Tensor | None = None) -> float:
        """Test accuracy with the channels of ``group`` not in ``keep`` (n,) removed (None: as is).

        With ``finetune``, a pruned network first trains one epoch of the run's
        recipe (its seed, the masks kept).
        """
        self.model.load_state_dict(self.state)
        masks = dict(self.own)
        if group is not None:
            for name, m in channel_masks(self.model, {group: keep}).items():
                masks[name] = masks[name] & m if name in masks else m
        apply_masks(self.model, masks)
        if self.spec.finetune and group is not None:
            train = dataclasses.replace(self.spec.run.train, epochs=1, snapshot_steps=())
            fit(self.model, self.data, train, seed=self.spec.run.seed, masks=masks)
        return evaluate(self.model, self.x, self.y, precision=self.precision)[1]


def layer_curves(probe: Probe, index: int, group: str, producer: str, base: float) -> dict:
    """Accuracy per criterion and level (level 0: ``base``) for one layer pruned alone.

    ``random`` holds the mean over ``trials`` draws and ``random_std`` their spread.
    """
    spec = probe.spec
    weight = probe.state[producer]  # the stored weights: never changed by a probe
    n = len(weight)
    out: dict = {"name": producer, "group": group, "units": n}
    for criterion in spec.criteria:
        rows = []
        for li, level in enumerate(spec.levels):
            k = channels_to_remove(n, level)
            accs = []
            for trial in range(draws(spec, criterion)):
                gen = seeding.generator(seeding.seed_word(spec.seed, index, li, trial))
                order = removal_order(weight, criterion, gen)
                accs.append(probe.accuracy(group, keep_all_but(order, k)))
            rows.append(accs)
        out[criterion] = [base] + [float(np.mean(a)) for a in rows]
        if criterion == "random":
            out["random_std"] = [0.0] + [float(np.std(a)) for a in rows]
    return out


def compute_sensitivity(spec: SensitivitySpec, ctx: Context) -> tuple[dict, dict]:
    """Every layer's curves for one run (on ``ctx.device``); JSON comes back to the CPU."""
    probe = Probe(spec, ctx)
    base = probe.accuracy()
    groups = channel_groups(probe.model)
    layers = []
    for i, (group, producer, _axes) in enumerate(groups):
        ctx.progress(spec.label, i, len(groups))
        layers.append(layer_curves(probe, i, group, producer, base))
    ctx.progress(spec.label, len(groups), len(groups))
    doc = {
        "base_accuracy": base,
        "levels": [0.0, *spec.levels],
        "criteria": list(spec.criteria),
        "finetune": spec.finetune,
        "layers": layers,
    }
    return {"sensitivity.json": doc}, {"layers": len(layers), "base_accuracy": base}


# ---------------------------------------------------------------------------
# study level


def sensitivity_specs(study: Study) -> list[SensitivitySpec]:
    """One spec per dense run of the study (per run with ``runs = "all"``)."""
    s = study.analysis("sensitivity")
    runs = study.dense_runs() if s.runs == "dense" else study.runs()
    return [
        SensitivitySpec(
            run=run,
            levels=tuple(s.levels),
            criteria=tuple(s.criteria),
            trials=s.trials,
            seed=s.seed,
            finetune=s.finetune,
        )
        for run in runs
    ]


def summarize_sensitivity(study: Study, store: Any) -> list[dict]:
    """The ``sensitivity`` section of ``show --json``: per measured run, its curves."""
    out = []
    for spec in sensitivity_specs(study):
        record = status_record(spec, store)
        item: dict = {
            "label": spec.run.label,
            "run_key": spec_key(spec.run),
            "method": spec.run.sparsity.method,
            "seed": spec.run.seed,
            **record,
        }
        if record["status"] == "cached":
            item.update(get_result(spec, store=store, compute=False).read("sensitivity.json"))
        out.append(item)
    return out


ANALYSIS = Analysis(
    name="sensitivity",
    kinds=(
        Kind(
            "sensitivity",
            SensitivitySpec,
            compute_sensitivity,
            files={"sensitivity.json": ("base_accuracy", "levels", "layers")},
        ),
    ),
    specs=sensitivity_specs,
    summarize=summarize_sensitivity,
    settings=SensitivitySettings,
)
