"""Frozen specs: every computation in prunescope is a pure function of one of these.

A spec is a frozen, slotted, keyword-only dataclass of scalars, ``Literal``s,
tuples and nested specs. It validates itself in ``__post_init__`` and raises a
:class:`SpecError` naming the field, the allowed values and the value received.
Its cache key is the sha256 of canonical JSON of kind + schema version + every
field, defaults included, so a changed default can never return a stale result.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import math
import types
import typing
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal, get_args, get_origin

from analysis.errors import SpecError

#: Bump when the meaning of a stored result changes; every key changes with it.
SCHEMA_VERSION = 1

DATASETS = ("digits", "fashion-mnist", "mnist", "cifar10", "cifar100")
ARCHS = ("mlp", "lenet", "vgg", "resnet20", "resnet32", "resnet56")


# ---------------------------------------------------------------------------
# validation helpers (scikit-learn's template: parameter, allowed, received)


def check_int(
    owner: str, name: str, value: Any, lo: int | None = None, hi: int | None = None
) -> None:
    """Raise SpecError unless ``value`` is an int (not bool) in [lo, hi]."""
    ok = isinstance(value, int) and not isinstance(value, bool)
    ok = ok and (lo is None or value >= lo) and (hi is None or value <= hi)
    if not ok:
        lo_s = "-inf" if lo is None else str(lo)
        hi_s = "inf" if hi is None else str(hi)
        raise SpecError(name, f"an int in the range [{lo_s}, {hi_s}]", value, owner=owner)


def check_float(
    owner: str,
    name: str,
    value: Any,
    lo: float | None = None,
    hi: float | None = None,
    *,
    lo_open: bool = False,
    hi_open: bool = False,
) -> None:
    """Raise SpecError unless ``value`` is a finite real number in the given interval."""
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    if ok and lo is not None:
        ok = value > lo if lo_open else value >= lo
    if ok and hi is not None:
        ok = value < hi if hi_open else value <= hi
    if not ok:
        left = "(" if lo_open else "["
        right = ")" if hi_open else "]"
        lo_s = "-inf" if lo is None else f"{lo:g}"
        hi_s = "inf" if hi is None else f"{hi:g}"
        raise SpecError(
            name, f"a float in the range {left}{lo_s}, {hi_s}{right}", value, owner=owner
        )


def check_option(owner: str, name: str, value: Any, options: tuple) -> None:
    """Raise SpecError unless ``value`` is one of ``options``."""
    bool_allowed = any(isinstance(o, bool) for o in options)
    if value not in options or (isinstance(value, bool) and not bool_allowed):
        listed = ", ".join(repr(o) for o in options)
        raise SpecError(name, f"one of {{{listed}}}", value, owner=owner)


def check_bool(owner: str, name: str, value: Any) -> None:
    """Raise SpecError unless ``value`` is a bool."""
    if not isinstance(value, bool):
        raise SpecError(name, "a bool (true or false)", value, owner=owner)


def check_literals(spec: Any) -> None:
    """Check every ``Literal``-typed field of a spec against its allowed values."""
    for name, allowed in _literal_fields(type(spec)):
        check_option(type(spec).__name__, name, getattr(spec, name), allowed)


@functools.cache
def _literal_fields(cls: type) -> tuple[tuple[str, tuple], ...]:
    """``(field, allowed values)`` of each ``Literal``-typed field of a spec class (resolving
    a class's type hints costs a millisecond; a study's summary builds thousands of specs)."""
    hints = typing.get_type_hints(cls)
    return tuple(
        (f.name, get_args(hints[f.name]))
        for f in dataclasses.fields(cls)
        if get_origin(hints[f.name]) is Literal
    )


# ---------------------------------------------------------------------------
# canonical form and keys


def to_canonical(value: Any) -> Any:
    """Turn a spec (or nested value) into plain JSON-able data, fields in order.

    A field named in its class's ``key_omits`` is left out while it holds the
    value given there: the meaning every key had before the field was added, so
    adding a field keeps every existing key (any other value joins the key).
    A field declared with ``compare=False`` (a run's setting label) is a name,
    not part of what is computed, and is never in the key.
    """
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        omits = getattr(type(value), "key_omits", {})
        return {
            f.name: to_canonical(getattr(value, f.name))
            for f in dataclasses.fields(value)
            if f.compare and not (f.name in omits and getattr(value, f.name) == omits[f.name])
        }
    if isinstance(value, tuple | list):
        return [to_canonical(v) for v in value]
    if isinstance(value, float) and value.is_integer():
        # 1 and 1.0 must hash alike: a TOML file may say either.
        return int(value) if abs(value) < 2**53 else value
    return value


def canonical_json(spec: Any) -> str:
    """Canonical JSON of kind + schema version + every field of ``spec``.

    A spec class whose computation changed meaning sets a class attribute
    ``version`` (> 1): it joins the key of that kind and of every spec that
    nests it (whose results were computed from it), so those alone are
    recomputed and every other key stays as it was.
    """
    doc = {"kind": spec.kind, "schema": SCHEMA_VERSION, "spec": to_canonical(spec)}
    versions = spec_versions(spec)
    if versions:
        doc["versions"] = versions
    return json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=True)


def spec_versions(value: Any, found: dict | None = None) -> dict[str, int]:
    """``{kind: version}`` of ``value`` and every spec nested in it whose version is not 1."""
    found = {} if found is None else found
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        version = getattr(type(value), "version", 1)
        if version != 1:
            found[getattr(value, "kind", type(value).__name__)] = version
        for f in dataclasses.fields(value):
            spec_versions(getattr(value, f.name), found)
    elif isinstance(value, tuple | list):
        for v in value:
            if not isinstance(v, _SCALARS):  # long tuples of numbers hold no specs
                spec_versions(v, found)
    return dict(sorted(found.items()))


_SCALARS = (bool, int, float, str, type(None))


def spec_key(spec: Any) -> str:
    """The content key of a spec: sha256 hex of its canonical JSON (never ``hash()``).

    Remembered per spec value (specs are frozen: equal specs have equal canonical
    JSON, compared by ``==``, never by ``hash()`` alone); a spec holding something
    unhashable is keyed afresh each time.
    """
    try:
        return _remembered_key(spec)
    except TypeError:  # an unhashable field
        return _key(spec)


def _key(spec: Any) -> str:
    """sha256 hex of the canonical JSON."""
    return hashlib.sha256(canonical_json(spec).encode()).hexdigest()


#: A study's summary asks for the key of each of its thousands of specs several times
#: (entry, failure record, nested runs); each is a walk over every nested field.
_remembered_key = functools.lru_cache(maxsize=1 << 16)(_key)


def _coerce(owner: str, name: str, hint: Any, value: Any) -> Any:
    """Convert a JSON/TOML value to the field's declared type, or raise SpecError."""
    origin = get_origin(hint)
    if dataclasses.is_dataclass(hint):
        if not isinstance(value, dict):
            raise SpecError(name, f"a table of {hint.__name__} fields", value, owner=owner)
        return from_dict(hint, value, prefix=f"{name}.")
    if origin is tuple:
        if not isinstance(value, list | tuple):
            raise SpecError(name, "a list", value, owner=owner)
        (elem, *_rest) = get_args(hint)
        return tuple(_coerce(owner, f"{name}[{i}]", elem, v) for i, v in enumerate(value))
    if origin in (typing.Union, types.UnionType):
        args = [a for a in get_args(hint) if a is not type(None)]
        if value is None:
            return None
        return _coerce(owner, name, args[0], value)
    if hint is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    return value


def from_dict(cls: type, data: dict, *, prefix: str = "") -> Any:
    """Build spec ``cls`` from a dict; unknown keys and bad values raise SpecError."""
    owner = cls.__name__
    if not isinstance(data, dict):
        raise SpecError(prefix.rstrip(".") or owner, "a table", data, owner=owner)
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls) if f.init]
    kwargs = {}
    for key, value in data.items():
        if key not in names:
            raise SpecError(
                f"{prefix}{key}", f"a known field, one of {{{', '.join(names)}}}", key, owner=owner
            )
        kwargs[key] = _coerce(owner, f"{prefix}{key}", hints[key], value)
    try:
        return cls(**kwargs)
    except SpecError as err:
        if prefix and not err.param.startswith(prefix):
            raise SpecError(
                f"{prefix}{err.param}", err.allowed, err.received, owner=owner
            ) from None
        raise


