"""The landscape kinds as the rest of prunescope sees them: settings, specs, registration, study parts.

Everything registration touches is here: ``[analyses.landscape]``
(:class:`LandscapeSettings`, in ``ANALYSIS_SETTINGS``), the three spec kinds,
their compute functions (``@register``, thin: the work is in
:mod:`analysis.landscape.surfaces`), the executor's row-chunk hooks
(:func:`grid_rows`, :func:`fill_rows`), the study's specs
(:func:`landscape_specs`, which first checks the settings against the
study's sizes, :func:`check_settings`) and the ``show --json`` section
(:func:`summarize_landscape`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cache
from typing import Any, ClassVar, Literal

from analysis.api import Context, entry_result, register
from analysis.data import DIGITS_TEST_FRACTION
from analysis.errors import SpecError
from analysis.landscape import surfaces
from analysis.landscape.grid import compute_grid
from analysis.specs import (
    SPEC,
    DataSpec,
    ModelSpec,
    RunSpec,
    check_bool,
    check_float,
    check_int,
    check_literals,
    check_option,
    spec_key,
)
from analysis.study import ANALYSIS_SETTINGS, StudySpec

#: Images of each dataset: (training pool, test) before the validation split; digits: all 1797.
DATASET_SIZES = {
    "digits": (1797 - round(DIGITS_TEST_FRACTION * 1797), round(DIGITS_TEST_FRACTION * 1797)),
    "fashion-mnist": (60_000, 10_000),
    "mnist": (60_000, 10_000),
    "cifar10": (50_000, 10_000),
}
#: Lanczos steps of the sharpness part: at least this many (more for a larger top-k).
LANCZOS_STEPS = 30
BN_RULE = "reset"
#: Default target relative standard error of the Hutchinson trace. Measured on the demo MLP
#: (670k parameters, 1000 samples, 0.18 s per HVP on a busy 2-core machine): 20 probes gave
#: 9.5%; 5% took 59 probes (14 s per run); 2% took 360 probes (83 s per run).
TRACE_REL_ERROR = 0.05


def _check_grid(owner: str, grid: Any, span: Any) -> None:
    """Raise SpecError unless ``grid`` is an int in [2, 401] and ``span`` a float > 0."""
    check_int(owner, "grid", grid, lo=2, hi=401)
    check_float(owner, "span", span, 0.0, 1e6, lo_open=True)


def _check_data(owner: str, subset: Any, subset_seed: Any) -> None:
    """Raise SpecError unless the subset size and seed are valid."""
    check_int(owner, "subset", subset, lo=1, hi=1_000_000)
    check_int(owner, "subset_seed", subset_seed, lo=0)


def _check_trace(owner: str, samples: Any, rel_error: Any) -> None:
    """Raise SpecError unless the probe budget is 0 (off) or 2-10000 and the target in (0, 1]."""
    if samples != 0:
        check_int(owner, "hutchinson_samples", samples, lo=2, hi=10_000)
    check_float(owner, "hutchinson_rel_error", rel_error, 0.0, 1.0, lo_open=True)


@dataclass(**SPEC)
class LandscapeSettings:
    """``[analyses.landscape]`` of a study.

    ``dims`` which surfaces (1: a line, 2: a grid) per run, each ``grid``
    points per axis over ``[-span, span]``; ``subset`` samples of the
    ``split`` (training by default, as Li et al. 2018 plot the training loss),
    seeded by ``subset_seed``; BatchNorm statistics are recomputed at every
    point on the training subset of that size. ``seeds``: the runs of the
    first seed only (default, keeps the demo cheap) or of every seed.
    ``trajectory`` adds each run's PCA trajectory plane; ``model_plane`` (2+
    seeds) adds the plane through run A (seed 0), B (seed 1) and B aligned to
    A by weight matching. ``sharpness_topk`` Hessian eigenvalues (0: none) and
    the Hessian trace from up to ``hutchinson_samples`` probes (0: none),
    stopping once its relative standard error reaches ``hutchinson_rel_error``,
    on ``sharpness_batch`` samples.
    """

    grid: int = 31
    span: float = 1.0
    subset: int = 1000
    subset_seed: int = 0
    split: str = "train"
    direction_seed: int = 0
    respect_mask: bool = True
    include_bias_bn: bool = False
    precision: str = "fp32"
    dims: tuple[int, ...] = (1, 2)
    seeds: str = "first"
    trajectory: bool = True
    model_plane: bool = False
    plane_grid: int = 21
    plane_margin: float = 0.3
    sharpness_topk: int = 3
    hutchinson_samples: int = 500
    hutchinson_rel_error: float = TRACE_REL_ERROR
    sharpness_batch: int = 1000

    def __post_init__(self) -> None:
        """Validate every field (SpecError naming it)."""
        owner = "landscape"
        _check_grid(owner, self.grid, self.span)
        _check_data(owner, self.subset, self.subset_seed)
        check_option(owner, "split", self.split, ("train", "test"))
        check_option(owner, "precision", self.precision, ("fp32", "bf16"))
        check_option(owner, "seeds", self.seeds, ("first", "all"))
        check_int(owner, "direction_seed", self.direction_seed, lo=0)
        for name in ("respect_mask", "include_bias_bn", "trajectory", "model_plane"):
            check_bool(owner, name, getattr(self, name))
        if not self.dims or len(set(self.dims)) != len(self.dims) or set(self.dims) - {1, 2}:
            raise SpecError("dims", "a non-empty list of 1 and/or 2", self.dims, owner=owner)
        check_int(owner, "plane_grid", self.plane_grid, lo=2, hi=401)
        check_float(owner, "plane_margin", self.plane_margin, 0.0, 10.0)
        check_int(owner, "sharpness_topk", self.sharpness_topk, lo=0, hi=50)
        _check_trace(owner, self.hutchinson_samples, self.hutchinson_rel_error)
        check_int(owner, "sharpness_batch", self.sharpness_batch, lo=1, hi=100_000)


ANALYSIS_SETTINGS["landscape"] = LandscapeSettings


@dataclass(**SPEC)
class LandscapeSpec:
    """A 1-D or 2-D surface of loss/accuracy around ``run`` along random directions.

    ``bn_stats``: BatchNorm statistics at every grid point are recomputed on the
    seeded training subset of ``subset`` samples (the one rule; a field so the
    key records it and a surface computed under another rule is never served).
    """

    kind: ClassVar[str] = "landscape"
    run: RunSpec = field(default_factory=RunSpec)
    dims: int = 2
    grid: int = 31
    span: float = 1.0
    subset: int = 1000
    subset_seed: int = 0
    split: Literal["train", "test"] = "train"
    direction_seed: int = 0
    respect_mask: bool = True
    include_bias_bn: bool = False
    precision: Literal["fp32", "bf16"] = "fp32"
    bn_stats: Literal["reset"] = BN_RULE

    def __post_init__(self) -> None:
        """Validate every field (SpecError naming it)."""
        check_literals(self)
        check_int("LandscapeSpec", "dims", self.dims, lo=1, hi=2)
        _check_grid("LandscapeSpec", self.grid, self.span)
        _check_data("LandscapeSpec", self.subset, self.subset_seed)
        check_int("LandscapeSpec", "direction_seed", self.direction_seed, lo=0)
        check_bool("LandscapeSpec", "respect_mask", self.respect_mask)
        check_bool("LandscapeSpec", "include_bias_bn", self.include_bias_bn)

    @property
    def label(self) -> str:
        """Human label."""
        shape = f"{self.grid}" if self.dims == 1 else f"{self.grid}x{self.grid}"
        return f"landscape {self.dims}-D {shape} ({self.precision}): {self.run.label}"


@dataclass(**SPEC)
class PlaneSpec:
    """A 2-D surface in the plane through networks.

    ``plane="models"``: ``runs`` holds 3 runs (A, B, C), or 2 runs (A, B) with
    ``align=True``, C then being B aligned to A by weight matching (seed
    ``subset_seed``). ``plane="trajectory"``: ``runs`` holds 1 run, the plane
    is the PCA plane of its trajectory around the final weights. The grid
    covers the networks' (path's) coordinates plus ``margin`` of their extent
    on each side, ``grid`` points per axis. ``bn_stats``: as in
    :class:`LandscapeSpec`.
    """

    kind: ClassVar[str] = "landscape_plane"
    runs: tuple[RunSpec, ...] = (RunSpec(),)
    plane: Literal["models", "trajectory"] = "trajectory"
    align: bool = False
    grid: int = 21
    margin: float = 0.3
    subset: int = 1000
    subset_seed: int = 0
    split: Literal["train", "test"] = "train"
    precision: Literal["fp32", "bf16"] = "fp32"
    bn_stats: Literal["reset"] = BN_RULE

    def __post_init__(self) -> None:
        """Validate every field and the runs' count and architecture (SpecError naming it)."""
        owner = "PlaneSpec"
        check_literals(self)
        check_bool(owner, "align", self.align)
        check_int(owner, "grid", self.grid, lo=2, hi=401)
        check_float(owner, "margin", self.margin, 0.0, 10.0)
        _check_data(owner, self.subset, self.subset_seed)
        want = 1 if self.plane == "trajectory" else (2 if self.align else 3)
        if len(self.runs) != want:
            raise SpecError(
                "runs",
                f"{want} run(s) for plane={self.plane!r}, align={self.align}",
                len(self.runs),
                owner=owner,
            )
        first = self.runs[0]
        for r in self.runs[1:]:
            if r.data != first.data or r.model != first.model:
                raise SpecError(
                    "runs",
                    f"runs of the same data and model as the first ({first.data}, {first.model})",
                    f"{r.data}, {r.model}",
                    owner=owner,
                )

    @property
    def label(self) -> str:
        """Human label."""
        names = " / ".join(r.label for r in self.runs)
        extra = " + aligned" if self.align else ""
        return f"landscape plane ({self.plane}{extra}): {names}"


