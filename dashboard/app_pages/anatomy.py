"""Anatomy: mask overlap, the lottery-ticket controls, weight movement, compression, bits."""

import streamlit as st

from dashboard import memo, ui
from dashboard.figures import anatomy as fa

view = ui.view()
st.title("Anatomy")
ui.require_study(view)
masks = view.summary.get("masks") or {}
compression = view.summary.get("compression") or []
quantization = view.summary.get("quantization") or []
for part in ("masks", "compression", "quantization"):
    ui.part_failures(view, part)
pairs = fa.pair_names(masks, view.runs)
computed = fa.cached_items(view.runs, compression) or fa.cached_items(view.runs, quantization)
if not pairs and not computed:
    ui.missing_part("anatomy analyses", "The mask, compression and quantization analyses")

st.subheader("Which weights the masks keep")
if pairs:
    layer = ui.select(
        "Layer", ["all layers", *fa.layer_names(masks)], name="layer", default="all layers"
    )
    layer = None if layer == "all layers" else layer
    ui.plot(
        memo.figure(fa.overlap_heatmap, view.runs, masks, view.theme, layer), view, key="overlap"
    )
    names = list(pairs)
    default = next((n for n in names if n.startswith("dense")), names[0])
    chosen = ui.select("Pair", names, name="pair", default=default)
    ui.plot(memo.figure(fa.movement_bars, pairs[chosen], view.theme), view, key="movement")
    st.caption(
        "Mean |w_final - w_init| over each run's own training, for the weights the other run "
        "keeps and prunes: with a dense run and a ticket, the kept weights moved more."
    )
else:
    st.info("The mask analysis of the shown runs is not computed yet.")

if fa.controls_rows(view.runs, masks):
    ui.plot(memo.figure(fa.controls_bars, view.runs, masks, view.theme), view, key="controls")
    st.caption(
        "Frankle & Carbin 2019: a winning ticket trains better than its mask on a fresh "
        "initialisation (reinit) and than a random mask of its per-layer sparsity; Zhou et al. "
        "2019: the signs of its initialisation carry most of that (signs)."
    )

st.subheader("Compression")
if fa.cached_items(view.runs, compression):
    ui.plot(
        memo.figure(fa.compression_table, view.runs, compression, view.theme),
        view,
        key="compression",
    )
else:
    st.info("The compression analysis of the shown runs is not computed yet.")

st.subheader("Quantization")
if fa.cached_items(view.runs, quantization):
    ui.plot(memo.figure(fa.bits_curves, view.runs, quantization, view.theme), view, key="bits")
else:
    st.info("The quantization analysis of the shown runs is not computed yet.")
