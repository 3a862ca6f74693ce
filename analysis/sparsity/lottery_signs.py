"""``lottery-signs``: the winning ticket's mask and initial signs, constant magnitudes.

Zhou et al. 2019 ("Deconstructing Lottery Tickets: Zeros, Signs, and the
Supermask", Section 4, Figure 4, "rewind to sign, constant"): every kept
weight of a prunable layer is set to ``sign(w_i) * alpha`` with ``alpha`` the
standard deviation of that layer's initial weights; biases and buffers keep
their initial values; then it trains as the ticket did. ``w_i`` is the
ticket's rewind point (the initialisation for ``rewind_step = 0``, as in the
paper). Zhou et al. found the signs carry most of what the initialisation
contributes: this control comes close to the ticket where ``lottery-reinit``
does not.
"""

from __future__ import annotations

import torch

from analysis.sparsity.base import Masks, require_positive
from analysis.sparsity.lottery_controls import TicketControl
from analysis.training_types import RunContext


def signed_constant(state: dict[str, torch.Tensor], names: list[str]) -> dict[str, torch.Tensor]:
    """``state`` with each named weight replaced by ``sign(w) * std(w)`` (std over the layer)."""
    out = dict(state)
    for n in names:
        w = state[n]
        out[n] = torch.sign(w) * w.float().std().to(w.dtype)
    return out


class LotterySigns(TicketControl):
    """The ticket's mask and initial signs with a constant magnitude per layer (Zhou et al.)."""

    name = "lottery-signs"

    def check_sparsity(self, sparsity: float) -> None:
        """Needs a sparsity above 0."""
        require_positive(self.name, sparsity)

    def start(
        self, ctx: RunContext, rewind: dict[str, torch.Tensor], masks: Masks
    ) -> dict[str, torch.Tensor]:
        """The rewind point's signs at the layer's initial standard deviation."""
        return signed_constant(rewind, list(masks))
