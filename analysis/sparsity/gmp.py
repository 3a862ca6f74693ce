"""``gmp``: gradual magnitude pruning during training (Zhu & Gupta 2017, "To prune, or not to prune").

Sparsity follows the cubic schedule
``s_t = s_f + (s_i - s_f) * (1 - (t - t_0) / (n * dt))**3`` for ``t`` in
``[t_0, t_0 + n*dt]``, pruning every ``dt`` steps by weight magnitude; outside
that window the mask is held. We take ``s_i = 0``, ``t_0`` and the end as
fractions of the run's steps, and ``dt`` in steps. The last pruning step sets
exactly ``s_f``. Zhu & Gupta prune layerwise; ``scope='global'`` is offered too.

The output layer is left dense by default (``output_layer = "keep"``, as the
magnitude and lottery methods and open_lth do): pruned layerwise at 90% with the
rest, the 10-class head of the demo MLP cost 2.3 points of test accuracy where
magnitude pruning lost 1.3. ``"half"`` and ``"prune"`` are offered (see
:func:`~analysis.sparsity.base.output_layer_param`).
"""

from __future__ import annotations

import torch

from analysis.errors import SpecError
from analysis.sparsity.base import (
    Method,
    Param,
    kept_dense,
    output_layer_param,
    ranked_masks,
    require_positive,
    scope_param,
)
from analysis.training_types import Callback, MethodOutput, RunContext, TrainState, state_of


def cubic_sparsity(step: int, begin: int, end: int, final: float, initial: float = 0.0) -> float:
    """Zhu & Gupta's target sparsity at ``step`` (constant before ``begin`` and after ``end``)."""
    if step >= end:  # first: with begin == end the (one-shot) prune must reach final
        return final
    if step <= begin:
        return initial
    frac = (step - begin) / (end - begin)
    return final + (initial - final) * (1.0 - frac) ** 3


class GradualPruning(Callback):
    """Re-prune by magnitude every ``every`` steps along the cubic schedule."""

    def __init__(
        self,
        final: float,
        begin: int,
        end: int,
        every: int,
        scope: str,
        output_layer: str = "prune",
        keep: frozenset[str] = frozenset(),
    ):
        self.final, self.begin, self.end, self.every, self.scope = final, begin, end, every, scope
        self.output_layer, self.keep = output_layer, keep
        self.log: list[tuple[int, float]] = []

    def _prune(self, state: TrainState) -> None:
        target = cubic_sparsity(state.step, self.begin, self.end, self.final)
        params = dict(state.model.named_parameters())
        scores = {n: params[n].detach().abs() for n in state.masks}
        new = ranked_masks(
            scores,
            target,
            scope=self.scope,
            output_layer=self.output_layer,
            owner="method 'gmp'",
            current=state.masks,
            keep=self.keep,
        )
        state.masks.update(new)
        # momentum/Adam state of newly pruned weights is cleared so it cannot push them back
        for name, mask in new.items():
            st = state.optimizer.state.get(params[name], {})
            for buf in st.values():
                if isinstance(buf, torch.Tensor) and buf.shape == mask.shape:
                    buf.mul_(mask.to(buf.dtype))
        with torch.no_grad():
            for name, mask in new.items():
                params[name].mul_(mask.to(params[name].dtype))
        self.log.append((state.step, target))

    def after_step(self, state: TrainState) -> None:
        """Prune on schedule steps inside the window, and exactly at its end."""
        if self.begin <= state.step <= self.end and (
            (state.step - self.begin) % self.every == 0 or state.step == self.end
        ):
            self._prune(state)


class GradualMagnitude(Method):
    """Gradual magnitude pruning with the cubic schedule."""

    name = "gmp"
    params = (
        Param("begin", float, 0.1, "start of pruning, as a fraction of training", lo=0.0, hi=1.0),
        Param(
            "end",
            float,
            0.7,
            "end of pruning (final sparsity reached), fraction of training",
            lo=0.0,
            hi=1.0,
        ),
        Param("every", int, 50, "prune every this many steps", lo=1, hi=10**6),
        scope_param("layerwise"),
        output_layer_param("keep"),
    )

    def check_sparsity(self, sparsity: float) -> None:
        """Needs a sparsity above 0."""
        require_positive(self.name, sparsity)

    def check_options(self, options: dict) -> None:
        """The pruning window must not end before it begins."""
        if options["end"] < options["begin"]:
            raise SpecError(
                "end", f"at least begin ({options['begin']})", options["end"], owner="method 'gmp'"
            )

    def run(self, ctx: RunContext) -> MethodOutput:
        """Train from init while pruning along the schedule."""
        s = ctx.spec.sparsity
        model = ctx.build()
        init = state_of(model)
        steps = ctx.total_steps()
        begin = int(round(s.opt("begin") * steps))
        end = max(begin, int(round(min(s.opt("end"), 1.0) * steps)))
        pruner = GradualPruning(
            s.sparsity,
            begin,
            max(end, 1),
            s.opt("every"),
            s.opt("scope"),
            s.opt("output_layer"),
            frozenset(kept_dense(s, model.prunable_names())),
        )
        masks = {
            n: torch.ones_like(p, dtype=torch.bool)
            for n, p in model.named_parameters()
            if n in model.prunable_names()
        }
        fit = ctx.fit(model, masks, callbacks=[pruner])
        notes = {"schedule": pruner.log[-50:], "begin_step": begin, "end_step": end}
        return MethodOutput(state_of(model), fit.masks, fit.history, init, fit.snapshots, notes)
