"""``lottery-criterion``: the lottery procedure with a mask criterion other than final magnitude.

Zhou et al. 2019 ("Deconstructing Lottery Tickets: Zeros, Signs, and the
Supermask", Section 3 and Figure 2) keep the weights that score highest under
a criterion of the initial weight ``w_i`` and the trained weight ``w_f``:

- ``magnitude_increase``: ``|w_f| - |w_i|`` (the weights that grew most);
- ``movement``: ``|w_f - w_i|`` (the weights that moved most);
- ``large_final_same_sign``: ``max(0, w_f * sign(w_i))`` (large trained weights that
  kept their initial sign; the criterion of their supermasks).

``large_final`` (``|w_f|``) is the plain ``lottery`` method. Everything else is
as there: iterative rounds, each a run fetched from the store, rewinding to
initialisation or to step ``k``, the output layer kept out of the ranking by
default. Deviation: ``w_i`` is the rewind point (the dense run's weights at
step ``k``, the weights the survivors are reset to), which is the
initialisation that Zhou et al. use when ``rewind_step = 0``. Scores are
shifted by their minimum over all ranked layers (a monotone map, so the
ranking is unchanged) because the mask utilities rank non-negative scores.
"""

from __future__ import annotations

import torch

from analysis.sparsity.base import Param
from analysis.sparsity.lottery import Lottery
from analysis.specs import RunSpec

#: The criteria of Zhou et al. 2019 beyond ``large_final`` (which is ``lottery`` itself).
CRITERIA = ("magnitude_increase", "movement", "large_final_same_sign")


def criterion_score(criterion: str, wf: torch.Tensor, wi: torch.Tensor) -> torch.Tensor:
    """The raw score of one layer under ``criterion`` (may be negative). wf, wi: same shape.

    Raises KeyError for an unknown criterion.
    """
    if criterion == "large_final":
        return wf.abs()
    if criterion == "magnitude_increase":
        return wf.abs() - wi.abs()
    if criterion == "movement":
        return (wf - wi).abs()
    if criterion == "large_final_same_sign":
        return torch.clamp(wf * torch.sign(wi), min=0.0)
    raise KeyError(criterion)


def criterion_scores(
    criterion: str, final: dict[str, torch.Tensor], initial: dict[str, torch.Tensor]
) -> dict[str, torch.Tensor]:
    """Keep scores (higher = keep) of ``criterion``: {name: (weight shape)}, all >= 0.

    final, initial: {name: weight} of the same shapes (``initial`` is moved to each
    final weight's device). Shifted by the minimum over all layers when that is
    negative (one monotone map for every layer: the global ranking is unchanged).
    """
    raw = {
        n: criterion_score(criterion, wf.detach().float(), initial[n].to(wf.device).float())
        for n, wf in final.items()
    }
    low = min(float(s.min()) for s in raw.values()) if raw else 0.0
    return {n: s - low if low < 0 else s for n, s in raw.items()}


class LotteryCriterion(Lottery):
    """Iterative pruning with rewinding, ranking by a criterion of init and trained weights."""

    name = "lottery-criterion"
    params = (
        *Lottery.params,
        Param(
            "criterion",
            str,
            "magnitude_increase",
            "which weights to keep (Zhou et al. 2019)",
            options=CRITERIA,
        ),
    )

    def scores(
        self, spec: RunSpec, trained: torch.nn.Module, rewind: dict[str, torch.Tensor]
    ) -> dict[str, torch.Tensor]:
        """The scores of ``spec``'s criterion: trained weights against the rewind point."""
        params = dict(trained.named_parameters())
        final = {n: params[n] for n in trained.prunable_names()}
        return criterion_scores(spec.sparsity.opt("criterion"), final, rewind)