@dataclass(**SPEC)
class SharpnessSpec:
    """Top-k Hessian eigenvalues and Hutchinson trace of ``run``'s loss on a fixed batch.

    The trace takes Rademacher probes (seeded by ``seed`` and the run) until its
    relative standard error is at most ``hutchinson_rel_error``, or
    ``hutchinson_samples`` probes (0: no trace).
    """

    kind: ClassVar[str] = "sharpness"
    run: RunSpec = field(default_factory=RunSpec)
    topk: int = 3
    hutchinson_samples: int = 500
    hutchinson_rel_error: float = TRACE_REL_ERROR
    batch: int = 1000
    subset_seed: int = 0
    split: Literal["train", "test"] = "train"
    seed: int = 0
    lanczos_iters: int = LANCZOS_STEPS
    respect_mask: bool = True

    def __post_init__(self) -> None:
        """Validate every field (SpecError naming it)."""
        owner = "SharpnessSpec"
        check_literals(self)
        check_int(owner, "topk", self.topk, lo=0, hi=50)
        _check_trace(owner, self.hutchinson_samples, self.hutchinson_rel_error)
        _check_data(owner, self.batch, self.subset_seed)
        check_int(owner, "seed", self.seed, lo=0)
        check_int(owner, "lanczos_iters", self.lanczos_iters, lo=max(1, self.topk), hi=1000)
        check_bool(owner, "respect_mask", self.respect_mask)

    @property
    def label(self) -> str:
        """Human label."""
        return f"sharpness: {self.run.label}"


