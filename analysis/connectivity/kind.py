"""The connectivity kinds' records: study settings, specs, the study's specs, its summary.

Kinds (computed in ``analysis.connectivity.alignment`` and ``.instability``):

- ``connectivity`` (:class:`ConnectivitySpec`): two runs of the same data and
  architecture, B optionally aligned to A by a permutation of its hidden units,
  and the straight path between them;
- ``instability`` (:class:`InstabilitySpec`): Frankle et al. 2020's test of one
  run from a rewind step.

Everything the package's ``ANALYSIS`` record declares, but the compute
functions, sits in this one file: the ``[analyses.connectivity]`` settings
(:class:`ConnectivitySettings`), the specs, the study's specs
(:func:`connectivity_specs`) and the ``show --json`` section
(:func:`summarize_connectivity`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, ClassVar, Literal

from analysis import api
from analysis.api import Study
from analysis.batchnorm import has_batchnorm
from analysis.errors import SpecError
from analysis.specs import (
    SPEC,
    ModelSpec,
    RunSpec,
    SparsitySpec,
    check_bool,
    check_int,
    check_literals,
    check_option,
    setting_label,
    spec_key,
)

ALIGNMENTS = ("naive", "weight", "activation")
#: Curves between two networks (Garipov et al. 2018; ``analysis.connectivity.curves``).
CURVES = ("bezier", "polychain")
#: Weight matching's default number of seeded visiting orders. Measured with
#: ``benchmarks/bench_alignment.py --orders 32`` (results/alignment_orders_*.json): on the
#: tiny study's dense pair and a Fashion-MNIST lottery pair, best of 8 orders reaches the
#: best objective of 32 in 99% of draws (best of 1: 41%, of 4: 89%), for about 8-11x the
#: time of one order.
MATCHING_RESTARTS = 8


def check_restarts(owner: str, restarts: Any) -> None:
    """Raise SpecError unless ``matching_restarts`` is an int in [1, 64]."""
    check_int(owner, "matching_restarts", restarts, lo=1, hi=64)


def check_curve(owner: str, bends: Any, epochs: Any, *, prefix: str = "") -> None:
    """Raise SpecError unless a curve has 1..16 bends and 0..10000 training epochs."""
    check_int(owner, f"{prefix}bends", bends, lo=1, hi=16)
    check_int(owner, f"{prefix}epochs", epochs, lo=0, hi=10_000)


def check_alphas(owner: str, alphas: Any) -> None:
    """Raise SpecError unless ``alphas`` (grid points on [0, 1]) is an int in [2, 1001]."""
    check_int(owner, "alphas", alphas, lo=2, hi=1001)


@dataclass(**SPEC)
class ConnectivitySettings:
    """``[analyses.connectivity]`` of a study.

    ``alphas`` grid points on [0, 1] (both ends included); ``train_subset``
    training samples (seeded by ``subset_seed``, which also seeds weight
    matching) for the train curve, activation matching and BatchNorm resets;
    ``test_subset`` test samples (0: the whole test set). ``same_init_pairs``
    also compares every pruned run with the dense run of its seed. The
    instability test trains two copies of each ``instability_method`` run of
    the first seed from every ``rewind_steps`` step (0 or a step listed in
    ``train.snapshot_steps``). ``matching_restarts`` is the number of seeded
    visiting orders weight matching runs (the best objective is kept, the
    barriers' spread over the orders reported); the default
    (:data:`MATCHING_RESTARTS`) was chosen by measurement, see
    benchmarks/bench_alignment.py. ``curves``: the curves trained between
    each pair of seeds (Garipov et al. 2018; none by default, they train), for
    the ``curve_alignments`` (each also in ``alignments``), with ``curve_bends``
    bends trained for ``curve_epochs`` epochs.
    """

    alphas: int = 25
    train_subset: int = 2000
    test_subset: int = 0
    subset_seed: int = 0
    alignments: tuple[str, ...] = ALIGNMENTS
    repair: bool = True
    same_init_pairs: bool = False
    instability: bool = True
    rewind_steps: tuple[int, ...] = (0,)
    instability_method: str = "dense"
    matching_restarts: int = MATCHING_RESTARTS
    curves: tuple[str, ...] = ()
    curve_alignments: tuple[str, ...] = ("naive", "weight")
    curve_bends: int = 1
    curve_epochs: int = 5

    def __post_init__(self) -> None:
        """Validate every field; raise SpecError naming the first bad one."""
        check_alphas("connectivity", self.alphas)
        check_curve("connectivity", self.curve_bends, self.curve_epochs, prefix="curve_")
        _check_names("curves", self.curves, CURVES)
        _check_names("curve_alignments", self.curve_alignments, ALIGNMENTS, empty=False)
        check_restarts("connectivity", self.matching_restarts)
        check_int("connectivity", "train_subset", self.train_subset, lo=10, hi=100_000)
        check_int("connectivity", "test_subset", self.test_subset, lo=0, hi=1_000_000)
        check_int("connectivity", "subset_seed", self.subset_seed, lo=0)
        _check_names("alignments", self.alignments, ALIGNMENTS, empty=False)
        missing = [a for a in self.curve_alignments if a not in self.alignments]
        if self.curves and missing:
            raise SpecError(
                "curve_alignments",
                f"alignments also listed in alignments {list(self.alignments)}",
                self.curve_alignments,
                owner="connectivity",
            )
        for name in ("repair", "same_init_pairs", "instability"):
            check_bool("connectivity", name, getattr(self, name))
        if not self.rewind_steps or len(set(self.rewind_steps)) != len(self.rewind_steps):
            raise SpecError(
                "rewind_steps",
                "a non-empty list of distinct steps (ints >= 0)",
                self.rewind_steps,
                owner="connectivity",
            )
        for k in self.rewind_steps:
            check_int("connectivity", "rewind_steps", k, lo=0)
        if not isinstance(self.instability_method, str) or not self.instability_method:
            raise SpecError(
                "instability_method",
                "a method name of the study",
                self.instability_method,
                owner="connectivity",
            )


def _check_names(name: str, values: Any, allowed: tuple[str, ...], *, empty: bool = True) -> None:
    """Raise SpecError unless ``values`` is a list without repeats drawn from ``allowed``."""
    ok = isinstance(values, tuple | list) and len(set(values)) == len(values)
    if not ok or (not empty and not values):
        need = "a list" if empty else "a non-empty list"
        raise SpecError(
            name, f"{need} without repeats drawn from {list(allowed)}", values, owner="connectivity"
        )
    for v in values:
        check_option("connectivity", name, v, allowed)


@lru_cache(maxsize=64)
def arch_has_batchnorm(model: ModelSpec, dataset: str) -> bool:
    """Whether the network of ``model`` on ``dataset`` has BatchNorm layers."""
    import torch

    from analysis.data import dataset_info
    from analysis.models import build_for

    with torch.device("meta"):  # the layers only: a skeleton without storage
        return has_batchnorm(build_for(model, dataset_info(dataset)))


def _check_subsets(owner: str, train_subset: int, test_subset: int, seed: int) -> None:
    """Shared validation of the evaluation subsets and seed."""
    check_int(owner, "train_subset", train_subset, lo=10, hi=100_000)
    check_int(owner, "test_subset", test_subset, lo=0, hi=1_000_000)
    check_int(owner, "seed", seed, lo=0)


@dataclass(**SPEC)
class ConnectivitySpec:
    """The interpolation curve between run A and run B (aligned to A or not).

    ``seed`` seeds the training subset and weight matching's visiting orders.
    ``repair`` applies REPAIR (Jordan et al. 2022) at every alpha: each hidden
    unit's pre-activation renormalised to the endpoints' interpolated statistics
    (any architecture; after the BatchNorm reset where there is BatchNorm). ``matching_restarts``: the seeded visiting
    orders weight matching runs (the best objective is kept); only ``weight``
    uses it, so for the other alignments it is stored as 1 and their keys do
    not depend on it.
    """

    kind: ClassVar[str] = "connectivity"
    run_a: RunSpec = field(default_factory=RunSpec)
    run_b: RunSpec = field(default_factory=lambda: RunSpec(seed=1))
    alignment: Literal["naive", "weight", "activation"] = "naive"
    repair: bool = False
    alphas: int = 25
    train_subset: int = 2000
    test_subset: int = 0
    seed: int = 0
    matching_restarts: int = MATCHING_RESTARTS

    def __post_init__(self) -> None:
        """Validate every field; raise SpecError naming the first bad one."""
        check_literals(self)
        check_bool("ConnectivitySpec", "repair", self.repair)
        check_restarts("ConnectivitySpec", self.matching_restarts)
        if self.alignment != "weight":  # one canonical key: the field means nothing here
            object.__setattr__(self, "matching_restarts", 1)
        check_alphas("ConnectivitySpec", self.alphas)
        _check_subsets("ConnectivitySpec", self.train_subset, self.test_subset, self.seed)
        if self.run_a.data != self.run_b.data or self.run_a.model != self.run_b.model:
            raise SpecError(
                "run_b",
                f"a run with the same data and model as run_a ({self.run_a.data}, "
                f"{self.run_a.model})",
                f"{self.run_b.data}, {self.run_b.model}",
                owner="ConnectivitySpec",
            )

    @property
    def label(self) -> str:
        """Human label."""
        variant = self.alignment + (" + REPAIR" if self.repair else "")
        return f"connectivity ({variant}): {self.run_a.label} ~ {self.run_b.label}"


@dataclass(**SPEC)
class InstabilitySpec:
    """Frankle et al. 2020's instability test of one run from rewind step ``rewind_step``.

    ``seed`` seeds the two copies' data orders and the training subset.
    """

    kind: ClassVar[str] = "instability"
    run: RunSpec = field(default_factory=RunSpec)
    rewind_step: int = 0
    alphas: int = 25
    train_subset: int = 2000
    test_subset: int = 0
    seed: int = 0

    def __post_init__(self) -> None:
        """Validate every field; raise SpecError naming the first bad one."""
        check_alphas("InstabilitySpec", self.alphas)
        _check_subsets("InstabilitySpec", self.train_subset, self.test_subset, self.seed)
        check_rewind_step("InstabilitySpec", "rewind_step", self.rewind_step, self.run.train)

    @property
    def label(self) -> str:
        """Human label."""
        return f"instability of {self.run.label} from step {self.rewind_step}"


def check_rewind_step(owner: str, name: str, step: Any, train: Any) -> None:
    """Raise SpecError unless ``step`` is 0 or one of ``train.snapshot_steps``."""
    check_int(owner, name, step, lo=0)
    if step and step not in train.snapshot_steps:
        raise SpecError(
            name,
            f"0 or a step listed in train.snapshot_steps {list(train.snapshot_steps)} "
            "(add it there so the dense run keeps that snapshot)",
            step,
            owner=owner,
        )


# ---------------------------------------------------------------------------
# study level


def check_settings(study: Study, s: ConnectivitySettings) -> None:
    """Plan-time checks that need the study: rewind steps and the instability method."""
    if not s.instability:
        return
    for k in s.rewind_steps:
        check_rewind_step("study", "analyses.connectivity.rewind_steps", k, study.train)
    methods = [m.method for m in study.methods]
    if s.instability_method not in methods:
        listed = ", ".join(repr(m) for m in dict.fromkeys(methods))
        raise SpecError(
            "analyses.connectivity.instability_method",
            f"a method of the study, one of {{{listed}}}",
            s.instability_method,
            owner="study",
        )


def connectivity_specs(study: Study) -> list[ConnectivitySpec | InstabilitySpec]:
    """Every connectivity and instability spec of the study.

    With 2+ seeds: for every setting x objective x method x sparsity, every
    pair of seeds (n seeds give n(n-1)/2 pairs, so barriers come with a
    spread), for each alignment (and its REPAIR variant, if asked); if asked,
    every pruned run of the first seed against the dense
    run of that seed; and the instability test of ``instability_method``'s runs
    of every seed, from every rewind step.
    """
    s = study.analysis("connectivity")
    check_settings(study, s)
    common = dict(
        alphas=s.alphas,
        train_subset=s.train_subset,
        test_subset=s.test_subset,
        seed=s.subset_seed,
    )
    repairs = (False, True) if s.repair else (False,)
    runs = study.runs()
    first = [r for r in runs if r.seed == study.seeds[0]]
    pairs: list[tuple[RunSpec, RunSpec]] = [
        (r.replace(seed=a), r.replace(seed=b))
        for r in first
        for i, a in enumerate(study.seeds)
        for b in study.seeds[i + 1 :]
    ]
    if s.same_init_pairs:
        dense = SparsitySpec(method="dense", sparsity=0.0)
        pairs += [(r.replace(sparsity=dense), r) for r in first if r.sparsity.method != "dense"]
    out: list[ConnectivitySpec | InstabilitySpec] = [
        ConnectivitySpec(
            run_a=a,
            run_b=b,
            alignment=alignment,
            repair=repair,
            matching_restarts=s.matching_restarts,
            **common,
        )
        for a, b in pairs
        for alignment in s.alignments
        for repair in repairs
    ]
    if s.instability:
        out += [
            InstabilitySpec(run=r, rewind_step=k, **common)
            for r in runs
            if r.sparsity.method == s.instability_method
            for k in s.rewind_steps
        ]
    return out


#: What a cached pair's summary item copies from its connectivity.json.
PAIR_FIELDS = (
    "bn",
    "bn_rule",
    "barriers",
    "curve",
    "matching_objective",
    "matching",
    "variance",
    "ensemble",
    "midpoint",
    "endpoint_sparsity",
    "union_sparsity",
    "alignment_seconds",
)


def _pair_item(spec: ConnectivitySpec, store: Any) -> dict:
    """One pair of the summary: what it compares and, when cached, its barriers and spread."""
    run_b = spec.run_b
    item = {
        "label": spec.label,
        **api.status_record(spec, store),
        "pair": "seeds" if spec.run_a.seed != run_b.seed else "same-init",
        "run_a": spec.run_a.label,
        "run_b": run_b.label,
        "seeds": [spec.run_a.seed, run_b.seed],
        "setting": dict(run_b.setting),
        "setting_label": setting_label(run_b.setting),
        "method": run_b.sparsity.method,
        "sparsity": run_b.sparsity.sparsity,
        "objective": run_b.train.objective,
        "alignment": spec.alignment,
        "repair": spec.repair,
        "matching_restarts": spec.matching_restarts,
    }
    if item["status"] == "cached":
        doc = api.get(spec, store=store, compute=False).read("connectivity.json")
        item.update({k: doc[k] for k in PAIR_FIELDS})
    return item


def _instability_point(spec: InstabilitySpec, store: Any) -> dict:
    """One rewind step of the summary's instability group: when cached, its barriers and curve."""
    point = {"rewind_step": spec.rewind_step, "label": spec.label, **api.status_record(spec, store)}
    if point["status"] == "cached":
        doc = api.get(spec, store=store, compute=False).read("instability.json")
        point.update(barriers=doc["barriers"], curve=doc["curve"], bn=doc["bn"])
        point["bn_rule"] = doc.get("bn_rule")  # absent from entries computed before it existed
    return point


def summarize_connectivity(study: Study, store: Any) -> dict:
    """The ``connectivity`` section of ``show --json`` (schema: docs/summary.md)."""
    s = study.analysis("connectivity")
    repair = "applied" if s.repair else "off"
    notes = []
    if len(study.seeds) < 2:
        notes.append("pairs of seeds need a study with 2 or more seeds")
    pairs, instability = [], {}
    for spec in connectivity_specs(study):
        if isinstance(spec, ConnectivitySpec):
            pairs.append(_pair_item(spec, store))
        else:
            group = instability.setdefault(
                spec_key(spec.run), {**spec.run.identity(), "points": []}
            )
            group["points"].append(_instability_point(spec, store))
    return {
        "settings": {
            "alphas": s.alphas,
            "train_subset": s.train_subset,
            "test_subset": s.test_subset,
            "alignments": list(s.alignments),
            "matching_restarts": s.matching_restarts,
            "rewind_steps": list(s.rewind_steps),
            "instability_method": s.instability_method,
        },
        "repair": repair,
        "notes": notes,
        "pairs": pairs,
        "instability": list(instability.values()),
    }
