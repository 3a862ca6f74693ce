"""Mode connectivity: loss and accuracy along the straight line between two networks.

Kinds:

- ``connectivity``: two runs of the same data and architecture (two seeds, or a
  dense run and a pruned run of one seed), B optionally aligned to A first by
  a permutation of its hidden units (``naive``: none; ``weight``: Git Re-Basin
  weight matching; ``activation``: activation/correlation matching; see
  ``analysis.permutation``). At every alpha of a grid on [0, 1] (both ends
  included) the network ``(1 - alpha) * A + alpha * P(B)`` (:func:`mix_weights`)
  is evaluated on a fixed, seeded training subset and on the test set (loss and
  accuracy). Networks with BatchNorm get their BN statistics reset on the
  training subset at every alpha, endpoints included, so the whole curve is
  treated alike (:func:`reset_bn_stats`; the interpolated running statistics
  are meaningless and collapse the variance, Jordan et al. 2022). The
  ``repair`` variant applies REPAIR instead (:func:`repair_bn`).
- ``instability``: the linear mode connectivity / instability test of Frankle
  et al. 2020 ("Linear Mode Connectivity and the Lottery Ticket Hypothesis"):
  from one run's weights at rewind step k, two copies are trained with
  different data orders for the rest of the schedule, and the barrier between
  them is measured (same curve as above, no alignment: they share a start).
  The two trained copies are cached in the entry.

Barriers (for loss and accuracy, on train and test), for a curve ``L`` on the
grid ``alpha``:

- ``barrier_entezari = max_a [L(a) - ((1 - a) L(0) + a L(1))]`` (Entezari et al.
  2022, eq. 1): the height above the line joining the endpoints, >= 0;
- ``barrier_rebasin = max_a L(a) - (L(0) + L(1)) / 2`` (Ainsworth et al. 2023,
  "Git Re-Basin"): the height above the endpoints' mean, >= |L(0) - L(1)| / 2;
- ``accuracy_barrier = max_a [((1 - a) acc(0) + a acc(1)) - acc(a)]``: the
  largest drop of accuracy below the line joining the endpoint accuracies;
- instability also reports Frankle et al.'s ``error_barrier = max_a err(a) -
  (err(0) + err(1)) / 2`` with ``err = 1 - accuracy``.

Sparse networks (no existing tool handles them, so this is our convention): the
masks are permuted with the weights (a pruned weight of B stays pruned, at its
new position), and the interpolated network's mask is the UNION of the endpoint
masks: a weight is free if it is free in either network. Interpolated weights
outside the union are exactly zero, since both endpoints are zero there. We
store the sparsity of the interpolated weights (fraction of exact zeros among
the prunable weights) at every alpha: the endpoints' sparsities at alpha 0 and
1, the union's in between.

REPAIR (Jordan et al. 2022, "REPAIR: REnormalizing Permuted Activations for
Interpolation Repair") renormalises each interpolated channel so its mean and
std are the interpolation ``(1 - a) * stats_A + a * stats_B`` of the endpoints'
channel statistics. For BatchNorm networks we implement it at each BN's output
(the pre-activation REPAIR corrects): with the endpoint statistics measured on
the training subset, the interpolated BN's affine parameters are set to
``weight = sign(gamma_a) * goal_std`` and ``bias = goal_mean`` and its statistics
reset, which is exactly REPAIR's renormalising layer folded into the BN. As
Jordan et al. note, on BN networks this is close to a plain statistics reset
(the endpoints' BN outputs have mean beta and std |gamma|); it differs where the
aligned gammas disagree. For networks without BatchNorm (mlp, lenet) REPAIR
needs inserted normalisation layers, which prunescope does not do: it does not
apply, and the study summary reports it as "n/a".
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, ClassVar, Literal

import numpy as np
import torch
from torch import nn

from analysis.api import Analysis, Context, Kind, Study
from analysis.batchnorm import (  # noqa: F401  (re-exported for callers of this module)
    BN_BATCH,
    batchnorms,
    bn_output_stats,
    has_batchnorm,
    repair_bn,
    reset_bn_stats,
)
from analysis.data import eval_subset, load
from analysis.errors import SpecError
from analysis.permutation import (
    Permutation,
    activation_matching,
    apply_permutation,
    identity_permutation,
    weight_matching,
)
from analysis.sparsity.base import Masks, apply_masks
from analysis.specs import (
    SPEC,
    DataSpec,
    ModelSpec,
    RunSpec,
    SparsitySpec,
    check_bool,
    check_int,
    check_literals,
    check_option,
    spec_key,
)
from analysis.train import evaluate, fit, state_of, sub_seed

ALIGNMENTS = ("naive", "weight", "activation")


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
    ``train.snapshot_steps``).
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

    def __post_init__(self) -> None:
        check_alphas("connectivity", self.alphas)
        check_int("connectivity", "train_subset", self.train_subset, lo=10, hi=100_000)
        check_int("connectivity", "test_subset", self.test_subset, lo=0, hi=1_000_000)
        check_int("connectivity", "subset_seed", self.subset_seed, lo=0)
        if not self.alignments or len(set(self.alignments)) != len(self.alignments):
            raise SpecError(
                "alignments",
                f"a non-empty list without repeats drawn from {list(ALIGNMENTS)}",
                self.alignments,
                owner="connectivity",
            )
        for a in self.alignments:
            check_option("connectivity", "alignments", a, ALIGNMENTS)
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


@lru_cache(maxsize=64)
def arch_has_batchnorm(model: ModelSpec, dataset: str) -> bool:
    """Whether the network of ``model`` on ``dataset`` has BatchNorm layers."""
    from analysis.data import dataset_info
    from analysis.models import build_for

    return has_batchnorm(build_for(model, dataset_info(dataset)))


def _check_subsets(owner: str, train_subset: int, test_subset: int, seed: int) -> None:
    """Shared validation of the evaluation subsets and seed."""
    check_int(owner, "train_subset", train_subset, lo=10, hi=100_000)
    check_int(owner, "test_subset", test_subset, lo=0, hi=1_000_000)
    check_int(owner, "seed", seed, lo=0)


@dataclass(**SPEC)
class ConnectivitySpec:
    """The interpolation curve between run A and run B (aligned to A or not).

    ``seed`` seeds the training subset and weight matching's visiting order.
    ``repair`` (BatchNorm networks only) applies REPAIR instead of a plain BN
    statistics reset at every alpha.
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

    def __post_init__(self) -> None:
        check_literals(self)
        check_bool("ConnectivitySpec", "repair", self.repair)
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
        if self.repair and not arch_has_batchnorm(self.run_a.model, self.run_a.data.name):
            raise SpecError(
                "repair",
                "False for a network without BatchNorm (REPAIR would need inserted "
                "normalisation layers, which prunescope does not do)",
                self.repair,
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
# interpolation, BatchNorm reset and REPAIR


def mix_weights(
    state_a: dict[str, torch.Tensor], state_b: dict[str, torch.Tensor], alpha: float
) -> dict[str, torch.Tensor]:
    """``(1 - alpha) * A + alpha * B`` for every floating tensor (exact at alpha 0 and 1).

    Integer buffers (BatchNorm's ``num_batches_tracked``) are taken from A.
    """
    out = {}
    for key, a in state_a.items():
        b = state_b[key]
        out[key] = (1.0 - alpha) * a + alpha * b if a.is_floating_point() else a.clone()
    return out


def union_masks(masks_a: Masks, masks_b: Masks) -> Masks:
    """The interpolated network's masks: free where free in either (empty if either is dense)."""
    if not masks_a or not masks_b:
        return {}
    return {k: masks_a[k] | masks_b[k] for k in masks_a}


def zero_fraction(state: dict[str, torch.Tensor], names: list[str]) -> float:
    """Fraction of exact zeros among the named (prunable) weights."""
    zeros = sum(int((state[n] == 0).sum()) for n in names)
    total = sum(state[n].numel() for n in names)
    return zeros / max(total, 1)


# ---------------------------------------------------------------------------
# barriers


def barrier_entezari(alphas: np.ndarray, values: np.ndarray) -> float:
    """``max_a [L(a) - ((1 - a) L(0) + a L(1))]`` (Entezari et al. 2022); >= 0."""
    a, v = np.asarray(alphas, dtype=float), np.asarray(values, dtype=float)
    return float(np.max(v - ((1.0 - a) * v[0] + a * v[-1])))


def barrier_rebasin(values: np.ndarray) -> float:
    """``max_a L(a) - (L(0) + L(1)) / 2`` (Ainsworth et al. 2023); >= |L(0) - L(1)| / 2."""
    v = np.asarray(values, dtype=float)
    return float(np.max(v) - (v[0] + v[-1]) / 2.0)


def accuracy_barrier(alphas: np.ndarray, acc: np.ndarray) -> float:
    """``max_a [((1 - a) acc(0) + a acc(1)) - acc(a)]``: the largest drop below the line; >= 0."""
    a, v = np.asarray(alphas, dtype=float), np.asarray(acc, dtype=float)
    return float(np.max((1.0 - a) * v[0] + a * v[-1] - v))


def error_barrier(acc: np.ndarray) -> float:
    """Frankle et al. 2020: ``max_a err(a) - (err(0) + err(1)) / 2`` with err = 1 - accuracy."""
    return barrier_rebasin(1.0 - np.asarray(acc, dtype=float))


def curve_barriers(curve: dict[str, list[float]]) -> dict[str, dict[str, float]]:
    """All barriers of a curve, on train and on test."""
    alphas = np.asarray(curve["alphas"])
    out = {}
    for split in ("train", "test"):
        loss, acc = curve[f"{split}_loss"], curve[f"{split}_acc"]
        out[split] = {
            "barrier_entezari": barrier_entezari(alphas, loss),
            "barrier_rebasin": barrier_rebasin(loss),
            "accuracy_barrier": accuracy_barrier(alphas, acc),
            "error_barrier": error_barrier(acc),
        }
    return out


# ---------------------------------------------------------------------------
# the curve


@dataclass(frozen=True)
class EvalData:
    """The fixed data a curve is evaluated on: x (N, C, H, W), y (N,)."""

    train_x: torch.Tensor
    train_y: torch.Tensor
    test_x: torch.Tensor
    test_y: torch.Tensor


def eval_data(data: DataSpec, train_subset: int, test_subset: int, seed: int) -> EvalData:
    """A seeded training subset (at most ``train_subset``) and the test set (or a subset)."""
    splits = load(data)
    n_train = len(splits.train_x)
    tr = eval_subset(min(train_subset, n_train), n_train, seed)
    te = slice(None)
    if test_subset:
        te = eval_subset(min(test_subset, len(splits.test_x)), len(splits.test_x), seed)
    return EvalData(splits.train_x[tr], splits.train_y[tr], splits.test_x[te], splits.test_y[te])


def interpolation_curve(
    model: nn.Module,
    state_a: dict[str, torch.Tensor],
    state_b: dict[str, torch.Tensor],
    masks: Masks,
    alphas: np.ndarray,
    data: EvalData,
    *,
    bn: Literal["none", "reset", "repair"],
    progress: Any = None,
) -> dict[str, list[float]]:
    """Loss, accuracy (train and test) and sparsity at every alpha of ``(1-a) A + a B``.

    ``model`` is any network of the architecture (its weights are overwritten);
    ``masks`` the interpolated network's (the union); ``bn`` what is done to
    BatchNorm statistics at each alpha: nothing, a reset, or REPAIR.
    """
    names = model.prunable_names()
    stats: list[dict] = []
    if bn == "repair":
        for state in (state_a, state_b):
            model.load_state_dict(state)
            reset_bn_stats(model, data.train_x)
            stats.append(bn_output_stats(model, data.train_x))
    curve: dict[str, list[float]] = {
        k: [] for k in ("train_loss", "train_acc", "test_loss", "test_acc", "sparsity")
    }
    for i, alpha in enumerate(alphas):
        if progress is not None:
            progress(i, len(alphas))
        state = mix_weights(state_a, state_b, float(alpha))
        model.load_state_dict(state)
        apply_masks(model, masks)  # a no-op by construction: both endpoints are 0 there
        if bn == "reset":
            reset_bn_stats(model, data.train_x)
        elif bn == "repair":
            repair_bn(model, stats[0], stats[1], float(alpha), data.train_x)
        model.eval()
        for split, x, y in (
            ("train", data.train_x, data.train_y),
            ("test", data.test_x, data.test_y),
        ):
            loss, acc = evaluate(model, x, y)
            curve[f"{split}_loss"].append(loss)
            curve[f"{split}_acc"].append(acc)
        curve["sparsity"].append(zero_fraction(dict(model.named_parameters()), names))
    if progress is not None:
        progress(len(alphas), len(alphas))
    return {"alphas": [float(a) for a in alphas], **curve}


def align(
    alignment: str, model_a: nn.Module, model_b: nn.Module, x: torch.Tensor, seed: int
) -> Permutation:
    """The permutation aligning B to A by ``alignment`` (naive: the identity)."""
    ps = model_a.permutation_spec()
    if alignment == "weight":
        return weight_matching(ps, model_a.state_dict(), model_b.state_dict(), seed=seed)
    if alignment == "activation":
        return activation_matching(model_a, model_b, x)
    return identity_permutation(ps, model_a.state_dict())


@torch.no_grad()
def check_same_function(
    model: nn.Module,
    state: dict[str, torch.Tensor],
    aligned: dict[str, torch.Tensor],
    x: torch.Tensor,
) -> None:
    """Raise RuntimeError unless ``aligned`` computes what ``state`` does on x (eval mode)."""
    model.load_state_dict(state)
    before = model.eval()(x)
    model.load_state_dict(aligned)
    after = model.eval()(x)
    scale = max(1.0, float(before.abs().max()))
    if not torch.allclose(before, after, atol=1e-4 * scale, rtol=1e-4):
        raise RuntimeError("the aligned network computes a different function: a permutation bug")


def compute_connectivity(spec: ConnectivitySpec, ctx: Context) -> tuple[dict, dict]:
    """Align B to A, then loss/accuracy/sparsity along the line, and its barriers."""
    run_a, run_b = ctx.get(spec.run_a), ctx.get(spec.run_b)
    data = eval_data(spec.run_a.data, spec.train_subset, spec.test_subset, spec.seed)
    model_a, model_b = run_a.model(), run_b.model()
    ps = model_a.permutation_spec()
    start = time.perf_counter()
    perm = align(spec.alignment, model_a, model_b, data.train_x, spec.seed)
    align_seconds = time.perf_counter() - start
    state_b = apply_permutation(ps, perm, run_b.state)
    masks_b = apply_permutation(ps, perm, run_b.masks)
    check_same_function(model_b, run_b.state, state_b, data.test_x[:64])
    masks = union_masks(run_a.masks, masks_b)
    bn = "repair" if spec.repair else ("reset" if has_batchnorm(model_a) else "none")
    alphas = np.linspace(0.0, 1.0, spec.alphas)
    curve = interpolation_curve(
        model_a,
        run_a.state,
        state_b,
        masks,
        alphas,
        data,
        bn=bn,
        progress=lambda i, n: ctx.progress(spec.label, i, n),
    )
    barriers = curve_barriers(curve)
    names = model_a.prunable_names()
    doc = {
        "run_a": spec.run_a.label,
        "run_b": spec.run_b.label,
        "alignment": spec.alignment,
        "repair": spec.repair,
        "bn": bn,
        "curve": curve,
        "barriers": barriers,
        "endpoint_sparsity": [
            zero_fraction(run_a.state, names),
            zero_fraction(run_b.state, names),
        ],
        "union_sparsity": 1.0 - _kept_fraction(masks) if masks else 0.0,
        "alignment_seconds": align_seconds,
        "changed_units": {p: int((idx != torch.arange(len(idx))).sum()) for p, idx in perm.items()},
        "n_train": len(data.train_x),
        "n_test": len(data.test_x),
    }
    summary = {f"{split}_{k}": v for split, b in barriers.items() for k, v in b.items()}
    return {"connectivity.json": doc, "permutation.safetensors": perm}, summary


def _kept_fraction(masks: Masks) -> float:
    """Fraction of True entries over all masks."""
    kept = sum(int(m.sum()) for m in masks.values())
    return kept / max(sum(m.numel() for m in masks.values()), 1)


# ---------------------------------------------------------------------------
# the instability test


def copy_data_seed(spec: InstabilitySpec, copy: int) -> int:
    """The data-order seed of copy 0 or 1 (distinct from the run's own order)."""
    return sub_seed(spec.run.seed, "data", spec.seed, copy + 1)


def compute_instability(spec: InstabilitySpec, ctx: Context) -> tuple[dict, dict]:
    """Train two copies from the rewind point with different data orders; their barrier.

    The start is the dense run's weights at ``rewind_step`` (its initialisation
    for 0) of the same seed, with the run's masks for a sparse run (Frankle et
    al. 2020's IMP setting). Each copy trains the rest of the schedule: steps
    ``k..T`` with the learning-rate schedule continuing from step k.
    """
    run = ctx.get(spec.run)
    dense_spec = spec.run.replace(sparsity=SparsitySpec(method="dense", sparsity=0.0))
    dense = run if spec.run.sparsity.method == "dense" else ctx.get(dense_spec)
    k = spec.rewind_step
    if k == 0:
        start = dense.init_state
    elif k in dense.trajectory:
        start = dense.trajectory[k]
    else:
        raise SpecError(
            "rewind_step",
            f"a step the dense run snapshotted {sorted(dense.trajectory)}",
            k,
            owner="InstabilitySpec",
        )
    splits = load(spec.run.data)
    train = spec.run.train
    total = max(1, len(splits.train_x) // train.batch_size) * train.epochs
    if k > total:
        raise SpecError(
            "rewind_step", f"at most the {total} training steps", k, owner="InstabilitySpec"
        )
    copies = []
    for copy in (0, 1):
        model = run.skeleton()
        model.load_state_dict(start)
        apply_masks(model, run.masks)
        fit(
            model,
            splits,
            train,
            seed=spec.run.seed,
            masks=run.masks,
            data_seed=copy_data_seed(spec, copy),
            start_step=k,
            max_steps=total - k,
            progress=ctx.progress,
            label=f"{spec.label}: copy {copy + 1}",
        )
        copies.append(state_of(model))
    data = eval_data(spec.run.data, spec.train_subset, spec.test_subset, spec.seed)
    model = run.skeleton()
    bn = "reset" if has_batchnorm(model) else "none"
    curve = interpolation_curve(
        model,
        copies[0],
        copies[1],
        run.masks,
        np.linspace(0.0, 1.0, spec.alphas),
        data,
        bn=bn,
        progress=lambda i, n: ctx.progress(spec.label, i, n),
    )
    barriers = curve_barriers(curve)
    doc = {
        "run": spec.run.label,
        "rewind_step": k,
        "steps_trained": total - k,
        "bn": bn,
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

    With 2+ seeds: for every objective x method x sparsity, the runs of the
    first two seeds, for each alignment (and its REPAIR variant on BatchNorm
    networks); if asked, every pruned run of the first seed against the dense
    run of that seed; and the instability test of ``instability_method``'s runs
    of the first seed, from every rewind step.
    """
    s = study.analysis("connectivity")
    check_settings(study, s)
    common = dict(
        alphas=s.alphas,
        train_subset=s.train_subset,
        test_subset=s.test_subset,
        seed=s.subset_seed,
    )
    repairs = (
        (False, True) if s.repair and arch_has_batchnorm(study.model, study.data.name) else (False,)
    )
    first = [r for r in study.runs() if r.seed == study.seeds[0]]
    pairs: list[tuple[RunSpec, RunSpec]] = []
    if len(study.seeds) >= 2:
        pairs += [(r, r.replace(seed=study.seeds[1])) for r in first]
    if s.same_init_pairs:
        dense = SparsitySpec(method="dense", sparsity=0.0)
        pairs += [(r.replace(sparsity=dense), r) for r in first if r.sparsity.method != "dense"]
    out: list[ConnectivitySpec | InstabilitySpec] = [
        ConnectivitySpec(run_a=a, run_b=b, alignment=alignment, repair=repair, **common)
        for a, b in pairs
        for alignment in s.alignments
        for repair in repairs
    ]
    if s.instability:
        out += [
            InstabilitySpec(run=r, rewind_step=k, **common)
            for r in first
            if r.sparsity.method == s.instability_method
            for k in s.rewind_steps
        ]
    return out


def _status_fields(spec: Any, store: Any) -> dict:
    """Key, status and (when failed) the first line of the error of one spec."""
    from analysis import api

    status = api.status(spec, store)
    item: dict = {"key": spec_key(spec), "status": status}
    if status == "failed":
        item["error"] = (store.failure(spec) or "").splitlines()[0]
    return item


def summarize_connectivity(study: Study, store: Any) -> dict:
    """The ``connectivity`` section of ``show --json`` (schema: docs/summary.md)."""
    from analysis import api

    s = study.analysis("connectivity")
    bn = arch_has_batchnorm(study.model, study.data.name)
    repair = "n/a" if not bn else ("applied" if s.repair else "off")
    notes = []
    if len(study.seeds) < 2:
        notes.append("pairs of seeds need a study with 2 or more seeds")
    if repair == "n/a":
        notes.append(
            f"REPAIR does not apply to {study.model.arch}: it has no BatchNorm, and REPAIR "
            "would need inserted normalisation layers"
        )
    pairs, instability = [], {}
    for spec in connectivity_specs(study):
        item = {"label": spec.label, **_status_fields(spec, store)}
        if isinstance(spec, ConnectivitySpec):
            run_b = spec.run_b
            item.update(
                pair="seeds" if spec.run_a.seed != run_b.seed else "same-init",
                run_a=spec.run_a.label,
                run_b=run_b.label,
                method=run_b.sparsity.method,
                sparsity=run_b.sparsity.sparsity,
                objective=run_b.train.objective,
                alignment=spec.alignment,
                repair=spec.repair,
            )
            if item["status"] == "cached":
                doc = api.get(spec, store=store, compute=False).read("connectivity.json")
                item.update(
                    {
                        k: doc[k]
                        for k in (
                            "bn",
                            "barriers",
                            "curve",
                            "endpoint_sparsity",
                            "union_sparsity",
                            "alignment_seconds",
                        )
                    }
                )
            pairs.append(item)
        else:
            run = spec.run
            group = instability.setdefault(
                spec_key(run),
                {**run.identity(), "points": []},
            )
            point = {"rewind_step": spec.rewind_step, **item}
            if item["status"] == "cached":
                doc = api.get(spec, store=store, compute=False).read("instability.json")
                point.update(barriers=doc["barriers"], curve=doc["curve"], bn=doc["bn"])
            group["points"].append(point)
    return {
        "settings": {
            "alphas": s.alphas,
            "train_subset": s.train_subset,
            "test_subset": s.test_subset,
            "alignments": list(s.alignments),
            "rewind_steps": list(s.rewind_steps),
            "instability_method": s.instability_method,
        },
        "repair": repair,
        "notes": notes,
        "pairs": pairs,
        "instability": list(instability.values()),
    }


def instability_fetches(spec: InstabilitySpec) -> list[RunSpec]:
    """The dense run of the same seed, whose rewind point a sparse run's copies start from."""
    if spec.run.sparsity.method == "dense":
        return []
    return [spec.run.replace(sparsity=SparsitySpec(method="dense", sparsity=0.0))]


ANALYSIS = Analysis(
    name="connectivity",
    kinds=(
        Kind("connectivity", ConnectivitySpec, compute_connectivity),
        Kind("instability", InstabilitySpec, compute_instability, fetches=instability_fetches),
    ),
    specs=connectivity_specs,
    summarize=summarize_connectivity,
    settings=ConnectivitySettings,
)
