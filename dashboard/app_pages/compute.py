"""Compute: the work under way in the store, what each part has cached, missing or failed.

Any compute pass writing into the study's store is shown (``dashboard.live``): the
background job started here (``data.start_compute``, shared by every browser
session) and a ``prunescope compute`` or ``demo`` running in a terminal, each
with its sub-steps, the time left and a Stop button. The page polls once a
second while one runs, every few seconds otherwise; counts are read afresh as
results land.
"""

import streamlit as st

from dashboard import data, live, ui
from dashboard.figures import status_table

view = ui.view()
st.title("Compute")
ui.require_study(view)
st.caption(
    "Missing results are computed in the background on this machine: other pages stay usable, "
    f"and every result is saved to `{view.loaded.source.cache_dir}` as soon as it is done."
)
started = data.compute_job(view.loaded)
busy = bool(started and started.running) or live.computing(view.loaded)
device = st.columns([1, 3])[0].selectbox(
    "Device",
    data.device_choices(),
    key="compute_device",
    disabled=busy,
    help="Where new work runs: auto picks CUDA, then MPS, then the CPU. Results are the same "
    "experiment on every device, and what one device computed is served on all of them.",
)


@st.fragment(run_every=ui.POLL_RUNNING_S if busy else ui.POLL_IDLE_S)
def status() -> None:
    """The passes under way, then each part's status and its start button."""
    job = data.compute_job(view.loaded)
    lives = live.passes(view.loaded)
    if (bool(job and job.running) or live.computing(view.loaded, lives)) != busy:
        st.rerun()  # a pass started (here, elsewhere, in a terminal) or ended: the app follows
    if job:
        live.job_outcome(job)
        if job.landed != st.session_state.get("landed_seen"):
            st.session_state["landed_seen"] = job.landed
            data.refresh()  # a result landed: summaries and statuses are read afresh
    for part, records in data.part_status(view.loaded).items():
        todo = [r for r in records if r["status"] != "cached"]
        failed = [{**r, "part": part} for r in todo if r["status"] == "failed"]
        st.subheader(part.capitalize())
        st.caption(
            f"{len(records) - len(todo)} of {len(records)} cached · "
            f"{len(todo) - len(failed)} missing · {len(failed)} failed"
        )
        if not todo:
            st.success("Everything is computed.", icon=":material/check_circle:")
            continue
        ui.failures(failed, part_names=False)
        ui.table(status_table(todo))
        if st.button(
            f"Compute {len(todo)} missing"
            + (f" (retrying {len(failed)} failed)" if failed else ""),
            key=f"start_{part}",
            disabled=busy,
            help="This study is being computed: that computation can be stopped above."
            if busy
            else None,
            type="primary",
            icon=":material/play_arrow:",
        ):
            data.start_compute(view.loaded, only=part, device=device)
            st.rerun()


status()
