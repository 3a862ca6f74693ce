"""The landscape part as the rest of prunescope sees it: one :class:`~analysis.api.Analysis` record.

Its kinds (``landscape``, ``landscape_plane``, ``sharpness``: the specs are in
:mod:`analysis.landscape.specs`, the work in :mod:`analysis.landscape.surfaces`),
the executor's row-chunk hooks (:func:`grid_rows`, :func:`fill_rows`), the
memory check (:mod:`analysis.landscape.memory`), the study's specs
(:func:`landscape_specs`, after :func:`check_settings` checks the settings
against the study's sizes) and the ``show --json`` section
(:func:`summarize_landscape`).
"""

from __future__ import annotations

from typing import Any

from analysis.api import Analysis, Context, Kind, Study
from analysis.batchnorm import bn_rule_record
from analysis.data import DIGITS_TEST_FRACTION
from analysis.device import full_fp32
from analysis.errors import SpecError
from analysis.landscape import surfaces
from analysis.landscape.grid import compute_grid
from analysis.landscape.memory import check_landscape, shape_facts
from analysis.landscape.specs import (
    BN_RULE,
    DEFAULT_SUBSET,
    LANCZOS_STEPS,
    LandscapeSettings,
    LandscapeSpec,
    PlaneSpec,
    SharpnessSpec,
)
from analysis.specs import DataSpec, RunSpec, spec_key

#: Images of each dataset: (training pool, test) before the validation split; digits: all 1797.
DATASET_SIZES = {
    "digits": (1797 - round(DIGITS_TEST_FRACTION * 1797), round(DIGITS_TEST_FRACTION * 1797)),
    "fashion-mnist": (60_000, 10_000),
    "mnist": (60_000, 10_000),
    "cifar10": (50_000, 10_000),
    "cifar100": (50_000, 10_000),
}


@full_fp32()  # fp32 means fp32 on CUDA too (no TF32): the CPU's numbers to float rounding
def compute_landscape(spec: LandscapeSpec, ctx: Context) -> tuple[dict, dict]:
    """The surface around ``spec.run`` along filter-normalised random directions."""
    return surfaces.landscape_entry(spec, ctx)


@full_fp32()
def compute_plane(spec: PlaneSpec, ctx: Context) -> tuple[dict, dict]:
    """The surface in the plane of three networks or of a training trajectory."""
    return surfaces.plane_entry(spec, ctx)


@full_fp32()
def compute_sharpness(spec: SharpnessSpec, ctx: Context) -> tuple[dict, dict]:
    """Top-k Hessian eigenvalues (Lanczos) and Hutchinson trace of the run's loss."""
    return surfaces.sharpness_entry(spec, ctx)


def grid_rows(spec: Any) -> int | None:
    """Rows of a 2-D surface spec (which the executor can split into chunks), else None."""
    if isinstance(spec, LandscapeSpec) and spec.dims == 2 or isinstance(spec, PlaneSpec):
        return spec.grid
    return None


@full_fp32()
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


def resolved_sizes(run: RunSpec, s: LandscapeSettings) -> tuple[int, int]:
    """(evaluated subset, sharpness batch) of the settings on ``run``'s data: set, or defaults.

    An unset size is :data:`DEFAULT_SUBSET` or the whole split where smaller
    (for a BatchNorm network, also no more than the training split its
    statistics are recomputed on).
    """
    sizes = split_sizes(run.data)
    room = sizes[s.split]
    if shape_facts(run.model, run.data.name)[3]:
        room = min(room, sizes["train"])
    subset = s.subset if s.subset is not None else min(DEFAULT_SUBSET, room)
    batch = s.sharpness_batch if s.sharpness_batch is not None else min(DEFAULT_SUBSET, room)
    return subset, batch


def check_settings(study: Study, s: LandscapeSettings) -> None:
    """Check the settings against the study's sizes: data splits, parameters, snapshots.

    Raises:
        SpecError: one line naming the ``analyses.landscape.<field>``: a
            ``subset`` or ``sharpness_batch`` larger than its split (or than
            the training split BatchNorm statistics are recomputed on), Lanczos
            steps beyond the parameter count, a trajectory plane of a run
            trained 0 epochs.
    """
    runs = study.runs()
    if not runs:
        return
    run = runs[0]  # every run shares the study's data, model and training spec
    sizes, name = split_sizes(run.data), run.data.name
    _, _, params, has_bn = shape_facts(run.model, name)
    subset, batch = resolved_sizes(run, s)

    def at_most(field: str, value: int, limit: int, what: str) -> None:
        """SpecError naming ``analyses.landscape.<field>`` when ``value`` exceeds ``limit``."""
        if value > limit:
            raise SpecError(f"analyses.landscape.{field}", f"at most {limit} ({what})", value, owner="study")  # fmt: skip

    at_most("subset", subset, sizes[s.split], f"the {s.split} split of {name}")
    if has_bn:
        at_most("subset", subset, sizes["train"], f"the training split of {name}, where "
                "BatchNorm statistics are recomputed")  # fmt: skip
    if s.sharpness_topk or s.hutchinson_samples:
        at_most("sharpness_batch", batch, sizes[s.split], f"the {s.split} split of {name}")
    if s.sharpness_topk:
        steps = max(LANCZOS_STEPS, s.sharpness_topk)
        at_most("sharpness_topk", steps, params, f"Lanczos takes max({LANCZOS_STEPS}, "
                f"sharpness_topk) steps; {run.model.arch} has {params} parameters")  # fmt: skip
    if s.trajectory and run.train.epochs < 1:
        raise SpecError(
            "analyses.landscape.trajectory",
            "false for a study trained 0 epochs (a path needs 2 snapshots)",
            s.trajectory,
            owner="study",
        )


