"""The Hessian spectrum's settings and specs: ``[analyses.spectrum]`` and its three kinds.

A study asks for spectra by having an ``[analyses.spectrum]`` section (an empty
one takes the defaults); without it nothing is computed and every other key is
unchanged. The runs, the batch (the landscape's ``sharpness_batch``, ``split``,
``subset_seed``), ``respect_mask`` and the convexity map's directions
(``direction_seed``, ``span``, ``include_bias_bn``) come from
``[analyses.landscape]``, so the spectra describe the same loss as the
sharpness bars and the map lies on the 2-D surface's plane. Every check raises
a one-line :class:`~analysis.errors.SpecError` naming the field.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

from analysis.errors import SpecError
from analysis.landscape.specs import LANCZOS_STEPS, TRACE_REL_ERROR
from analysis.landscape.spectrum import DENSITY_BINS, SIGMA_SQUARED
from analysis.specs import SPEC, RunSpec, check_bool, check_float, check_int, check_literals

#: PyHessian's ``density(iter=100, n_v=1)`` defaults: Lanczos steps and probes of the density.
DENSITY_STEPS = 100
DENSITY_PROBES = 1
#: Li et al. 2018 (``hess_vec_prod.py``): eigsh's relative tolerance for the convexity map.
EIGSH_TOL = 1e-2
#: ARPACK restarts at most (each about 20 products): a point that needs more says so.
EIGSH_MAXITER = 100


def check_steps(owner: str, name: str, steps: Any) -> None:
    """Raise SpecError unless ``steps`` is an int in [2, 1000] (one step has no off-diagonal)."""
    check_int(owner, name, steps, lo=2, hi=1000)


def check_density(owner: str, probes: Any, steps: Any, bins: Any, sigma_squared: Any) -> None:
    """Raise SpecError unless the density's probes, steps, bins and variance are valid."""
    check_int(owner, "probes", probes, lo=0 if owner == "spectrum" else 1, hi=1000)
    check_steps(owner, "lanczos_steps", steps)
    check_int(owner, "bins", bins, lo=10, hi=100_000)
    check_float(owner, "sigma_squared", sigma_squared, 0.0, 1.0, lo_open=True)


def check_convexity(owner: str, prefix: str, grid: Any, tol: Any, maxiter: Any) -> None:
    """Raise SpecError unless the map's grid (2-51; 0 too in the settings), tolerance and
    restarts are valid; the fields are named ``<prefix>grid``, ``<prefix>tol``, ``<prefix>maxiter``."""
    if not (prefix and grid == 0):
        check_int(owner, f"{prefix}grid", grid, lo=2, hi=51)
    check_float(owner, f"{prefix}tol", tol, 0.0, 1.0, lo_open=True)
    check_int(owner, f"{prefix}maxiter", maxiter, lo=1, hi=100_000)


@dataclass(**SPEC)
class SpectrumSettings:
    """``[analyses.spectrum]`` of a study (its presence asks for the spectra).

    ``probes`` SLQ start vectors (0: no density) of ``lanczos_steps`` steps,
    smoothed as PyHessian does (``bins`` grid points, relative Gaussian
    variance ``sigma_squared``); ``layers``: the top eigenvalue (Lanczos,
    ``layer_steps`` steps) and trace (Hutchinson, up to ``layer_probes`` probes
    until ``layer_rel_error``) of each layer's Hessian block; ``convexity_grid``
    points per axis (0: no map) of Li et al. 2018's ``|lambda_min/lambda_max|``
    map by eigsh (``convexity_tol``, at most ``convexity_maxiter`` restarts);
    ``seed`` seeds every probe and start vector (with the run's key).
    """

    probes: int = DENSITY_PROBES
    lanczos_steps: int = DENSITY_STEPS
    bins: int = DENSITY_BINS
    sigma_squared: float = SIGMA_SQUARED
    layers: bool = True
    layer_steps: int = LANCZOS_STEPS
    layer_probes: int = 100
    layer_rel_error: float = TRACE_REL_ERROR
    convexity_grid: int = 5
    convexity_tol: float = EIGSH_TOL
    convexity_maxiter: int = EIGSH_MAXITER
    seed: int = 0

    def __post_init__(self) -> None:
        """Validate every field (SpecError naming it)."""
        owner = "spectrum"
        check_density(owner, self.probes, self.lanczos_steps, self.bins, self.sigma_squared)
        check_bool(owner, "layers", self.layers)
        check_steps(owner, "layer_steps", self.layer_steps)
        check_int(owner, "layer_probes", self.layer_probes, lo=2, hi=10_000)
        check_float(owner, "layer_rel_error", self.layer_rel_error, 0.0, 1.0, lo_open=True)
        check_convexity(
            owner, "convexity_", self.convexity_grid, self.convexity_tol, self.convexity_maxiter
        )
        check_int(owner, "seed", self.seed, lo=0)


