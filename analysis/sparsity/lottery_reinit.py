"""``lottery-reinit``: the winning ticket's mask on a fresh random initialisation.

Frankle & Carbin 2019 ("The Lottery Ticket Hypothesis", Section 2, Figure 4):
the control that shows the initialisation matters. The ticket's mask (a
prerequisite run, see :mod:`analysis.sparsity.lottery_controls`) is kept; every
weight and buffer is drawn afresh from the architecture's own initialiser, with
a second init seed of the run (``sub_seed(seed, "init", 1)``, drawn on the CPU,
so the same numbers on every device); then it trains as the ticket did. With
``rewind_step = k > 0`` it trains steps ``k .. T`` of the schedule like the
ticket (same budget), from the fresh weights.
"""

from __future__ import annotations

import torch

from analysis.sparsity.base import Masks, require_positive
from analysis.sparsity.lottery_controls import TicketControl
from analysis.training_types import RunContext, state_of


def fresh_init(ctx: RunContext) -> dict[str, torch.Tensor]:
    """A second seeded initialisation of the run's network (CPU state dict)."""
    from analysis.models import build_for

    seed = ctx.generator("init", 1).initial_seed()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = build_for(ctx.spec.model, ctx.data.info)
    return state_of(model)


class LotteryReinit(TicketControl):
    """The ticket's mask, randomly re-initialised (Frankle & Carbin's control)."""

    name = "lottery-reinit"

    def check_sparsity(self, sparsity: float) -> None:
        """Needs a sparsity above 0."""
        require_positive(self.name, sparsity)

    def start(
        self, ctx: RunContext, rewind: dict[str, torch.Tensor], masks: Masks
    ) -> dict[str, torch.Tensor]:
        """A fresh initialisation, independent of the ticket's."""
        return fresh_init(ctx)