def landscape_runs(study: Study, s: LandscapeSettings) -> list[RunSpec]:
    """The runs the landscape part looks at (first seed only, unless ``seeds='all'``)."""
    runs = study.runs()
    return runs if s.seeds == "all" else [r for r in runs if r.seed == study.seeds[0]]


def landscape_specs(study: Study) -> list[Any]:
    """Every landscape, plane and sharpness spec of the study (settings checked first).

    Per run (see :func:`_runs`): one surface per ``dims``, the trajectory plane
    (if asked), sharpness (if ``sharpness_topk`` or ``hutchinson_samples``);
    with ``model_plane`` and 2+ seeds, per run of the first seed the plane
    through it, its seed-1 twin and the twin aligned by weight matching.
    """
    s = study.analysis("landscape")
    check_settings(study, s)
    out: list[Any] = []
    for r in landscape_runs(study, s):
        subset, batch = resolved_sizes(r, s)
        data = dict(subset=subset, subset_seed=s.subset_seed, split=s.split)
        surface = dict(grid=s.grid, span=s.span, direction_seed=s.direction_seed,
                       respect_mask=s.respect_mask, include_bias_bn=s.include_bias_bn)  # fmt: skip
        plane = dict(grid=s.plane_grid, margin=s.plane_margin, precision=s.precision, **data)
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
                    batch=batch,
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
    "split", "n", "bn", "bn_rule", "fused", "fused_path", "nonfinite_points",
)  # fmt: skip
#: Fields of a cached sharpness entry copied into its summary record.
SHARPNESS_FIELDS = (
    "eigenvalues", "trace", "trace_stderr", "trace_rel_error", "trace_probes", "n", "split",
)  # fmt: skip
#: Optional fields copied when present (a stated reason beside a missing number; the grid
#: engine, absent from entries computed before it was recorded).
REASONS = ("nonfinite_reason", "trace_reason", "note", "engine")


def _cached_fields(item: dict, doc: dict, names: tuple[str, ...]) -> None:
    """Copy ``names`` and any stated reasons from a cached entry's document into ``item``."""
    item.update({k: doc[k] for k in names})
    item.update({k: doc[k] for k in REASONS if k in doc})


def summarize_landscape(study: Study, store: Any) -> dict:
    """The ``landscape`` section of ``show --json`` (schema: docs/summary.md)."""
    from analysis import api

    s = study.analysis("landscape")
    by_run: dict[str, dict] = {}
    planes = []
    for spec in landscape_specs(study):
        item: dict = {"label": spec.label, **api.status_record(spec, store)}
        status = item["status"]
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
    settings = {k: getattr(s, k) for k in ("grid", "span", "split", "direction_seed",
                "respect_mask", "include_bias_bn", "precision", "seeds", "hutchinson_rel_error")}  # fmt: skip
    settings["dims"] = list(s.dims)
    runs = study.runs()
    if runs:  # the sizes as used (unset ones resolved) and the BatchNorm rule
        subset, batch = resolved_sizes(runs[0], s)
        bn = BN_RULE if shape_facts(runs[0].model, runs[0].data.name)[3] else "none"
        settings |= {"subset": subset, "sharpness_batch": batch, "bn": bn}
        settings["bn_rule"] = bn_rule_record(bn, subset if bn != "none" else 0)
    return {"settings": settings, "runs": list(by_run.values()), "planes": planes}


ANALYSIS = Analysis(
    name="landscape",
    kinds=(
        Kind("landscape", LandscapeSpec, compute_landscape, rows=grid_rows, fill_rows=fill_rows,
             memory=check_landscape,
             files={"surface.npz": object, "landscape.json": dict}),
        Kind("landscape_plane", PlaneSpec, compute_plane, rows=grid_rows, fill_rows=fill_rows,
             memory=check_landscape,
             files={"surface.npz": object, "plane.json": dict}),
        Kind("sharpness", SharpnessSpec, compute_sharpness,
             files={"sharpness.json": ("eigenvalues", "trace")}),
    ),
    specs=landscape_specs,
    summarize=summarize_landscape,
    settings=LandscapeSettings,
)  # fmt: skip
