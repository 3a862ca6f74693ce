"""``lottery``: iterative magnitude pruning with rewinding (the lottery ticket procedure).

Frankle & Carbin 2019 ("The Lottery Ticket Hypothesis"): train, prune a fraction
of the surviving weights by magnitude, reset the survivors to their initial
values, retrain; repeat. Frankle et al. 2020 ("Linear Mode Connectivity and the
Lottery Ticket Hypothesis") rewind to an early training step ``k`` instead of
initialisation, which is what makes the procedure work for deeper networks.

The rate per round is ``1 - (1 - sparsity) ** (1 / rounds)`` so ``rounds``
rounds end exactly at ``sparsity``. Round ``r`` is itself a run spec (the same
method at the sparsity of ``r`` rounds), fetched from the store, so every
intermediate ticket is cached and never retrained; round 0 is the study's dense
run. Rewinding to step ``k > 0`` needs the dense run to have snapshotted step
``k``: ``k`` must be in ``train.snapshot_steps`` (studies add it for you).
"""

from __future__ import annotations

from analysis.errors import SpecError
from analysis.sparsity.base import (
    Method,
    Param,
    apply_masks,
    magnitude_scores,
    masks_from_scores,
    require_positive,
    scope_param,
)
from analysis.specs import SparsitySpec
from analysis.train import MethodOutput, RunContext, state_of


def round_sparsity(final: float, rounds: int, r: int) -> float:
    """Sparsity after ``r`` of ``rounds`` rounds that end at ``final`` (rounded for clean keys)."""
    return round(1.0 - (1.0 - final) ** (r / rounds), 10)


class Lottery(Method):
    """Iterative magnitude pruning with rewinding to init or to step k."""

    name = "lottery"
    params = (
        Param("rounds", int, 3, "prune-rewind-retrain rounds", lo=1, hi=50),
        Param("rewind_step", int, 0, "step to rewind the survivors to (0: initialisation)", lo=0),
        scope_param("global"),
    )

    def check_sparsity(self, sparsity: float) -> None:
        """Needs a sparsity above 0."""
        require_positive(self.name, sparsity)

    def run(self, ctx: RunContext) -> MethodOutput:
        """Prune the previous round's trained weights, rewind, retrain."""
        s = ctx.spec.sparsity
        rounds, k = s.opt("rounds"), s.opt("rewind_step")
        if k and k not in ctx.spec.train.snapshot_steps:
            raise SpecError(
                "rewind_step",
                f"0 or one of train.snapshot_steps {list(ctx.spec.train.snapshot_steps)}",
                k,
                owner="method 'lottery'",
            )
        if rounds == 1:
            previous = ctx.get(ctx.dense_spec())
            prev_masks = None
        else:
            prev_spec = SparsitySpec(
                method="lottery",
                sparsity=round_sparsity(s.sparsity, rounds, rounds - 1),
                options=dict(s.options, rounds=rounds - 1),
            )
            previous = ctx.get(ctx.spec.replace(sparsity=prev_spec))
            prev_masks = previous.masks
        dense = ctx.get(ctx.dense_spec())
        rewind_state = dense.init_state if k == 0 else dense.trajectory[k]
        model = ctx.build()
        model.load_state_dict(previous.state)
        masks = masks_from_scores(
            magnitude_scores(model), s.sparsity, scope=s.opt("scope"), current=prev_masks
        )
        model.load_state_dict(rewind_state)
        apply_masks(model, masks)
        start = state_of(model)
        # After rewinding to step k, train the rest of the dense run's schedule: steps k..T,
        # the LR schedule continuing from step k (the data order restarts from the seed).
        total = max(1, len(ctx.data.train_x) // ctx.spec.train.batch_size) * ctx.spec.train.epochs
        fit = ctx.fit(
            model, masks, phase=f"round {rounds}", start_step=k, max_steps=max(total - k, 0)
        )
        notes = {
            "round": rounds,
            "rewind_step": k,
            "previous_round_test_acc": previous.metrics["test_acc"],
            "previous_round_sparsity": previous.metrics["achieved_sparsity"],
        }
        return MethodOutput(state_of(model), masks, fit.history, start, fit.snapshots, notes)
