"""A metric against sparsity or any swept axis: one line per method, its 95% interval as a band.

Reads the summary's ``groups`` section (``analysis/group_stats.py``): the mean
over seeds (or pairs of seeds, for barriers) and the Student-t interval. With
sparsity on the x axis the axis is the density ``1 - s`` on a log scale,
reversed and labelled in sparsity, so a ladder from 90% to 99% is spread out
instead of squeezed into the last tenth (the figure pruning papers draw).
"""

from __future__ import annotations

from collections.abc import Sequence

import plotly.graph_objects as go

from dashboard.figures.bands import alpha
from dashboard.figures.theme import NORMAL, Theme, apply, method_color, method_symbol

#: People's names of the metrics most asked for (any other: its summary name).
METRIC_NAMES = {
    "test_acc": "test accuracy",
    "test_loss": "test loss",
    "mce": "mCE",
    "relative_mce": "relative mCE",
    "mean_corruption_accuracy": "mean corruption accuracy",
    "cka_to_dense": "CKA to dense",
    "knn_acc": "k-NN accuracy",
    "top_eigenvalue": "top Hessian eigenvalue",
    "hessian_trace": "Hessian trace",
}
#: Axis titles of the common axes.
AXIS_NAMES = {
    "sparsity": "sparsity",
    "model.width": "width (hidden units)",
    "model.width_mult": "width multiplier",
    "model.depth": "depth (hidden layers)",
    "model.arch": "architecture",
    "train.batch_size": "batch size",
    "train.lr": "learning rate",
    "data.label_noise": "label noise",
    "data.train_size": "training-set size",
}
#: Line styles of the metrics drawn together (e.g. naive dashed, aligned solid).
DASHES = ("solid", "dash", "dot", "dashdot")
#: Relative shift between methods drawn at one sparsity (on the density axis).
DODGE = 0.02


def metric_name(metric: str) -> str:
    """``barrier.weight.test.barrier_entezari`` -> ``barrier (weight, test)``; others by name."""
    if metric.startswith("barrier."):
        _, variant, split, definition = metric.split(".")
        short = definition.replace("barrier_", "").replace("_barrier", "")
        return f"{short} barrier ({variant.replace('+repair', ' + REPAIR')}, {split})"
    if metric.startswith("noise_acc@"):
        return f"accuracy under weight noise (sigma {metric.split('@')[1]})"
    return METRIC_NAMES.get(metric, metric.replace("_", " "))


def axes_of(summary: dict) -> list[str]:
    """The x axes a study can be drawn against: sparsity (if it varies), then its swept axes."""
    groups = summary.get("groups", [])
    out = ["sparsity"] if len({g["sparsity"] for g in groups if g["sparsity"] > 0}) > 1 else []
    swept = summary.get("study", {}).get("axes", {})
    return out + [name for name, values in swept.items() if len(values) > 1]


def metrics_of(summary: dict) -> list[str]:
    """Every metric with statistics in at least one group, the common ones first."""
    found = {m for g in summary.get("groups", []) for m in g["metrics"]}
    first = [m for m in METRIC_NAMES if m in found]
    return first + sorted(found - set(first))


def _x_of(group: dict, axis: str):
    return group["sparsity"] if axis == "sparsity" else group["setting"].get(axis)


def _line_of(group: dict, axis: str) -> tuple[str, str]:
    """(method, what else names the line): the other axes' values, and the sparsity."""
    rest = [f"{k.split('.')[-1]} {v}" for k, v in group["setting"].items() if k != axis]
    if axis != "sparsity" and group["method"] != "dense":
        rest.insert(0, f"{100 * group['sparsity']:.4g}%")
    return group["method"], ", ".join(rest)


