"""Study axes: a list where a model, training or data field takes one value sweeps it.

A study may give several values for a field of ``[model]``, ``[train]`` or
``[data]``, one line per axis::

    [model]
    arch = "mlp"
    width = [32, 64, 128, 256, 512]   # an axis: five settings

    [data]
    label_noise = [0.0, 0.2]         # a second axis: ten settings in all

Every combination of the axes' values is a *setting*; every run and every
analysis of the study is computed per setting, and a setting's label names
only the axes (``"width 64, noise 0.2"``). A study with no axes has one
setting, its runs are exactly those it had before, and so are their keys.

Sparsity ladders (``sparsities = { ladder = "geometric", from = 0.5, to =
0.98, steps = 6 }``) are parsed here too: see :func:`ladder`.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
import typing
from dataclasses import dataclass
from typing import Any

from analysis.errors import SpecError
from analysis.specs import SPEC, DataSpec, ModelSpec, TrainSpec

#: The sections whose scalar fields may be axes, and their spec classes.
SECTIONS: dict[str, type] = {"data": DataSpec, "model": ModelSpec, "train": TrainSpec}

#: Fields that are not axes: the dataset (a study is on one dataset, with one
#: fallback) and the objective (``objectives`` lists those).
NOT_AXES = frozenset({"data.name", "train.objective"})

#: The model fields each architecture reads (an axis on another is refused).
ARCH_FIELDS: dict[str, frozenset[str]] = {
    "mlp": frozenset({"width", "depth"}),
    "lenet": frozenset({"width_mult"}),
    "vgg": frozenset({"width_mult"}),
    "resnet20": frozenset({"width_mult", "shortcuts"}),
    "resnet32": frozenset({"width_mult", "shortcuts"}),
    "resnet56": frozenset({"width_mult", "shortcuts"}),
}

MAX_AXIS_VALUES = 50
MAX_SETTINGS = 500


@dataclass(**SPEC)
class Axis:
    """One swept field: ``name`` is ``"section.field"``, ``values`` in the study's order."""

    name: str
    values: tuple[Any, ...]


@dataclass(frozen=True)
class Setting:
    """One combination of the axes' values and the data, model and training specs it gives."""

    values: tuple[tuple[str, Any], ...]
    data: DataSpec
    model: ModelSpec
    train: TrainSpec


def _is_scalar_field(hint: Any) -> bool:
    """Whether a spec field's type is a scalar (not a tuple: a list there is the value itself)."""
    return typing.get_origin(hint) is not tuple


def split_axes(section: str, table: Any) -> tuple[Any, list[Axis]]:
    """``table`` with each axis replaced by its first value, and the axes found in it.

    A list on a scalar field of ``section``'s spec is an axis. Raises SpecError
    naming the field for an empty axis, a repeated value, more than
    :data:`MAX_AXIS_VALUES` values, or an axis on a field that cannot be one.
    """
    if not isinstance(table, dict):
        return table, []
    hints = typing.get_type_hints(SECTIONS[section])
    base, axes = dict(table), []
    for key, value in table.items():
        if not isinstance(value, list) or key not in hints or not _is_scalar_field(hints[key]):
            continue
        name = f"{section}.{key}"
        if name in NOT_AXES:
            allowed = "one dataset (a study sweeps models and recipes, not datasets)"
            if name == "train.objective":
                allowed = "one objective (list them in the study's 'objectives')"
            raise SpecError(name, allowed, value, owner="study")
        if not value or len(value) > MAX_AXIS_VALUES:
            raise SpecError(name, f"an axis of 1 to {MAX_AXIS_VALUES} values", value, owner="study")
        if len({repr(v) for v in value}) != len(value):
            raise SpecError(name, "an axis without repeated values", value, owner="study")
        base[key] = value[0]
        axes.append(Axis(name=name, values=tuple(value)))
    return base, axes


def check_arch_axes(axes: list[Axis], archs: tuple[str, ...]) -> None:
    """Refuse a model axis on a field that none of the study's architectures reads."""
    for axis in axes:
        section, key = axis.name.split(".", 1)
        if section != "model" or key == "arch":
            continue
        if not any(key in ARCH_FIELDS.get(a, ()) for a in archs):
            readers = sorted(a for a, fields in ARCH_FIELDS.items() if key in fields)
            raise SpecError(
                axis.name,
                f"an axis on a field the architecture reads ({', '.join(archs)} does not "
                f"read {key}; {', '.join(readers) or 'no architecture'} does)",
                list(axis.values),
                owner="study",
            )


