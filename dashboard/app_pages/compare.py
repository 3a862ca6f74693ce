"""Compare: two methods over their seeds, or any two runs; every analysis side by side."""

import streamlit as st

from dashboard import data, memo, ui
from dashboard.figures import bands, verdicts
from dashboard.figures import compare as fc
from dashboard.figures import compare_methods as cm
from dashboard.figures import connectivity as fconn
from dashboard.figures import landscape as fl
from dashboard.figures import representations as frep
from dashboard.figures.robustness import noise_curves

view = ui.view()
st.title("Compare")
ui.require_study(view)
summary = view.summary
groups = cm.groups_of(view.runs)
names = list(cm.names_of(groups))
labels = fc.cached_labels(summary)
if len(labels) < 2:
    ui.missing_part("runs", "A second run to compare with")
modes = {"methods": "Two methods, over their seeds", "runs": "Two runs"}
several = bands.several_seeds(view.runs) and len(names) > 1
mode = ui.choice("Compare", modes, name="mode", default="methods" if several else "runs")
if mode == "methods" and len(names) < 2:
    st.info("The shown runs make one method group: pick more in the sidebar, or compare runs.")
    st.stop()


def two(what: str, options: list[str], keys: tuple[str, str]) -> tuple[str, str]:
    """Two different options, side by side (the page stops while they are the same)."""
    left, right = st.columns(2)
    with left:
        a = ui.select(f"{what} A", options, name=keys[0], default=options[0])
    with right:
        b = ui.select(f"{what} B", options, name=keys[1], default=options[1])
    if a == b:
        st.info(f"Pick two different {what.lower()}s.")
        st.stop()
    return a, b


if mode == "methods":
    by_name = cm.names_of(groups)
    sides = [(n, by_name[n], groups[by_name[n]]) for n in two("Method", names, ("ma", "mb"))]
    a, b = (cm.mean_run(*side) for side in sides)
else:
    a, b = (fc.run(summary, label) for label in two("Run", labels, ("a", "b")))
left, right = st.columns(2)
with left:
    pts = ui.choice("Margin for accuracies", verdicts.POINTS, name="points", default="0.5")
with right:
    rel = ui.choice("Margin for other metrics", verdicts.RELATIVE, name="diff", default="0.05")
margin = verdicts.Margin(points=float(pts), relative=float(rel))
wide = {"Metric": st.column_config.TextColumn("Metric", width="medium")}
if mode == "methods":
    frame = cm.methods_table(summary, sides[0][2], sides[1][2], margin)
    st.dataframe(cm.styled(frame), hide_index=True, width="stretch", height="content",
                 column_config=wide)  # fmt: skip
    st.caption(
        "B − A: the mean of the differences over the seeds both have (paired), with its 95% "
        "interval (Student t). Seed std: each side's seed-to-seed spread, the yardstick for a "
        "difference. B better or worse: the whole interval lies beyond the margin; equivalent: "
        "inside it; inconclusive: neither (more seeds would tell)."
    )
else:
    frame = fc.judged(fc.metrics_table(summary, a["label"], b["label"]), margin)
    st.dataframe(fc.styled(frame), hide_index=True, width="stretch", height="content",
                 column_config=wide)  # fmt: skip
    st.caption("One run each: B − A is judged against the margin, with no interval.")
pair_runs = [groups.get(side[1], []) for side in sides] if mode == "methods" else [[a], [b]]
first = [runs[0] for runs in pair_runs]  # the first seed of each side
run_pairs = cm.seed_pairs(*pair_runs) if mode == "methods" else [(a, b)]  # same seed, A and B
both = [*pair_runs[0], *pair_runs[1]]  # every run of A and of B


def having(part: str) -> list[str]:
    """The sides (first seeds) that have ``part``; say briefly which lack it, and why."""
    has = [r["label"] for r in first if fc.available(summary, r["label"])[part]]
    lacking = [r["label"] for r in first if r["label"] not in has]
    reasons = {f["label"]: f["error"] for f in data.failures(summary, part)}
    for label in [lab for lab in lacking if lab in reasons]:
        st.caption(f":material/error: {part.capitalize()} of {label} failed: {reasons[label]}")
    if waiting := [lab for lab in lacking if lab not in reasons]:
        st.caption(f"No {part} results for {' and '.join(waiting)} yet (see the Compute page).")
    return has