def metric_vs_axis(
    summary: dict,
    metrics: Sequence[str],
    axis: str,
    theme: Theme = NORMAL,
    *,
    methods: Sequence[str] | None = None,
    settings: Sequence[str] | None = None,
) -> go.Figure:
    """``metrics`` (one line style each) against ``axis`` per method, 95% bands over seeds.

    A point needs at least one member; its band needs two. Dense, which has no
    sparsity, is a flat reference line across a sparsity axis. ``methods`` and
    ``settings`` (setting labels) keep only those groups.
    """
    groups = [
        g
        for g in summary.get("groups", [])
        if (methods is None or g["method"] in methods)
        and (settings is None or g["setting_label"] in settings)
    ]
    levels = {g["sparsity"] for g in groups if g["method"] != "dense"}
    if axis == "sparsity" and len(levels) <= 1 and len(metrics) == 1:
        return _per_method(groups, metrics[0], theme, levels)
    fig = go.Figure()
    lines: dict[tuple, list[tuple]] = {}
    for g in groups:
        for i, metric in enumerate(metrics):
            record = g["metrics"].get(metric)
            if record is None or record["mean"] is None:
                continue
            key = (*_line_of(g, axis), i)
            lines.setdefault(key, []).append((_x_of(g, axis), bounded(record, metric), g))
    if axis == "sparsity":
        _spread_dense(lines)
    pruned = [k for k in lines if k[0] != "dense"]
    for key, points in lines.items():
        method, rest, i = key
        points.sort(key=lambda p: (p[0] is None, p[0]))
        suffix = f" · {_short(metrics[i])}" if len(metrics) > 1 else ""
        # Methods at one sparsity stand side by side, not on top of each other (a small
        # multiplicative shift: even on the log density axis; the hover keeps the value).
        dodge = 1.0
        if axis == "sparsity" and key in pruned:
            dodge = 1.0 + DODGE * (pruned.index(key) - (len(pruned) - 1) / 2)
        style = (DASHES[i % len(DASHES)], dodge)
        _add_line(fig, method, rest, suffix, points, theme, style, axis)
    names = " and ".join(metric_name(m) for m in metrics)
    title = f"{names} against {AXIS_NAMES.get(axis, axis)}"
    apply(
        fig, theme, title=f"{title}<br><sup>mean over seeds, band: 95% interval (Student t)</sup>"
    )
    fig.update_yaxes(title_text=y_title(metrics[0]) if len(metrics) == 1 else "value")
    _x_axis(fig, axis, [p[0] for pts in lines.values() for p in pts])
    if not lines:
        fig.add_annotation(text="No computed values of this metric yet.", showarrow=False)
    return fig


def _per_method(groups: list[dict], metric: str, theme: Theme, levels: set) -> go.Figure:
    """One sparsity (or none): a dot per method (and setting) with its 95% error bar."""
    fig = go.Figure()
    for g in groups:
        record = g["metrics"].get(metric)
        if record is None or record["mean"] is None:
            continue
        name = g["method"] + (f" ({g['setting_label']})" if g["setting_label"] else "")
        color = method_color(g["method"])
        record = bounded(record, metric)
        point = [(g["sparsity"], record, g)]
        fig.add_trace(
            go.Scatter(
                x=[name],
                y=[record["mean"]],
                mode="markers",
                name=name,
                marker={
                    "symbol": method_symbol(g["method"]),
                    "size": theme.marker_size + 3,
                    "color": color,
                },
                error_y=_error_bars(point, color),
                customdata=[[record["n"], _ci_text(record["ci95"])]],
                hovertemplate=f"<b>{name}</b><br>%{{y:.4g}} (n %{{customdata[0]}}, 95% "
                "%{customdata[1]})<extra></extra>",
            )
        )
    at = f" at {100 * next(iter(levels)):.4g}% sparsity" if levels else ""
    apply(
        fig,
        theme,
        title=f"{metric_name(metric)} per method{at}<br><sup>mean over seeds, bar: 95% "
        "interval (Student t)</sup>",
    )
    fig.update_layout(showlegend=False)
    fig.update_yaxes(title_text=y_title(metric))
    return fig


def _spread_dense(lines: dict) -> None:
    """Dense has one point at sparsity 0: draw it across the other methods' range."""
    xs = sorted({p[0] for k, pts in lines.items() if k[0] != "dense" for p in pts})
    for key, pts in lines.items():
        if key[0] == "dense" and len(pts) == 1 and xs:
            x0, record, group = pts[0]
            pts[:] = [(x, record, group) for x in xs]


def _short(metric: str) -> str:
    """What tells metrics drawn together apart: a barrier's alignment, else the name."""
    return metric.split(".")[1] if metric.startswith("barrier.") else metric_name(metric)


#: Metrics the summary keeps as fractions and the figures draw in percent, as every other
#: page does (accuracies, sparsity, mCE: 100 = the dense run's error).
PERCENT = {"test_acc", "val_acc", "knn_acc", "clean_accuracy", "mean_corruption_accuracy",
           "achieved_sparsity", "mce", "relative_mce", "accuracy_barrier", "error_barrier"}  # fmt: skip


def in_percent(metric: str) -> bool:
    """Whether ``metric`` (a summary ``groups`` name) is a fraction drawn in percent."""
    return metric.startswith("noise_acc@") or metric.rsplit(".", 1)[-1] in PERCENT


