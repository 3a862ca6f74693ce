"""``dense``: the unpruned baseline every other method is compared with."""

from __future__ import annotations

from analysis.errors import SpecError
from analysis.sparsity.base import Method
from analysis.training_types import MethodOutput, RunContext, state_of


class Dense(Method):
    """Train the network with no mask."""

    name = "dense"

    def check_sparsity(self, sparsity: float) -> None:
        """A dense run has sparsity 0."""
        if sparsity != 0:
            raise SpecError("sparsity", "0 for method 'dense'", sparsity, owner="method 'dense'")

    def run(self, ctx: RunContext) -> MethodOutput:
        """Train from the seeded initialisation."""
        model = ctx.build()
        init = state_of(model)
        fit = ctx.fit(model)
        return MethodOutput(state_of(model), {}, fit.history, init, fit.snapshots)
