"""Shared by the methods that prune a trained dense network and fine-tune it (magnitude, L1-structured)."""

from __future__ import annotations

from collections.abc import Callable

from torch import nn

from analysis.sparsity.base import Masks, Method, Param, dense_of
from analysis.specs import RunSpec
from analysis.training_types import MethodOutput, RunContext, apply_masks, state_of

FINETUNE_PARAMS = (
    Param("finetune_epochs", int, 5, "epochs of fine-tuning after pruning", lo=0, hi=10000),
    Param(
        "finetune_lr_scale",
        float,
        1.0,
        "fine-tuning LR as a fraction of the spec's (1.0: LR rewinding, Renda et al. 2020)",
        lo=1e-6,
        hi=10.0,
    ),
)


class PruneTrainedDense(Method):
    """Base of the methods that prune the trained dense run of the same seed and fine-tune it."""

    def prerequisites(self, spec: RunSpec) -> list[RunSpec]:
        """The dense run of the same seed (its trained weights are pruned)."""
        return [dense_of(spec)]


def prune_dense_and_finetune(
    ctx: RunContext, make_masks: Callable[[nn.Module], tuple[Masks, dict]]
) -> MethodOutput:
    """Load the dense run of this seed, mask it with ``make_masks(model) -> (masks, notes)``, fine-tune.

    Fine-tuning restarts the spec's optimizer and LR schedule for ``finetune_epochs``
    at ``finetune_lr_scale`` times its learning rate.
    """
    s = ctx.spec.sparsity
    dense = ctx.get(dense_of(ctx.spec))
    model = ctx.build()
    model.load_state_dict(dense.state)
    masks, notes = make_masks(model)
    apply_masks(model, masks)
    fit = ctx.fit(
        model,
        masks,
        phase="fine-tune",
        epochs=s.opt("finetune_epochs"),
        lr_scale=s.opt("finetune_lr_scale"),
    )
    history = [dict(h, phase="fine-tune") for h in fit.history]
    return MethodOutput(state_of(model), masks, history, dense.init_state, fit.snapshots, notes)