SPEC = dict(frozen=True, slots=True, kw_only=True)


# ---------------------------------------------------------------------------
# the specs of a training run


@dataclass(**SPEC)
class DataSpec:
    """Which dataset, and how it is split.

    ``train_size`` takes a seeded subset of the training split (``None``: all of
    it); ``val_fraction`` of the training set is held out for validation, by
    ``split_seed``. The test split is the dataset's own (digits: a seeded 20%).

    ``label_noise`` replaces the labels of that fraction of the training fold
    (exactly ``round(p * n)`` examples, chosen by ``split_seed``) with a label
    drawn uniformly from the other classes, as in the double-descent
    experiments (Nakkiran et al. 2020; Zhang et al. 2017): the validation and
    test labels stay clean. 0 is left out of the key, so older keys hold.
    """

    key_omits: ClassVar[dict[str, Any]] = {"label_noise": 0.0}

    name: Literal["digits", "fashion-mnist", "mnist", "cifar10", "cifar100"] = "digits"
    train_size: int | None = None
    val_fraction: float = 0.1
    split_seed: int = 0
    label_noise: float = 0.0

    def __post_init__(self) -> None:
        check_literals(self)
        if self.train_size is not None:
            check_int("DataSpec", "train_size", self.train_size, lo=10)
        check_float("DataSpec", "val_fraction", self.val_fraction, 0.0, 0.5)
        check_int("DataSpec", "split_seed", self.split_seed, lo=0)
        check_float("DataSpec", "label_noise", self.label_noise, 0.0, 1.0, hi_open=True)