def bounded(record: dict, metric: str) -> dict:
    """The record as drawn: in percent where :func:`in_percent`, and an accuracy's interval
    clipped to [0, 100%] (with 2 seeds, t = 12.7 reaches past it)."""
    ci = record.get("ci95")
    if ci is not None and "acc" in metric and not metric.startswith("barrier."):
        record = {**record, "ci95": [max(ci[0], 0.0), min(ci[1], 1.0)]}
    return _percent(record) if in_percent(metric) and record.get("mean") is not None else record


def _percent(record: dict) -> dict:
    """A statistics record (and its ``vs_dense``) times 100."""
    out = {**record}
    for name in ("mean", "std"):
        if out.get(name) is not None:
            out[name] = 100 * out[name]
    if out.get("ci95") is not None:
        out["ci95"] = [100 * c for c in out["ci95"]]
    if isinstance(out.get("vs_dense"), dict):
        out["vs_dense"] = _percent(out["vs_dense"])
    return out


def y_title(metric: str) -> str:
    """The y axis's title of ``metric``: its name, with (%) where it is drawn in percent."""
    return metric_name(metric) + (" (%)" if in_percent(metric) else "")


def _add_line(fig, method, rest, suffix, points, theme, style, axis) -> None:
    dash, dodge = style
    color = method_color(method)
    name = method + (f" ({rest})" if rest else "") + suffix
    reference = method == "dense" and axis == "sparsity"
    if reference:
        dash = "dot"  # the reference line across the other methods' range
    xs = [_density(p[0]) * dodge if axis == "sparsity" else p[0] for p in points]
    ci = [p[1]["ci95"] for p in points]
    if all(c is not None for c in ci) and len(points) > 1:
        fig.add_trace(
            go.Scatter(
                x=xs + xs[::-1],
                y=[c[1] for c in ci] + [c[0] for c in ci[::-1]],
                fill="toself",
                fillcolor=alpha(color, 0.06 if reference else 0.15),
                line={"width": 0},
                hoverinfo="skip",
                showlegend=False,
                legendgroup=name,
            )
        )
    fig.add_trace(
        go.Scatter(
            x=xs,
            y=[p[1]["mean"] for p in points],
            mode="lines+markers",
            name=name,
            legendgroup=name,
            line={"color": color, "width": theme.line_width, "dash": dash},
            marker={"symbol": method_symbol(method), "size": theme.marker_size, "color": color},
            error_y=_error_bars(points, color),
            customdata=[[p[1]["n"], _ci_text(p[1]["ci95"])] for p in points],
            hovertemplate=f"<b>{name}</b><br>%{{y:.4g}} (n %{{customdata[0]}}, 95% "
            "%{customdata[1]})<extra></extra>",
        )
    )


def _error_bars(points, color: str) -> dict:
    """Each point's 95% interval as an error bar (a line's band shows it too; a lone
    point has only this)."""
    ci = [p[1]["ci95"] for p in points]
    if not any(c is not None for c in ci):
        return {"visible": False}
    means = [p[1]["mean"] for p in points]
    return {
        "type": "data",
        "symmetric": False,
        "array": [c[1] - m if c else 0.0 for c, m in zip(ci, means, strict=True)],
        "arrayminus": [m - c[0] if c else 0.0 for c, m in zip(ci, means, strict=True)],
        "color": color,
        "thickness": 1.5,
        "width": 4,
    }


def _ci_text(ci) -> str:
    return "n/a" if ci is None else f"{ci[0]:.4g} to {ci[1]:.4g}"


def _density(sparsity: float) -> float:
    return max(1.0 - sparsity, 1e-6)


def _x_axis(fig: go.Figure, axis: str, xs: list) -> None:
    """Log density axis labelled in sparsity; a log axis for widths and sizes that span 8x+."""
    if axis == "sparsity":
        ticks = sorted({x for x in xs if x is not None})
        fig.update_xaxes(
            type="log",
            autorange="reversed",
            tickvals=[_density(s) for s in ticks],
            ticktext=[f"{100 * s:.3g}%" for s in ticks],
            title_text="sparsity (log density axis)",
        )
        return
    numbers = [x for x in xs if isinstance(x, int | float) and not isinstance(x, bool)]
    title = AXIS_NAMES.get(axis, axis)
    if numbers and min(numbers) > 0 and max(numbers) / min(numbers) >= 8:
        values = sorted(set(numbers))
        fig.update_xaxes(type="log", tickvals=values, ticktext=[f"{v:g}" for v in values])
    fig.update_xaxes(title_text=title)