@dataclass(**SPEC)
class _HessianBatch:
    """Fields shared by the three kinds: the run, its batch and the mask rule, the seed."""

    run: RunSpec = field(default_factory=RunSpec)
    batch: int = 1000
    subset_seed: int = 0
    split: Literal["train", "test"] = "train"
    respect_mask: bool = True
    seed: int = 0

    def _check(self, owner: str) -> None:
        """Validate the shared fields (SpecError naming the field)."""
        check_literals(self)
        check_int(owner, "batch", self.batch, lo=1, hi=1_000_000)
        check_int(owner, "subset_seed", self.subset_seed, lo=0)
        check_bool(owner, "respect_mask", self.respect_mask)
        check_int(owner, "seed", self.seed, lo=0)


@dataclass(**SPEC)
class DensitySpec(_HessianBatch):
    """The Hessian eigenvalue density of ``run``'s loss on a fixed batch (SLQ, as PyHessian)."""

    kind: ClassVar[str] = "hessian_density"
    probes: int = DENSITY_PROBES
    lanczos_steps: int = DENSITY_STEPS
    bins: int = DENSITY_BINS
    sigma_squared: float = SIGMA_SQUARED

    def __post_init__(self) -> None:
        """Validate every field (SpecError naming it)."""
        self._check("DensitySpec")
        check_density("DensitySpec", self.probes, self.lanczos_steps, self.bins, self.sigma_squared)

    @property
    def label(self) -> str:
        """Human label."""
        return f"Hessian density: {self.run.label}"


@dataclass(**SPEC)
class LayerSharpnessSpec(_HessianBatch):
    """Top eigenvalue and trace of each layer's Hessian block of ``run``'s loss."""

    kind: ClassVar[str] = "layer_sharpness"
    lanczos_steps: int = LANCZOS_STEPS
    hutchinson_samples: int = 100
    hutchinson_rel_error: float = TRACE_REL_ERROR

    def __post_init__(self) -> None:
        """Validate every field (SpecError naming it)."""
        owner = "LayerSharpnessSpec"
        self._check(owner)
        check_steps(owner, "lanczos_steps", self.lanczos_steps)
        check_int(owner, "hutchinson_samples", self.hutchinson_samples, lo=2, hi=10_000)
        check_float(owner, "hutchinson_rel_error", self.hutchinson_rel_error, 0.0, 1.0,
                    lo_open=True)  # fmt: skip

    @property
    def label(self) -> str:
        """Human label."""
        return f"sharpness per layer: {self.run.label}"


@dataclass(**SPEC)
class ConvexitySpec(_HessianBatch):
    """Li et al. 2018's ``|lambda_min / lambda_max|`` over a ``grid`` x ``grid`` 2-D surface.

    The surface's plane: the filter-normalised directions of a
    :class:`~analysis.landscape.specs.LandscapeSpec` with the same
    ``direction_seed``, ``respect_mask`` and ``include_bias_bn``, over
    ``[-span, span]`` per axis. ``bn_stats``: BatchNorm statistics reset on the
    training subset at every point, as on the surface.
    """

    kind: ClassVar[str] = "convexity_map"
    #: 2: its plane's directions are seeded per parameter name (as the surfaces').
    version: ClassVar[int] = 2
    grid: int = 5
    span: float = 1.0
    direction_seed: int = 0
    include_bias_bn: bool = False
    tol: float = EIGSH_TOL
    maxiter: int = EIGSH_MAXITER
    bn_stats: Literal["reset"] = "reset"

    def __post_init__(self) -> None:
        """Validate every field (SpecError naming it)."""
        owner = "ConvexitySpec"
        self._check(owner)
        check_convexity(owner, "", self.grid, self.tol, self.maxiter)
        check_float(owner, "span", self.span, 0.0, 1e6, lo_open=True)
        check_int(owner, "direction_seed", self.direction_seed, lo=0)
        check_bool(owner, "include_bias_bn", self.include_bias_bn)

    @property
    def label(self) -> str:
        """Human label."""
        return f"convexity map {self.grid}x{self.grid}: {self.run.label}"


def refuse(field_name: str, allowed: str, value: Any) -> None:
    """Raise the study-level SpecError naming ``analyses.spectrum.<field_name>``."""
    raise SpecError(f"analyses.spectrum.{field_name}", allowed, value, owner="study")
