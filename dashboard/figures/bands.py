"""Runs grouped by method: one line per method over seeds, its 95% interval as a band.

Researchers compare methods, not seeds: a group is every run of one setting,
method, sparsity and objective, whatever its seed. A curve of a group (accuracy
per severity, loss along a path, a slice of a landscape) is the pointwise mean of
its runs' curves with a Student-t 95% interval, the same interval the summary's
``groups`` section gives scalars (``analysis.group_stats``), so a band on a page
and a number in ``show --json`` agree.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import NamedTuple

import numpy as np
import plotly.graph_objects as go
from scipy import stats

from dashboard.figures.theme import Theme, method_color, method_symbol

#: Confidence of every band and interval drawn.
LEVEL = 0.95


class GroupKey(NamedTuple):
    """What a group of runs shares: everything but the seed."""

    setting: str
    method: str
    sparsity: float
    objective: str


def key_of(run: dict) -> GroupKey:
    """The group of a summary run record."""
    return GroupKey(
        run.get("setting_label", ""), run["method"], run["requested_sparsity"], run["objective"]
    )


def by_method(runs: Iterable[dict]) -> dict[GroupKey, list[dict]]:
    """Runs grouped by setting, method, sparsity and objective, in the runs' order."""
    groups: dict[GroupKey, list[dict]] = {}
    for run in runs:
        groups.setdefault(key_of(run), []).append(run)
    return groups


def several_seeds(runs: Iterable[dict]) -> bool:
    """Whether any group of ``runs`` has more than one seed (grouping then means something)."""
    return any(len(g) > 1 for g in by_method(runs).values())


def group_name(key: GroupKey, keys: Sequence[GroupKey]) -> str:
    """``magnitude 90%``, with the setting and objective named only when they vary."""
    name = key.method if key.method == "dense" else f"{key.method} {100 * key.sparsity:g}%"
    if len({k.objective for k in keys}) > 1:
        name += f" · {key.objective}"
    if len({k.setting for k in keys}) > 1 and key.setting:
        name = f"{key.setting} · {name}"
    return name


#: How far a method's colour moves towards white (lowest sparsity shown) and towards
#: black (highest) when a figure shows several sparsities of one method.
LIGHTEST, DARKEST = 0.55, 0.35


def shade(hex_color: str, amount: float) -> str:
    """``#RRGGBB`` mixed towards white (``amount`` < 0) or black (> 0) by ``|amount|``."""
    h = hex_color.lstrip("#")
    rgb = [int(h[i : i + 2], 16) for i in (0, 2, 4)]
    target = 255 if amount < 0 else 0
    mixed = [round(c + (target - c) * abs(amount)) for c in rgb]
    return "#" + "".join(f"{c:02X}" for c in mixed)


def group_color(key: GroupKey, keys: Iterable[GroupKey] = ()) -> str:
    """The colour of ``key``'s lines among ``keys`` (everything the figure shows).

    The method's colour (``theme.method_color``); when ``keys`` hold several sparsities
    of that method, an ordered shade of it: lightest at the lowest sparsity, darkest at
    the highest, so a ladder reads as one hue that deepens (also in greyscale).
    """
    base = method_color(key.method)
    levels = sorted({k.sparsity for k in keys if k.method == key.method} | {key.sparsity})
    if len(levels) < 2:
        return base
    t = levels.index(key.sparsity) / (len(levels) - 1)
    return shade(base, -LIGHTEST + t * (LIGHTEST + DARKEST))


