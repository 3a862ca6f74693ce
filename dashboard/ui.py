"""The shared sidebar, the view it selects, and small drawing helpers every page uses.

The sidebar (called once per rerun by ``app.py``) shows the study, filters the
runs (method, sparsity, seed, objective) and switches presentation mode. Its
state and each page's own choices are mirrored into ``st.query_params``, so a
copied URL reopens the same view in a meeting.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from analysis.errors import PrunescopeError
from dashboard import data
from dashboard.figures import Theme, theme_for
from dashboard.jobs import JobView

_VIEW = "_prunescope_view"
_KEEP = "_keep_"  # session-state prefix of page choices kept while their page is not shown


@dataclass(frozen=True)
class View:
    """What the sidebar selected: the study, its summary, the runs to show, the theme."""

    loaded: data.Loaded
    summary: dict | None = None
    runs: list[dict] = field(default_factory=list)
    presentation: bool = False

    @property
    def theme(self) -> Theme:
        """The figure theme of this view."""
        return theme_for(self.presentation)


# -- query parameters ------------------------------------------------------------


def _set_param(name: str, values: Sequence[str] | str | None) -> None:
    """Write one query parameter (None removes it); untouched when already equal."""
    if values is None:
        if name in st.query_params:
            del st.query_params[name]
        return
    values = [values] if isinstance(values, str) else list(values)
    if st.query_params.get_all(name) != values:
        st.query_params[name] = values


#: The value a list choice is mirrored as when nothing is chosen: ``?name=``. (An
#: absent parameter means the default, so empty must be said, not omitted.)
_EMPTY = ""


def _from_url(name: str, options: Sequence[Any], encode: Callable[[Any], str]) -> list[Any] | None:
    """A list choice as the URL states it: None when it states none, [] when it says empty.

    ``?name=`` is the empty choice; the order is the URL's (side-by-side panels
    keep theirs); a URL naming only options that no longer exist (an old link)
    states nothing, so the default applies.
    """
    if name not in st.query_params:
        return None
    wanted = [v for v in st.query_params.get_all(name) if v != _EMPTY]
    if not wanted:
        return []
    by_code = {encode(o): o for o in options}
    return [by_code[v] for v in dict.fromkeys(wanted) if v in by_code] or None  # in URL order


def _mirror_list(
    name: str, chosen: Sequence[Any], default: Sequence[Any], encode: Callable[[Any], str]
) -> None:
    """Mirror a list choice as ``?name=a&name=b``: omitted when default, ``?name=`` when empty."""
    if list(chosen) == list(default):
        _set_param(name, None)
    else:
        _set_param(name, [encode(v) for v in chosen] or [_EMPTY])


def _filter(
    label: str, name: str, options: Sequence[Any], fmt: Callable[[Any], str] = str
) -> list[Any]:
    """A multiselect over ``options`` mirrored in the URL as ``?name=a&name=b`` (all: omitted)."""
    key = f"filter_{name}"
    encode = repr if options and isinstance(options[0], float) else str
    if key not in st.session_state:
        wanted = _from_url(name, options, encode)
        st.session_state[key] = list(options) if wanted is None else wanted
    elif any(v not in options for v in st.session_state[key]):
        # The study changed under the widget: drop the values it no longer has.
        st.session_state[key] = [v for v in st.session_state[key] if v in options]
    if len(options) > 1:
        chosen = st.multiselect(label, options, format_func=fmt, key=key)
    else:
        chosen = st.session_state[key]
    _mirror_list(name, chosen, options, encode)
    return chosen


def choice(label: str, options: dict[str, str], *, name: str, default: str) -> str:
    """A page's own horizontal choice, mirrored in the URL as ``?name=value``."""
    key, keep = f"choice_{name}", _KEEP + name
    if key not in st.session_state:
        wanted = st.query_params.get(name, st.session_state.get(keep, default))
        st.session_state[key] = wanted if wanted in options else default
    value = st.radio(label, list(options), format_func=options.get, key=key, horizontal=True)
    st.session_state[keep] = value
    _set_param(name, None if value == default else value)
    return value


def select(label: str, options: Sequence[str], *, name: str, default: str) -> str:
    """A page's own selectbox, always mirrored as ``?name=value``.

    Always, not only when it differs from ``default``: the default of such a
    choice (e.g. the Compare page's runs) follows the study's order, and a link
    must name what it showed.
    """
    key = f"select_{name}"
    keep = _KEEP + key  # survives visits to other pages
    if key not in st.session_state or st.session_state[key] not in options:
        wanted = st.query_params.get(name, st.session_state.get(keep, default))
        st.session_state[key] = wanted if wanted in options else default
    value = st.selectbox(label, list(options), key=key)
    st.session_state[keep] = value
    _set_param(name, value)
    return value


