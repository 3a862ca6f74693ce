"""Ranking: methods x metrics at one sparsity, with intervals and differences against dense."""

import streamlit as st

from dashboard import ui
from dashboard.figures import ranking as fr
from dashboard.figures import sweeps as fs

view = ui.view()
st.title("Ranking")
ui.require_study(view)
summary = view.summary
levels = fr.sparsities(summary)
metrics = fs.metrics_of(summary)
if not levels or not metrics:
    ui.missing_part("group statistics", "The pruned runs")
left, middle = st.columns([1, 3])
with left:
    level = st.selectbox(
        "Sparsity",
        levels,
        index=len(levels) - 1,
        format_func=lambda s: f"{100 * s:.4g}%",
        key="rank_sparsity",
    )
with middle:
    chosen = st.multiselect(
        "Metrics",
        metrics,
        default=fr.default_metrics(metrics),
        format_func=fs.metric_name,
        key="rank_metrics",
    )
settings = sorted({g["setting_label"] for g in summary["groups"]})
setting = None
if len(settings) > 1:
    setting = st.selectbox(
        "Setting", [None, *settings], format_func=lambda s: s or "every setting", key="rank_setting"
    )
table = fr.ranking_table(summary, level, chosen, setting=setting)
number = {
    c: st.column_config.NumberColumn(c, format="%.4g")
    for c in table.columns
    if table[c].dtype.kind == "f"
}
st.dataframe(
    table,
    hide_index=True,
    width="stretch",
    column_config=number,
    height=min(38 * (len(table) + 1) + 4, 700),
)
st.caption(
    "Mean over seeds (barriers: pairs of seeds) and its 95% interval (Student t); 'vs dense' is "
    "the mean paired difference against dense of the same seed and setting, marked * where its "
    "95% interval excludes zero. Click a column to sort. "
    + "; ".join(f"Lower {fs.metric_name(m)} is better" for m in chosen if fr.lower_is_better(m))
)
st.download_button(
    "Download as CSV",
    table.to_csv(index=False).encode(),
    file_name=f"ranking-{level:g}.csv",
    mime="text/csv",
    key="rank_csv",
)
