"""Robustness: accuracy under corruption, mCE, weight-noise curves, corrupted examples."""

import streamlit as st

from dashboard import data, memo, ui
from dashboard.figures import robustness as fr

view = ui.view()
st.title("Robustness")
ui.require_study(view)
items = view.summary["robustness"]
failed = ui.part_failures(view, "robustness")
if not any(i.get("corruption") for i in items):
    ui.missing_part("robustness analysis", "The robustness analysis", failed=failed)
shown = fr.pairs(view.runs, items)
if not shown:
    st.info("None of the selected runs has robustness results: pick runs in the sidebar.")
    st.stop()

# The summary first (one heatmap, quick to draw), then the summary numbers, then the
# detail: a panel per corruption with a line per run.
grouped = ui.grouped(view)
metric = ui.choice("Heatmap of", fr.CE_METRICS, name="heat", default="accuracy")
fig = memo.figure(fr.corruption_heatmap, view.runs, items, metric, view.theme, grouped=grouped)
ui.plot(fig, view, key="heatmap")
left, right = st.columns(2) if not view.presentation else (st.container(), st.container())
with left:
    if any(i.get("mce") is not None for _, i in shown):
        ui.plot(
            memo.figure(fr.mce_bars, view.runs, items, view.theme, grouped=grouped), view, key="mce"
        )
    else:
        st.info("mCE needs the dense run of the same seed: compute it to compare.")
with right:
    ui.plot(
        memo.figure(fr.noise_curves, view.runs, items, view.theme, grouped=grouped),
        view,
        key="noise",
    )
ui.plot(
    memo.figure(fr.corruption_curves, view.runs, items, view.theme, grouped=grouped),
    view,
    key="curves",
)

st.subheader("What the corruptions look like")
first = data.corruption_sample(view.loaded, 0)
if first is None:
    ui.missing_part("robustness analysis", "The corrupted test subset")
position = st.number_input(
    "Sample (position in the test subset)", 0, first["count"] - 1, 0, key="corrupt_sample"
)
sample = data.corruption_sample(view.loaded, int(position))
fig = memo.figure(
    fr.corruption_examples,
    sample["images"], sample["clean"], sample["names"], sample["severities"], view.theme,
    label=f"class {sample['label']}",
)  # fmt: skip
ui.plot(fig, view, key="examples")
