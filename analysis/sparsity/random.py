"""``random``: a random mask at initialisation, then training (the sanity baseline).

Layerwise ``uniform`` prunes every layer to the target sparsity; ``erk`` uses the
Erdős–Rényi-Kernel layer densities of Evci et al. 2020 ("Rigging the Lottery"),
which keep small layers denser. Within a layer the kept weights are uniformly
random (Liu et al. 2022, "The unreasonable effectiveness of random pruning").
"""

from __future__ import annotations

from analysis.sparsity.base import (
    Method,
    Param,
    erk_densities,
    kept_dense,
    random_masks,
    require_positive,
)
from analysis.training_types import MethodOutput, RunContext, apply_masks, state_of


class Random(Method):
    """Random pruning at init, layerwise uniform or ERK."""

    name = "random"
    params = (Param("distribution", str, "uniform", "layer densities", options=("uniform", "erk")),)

    def check_sparsity(self, sparsity: float) -> None:
        """Needs a sparsity above 0."""
        require_positive(self.name, sparsity)

    def run(self, ctx: RunContext) -> MethodOutput:
        """Draw the mask from the run's prune generator, then train."""
        s = ctx.spec.sparsity
        model = ctx.build()
        params = dict(model.named_parameters())
        shapes = {n: params[n].shape for n in model.prunable_names()}
        keep = kept_dense(s, model.prunable_names())
        # Layers kept dense are out of the count: the others are pruned to the sparsity.
        rest = {n: shape for n, shape in shapes.items() if n not in keep}
        density = 1.0 - s.sparsity
        if s.opt("distribution") == "erk":
            densities = erk_densities(rest, density)
        else:
            densities = {n: density for n in rest}
        densities.update({n: 1.0 for n in keep})
        masks = random_masks(shapes, densities, ctx.generator("prune"))
        apply_masks(model, masks)
        init = state_of(model)
        fit = ctx.fit(model, masks)
        return MethodOutput(state_of(model), masks, fit.history, init, fit.snapshots)
