"""Two methods compared over their seeds: a table of paired differences, and aggregated figures.

A method here is a group of runs (``bands.GroupKey``: setting, method,
sparsity, objective) over its seeds. Each metric of :func:`compare.run_metrics`
is a value per seed (per pair of seeds for a barrier between seeds); ``B − A``
is the mean of the differences over the seeds both groups have (paired by
seed, as the summary's ``groups`` section pairs a method with dense,
``analysis/group_stats.py``), with its Student-t 95% interval; groups that
share fewer than two seeds are compared unpaired (Welch). Each side's
seed-to-seed standard deviation is shown as the reference for what a
difference is worth. No streamlit here.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots
from scipy import stats

from dashboard.figures import bands
from dashboard.figures.bands import GroupKey
from dashboard.figures.compare import _corruption_means, flips_between, robustness_item, run_metrics
from dashboard.figures.numbers import human
from dashboard.figures.numbers import interval as interval_text
from dashboard.figures.theme import INK, NORMAL, PALE, Theme, apply, method_color
from dashboard.figures.verdicts import Margin, in_percent, judge, style

#: The order of the table's sections.
ANALYSES = ("Run", "Representations", "Robustness", "Connectivity", "Landscape")
DEFAULT_MARGIN = Margin()
COLUMNS = ["Analysis", "Metric", "A", "A seed std", "B", "B seed std", "B − A", "95% low",
           "95% high", "Seeds", "Verdict"]  # fmt: skip


def groups_of(runs: Sequence[dict]) -> dict[GroupKey, list[dict]]:
    """The cached runs of ``runs`` by method group (setting, method, sparsity, objective)."""
    return bands.by_method(r for r in runs if r.get("status") == "cached")


def names_of(groups: Mapping[GroupKey, list]) -> dict[str, GroupKey]:
    """Each group's name (``magnitude 90%``; the setting named when it varies) -> its key."""
    keys = list(groups)
    return {bands.group_name(k, keys): k for k in keys}


def _barrier(pair: dict) -> float | None:
    """The test-loss barrier of a cached path (Entezari et al. 2022's definition)."""
    return ((pair.get("barriers") or {}).get("test") or {}).get("barrier_entezari")


def _pair_values(summary: Mapping[str, Any], runs: Sequence[dict]) -> list[tuple]:
    """(metric, member, value) of the group's cached paths: seed pairs, and same-init pairs."""
    labels = {r["label"]: r for r in runs}
    out = []
    for p in (summary.get("connectivity") or {}).get("pairs", []):
        value = _barrier(p)
        if p.get("status") != "cached" or value is None:
            continue
        variant = p["alignment"] + (" + REPAIR" if p.get("repair") else "")
        if p["pair"] == "seeds" and p["run_a"] in labels:
            member = tuple(p.get("seeds") or (p["run_a"], p["run_b"]))
            out.append((f"Test loss barrier between seeds, {variant}", member, value))
        elif p["pair"] != "seeds" and p["run_b"] in labels:
            member = labels[p["run_b"]]["seed"]
            out.append(
                (f"Test loss barrier to its dense run (same init), {variant}", member, value)
            )
    return out


def member_values(summary: Mapping[str, Any], runs: Sequence[dict]) -> dict[tuple, dict]:
    """(analysis, metric) -> {"better", "values": {seed (or seed pair): value}} of a group."""
    out: dict[tuple, dict] = {}
    for r in runs:
        for analysis, metric, value, better in run_metrics(summary, r["label"]):
            if analysis != "Connectivity" and value is not None and math.isfinite(value):
                rec = out.setdefault((analysis, metric), {"better": better, "values": {}})
                rec["values"][r["seed"]] = float(value)
    for metric, member, value in _pair_values(summary, runs):
        rec = out.setdefault(("Connectivity", metric), {"better": "lower", "values": {}})
        rec["values"][member] = float(value)
    return out


def spread(values: Sequence[float]) -> tuple[float, float]:
    """(mean, sample standard deviation over seeds); the std is NaN with one value."""
    v = np.asarray(values, dtype=float)
    if not len(v):
        return math.nan, math.nan
    return float(v.mean()), float(v.std(ddof=1)) if len(v) > 1 else math.nan


