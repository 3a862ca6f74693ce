"""``l1-scratch``: the thin network of ``l1-structured``, trained from scratch (Li et al.'s control).

Li et al. 2017 ("Pruning Filters for Efficient ConvNets", Section 4.1, Table 1
"scratch-train"): the architecture that filter pruning leaves, trained from a
random initialisation instead of pruned and fine-tuned, to show what the
pruned weights contribute beyond the architecture. The masks are those of the
``l1-structured`` run with the same sparsity and options (a prerequisite read
from the store, never retrained): whole rows and the matching input columns,
so the masked network is the physically smaller one (``analysis.compression``
removes them) and trains as it would. It starts from a fresh seeded
initialisation (the run's second init seed, as ``lottery-reinit``: not the
dense run's initial weights, which would make it a structured lottery ticket)
and trains the spec's full schedule.
"""

from __future__ import annotations

from analysis.sparsity.base import Method, require_positive
from analysis.sparsity.finetune import FINETUNE_PARAMS
from analysis.sparsity.lottery_reinit import fresh_init
from analysis.specs import RunSpec, SparsitySpec
from analysis.training_types import MethodOutput, RunContext, apply_masks, state_of


def pruned_of(spec: RunSpec) -> RunSpec:
    """The ``l1-structured`` run whose architecture ``spec`` trains from scratch."""
    s = spec.sparsity
    return spec.replace(
        sparsity=SparsitySpec(method="l1-structured", sparsity=s.sparsity, options=s.options)
    )


class L1Scratch(Method):
    """The l1-structured run's thin architecture, trained from a fresh initialisation."""

    name = "l1-scratch"
    unit = "channels"
    params = (*FINETUNE_PARAMS,)

    def check_sparsity(self, sparsity: float) -> None:
        """Needs a sparsity above 0."""
        require_positive(self.name, sparsity)

    def prerequisites(self, spec: RunSpec) -> list[RunSpec]:
        """The l1-structured run of the same sparsity, options and seed."""
        return [pruned_of(spec)]

    def run(self, ctx: RunContext) -> MethodOutput:
        """Mask a fresh initialisation with the pruned run's masks; train the full schedule."""
        pruned = ctx.get(pruned_of(ctx.spec))
        model = ctx.build()
        model.load_state_dict(fresh_init(ctx))
        apply_masks(model, pruned.masks)
        init = state_of(model)
        fit = ctx.fit(model, pruned.masks, phase="scratch")
        notes = {
            "pruned_run": pruned_of(ctx.spec).label,
            "pruned_test_acc": pruned.metrics["test_acc"],
        }
        return MethodOutput(state_of(model), pruned.masks, fit.history, init, fit.snapshots, notes)
