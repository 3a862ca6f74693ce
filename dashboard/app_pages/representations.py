"""Representations: aligned embeddings of 2-4 runs (one sample ringed in each, ``?sample=``),
CKA, the numbers per run or per method, geometry per class, flipped samples."""

import streamlit as st

from dashboard import data, memo, ui
from dashboard.figures import representation_numbers as rn
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
shown_settings = {r.get("setting_label", "") for r in view.runs}
settings = [
    s for s in dict.fromkeys(i.get("setting_label", "") for i in items) if s in shown_settings
]
setting = settings[0] if settings else ""
if len(settings) > 1:  # a sweep: one embedding per setting (its networks share a shape)
    setting = ui.select("Setting", settings, name="rep_setting", default=setting)
rep = data.representations(view.loaded, objective, setting)
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
    dims = ui.choice(
        "Embedding", {"2": "2-D", "3": "3-D (cameras linked)"}, name="dims", default="2"
    )

# A click on a point (the chart's state, read before it is drawn again) chooses the sample.
indices = [str(int(i)) for i in rep["indices"]]
clicked = fr.clicked_index(st.session_state.get("embedding"))
if clicked in indices and clicked != st.session_state.get("_sample_clicked"):
    st.session_state["_sample_clicked"] = clicked
    st.session_state["select_sample"] = clicked
plot_col, sample_col = st.columns([4, 1]) if not view.presentation else (st.container(),) * 2
with sample_col:
    index = ui.select("Sample (dataset index)", indices, name="sample", default=indices[0])
    pos = fr.sample_position(rep, index)
    st.caption("Click a point in the 2-D plot: it is ringed in every panel.")
    if "images" in rep:
        ui.plot(memo.figure(fr.sample_view, rep, pos, chosen, view.theme), view, key="sample_image")
with plot_col:
    fig = memo.figure(
        fr.embedding_scatter, rep, chosen, color_by, view.theme, dims=int(dims), sample=pos
    )
    if dims == "2":
        ui.plot(fig, view, key="embedding", select=True)
    else:
        html = memo.figure(
            fr.linked_embedding_html,
            fig,
            presentation=view.presentation,
            plotly_src=data.plotly_js_src(),
        )
        st.iframe(html, height=int(fig.layout.height) + 20, alt="3-D embeddings")
        st.caption("Drag one scene: the others turn with it (the toolbar's home button resets).")

ui.plot(
    memo.figure(fr.cka_heatmap, rep, chosen if len(chosen) > 1 else None, view.theme),
    view,
    key="cka",
)
if ui.grouped(view):
    groups = rn.group_values(rep["summary"], view.runs)
    ui.plot(memo.figure(rn.group_figure, groups, view.theme), view, key="numbers")
    ui.table(rn.group_table(groups))
else:
    ui.table(rn.run_table(rep["summary"], [lab for lab in labels if lab in shown]))
ui.plot(memo.figure(fr.geometry_bars, rep, chosen, view.theme), view, key="geometry")
pruned = [r for r in chosen if fr.reference_of(rep, r) != r]
if pruned:
    which = st.selectbox("Flipped samples of", pruned, format_func=labels.__getitem__)
    ui.plot(memo.figure(fr.flipped_samples, rep, which, view.theme), view, key="flips")
