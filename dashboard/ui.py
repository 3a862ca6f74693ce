"""The shared sidebar, the view it selects, and small drawing helpers every page uses.

The sidebar (called once per rerun by ``app.py``) shows the study, filters the
runs (method, sparsity, seed, objective) and switches presentation mode. Its
state and each page's own choices are mirrored into ``st.query_params``, so a
copied URL reopens the same view in a meeting.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import plotly.graph_objects as go
import streamlit as st

from analysis.errors import PrunescopeError
from dashboard import data, live
from dashboard.figures import Theme, theme_for
from dashboard.present import PRESENTATION_CSS, presenting, table  # noqa: F401  (pages: ui.*)

_log = logging.getLogger(__name__)
_VIEW = "_prunescope_view"
_KEEP = "_keep_"  # session-state prefix of page choices kept while their page is not shown


@dataclass(frozen=True)
class View:
    """What the sidebar selected: the study, its summary, the runs to show, the theme."""

    loaded: data.Loaded
    summary: dict | None = None
    runs: list[dict] = field(default_factory=list)
    presentation: bool = False
    error: str | None = None  # why the study cannot be loaded or read (one line)

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
    key, seen = f"filter_{name}", f"_seen_{name}"
    encode = repr if options and isinstance(options[0], float) else str
    if key not in st.session_state:
        wanted = _from_url(name, options, encode)
        st.session_state[key] = list(options) if wanted is None else wanted
    else:
        # The study changed under the widget: drop the values it no longer has, and show
        # the ones it gained (a new sparsity level was never deselected).
        before = st.session_state.get(seen, options)
        kept = [v for v in st.session_state[key] if v in options]
        st.session_state[key] = kept + [v for v in options if v not in before and v not in kept]
    st.session_state[seen] = list(options)
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


def grouped(v: View) -> bool:
    """The "Mean over seeds" toggle: every chart shows methods (mean, 95% band) or runs.

    One choice for every page (the default: grouped when a method has several
    seeds), mirrored as ``?seeds=each`` when runs are shown one by one.
    """
    from dashboard.figures.bands import several_seeds

    if not several_seeds(v.runs):
        return False
    key, keep = "group_seeds", _KEEP + "group_seeds"
    if key in st.session_state:
        # Re-set as the app's own value: the toggle of another page (another widget) then
        # starts from it instead of its default (Streamlit's pattern for multipage state).
        st.session_state[key] = st.session_state[key]
    else:
        st.session_state[key] = st.session_state.get(keep, st.query_params.get("seeds") != "each")
    value = st.toggle(
        "Mean over seeds", key=key,
        help="One line per method and sparsity: the mean over seeds with its 95% band.",
    )  # fmt: skip
    st.session_state[keep] = value
    _set_param("seeds", None if value else "each")
    return value


# -- the sidebar -------------------------------------------------------------------


def _pct(value: float) -> str:
    """0.9 -> '90%'."""
    return f"{100 * value:g}%"


def sidebar() -> View:
    """Draw the sidebar and remember the view it selects for this rerun's page.

    The controls that leave a study ("Back to the default study", "Open another
    study") are drawn before the study is loaded or read, so a study that breaks
    either can always be left; the failure is one error line, never a traceback.
    """
    if "upload" not in st.session_state:
        st.session_state["upload"] = st.query_params.get("study")
    upload = st.session_state["upload"]
    cache_dir = data.source(upload).cache_dir
    if upload and data.upload_path(cache_dir, upload) is None:
        st.session_state["upload"] = None  # an unknown or malformed id in the URL: said once
        st.session_state["_study_unknown"] = upload
    _set_param("study", st.session_state["upload"])
    with st.sidebar:
        st.markdown("### Study")
        if unknown := st.session_state.pop("_study_unknown", None):
            st.warning(
                f"The study of this link ({unknown[:40]}) is not available here (opened "
                "studies live in the store of the dashboard that opened them): showing the "
                "default study.",
                icon=":material/link_off:",
            )
        head = st.container()  # filled last, drawn first
        _leave_controls(cache_dir)
        st.divider()
        st.session_state["present"] = presenting()
        presentation = st.toggle(
            "Presentation mode", key="present",
            help="For a projector: large type, thick lines, two panels per row, the sidebar "
            "folded away (its arrow, top left, brings it back).",
        )  # fmt: skip
        _set_param("present", "1" if presentation else None)
        if presentation:
            st.html(PRESENTATION_CSS)
        with head:
            view = _study_view()
        live.watch(view.loaded)  # reruns the page when a result lands (draws nothing)
    view = View(view.loaded, view.summary, view.runs, presentation, view.error)
    st.session_state[_VIEW] = view
    return view


def _study_view() -> View:
    """Load and read the study into a view, or say in one line why it cannot be."""
    loaded = data.load(st.session_state["upload"])
    summary, error = data.read_summary(loaded)
    if error:
        st.error(f"This study cannot be opened: {error}", icon=":material/error:")
        st.caption(f"`{loaded.source.study_path}`")
        return View(loaded=loaded, error=error)
    try:
        return _study_sidebar(loaded, summary)
    except Exception as err:  # noqa: BLE001  (a summary the sidebar cannot read is shown)
        error = data.one_line(err)
        st.error(f"This study cannot be opened: {error}", icon=":material/error:")
        return View(loaded=loaded, error=error)


def _leave_controls(cache_dir: str) -> None:
    """ "Back to the default study" (when an upload is open) and "Open another study"."""
    if st.session_state.get("upload") and st.button(
        "Back to the default study", key="back_to_default", icon=":material/undo:"
    ):
        st.session_state["upload"] = None
        st.session_state.pop("_upload_error", None)
        st.rerun()
    _upload(cache_dir)


def _upload(cache_dir: str) -> None:
    """Open another study file: validated and size-limited before it replaces the view."""
    with st.expander("Open another study", icon=":material/upload_file:"):
        file = st.file_uploader(
            "Study file (TOML)", type=["toml"], key="study_file",
            help=f"At most {data.MAX_STUDY_BYTES // 1024} KiB; validated before it is used.",
        )  # fmt: skip
        if file is not None and st.session_state.get("_upload_seen") != file.file_id:
            st.session_state["_upload_seen"] = file.file_id
            try:
                upload = data.save_upload(file.getvalue(), cache_dir, name=file.name)
            except PrunescopeError as err:
                st.session_state["_upload_error"] = str(err).splitlines()[0]
            else:
                st.session_state.pop("_upload_error", None)
                st.session_state["upload"] = upload
                st.rerun()
        if error := st.session_state.get("_upload_error"):
            st.error(f"Not opened: {error}", icon=":material/error:")


def _reset_filters_for(study: str) -> None:
    """Opening another study shows all its runs: the filters (and their URL) start afresh.

    The first study of a session keeps the URL's filters (a shared link).
    """
    if st.session_state.get("_filters_study", study) != study:
        for name in FILTERS:
            st.session_state.pop(f"filter_{name}", None)
            st.session_state.pop(f"_seen_{name}", None)
            _set_param(name, None)
    st.session_state["_filters_study"] = study


#: The sidebar's run filters, by URL name.
FILTERS = ("setting", "method", "sparsity", "seed", "objective")


def _study_sidebar(loaded: data.Loaded, summary: dict) -> View:
    """Study name, dataset, fallback note and the run filters."""
    _reset_filters_for(loaded.source.study_path)
    info = summary["study"]
    counts = summary["counts"]
    st.markdown(f"**{info['name']}**")
    st.caption(f"{info['dataset']} · {info['arch']} · {counts['cached']}/{counts['runs']} runs")
    if loaded.note:
        st.info(loaded.note.splitlines()[0], icon=":material/info:")
    st.markdown("### Runs")
    runs = summary["runs"]
    settings = _filter(  # a sweep's settings ("width 64, noise 0.2"); hidden without axes
        "Setting", "setting", list(dict.fromkeys(r.get("setting_label", "") for r in runs))
    )
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
        if r.get("setting_label", "") in settings
        and r["method"] in methods
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
    """Stop the page with the one-line reason when the study cannot be loaded or read."""
    if error := v.error or v.loaded.error:
        st.error(error, icon=":material/error:")
        st.caption(
            f"Study file: `{v.loaded.source.study_path}`. Fix it and reload the page, "
            "or open another study in the sidebar."
        )
        st.stop()


def run_page(page: Any) -> None:
    """Run the selected page; an error it raises is one line on the page, not a traceback."""
    try:
        page.run()
    except Exception as err:  # noqa: BLE001  (st.stop / st.rerun are BaseExceptions: they pass)
        _log.exception("page %s failed", getattr(page, "title", page))
        st.error(f"This page cannot be drawn: {data.one_line(err)}", icon=":material/error:")
        st.caption("The other pages and the sidebar still work; the server log has the details.")


#: How often the Compute page reads the shared job: while one runs, and while none does
#: (so a job another browser session starts is followed within a few seconds).
POLL_RUNNING_S = 1.0
POLL_IDLE_S = 5.0

#: Most failures listed on a page (the Compute page lists them all in its tables).
MOST_FAILURES = 10


def failures(items: Sequence[dict], *, part_names: bool = True) -> None:
    """One error line per failed result (``data.failures`` records): what failed and why."""
    for item in items[:MOST_FAILURES]:
        where = f"{item['part']} · " if part_names and item["part"] != "runs" else ""
        st.error(f"{where}{item['label']} failed: {item['error']}", icon=":material/error:")
    if len(items) > MOST_FAILURES:
        st.caption(f"... and {len(items) - MOST_FAILURES} more failed: see the Compute page.")


def missing_note(summary: dict) -> None:
    """Say which runs are not computed yet and point to the Compute page."""
    counts = summary["counts"]
    if not counts["missing"] and not counts["failed"] or live.running_note(summary):
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


def part_failures(v: View, part: str) -> list[dict]:
    """Draw one ``failed: <reason>`` line per failed result of ``part``; return them."""
    items = data.failures(v.summary, part)
    failures(items, part_names=False)
    return items


def missing_part(part: str, what: str, *, failed: Sequence[dict] = ()) -> None:
    """Stop the page: ``what`` is not computed yet (or failed, already said); link to Compute."""
    if failed:
        st.caption("Fix the cause, then retry it on the Compute page.")
    else:
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
