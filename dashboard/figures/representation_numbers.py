"""The Representations numbers (k-NN accuracy, silhouette, CKA to dense, flips) per run or
per method over seeds: the mean with its 95% interval.

Read from the entry's own ``summary.json`` (``rep["summary"]``: its ``runs``,
``labels_of_runs`` and ``cka``); per method, the mean over seeds and the
Student-t 95% interval of ``bands.interval``, the interval of
``analysis/group_stats.py``. No streamlit here.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from dashboard.figures import bands
from dashboard.figures.numbers import human, percent
from dashboard.figures.theme import NORMAL, Theme, apply, method_color

#: Number -> (column title, whether it is a fraction shown in %).
NUMBERS = {
    "knn_acc": ("k-NN accuracy", True),
    "silhouette": ("Silhouette", False),
    "cka_to_dense": ("CKA to dense", False),
    "trustworthiness_2d": ("Trustworthiness (2-D)", False),
    "flips_lost": ("Flips lost", False),
    "flips_gained": ("Flips gained", False),
}
#: The values a number can take: an interval is clipped to them (with 2 seeds, t = 12.7
#: reaches far past them).
BOUNDS = {
    "knn_acc": (0.0, 1.0),
    "silhouette": (-1.0, 1.0),
    "cka_to_dense": (0.0, 1.0),
    "trustworthiness_2d": (0.0, 1.0),
    "flips_lost": (0.0, math.inf),
    "flips_gained": (0.0, math.inf),
}
#: Panels per row of the figure.
PER_ROW = 3

Values = dict[str, float]


def run_values(entry: Mapping[str, Any]) -> dict[str, Values]:
    """Run label -> its numbers, from the entry's ``summary.json`` (``rep["summary"]``).

    ``cka_to_dense``: linear CKA to the dense run its flips are counted against
    (none for a dense run itself).
    """
    labels, cka = list(entry["labels_of_runs"]), entry.get("cka")
    out = {}
    for run in entry["runs"]:
        values = {m: float(run[m]) for m in NUMBERS if _number(run.get(m))}
        ref = run.get("flips_vs")
        if cka is not None and ref in labels and ref != run["label"]:
            values["cka_to_dense"] = float(cka[labels.index(run["label"])][labels.index(ref)])
        out[run["label"]] = values
    return out


def _number(value: Any) -> bool:
    """Whether ``value`` is a finite number."""
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def group_values(
    entry: Mapping[str, Any], runs: Sequence[dict]
) -> dict[bands.GroupKey, dict[str, list[float]]]:
    """Method group -> number -> its values over the group's seeds (the shown ``runs``)."""
    values = run_values(entry)
    out: dict[bands.GroupKey, dict[str, list[float]]] = {}
    for key, members in bands.by_method(r for r in runs if r["label"] in values).items():
        out[key] = {
            m: [values[r["label"]][m] for r in members if m in values[r["label"]]] for m in NUMBERS
        }
    return out


def _seeds(numbers: Mapping[str, list[float]]) -> int:
    """The number of seeds of a group (the most values any number has)."""
    return max((len(v) for v in numbers.values()), default=0)


def summary_of(metric: str, values: Sequence[float]) -> tuple[float, float, float]:
    """(mean, low, high) over seeds, the 95% interval clipped to the number's range, in the
    units shown (a fraction in %)."""
    if not values:
        return math.nan, math.nan, math.nan
    mean, low, high = (float(v) for v in bands.interval(np.asarray(values, dtype=float)))
    lo, hi = BOUNDS[metric]
    scale = 100.0 if NUMBERS[metric][1] else 1.0
    return scale * mean, scale * max(low, lo), scale * min(high, hi)


def _cell(metric: str, values: Sequence[float]) -> str:
    """``93.1% (92.0 to 94.2)``: the mean over seeds and its 95% interval (``—`` for none)."""
    if not values:
        return "—"
    in_percent = NUMBERS[metric][1]
    mean, low, high = summary_of(metric, values)
    text = human(mean) + ("%" if in_percent else "")
    return text + (f" ({human(low)} to {human(high)})" if len(values) > 1 else "")


def group_table(groups: Mapping[bands.GroupKey, Mapping[str, list[float]]]) -> pd.DataFrame:
    """One row per method: its seeds, then each number as the mean (95% interval)."""
    keys = list(groups)
    used = [m for m in NUMBERS if any(groups[k][m] for k in keys)]
    rows = []
    for key in keys:
        row = {"Method": bands.group_name(key, keys), "Seeds": _seeds(groups[key])}
        for metric in used:
            row[NUMBERS[metric][0]] = _cell(metric, groups[key][metric])
        rows.append(row)
    return pd.DataFrame(rows)


def group_figure(
    groups: Mapping[bands.GroupKey, Mapping[str, list[float]]], theme: Theme = NORMAL
) -> go.Figure:
    """One panel per number: a bar per method (its mean over seeds) with 95% error bars."""
    keys = list(groups)
    metrics = [m for m in NUMBERS if any(groups[k][m] for k in keys)]
    names = [bands.group_name(k, keys) for k in keys]
    rows = max(-(-len(metrics) // PER_ROW), 1)
    fig = make_subplots(
        rows=rows, cols=min(len(metrics), PER_ROW) or 1, horizontal_spacing=0.07,
        vertical_spacing=0.3 / rows + 0.1,
        subplot_titles=[NUMBERS[m][0] + (" (%)" if NUMBERS[m][1] else "") for m in metrics],
    )  # fmt: skip
    for i, metric in enumerate(metrics):
        stats = np.array([summary_of(metric, groups[k][metric]) for k in keys]).reshape(-1, 3)
        mean, low, high = stats[:, 0], stats[:, 1], stats[:, 2]
        fig.add_trace(
            go.Bar(
                x=names, y=mean, showlegend=False,
                marker={"color": [method_color(k.method) for k in keys]},
                error_y={"type": "data", "symmetric": False, "thickness": 1.5,
                         "array": list(np.nan_to_num(high - mean)),
                         "arrayminus": list(np.nan_to_num(mean - low))},
                customdata=np.stack([low, high], axis=-1),
                hovertemplate="<b>%{x}</b><br>%{y:.4g} (95% %{customdata[0]:.4g} to "
                "%{customdata[1]:.4g})<extra></extra>",
            ),
            row=i // PER_ROW + 1, col=i % PER_ROW + 1,
        )  # fmt: skip
    counts = sorted({_seeds(v) for v in groups.values()}) or [0]
    seeds = f"{counts[0]}" if len(counts) == 1 else f"{counts[0]}-{counts[-1]}"
    title = (
        "Representation numbers per method<br><sup>mean over "
        f"{seeds} seeds, error bars: 95% interval (Student t)</sup>"
    )
    apply(fig, theme, title=title, height=int(theme.height * (0.75 + 0.55 * (rows - 1))))
    fig.update_layout(margin={"t": theme.title_size * 5})  # title, subtitle, then panel titles
    fig.update_xaxes(tickangle=-30, ticks="", type="category")
    fig.update_annotations(font={"size": theme.font_size})
    return fig


def run_table(entry: Mapping[str, Any], labels: Sequence[str]) -> pd.DataFrame:
    """One row per run of ``labels`` (in order): each number, for people (87.4%, 0.873)."""
    values = run_values(entry)
    rows = []
    for label in [lab for lab in labels if lab in values]:
        row = {"Run": label}
        for metric, (title, in_percent) in NUMBERS.items():
            value = values[label].get(metric)
            row[title] = percent(value) if in_percent else human(value)
        rows.append(row)
    return pd.DataFrame(rows)
