"""Every part of a study, imported explicitly (nothing is loaded by a string).

Each analysis declares itself once, next to its code, as an
:class:`analysis.api.Analysis` record (its kinds, settings, specs and summary).
This module lists them, in compute order (runs first: the analyses build on
them), and installs their kinds into :mod:`analysis.api`, so that importing it
is all a program needs before it asks for a result. Adding an analysis kind is
one module plus one line here.
"""

from __future__ import annotations

from analysis import (
    api,
    compression,
    connectivity,
    landscape,
    masks,
    quantization,
    representations,
    robustness,
    run_part,
    sensitivity,
)
from analysis.sparsity import dessilbi

#: Every part of a study, in compute order.
ANALYSES: tuple[api.Analysis, ...] = (
    run_part.ANALYSIS,
    representations.ANALYSIS,
    robustness.ANALYSIS,
    connectivity.ANALYSIS,
    landscape.ANALYSIS,
    landscape.SPECTRUM,
    sensitivity.ANALYSIS,
    dessilbi.ANALYSIS,
    masks.ANALYSIS,
    compression.ANALYSIS,
    quantization.ANALYSIS,
)

api.install(kind for analysis in ANALYSES for kind in analysis.kinds)

#: Parts by name (``--only NAME``; the sections of ``show --json``).
PARTS: dict[str, api.Analysis] = {a.name: a for a in ANALYSES}

#: Settings specs by ``[analyses.NAME]`` section.
SETTINGS: dict[str, type] = {a.name: a.settings for a in ANALYSES if a.settings is not None}