def pick(
    label: str, options: Sequence[str], *, name: str, default: Sequence[str], most: int
) -> list[str]:
    """A page's own multiselect of up to ``most`` options, mirrored as ``?name=a&name=b``.

    Where it starts: the URL (``?name=`` is empty), else the choice kept from an
    earlier visit to the page (empty too, if it was emptied), else ``default``.
    """
    key, keep = f"pick_{name}", _KEEP + name
    if key not in st.session_state:
        wanted = _from_url(name, options, str)
        if wanted is None and keep in st.session_state:
            kept = st.session_state[keep]
            wanted = [o for o in options if o in kept] if kept else []
            wanted = wanted if wanted or not kept else None  # kept runs all gone: the default
        st.session_state[key] = (list(default) if wanted is None else wanted)[:most]
    elif any(v not in options for v in st.session_state[key]):
        st.session_state[key] = [v for v in st.session_state[key] if v in options]
    chosen = st.multiselect(label, list(options), key=key, max_selections=most)
    st.session_state[keep] = chosen
    _mirror_list(name, chosen, default, str)
    return chosen


# -- the sidebar -------------------------------------------------------------------


def _pct(value: float) -> str:
    """0.9 -> '90%'."""
    return f"{100 * value:g}%"


def sidebar() -> View:
    """Draw the sidebar and remember the view it selects for this rerun's page."""
    if "upload" not in st.session_state:
        st.session_state["upload"] = st.query_params.get("study")
    loaded = data.load(st.session_state["upload"])
    upload = st.session_state["upload"]
    if upload and data.upload_path(loaded.source.cache_dir, upload) is None:
        st.session_state["upload"] = None  # an unknown or malformed id in the URL: ignored
    _set_param("study", st.session_state["upload"])
    with st.sidebar:
        st.markdown("### Study")
        if loaded.error:
            st.error("The study file cannot be used.", icon=":material/error:")
            st.caption(f"`{loaded.source.study_path}`")
            view = View(loaded=loaded)
        else:
            view = _study_sidebar(loaded)
        _upload(loaded)
        st.divider()
        if "present" not in st.session_state:
            st.session_state["present"] = st.query_params.get("present") == "1"
        presentation = st.toggle(
            "Presentation mode", key="present", help="Large fonts and thick lines for a projector."
        )
        _set_param("present", "1" if presentation else None)
    view = View(view.loaded, view.summary, view.runs, presentation)
    st.session_state[_VIEW] = view
    return view


def _upload(loaded: data.Loaded) -> None:
    """Open another study file: validated and size-limited before it replaces the view."""
    with st.expander("Open another study", icon=":material/upload_file:"):
        file = st.file_uploader(
            "Study file (TOML)", type=["toml"], key="study_file",
            help=f"At most {data.MAX_STUDY_BYTES // 1024} KiB; validated before it is used.",
        )  # fmt: skip
        if file is not None and st.session_state.get("_upload_seen") != file.file_id:
            st.session_state["_upload_seen"] = file.file_id
            try:
                upload = data.save_upload(file.getvalue(), loaded.source.cache_dir, name=file.name)
            except PrunescopeError as err:
                st.session_state["_upload_error"] = str(err).splitlines()[0]
            else:
                st.session_state.pop("_upload_error", None)
                st.session_state["upload"] = upload
                st.rerun()
        if error := st.session_state.get("_upload_error"):
            st.error(f"Not opened: {error}", icon=":material/error:")
        if st.session_state.get("upload") and st.button("Back to the default study"):
            st.session_state["upload"] = None
            st.rerun()


def _study_sidebar(loaded: data.Loaded) -> View:
    """Study name, dataset, fallback note and the run filters."""
    summary = data.summary(loaded)
    info = summary["study"]
    counts = summary["counts"]
    st.markdown(f"**{info['name']}**")
    st.caption(f"{info['dataset']} · {info['arch']} · {counts['cached']}/{counts['runs']} runs")
    if loaded.note:
        st.info(loaded.note.splitlines()[0], icon=":material/info:")
    st.markdown("### Runs")
    runs = summary["runs"]
    methods = _filter("Method", "method", list(dict.fromkeys(r["method"] for r in runs)))
    levels = _filter(
        "Sparsity", "sparsity", sorted({r["requested_sparsity"] for r in runs}), fmt=_pct
    )
    seeds = _filter("Seed", "seed", sorted({r["seed"] for r in runs}))
    objectives = _filter(
        "Objective", "objective", list(dict.fromkeys(r["objective"] for r in runs))
    )
    chosen = [
        r
        for r in runs
        if r["method"] in methods
        and r["requested_sparsity"] in levels
        and r["seed"] in seeds
        and r["objective"] in objectives
    ]
    st.caption(f"{len(chosen)} of {len(runs)} runs shown")
    return View(loaded=loaded, summary=summary, runs=chosen)


