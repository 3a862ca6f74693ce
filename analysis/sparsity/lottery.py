"""``lottery``: iterative magnitude pruning with rewinding (the lottery ticket procedure).

Frankle & Carbin 2019 ("The Lottery Ticket Hypothesis"): train, prune a fraction
of the surviving weights by magnitude, reset the survivors to their initial
values, retrain; repeat. Frankle et al. 2020 ("Linear Mode Connectivity and the
Lottery Ticket Hypothesis") rewind to an early training step ``k`` instead of
initialisation, which is what makes the procedure work for deeper networks.

The rate per round is ``1 - (1 - sparsity) ** (1 / rounds)`` so ``rounds``
rounds end exactly at ``sparsity``. A study entry that lists several levels
(``sparsities = [0.5, 0.8, 0.9]``, or a ladder) is one pruning chain per seed:
its first level is reached in ``rounds`` rounds, each further level is one more
round pruning the level before it (the ``chain`` option lists the earlier
levels, so level k's key is that of round k of the chain, computed once and
shared; Frankle & Carbin's own figures are read off one chain this way). Round ``r`` is itself a run spec (the same
method at the sparsity of ``r`` rounds), fetched from the store, so every
intermediate ticket is cached and never retrained; round 1 prunes the study's
dense run.

By default the output layer is left out of the global ranking
(``output_layer = "keep"``: open_lth's ``pruning_layers_to_ignore = 'fc.weight'``,
its default for the MNIST LeNet and CIFAR VGG); ``"half"`` prunes it at half the
per-round rate as Frankle & Carbin 2019 do (their LeNet and Conv networks).
Ranked with the rest, the output layer (small default initialisation) was
removed entirely at 90% on the demo MLP.

The rewind point (the dense run's weights at step ``k``) is replayed, not read
from the dense run: every round rebuilds the seeded initialisation and trains
it for ``k`` steps with the dense run's own schedule, data order and seed
(``fit(stop_step=k)``), which gives the dense run's step-``k`` weights exactly
on the same device and thread count (tests/test_sparsity_rewind.py; elsewhere
up to the floating-point reduction order). Reading a snapshot instead needed
``k`` in the dense run's ``train.snapshot_steps``, so adding a lottery entry
re-keyed, and retrained, the dense run and every other run of the study. A
replay costs ``k`` steps per round, about ``k / T`` of a round: on the demo MLP
on digits (784-512-512-10, T = 100 steps, one thread) a full run took 4.1 s, a
replay to step 20 0.7 s and to step 50 2.1 s (best of 3; ``fit(stop_step=k)``
against ``fit()``). For the CIFAR-10 ResNet-20 study (k = 500 of 23 400 steps)
that is about 2% per round.

On digits at 90% (assets/studies/demo.toml with ``data.name = "digits"``) the
default reaches 98.1% / 97.8% test accuracy (seeds 0 / 1) where ranking the
output layer with the rest gave 24.5% / 11.4%.
"""

from __future__ import annotations

import dataclasses

import torch

from analysis.errors import SpecError
from analysis.sparsity.base import (
    Method,
    Param,
    dense_of,
    kept_dense,
    magnitude_scores,
    output_layer_param,
    ranked_masks,
    require_positive,
    scope_param,
)
from analysis.specs import RunSpec, SparsitySpec
from analysis.training_types import MethodOutput, RunContext, apply_masks, state_of


def round_sparsity(final: float, rounds: int, r: int) -> float:
    """Sparsity after ``r`` of ``rounds`` rounds that end at ``final`` (rounded for clean keys)."""
    return round(1.0 - (1.0 - final) ** (r / rounds), 10)


def chain_levels(text: str) -> tuple[float, ...]:
    """The earlier levels a ``chain`` option lists (``"0.5,0.8"`` -> (0.5, 0.8))."""
    return tuple(float(x) for x in text.split(",")) if text else ()


def previous_round(spec: RunSpec) -> RunSpec:
    """Round ``rounds - 1`` of the chain that ``spec`` ends (``spec`` must have rounds > 1)."""
    s = spec.sparsity
    rounds, chain = s.opt("rounds"), s.opt("chain", "")
    changes: dict = {"rounds": rounds - 1}
    if chain:
        # The chain's last earlier level, written as it was (its float is the exact key).
        *earlier, last = chain.split(",")
        sparsity = float(last)
        changes["chain"] = ",".join(earlier)
    else:
        sparsity = round_sparsity(s.sparsity, rounds, rounds - 1)
    options = {**dict(s.options), **changes}
    if not options.get("chain", "x"):
        del options["chain"]  # the option's default is left out of the key
    return spec.replace(
        sparsity=dataclasses.replace(s, sparsity=sparsity, options=tuple(sorted(options.items())))
    )


def rewind_point(ctx: RunContext, step: int) -> dict[str, torch.Tensor]:
    """The dense run's weights (state_dict) at ``step``: its seeded init, trained ``step`` steps.

    The replay runs the dense run's own loop (schedule of the full run, data
    order and seed) and stops after ``step``, so it is that run's step-``step`` state.
    """
    model = ctx.build()
    if step:
        ctx.fit(model, phase=f"replay to step {step}", stop_step=step)
    return state_of(model)


