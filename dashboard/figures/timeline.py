"""Training curves on one time axis: each run after the trainings it was made from.

A pruned run's own history holds only its own training: magnitude's fine-tuning
epochs, a lottery round's retraining from its rewind step. Drawn against their
own epochs they all start at epoch 1 and look like training from scratch. Here
each run is drawn at the end of its lineage (``Reader.lineage``: dense training,
then prune + fine-tune, or round 1, round 2, ...), each phase placed after the
one it starts from, so the x axis is the training the network has had in all.

The axis is epochs of total training: cumulative optimizer steps divided by the
steps per epoch of the lineage's first training (the dense run). Epochs read
better than raw step counts (a 5-epoch dense run then 2 epochs of fine-tuning
is 0-5 then 5-7) and stay comparable across batch sizes. A lottery round that
rewinds to step ``k`` of a ``T``-step schedule adds its own ``T - k`` steps; the
replay to step ``k`` repeats dense training and is not counted again.

A training that several shown runs share (the dense run of a seed under every
pruned run of that seed, lottery round 1 under rounds 2 and 3) is drawn once:
in full when it is itself a shown run, else faint. Colour is always the method
that did the training; phase boundaries are neutral dotted lines.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import plotly.graph_objects as go

from dashboard.figures.bands import (
    GroupKey,
    add_band,
    alpha,
    by_method,
    group_name,
    interval,
    key_of,
    subtitle,
)
from dashboard.figures.pairs import STYLE_INK
from dashboard.figures.runs import cached
from dashboard.figures.theme import NORMAL, SEED_DASHES, Theme, apply, method_color, method_symbol

#: metric -> (history field, axis title, scale, figure title).
CURVE_METRICS = {
    "acc": ("test_acc", "Test accuracy (%)", 100.0, "Test accuracy during training"),
    "loss": ("test_loss", "Test loss (cross-entropy)", 1.0, "Test loss during training"),
}
#: Opacity of a shared earlier phase that is not itself a shown run.
FAINT = 0.4
X_TITLE = "Epochs of total training (cumulative optimizer steps / steps per dense epoch)"


def steps_per_epoch(lineage: Sequence[dict]) -> float:
    """Optimizer steps per epoch of the lineage's first training (1.0 if it has no history)."""
    first = lineage[0]
    history = first["history"]
    if not history or not history[-1].get("epoch"):
        return 1.0
    steps = history[-1]["step"] - first["start_step"]
    return steps / history[-1]["epoch"] if steps > 0 else 1.0


def place(lineage: Sequence[dict]) -> list[dict]:
    """Each entry of ``lineage`` with its place on the time axis.

    Adds ``x`` (the epoch of total training at each history record), ``x0`` and
    ``x1`` (where the entry's training starts and ends): entry ``i`` starts where
    entry ``i - 1`` ended, and record ``h`` of it sits at ``x0 + (h.step -
    start_step) / steps_per_epoch``.
    """
    per_epoch = steps_per_epoch(lineage)
    offset, out = 0.0, []
    for entry in lineage:
        start, history = entry["start_step"], entry["history"]
        x = [(offset + h["step"] - start) / per_epoch for h in history]
        end = offset + (history[-1]["step"] - start if history else 0)
        out.append({**entry, "x": x, "x0": offset / per_epoch, "x1": end / per_epoch})
        offset = end
    return out


def _segments(
    runs: Sequence[dict], lineages: Mapping[str, list[dict]], grouped: bool
) -> dict[frozenset, dict]:
    """The trainings to draw, each once: id (its run keys) -> {entries, final, name, key}.

    Ungrouped, a segment is one run's training; grouped, the trainings at one
    place of the lineages of a group's seeds. ``final`` marks a shown run (or
    group); the others are earlier phases only.
    """
    done = [r for r in cached(runs) if lineages.get(r["key"])]
    groups = list(by_method(done).items()) if grouped else [(key_of(r), [r]) for r in done]
    keys = [g for g, _ in groups]
    out: dict[frozenset, dict] = {}
    for group, members in groups:
        placed = [place(lineages[r["key"]]) for r in members]
        depth = min(len(p) for p in placed)
        columns = [[p[i] for p in placed] for i in range(depth - 1)] + [[p[-1] for p in placed]]
        for i, entries in enumerate(columns):
            ident = frozenset(e["key"] for e in entries)
            final = i == len(columns) - 1
            if final:
                name = group_name(group, keys) if grouped else members[0]["label"]
            else:
                name = group_name(key_of(entries[0]), [*keys, key_of(entries[0])])
                name = name if grouped else entries[0]["label"]
            seg = out.setdefault(
                ident, {"entries": entries, "final": final, "name": name, "key": group}
            )
            if final and not seg["final"]:
                seg.update(final=True, name=name, key=group)
    return out