def difference(a: Mapping, b: Mapping) -> tuple[float, tuple[float, float] | None, str]:
    """``B − A`` over seeds: (mean, its 95% interval or None, how: ``3 paired``, ``2 vs 3``).

    Paired where the groups share at least two members (the mean and Student-t
    interval of the per-seed differences); otherwise Welch's interval of the
    difference of means where each side has two values or more; otherwise the
    difference of means with no interval.
    """
    common = [m for m in a if m in b]
    if len(common) >= 2:
        mean, low, high = bands.interval(np.array([b[m] - a[m] for m in common]))
        return float(mean), (float(low), float(high)), f"{len(common)} paired"
    if not a or not b:
        return math.nan, None, ""
    (ma, sa), (mb, sb) = spread(list(a.values())), spread(list(b.values()))
    how = f"{len(common)} paired" if len(a) == len(b) == len(common) else f"{len(a)} vs {len(b)}"
    if len(a) < 2 or len(b) < 2:
        return mb - ma, None, how
    va, vb = sa**2 / len(a), sb**2 / len(b)
    if va + vb == 0:
        return mb - ma, (mb - ma, mb - ma), how + ", unpaired"
    dof = (va + vb) ** 2 / (va**2 / (len(a) - 1) + vb**2 / (len(b) - 1))
    half = float(stats.t.ppf(0.5 + bands.LEVEL / 2, dof)) * math.sqrt(va + vb)
    return mb - ma, (mb - ma - half, mb - ma + half), how + ", unpaired"


def methods_table(
    summary: Mapping[str, Any], runs_a: Sequence[dict], runs_b: Sequence[dict],
    margin: Margin = DEFAULT_MARGIN,
) -> pd.DataFrame:  # fmt: skip
    """One row per metric either group has: each side's mean and seed std, ``B − A``, verdict.

    Columns: see :data:`COLUMNS`; ``95% low``/``95% high`` bound ``B − A`` (NaN
    without an interval); ``Verdict`` from :func:`verdicts.judge`.
    """
    va, vb = member_values(summary, runs_a), member_values(summary, runs_b)
    rows = []
    for key in sorted(dict.fromkeys([*va, *vb]), key=lambda k: ANALYSES.index(k[0])):
        a, b = va.get(key, {}).get("values", {}), vb.get(key, {}).get("values", {})
        better = (va.get(key) or vb[key])["better"]
        (ma, sa), (mb, sb) = spread(list(a.values())), spread(list(b.values()))
        diff, ci, how = difference(a, b)
        verdict = judge(key[1], better, ma, mb, diff, ci, margin)
        if ci is None and verdict.startswith(("B ", "changed")):
            verdict += " (no interval)"  # one seed (or pair): the difference itself was judged
        low, high = ci if ci else (math.nan, math.nan)
        rows.append([*key, ma, sa, mb, sb, diff, low, high, how, verdict])
    return pd.DataFrame(rows, columns=COLUMNS)


def styled(frame: pd.DataFrame):
    """The methods table for people: each side as ``mean ± seed std`` (``49.3 ± 3.94``), one
    interval column, numbers as 87.4, 11.1k, +0.5 points; narrow enough for 1280 pixels."""
    shown = frame.drop(columns=["95% low", "95% high", "A seed std", "B seed std"])
    for side in ("A", "B"):
        shown[f"{side} ± seed std"] = [
            human(m) + ("" if math.isnan(sd) else f" ± {human(sd)}")
            for m, sd in zip(frame[side], frame[f"{side} seed std"], strict=True)
        ]
    shown = shown.drop(columns=["A", "B"])
    texts = []
    for _, row in frame.iterrows():
        low, high = row["95% low"], row["95% high"]
        unit = " points" if in_percent(row["Metric"]) else ""
        if math.isfinite(low) and low == high:
            texts.append(f"{human(low, sign=True)}{unit} (no spread)")
        elif math.isfinite(low):
            texts.append(f"{human(low, sign=True)} to {human(high, sign=True)}{unit}")
        else:
            texts.append(interval_text(low, high))
    shown.insert(len(shown.columns) - 2, "95% interval of B − A", texts)
    order = [
        "Analysis",
        "Metric",
        "A ± seed std",
        "B ± seed std",
        "B − A",
        "Verdict",
        "95% interval of B − A",
        "Seeds",
    ]  # fmt: skip  (the verdict in sight at 1280 px)
    return style(shown[order], {"B − A": "diff"})


# -- figures --------------------------------------------------------------------------------


