"""Loss landscapes: surfaces around a trained network, planes through networks, sharpness.

Kinds (declared in :mod:`analysis.landscape.kind`'s ``ANALYSIS`` record):

- ``landscape``: the 1-D (line) or 2-D surface of loss and accuracy around a
  trained run along filter-normalised random directions (Li et al. 2018,
  "Visualizing the Loss Landscape of Neural Nets"), on a fixed, seeded subset
  of the training set (as Li et al. plot the training loss; the test set is an
  option). The grid is ``span * linspace(-1, 1, grid)`` per axis; the centre
  (coordinate 0) is always evaluated too.
- ``landscape_plane``: a 2-D surface in a plane through networks: the plane of
  three networks (A, B and C, or A, B and B aligned to A by weight matching),
  or the PCA plane of one run's training trajectory (Li et al. 2018, sec. 7,
  scikit-learn's centred PCA as in their code). The networks' (or the path's)
  coordinates in the plane are stored, and for the models plane the loss at
  each network's own point.
- ``hessian_density``, ``layer_sharpness``, ``convexity_map``: a second
  record, ``SPECTRUM`` (the ``spectrum`` part, ``[analyses.spectrum]``): the
  Hessian's eigenvalue density (SLQ), each layer's top eigenvalue and trace,
  and Li et al.'s convexity map (:mod:`.spectrum`, :mod:`.spectrum_specs`,
  :mod:`.spectrum_kind`).
- ``sharpness``: the top-k Hessian eigenvalues (Lanczos) and the Hessian trace
  (Hutchinson 1989, Rademacher probes until a stated relative error) from
  Hessian-vector products (``torch.func``), on a fixed batch of the training set.

BatchNorm: every grid point's weights (perturbed, interpolated or projected)
get their BatchNorm statistics recomputed on a fixed training subset
(:func:`analysis.batchnorm.reset_bn_stats`), the centre included, as on
connectivity paths; the rule is recorded in each entry (``bn``). Sharpness is
taken at the trained network's own weights with its own statistics.

Devices: every kind computes on ``ctx.device`` (directions, probes and start
vectors drawn on the CPU and moved, so a surface is the same experiment on
every device); off the CPU a grid is evaluated by whichever engine, pointwise or
batched, measures faster there, and the entry records which (``engine``).

One concern per module: :mod:`.directions` (filter-normalised directions),
:mod:`.planes` (model and PCA planes), :mod:`.engine` (the fast grid engine,
one point at a time), :mod:`.batched` (chunks of points at once under
``torch.vmap``, for accelerators, and the measured choice between the two),
:mod:`.fused` (the one private torch op, looked up once), :mod:`.grid` (rows,
atomic saves, resume), :mod:`.sharpness` (Lanczos, Hutchinson),
:mod:`.surfaces` (from a spec to an entry), :mod:`.memory` (the memory check),
:mod:`.specs` (settings and specs), :mod:`.kind` (the Analysis record: kinds,
study-level checks, the study's specs, the summary).
"""

from analysis.landscape.batched import BatchedEngine, EngineChoice, batched_engine, choose_engine
from analysis.landscape.directions import (
    Params,
    filter_normalize,
    random_directions,
    surface_directions,
    trainable,
)
from analysis.landscape.engine import ENGINE_BATCH, SurfaceProblem, first_layer
from analysis.landscape.fused import fuse_linear_relu, fused_linear_relu, private_op
from analysis.landscape.grid import (
    CHECK_POINTS,
    _load_row,
    _save_row,
    compute_grid,
    grid_axis,
    precision_error,
)
from analysis.landscape.kind import (
    ANALYSIS,
    check_settings,
    compute_landscape,
    compute_plane,
    compute_sharpness,
    fill_rows,
    grid_rows,
    landscape_specs,
    split_sizes,
    summarize_landscape,
)
from analysis.landscape.memory import check_landscape
from analysis.landscape.planes import box_axes, flat, model_plane, trajectory_plane, unflat
from analysis.landscape.sharpness import (
    HessianProblem,
    TraceEstimate,
    hutchinson_trace,
    lanczos_top,
    probe_seeds,
)
from analysis.landscape.specs import LandscapeSettings, LandscapeSpec, PlaneSpec, SharpnessSpec
from analysis.landscape.spectrum_kind import ANALYSIS as SPECTRUM
from analysis.landscape.spectrum_specs import (
    ConvexitySpec,
    DensitySpec,
    LayerSharpnessSpec,
    SpectrumSettings,
)
from analysis.landscape.surfaces import eval_batch, landscape_problem, plane_problem

__all__ = [
    "ANALYSIS",
    "SPECTRUM",
    "ConvexitySpec",
    "DensitySpec",
    "LayerSharpnessSpec",
    "SpectrumSettings",
    "BatchedEngine",
    "EngineChoice",
    "CHECK_POINTS",
    "ENGINE_BATCH",
    "HessianProblem",
    "LandscapeSettings",
    "LandscapeSpec",
    "Params",
    "PlaneSpec",
    "SharpnessSpec",
    "SurfaceProblem",
    "TraceEstimate",
    "_load_row",
    "_save_row",
    "batched_engine",
    "box_axes",
    "check_landscape",
    "check_settings",
    "choose_engine",
    "compute_grid",
    "compute_landscape",
    "compute_plane",
    "compute_sharpness",
    "eval_batch",
    "fill_rows",
    "filter_normalize",
    "first_layer",
    "flat",
    "fuse_linear_relu",
    "fused_linear_relu",
    "grid_axis",
    "grid_rows",
    "hutchinson_trace",
    "lanczos_top",
    "landscape_problem",
    "landscape_specs",
    "model_plane",
    "plane_problem",
    "precision_error",
    "private_op",
    "probe_seeds",
    "random_directions",
    "split_sizes",
    "summarize_landscape",
    "surface_directions",
    "trainable",
    "trajectory_plane",
    "unflat",
]
