"""Connectivity: loss along the path between two networks, barriers, instability, sparsity."""

import streamlit as st

from dashboard import memo, ui
from dashboard.figures import connectivity as fc
from dashboard.figures import curves as fcv
from dashboard.figures import ensembles as fe
from dashboard.figures import repair as fr

view = ui.view()
st.title("Mode connectivity")
ui.require_study(view)
conn = view.summary["connectivity"]
cached = [p for p in conn["pairs"] if p["status"] == "cached"]
stable = [p for g in conn["instability"] for p in g["points"] if p["status"] == "cached"]
for note in conn["notes"]:
    st.caption(f":material/info: {note[0].upper()}{note[1:]}.")
failed = ui.part_failures(view, "connectivity")
if not cached and not stable:
    ui.missing_part("connectivity analysis", "The connectivity analysis", failed=failed)

left, middle, right = st.columns(3)
with left:
    split = ui.choice("Split", fc.SPLITS, name="split", default="test")
with middle:
    barrier = ui.choice("Barrier", fc.BARRIERS, name="barrier", default="barrier_entezari")
with right:
    mode = ui.choice("REPAIR", fr.REPAIR_MODES, name="repair", default="both")
full, conn = conn, fr.with_repair(conn, mode)
grouped = ui.grouped(view)
pairs_shown = bool(fc.shown_pairs(conn, view.runs))
if pairs_shown:
    ui.plot(
        memo.figure(fc.path_curves, conn, view.runs, split, view.theme, grouped=grouped),
        view,
        key="paths",
    )
else:
    st.info(fc.no_pairs_message(conn), icon=":material/link_off:")
left, right = st.columns(2) if not view.presentation else (st.container(), st.container())
with left:
    if pairs_shown:
        ui.plot(
            memo.figure(
                fc.barrier_bars, conn, view.runs, barrier, split, view.theme, grouped=grouped
            ),
            view,
            key="barriers",
        )
with right:
    if stable:
        ui.plot(
            memo.figure(
                fc.instability_curve, conn, view.runs, barrier, split, view.theme, grouped=grouped
            ),
            view,
            key="inst",
        )
        st.caption(
            "Instability (Frankle et al. 2020): two copies trained from one rewind step with "
            "different data orders; near 0, the rest of training is stable to SGD noise."
        )
    else:
        st.info("The instability test is not computed (or turned off) for this study.")
if fe.ensemble_pairs(conn, view.runs):
    ui.plot(
        memo.figure(fe.ensemble_vs_midpoint, conn, view.runs, split, view.theme),
        view,
        key="ensembles",
    )
if fcv.shown_curves(conn, view.runs):
    ui.plot(memo.figure(fcv.curve_paths, conn, view.runs, split, view.theme), view, key="curves")
    left, right = st.columns(2) if not view.presentation else (st.container(), st.container())
    with left:
        ui.plot(
            memo.figure(fcv.curve_barriers, conn, view.runs, split, view.theme),
            view,
            key="curve_bars",
        )
    with right:
        ui.plot(
            memo.figure(fcv.curve_history, conn, view.runs, view.theme), view, key="curve_history"
        )
if fr.variance_pairs(full, view.runs):
    where = ui.choice("Variance measured at", fr.WHERE, name="where", default="post")
    ui.plot(
        memo.figure(fr.variance_collapse, full, view.runs, where, view.theme), view, key="variance"
    )
    st.caption(
        "Variance collapse (Jordan et al. 2022): below 1, the midpoint's units vary less than "
        "the ends'; REPAIR renormalises every pre-activation to the ends' interpolated "
        "statistics, so its dashed lines sit at 1."
    )
if fc.sparse_pairs(conn, view.runs):
    ui.plot(memo.figure(fc.sparsity_paths, conn, view.runs, view.theme), view, key="sparsity")
