"""Work under way in the study's store, drawn live: any compute pass, from here or a terminal.

A compute pass writes its progress to the store's live files (:mod:`analysis.live`),
whoever started it: the Compute page's background job or ``prunescope compute`` /
``demo`` in a terminal. This module reads them for the pages:

- :func:`passes` draws each pass (which study, where it comes from, results done,
  one bar per sub-step with its time left, a Stop button);
- :func:`watch` makes every page rerun by itself when a result it shows lands
  (a fragment that compares :func:`fingerprint` of the store with the one the page
  was drawn from; idle, it only lists the live folder every :data:`IDLE_S`);
- :func:`running_note` replaces Overview's "N missing of M runs" while a pass runs.
"""

from __future__ import annotations

import time
from pathlib import Path

import streamlit as st

from analysis import live as live_files
from analysis.cost import human_seconds
from analysis.errors import PrunescopeError
from analysis.live import Live, Step
from dashboard import data
from dashboard.jobs import JobView

#: Seconds between two looks at the store while a pass runs, and while none does.
RUNNING_S = 2.0
IDLE_S = 10.0


def running(cache_dir: str | Path) -> list[Live]:
    """The compute passes writing into the store now (a stale file is not one)."""
    return live_files.running(cache_dir)


def computing(loaded: data.Loaded, lives: list[Live] | None = None) -> bool:
    """Whether a pass computes the study now (``lives``: the store's passes, if read already)."""
    lives = running(loaded.source.cache_dir) if lives is None else lives
    return loaded.study is not None and any(lv.study == loaded.study.name for lv in lives)


def fingerprint(lives: list[Live], state: str | None) -> tuple:
    """What a page was drawn from: the passes running and, while any runs, the store's state.

    The page reruns when it changes: a pass started or ended, or a result landed
    (``state``: :func:`dashboard.data.store_state`, read only while a pass runs).
    """
    return tuple(sorted(lv.id for lv in lives)), state if lives else None


def _now_fingerprint(loaded: data.Loaded) -> tuple:
    """The store's fingerprint now (the results' state only read while a pass runs)."""
    lives = running(loaded.source.cache_dir)
    return fingerprint(lives, data.store_state(loaded) if lives else None)


def watch(loaded: data.Loaded) -> None:
    """Rerun the page when a result lands or a pass starts or ends (draws nothing)."""
    if loaded.error:
        return
    drawn = _now_fingerprint(loaded)

    @st.fragment(run_every=RUNNING_S if drawn[0] else IDLE_S)
    def _watch() -> None:
        if _now_fingerprint(loaded) != drawn:
            st.rerun()

    _watch()


def source_line(lv: Live) -> str:
    """Where the pass comes from, and how to stop it from there."""
    where = "this machine" if lv.host == live_files.this_host() else f"`{lv.host}`"
    if lv.origin == "dashboard":
        return f"Started from the dashboard on {where} (process {lv.pid})."
    return (
        f"Started from the command line on {where} (process {lv.pid}): `{lv.command}`. "
        "Ctrl+C in its terminal stops it too."
    )


def headline(lv: Live, now: float | None = None) -> str:
    """One line: the study, results done of all, computed by the pass, time left."""
    now = time.time() if now is None else now
    part = f" ({lv.part})" if lv.part else ""
    words = [f"**Computing {lv.study}{part}**", f"running {human_seconds(now - lv.started)}"]
    if lv.total:
        words.append(f"{lv.done} of {lv.total} results ({lv.computed} computed here)")
    left = lv.left(now)
    if left is not None:
        words.append(f"about {human_seconds(left)} left")
    return " · ".join(words)


def step_text(step: Step, now: float | None = None) -> str:
    """One sub-step: its name, k of N, its time left."""
    now = time.time() if now is None else now
    count = f"{step.done:.0f} of {step.total:.0f}" if step.total else f"{step.done:.0f}"
    left = step.left(now)
    return f"{step.task}: {count}" + (f" · about {human_seconds(left)} left" if left else "")


def draw(lv: Live, cache_dir: str | Path, *, now: float | None = None) -> None:
    """One pass: headline, where it comes from, a bar per sub-step, and a Stop button."""
    now = time.time() if now is None else now
    with st.container(border=True):
        st.markdown(headline(lv, now))
        st.caption(source_line(lv))
        if lv.total:
            st.progress(min(lv.done / lv.total, 1.0))
        for step in lv.steps:
            if step.total:
                st.progress(min(step.done / step.total, 1.0), text=step_text(step, now))
            else:
                st.caption(step_text(step, now))
        if lv.cancel_requested:
            st.info(
                "Stopping at its next checkpoint (a training step, a grid row, the end of a "
                "job): finished results stay in the store, the one under way is dropped.",
                icon=":material/stop_circle:",
            )
        elif st.button("Stop", key=f"stop_{lv.id}", icon=":material/stop:"):
            try:
                live_files.request_cancel(cache_dir, lv.id)
            except PrunescopeError as err:
                st.error(f"Could not stop it: {err}", icon=":material/error:")
            else:
                st.rerun()


def passes(loaded: data.Loaded) -> list[Live]:
    """Draw every pass computing into the study's store; return them."""
    cache_dir = loaded.source.cache_dir
    lives = running(cache_dir)
    for lv in lives:
        draw(lv, cache_dir)
    if not lives and (held := live_files.held_locks(cache_dir)):
        names = ", ".join(h.split("-", 1)[0] for h in held[:6])
        st.info(
            f"Another process is computing {len(held)} result(s) into this store ({names}); "
            "it writes no progress file, so how far it got is not known.",
            icon=":material/lock_clock:",
        )
    return lives


def running_note(summary: dict) -> bool:
    """Overview's note while a pass computes into the study's store (False: none runs)."""
    info = summary["study"]
    lives = [lv for lv in running(info["cache_dir"]) if lv.study == info["name"]]
    if not lives:
        return False
    now = time.time()
    for lv in lives:
        st.info(headline(lv, now), icon=":material/autorenew:")
    st.caption("Figures fill in as results land; the page follows by itself.")
    st.page_link("app_pages/compute.py", label="See the work under way", icon=":material/speed:")
    return True


def job_outcome(job: JobView) -> None:
    """How the dashboard's latest job ended (nothing while it runs), then its log."""
    if job.state == "cancelled":
        st.warning(
            f"Stopped after {human_seconds(job.seconds)}: the results finished before it "
            "stopped are in the store.",
            icon=":material/stop_circle:",
        )
    elif job.state == "failed":
        st.error(f"The computation stopped: {job.error}", icon=":material/error:")
    elif job.state == "done" and job.result is not None:
        r = job.result
        st.success(
            f"Finished in {human_seconds(job.seconds)}: {r.done} computed, {r.cached} already "
            f"cached, {len(r.failed)} failed.",
            icon=":material/check_circle:",
        )
    if job.log:
        with st.expander(f"Log of the dashboard's job ({len(job.log)} lines)"):
            st.code("\n".join(job.log[-50:]), language=None)