def _hover(metric: str) -> str:
    """Hover text of a run's point (customdata: label, phase, step)."""
    field_name = CURVE_METRICS[metric][1].split(" (")[0].lower()
    value = " %{y:.2f}%" if metric == "acc" else " %{y:.4f}"
    return (
        "<b>%{customdata[0]}</b><br>%{customdata[1]}, step %{customdata[2]}"
        "<br>epoch %{x:.2f} of total training<br>" + field_name + value + "<extra></extra>"
    )


def _run_trace(seg: dict, metric: str, seeds: list, theme: Theme) -> go.Scatter:
    """One run's training as a line (faint when only an earlier phase)."""
    field, _, scale, _ = CURVE_METRICS[metric]
    (entry,) = seg["entries"]
    points = [
        (x, h)
        for x, h in zip(entry["x"], entry["history"], strict=True)
        if h.get(field) is not None
    ]
    method, final = entry["method"], seg["final"]
    legend = entry["method"] if final else entry["label"]
    return go.Scatter(
        x=[x for x, _ in points],
        y=[scale * h[field] for _, h in points],
        mode="lines+markers" if final else "lines",
        opacity=1.0 if final else FAINT,
        line={
            "color": method_color(method),
            "width": theme.line_width * (1.0 if final else 0.7),
            "dash": SEED_DASHES[seeds.index(entry["seed"]) % len(SEED_DASHES)],
        },
        marker={"symbol": method_symbol(method), "size": theme.marker_size * 0.6},
        name=legend,
        legendgroup=legend,
        showlegend=final,
        customdata=[[entry["label"], entry["phase"], h.get("step")] for _, h in points],
        hovertemplate=_hover(metric),
    )


def _group_values(seg: dict, metric: str) -> tuple[list[float], np.ndarray]:
    """The union of the seeds' x and their ``(n_seeds, n_x)`` values (NaN where one has none)."""
    field, _, scale, _ = CURVE_METRICS[metric]
    xs = sorted({round(x, 9) for e in seg["entries"] for x in e["x"]})
    where = {x: i for i, x in enumerate(xs)}
    values = np.full((len(seg["entries"]), len(xs)), np.nan)
    for row, entry in enumerate(seg["entries"]):
        for x, h in zip(entry["x"], entry["history"], strict=True):
            if h.get(field) is not None:
                values[row, where[round(x, 9)]] = scale * h[field]
    return xs, values


def _draw_group(
    fig: go.Figure, seg: dict, metric: str, theme: Theme, keys: Sequence[GroupKey]
) -> None:
    """A group's training: mean with a 95% band, or a faint mean when only an earlier phase
    (``keys``: every group drawn, for ``bands.group_color``)."""
    xs, values = _group_values(seg, metric)
    if seg["final"]:
        phase = seg["entries"][0]["phase"]
        add_band(fig, xs, values, key=seg["key"], name=seg["name"], theme=theme, hover=phase,
                 keys=keys)  # fmt: skip
        return
    mean, _, _ = interval(values)
    method = seg["entries"][0]["method"]
    fig.add_trace(
        go.Scatter(
            x=xs, y=mean, mode="lines", name=seg["name"], showlegend=False,
            line={"color": alpha(method_color(method), FAINT), "width": theme.line_width * 0.7},
            hovertemplate=f"<b>{seg['name']}</b> ({seg['entries'][0]['phase']}, mean)"
            "<br>epoch %{x:.2f} of total training: %{y:.4g}<extra></extra>",
        )
    )  # fmt: skip