@dataclass(**SPEC)
class ModelSpec:
    """Architecture: ``mlp`` uses width and depth, the conv nets use width_mult.

    ``resnet20``/``resnet32``/``resnet56`` are He et al.'s CIFAR ResNets (6n + 2
    layers); ``shortcuts = false`` removes every residual connection, Li et al.
    2018's ResNet-56-noshort. ``shortcuts`` is left out of the key while true.
    """

    key_omits: ClassVar[dict[str, Any]] = {"shortcuts": True}

    arch: Literal["mlp", "lenet", "vgg", "resnet20", "resnet32", "resnet56"] = "mlp"
    width: int = 512
    depth: int = 2
    width_mult: float = 1.0
    shortcuts: bool = True

    def __post_init__(self) -> None:
        check_literals(self)
        check_bool("ModelSpec", "shortcuts", self.shortcuts)
        if not self.shortcuts and not self.arch.startswith("resnet"):
            raise SpecError(
                "shortcuts", "true unless arch is a ResNet", self.shortcuts, owner="ModelSpec"
            )
        check_int("ModelSpec", "width", self.width, lo=1, hi=16384)
        check_int("ModelSpec", "depth", self.depth, lo=1, hi=16)
        check_float("ModelSpec", "width_mult", self.width_mult, 0.0, 16.0, lo_open=True)


