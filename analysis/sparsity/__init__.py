"""The sparsity-method registry: one file per method plus one line here.

A method declares its own options (name, type, range, default) as
:class:`~analysis.sparsity.base.Param` entries. :class:`~analysis.specs.SparsitySpec`
only checks its own shape (``specs`` does not import the methods); the methods'
rules are applied here: :func:`sparsity_spec` builds a checked spec with every
default filled in (so the cache key never depends on whether a default was
written out), the study loader builds its specs with it, and :func:`check_run`
refuses a run spec built any other way with one line naming the field, when
the run is planned or computed.
"""

from __future__ import annotations

from typing import Any

from analysis.errors import SpecError
from analysis.sparsity.base import Method, Param
from analysis.specs import RunSpec, SparsitySpec
from analysis.train import planned_steps, train_set_size


def _methods() -> dict[str, Method]:
    """Build the registry (imports are local: importing a method imports torch and the loop)."""
    from analysis.sparsity.dense import Dense
    from analysis.sparsity.dessilbi import DessiLBI
    from analysis.sparsity.gmp import GradualMagnitude
    from analysis.sparsity.grasp import GraSP
    from analysis.sparsity.l1_scratch import L1Scratch
    from analysis.sparsity.l1_structured import L1Sensitivity, L1Structured
    from analysis.sparsity.lottery import Lottery
    from analysis.sparsity.lottery_criterion import LotteryCriterion
    from analysis.sparsity.lottery_random_mask import LotteryRandomMask
    from analysis.sparsity.lottery_reinit import LotteryReinit
    from analysis.sparsity.lottery_signs import LotterySigns
    from analysis.sparsity.magnitude import Magnitude
    from analysis.sparsity.random import Random
    from analysis.sparsity.snip import SNIP
    from analysis.sparsity.supermask import LearnedSupermask
    from analysis.sparsity.synflow import SynFlow

    methods = [
        Dense,
        Random,
        Magnitude,
        GradualMagnitude,
        Lottery,
        LotteryCriterion,
        LotteryReinit,
        LotteryRandomMask,
        LotterySigns,
        LearnedSupermask,
        SNIP,
        GraSP,
        SynFlow,
        L1Structured,
        L1Sensitivity,
        L1Scratch,
        DessiLBI,
    ]
    return {m.name: m() for m in methods}


_REGISTRY: dict[str, Method] = {}


def methods() -> dict[str, Method]:
    """name -> method, in the registry's order."""
    if not _REGISTRY:
        _REGISTRY.update(_methods())
    return _REGISTRY


def get_method(name: str) -> Method:
    """The method called ``name``; an unknown name lists the valid ones (SpecError)."""
    registry = methods()
    if name not in registry:
        raise SpecError(
            "method", f"one of {{{', '.join(map(repr, registry))}}}", name, owner="SparsitySpec"
        )
    return registry[name]


def normalize(spec: SparsitySpec) -> SparsitySpec:
    """``spec`` checked against its method, with every option's default filled in.

    Raises SpecError for an unknown method or option, a bad option value, or a
    sparsity the method cannot mean.
    """
    method = get_method(spec.method)
    owner = f"method {spec.method!r}"
    names = [p.name for p in method.all_params]
    given = dict(spec.options)
    for key in given:
        if key not in names:
            allowed = (
                f"one of {{{', '.join(map(repr, names))}}}" if names else "no options (it has none)"
            )
            raise SpecError(key, allowed, key, owner=owner)
    values = {p.name: p.check(given.get(p.name, p.default), owner=owner) for p in method.all_params}
    method.check_sparsity(spec.sparsity)
    method.check_options(values)
    omitted = {p.name for p in method.all_params if p.omit_default and values[p.name] == p.default}
    options = {k: v for k, v in values.items() if k not in omitted}
    return SparsitySpec(method=spec.method, sparsity=spec.sparsity, options=options)


def sparsity_spec(method: str, sparsity: float = 0.0, options: Any = ()) -> SparsitySpec:
    """The checked SparsitySpec of ``method`` at ``sparsity`` with ``options`` (dict or pairs).

    Every option the method declares is written out (defaults filled in).
    Raises SpecError naming the field, as :func:`normalize` does.
    """
    return normalize(SparsitySpec(method=method, sparsity=sparsity, options=options))


def entry_specs(method: str, levels: list[float], options: Any = ()) -> list[SparsitySpec]:
    """The checked specs of a study entry: ``method`` at each of ``levels`` with ``options``.

    Most methods give one spec per level; the lottery ticket gives one pruning
    chain (:meth:`~analysis.sparsity.base.Method.level_specs`). Raises SpecError
    naming the field, as :func:`normalize` does.
    """
    found = get_method(method)
    return [normalize(spec) for spec in found.level_specs(list(levels), dict(options))]


def check(spec: SparsitySpec) -> None:
    """Raise SpecError unless ``spec`` is valid for its method and lists every option."""
    full = normalize(spec)
    if full.options != spec.options:
        missing = sorted(dict(full.options).keys() - dict(spec.options).keys())
        raise SpecError(
            "options",
            f"every option of method {spec.method!r} written out (missing {missing}; "
            "build the spec with analysis.sparsity.sparsity_spec)",
            dict(spec.options),
            owner="SparsitySpec",
        )


def check_run(spec: RunSpec, steps: int | None = None) -> None:
    """Raise SpecError unless the sparsity of run ``spec`` is valid and complete, and its
    options fit the run's ``steps`` training steps (default: planned from the spec alone)."""
    check(spec.sparsity)
    if spec.sparsity.opt("keep_dense", ""):
        _check_keep_dense(spec)
    if steps is None:
        steps = planned_steps(train_set_size(spec.data), spec.train)
    get_method(spec.sparsity.method).check_run(spec, steps)


def _check_keep_dense(spec: RunSpec) -> None:
    """Every ``keep_dense`` item names a layer of the run's network (a storage-free copy)."""
    import torch

    from analysis.data import dataset_info
    from analysis.models import build_for
    from analysis.sparsity.base import kept_dense

    with torch.device("meta"):
        names = build_for(spec.model, dataset_info(spec.data.name)).prunable_names()
    kept_dense(spec.sparsity, names)


def prerequisites(spec: RunSpec) -> list[RunSpec]:
    """The runs the method of ``spec`` reads from the store while computing it (checked first)."""
    check_run(spec)
    return get_method(spec.sparsity.method).prerequisites(spec)


__all__ = [
    "Method",
    "Param",
    "check",
    "check_run",
    "get_method",
    "methods",
    "normalize",
    "prerequisites",
    "sparsity_spec",
]
