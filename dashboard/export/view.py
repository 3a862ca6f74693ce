"""Which runs an export shows: the dashboard sidebar's filters, from options or a copied link.

The sidebar (``dashboard/ui.py``) filters runs by setting, method, sparsity,
seed and objective, and mirrors each filter into the URL as ``?name=a&name=b``:
an absent name means every value, ``?name=`` means none, sparsities are written
with ``repr`` (``0.9``) and a link naming only values the study no longer has
means every value. ``?seeds=each`` turns the "Mean over seeds" grouping off.
:func:`from_query` reads such a link, so ``prunescope export --view '?method=..'``
exports the view a meeting saw; :func:`from_options` reads the command line's
``--method``/``--sparsity``/... options. On the command line a value the study does
not have is an error either way (the export would otherwise show every value).

:func:`narrowed` gives the summary the export draws from: only the chosen runs,
the pairs and per-run records of those runs, and the ``groups`` statistics
recomputed over them (``analysis.group_stats``), so a mean over seeds is over
the seeds shown.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from difflib import get_close_matches
from urllib.parse import parse_qs, urlsplit

from analysis.errors import SpecError
from analysis.group_stats import group_statistics

#: (URL name, run field, how a URL value is read) of each sidebar filter, in sidebar order.
FILTERS = (
    ("setting", "setting_label", str),
    ("method", "method", str),
    ("sparsity", "requested_sparsity", float),
    ("seed", "seed", int),
    ("objective", "objective", str),
)
FILTER_NAMES = tuple(name for name, _, _ in FILTERS)
_OWNER = "prunescope export"


@dataclass(frozen=True, slots=True, kw_only=True)
class Filters:
    """The values each filter keeps (None: every value), and whether seeds are grouped.

    ``grouped`` None means the dashboard's default: grouped when a method has
    several seeds.
    """

    setting: tuple | None = None
    method: tuple | None = None
    sparsity: tuple | None = None
    seed: tuple | None = None
    objective: tuple | None = None
    grouped: bool | None = None

    def is_all(self) -> bool:
        """Whether no filter narrows the runs."""
        return all(getattr(self, name) is None for name, _, _ in FILTERS)


def _field(run: dict, field: str):
    """A run's value of a filter field (a study without axes has the empty setting)."""
    return run.get(field, "") if field == "setting_label" else run[field]


def _same(a, b) -> bool:
    """Equal, with sparsities compared to 1e-9 (``90%`` on a command line is 0.9)."""
    if isinstance(a, float) or isinstance(b, float):
        try:
            return abs(float(a) - float(b)) < 1e-9
        except (TypeError, ValueError):
            return False
    return a == b


def _read(value: str, read: Callable[[str], object], name: str):
    """One value of a filter as the runs hold it; ``90%`` is a sparsity of 0.9."""
    text = value.strip()
    try:
        if read is float and text.endswith("%"):
            return float(text[:-1]) / 100
        return read(text)
    except ValueError:
        kind = "a number (0.9 or 90%)" if read is float else "an integer"
        raise SpecError(name, kind, value, owner=_OWNER) from None


def from_query(query: str) -> Filters:
    """The filters a dashboard link states (and its grouping: ``?seeds=each`` is off).

    ``query`` is a whole link or its query string (``?method=lottery&seed=0``).
    Values are matched against the study later, by :func:`select`. The dashboard's
    other parameters (a page's choices) are passed over.

    Raises:
        SpecError: text that is no link, a misspelt filter name (``methd``), or a
            sparsity or seed that is not a number.
    """
    text = urlsplit(query).query if "://" in query else query.lstrip("?")
    if text and "=" not in text:
        raise SpecError("view", "a dashboard link ('?method=lottery&seed=0')", query, owner=_OWNER)
    params = parse_qs(text, keep_blank_values=True)
    for key in params:  # the dashboard's other parameters pass; a misspelt filter does not
        near = get_close_matches(key, [*FILTER_NAMES, "seeds"], n=1, cutoff=0.75)
        if near and near[0] != key:
            raise SpecError("view", f"'{near[0]}', not '{key}'", query, owner=_OWNER)
    found: dict = {}
    for name, _, read in FILTERS:
        if name in params:
            found[name] = tuple(_read(v, read, name) for v in params[name] if v != "")
    grouped = None if "seeds" not in params else params["seeds"][-1] != "each"
    return Filters(**found, grouped=grouped)


