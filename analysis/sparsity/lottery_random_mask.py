"""``lottery-random-mask``: a random mask with the winning ticket's per-layer sparsity.

Frankle & Carbin 2019 ("The Lottery Ticket Hypothesis", Section 2): a random
sparse network with the layerwise pruning rates of the ticket, to show the
mask matters. Every layer keeps exactly as many weights as the ticket's
(a prerequisite run, see :mod:`analysis.sparsity.lottery_controls`), chosen
uniformly at random from the run's prune generator (CPU, seeded by the
spec). Deviation: the kept weights start from the ticket's own rewind point
(the original initialisation for ``rewind_step = 0``), not a fresh draw, so
this control changes the mask alone (``lottery-reinit`` changes the weights alone).
"""

from __future__ import annotations

import torch

from analysis.sparsity.base import Masks, random_masks, require_positive
from analysis.sparsity.lottery_controls import TicketControl
from analysis.training_types import RunContext, StoredRun


class LotteryRandomMask(TicketControl):
    """A random mask of the ticket's per-layer sparsity on the ticket's rewind point."""

    name = "lottery-random-mask"

    def check_sparsity(self, sparsity: float) -> None:
        """Needs a sparsity above 0."""
        require_positive(self.name, sparsity)

    def masks(self, ctx: RunContext, ticket: StoredRun) -> Masks:
        """Uniformly random masks keeping the ticket's count of weights in every layer."""
        shapes = {n: m.shape for n, m in ticket.masks.items()}
        densities = {n: float(m.float().mean()) for n, m in ticket.masks.items()}
        return random_masks(shapes, densities, ctx.generator("prune"))

    def start(
        self, ctx: RunContext, rewind: dict[str, torch.Tensor], masks: Masks
    ) -> dict[str, torch.Tensor]:
        """The ticket's rewind point."""
        return rewind