@dataclass(**SPEC)
class TrainSpec:
    """How a network is trained.

    ``objective='supcon'`` trains the features with the supervised contrastive
    loss (Khosla et al. 2020) through a projection head of ``projection_dim``
    on two augmented views, then fits a linear probe on the frozen features for
    ``probe_epochs`` (its accuracy is the run's accuracy; k-NN accuracy is
    reported beside it). Snapshots are kept at the end of every epoch and at
    ``snapshot_steps`` (optimizer steps, for rewinding).

    ``precision`` is the arithmetic of training and evaluation: ``fp32``, or
    mixed precision under ``torch.autocast`` in ``bf16`` or ``fp16`` (fp16 with a
    gradient scaler, and only on a GPU). The weights stay fp32 (autocast's master
    weights), and so does every stored tensor. ``fp32`` is left out of the key,
    so keys from before the field existed hold; so are ``qat = "none"`` and ``qat_bits = 1``.
    """

    key_omits: ClassVar[dict[str, Any]] = {"precision": "fp32", "qat": "none", "qat_bits": 1}

    objective: Literal["ce", "supcon"] = "ce"
    optimizer: Literal["sgd", "adam"] = "adam"
    lr: float = 1e-3
    momentum: float = 0.9
    weight_decay: float = 0.0
    batch_size: int = 128
    epochs: int = 10
    schedule: Literal["constant", "cosine", "step"] = "cosine"
    augment: bool = False
    snapshot_steps: tuple[int, ...] = ()
    supcon_temperature: float = 0.1
    projection_dim: int = 128
    probe_epochs: int = 10
    precision: Literal["fp32", "bf16", "fp16"] = "fp32"
    #: Quantization-aware training (analysis.qat): BinaryConnect or stochastic rounding.
    qat: Literal["none", "binaryconnect", "stochastic"] = "none"
    qat_bits: int = 1

    def __post_init__(self) -> None:
        check_literals(self)
        check_int("TrainSpec", "qat_bits", self.qat_bits, lo=1, hi=32)
        check_float("TrainSpec", "lr", self.lr, 0.0, 10.0, lo_open=True)
        check_float("TrainSpec", "momentum", self.momentum, 0.0, 1.0, hi_open=True)
        check_float("TrainSpec", "weight_decay", self.weight_decay, 0.0, 1.0)
        check_int("TrainSpec", "batch_size", self.batch_size, lo=2, hi=65536)
        check_int("TrainSpec", "epochs", self.epochs, lo=0, hi=10000)
        check_bool("TrainSpec", "augment", self.augment)
        if not isinstance(self.snapshot_steps, tuple):
            raise SpecError(
                "snapshot_steps", "a list of ints", self.snapshot_steps, owner="TrainSpec"
            )
        for s in self.snapshot_steps:
            check_int("TrainSpec", "snapshot_steps", s, lo=0)
        if list(self.snapshot_steps) != sorted(set(self.snapshot_steps)):
            raise SpecError(
                "snapshot_steps",
                "a sorted list without repeats",
                self.snapshot_steps,
                owner="TrainSpec",
            )
        check_float(
            "TrainSpec", "supcon_temperature", self.supcon_temperature, 0.0, 10.0, lo_open=True
        )
        check_int("TrainSpec", "projection_dim", self.projection_dim, lo=2, hi=4096)
        check_int("TrainSpec", "probe_epochs", self.probe_epochs, lo=1, hi=1000)


