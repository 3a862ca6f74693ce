"""What a landscape figure draws: panels of surfaces and planes, read from the summary.

Inputs are the summary's ``landscape`` section (``land``: ``runs`` with their
``surfaces`` and ``sharpness``, ``planes``; see
``analysis.landscape.summarize_landscape`` and docs/summary.md) and the grid
arrays of an entry (``surface.npz``: ``x`` (X,), ``y`` (Y,), ``loss``/``acc``
(Y, X) for a surface or (X,) for a line, ``coords`` (K, 2) for planes), fetched
by content key through a ``load(key) -> dict | None`` the caller passes.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from dashboard.figures.bands import GroupKey, key_of

METRICS = {"loss": "Loss", "log": "log10 loss", "acc": "Accuracy (%)"}
PLANES = {"trajectory": "Training trajectory (PCA plane)", "models": "Plane through two seeds"}
#: Most surfaces shown side by side (beyond that a panel is too small to read).
MOST = 4

Load = Callable[[str], "dict | None"]


@dataclass
class Panel:
    """One surface to draw: its title, arrays, what to mark on it, and what its loss is.

    ``kind`` is "run" (a surface around a trained run: its centre is marked),
    "trajectory" (the training path is drawn) or "models" (the networks are
    marked; ``names`` are their labels). ``record`` is the summary record of
    the surface or plane (its ``split``, ``n``, ``bn`` and ``bn_rule`` say
    which loss and which BatchNorm statistics, :func:`data_note`).
    """

    title: str
    arrays: dict
    kind: str = "run"
    method: str = "dense"
    names: list[str] = field(default_factory=list)
    axes: tuple[str, str] = ("direction 1", "direction 2")
    record: dict = field(default_factory=dict)


def data_note(record: dict | None) -> str:
    """Which loss (split, samples) and which BatchNorm statistics a surface shows, in words.

    E.g. "training loss on 1000 samples; BatchNorm statistics recomputed at
    every point on 1000 training samples". Empty when the record does not say.
    """
    record = record or {}
    split = {"train": "training", "test": "test"}.get(record.get("split"))
    if split is None:
        return ""
    n = record.get("n")
    text = f"{split} loss" + (f" on {n} samples" if n else "")
    bn = record.get("bn")
    if bn == "reset":
        m = (record.get("bn_rule") or {}).get("samples")
        on = f" on {m} training samples" if m else " on training samples"
        text += f"; BatchNorm statistics recomputed at every point{on}"
    elif bn == "none":
        text += "; no BatchNorm"
    return text


def panels_note(panels: Sequence[Panel]) -> str:
    """The :func:`data_note` of a figure's panels (they share the study's settings)."""
    notes = list(dict.fromkeys(data_note(p.record) for p in panels if data_note(p.record)))
    return notes[0] if len(notes) == 1 else "; ".join(notes)


def z_of(arrays: dict, metric: str) -> np.ndarray:
    """The drawn values: loss, log10 loss, or accuracy in %."""
    if metric == "acc":
        return 100 * np.asarray(arrays["acc"], dtype=float)
    loss = np.asarray(arrays["loss"], dtype=float)
    return np.log10(np.maximum(loss, 1e-12)) if metric == "log" else loss


def group_records(records: Sequence[dict], runs: Sequence[dict] | None) -> dict[GroupKey, list]:
    """Landscape run records grouped by method over seeds (:func:`dashboard.figures.bands.key_of`).

    ``runs``: the summary's run records (their setting and requested sparsity
    place a landscape record, matched by label); a record not among them is
    placed by its own method, sparsity and objective. Groups keep the records' order.
    """
    by_label = {r["label"]: r for r in runs or ()}
    groups: dict[GroupKey, list] = {}
    for record in records:
        run = by_label.get(record["label"])
        key = key_of(run) if run else GroupKey(
            "", record["method"], record.get("sparsity", 0.0), record.get("objective", "")
        )  # fmt: skip
        groups.setdefault(key, []).append(record)
    return groups


def shared_range(panels: Sequence[Panel], metric: str) -> list[float]:
    """[lo, hi] of the drawn values over every panel (finite values only)."""
    values = np.concatenate([z_of(p.arrays, metric).ravel() for p in panels] or [np.zeros(1)])
    values = values[np.isfinite(values)]
    if not len(values):
        return [0.0, 1.0]
    lo, hi = float(values.min()), float(values.max())
    return [lo, hi if hi > lo else lo + 1e-9]


def shown(land: dict, runs: Sequence[dict] | None) -> list[dict]:
    """The landscape run records of the shown runs (all when ``runs`` is None)."""
    records = land.get("runs", []) if land else []
    if runs is None:
        return list(records)
    labels = {r["label"] for r in runs}
    return [r for r in records if r["label"] in labels]


def surface_runs(land: dict, runs: Sequence[dict] | None, dims: int = 2) -> list[dict]:
    """Labels order: the shown run records with a cached ``dims``-D surface."""
    return [r for r in shown(land, runs) if surface_item(r, dims) is not None]


def surface_item(record: dict, dims: int) -> dict | None:
    """The cached ``dims``-D surface record of a landscape run record."""
    return next(
        (s for s in record["surfaces"] if s["dims"] == dims and s.get("status") == "cached"), None
    )


def run_panels(
    land: dict, labels: Sequence[str], load: Load, dims: int = 2
) -> list[tuple[dict, Panel]]:
    """(run record, panel) of each labelled run whose ``dims``-D surface can be read."""
    by_label = {r["label"]: r for r in land.get("runs", [])}
    out = []
    for label in labels:
        record = by_label.get(label)
        item = surface_item(record, dims) if record else None
        arrays = load(item["key"]) if item else None
        if arrays is not None:
            out.append((record, Panel(label, arrays, "run", record["method"], record=item)))
    return out


def plane_records(land: dict, runs: Sequence[dict] | None, plane: str) -> list[dict]:
    """The cached planes of kind ``plane`` whose first run is shown."""
    labels = None if runs is None else {r["label"] for r in runs}
    return [
        p
        for p in (land.get("planes", []) if land else [])
        if p["plane"] == plane
        and p.get("status") == "cached"
        and (labels is None or p["runs"][0] in labels)
    ]


def plane_panels(records: Sequence[dict], load: Load, methods: dict[str, str]) -> list[Panel]:
    """A panel per plane record whose arrays can be read (``methods``: run label -> method)."""
    out = []
    for p in records:
        arrays = load(p["key"])
        if arrays is None:
            continue
        if p["plane"] == "trajectory":
            ev = p.get("explained_variance") or [math.nan, math.nan]
            axes = ("PC1", "PC2")
            names = [p["runs"][0]]
            title = f"{p['runs'][0]}<br><sup>PCA: PC1 {100 * ev[0]:.0f}%, PC2 {100 * ev[1]:.0f}%"
            title += " of the path's variance</sup>"
        else:
            axes = ("along B − A (units of ‖B − A‖)", "towards C")
            names = list(p["runs"]) + (["B aligned to A"] if p.get("align") else [])
            title = " / ".join(p["runs"][:2])
            if p.get("align"):
                title += "<br><sup>C: B aligned to A by weight matching</sup>"
        method = methods.get(p["runs"][0], "dense")
        out.append(Panel(title, arrays, p["plane"], method, names, axes, record=p))
    return out