def view() -> View:
    """The view the sidebar selected in this rerun."""
    return st.session_state[_VIEW]


# -- page helpers ------------------------------------------------------------------


def require_study(v: View) -> None:
    """Stop the page with the one-line reason when the study cannot be loaded."""
    if v.loaded.error:
        st.error(v.loaded.error, icon=":material/error:")
        st.caption(f"Study file: `{v.loaded.source.study_path}`. Fix it, then reload the page.")
        st.stop()


def missing_note(summary: dict) -> None:
    """Say which runs are not computed yet and point to the Compute page."""
    counts = summary["counts"]
    if not counts["missing"] and not counts["failed"]:
        return
    absent = [r["label"] for r in summary["runs"] if r["status"] != "cached"]
    shown = ", ".join(absent[:8]) + (f" and {len(absent) - 8} more" if len(absent) > 8 else "")
    parts = [f"{counts['missing']} missing"] if counts["missing"] else []
    parts += [f"{counts['failed']} failed"] if counts["failed"] else []
    st.warning(
        f"{' and '.join(parts)} of {counts['runs']} runs: {shown}. "
        "Figures show the computed runs only.",
        icon=":material/hourglass_empty:",
    )
    st.page_link(
        "app_pages/compute.py", label="Compute the missing runs", icon=":material/play_arrow:"
    )


TABLE_FORMATS = {
    "Requested sparsity (%)": "%.1f%%",
    "Achieved sparsity (%)": "%.2f%%",
    "Test accuracy (%)": "%.2f%%",
    "Test loss": "%.4f",
    "Nonzero params": "localized",
    "Seed": "%d",
}


def table(frame: pd.DataFrame) -> None:
    """A read-only table with numbers formatted by column name."""
    config = {
        name: st.column_config.NumberColumn(name, format=fmt)
        for name, fmt in TABLE_FORMATS.items()
        if name in frame
    }
    # Up to 12 rows show whole; longer tables scroll, so the figures stay in sight.
    height = "content" if len(frame) <= 12 else 12 * 35 + 38
    st.dataframe(frame, hide_index=True, column_config=config, width="stretch", height=height)


def missing_part(part: str, what: str) -> None:
    """Stop the page: ``what`` is not computed yet; point to the Compute page."""
    st.info(f"{what} is not computed yet for this study.", icon=":material/hourglass_empty:")
    st.page_link("app_pages/compute.py", label=f"Compute the {part}", icon=":material/play_arrow:")
    st.stop()


def plot(fig: go.Figure, v: View, *, key: str | None = None, select: bool = False) -> Any:
    """Draw a figure with our theme (not streamlit's) and a high-resolution PNG button.

    With ``select``, clicking or lassoing points reruns the page; the selection is returned.
    """
    config = {
        "displaylogo": False,
        "toImageButtonOptions": {"format": "png", "scale": 3 if v.presentation else 2},
    }
    if select:
        return st.plotly_chart(
            fig, theme=None, config=config, key=key, width="stretch",
            on_select="rerun", selection_mode=("points",),
        )  # fmt: skip
    st.plotly_chart(fig, theme=None, config=config, key=key, width="stretch")
    return None


def job_progress(job: JobView) -> None:
    """A background job's progress: one bar per task the backend reports, then its log."""
    if job.running:
        st.markdown(f"**Computing {job.title}** · {job.seconds:.0f} s")
    for task, (done, total) in sorted(job.tasks.items(), key=lambda kv: kv[0] != "study"):
        name = "Study" if task == "study" else task
        if total:
            text = f"{name}: {done:.0f} of {total:.0f}" + (" results" if task == "study" else "")
            st.progress(min(done / total, 1.0), text=text)
        else:
            st.caption(f"{name}: {done:.0f}")
    if job.state == "failed":
        st.error(f"The computation stopped: {job.error}", icon=":material/error:")
    elif job.state == "done" and job.result is not None:
        r = job.result
        st.success(
            f"Finished in {job.seconds:.0f} s: {r.done} computed, {r.cached} already cached, "
            f"{len(r.failed)} failed.",
            icon=":material/check_circle:",
        )
    if job.log:
        with st.expander(f"Log ({len(job.log)} lines)", expanded=False):
            st.code("\n".join(job.log[-50:]), language=None)