@dataclass(**SPEC)
class SparsitySpec:
    """A sparsity method, its target sparsity, and its own options.

    ``options`` is a tuple of (name, value) pairs sorted by name (a dict is
    accepted and sorted). This class checks only that shape: the method's
    registry entry declares the allowed names, types, ranges and defaults, and
    :func:`analysis.sparsity.sparsity_spec` builds a spec checked against them
    with every default filled in, so the key of a spec never depends on whether
    a default was written out. (Checking here would make specs import the
    methods, which import specs.) Studies build their specs that way, and a run
    spec whose options are not complete is refused when it is planned or computed.
    """

    method: str = "dense"
    sparsity: float = 0.0
    options: tuple[tuple[str, Any], ...] = ()

    def __post_init__(self) -> None:
        if not isinstance(self.method, str) or not self.method:
            raise SpecError("method", "a method name (string)", self.method, owner="SparsitySpec")
        check_float("SparsitySpec", "sparsity", self.sparsity, 0.0, 1.0, hi_open=True)
        given = self.options
        if isinstance(given, dict):
            given = tuple(given.items())
        pairs = isinstance(given, tuple) and all(
            isinstance(p, tuple) and len(p) == 2 and isinstance(p[0], str) for p in given
        )
        scalars = pairs and all(isinstance(v, bool | int | float | str) for _, v in given)
        if not scalars or len({k for k, _ in given}) != len(given):
            raise SpecError(
                "options",
                "a table of option = value (names unique, values scalars)",
                given,
                owner=f"method {self.method!r}",
            )
        object.__setattr__(self, "options", tuple(sorted(given, key=lambda p: p[0])))

    def opt(self, name: str, default: Any = dataclasses.MISSING) -> Any:
        """The value of option ``name`` (defaults are present, except an option that
        omits its default from the key: pass that ``default``)."""
        for key, value in self.options:
            if key == name:
                return value
        if default is dataclasses.MISSING:
            raise KeyError(name)
        return default


@dataclass(**SPEC)
class RunSpec:
    """One trained (and possibly pruned) network: a pure function of this spec.

    ``setting`` names the values of a study's axes this run was built from
    (``(("model.width", 64),)``): a label, not part of what is computed, so it
    is left out of the key and of equality (:func:`to_canonical`), and the
    width-64 run of a sweep is the same cached run as a study that asks for
    width 64 alone.
    """

    kind: ClassVar[str] = "run"
    data: DataSpec = field(default_factory=DataSpec)
    model: ModelSpec = field(default_factory=ModelSpec)
    train: TrainSpec = field(default_factory=TrainSpec)
    sparsity: SparsitySpec = field(default_factory=SparsitySpec)
    seed: int = 0
    setting: tuple[tuple[str, Any], ...] = field(default=(), compare=False)

    def __post_init__(self) -> None:
        check_int("RunSpec", "seed", self.seed, lo=0, hi=2**31 - 1)

    def replace(self, **changes: Any) -> RunSpec:
        """A copy with some fields changed (validated again)."""
        return dataclasses.replace(self, **changes)

    def identity(self) -> dict:
        """The fields a summary record uses to name this run."""
        return {
            "label": self.label,
            "method": self.sparsity.method,
            "sparsity": self.sparsity.sparsity,
            "objective": self.train.objective,
            "seed": self.seed,
            "setting": dict(self.setting),
            "setting_label": setting_label(self.setting),
        }

    @property
    def label(self) -> str:
        """A short human name: the setting (if any), method, sparsity, objective and seed."""
        s = self.sparsity
        pct = f"{100 * s.sparsity:.4g}%" if s.method != "dense" else ""
        obj = " supcon" if self.train.objective == "supcon" else ""
        name = f"{s.method}{' ' + pct if pct else ''}{obj} s{self.seed}"
        return f"{setting_label(self.setting)} · {name}" if self.setting else name


#: Short names of the axes in a setting's label (any other axis: its field name).
AXIS_NAMES = {
    "model.width": "width",
    "model.width_mult": "width x",
    "train.batch_size": "batch",
    "train.weight_decay": "wd",
    "data.label_noise": "noise",
    "data.train_size": "n train",
}


def setting_label(setting: tuple[tuple[str, Any], ...]) -> str:
    """``"width 64, noise 0.2"``: the values of the axes that vary, in the study's order."""
    parts = []
    for name, value in setting:
        if name == "model.arch":
            parts.append(str(value))
        elif name == "model.shortcuts":
            parts.append("shortcuts" if value else "no shortcuts")
        else:
            short = AXIS_NAMES.get(name, name.split(".")[-1])
            parts.append(f"{short} {value:g}" if isinstance(value, float) else f"{short} {value}")
    return ", ".join(parts)
