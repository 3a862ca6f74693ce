"""Two runs side by side: a metrics table with the differences, and A-vs-B figures.

Runs are named by their labels in the summary (``prunescope show --json``,
docs/summary.md). Every function reads what is there and leaves out what is not
computed for a run, so a pair with missing analyses still compares what it can.
No streamlit here: the Compare page draws these.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from dashboard.figures.theme import (
    INK,
    NORMAL,
    PALE,
    Theme,
    apply,
    method_color,
    method_symbol,
)
from dashboard.figures.verdicts import Margin, judge, style

#: Line dash and bar pattern of run A and run B, so the two stay apart when they
#: share a method (and so a colour).
DASH = {"A": "solid", "B": "dash"}
PATTERN = {"A": "", "B": "/"}
DEFAULT_MARGIN = Margin()


def run(summary: Mapping[str, Any], label: str) -> dict | None:
    """The run record with ``label``."""
    return next((r for r in summary["runs"] if r["label"] == label), None)


def cached_labels(summary: Mapping[str, Any]) -> list[str]:
    """Labels of the runs whose results are in the store, in summary order."""
    return [r["label"] for r in summary["runs"] if r.get("status") == "cached"]


def robustness_item(summary: Mapping[str, Any], label: str) -> dict | None:
    """The cached robustness record of run ``label``."""
    return next(
        (
            i
            for i in summary.get("robustness", [])
            if i.get("label") == label and i.get("status") == "cached" and i.get("corruption")
        ),
        None,
    )


def representation_run(summary: Mapping[str, Any], label: str) -> tuple[str, dict] | None:
    """(objective, per-run record) of run ``label`` in a cached representations entry."""
    for record in summary.get("representations", []):
        if record.get("status") != "cached":
            continue
        for r in record.get("runs", []):
            if r["label"] == label:
                return record["objective"], r
    return None


def connectivity_curves(summary: Mapping[str, Any], label: str) -> list[dict]:
    """Cached paths that start or end at run ``label``: name, kind, barriers, curve."""
    conn = summary.get("connectivity") or {}
    out = []
    for p in conn.get("pairs", []):
        # A same-init pair belongs to its pruned run (B); the dense run has one per method.
        ends = (p["run_a"], p["run_b"]) if p["pair"] == "seeds" else (p["run_b"],)
        if p.get("status") != "cached" or label not in ends:
            continue
        partner = p["run_b"] if p["run_a"] == label else p["run_a"]
        what = "seed twin" if p["pair"] == "seeds" else "its dense run, same init"
        name = f"to {what}, {p['alignment']}" + (" + REPAIR" if p.get("repair") else "")
        out.append({"name": name, "partner": partner, **p})
    for inst in conn.get("instability", []):
        if inst.get("label") != label:
            continue
        for point in inst.get("points", []):
            if point.get("status") == "cached":
                out.append(
                    {
                        "name": f"instability from step {point['rewind_step']}",
                        "partner": "",
                        **point,
                    }
                )
    return out


def landscape_run(summary: Mapping[str, Any], label: str) -> dict | None:
    """The landscape record of run ``label`` (surfaces and sharpness), if any is cached."""
    for r in (summary.get("landscape") or {}).get("runs", []):
        if r["label"] != label:
            continue
        surfaces = [s for s in r.get("surfaces", []) if s.get("status") == "cached"]
        sharp = r.get("sharpness") if (r.get("sharpness") or {}).get("status") == "cached" else None
        if surfaces or sharp:
            return {"surfaces": surfaces, "sharpness": sharp}
    return None


def available(summary: Mapping[str, Any], label: str) -> dict[str, bool]:
    """Which analyses are computed for run ``label``."""
    return {
        "representations": representation_run(summary, label) is not None,
        "robustness": robustness_item(summary, label) is not None,
        "connectivity": bool(connectivity_curves(summary, label)),
        "landscape": landscape_run(summary, label) is not None,
    }


def _pct(v: float | None) -> float | None:
    """A fraction as a percentage (None stays None)."""
    return None if v is None else 100.0 * float(v)


def run_metrics(summary: Mapping[str, Any], label: str) -> list[tuple[str, str, float | None, str]]:
    """(analysis, metric, value, better) rows of run ``label``; better: higher, lower or ''."""
    rows: list[tuple[str, str, float | None, str]] = []
    r = run(summary, label) or {}
    if r.get("status") == "cached":
        rows += [
            ("Run", "Test accuracy (%)", _pct(r.get("test_acc")), "higher"),
            ("Run", "Test loss", r.get("test_loss"), "lower"),
            ("Run", "Validation accuracy (%)", _pct(r.get("val_acc")), "higher"),
            ("Run", "Achieved sparsity (%)", _pct(r.get("achieved_sparsity")), ""),
            ("Run", "Nonzero parameters", r.get("nonzero_params"), ""),
        ]
    if found := representation_run(summary, label):
        rep = found[1]
        geo = rep.get("geometry_mean") or {}
        rows += [
            ("Representations", "k-NN accuracy on features (%)", _pct(rep.get("knn_acc")), "higher"),
            ("Representations", "Silhouette by class", rep.get("silhouette"), "higher"),
            ("Representations", "Trustworthiness of 2-D UMAP", rep.get("trustworthiness_2d"), "higher"),
            ("Representations", "Flips lost vs dense", rep.get("flips_lost"), "lower"),
            ("Representations", "Flips gained vs dense", rep.get("flips_gained"), "higher"),
            ("Representations", "Mean angle to class direction (deg)", geo.get("angle"), "lower"),
            ("Representations", "Mean logit margin", geo.get("margin"), "higher"),
            ("Representations", "Mean feature norm", geo.get("norm"), ""),
        ]  # fmt: skip
    if item := robustness_item(summary, label):
        noise = sorted(item.get("noise") or [], key=lambda n: n["sigma"])
        rows += [
            ("Robustness", "Clean accuracy on the subset (%)", _pct(item.get("clean_accuracy")), "higher"),
            ("Robustness", "Mean corruption accuracy (%)", _pct(item.get("mean_corruption_accuracy")), "higher"),
            ("Robustness", "mCE (% of dense)", _pct(item.get("mce")), "lower"),
            ("Robustness", "Relative mCE (% of dense)", _pct(item.get("relative_mce")), "lower"),
        ]  # fmt: skip
        if noise:
            top = noise[-1]
            rows.append(
                (
                    "Robustness",
                    f"Accuracy under weight noise σ={top['sigma']:g} (%)",
                    _pct(top["accuracy_mean"]),
                    "higher",
                )
            )
    for c in connectivity_curves(summary, label):
        barrier = ((c.get("barriers") or {}).get("test") or {}).get("barrier_entezari")
        rows.append(("Connectivity", f"Test loss barrier, {c['name']}", barrier, "lower"))
    if land := landscape_run(summary, label):
        if land["surfaces"]:
            centre = land["surfaces"][0].get("centre_loss")
            rows.append(("Landscape", "Loss at the centre (landscape subset)", centre, "lower"))
        for s in land["surfaces"]:
            rise = None if s.get("max_loss") is None else s["max_loss"] - s["centre_loss"]
            rows.append(("Landscape", f"Loss rise over the {s['dims']}-D grid", rise, "lower"))
        if sharp := land["sharpness"]:
            top = (sharp.get("eigenvalues") or [None])[0]
            rows += [
                ("Landscape", "Top Hessian eigenvalue", top, "lower"),
                ("Landscape", "Hessian trace", sharp.get("trace"), "lower"),
            ]
    return rows


def metrics_table(summary: Mapping[str, Any], a: str, b: str) -> pd.DataFrame:
    """Analysis, Metric, A, B, B − A and which side is better, for every metric either run has."""
    rows: dict[tuple[str, str], dict] = {}
    for side, label in (("A", a), ("B", b)):
        for analysis, metric, value, better in run_metrics(summary, label):
            row = rows.setdefault(
                (analysis, metric),
                {"Analysis": analysis, "Metric": metric, "A": None, "B": None, "Better": better},
            )
            row[side] = None if value is None else float(value)
    frame = pd.DataFrame(
        list(rows.values()), columns=["Analysis", "Metric", "A", "B", "Better"]
    ).astype({"A": "float64", "B": "float64"})
    frame.insert(4, "B − A", frame["B"] - frame["A"])
    return frame


def judged(frame: pd.DataFrame, margin: Margin = DEFAULT_MARGIN) -> pd.DataFrame:
    """The metrics table with a ``Verdict`` on each ``B − A`` (one run each: no interval)."""
    verdicts = [
        judge(row["Metric"], row["Better"], row["A"], row["B"], row["B − A"], None, margin)
        for _, row in frame.iterrows()
    ]
    return frame.drop(columns="Better").assign(Verdict=verdicts)


def styled(frame: pd.DataFrame):
    """A judged table for people: verdicts coloured, numbers as 87.4, 11.1k, +0.5 points."""
    return style(frame, {"A": "value", "B": "value", "B − A": "diff"})


# -- figures -----------------------------------------------------------------------------


def _name(side: str, label: str) -> str:
    """Legend name of a run: 'A: magnitude 90% s0'."""
    return f"{side}: {label}"


def training_compare(
    a: dict, b: dict, histories: Mapping[str, list[dict]], theme: Theme = NORMAL
) -> go.Figure:
    """Test accuracy and test loss per epoch of A and B, overlaid (two panels)."""
    fig = make_subplots(rows=1, cols=2, subplot_titles=["Test accuracy (%)", "Test loss"])
    for side, r in (("A", a), ("B", b)):
        points = histories.get(r["key"], [])
        for col, (field, scale) in enumerate((("test_acc", 100.0), ("test_loss", 1.0)), 1):
            pts = [h for h in points if h.get(field) is not None]
            fig.add_trace(
                go.Scatter(
                    x=[h["epoch"] for h in pts],
                    y=[scale * h[field] for h in pts],
                    mode="lines+markers",
                    name=_name(side, r["label"]),
                    legendgroup=side,
                    showlegend=col == 1,
                    line={
                        "color": method_color(r["method"]),
                        "width": theme.line_width,
                        "dash": DASH[side],
                    },
                    marker={"symbol": method_symbol(r["method"]), "size": theme.marker_size * 0.6},
                    hovertemplate=f"<b>{side}</b> epoch %{{x}}: %{{y:.4g}}<extra></extra>",
                ),
                row=1,
                col=col,
            )
    apply(fig, theme, title="Training curves, A (solid) and B (dashed)")
    epochs = max(
        (h.get("epoch", 0) for r in (a, b) for h in histories.get(r["key"], [])), default=0
    )
    fig.update_xaxes(title_text="Epoch", dtick=1 if epochs <= 20 else None)
    fig.update_annotations(font={"size": theme.font_size + 1})
    return fig


def layer_sparsity_compare(a: dict, b: dict, theme: Theme = NORMAL) -> go.Figure:
    """Sparsity of every prunable layer, A and B as grouped bars (%)."""
    layers = list(
        dict.fromkeys([*(a.get("layer_sparsity") or {}), *(b.get("layer_sparsity") or {})])
    )
    fig = go.Figure()
    for side, r in (("A", a), ("B", b)):
        values = r.get("layer_sparsity") or {}
        fig.add_trace(
            go.Bar(
                x=[n.removesuffix(".weight") for n in layers],
                y=[_pct(values.get(n)) for n in layers],
                name=_name(side, r["label"]),
                marker={
                    "color": method_color(r["method"]),
                    "pattern": {"shape": PATTERN[side], "fgcolor": "white"},
                },
                hovertemplate=f"<b>{side}</b> %{{x}}: %{{y:.1f}}%<extra></extra>",
            )
        )
    apply(fig, theme, title="Sparsity per layer, A vs B")
    fig.update_layout(barmode="group")
    fig.update_yaxes(title_text="Sparsity (%)", range=[0, 105])
    fig.update_xaxes(title_text="Layer (prunable weight)", ticks="")
    return fig


def _corruption_means(item: dict) -> dict[str, float]:
    """Accuracy per corruption, averaged over severities (clean first), in %."""
    names = list(dict.fromkeys(r["corruption"] for r in item["corruption"]))
    return {
        n: 100 * float(np.mean([r["accuracy"] for r in item["corruption"] if r["corruption"] == n]))
        for n in names
    }


def robustness_compare(
    a: dict, item_a: dict, b: dict, item_b: dict, theme: Theme = NORMAL
) -> go.Figure:
    """Per corruption: mean accuracy of A and B (top) and B − A (bottom, coloured by sign)."""
    acc_a, acc_b = _corruption_means(item_a), _corruption_means(item_b)
    names = [n for n in acc_a if n in acc_b]
    ticks = [n.replace("_", " ") for n in names]
    fig = make_subplots(
        rows=2, cols=1, shared_xaxes=True, vertical_spacing=0.08, row_heights=[0.6, 0.4]
    )
    for side, r, acc in (("A", a, acc_a), ("B", b, acc_b)):
        fig.add_trace(
            go.Bar(
                x=ticks,
                y=[acc[n] for n in names],
                name=_name(side, r["label"]),
                marker={
                    "color": method_color(r["method"]),
                    "pattern": {"shape": PATTERN[side], "fgcolor": "white"},
                },
                hovertemplate=f"<b>{side}</b> %{{x}}: %{{y:.1f}}%<extra></extra>",
            ),
            row=1,
            col=1,
        )
    diff = [acc_b[n] - acc_a[n] for n in names]
    fig.add_trace(
        go.Bar(
            x=ticks,
            y=diff,
            name="B − A",
            showlegend=False,
            marker={"color": [INK if d >= 0 else PALE for d in diff]},
            hovertemplate="%{x}: B − A %{y:+.1f} points<extra></extra>",
        ),
        row=2,
        col=1,
    )
    title = "Accuracy per corruption (mean over severities), A vs B"
    apply(fig, theme, title=title, height=int(theme.height * 1.4))
    fig.update_layout(barmode="group")
    fig.update_yaxes(title_text="Accuracy (%)", row=1, col=1)
    fig.update_yaxes(title_text="B − A (points)", row=2, col=1)
    fig.update_xaxes(tickangle=-35, ticks="", row=2, col=1)
    return fig


def flips_between(rep: Mapping[str, Any], ia: int, ib: int) -> dict[str, np.ndarray]:
    """Per true class: samples A gets right and B wrong ("lost") and the reverse ("gained")."""
    labels, preds = np.asarray(rep["labels"]), np.asarray(rep["preds"])
    right_a, right_b = preds[ia] == labels, preds[ib] == labels
    n = int(labels.max()) + 1 if len(labels) else 0
    return {
        "lost": np.bincount(labels[right_a & ~right_b], minlength=n),
        "gained": np.bincount(labels[~right_a & right_b], minlength=n),
    }


def flip_bars(rep: Mapping[str, Any], ia: int, ib: int, theme: Theme = NORMAL) -> go.Figure:
    """Samples whose prediction flips between A and B, per class; CKA(A, B) in the title."""
    flips = flips_between(rep, ia, ib)
    names = rep["summary"].get("classes") or []
    classes = [str(names[c]) if c < len(names) else str(c) for c in range(len(flips["lost"]))]
    cka = float(np.asarray(rep["summary"]["cka"], dtype=float)[ia, ib])
    fig = go.Figure()
    for key, name, color in (
        ("lost", "A right, B wrong", PALE),
        ("gained", "A wrong, B right", INK),
    ):
        fig.add_trace(
            go.Bar(
                x=classes,
                y=flips[key],
                name=f"{name} ({int(flips[key].sum())})",
                marker={"color": color},
                hovertemplate=f"class %{{x}}: %{{y}} samples {name}<extra></extra>",
            )
        )
    title = f"Prediction flips between A and B by class<br><sup>linear CKA(A, B) = {cka:.3f}</sup>"
    apply(fig, theme, title=title)
    fig.update_layout(barmode="group")
    fig.update_xaxes(title_text="True class", type="category", ticks="")
    fig.update_yaxes(title_text="Samples")
    return fig


def connectivity_compare(
    summary: Mapping[str, Any], a: dict, b: dict, theme: Theme = NORMAL
) -> go.Figure:
    """Test loss along every cached path from A and from B (colour: run; dash: which path)."""
    fig = go.Figure()
    dashes = ["solid", "dash", "dot", "dashdot", "longdash", "longdashdot"]
    for side, r in (("A", a), ("B", b)):
        for k, c in enumerate(connectivity_curves(summary, r["label"])):
            curve = c.get("curve") or {}
            if not curve.get("alphas"):
                continue
            fig.add_trace(
                go.Scatter(
                    x=curve["alphas"],
                    y=curve["test_loss"],
                    mode="lines",
                    name=f"{side}: {c['name']}" + (f" ({c['partner']})" if c["partner"] else ""),
                    line={
                        "color": method_color(r["method"]),
                        "width": theme.line_width,
                        "dash": dashes[k % len(dashes)],
                    },
                    hovertemplate=f"<b>{side}</b> {c['name']}<br>α %{{x:.2f}}"
                    "<br>test loss %{y:.4f}<extra></extra>",
                )
            )
    apply(fig, theme, title="Test loss along the linear paths from A and from B")
    fig.update_xaxes(title_text="Interpolation α (0: the run, 1: its partner)")
    fig.update_yaxes(title_text="Test loss")
    return fig


def sharpness_compare(
    summary: Mapping[str, Any], a: dict, b: dict, theme: Theme = NORMAL
) -> go.Figure:
    """Top Hessian eigenvalues of A and B as grouped bars (where computed)."""
    fig = go.Figure()
    for side, r in (("A", a), ("B", b)):
        land = landscape_run(summary, r["label"]) or {}
        eig = (land.get("sharpness") or {}).get("eigenvalues") or []
        fig.add_trace(
            go.Bar(
                x=[f"λ{i}" for i in range(1, len(eig) + 1)],
                y=eig,
                name=_name(side, r["label"]),
                marker={
                    "color": method_color(r["method"]),
                    "pattern": {"shape": PATTERN[side], "fgcolor": "white"},
                },
                hovertemplate=f"<b>{side}</b> %{{x}} = %{{y:.4g}}<extra></extra>",
            )
        )
    apply(fig, theme, title="Top Hessian eigenvalues (Lanczos), A vs B")
    fig.update_layout(barmode="group")
    fig.update_yaxes(title_text="Eigenvalue")
    fig.update_xaxes(ticks="")
    return fig
