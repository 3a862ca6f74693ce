"""Mode connectivity: loss and accuracy along the straight line between two networks.

Kinds:

- ``connectivity``: two runs of the same data and architecture (two seeds, or a
  dense run and a pruned run of one seed), B optionally aligned to A first by
  a permutation of its hidden units (``naive``: none; ``weight``: Git Re-Basin
  weight matching, best of several seeded visiting orders; ``activation``:
  activation/correlation matching; see ``analysis.permutation``). At every
  alpha of a grid on [0, 1] (both ends included) the network
  ``(1 - alpha) * A + alpha * P(B)`` (:func:`mix_weights`) is evaluated on a
  fixed, seeded training subset and on the test set (loss and accuracy).
  Networks with BatchNorm get their BN statistics reset on the training subset
  at every alpha, endpoints included, so the whole curve is treated alike
  (``analysis.batchnorm``; the interpolated running statistics are
  meaningless and collapse the variance, Jordan et al. 2022). The ``repair``
  variant applies REPAIR instead. The rule used is recorded in the result.
- ``instability``: the linear mode connectivity / instability test of Frankle
  et al. 2020: two copies trained from one rewind point with different data
  orders, and the barrier between them.
- ``curve``: a quadratic Bezier curve or polygonal chain between the two ends
  of a pair (Garipov et al. 2018), its bends trained to minimise the expected
  loss along it; evaluated beside the straight line.

REPAIR (Jordan et al. 2022, "REPAIR: REnormalizing Permuted Activations for
Interpolation Repair") renormalises each hidden unit's pre-activation (every
ReLU's input, residual junctions included) so its mean and std on the
training subset are the interpolation ``(1 - a) * stats_A + a * stats_B`` of the
endpoints' statistics, for every architecture, with or without BatchNorm
(``repair``). The REPAIR variant of a pair also stores the variance collapse at
alpha 0.5: per layer, the interpolated network's std over the endpoints'
average, before and after REPAIR.

One concern per file:

- this file: the ``ANALYSIS`` record (kinds, settings, specs, summary), the
  package's one registration;
- ``kind``: settings, specs, the study's specs and its summary;
- ``barriers``: the barrier definitions and their spread;
- ``path``: interpolation, masks on the path, the evaluation data and the curve;
- ``repair``: REPAIR's statistics, corrections and the variance collapse;
- ``alignment``: candidates from the matchers and the ``connectivity`` compute;
- ``instability``: the rewind start, the two copies and the ``instability`` compute;
- ``curves``: the ``curve`` kind (spec, training, evaluation), the part's specs and summary.
"""

from analysis.api import Analysis, Kind
from analysis.batchnorm import (
    BN_BATCH,
    batchnorms,
    bn_output_stats,
    has_batchnorm,
    reset_bn_stats,
)
from analysis.connectivity.alignment import (
    align,
    check_same_function,
    compute_connectivity,
    matching_record,
)
from analysis.connectivity.barriers import (
    BARRIERS,
    accuracy_barrier,
    barrier_entezari,
    barrier_rebasin,
    barrier_spread,
    curve_barriers,
    error_barrier,
    spread,
)
from analysis.connectivity.curves import (
    CurveSpec,
    coefficients,
    compute_curve,
    curve_specs,
    study_specs,
    summarize,
)
from analysis.connectivity.instability import (
    compute_instability,
    copy_data_seed,
    instability_fetches,
    rewind_start,
    train_copies,
)
from analysis.connectivity.kind import (
    ALIGNMENTS,
    CURVES,
    MATCHING_RESTARTS,
    ConnectivitySettings,
    ConnectivitySpec,
    InstabilitySpec,
    arch_has_batchnorm,
    check_alphas,
    check_rewind_step,
    check_settings,
    connectivity_specs,
    summarize_connectivity,
)
from analysis.connectivity.path import (
    EvalData,
    ensemble_record,
    eval_data,
    interpolation_curve,
    kept_fraction,
    mix_weights,
    union_masks,
    zero_fraction,
)
from analysis.connectivity.repair import (
    activation_stats,
    repair_corrections,
    repair_points,
    variance_collapse,
)

ANALYSIS = Analysis(
    name="connectivity",
    kinds=(
        Kind(
            "connectivity",
            ConnectivitySpec,
            compute_connectivity,
            files={
                # "variance": entries from before REPAIR covered every network are recomputed
                "connectivity.json": ("curve", "barriers", "variance", "ensemble", "midpoint"),
                "permutation.safetensors": object,
            },
        ),
        Kind(
            "instability",
            InstabilitySpec,
            compute_instability,
            fetches=instability_fetches,
            files={
                "instability.json": dict,
                "copy_a.safetensors": object,
                "copy_b.safetensors": object,
            },
        ),
        Kind(
            "curve",
            CurveSpec,
            compute_curve,
            files={
                "curve.json": ("curve", "barriers", "line", "history"),
                "bends.safetensors": object,
            },
        ),
    ),
    specs=study_specs,
    summarize=summarize,
    settings=ConnectivitySettings,
)

__all__ = [
    "ALIGNMENTS",
    "ANALYSIS",
    "BARRIERS",
    "BN_BATCH",
    "CURVES",
    "CurveSpec",
    "MATCHING_RESTARTS",
    "ConnectivitySettings",
    "ConnectivitySpec",
    "EvalData",
    "InstabilitySpec",
    "accuracy_barrier",
    "activation_stats",
    "align",
    "arch_has_batchnorm",
    "barrier_entezari",
    "barrier_rebasin",
    "barrier_spread",
    "batchnorms",
    "bn_output_stats",
    "check_alphas",
    "check_rewind_step",
    "check_same_function",
    "coefficients",
    "compute_curve",
    "curve_specs",
    "check_settings",
    "compute_connectivity",
    "compute_instability",
    "connectivity_specs",
    "copy_data_seed",
    "curve_barriers",
    "ensemble_record",
    "error_barrier",
    "eval_data",
    "has_batchnorm",
    "instability_fetches",
    "interpolation_curve",
    "kept_fraction",
    "matching_record",
    "mix_weights",
    "repair_corrections",
    "repair_points",
    "reset_bn_stats",
    "rewind_start",
    "spread",
    "study_specs",
    "summarize",
    "summarize_connectivity",
    "train_copies",
    "union_masks",
    "variance_collapse",
    "zero_fraction",
]