def seed_pairs(runs_a: Sequence[dict], runs_b: Sequence[dict]) -> list[tuple[dict, dict]]:
    """(run of A, run of B) of each seed both groups have, in A's order."""
    by_seed = {r["seed"]: r for r in runs_b}
    return [(r, by_seed[r["seed"]]) for r in runs_a if r["seed"] in by_seed]


def rep_pairs(rep: Mapping[str, Any], pairs: Sequence[tuple[dict, dict]]) -> list[tuple[int, int]]:
    """Positions in a representations entry of each (run of A, run of B) it has both of."""
    order = list(rep["summary"]["labels_of_runs"])
    return [(order.index(x["label"]), order.index(y["label"]))
            for x, y in pairs if x["label"] in order and y["label"] in order]  # fmt: skip


def _error_bars(low: np.ndarray, mean: np.ndarray, high: np.ndarray) -> dict:
    """Plotly asymmetric error bars from a 95% interval."""
    return {"type": "data", "symmetric": False, "array": list(np.nan_to_num(high - mean)),
            "arrayminus": list(np.nan_to_num(mean - low)), "thickness": 1.5}  # fmt: skip


def _corruption_seeds(summary: Mapping[str, Any], runs: Sequence[dict]) -> dict[int, dict]:
    """seed -> accuracy per corruption (%, mean over severities) of each run that has one."""
    out = {}
    for r in runs:
        if item := robustness_item(summary, r["label"]):
            out[r["seed"]] = _corruption_means(item)
    return out


def _bars(side: str, name: str, key: GroupKey, ticks: list[str], values: list) -> go.Bar:
    """One group's mean accuracy per corruption with 95% error bars."""
    mean, low, high = bands.interval(values)
    pattern = {"shape": "" if side == "A" else "/", "fgcolor": "white"}
    return go.Bar(
        x=ticks, y=mean, name=f"{side}: {name} (n {len(values)})",
        error_y=_error_bars(low, mean, high),
        marker={"color": method_color(key.method), "pattern": pattern},
        hovertemplate=f"<b>{side}</b> %{{x}}: %{{y:.1f}}%<extra></extra>",
    )  # fmt: skip


def robustness_groups(
    summary: Mapping[str, Any], sides: Sequence[tuple[str, GroupKey, list[dict]]],
    theme: Theme = NORMAL,
) -> go.Figure:  # fmt: skip
    """Accuracy per corruption of two groups, mean over seeds with 95% error bars (top), and
    ``B − A`` paired by seed with its interval (bottom, green where B is higher).

    ``sides``: ``(name, key, runs)`` of A and of B.
    """
    per = [_corruption_seeds(summary, runs) for _, _, runs in sides]
    found = [m for seeds in per for m in seeds.values()]
    names = [n for n in dict.fromkeys(n for m in found for n in m) if all(n in m for m in found)]
    ticks = [n.replace("_", " ") for n in names]
    fig = make_subplots(
        rows=2, cols=1, shared_xaxes=True, vertical_spacing=0.08, row_heights=[0.6, 0.4]
    )
    for side, (name, key, _), seeds in zip("AB", sides, per, strict=True):
        values = [[m[n] for n in names] for m in seeds.values()]
        fig.add_trace(_bars(side, name, key, ticks, values), row=1, col=1)
    common = [s for s in per[0] if s in per[1]]
    diffs = [[per[1][s][n] - per[0][s][n] for n in names] for s in common]
    mean, low, high = bands.interval(diffs) if common else (np.zeros(len(names)),) * 3
    colors = [INK if d >= 0 else PALE
              for d in np.nan_to_num(mean)]  # fmt: skip
    fig.add_trace(
        go.Bar(
            x=ticks, y=mean, name="B − A", showlegend=False, marker={"color": colors},
            error_y=_error_bars(low, mean, high),
            hovertemplate="%{x}: B − A %{y:+.2f} points<extra></extra>",
        ),
        row=2, col=1,
    )  # fmt: skip
    title = (
        "Accuracy per corruption (mean over severities), A vs B<br><sup>mean over seeds, "
        f"error bars: 95% interval; B − A paired over {len(common)} seeds</sup>"
    )
    apply(fig, theme, title=title, height=int(theme.height * 1.4))
    fig.update_layout(barmode="group")
    fig.update_yaxes(title_text="Accuracy (%)", row=1, col=1)
    fig.update_yaxes(title_text="B − A (points)", row=2, col=1)
    fig.update_xaxes(tickangle=-35, ticks="", row=2, col=1)
    return fig