def interval(values: np.ndarray | Sequence) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mean and Student-t 95% interval over axis 0 (the runs), NaNs left out per point.

    Args:
        values: ``(n_runs, ...)``; NaN where a run has no value.
    Returns:
        ``(mean, low, high)``, each ``values.shape[1:]``. With one value at a point
        the interval is that value (no spread to show); with none, NaN.
    Source: the t interval of ``scipy.stats.t``, as ``analysis.group_stats``.
    """
    v = np.asarray(values, dtype=float)
    n = np.sum(~np.isnan(v), axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.nanmean(v, axis=0) if v.size else np.full(v.shape[1:], np.nan)
        std = np.nanstd(v, axis=0, ddof=1) if len(v) > 1 else np.zeros(v.shape[1:])
        half = stats.t.ppf(0.5 + LEVEL / 2, np.maximum(n - 1, 1)) * std / np.sqrt(n)
    half = np.where(n > 1, half, 0.0)
    return mean, mean - half, mean + half


def alpha(hex_color: str, opacity: float) -> str:
    """``#RRGGBB`` as ``rgba(r, g, b, opacity)``."""
    h = hex_color.lstrip("#")
    r, g, b = (int(h[i : i + 2], 16) for i in (0, 2, 4))
    return f"rgba({r}, {g}, {b}, {opacity})"


def add_band(
    fig: go.Figure,
    x: Sequence,
    values: np.ndarray,
    *,
    key: GroupKey,
    name: str,
    theme: Theme,
    dash: str = "solid",
    showlegend: bool = True,
    cell: tuple[int, int] | None = None,
    markers: bool = True,
    spread: tuple[np.ndarray, np.ndarray] | None = None,
    symbol: str | None = None,
    hover: str = "",
    keys: Sequence[GroupKey] = (),
) -> None:
    """Add one group's mean line and (with 2+ runs) its 95% band to ``fig``.

    Args:
        x: the ``(n_points,)`` x values.
        values: ``(n_runs, n_points)``; NaN where a run has no value.
        key: the group (its method gives colour and marker).
        keys: every group the figure shows: several sparsities of ``key``'s method shade
            its colour by sparsity (``group_color``).
        cell: ``(row, col)`` of a subplot grid, or None.
        spread: ``(low, high)``, each ``(n_points,)``: a band of another meaning (e.g. one
            run's ±1 std over noise draws) in place of the interval over runs.
    """
    mean, low, high = interval(values)
    if spread is not None:
        low, high = (np.asarray(b, dtype=float) for b in spread)
    color = group_color(key, keys)
    where = {"row": cell[0], "col": cell[1]} if cell else {}
    xs = list(x)
    if (len(values) > 1 or spread is not None) and np.isfinite(low).any():
        fig.add_trace(
            go.Scatter(
                x=xs + xs[::-1], y=list(high) + list(low[::-1]), fill="toself", mode="lines",
                fillcolor=alpha(color, 0.18), line={"width": 0}, hoverinfo="skip",
                showlegend=False, legendgroup=name,
            ),
            **where,
        )  # fmt: skip
    fig.add_trace(
        go.Scatter(
            x=xs, y=mean, mode="lines+markers" if markers else "lines", name=name,
            legendgroup=name, showlegend=showlegend,
            line={"color": color, "width": theme.line_width, "dash": dash},
            marker={"symbol": symbol or method_symbol(key.method),
                    "size": theme.marker_size * 0.8, "color": color,
                    "maxdisplayed": 8 if len(xs) > 12 else 0},  # long curves: a few markers
            customdata=np.stack([low, high], axis=-1),
            hovertemplate=f"<b>{name}</b> (n {len(values)})<br>%{{x}}: %{{y:.4g}} "
            "(95% %{customdata[0]:.4g} to %{customdata[1]:.4g})"
            f"<extra>{hover}</extra>",
        ),
        **where,
    )  # fmt: skip


def stack(runs: Sequence[dict], curve: Callable[[dict], Sequence | None], n: int) -> np.ndarray:
    """``(n_runs, n)`` of each run's curve (NaN rows where a run has none or a shorter one)."""
    out = np.full((len(runs), n), np.nan)
    for i, run in enumerate(runs):
        values = curve(run)
        if values is not None:
            values = np.asarray(values, dtype=float)[:n]
            out[i, : len(values)] = values
    return out


def subtitle(groups: dict[GroupKey, list]) -> str:
    """``mean over 3 seeds, band: 95% interval`` (or a range of seed counts)."""
    counts = sorted({len(g) for g in groups.values()})
    seeds = f"{counts[0]}" if len(counts) == 1 else f"{counts[0]}-{counts[-1]}"
    return f"mean over {seeds} seed{'s' * (seeds != '1')}, band: 95% interval (Student t)"