class Lottery(Method):
    """Iterative magnitude pruning with rewinding to init or to step k."""

    name = "lottery"
    params = (
        Param("rounds", int, 3, "prune-rewind-retrain rounds", lo=1, hi=50),
        Param("rewind_step", int, 0, "step to rewind the survivors to (0: initialisation)", lo=0),
        scope_param("global"),
        output_layer_param("keep"),
        Param(
            "chain",
            str,
            "",
            "the chain's earlier levels (set by a study entry listing several levels)",
            omit_default=True,
        ),
    )

    def check_sparsity(self, sparsity: float) -> None:
        """Needs a sparsity above 0."""
        require_positive(self.name, sparsity)

    def check_options(self, options: dict) -> None:
        """``chain``: increasing sparsities in (0, 1), fewer than ``rounds``."""
        owner = f"method {self.name!r}"
        try:
            levels = chain_levels(options["chain"])
        except ValueError:
            raise SpecError(
                "chain", "comma-separated sparsities", options["chain"], owner=owner
            ) from None
        ok = all(0.0 < a < b < 1.0 for a, b in zip(levels, levels[1:], strict=False)) and (
            not levels or 0.0 < levels[0] < 1.0
        )
        if not ok or len(levels) >= options["rounds"]:
            raise SpecError(
                "chain",
                f"increasing sparsities in (0, 1), fewer than rounds = {options['rounds']}",
                options["chain"],
                owner=owner,
            )

    def level_specs(self, levels: list[float], options: dict) -> list[SparsitySpec]:
        """One chain: the lowest level in ``rounds`` rounds, each further level one more round."""
        levels = sorted(levels)
        rounds = options.get("rounds", 3)
        return [
            SparsitySpec(
                method=self.name,
                sparsity=level,
                options={
                    **options,
                    "rounds": rounds + k,
                    "chain": ",".join(repr(x) for x in levels[:k]),
                },
            )
            for k, level in enumerate(levels)
        ]

    def check_run(self, spec: RunSpec, steps: int) -> None:
        """The rewind step must be one of the ``steps`` steps the run trains (0 to steps - 1)."""
        levels = chain_levels(spec.sparsity.opt("chain", ""))
        if levels and not levels[-1] < spec.sparsity.sparsity:
            raise SpecError(
                "chain",
                f"earlier levels below the sparsity {spec.sparsity.sparsity}",
                spec.sparsity.opt("chain"),
                owner=f"method {self.name!r}",
            )
        k = spec.sparsity.opt("rewind_step")
        if k > max(steps - 1, 0):
            raise SpecError(
                "rewind_step",
                f"an int in the range [0, {max(steps - 1, 0)}] (the run trains {steps} steps)",
                k,
                owner=f"method {self.name!r}",
            )

    def prerequisites(self, spec: RunSpec) -> list[RunSpec]:
        """Round 1 prunes the dense run of the seed; round r > 1 the ticket of round r - 1."""
        if spec.sparsity.opt("rounds") == 1:
            return [dense_of(spec)]
        return [previous_round(spec)]

    def scores(
        self, spec: RunSpec, trained: torch.nn.Module, rewind: dict[str, torch.Tensor]
    ) -> dict[str, torch.Tensor]:
        """Keep scores {name: (weight shape)} of the prunable weights: the trained weights'
        magnitude |w_f| (``rewind``, the weights the survivors go back to, is unused here)."""
        return magnitude_scores(trained)

    def run(self, ctx: RunContext) -> MethodOutput:
        """Prune the previous round's trained weights, rewind, retrain."""
        s = ctx.spec.sparsity
        rounds, k = s.opt("rounds"), s.opt("rewind_step")
        total = ctx.total_steps()
        self.check_run(ctx.spec, total)
        (previous_spec,) = self.prerequisites(ctx.spec)
        previous = ctx.get(previous_spec)
        model = ctx.build()
        model.load_state_dict(previous.state)
        rewind = rewind_point(ctx, k)
        masks = ranked_masks(
            self.scores(ctx.spec, model, rewind),
            s.sparsity,
            scope=s.opt("scope"),
            output_layer=s.opt("output_layer"),
            owner=f"method {self.name!r}",
            rounds=rounds,
            chain=chain_levels(s.opt("chain", "")),
            current=previous.masks or None,
            keep=kept_dense(s, model.prunable_names()),
        )
        model.load_state_dict(rewind)
        apply_masks(model, masks)
        start = state_of(model)
        # After rewinding to step k, train the rest of the dense run's schedule: steps k..T,
        # the LR schedule continuing from step k (the data order restarts from the seed).
        fit = ctx.fit(model, masks, phase=f"round {rounds}", start_step=k, max_steps=total - k)
        notes = {
            "round": rounds,
            "rewind_step": k,
            "previous_round_test_acc": previous.metrics["test_acc"],
            "previous_round_sparsity": previous.metrics["achieved_sparsity"],
        }
        return MethodOutput(state_of(model), masks, fit.history, start, fit.snapshots, notes)
