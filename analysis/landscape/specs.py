"""The landscape's settings and specs: ``[analyses.landscape]`` and the three kinds' specs.

Frozen spec dataclasses (keys: sha256 of canonical JSON of every field); every
check raises a one-line :class:`~analysis.errors.SpecError` naming the field.
Settings that depend on the study's sizes (data splits, parameter count,
snapshots) are checked with the study, in :func:`analysis.landscape.kind.check_settings`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

from analysis.errors import SpecError
from analysis.specs import (
    SPEC,
    RunSpec,
    check_bool,
    check_float,
    check_int,
    check_literals,
    check_option,
)

#: Samples of the evaluated subset (and of a sharpness batch) when the study does not say:
#: this many, or the whole split where it is smaller.
DEFAULT_SUBSET = 1000
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
    ``split`` (training by default, as Li et al. 2018 plot the training loss;
    unset: :data:`DEFAULT_SUBSET`, or the whole split where smaller), seeded by
    ``subset_seed``; BatchNorm statistics are recomputed at every point on the
    training subset of that size. ``seeds``: the runs of the
    first seed only (default, keeps the demo cheap) or of every seed.
    ``trajectory`` adds each run's PCA trajectory plane; ``model_plane`` (2+
    seeds) adds the plane through run A (seed 0), B (seed 1) and B aligned to
    A by weight matching. ``sharpness_topk`` Hessian eigenvalues (0: none) and
    the Hessian trace from up to ``hutchinson_samples`` probes (0: none),
    stopping once its relative standard error reaches ``hutchinson_rel_error``,
    on ``sharpness_batch`` samples (unset: as ``subset``'s default).
    """

    grid: int = 31
    span: float = 1.0
    subset: int | None = None
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
    sharpness_batch: int | None = None

    def __post_init__(self) -> None:
        """Validate every field (SpecError naming it)."""
        owner = "landscape"
        _check_grid(owner, self.grid, self.span)
        _check_data(owner, DEFAULT_SUBSET if self.subset is None else self.subset, self.subset_seed)
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
        if self.sharpness_batch is not None:
            check_int(owner, "sharpness_batch", self.sharpness_batch, lo=1, hi=100_000)


@dataclass(**SPEC)
class LandscapeSpec:
    """A 1-D or 2-D surface of loss/accuracy around ``run`` along random directions.

    ``bn_stats``: BatchNorm statistics at every grid point are recomputed on the
    seeded training subset of ``subset`` samples (the one rule; a field so the
    key records it and a surface computed under another rule is never served).
    """

    kind: ClassVar[str] = "landscape"
    #: 2: each parameter's direction is seeded by its own name (issue 17).
    version: ClassVar[int] = 2
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
