"""Sweeps: any metric against sparsity or a swept axis, one line per method, 95% bands."""

import streamlit as st

from dashboard import memo, ui
from dashboard.figures import sweeps as fs

view = ui.view()
st.title("Metric against an axis")
ui.require_study(view)
summary = view.summary
axes = fs.axes_of(summary)
metrics = fs.metrics_of(summary)
if not axes:
    st.info(
        "This study has one sparsity per method and no swept axis. List several sparsities "
        "(or a ladder) or an axis such as `width = [64, 256]` in the study to draw a metric "
        "against it.",
        icon=":material/show_chart:",
    )
    st.stop()
if not metrics:
    ui.missing_part("group statistics", "The runs")
default_axis = next((a for a in axes if a != "sparsity"), axes[0])
axis = ui.choice(
    "Against", {a: fs.AXIS_NAMES.get(a, a) for a in axes}, name="axis", default=default_axis
)
barriers = sorted({m.split(".", 2)[2] for m in metrics if m.startswith("barrier.")})
default = "barrier.weight.test.barrier_entezari" if axis != "sparsity" else "test_acc"
default = default if default in metrics or default in barriers else metrics[0]
names = {m: fs.metric_name(m) for m in metrics}
if barriers:
    for b in barriers:
        names[f"barriers:{b}"] = f"every alignment's {b.split('.')[-1]} ({b.split('.')[0]})"
left, right = st.columns([3, 1])
with left:
    keys = list(names)
    pick = st.selectbox(
        "Metric",
        keys,
        index=keys.index(default) if default in keys else 0,
        format_func=names.get,
        key="sweep_metric",
    )
if pick.startswith("barriers:"):
    tail = pick.split(":", 1)[1]
    chosen = sorted(m for m in metrics if m.startswith("barrier.") and m.endswith(tail))
else:
    chosen = [pick]
methods = sorted({g["method"] for g in summary["groups"]})
with right:
    shown = st.multiselect("Methods", methods, default=methods, key="sweep_methods")
ui.plot(
    memo.figure(fs.metric_vs_axis, summary, chosen, axis, view.theme, methods=shown),
    view,
    key="sweep",
)
st.caption(
    "Each point is the mean over seeds (barriers: over pairs of seeds); the band is its 95% "
    "confidence interval (Student t), drawn where there are 2 or more. Entezari et al. 2022 "
    "(Figure 1): the barrier after weight matching falls as networks widen."
)
