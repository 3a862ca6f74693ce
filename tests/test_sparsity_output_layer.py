"""The ``output_layer`` option: the output layer kept out of the ranking, or pruned at half the rate.

Scores mimic a trained MLP whose output layer kept its small initialisation:
every output weight scores below every hidden weight, so a plain global
ranking at 90% removes all of it.
"""

from __future__ import annotations

import pytest
import torch

from analysis.errors import SpecError
from analysis.sparsity.base import (
    OUTPUT_LAYER,
    masks_from_scores,
    output_layer_sparsity,
    ranked_masks,
)
from analysis.sparsity.lottery import round_sparsity


def scores(seed: int = 0) -> dict[str, torch.Tensor]:
    """784-64-64-10 MLP scores; the output layer's are all smaller than the hidden ones."""
    g = torch.Generator().manual_seed(seed)
    return {
        "body.fc0.weight": 1.0 + torch.rand(64, 784, generator=g),
        "body.fc1.weight": 1.0 + torch.rand(64, 64, generator=g),
        OUTPUT_LAYER: torch.rand(10, 64, generator=g),
    }


def pruned(masks) -> dict[str, int]:
    """Pruned weights per layer."""
    return {n: int((~m).sum()) for n, m in masks.items()}


def ranked(sparsity: float, mode: str, **kw):
    """ranked_masks of :func:`scores` (global unless ``scope`` is given)."""
    kw.setdefault("scope", "global")
    return ranked_masks(scores(), sparsity, output_layer=mode, owner="test", **kw)


TOTAL = sum(s.numel() for s in scores().values())
HEAD = scores()[OUTPUT_LAYER].numel()


def test_prune_ranks_the_output_layer_away():
    """The failure the option exists for: a global ranking strips the output layer."""
    masks = ranked(0.9, "prune")
    assert not masks[OUTPUT_LAYER].any()
    assert sum(pruned(masks).values()) == round(0.9 * TOTAL)


@pytest.mark.parametrize("sparsity", [0.5, 0.9, 0.98])
def test_keep_leaves_the_output_layer_dense_and_the_total_exact(sparsity):
    masks = ranked(sparsity, "keep")
    assert masks[OUTPUT_LAYER].all()
    assert sum(pruned(masks).values()) == round(sparsity * TOTAL)
    # the hidden layers are ranked together: nothing pruned beats anything kept
    hidden = [n for n in masks if n != OUTPUT_LAYER]
    kept = torch.cat([scores()[n][masks[n]] for n in hidden])
    gone = torch.cat([scores()[n][~masks[n]] for n in hidden])
    assert gone.max() <= kept.min()


def test_half_prunes_the_output_layer_at_half_the_rate_one_shot():
    masks = ranked(0.9, "half")
    assert pruned(masks)[OUTPUT_LAYER] == round(0.45 * HEAD)
    assert sum(pruned(masks).values()) == round(0.9 * TOTAL)


def test_half_over_rounds_follows_frankle_and_carbin():
    """Rate p per round for the network, p/2 for the output layer; every round hits its total."""
    final, rounds = 0.9, 3
    rate = 1 - (1 - final) ** (1 / rounds)
    current = None
    for r in range(1, rounds + 1):
        target = round_sparsity(final, rounds, r)
        masks = ranked(target, "half", rounds=r, current=current)
        head = 1 - (1 - rate / 2) ** r
        assert output_layer_sparsity("half", target, r) == pytest.approx(head)
        assert abs(pruned(masks)[OUTPUT_LAYER] - head * HEAD) <= 1
        assert sum(pruned(masks).values()) == round(target * TOTAL)
        if current is not None:
            for n in masks:
                assert not (masks[n] & ~current[n]).any(), f"round {r}: {n} regrew"
        current = masks


def test_layerwise_keep_prunes_the_hidden_layers_at_one_higher_rate():
    masks = ranked(0.8, "keep", scope="layerwise")
    assert masks[OUTPUT_LAYER].all()
    rate = 0.8 * TOTAL / (TOTAL - HEAD)
    for n, m in masks.items():
        if n != OUTPUT_LAYER:
            assert abs(pruned(masks)[n] - rate * m.numel()) <= 1, n
    assert abs(sum(pruned(masks).values()) - round(0.8 * TOTAL)) <= len(masks)


def test_without_fixed_layers_the_ranking_is_unchanged():
    """Methods without the option (SNIP, SynFlow, GMP, ...) prune exactly as before."""
    for scope in ("global", "layerwise"):
        a = masks_from_scores(scores(), 0.7, scope=scope)
        b = masks_from_scores(scores(), 0.7, scope=scope, fixed={})
        assert all(torch.equal(a[n], b[n]) for n in a)
        assert ranked(0.7, "prune", scope=scope).keys() == a.keys()
        assert all(torch.equal(ranked(0.7, "prune", scope=scope)[n], a[n]) for n in a)


def test_a_sparsity_the_other_layers_cannot_hold_names_the_option():
    head_share = HEAD / TOTAL  # 0.0118: keeping it dense caps the total below 0.989
    with pytest.raises(SpecError) as info:
        ranked(1 - head_share / 2, "keep")
    message = str(info.value)
    assert "'output_layer'" in message and "'keep'" in message and "\n" not in message
