"""Study TOML -> :class:`StudySpec`; every error names the field, the allowed values and the value.

A study is the grid a researcher asks about: one dataset, one architecture, one
training recipe, some seeds, and the methods x sparsities to compare (optionally
under both objectives, cross-entropy and SupCon), plus the settings of each
analysis. Example::

    name = "demo"
    seeds = [0, 1]
    objectives = ["ce"]

    [data]
    name = "fashion-mnist"
    fallback = "digits"        # used (and said plainly) when the dataset is missing

    [model]
    arch = "mlp"
    width = 512

    [train]
    epochs = 10

    [[methods]]
    method = "magnitude"
    sparsities = [0.9]
    scope = "global"           # any other key is an option of the method

A list on a model, training or data field is an axis (``width = [64, 256]``):
every combination of the axes is a setting, and every run and analysis is
computed per setting (:mod:`analysis.axes`). ``sparsities`` may be a ladder,
``{ ladder = "geometric", from = 0.5, to = 0.98, steps = 6 }``.
"""

from __future__ import annotations

import dataclasses
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from analysis.axes import Axis, Setting, check_arch_axes, ladder, settings, split_axes
from analysis.errors import DataError, SpecError
from analysis.parts import PARTS, SETTINGS
from analysis.sparsity import check_run, entry_specs
from analysis.specs import (
    DATASETS,
    SPEC,
    DataSpec,
    ModelSpec,
    RunSpec,
    SparsitySpec,
    TrainSpec,
    check_int,
    check_option,
    from_dict,
)

#: Analysis settings specs by section name (``[analyses.<name>]``), declared by each analysis.
ANALYSIS_SETTINGS: dict[str, type] = SETTINGS


MAX_STUDY_BYTES = 256 * 1024
MAX_RUNS = 2000
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 ._+-]{0,79}$")


@dataclass(**SPEC)
class MethodEntry:
    """One ``[[methods]]`` table: a method, its sparsities and its options."""

    method: str
    sparsities: tuple[float, ...] = ()
    options: tuple[tuple[str, Any], ...] = ()

    def specs(self) -> list[SparsitySpec]:
        """The sparsity specs this entry expands to (checked against the method, defaults filled in).

        Several lottery levels are one pruning chain (``analysis.sparsity.lottery``).
        """
        levels = self.sparsities or ((0.0,) if self.method == "dense" else ())
        return entry_specs(self.method, list(levels), self.options) if levels else []


@dataclass(**SPEC)
class StudySpec:
    """A whole study: what to train and which analyses to run on it."""

    kind: ClassVar[str] = "study"
    name: str = "study"
    description: str = ""
    data: DataSpec = field(default_factory=DataSpec)
    fallback: str | None = None
    model: ModelSpec = field(default_factory=ModelSpec)
    train: TrainSpec = field(default_factory=TrainSpec)
    seeds: tuple[int, ...] = (0,)
    objectives: tuple[str, ...] = ("ce",)
    methods: tuple[MethodEntry, ...] = ()
    analyses: tuple[tuple[str, Any], ...] = ()
    axes: tuple[Axis, ...] = ()

    def settings(self) -> list[Setting]:
        """Every combination of the axes (one setting, unnamed, when there are none)."""
        return settings(self.axes, self.data, self.model, self.train)

    def runs(self) -> list[RunSpec]:
        """Every run of the study: objectives x settings x seeds x methods x sparsities.

        Within a setting every run shares its data, model and training spec: no
        method adds to another's (a run's key holds only what changes that run),
        and a method's prerequisites (the dense run it prunes) are then study
        runs too. A run names its setting (not in its key).
        """
        out = []
        for objective in self.objectives:
            for setting in self.settings():
                train = dataclasses.replace(setting.train, objective=objective)
                for seed in self.seeds:
                    for entry in self.methods:
                        for sp in entry.specs():
                            out.append(
                                RunSpec(
                                    data=setting.data,
                                    model=setting.model,
                                    train=train,
                                    sparsity=sp,
                                    seed=seed,
                                    setting=setting.values,
                                )
                            )
        return out

    def dense_runs(self) -> list[RunSpec]:
        """The dense baseline runs (one per objective and seed)."""
        return [r for r in self.runs() if r.sparsity.method == "dense"]

    def analysis(self, name: str) -> Any:
        """The settings spec of analysis ``name`` (defaults if the study does not set it)."""
        for key, value in self.analyses:
            if key == name:
                return value
        cls = ANALYSIS_SETTINGS.get(name)
        if cls is None:
            raise SpecError(
                "analyses",
                f"one of {{{', '.join(map(repr, ANALYSIS_SETTINGS))}}}",
                name,
                owner="study",
            )
        return cls()


