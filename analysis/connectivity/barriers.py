"""Barriers of a loss or accuracy curve on a grid of alphas on [0, 1], and their spread.

For a curve ``L`` on the grid ``alpha`` (both ends included):

- ``barrier_entezari = max_a [L(a) - ((1 - a) L(0) + a L(1))]`` (Entezari et al.
  2022, eq. 1): the height above the line joining the endpoints, >= 0;
- ``barrier_rebasin = max_a L(a) - (L(0) + L(1)) / 2`` (Ainsworth et al. 2023,
  "Git Re-Basin"): the height above the endpoints' mean, >= |L(0) - L(1)| / 2;
- ``accuracy_barrier = max_a [((1 - a) acc(0) + a acc(1)) - acc(a)]``: the
  largest drop of accuracy below the line joining the endpoint accuracies;
- ``error_barrier = max_a err(a) - (err(0) + err(1)) / 2`` with ``err = 1 -
  accuracy`` (Frankle et al. 2020, the instability test).
"""

from __future__ import annotations

import numpy as np

#: The barriers :func:`curve_barriers` reports per split, in this order.
BARRIERS = ("barrier_entezari", "barrier_rebasin", "accuracy_barrier", "error_barrier")
SPLITS = ("train", "test")


def barrier_entezari(alphas: np.ndarray, values: np.ndarray) -> float:
    """``max_a [L(a) - ((1 - a) L(0) + a L(1))]`` (Entezari et al. 2022); >= 0."""
    a, v = np.asarray(alphas, dtype=float), np.asarray(values, dtype=float)
    return float(np.max(v - ((1.0 - a) * v[0] + a * v[-1])))


def barrier_rebasin(values: np.ndarray) -> float:
    """``max_a L(a) - (L(0) + L(1)) / 2`` (Ainsworth et al. 2023); >= |L(0) - L(1)| / 2."""
    v = np.asarray(values, dtype=float)
    return float(np.max(v) - (v[0] + v[-1]) / 2.0)


def accuracy_barrier(alphas: np.ndarray, acc: np.ndarray) -> float:
    """``max_a [((1 - a) acc(0) + a acc(1)) - acc(a)]``: the largest drop below the line; >= 0."""
    a, v = np.asarray(alphas, dtype=float), np.asarray(acc, dtype=float)
    return float(np.max((1.0 - a) * v[0] + a * v[-1] - v))


def error_barrier(acc: np.ndarray) -> float:
    """Frankle et al. 2020: ``max_a err(a) - (err(0) + err(1)) / 2`` with err = 1 - accuracy."""
    return barrier_rebasin(1.0 - np.asarray(acc, dtype=float))


def curve_barriers(curve: dict[str, list[float]]) -> dict[str, dict[str, float]]:
    """All barriers of a curve, on train and on test: ``{split: {barrier: value}}``."""
    alphas = np.asarray(curve["alphas"])
    out = {}
    for split in SPLITS:
        loss, acc = curve[f"{split}_loss"], curve[f"{split}_acc"]
        out[split] = {
            "barrier_entezari": barrier_entezari(alphas, loss),
            "barrier_rebasin": barrier_rebasin(loss),
            "accuracy_barrier": accuracy_barrier(alphas, acc),
            "error_barrier": error_barrier(acc),
        }
    return out


def spread(values: list[float]) -> dict[str, float]:
    """``{"min", "median", "max"}`` of a non-empty list of numbers."""
    v = np.asarray(values, dtype=float)
    return {"min": float(v.min()), "median": float(np.median(v)), "max": float(v.max())}


def barrier_spread(
    per_candidate: list[dict[str, dict[str, float]]],
) -> tuple[dict[str, dict[str, list[float]]], dict[str, dict[str, dict[str, float]]]]:
    """Per split and barrier, the values over candidates (lists) and their :func:`spread`.

    ``per_candidate`` holds one :func:`curve_barriers` result per candidate
    (e.g. per visiting order of weight matching).
    """
    values = {
        split: {name: [b[split][name] for b in per_candidate] for name in BARRIERS}
        for split in SPLITS
    }
    spreads = {
        split: {name: spread(v) for name, v in by_name.items()} for split, by_name in values.items()
    }
    return values, spreads