# ---------------------------------------------------------------------------
# registration and the executor's hooks


@register("landscape", load=entry_result)
def compute_landscape(spec: LandscapeSpec, ctx: Context) -> tuple[dict, dict]:
    """The surface around ``spec.run`` along filter-normalised random directions."""
    return surfaces.landscape_entry(spec, ctx)


@register("landscape_plane", load=entry_result)
def compute_plane(spec: PlaneSpec, ctx: Context) -> tuple[dict, dict]:
    """The surface in the plane of three networks or of a training trajectory."""
    return surfaces.plane_entry(spec, ctx)


@register("sharpness", load=entry_result)
def compute_sharpness(spec: SharpnessSpec, ctx: Context) -> tuple[dict, dict]:
    """Top-k Hessian eigenvalues (Lanczos) and Hutchinson trace of the run's loss."""
    return surfaces.sharpness_entry(spec, ctx)


def grid_rows(spec: Any) -> int | None:
    """Rows of a 2-D surface spec (which the executor can split into chunks), else None."""
    if isinstance(spec, LandscapeSpec) and spec.dims == 2 or isinstance(spec, PlaneSpec):
        return spec.grid
    return None


def fill_rows(spec: LandscapeSpec | PlaneSpec, ctx: Context, rows: range) -> list[int]:
    """Compute ``rows`` of a 2-D surface into its partial grid in the store (resumable).

    A chunk of the grid run as a job of its own: chunks of one surface run in
    parallel, each writing its row files, and the job that then computes
    ``spec`` finds every row present and only assembles them. Returns the rows
    this call evaluated (the others were there already).
    """
    ctx.check_memory(spec)  # as the single job would: refuse a grid that cannot fit
    problem, xs, ys = surfaces.surface_problem(spec, ctx)
    if ys is None:
        raise ValueError(f"{spec.label} is a line, not a grid: it has no rows to split")
    done = 0

    def on_row(i: int, n: int) -> None:
        """Progress of this chunk's rows."""
        nonlocal done
        done += 1
        ctx.progress(f"{spec.label} rows {rows.start}-{rows.stop - 1}", done, len(rows))

    grid = compute_grid(
        problem,
        xs,
        ys,
        precision=spec.precision,
        partial=ctx.store.partial_dir(spec),
        on_row=on_row,
        only=rows,
        label=spec.label,
    )
    return [int(i) for i in grid["evaluated_rows"]]


