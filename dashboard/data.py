"""What the pages read, cached: the study, the store, the summary, histories and jobs.

The only module that uses ``st.cache_data`` / ``st.cache_resource``. It never
computes a result: results are read with ``api.get(..., compute=False)``, and
missing work is handed to a background job (:mod:`dashboard.jobs`) that the
Compute page starts and watches.

Where things come from (set by ``prunescope dashboard``, or by hand):

- the study: ``$PRUNESCOPE_STUDY`` (default ``assets/studies/demo.toml``), switched
  to its fallback dataset, with a note, when the dataset is not installed;
- the store: ``$PRUNESCOPE_CACHE`` (default ``./cache``);
- datasets: ``$PRUNESCOPE_DATA``.

Cached values are keyed by the study path, the study file's mtime and a
fingerprint of the store (the mtimes of the study's entries and failure
records), so an edited study or a newly computed result shows on the next rerun.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import streamlit as st

from analysis import api, plan
from analysis.atomic import write_atomic
from analysis.errors import PrunescopeError, SpecError
from analysis.specs import spec_key
from analysis.store import Store, default_root
from analysis.study import (
    MAX_STUDY_BYTES,
    StudySpec,
    load_study,
    parse_study,
    with_available_data,
)
from dashboard import plotly_js
from dashboard.jobs import JobBoard, JobView
from dashboard.results import Reader

STUDY_ENV = "PRUNESCOPE_STUDY"
REPO = Path(__file__).resolve().parents[1]
DEFAULT_STUDY = REPO / "assets" / "studies" / "demo.toml"


@dataclass(frozen=True)
class Source:
    """Where the dashboard reads from: study file, store root, data root (absolute paths)."""

    study_path: str
    cache_dir: str
    data_root: str | None


@dataclass(frozen=True)
class Loaded:
    """The study as loaded (after any dataset fallback), or the one-line reason it is not."""

    source: Source
    mtime_ns: int
    study: StudySpec | None = None
    note: str | None = None
    error: str | None = None


def source(upload: str | None = None) -> Source:
    """The study, store and data root named by the environment (or an uploaded study's id)."""
    study = os.environ.get(STUDY_ENV) or str(DEFAULT_STUDY)
    cache_dir = default_root().expanduser().resolve()
    if upload and (path := upload_path(cache_dir, upload)) is not None:
        study = str(path)
    return Source(
        study_path=str(Path(study).expanduser().resolve()),
        cache_dir=str(cache_dir),
        data_root=os.environ.get("PRUNESCOPE_DATA") or None,
    )


def load(upload: str | None = None) -> Loaded:
    """The current study (re-read when its file changes); never raises: errors are one line."""
    src = source(upload)
    try:
        mtime = os.stat(src.study_path).st_mtime_ns
    except OSError:
        mtime = 0
    try:
        return _load(src.study_path, mtime, src.cache_dir, src.data_root)
    except Exception as err:  # noqa: BLE001  (any failure to load is shown, never a traceback)
        return Loaded(src, mtime, error=one_line(err))


def one_line(err: BaseException) -> str:
    """The one line a page shows for ``err``: a prunescope error's own words, else type: message."""
    if isinstance(err, PrunescopeError):
        return api.first_line(str(err)) or type(err).__name__
    return api.first_line(f"{type(err).__name__}: {err}")


# -- uploaded studies ----------------------------------------------------------------

#: Uploaded study files live inside the store, named by their content's hash (never
#: by the name the browser sent), so an upload cannot write anywhere else.
UPLOADS = ".uploads"
_UPLOAD_ID = re.compile(r"[0-9a-f]{16}")


def upload_path(cache_dir: str | Path, upload: str) -> Path | None:
    """The file of an uploaded study id, or None if the id is malformed or unknown."""
    if not _UPLOAD_ID.fullmatch(upload or ""):
        return None
    path = Path(cache_dir) / UPLOADS / f"{upload}.toml"
    return path if path.is_file() else None


def save_upload(payload: bytes, cache_dir: str | Path, *, name: str = "upload") -> str:
    """Validate an uploaded study and keep it in the store; return its id.

    Refused (a ``SpecError`` naming the problem, nothing written) when it is larger
    than a study may be, not UTF-8 text, not TOML, or not a valid study. A failed
    write (disk full, read-only store) is a one-line ``StoreError`` naming the
    upload, the path, the step and the reason (:func:`analysis.atomic.write_atomic`).
    """
    label = f"uploaded study {Path(name).name!r}"
    if len(payload) > MAX_STUDY_BYTES:
        raise SpecError(
            "file", f"a study of at most {MAX_STUDY_BYTES // 1024} KiB", f"{len(payload)} bytes",
            owner=label,
        )  # fmt: skip
    try:
        text = payload.decode("utf-8")
    except UnicodeDecodeError:
        raise SpecError("file", "UTF-8 TOML text", "binary data", owner=label) from None
    parse_study(text, source=label)
    upload = hashlib.sha256(payload).hexdigest()[:16]
    target = Path(cache_dir) / UPLOADS / f"{upload}.toml"
    if not target.is_file():  # named by content: an existing file already holds these bytes
        write_atomic(target, payload, what=label)
    return upload


@st.cache_data(show_spinner="Loading the study...", max_entries=16)
def _load(study_path: str, mtime_ns: int, cache_dir: str, data_root: str | None) -> Loaded:
    """Read, validate and (if its dataset is missing) fall back; errors become one line."""
    src = Source(study_path, cache_dir, data_root)
    try:
        study, note = with_available_data(load_study(study_path), data_root)
    except PrunescopeError as err:
        return Loaded(src, mtime_ns, error=one_line(err))
    return Loaded(src, mtime_ns, study=study, note=note)


@st.cache_resource(max_entries=8)
def _store(cache_dir: str) -> Store:
    """One read-side store per root (it remembers which entries it has verified)."""
    return Store(Path(cache_dir))


def store(loaded: Loaded) -> Store:
    """The store the study's results are read from."""
    return _store(loaded.source.cache_dir)


def _key(loaded: Loaded) -> tuple:
    """The cache key of everything derived from the study file."""
    src = loaded.source
    return (src.study_path, loaded.mtime_ns, src.cache_dir, src.data_root)


@st.cache_data(show_spinner=False, max_entries=16)
def _watched(study_path: str, mtime_ns: int, cache_dir: str, data_root: str | None) -> list[str]:
    """The files whose changes mean the study's results changed (entries and failures)."""
    loaded = _load(study_path, mtime_ns, cache_dir, data_root)
    s = _store(cache_dir)
    paths = []
    for spec in plan.study_specs(loaded.study):
        paths += [str(s.path(spec) / "meta.json"), str(s.failure_path(spec))]
    return paths


def store_state(loaded: Loaded) -> str:
    """A fingerprint of the study's results in the store (cheap: one stat per file)."""
    h = hashlib.sha256()
    for path in _watched(*_key(loaded)):
        try:
            h.update(str(os.stat(path).st_mtime_ns).encode())
        except OSError:
            h.update(b"-")
    return h.hexdigest()[:16]


@st.cache_data(show_spinner="Reading results...", max_entries=32)
def _summary(
    study_path: str, mtime_ns: int, cache_dir: str, data_root: str | None, state: str
) -> dict:
    """``prunescope show --json`` of the study (read-only)."""
    loaded = _load(study_path, mtime_ns, cache_dir, data_root)
    return plan.summarize(loaded.study, _store(cache_dir))


def summary(loaded: Loaded) -> dict:
    """The study's summary as of the store's current state."""
    return _summary(*_key(loaded), store_state(loaded))


def read_summary(loaded: Loaded) -> tuple[dict | None, str | None]:
    """The study's summary, or None and the one-line reason it cannot be read (never raises)."""
    if loaded.error:
        return None, loaded.error
    try:
        return summary(loaded), None
    except Exception as err:  # noqa: BLE001  (a store or study that breaks reading is shown)
        return None, one_line(err)


#: Summary sections that are not parts of the study.
_NOT_PARTS = ("schema", "study", "counts")


def failures(summary: dict, part: str | None = None) -> list[dict]:
    """Every failed result of the summary (or of one part): ``part``, ``label``, ``error``.

    Walks each section for records whose ``status`` is ``"failed"`` (runs,
    representations, robustness items, connectivity pairs and instability points,
    landscape surfaces, sharpness and planes); ``error`` is the recorded reason's
    first line (``analysis.api.status_record``).
    """
    names = [part] if part else [p for p in summary if p not in _NOT_PARTS]
    out = []
    for name in names:
        for item in _failed(summary.get(name)):
            label = item.get("label") or item.get("objective") or name
            if name == "representations" and "objective" in item:
                label = f"objective {item['objective']}"
            reason = item.get("error") or "no reason was recorded"
            out.append({"part": name, "label": str(label), "error": reason})
    return out


def _failed(node: object):
    """The records with ``status == "failed"`` anywhere under ``node`` (dicts and lists)."""
    if isinstance(node, dict):
        if node.get("status") == "failed":
            yield node
            return
        for value in node.values():
            yield from _failed(value)
    elif isinstance(node, list):
        for value in node:
            yield from _failed(value)


@st.cache_data(show_spinner=False, max_entries=32)
def _part_status(
    study_path: str, mtime_ns: int, cache_dir: str, data_root: str | None, state: str
) -> dict[str, list[dict]]:
    """Per part: one record (label, kind, status, error) per spec."""
    loaded = _load(study_path, mtime_ns, cache_dir, data_root)
    s = _store(cache_dir)
    out: dict[str, list[dict]] = {}
    for part in plan.PARTS:
        records = []
        for spec in plan.study_specs(loaded.study, only=part):
            status = api.status(spec, s)
            error = api.first_line(s.failure(spec) or "") if status == "failed" else ""
            if status == "failed" and not error:
                error = "no reason was recorded"
            records.append(
                {
                    "label": getattr(spec, "label", spec.kind),
                    "kind": spec.kind,
                    "status": status,
                    "error": error,
                }
            )
        out[part] = records
    return out


def part_status(loaded: Loaded) -> dict[str, list[dict]]:
    """What each part of the study has cached, missing and failed."""
    return _part_status(*_key(loaded), store_state(loaded))


@st.cache_data(show_spinner=False, max_entries=2048)
def _history(
    study_path: str, mtime_ns: int, cache_dir: str, data_root: str | None, key: str
) -> list[dict]:
    """The per-epoch history of one run (raises NotComputed, which is not cached)."""
    loaded = _load(study_path, mtime_ns, cache_dir, data_root)
    spec = next(s for s in loaded.study.runs() if spec_key(s) == key)
    return api.get(spec, store=_store(cache_dir), compute=False).history


def histories(loaded: Loaded, keys: Sequence[str]) -> dict[str, list[dict]]:
    """Histories of the cached runs among ``keys`` (a run key names its content, so never stale)."""
    out = {}
    for key in keys:
        try:
            out[key] = _history(*_key(loaded), key)
        except (PrunescopeError, StopIteration):
            continue
    return out


def lineages(loaded: Loaded, keys: Sequence[str]) -> dict[str, list[dict]]:
    """``Reader.lineage`` of the computed runs among ``keys`` (cached by the shared reader)."""
    read = reader(loaded)
    return {key: lineage for key in keys if (lineage := read.lineage(key))}


def refresh() -> None:
    """Forget summaries and statuses (new results landed)."""
    _summary.clear()
    _part_status.clear()


@st.cache_resource
def job_board() -> JobBoard:
    """The background jobs of this server process (shared by every browser session)."""
    return JobBoard()


def _job_key(loaded: Loaded) -> tuple[str, str]:
    """Jobs are per study file and store: one computation of a study at a time."""
    return (loaded.source.study_path, loaded.source.cache_dir)


def compute_job(loaded: Loaded) -> JobView | None:
    """The latest background computation of this study, if any."""
    return job_board().get(_job_key(loaded))


def device_choices() -> list[str]:
    """The devices the Compute page offers: ``auto``, then each device this machine has
    (the default first: ``$PRUNESCOPE_DEVICE`` when set)."""
    from analysis import device as devices

    default = os.environ.get(devices.ENV_VAR, "auto").strip().lower() or "auto"
    return list(dict.fromkeys([default, "auto", *devices.available()]))


def start_compute(
    loaded: Loaded, only: str | None = None, device: str | None = None
) -> JobView | None:
    """Start computing what the study (or one part) is missing, on a background thread,
    on ``device`` (see :func:`analysis.device.resolve`; default ``$PRUNESCOPE_DEVICE`` or auto).

    Raises:
        DeviceError: the device is not on this machine (nothing starts).
    """
    from analysis import device as devices
    from analysis.executor import make_executor

    study, root = loaded.study, Path(loaded.source.cache_dir)
    devices.resolve(device)  # a device that is not here: refused before the job starts

    def work(progress, log):
        # A store of its own: the job thread never shares the pages' verified-entry memo.
        executor = make_executor("local", device=device)
        log(f"computing on {', '.join(devices.say(d) for d in executor.devices)}")
        try:
            return plan.compute_study(
                study, Store(root), only=only, progress=progress, log=log, executor=executor
            )
        finally:
            executor.close()

    job_board().start(_job_key(loaded), only or "everything", work)
    return compute_job(loaded)


# -- analyses ----------------------------------------------------------------------


@st.cache_resource(max_entries=16)
def _reader(study_path: str, mtime_ns: int, cache_dir: str, data_root: str | None) -> Reader:
    """The plain reader of the study's results (see :mod:`dashboard.results`)."""
    loaded = _load(study_path, mtime_ns, cache_dir, data_root)
    return Reader(loaded.study, _store(cache_dir))


def reader(loaded: Loaded) -> Reader:
    """Uncached read access to the study's results (the export uses it)."""
    return _reader(*_key(loaded))


@st.cache_data(show_spinner="Reading representations...", max_entries=8)
def _representations(
    study_path: str,
    mtime_ns: int,
    cache_dir: str,
    data_root: str | None,
    objective: str,
    state: str,
    setting: str = "",
) -> dict | None:
    """The arrays of a ``representations`` entry, with its summary under ``"summary"``."""
    return _reader(study_path, mtime_ns, cache_dir, data_root).representations(objective, setting)


def representations(loaded: Loaded, objective: str, setting: str = "") -> dict | None:
    """The representations of one objective's runs (of one setting of a sweep), or None."""
    return _representations(*_key(loaded), objective, store_state(loaded), setting)


@st.cache_data(show_spinner=False, max_entries=64)
def _corruption_sample(
    study_path: str, mtime_ns: int, cache_dir: str, data_root: str | None, position: int, state: str
) -> dict | None:
    """One sample of the corrupted subset: images (K, S, C, H, W), clean, label, names."""
    return _reader(study_path, mtime_ns, cache_dir, data_root).corruption_sample(position)


def corruption_sample(loaded: Loaded, position: int) -> dict | None:
    """One test sample under every corruption x severity, or None when not computed."""
    return _corruption_sample(*_key(loaded), position, store_state(loaded))


class _Absent(Exception):
    """A read that found nothing: not cached, so it is looked for again on the next rerun."""


@st.cache_data(show_spinner="Reading the surface...", max_entries=1024)
def _surface(
    study_path: str, mtime_ns: int, cache_dir: str, data_root: str | None, key: str
) -> dict:
    """The arrays of one landscape or plane entry (x, y, loss, acc, coords).

    Keyed by the entry's content key, not by the store's state: a content key
    names its result, which never changes, so a page of 100 slices reads the
    store's state once, not once per slice. (Raises :class:`_Absent`, which is
    not cached, when the entry is not there yet.)
    """
    arrays = _reader(study_path, mtime_ns, cache_dir, data_root).surface(key)
    if arrays is None:
        raise _Absent(key)
    return arrays


def surface(loaded: Loaded, key: str) -> dict | None:
    """The grid arrays of the landscape entry with content key ``key``, or None."""
    try:
        return _surface(*_key(loaded), key)
    except _Absent:
        return None


# -- served files ------------------------------------------------------------------


@st.cache_resource
def _served_plotly_js() -> bool:
    """Whether plotly.js is in the served static folder (copied there once per process)."""
    return plotly_js.ensure() is not None


def plotly_js_src() -> str | None:
    """The URL path of the served plotly.js for an iframe's ``<script src>``, or None.

    None where static serving is off or the file cannot be placed: the caller
    then inlines plotly.js (see :mod:`dashboard.plotly_js`).
    """
    if not st.get_option("server.enableStaticServing") or not _served_plotly_js():
        return None
    return plotly_js.url(st.get_option("server.baseUrlPath") or "")


# -- export --------------------------------------------------------------------------