def from_options(**options: Sequence[str] | None) -> Filters:
    """Filters from the command line: ``method=["lottery"], sparsity=["0.9,0.5"]`` etc.

    Each option is a list of comma-separated values (None: every value).

    Raises:
        SpecError: an unknown option, or a sparsity or seed that is not a number.
    """
    reads = {name: read for name, _, read in FILTERS}
    found: dict = {}
    for name, given in options.items():
        if name not in reads:
            raise SpecError("filter", f"one of {', '.join(reads)}", name, owner=_OWNER)
        if given is None:
            continue
        values = [v for item in given for v in str(item).split(",") if v.strip()]
        found[name] = tuple(_read(v, reads[name], name) for v in values)
    return Filters(**found)


def filters_of(view: str | None, **options: Sequence[str] | None) -> Filters:
    """The command line's filters: a dashboard link (``--view``) or options, not both.

    Raises:
        SpecError: both given, an unknown option, or a sparsity or seed that is not a number.
    """
    if view is None:
        return from_options(**options)
    if any(options.values()):
        given = ", ".join(f"--{k}" for k, v in options.items() if v)
        raise SpecError("view", f"given without {given}", view, owner=_OWNER)
    return from_query(view)


def _options(runs: Iterable[dict], field: str) -> list:
    """A filter's values in the sidebar's order (sparsities and seeds sorted)."""
    values = list(dict.fromkeys(_field(r, field) for r in runs))
    return sorted(values) if field in ("requested_sparsity", "seed") else values


def _shown(value) -> str:
    """A filter value as the sidebar shows it (sparsities in percent)."""
    return f"{100 * value:g}%" if isinstance(value, float) else str(value)


def select(summary: dict, filters: Filters, *, strict: bool = True) -> list[dict]:
    """The summary's runs that pass every filter, in the summary's order.

    ``strict``: a value the study does not have is a SpecError naming the filter
    and the values it has (the command line). Not strict: such values are left
    out, and a filter left with none of its values means every value, as the
    dashboard reads an old link.

    Raises:
        SpecError: ``strict`` and a value the study does not have.
    """
    runs = summary["runs"]
    kept = list(runs)
    for name, field, _ in FILTERS:
        wanted = getattr(filters, name)
        if wanted is None:
            continue
        options = _options(runs, field)
        known = [o for o in options if any(_same(o, w) for w in wanted)]
        unknown = [w for w in wanted if not any(_same(o, w) for o in options)]
        if unknown and strict:
            allowed = "values of this study: " + ", ".join(_shown(o) for o in options)
            raise SpecError(name, allowed, ", ".join(map(_shown, unknown)), owner=_OWNER)
        if unknown and not known and wanted:
            continue  # an old link: the default (every value)
        kept = [r for r in kept if any(_same(_field(r, field), k) for k in known)]
    return kept


def describe(summary: dict, runs: Sequence[dict]) -> str:
    """What the filters keep, for a title slide: '12 of 42 runs: method lottery, dense · ...'."""
    every = summary["runs"]
    if len(runs) == len(every):
        return f"all {len(every)} runs"
    parts = []
    for name, field, _ in FILTERS:
        options, kept = _options(every, field), _options(runs, field)
        if len(kept) < len(options):
            parts.append(f"{name} {', '.join(_shown(v) for v in kept) or 'none'}")
    return f"{len(runs)} of {len(every)} runs: " + "; ".join(parts)


def grouped(filters: Filters, runs: Sequence[dict]) -> bool:
    """Whether the export shows methods (mean over seeds): the filters' choice, else when a
    method has several seeds among ``runs`` (the dashboard's default)."""
    from dashboard.figures.bands import several_seeds

    several = several_seeds(runs)
    return several if filters.grouped is None else filters.grouped and several


def narrowed(summary: dict, runs: Sequence[dict]) -> dict:
    """The summary restricted to ``runs``: their records, pairs between them, their groups.

    Per-run sections (robustness, landscape runs) keep the records of ``runs``;
    connectivity keeps the pairs between them (and same-init pairs to their dense
    reference); ``groups`` is recomputed, so statistics are over the seeds shown.
    """
    if len(runs) == len(summary["runs"]):
        return summary
    labels = {r["label"] for r in runs}
    keys = {r["key"] for r in runs}

    def ours(record: dict) -> bool:
        return record.get("key") in keys or record.get("label") in labels

    out = {**summary, "runs": list(runs)}
    out["robustness"] = [r for r in summary.get("robustness", []) if ours(r)]
    if land := summary.get("landscape"):
        out["landscape"] = {**land, "runs": [r for r in land.get("runs", []) if ours(r)]}
    if conn := summary.get("connectivity"):
        pairs = [
            p
            for p in conn.get("pairs", [])
            if p["run_b"] in labels and (p["run_a"] in labels or p.get("pair") == "same-init")
        ]
        out["connectivity"] = {**conn, "pairs": pairs}
    out["groups"] = group_statistics(out)
    return out
