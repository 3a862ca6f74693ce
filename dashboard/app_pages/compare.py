"""Compare: any two runs of the study, every analysis side by side, differences highlighted."""

import streamlit as st

from dashboard import data, ui
from dashboard.figures import compare as fc
from dashboard.figures import representations as frep
from dashboard.figures.robustness import noise_curves

view = ui.view()
st.title("Compare")
ui.require_study(view)
summary = view.summary
labels = fc.cached_labels(summary)
if len(labels) < 2:
    ui.missing_part("runs", "A second run to compare with")


left, right = st.columns(2)
with left:
    a = fc.run(summary, ui.select("Run A", labels, name="a", default=labels[0]))
with right:
    b = fc.run(summary, ui.select("Run B", labels, name="b", default=labels[1]))
if a["label"] == b["label"]:
    st.info("Pick two different runs.")
    st.stop()
steps = {"0.01": "1%", "0.05": "5%", "0.1": "10%", "0.25": "25%"}
threshold = ui.choice("Highlight differences of at least", steps, name="diff", default="0.05")
st.dataframe(
    fc.styled(fc.metrics_table(summary, a["label"], b["label"]), float(threshold)),
    hide_index=True,
    width="stretch",
)
st.caption("B − A coloured: green where B is better, orange where worse, yellow: changed.")


def missing(part: str) -> list[str]:
    """Say (briefly) which of A and B lack ``part``; return the labels that have it."""
    has = [r["label"] for r in (a, b) if fc.available(summary, r["label"])[part]]
    lacking = [r["label"] for r in (a, b) if r["label"] not in has]
    reasons = {f["label"]: f["error"] for f in data.failures(summary, part)}
    for label in [lab for lab in lacking if lab in reasons]:
        st.caption(f":material/error: {part.capitalize()} of {label} failed: {reasons[label]}")
    if waiting := [lab for lab in lacking if lab not in reasons]:
        st.caption(f"No {part} results for {' and '.join(waiting)} yet (see the Compute page).")
    return has


st.subheader("Training")
cols = st.columns(2) if not view.presentation else (st.container(), st.container())
with cols[0]:
    curves = data.histories(view.loaded, [a["key"], b["key"]])
    ui.plot(fc.training_compare(a, b, curves, view.theme), view, key="curves")
with cols[1]:
    ui.plot(fc.layer_sparsity_compare(a, b, view.theme), view, key="layers")

st.subheader("Representations")
if len(missing("representations")) == 2:
    (obj_a, _), (obj_b, _) = (fc.representation_run(summary, r["label"]) for r in (a, b))
    rep = data.representations(view.loaded, obj_a) if obj_a == obj_b else None
    if rep is None:
        st.caption("A and B have different objectives: their embeddings share no frame.")
    else:
        ia, ib = (frep.run_labels(rep).index(r["label"]) for r in (a, b))
        color_by = ui.choice("Colour by", frep.COLOR_BY, name="color", default="class")
        fig = frep.embedding_scatter(rep, [ia, ib], color_by, view.theme)
        ui.plot(fig, view, key="embedding")
        ui.plot(fc.flip_bars(rep, ia, ib, view.theme), view, key="flips")

st.subheader("Robustness")
if len(missing("robustness")) == 2:
    items = [fc.robustness_item(summary, r["label"]) for r in (a, b)]
    fig = fc.robustness_compare(a, items[0], b, items[1], view.theme)
    ui.plot(fig, view, key="robustness")
    ui.plot(noise_curves([a, b], items, view.theme), view, key="noise")

st.subheader("Connectivity")
if missing("connectivity"):
    ui.plot(fc.connectivity_compare(summary, a, b, view.theme), view, key="connectivity")

st.subheader("Landscape")
if missing("landscape"):
    ui.plot(fc.sharpness_compare(summary, a, b, view.theme), view, key="sharpness")
