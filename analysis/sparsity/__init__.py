"""The sparsity-method registry: one file per method plus one line here.

A method declares its own options (name, type, range, default) as
:class:`~analysis.sparsity.base.Param` entries; :func:`validate` checks a
:class:`~analysis.specs.SparsitySpec` against them and fills every default in,
so the cache key never depends on whether a default was written out.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from analysis.errors import SpecError
from analysis.sparsity.base import Method, Param

if TYPE_CHECKING:
    from analysis.specs import SparsitySpec


def _methods() -> dict[str, Method]:
    """Build the registry (imports are local: method files import analysis.train)."""
    from analysis.sparsity.dense import Dense
    from analysis.sparsity.gmp import GradualMagnitude
    from analysis.sparsity.grasp import GraSP
    from analysis.sparsity.l1_structured import L1Structured
    from analysis.sparsity.lottery import Lottery
    from analysis.sparsity.magnitude import Magnitude
    from analysis.sparsity.random import Random
    from analysis.sparsity.snip import SNIP
    from analysis.sparsity.synflow import SynFlow

    methods = [
        Dense,
        Random,
        Magnitude,
        GradualMagnitude,
        Lottery,
        SNIP,
        GraSP,
        SynFlow,
        L1Structured,
    ]
    return {m.name: m() for m in methods}


_REGISTRY: dict[str, Method] = {}


def methods() -> dict[str, Method]:
    """name -> method, in the registry's order."""
    if not _REGISTRY:
        _REGISTRY.update(_methods())
    return _REGISTRY


def get_method(name: str) -> Method:
    """The method called ``name``; an unknown name lists the valid ones."""
    registry = methods()
    if name not in registry:
        raise SpecError(
            "method", f"one of {{{', '.join(map(repr, registry))}}}", name, owner="SparsitySpec"
        )
    return registry[name]


def validate(spec: SparsitySpec) -> None:
    """Check method, sparsity and options of ``spec``; fill defaults in (sorted)."""
    method = get_method(spec.method)
    given = spec.options
    if isinstance(given, dict):
        given = tuple(given.items())
    if not isinstance(given, tuple) or not all(isinstance(p, tuple) and len(p) == 2 for p in given):
        raise SpecError(
            "options", "a table of option = value", given, owner=f"method {spec.method!r}"
        )
    names = [p.name for p in method.params]
    values = {}
    for key, value in given:
        if key not in names:
            allowed = (
                f"one of {{{', '.join(map(repr, names))}}}" if names else "no options (it has none)"
            )
            raise SpecError(key, allowed, key, owner=f"method {spec.method!r}")
        values[key] = value
    normalized = []
    for param in method.params:
        value = param.check(values.get(param.name, param.default), owner=f"method {spec.method!r}")
        normalized.append((param.name, value))
    method.check_sparsity(spec.sparsity)
    method.check_options(dict(normalized))
    object.__setattr__(spec, "options", tuple(sorted(normalized)))


__all__ = ["Method", "Param", "methods", "get_method", "validate"]
