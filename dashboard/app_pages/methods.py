"""Methods: DessiLBI's support growing along its path, and each layer's pruning sensitivity."""

import streamlit as st

from dashboard import memo, ui
from dashboard.figures import sparsity_paths as fp

view = ui.view()
st.title("Methods")
ui.require_study(view)
shown = {r["key"] for r in view.runs}

st.subheader("DessiLBI: the support of Γ along the path")
paths = [i for i in view.summary.get("dessilbi", []) if i.get("path") and i["key"] in shown]
if paths:
    labels = [i["label"] for i in paths]
    label = ui.select("DessiLBI run", labels, name="lbi", default=labels[0])
    item = next(i for i in paths if i["label"] == label)
    ui.plot(memo.figure(fp.path_figure, item, view.theme), view, key="lbi_path")
    reached = "held" if item.get("support_reached") else "did not yet hold"
    st.caption(
        f"The subnet keeps {100 * (1 - item['requested_sparsity']):.0f}% of each layer's units, "
        f"ranked at epoch {item['stop_epoch']} (the support {reached} that share), retrained "
        f"from {'the initialisation' if item.get('retrain') == 'init' else 'the path'}: "
        f"{100 * item['test_acc']:.1f}% test accuracy, {100 * item['achieved_sparsity']:.1f}% "
        "of the weights pruned."
    )
else:
    st.info("No computed DessiLBI run among the shown runs: add a `dessilbi` method entry.")

st.subheader("Per-layer sensitivity")
items = [i for i in view.summary.get("sensitivity", []) if i.get("layers")]
items = [i for i in items if i["run_key"] in shown] or items
if items:
    labels = [i["label"] for i in items]
    label = ui.select("Run", labels, name="sens", default=labels[0])
    item = next(i for i in items if i["label"] == label)
    ui.plot(memo.figure(fp.sensitivity_figure, item, view.theme), view, key="sensitivity")
else:
    ui.missing_part("sensitivity analysis", "The per-layer sensitivity",
                    failed=ui.part_failures(view, "sensitivity"))  # fmt: skip