st.subheader("Training")
cols = st.columns(2) if not view.presentation else (st.container(), st.container())
with cols[0]:
    curves = data.histories(view.loaded, [r["key"] for runs in pair_runs for r in runs])
    if mode == "methods":
        ui.plot(memo.figure(cm.training_groups, sides, curves, view.theme), view, key="curves")
    else:
        ui.plot(memo.figure(fc.training_compare, a, b, curves, view.theme), view, key="curves")
with cols[1]:
    ui.plot(memo.figure(fc.layer_sparsity_compare, a, b, view.theme), view, key="layers")

st.subheader("Representations")
if len(having("representations")) == 2:
    (obj_a, _), (obj_b, _) = (fc.representation_run(summary, r["label"]) for r in first)
    rep = data.representations(view.loaded, obj_a) if obj_a == obj_b else None
    if rep is None:
        st.caption("A and B have different objectives: their embeddings share no frame.")
    elif not (pairs := cm.rep_pairs(rep, run_pairs)):
        st.caption("A and B share no seed in the representation analysis.")
    else:
        color_by = ui.choice("Colour by", frep.COLOR_BY, name="color", default="class")
        fig = memo.figure(frep.embedding_scatter, rep, list(pairs[0]), color_by, view.theme)
        ui.plot(fig, view, key="embedding")
        if mode == "methods":
            ui.plot(memo.figure(cm.flip_bars_groups, rep, pairs, view.theme), view, key="flips")
        else:
            ui.plot(memo.figure(fc.flip_bars, rep, *pairs[0], view.theme), view, key="flips")

st.subheader("Robustness")
if len(having("robustness")) == 2:
    if mode == "methods":
        ui.plot(
            memo.figure(cm.robustness_groups, summary, sides, view.theme), view, key="robustness"
        )
        ui.plot(  # each method's mean over its seeds, with a band
            memo.figure(noise_curves, both, summary["robustness"], view.theme, grouped=True),
            view,
            key="noise",
        )
    else:
        items = [fc.robustness_item(summary, r["label"]) for r in (a, b)]
        fig = memo.figure(fc.robustness_compare, a, items[0], b, items[1], view.theme)
        ui.plot(fig, view, key="robustness")
        ui.plot(memo.figure(noise_curves, [a, b], items, view.theme), view, key="noise")

st.subheader("Connectivity")
if mode == "methods":
    conn = summary["connectivity"]
    if fconn.shown_pairs(conn, both):
        fig = memo.figure(fconn.path_curves, conn, both, "test", view.theme, grouped=True)
        ui.plot(fig, view, key="connectivity")
        st.caption("A panel per method and kind of pair; the barriers are in the table above.")
    else:
        st.caption("No connectivity pairs of A or B yet (see the Compute page).")
elif having("connectivity"):
    ui.plot(
        memo.figure(fc.connectivity_compare, summary, a, b, view.theme), view, key="connectivity"
    )

st.subheader("Landscape")
has_landscape = having("landscape")
shown = [cm.surface_label(summary, runs) for runs in pair_runs]
panels = [p for _, p in fl.run_panels(summary["landscape"], [s for s in shown if s],
                                      lambda key: data.surface(view.loaded, key))]  # fmt: skip
if len(panels) == 2:
    fig = memo.figure(fl.surfaces_3d, panels, "loss", view.theme)
    png = {"toImageButtonOptions": {"format": "png", "scale": 3 if view.presentation else 2}}
    html = memo.figure(fl.linked_html, fig, config=png, plotly_src=data.plotly_js_src())
    st.iframe(html, height=int(fig.layout.height) + 20,
              alt="Loss surfaces of A and B")  # fmt: skip
    st.caption("Drag one surface: the other turns with it." + (
        " Each method's first seed." if mode == "methods" else ""))  # fmt: skip
else:
    st.caption("No 2-D loss surface of both sides yet (the landscape covers the first seed).")
if mode == "runs" and has_landscape:
    ui.plot(memo.figure(fc.sharpness_compare, summary, a, b, view.theme), view, key="sharpness")
