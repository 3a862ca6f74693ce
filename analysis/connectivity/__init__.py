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

REPAIR (Jordan et al. 2022, "REPAIR: REnormalizing Permuted Activations for
Interpolation Repair") renormalises each interpolated channel so its mean and
std are the interpolation ``(1 - a) * stats_A + a * stats_B`` of the endpoints'
channel statistics. For BatchNorm networks we implement it at each BN's output
(the pre-activation REPAIR corrects): the interpolated BN's affine parameters
are set to ``weight = sign(gamma_a) * goal_std`` and ``bias = goal_mean`` and its
statistics reset, which is exactly REPAIR's renormalising layer folded into the
BN. As Jordan et al. note, on BN networks this is close to a plain statistics
reset; it differs where the aligned gammas disagree. For networks without
BatchNorm (mlp, lenet) REPAIR needs inserted normalisation layers, which
prunescope does not do: it does not apply, and the study summary says "n/a".

One concern per file:

- this file: the ``ANALYSIS`` record (kinds, settings, specs, summary), the
  package's one registration;
- ``kind``: settings, specs, the study's specs and its summary;
- ``barriers``: the barrier definitions and their spread;
- ``path``: interpolation, masks on the path, the evaluation data and the curve;
- ``alignment``: candidates from the matchers and the ``connectivity`` compute;
- ``instability``: the rewind start, the two copies and the ``instability`` compute.
"""

from analysis.api import Analysis, Kind
from analysis.batchnorm import (
    BN_BATCH,
    batchnorms,
    bn_output_stats,
    has_batchnorm,
    repair_bn,
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
from analysis.connectivity.instability import (
    compute_instability,
    copy_data_seed,
    instability_fetches,
    rewind_start,
    train_copies,
)
from analysis.connectivity.kind import (
    ALIGNMENTS,
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
    eval_data,
    interpolation_curve,
    kept_fraction,
    mix_weights,
    union_masks,
    zero_fraction,
)

ANALYSIS = Analysis(
    name="connectivity",
    kinds=(
        Kind(
            "connectivity",
            ConnectivitySpec,
            compute_connectivity,
            files={
                "connectivity.json": dict,
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
    ),
    specs=connectivity_specs,
    summarize=summarize_connectivity,
    settings=ConnectivitySettings,
)

__all__ = [
    "ALIGNMENTS",
    "ANALYSIS",
    "BARRIERS",
    "BN_BATCH",
    "MATCHING_RESTARTS",
    "ConnectivitySettings",
    "ConnectivitySpec",
    "EvalData",
    "InstabilitySpec",
    "accuracy_barrier",
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
    "check_settings",
    "compute_connectivity",
    "compute_instability",
    "connectivity_specs",
    "copy_data_seed",
    "curve_barriers",
    "error_barrier",
    "eval_data",
    "has_batchnorm",
    "instability_fetches",
    "interpolation_curve",
    "kept_fraction",
    "matching_record",
    "mix_weights",
    "repair_bn",
    "reset_bn_stats",
    "rewind_start",
    "spread",
    "summarize_connectivity",
    "train_copies",
    "union_masks",
    "zero_fraction",
]