def flip_bars_groups(
    rep: Mapping[str, Any], pairs: Sequence[tuple[int, int]], theme: Theme = NORMAL
) -> go.Figure:
    """Samples whose prediction flips from A to B per class, mean over seed pairs (95% bars).

    ``pairs``: positions ``(ia, ib)`` in ``rep`` of A's and B's run of each shared seed.
    """
    flips = [flips_between(rep, ia, ib) for ia, ib in pairs]
    names = rep["summary"].get("classes") or []
    n = len(flips[0]["lost"]) if flips else 0
    classes = [str(names[c]) if c < len(names) else str(c) for c in range(n)]
    cka = np.asarray(rep["summary"]["cka"], dtype=float)
    mean_cka = float(np.mean([cka[ia, ib] for ia, ib in pairs])) if pairs else math.nan
    fig = go.Figure()
    for key, name, color in (("lost", "A right, B wrong", PALE),
                             ("gained", "A wrong, B right", INK)):  # fmt: skip
        mean, low, high = bands.interval([f[key] for f in flips])
        fig.add_trace(go.Bar(
            x=classes, y=mean, name=f"{name} ({float(np.sum(mean)):.1f} per seed)",
            marker={"color": color}, error_y=_error_bars(low, mean, high),
            hovertemplate=f"class %{{x}}: %{{y:.1f}} samples {name}<extra></extra>"))  # fmt: skip
    title = (f"Prediction flips from A to B by class, mean over {len(pairs)} seeds<br><sup>error "
             f"bars: 95% interval; mean linear CKA(A, B) = {mean_cka:.3f}</sup>")  # fmt: skip
    apply(fig, theme, title=title)
    fig.update_layout(barmode="group")
    fig.update_xaxes(title_text="True class", type="category", ticks="")
    fig.update_yaxes(title_text="Samples")
    return fig


def training_groups(
    sides: Sequence[tuple[str, GroupKey, list[dict]]], histories: Mapping[str, list[dict]],
    theme: Theme = NORMAL,
) -> go.Figure:  # fmt: skip
    """Test accuracy and loss per epoch of two groups: mean over seeds, 95% band (B dashed)."""
    fig = make_subplots(rows=1, cols=2, subplot_titles=["Test accuracy (%)", "Test loss"])
    for side, (name, key, runs) in zip("AB", sides, strict=True):
        epochs = sorted({h["epoch"] for r in runs for h in histories.get(r["key"], [])})
        for col, (field, scale) in enumerate((("test_acc", 100.0), ("test_loss", 1.0)), 1):
            values = np.full((len(runs), len(epochs)), np.nan)
            for i, r in enumerate(runs):
                for h in histories.get(r["key"], []):
                    if h.get(field) is not None:
                        values[i, epochs.index(h["epoch"])] = scale * h[field]
            bands.add_band(fig, epochs, values, key=key, name=f"{side}: {name}", theme=theme,
                           dash="solid" if side == "A" else "dash", showlegend=col == 1,
                           cell=(1, col), keys=[k for _, k, _ in sides])  # fmt: skip
    groups = {key: runs for _, key, runs in sides}
    title = f"Training curves, A (solid) and B (dashed)<br><sup>{bands.subtitle(groups)}</sup>"
    apply(fig, theme, title=title)
    fig.update_layout(margin={"t": theme.title_size * 5})  # title, subtitle, then panel titles
    fig.update_xaxes(title_text="Epoch")
    fig.update_annotations(font={"size": theme.font_size + 1})
    return fig


def mean_run(name: str, key: GroupKey, runs: Sequence[dict]) -> dict:
    """A run record standing for a group: its label, method and mean sparsity per layer."""
    layers = list(dict.fromkeys(n for r in runs for n in (r.get("layer_sparsity") or {})))
    mean = {n: float(np.mean([r["layer_sparsity"][n] for r in runs
                              if n in (r.get("layer_sparsity") or {})])) for n in layers}  # fmt: skip
    return {"label": name, "method": key.method, "layer_sparsity": mean}


def surface_label(summary: Mapping[str, Any], runs: Sequence[dict]) -> str | None:
    """The first run of ``runs`` with a cached 2-D loss surface (the landscape's first seed)."""
    labels = {r["label"] for r in runs}
    for record in (summary.get("landscape") or {}).get("runs", []):
        if record["label"] in labels and any(
            s["dims"] == 2 and s.get("status") == "cached" for s in record.get("surfaces", [])
        ):
            return record["label"]
    return None
