"""Representations: aligned embeddings of 2-4 runs, CKA, geometry per class, flipped samples."""

import streamlit as st

from dashboard import data, ui
from dashboard.figures import representations as fr

view = ui.view()
st.title("Representations")
ui.require_study(view)
failed = ui.part_failures(view, "representations")
items = [i for i in view.summary["representations"] if i["status"] == "cached"]
if not items:
    ui.missing_part("representations", "The representation analysis", failed=failed)
objectives = {i["objective"]: i["objective"] for i in items}
objective = next(iter(objectives))
if len(objectives) > 1:
    objective = ui.choice("Objective", objectives, name="objective", default=objective)
rep = data.representations(view.loaded, objective)
if rep is None:
    ui.missing_part("representations", "The representation analysis")

labels = fr.run_labels(rep)
shown = {r["label"] for r in view.runs}
options = [lab for lab in labels if lab in shown]
if not options:
    st.info("None of the selected runs has representations: pick runs in the sidebar.")
    st.stop()
picked = ui.pick(
    "Runs (2-4, side by side)",
    options,
    name="runs",
    default=options[: min(3, len(options))],
    most=4,
)
chosen = [labels.index(lab) for lab in picked]
if not chosen:
    st.info("Pick at least one run.")
    st.stop()
left, right = st.columns(2)
with left:
    color_by = ui.choice("Colour by", fr.COLOR_BY, name="color", default="class")
with right:
    dims = ui.choice("Embedding", {"2": "2-D", "3": "3-D"}, name="dims", default="2")

plot_col, sample_col = st.columns([4, 1]) if not view.presentation else (st.container(),) * 2
with plot_col:
    fig = fr.embedding_scatter(rep, chosen, color_by, view.theme, dims=int(dims))
    event = ui.plot(fig, view, key="embedding", select=dims == "2")
points = (event.selection.points if event else None) or []
if points and "customdata" in points[0]:
    st.session_state["sample"] = int(points[0]["customdata"][0])
with sample_col:
    positions = list(range(len(rep["labels"])))
    pos = st.selectbox(
        "Show sample #",
        positions,
        format_func=lambda p: str(int(rep["indices"][p])),
        key="sample",
        help="Or click a point in the 2-D plot.",
    )
    ui.plot(fr.sample_view(rep, pos, chosen, view.theme), view, key="sample_image")

ui.plot(fr.cka_heatmap(rep, chosen if len(chosen) > 1 else None, view.theme), view, key="cka")
ui.plot(fr.geometry_bars(rep, chosen, view.theme), view, key="geometry")
pruned = [r for r in chosen if fr.reference_of(rep, r) != r]
if pruned:
    which = st.selectbox("Flipped samples of", pruned, format_func=labels.__getitem__)
    ui.plot(fr.flipped_samples(rep, which, view.theme), view, key="flips")
