"""Overview: every run of the study, its accuracy against sparsity, its layers, its curves."""

import streamlit as st

from dashboard import data, memo, ui
from dashboard.figures import (
    accuracy_vs_sparsity,
    layer_sparsity_heatmap,
    runs_table,
    sweeps,
)
from dashboard.figures.runs import cached
from dashboard.figures.timeline import training_timeline

view = ui.view()
st.title("Overview")
ui.require_study(view)
info = view.summary["study"]
st.caption(info["description"] or f"{info['dataset']} · {info['arch']}")
ui.missing_note(view.summary)
ui.failures(data.failures(view.summary))

if not view.runs:
    st.info("No runs selected: pick methods, sparsities and seeds in the sidebar.")
    st.stop()

st.subheader("Runs")
ui.table(runs_table(view.runs))

done = cached(view.runs)
if not done:
    st.info("None of the selected runs is computed yet: see the Compute page.")
    st.stop()

grouped = ui.grouped(view)
left, right = st.columns(2) if not view.presentation else (st.container(), st.container())
with left:
    if grouped:
        figure = memo.figure(
            sweeps.metric_vs_axis,
            view.summary,
            ["test_acc"],
            "sparsity",
            view.theme,
            methods=sorted({r["method"] for r in view.runs}),
            settings=sorted({r.get("setting_label", "") for r in view.runs}),
        )
        ui.plot(figure, view, key="accuracy")
    else:
        ui.plot(memo.figure(accuracy_vs_sparsity, view.runs, view.theme), view, key="accuracy")
with right:
    ui.plot(memo.figure(layer_sparsity_heatmap, view.runs, view.theme), view, key="layers")

metric = ui.choice(
    "Training curve", {"acc": "Test accuracy", "loss": "Test loss"}, name="curve", default="acc"
)
lineages = data.lineages(view.loaded, [r["key"] for r in done])
figure = memo.figure(training_timeline, view.runs, lineages, metric, view.theme, grouped=grouped)
ui.plot(figure, view, key="curves")