def _faint_key(theme: Theme) -> go.Scatter:
    """The legend key of the faint lines (neutral: the faint line has its method's colour)."""
    return go.Scatter(
        x=[None], y=[None], mode="lines", name="earlier phase (drawn once)", opacity=FAINT,
        line={"color": STYLE_INK, "width": theme.line_width * 0.7}, hoverinfo="skip",
    )  # fmt: skip


def _phase_marks(fig: go.Figure, segments: Sequence[dict], metric: str, theme: Theme) -> None:
    """Shade the first training, and a dotted line with the phase names where each later one starts."""
    entries = [e for seg in segments for e in seg["entries"]]
    if not entries:
        return
    roots = [e for e in entries if e["x0"] == 0.0]
    first = "dense training" if all(e["method"] == "dense" for e in roots) else "training"
    starts: dict[float, list[str]] = {}
    for e in entries:
        if e["x0"] > 0.0:
            names = starts.setdefault(round(e["x0"], 6), [])
            if e["phase"] not in names:
                names.append(e["phase"])
    y, anchor = (0.02, "bottom") if metric == "acc" else (0.98, "top")
    step = 0.09 if metric == "acc" else -0.09
    font = {"size": max(theme.font_size - 2, 10), "color": STYLE_INK}
    fig.add_vrect(
        x0=0.0, x1=max(e["x1"] for e in roots), fillcolor=STYLE_INK, opacity=0.07,
        line_width=0, layer="below",
    )  # fmt: skip
    marks = [(0.0, first), *((x, " / ".join(n)) for x, n in sorted(starts.items()))]
    for i, (x, text) in enumerate(marks):
        if x > 0.0:
            fig.add_vline(x=x, line={"color": STYLE_INK, "width": 1.2, "dash": "dot"})
        fig.add_annotation(
            x=x, y=y + (i % 2) * step, xref="x", yref="paper", text=text, showarrow=False,
            xanchor="left", yanchor=anchor, xshift=4, font=font, bgcolor="rgba(255,255,255,0.8)",
        )  # fmt: skip


def training_timeline(
    runs: Sequence[dict],
    lineages: Mapping[str, list[dict]],
    metric: str = "acc",
    theme: Theme = NORMAL,
    *,
    grouped: bool = False,
) -> go.Figure:
    """Test accuracy (or loss) of every training that made the shown runs, on one time axis.

    Args:
        runs: summary run records (``runs`` of ``prunescope show --json``).
        lineages: run key -> ``Reader.lineage(key)`` (runs without one are left out).
        metric: ``"acc"`` or ``"loss"``.
        grouped: one line per method (setting, sparsity, objective) with the mean over
            seeds and its 95% band, instead of one line per run (colour: method, dash: seed).
    Returns:
        The figure; x in epochs of total training (see the module docstring).
    """
    _, axis_title, _, title = CURVE_METRICS[metric]
    segments = _segments(runs, lineages, grouped)
    seeds = sorted({e["seed"] for seg in segments.values() for e in seg["entries"]})
    fig = go.Figure()
    shown: set[str] = set()
    order = sorted(segments.values(), key=lambda s: (s["final"], s["entries"][0]["x0"]))
    for seg in order:
        if grouped:
            _draw_group(fig, seg, metric, theme, [s["key"] for s in segments.values()])
        else:
            fig.add_trace(_run_trace(seg, metric, seeds, theme))
    for trace in fig.data:
        if trace.name and trace.showlegend is not False:
            trace.showlegend = trace.name not in shown
            shown.add(trace.name)
    faint = any(not s["final"] for s in segments.values())
    if faint:
        fig.add_trace(_faint_key(theme))
    _phase_marks(fig, [seg for seg in segments.values()], metric, theme)
    if grouped and segments:
        groups = by_method(r for r in cached(runs) if lineages.get(r["key"]))
        note = subtitle(groups)
    else:
        dashes = ", ".join(f"{d} = seed {s}" for s, d in zip(seeds, SEED_DASHES, strict=False))
        note = "one line per run" + (f"; {dashes}" if len(seeds) > 1 else "")
    note += "; faint: an earlier phase, drawn once" if faint else ""
    apply(fig, theme, title=f"{title}, all phases<br><sup>{note}</sup>")
    fig.update_xaxes(title_text=X_TITLE if theme.name == "normal" else "Epochs of total training")
    fig.update_yaxes(title_text=axis_title)
    return fig