# ---------------------------------------------------------------------------
# study level


def split_sizes(data: DataSpec) -> dict[str, int]:
    """Samples of the train and test splits of ``data`` (without loading it)."""
    pool, test = DATASET_SIZES[data.name]
    train = pool - round(data.val_fraction * pool)
    return {"train": data.train_size or train, "test": test}


@cache
def _network_facts(model: ModelSpec, dataset: str) -> tuple[int, bool]:
    """(parameter count, has BatchNorm) of ``model`` on ``dataset`` (an untrained skeleton)."""
    from analysis.batchnorm import has_batchnorm
    from analysis.data import dataset_info
    from analysis.models import build_for

    net = build_for(model, dataset_info(dataset))
    return sum(p.numel() for p in net.parameters()), has_batchnorm(net)


def check_settings(study: StudySpec, s: LandscapeSettings) -> None:
    """Check the settings against the study's sizes: data splits, parameters, snapshots.

    Raises:
        SpecError: one line naming the ``analyses.landscape.<field>``, e.g. a
            ``subset`` larger than the split, Lanczos steps beyond the
            parameter count, a trajectory plane of a run trained 0 epochs.
    """
    sizes = split_sizes(study.data)
    params, has_bn = _network_facts(study.model, study.data.name)

    def at_most(name: str, value: int, limit: int, what: str) -> None:
        """SpecError naming ``analyses.landscape.<name>`` when ``value`` exceeds ``limit``."""
        if value > limit:
            raise SpecError(f"analyses.landscape.{name}", f"at most {limit} ({what})", value, owner="study")  # fmt: skip

    on = f"the {s.split} split of {study.data.name}"
    at_most("subset", s.subset, sizes[s.split], on)
    if has_bn:  # BatchNorm statistics are recomputed on that many training samples
        at_most("subset", s.subset, sizes["train"], f"the training split of {study.data.name}, "
                "where BatchNorm statistics are recomputed")  # fmt: skip
    if s.sharpness_topk or s.hutchinson_samples:
        at_most("sharpness_batch", s.sharpness_batch, sizes[s.split], on)
    if s.sharpness_topk:
        steps = max(LANCZOS_STEPS, s.sharpness_topk)
        at_most("sharpness_topk", steps, params, f"Lanczos takes max({LANCZOS_STEPS}, "
                f"sharpness_topk) steps; {study.model.arch} has {params} parameters")  # fmt: skip
    if s.trajectory and study.train.epochs < 1:
        raise SpecError(
            "analyses.landscape.trajectory",
            "false for a study trained 0 epochs (a path needs 2 snapshots)",
            s.trajectory,
            owner="study",
        )


def _runs(study: StudySpec, s: LandscapeSettings) -> list[RunSpec]:
    """The runs the landscape part looks at (first seed only, unless ``seeds='all'``)."""
    runs = study.runs()
    return runs if s.seeds == "all" else [r for r in runs if r.seed == study.seeds[0]]


