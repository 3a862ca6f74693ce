"""What the lottery-ticket controls share: the ticket they test, and one retraining recipe.

A control is a run of its own (``lottery-reinit``, ``lottery-random-mask``,
``lottery-signs``) that changes one ingredient of a winning ticket and trains
it exactly as the ticket was trained (from the rewind step ``k`` for the rest
of the dense run's schedule, the same data order and seed). The ticket is
the ``lottery`` run with the same sparsity and options (or, with ``criterion``
other than ``large_final``, the ``lottery-criterion`` run of that criterion):
a prerequisite read from the store, never retrained. Frankle & Carbin 2019
("The Lottery Ticket Hypothesis", Section 2, Figures 3-4) compare a ticket
with its random reinitialisation and with a random sparse network of the
same layerwise sparsity; Zhou et al. 2019 ("Deconstructing Lottery Tickets",
Section 4) keep its mask and signs and replace the magnitudes by a constant.
"""

from __future__ import annotations

from abc import abstractmethod

import torch

from analysis.sparsity.base import KEEP_DENSE, Masks, Param
from analysis.sparsity.lottery import Lottery, rewind_point
from analysis.sparsity.lottery_criterion import CRITERIA
from analysis.specs import RunSpec, SparsitySpec
from analysis.training_types import MethodOutput, RunContext, StoredRun, apply_masks, state_of

#: The ticket a control tests: ``large_final`` is the plain lottery run.
TICKET_CRITERIA = ("large_final", *CRITERIA)


def ticket_of(spec: RunSpec) -> RunSpec:
    """The winning-ticket run that control ``spec`` tests (same sparsity, seed and options)."""
    s = spec.sparsity
    names = {p.name for p in (*Lottery.params, KEEP_DENSE)}  # the chain and kept layers too
    options = {k: v for k, v in s.options if k in names}
    criterion = s.opt("criterion")
    method = "lottery"
    if criterion != "large_final":
        method, options["criterion"] = "lottery-criterion", criterion
    ticket = SparsitySpec(method=method, sparsity=s.sparsity, options=options)
    return spec.replace(sparsity=ticket)


class TicketControl(Lottery):
    """A control of a winning ticket: its options name the ticket; :meth:`start` and
    :meth:`masks` say what the control changes."""

    params = (
        *Lottery.params,
        Param(
            "criterion",
            str,
            "large_final",
            "mask criterion of the ticket tested (large_final: the lottery run)",
            options=TICKET_CRITERIA,
        ),
    )

    def prerequisites(self, spec: RunSpec) -> list[RunSpec]:
        """The winning ticket this control tests."""
        return [ticket_of(spec)]

    def masks(self, ctx: RunContext, ticket: StoredRun) -> Masks:
        """The control's masks (default: the ticket's own)."""
        return ticket.masks

    @abstractmethod
    def start(
        self, ctx: RunContext, rewind: dict[str, torch.Tensor], masks: Masks
    ) -> dict[str, torch.Tensor]:
        """The state the control trains from (before ``masks`` apply); ``rewind``: the
        ticket's rewind point (the dense run's weights at step ``k``), a CPU state dict."""

    def run(self, ctx: RunContext) -> MethodOutput:
        """Train the control's masked start for the ticket's steps ``k .. T``."""
        spec = ctx.spec
        k, total = spec.sparsity.opt("rewind_step"), ctx.total_steps()
        self.check_run(spec, total)
        ticket = ctx.get(ticket_of(spec))
        masks = self.masks(ctx, ticket)
        model = ctx.build()
        model.load_state_dict(self.start(ctx, rewind_point(ctx, k), masks))
        apply_masks(model, masks)
        start = state_of(model)
        fit = ctx.fit(model, masks, phase=self.name, start_step=k, max_steps=total - k)
        notes = {
            "ticket": ticket_of(spec).label,
            "ticket_test_acc": ticket.metrics["test_acc"],
            "rewind_step": k,
        }
        return MethodOutput(state_of(model), masks, fit.history, start, fit.snapshots, notes)