def settings(
    axes: tuple[Axis, ...], data: DataSpec, model: ModelSpec, train: TrainSpec
) -> list[Setting]:
    """Every combination of the axes' values applied to the base specs, in the study's order.

    Only axes with more than one value name the setting (an axis of one value
    is the same as writing the value). Raises SpecError naming the axis and its
    bad value (e.g. a width of 0), or when the grid exceeds :data:`MAX_SETTINGS`.
    """
    count = math.prod(len(a.values) for a in axes) if axes else 1
    if count > MAX_SETTINGS:
        raise SpecError(
            "axes", f"a grid of at most {MAX_SETTINGS} settings", f"{count} settings", owner="study"
        )
    base = {"data": data, "model": model, "train": train}
    out = []
    for combo in itertools.product(*(a.values for a in axes)):
        specs = dict(base)
        for axis, value in zip(axes, combo, strict=True):
            section, key = axis.name.split(".", 1)
            specs[section] = _replaced(specs[section], axis.name, key, value)
        named = tuple((a.name, v) for a, v in zip(axes, combo, strict=True) if len(a.values) > 1)
        out.append(Setting(values=named, **specs))
    return out


def _replaced(spec: Any, name: str, key: str, value: Any) -> Any:
    """``spec`` with ``key`` set to ``value``; a SpecError names the axis and the value."""
    hint = typing.get_type_hints(type(spec))[key]
    if hint is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    try:
        return dataclasses.replace(spec, **{key: value})
    except SpecError as err:
        raise SpecError(name, err.allowed, value, owner="study") from None


# ---------------------------------------------------------------------------
# sparsity ladders

LADDERS = ("geometric", "linear", "lottery")


def ladder(doc: Any, where: str) -> list[float]:
    """The sparsities of a ladder table, in increasing order.

    - ``{ladder = "geometric", from = 0.5, to = 0.98, steps = 6}``: densities
      ``1 - s`` geometric from ``1 - from`` to ``1 - to``: equal steps on a log
      density axis, the ladder pruning papers plot (50%, 72%, ..., 98%).
    - ``{ladder = "linear", from = 0.1, to = 0.9, steps = 9}``: equal steps.
    - ``{ladder = "lottery", rate = 0.2, steps = 5}``: Frankle & Carbin's
      ``1 - (1 - rate)^k`` for k = 1..steps, each level one more round of one
      pruning chain.

    Raises SpecError naming ``where`` and the field for an unknown ladder, an
    end outside (0, 1), ``from`` not below ``to``, or steps outside [1, 50].
    """
    if not isinstance(doc, dict) or doc.get("ladder") not in LADDERS:
        got = doc.get("ladder") if isinstance(doc, dict) else doc
        raise SpecError(
            f"{where}.ladder", f"one of {{{', '.join(map(repr, LADDERS))}}}", got, owner="study"
        )
    kind = doc["ladder"]
    fields = {"lottery": {"ladder", "rate", "steps"}}.get(kind, {"ladder", "from", "to", "steps"})
    for key in doc:
        if key not in fields:
            raise SpecError(
                f"{where}.{key}",
                f"a field of a {kind} ladder, one of {sorted(fields)}",
                key,
                owner="study",
            )
    steps = doc.get("steps")
    if not isinstance(steps, int) or isinstance(steps, bool) or not 1 <= steps <= 50:
        raise SpecError(f"{where}.steps", "an int in the range [1, 50]", steps, owner="study")
    if kind == "lottery":
        rate = _fraction(doc.get("rate"), f"{where}.rate")
        return [round(1.0 - (1.0 - rate) ** k, 10) for k in range(1, steps + 1)]
    lo, hi = _fraction(doc.get("from"), f"{where}.from"), _fraction(doc.get("to"), f"{where}.to")
    if not lo < hi and steps > 1:
        raise SpecError(f"{where}.to", f"a sparsity above from = {lo}", hi, owner="study")
    if steps == 1:
        return [lo]
    if kind == "linear":
        return [round(lo + (hi - lo) * i / (steps - 1), 10) for i in range(steps)]
    ratio = (1.0 - hi) / (1.0 - lo)
    return [round(1.0 - (1.0 - lo) * ratio ** (i / (steps - 1)), 10) for i in range(steps)]


def _fraction(value: Any, name: str) -> float:
    """``value`` as a float in (0, 1), else a SpecError naming ``name``."""
    ok = isinstance(value, int | float) and not isinstance(value, bool)
    if not ok or not 0.0 < value < 1.0 or not math.isfinite(value):
        raise SpecError(name, "a sparsity in the open interval (0, 1)", value, owner="study")
    return float(value)