def _methods(raw: Any) -> tuple[MethodEntry, ...]:
    """Parse the ``[[methods]]`` array of tables."""
    if not isinstance(raw, list) or not raw:
        raise SpecError("methods", "a non-empty array of [[methods]] tables", raw, owner="study")
    entries = []
    for i, table in enumerate(raw):
        where = f"methods[{i}]"
        if not isinstance(table, dict) or "method" not in table:
            raise SpecError(where, "a table with a 'method' key", table, owner="study")
        table = dict(table)
        method = table.pop("method")
        if not isinstance(method, str):
            raise SpecError(f"{where}.method", "a method name (string)", method, owner="study")
        key = "sparsity" if "sparsity" in table and "sparsities" not in table else "sparsities"
        levels = table.pop("sparsities", None)
        if levels is None and "sparsity" in table:
            levels = [table.pop("sparsity")]
        if levels is None:
            levels = []
        if isinstance(levels, dict):
            if levels.get("ladder") == "lottery" and method == "lottery":
                table.setdefault("rounds", 1)  # each level one round of the chain
            levels = ladder(levels, f"{where}.sparsities")
        if not isinstance(levels, list) or len(levels) > 50:
            raise SpecError(
                f"{where}.sparsities",
                "a list of at most 50 floats in [0, 1)",
                levels,
                owner="study",
            )
        if isinstance(table.get("keep_dense"), list):  # a TOML list of layers
            table["keep_dense"] = ",".join(map(str, table["keep_dense"]))
        entry = MethodEntry(
            method=method, sparsities=tuple(levels), options=tuple(sorted(table.items()))
        )
        try:
            specs = entry.specs()
        except SpecError as err:
            param = key if err.param == "sparsity" else err.param  # the key the file has
            raise SpecError(f"{where}.{param}", err.allowed, err.received, owner="study") from None
        if not specs:
            raise SpecError(
                f"{where}.sparsities", "a non-empty list of floats in (0, 1)", levels, owner="study"
            )
        entry = dataclasses.replace(
            entry,
            options=specs[0].options,
            sparsities=tuple(float(s) for s in levels) or (0.0,),
        )
        if entry in entries:
            first = entries.index(entry)
            raise SpecError(
                where, f"a method entry unlike methods[{first}]", "a copy of it", owner="study"
            )
        entries.append(entry)
    return tuple(entries)


def _analyses(raw: Any) -> tuple[tuple[str, Any], ...]:
    """Parse the ``[analyses.*]`` tables into their settings specs."""
    if not isinstance(raw, dict):
        raise SpecError("analyses", "a table of [analyses.<name>] tables", raw, owner="study")
    out = []
    for name, table in sorted(raw.items()):
        cls = ANALYSIS_SETTINGS.get(name)
        if cls is None:
            raise SpecError(
                "analyses",
                f"sections named one of {{{', '.join(map(repr, ANALYSIS_SETTINGS))}}}",
                name,
                owner="study",
            )
        out.append((name, from_dict(cls, table, prefix=f"analyses.{name}.")))
    return tuple(out)


