"""Compute: what each part of the study has cached, missing or failed; start the missing work.

The work runs on a background thread (``data.start_compute``); this page only
polls its progress, once a second while it runs, and refreshes when results land.
"""

import streamlit as st

from dashboard import data, ui
from dashboard.figures import status_table

view = ui.view()
st.title("Compute")
ui.require_study(view)
st.caption(
    "Missing results are computed in the background on this machine: other pages stay usable, "
    f"and every result is saved to `{view.loaded.source.cache_dir}` as soon as it is done."
)
started = data.compute_job(view.loaded)
polling = bool(started and started.running)


@st.fragment(run_every=1.0 if polling else None)
def status() -> None:
    """Progress of the running job, then each part's status and its start button."""
    job = data.compute_job(view.loaded)
    if job:
        ui.job_progress(job)
        if job.landed != st.session_state.get("landed_seen"):
            st.session_state["landed_seen"] = job.landed
            data.refresh()  # a result landed: summaries and statuses are read afresh
        if polling and not job.running:
            st.rerun()  # the whole app: the overview and the sidebar counts refresh too
    for part, records in data.part_status(view.loaded).items():
        todo = [r for r in records if r["status"] != "cached"]
        failed = sum(r["status"] == "failed" for r in todo)
        st.subheader(part.capitalize())
        st.caption(
            f"{len(records) - len(todo)} of {len(records)} cached · "
            f"{len(todo) - failed} missing · {failed} failed"
        )
        if not todo:
            st.success("Everything is computed.", icon=":material/check_circle:")
            continue
        ui.table(status_table(todo))
        if st.button(
            f"Compute {len(todo)} missing" + (f" (retrying {failed} failed)" if failed else ""),
            key=f"start_{part}",
            disabled=bool(job and job.running),
            type="primary",
            icon=":material/play_arrow:",
        ):
            data.start_compute(view.loaded, only=part)
            st.rerun()


status()