def landscape_specs(study: StudySpec) -> list[Any]:
    """Every landscape, plane and sharpness spec of the study (settings checked first).

    Per run (see :func:`_runs`): one surface per ``dims``, the trajectory plane
    (if asked), sharpness (if ``sharpness_topk`` or ``hutchinson_samples``);
    with ``model_plane`` and 2+ seeds, per run of the first seed the plane
    through it, its seed-1 twin and the twin aligned by weight matching.
    """
    s = study.analysis("landscape")
    check_settings(study, s)
    data = dict(subset=s.subset, subset_seed=s.subset_seed, split=s.split)
    surface = dict(grid=s.grid, span=s.span, direction_seed=s.direction_seed,
                   respect_mask=s.respect_mask, include_bias_bn=s.include_bias_bn)  # fmt: skip
    plane = dict(grid=s.plane_grid, margin=s.plane_margin, precision=s.precision, **data)
    out: list[Any] = []
    for r in _runs(study, s):
        out += [
            LandscapeSpec(run=r, dims=d, precision=s.precision, **surface, **data) for d in s.dims
        ]
        if s.trajectory:
            out.append(PlaneSpec(runs=(r,), plane="trajectory", **plane))
        if s.model_plane and len(study.seeds) >= 2 and r.seed == study.seeds[0]:
            twin = r.replace(seed=study.seeds[1])
            out.append(PlaneSpec(runs=(r, twin), plane="models", align=True, **plane))
        if s.sharpness_topk or s.hutchinson_samples:
            out.append(
                SharpnessSpec(
                    run=r,
                    topk=s.sharpness_topk,
                    hutchinson_samples=s.hutchinson_samples,
                    hutchinson_rel_error=s.hutchinson_rel_error,
                    batch=s.sharpness_batch,
                    subset_seed=s.subset_seed,
                    split=s.split,
                    lanczos_iters=max(LANCZOS_STEPS, s.sharpness_topk),
                    respect_mask=s.respect_mask,
                )
            )
    return out


#: Fields of a cached surface or plane copied into its summary record.
SURFACE_FIELDS = (
    "centre_loss", "centre_acc", "min_loss", "max_loss", "precision", "precision_rel_error",
    "split", "n", "bn", "bn_samples", "fused", "fused_path", "nonfinite_points",
)  # fmt: skip
#: Fields of a cached sharpness entry copied into its summary record.
SHARPNESS_FIELDS = (
    "eigenvalues", "trace", "trace_stderr", "trace_rel_error", "trace_probes", "n", "split",
)  # fmt: skip
#: Optional fields copied when present (a stated reason beside a missing number).
REASONS = ("nonfinite_reason", "trace_reason", "note")


def _cached_fields(item: dict, doc: dict, names: tuple[str, ...]) -> None:
    """Copy ``names`` and any stated reasons from a cached entry's document into ``item``."""
    item.update({k: doc[k] for k in names})
    item.update({k: doc[k] for k in REASONS if k in doc})


def summarize_landscape(study: StudySpec, store: Any) -> dict:
    """The ``landscape`` section of ``show --json`` (schema: docs/summary.md)."""
    from analysis import api

    s = study.analysis("landscape")
    by_run: dict[str, dict] = {}
    planes = []
    for spec in landscape_specs(study):
        status = api.status(spec, store)
        item: dict = {"label": spec.label, "key": spec_key(spec), "status": status}
        if status == "failed":
            item["error"] = (store.failure(spec) or "").splitlines()[0]
        entry = api.get(spec, store=store, compute=False) if status == "cached" else None
        if isinstance(spec, PlaneSpec):
            item.update(plane=spec.plane, runs=[r.label for r in spec.runs], align=spec.align)
            if entry is not None:
                doc = entry.read("plane.json")
                _cached_fields(item, doc, (*SURFACE_FIELDS, "coords"))
                extra = ("explained_variance", "explained_variance_method", "network_loss")
                item.update({k: doc[k] for k in (*extra, "network_acc") if k in doc})
            planes.append(item)
            continue
        run = spec.run
        rec = by_run.setdefault(
            spec_key(run), {**run.identity(), "surfaces": [], "sharpness": None}
        )
        if isinstance(spec, LandscapeSpec):
            item["dims"] = spec.dims
            if entry is not None:
                _cached_fields(item, entry.read("landscape.json"), (*SURFACE_FIELDS, "sparsity"))
            rec["surfaces"].append(item)
        else:
            if entry is not None:
                _cached_fields(item, entry.read("sharpness.json"), SHARPNESS_FIELDS)
            rec["sharpness"] = item
    settings = {k: getattr(s, k) for k in ("grid", "span", "subset", "split", "direction_seed",
                "respect_mask", "include_bias_bn", "precision", "seeds", "hutchinson_rel_error")}  # fmt: skip
    has_bn = _network_facts(study.model, study.data.name)[1]
    settings |= {"dims": list(s.dims), "bn": BN_RULE if has_bn else "none"}
    return {"settings": settings, "runs": list(by_run.values()), "planes": planes}