def study_from_dict(doc: dict) -> StudySpec:
    """Validate a parsed study document and build its spec."""
    known = {f.name for f in dataclasses.fields(StudySpec)} - {"axes"}  # axes: lists in place
    for key in doc:
        if key not in known:
            raise SpecError(
                key,
                f"a known study field, one of {{{', '.join(sorted(known))}}}",
                key,
                owner="study",
            )
    name = doc.get("name", "study")
    if not isinstance(name, str) or not NAME_RE.match(name):
        raise SpecError(
            "name",
            "1-80 letters, digits, spaces or ._+- (starting with a letter or digit)",
            name,
            owner="study",
        )
    description = doc.get("description", "")
    if not isinstance(description, str) or len(description) > 2000:
        raise SpecError(
            "description", "a string of at most 2000 characters", description, owner="study"
        )
    data_doc = dict(doc.get("data", {})) if isinstance(doc.get("data", {}), dict) else doc["data"]
    fallback = data_doc.pop("fallback", None) if isinstance(data_doc, dict) else None
    data_doc, data_axes = split_axes("data", data_doc)
    model_doc, model_axes = split_axes("model", doc.get("model", {}))
    train_doc, train_axes = split_axes("train", doc.get("train", {}))
    axes = [*model_axes, *train_axes, *data_axes]
    if fallback is not None:
        check_option("study", "data.fallback", fallback, DATASETS)
    seeds = doc.get("seeds", [0])
    if not isinstance(seeds, list) or not seeds or len(seeds) > 100:
        raise SpecError("seeds", "a non-empty list of at most 100 ints", seeds, owner="study")
    for s in seeds:
        check_int("study", "seeds", s, lo=0, hi=2**31 - 1)
    if len(set(seeds)) != len(seeds):
        raise SpecError("seeds", "distinct ints", seeds, owner="study")
    objectives = doc.get("objectives", ["ce"])
    if not isinstance(objectives, list) or not objectives:
        raise SpecError(
            "objectives", "a non-empty list drawn from {'ce', 'supcon'}", objectives, owner="study"
        )
    for o in objectives:
        check_option("study", "objectives", o, ("ce", "supcon"))
    methods = _methods(doc.get("methods"))
    model = from_dict(ModelSpec, model_doc, prefix="model.")
    arch_axis = [a.values for a in model_axes if a.name == "model.arch"]
    check_arch_axes(model_axes, tuple(arch_axis[0]) if arch_axis else (model.arch,))
    study = StudySpec(
        name=name,
        description=description,
        data=from_dict(DataSpec, data_doc, prefix="data."),
        fallback=fallback,
        model=model,
        train=from_dict(TrainSpec, train_doc, prefix="train."),
        seeds=tuple(seeds),
        objectives=tuple(dict.fromkeys(objectives)),
        methods=methods,
        analyses=_analyses(doc.get("analyses", {})),
        axes=tuple(axes),
    )
    n_settings = len(study.settings())
    n_runs = n_settings * len(study.objectives) * len(study.seeds)
    n_runs *= sum(len(entry.specs()) for entry in study.methods)
    if n_runs > MAX_RUNS:
        raise SpecError(
            "axes" if axes else "methods",
            f"a grid of at most {MAX_RUNS} runs",
            f"{n_runs} runs ({n_settings} settings)",
            owner="study",
        )
    _check_methods_against_training(study)
    check_parts(study)
    return study


def check_parts(study: StudySpec) -> None:
    """Build every part's specs, so a study that loads can always be computed and shown.

    (A grayscale study naming a colour corruption, say, is refused here, not on
    the first page that draws it.) Errors name the part's settings section.
    """
    for name, part in PARTS.items():
        try:
            part.specs(study)
        except SpecError as err:
            param = err.param if "." in err.param or name == "runs" else f"{name}.{err.param}"
            prefix = "" if name == "runs" or param.startswith("analyses.") else "analyses."
            raise SpecError(f"{prefix}{param}", err.allowed, err.received, owner="study") from None


def _check_methods_against_training(study: StudySpec) -> None:
    """Check each method entry's options against the run it trains (e.g. a rewind step in range)."""
    for setting in study.settings():
        for i, entry in enumerate(study.methods):
            for sp in entry.specs():
                run = RunSpec(
                    data=setting.data, model=setting.model, train=setting.train, sparsity=sp
                )
                try:
                    check_run(run)
                except SpecError as err:
                    where = f" (in setting {run.replace(setting=setting.values).label})"
                    raise SpecError(
                        f"methods[{i}].{err.param}",
                        err.allowed,
                        f"{err.received!r}{where if setting.values else ''}",
                        owner="study",
                    ) from None


def parse_study(text: str, *, source: str = "study") -> StudySpec:
    """Parse study TOML text; errors name the field (or the TOML line)."""
    if len(text.encode()) > MAX_STUDY_BYTES:
        raise SpecError(
            "file",
            f"a study of at most {MAX_STUDY_BYTES // 1024} KiB",
            f"{len(text.encode())} bytes",
            owner=source,
        )
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        raise SpecError("file", "valid TOML", str(err), owner=source) from None
    except RecursionError:  # tables nested thousands deep: tomllib recurses per level
        raise SpecError(
            "file", "TOML nested at most a few levels deep", "a deeper nesting", owner=source
        ) from None
    try:
        return study_from_dict(doc)
    except SpecError as err:
        raise SpecError(err.param, err.allowed, err.received, owner=source) from None


def load_study(path: str | Path) -> StudySpec:
    """Read and validate a study file."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise SpecError(
            "file", "a readable UTF-8 TOML file", f"{path} ({err})", owner="study"
        ) from None
    return parse_study(text, source=f"study {path.name}")


def with_available_data(
    study: StudySpec, root: str | Path | None = None
) -> tuple[StudySpec, str | None]:
    """Use the study's dataset if it can be found, else its fallback (with a message saying so)."""
    from analysis.data import load

    try:
        load(study.data, root)
        return study, None
    except DataError as err:
        if study.fallback is None or study.fallback == study.data.name:
            raise
        data = dataclasses.replace(study.data, name=study.fallback, train_size=None)
        note = f"{study.data.name} is not available, so this study runs on {study.fallback} instead.\n{err}"
        return dataclasses.replace(study, data=data), note
