"""Fuzzed study files: whatever the input, only the project's own error type comes out."""

from __future__ import annotations

import contextlib
import os
import tomllib

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from analysis.errors import SpecError
from analysis.study import parse_study

SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**63), 2**63 - 1),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=30),
    st.sampled_from(
        ["../../x", "/etc/passwd", "..", "digits", "mlp", "lottery", "ce", "nan", "é漢字🙂", ""]
    ),
)
VALUES = st.recursive(
    SCALARS,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4)
    ),
    max_leaves=12,
)

KNOWN = {
    "name": VALUES,
    "description": VALUES,
    "seeds": VALUES,
    "objectives": VALUES,
    "data": st.fixed_dictionaries(
        {},
        optional={"name": VALUES, "train_size": VALUES, "fallback": VALUES, "val_fraction": VALUES},
    ),
    "model": st.fixed_dictionaries(
        {}, optional={"arch": VALUES, "width": VALUES, "depth": VALUES, "width_mult": VALUES}
    ),
    "train": st.fixed_dictionaries(
        {},
        optional={"epochs": VALUES, "lr": VALUES, "batch_size": VALUES, "snapshot_steps": VALUES},
    ),
    "methods": st.lists(
        st.fixed_dictionaries(
            {"method": st.sampled_from(["dense", "magnitude", "lottery", "nope", "../x"]) | VALUES},
            optional={"sparsities": VALUES, "rounds": VALUES, "scope": VALUES, "bogus": VALUES},
        ),
        max_size=3,
    )
    | VALUES,
    "analyses": st.dictionaries(
        st.sampled_from(["representations", "robustness", "x"]),
        st.dictionaries(st.text(max_size=8), VALUES, max_size=3),
        max_size=2,
    )
    | VALUES,
}
DOCS = st.fixed_dictionaries({}, optional=KNOWN) | st.dictionaries(
    st.text(max_size=12), VALUES, max_size=5
)


def _toml(value: object) -> str:
    """A tiny TOML writer for fuzzed values (None and NaN become strings TOML can hold)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value) if value == value and abs(value) != float("inf") else '"nan"'
    if isinstance(value, str):
        return '"' + value.encode("unicode_escape").decode().replace('"', '\\"') + '"'
    if isinstance(value, list):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{_toml(str(k))} = {_toml(v)}" for k, v in value.items()) + "}"
    return '"none"'


def _document(doc: dict) -> str:
    return "\n".join(f"{_toml(str(k))} = {_toml(v)}" for k, v in doc.items())


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(DOCS)
def test_fuzzed_study_gives_spec_error_or_a_study(tmp_path_factory, doc):
    before = set(os.listdir(tmp_path_factory.getbasetemp()))
    text = _document(doc)
    with contextlib.suppress(tomllib.TOMLDecodeError):
        tomllib.loads(text)
    try:
        study = parse_study(text)
    except SpecError as err:
        message = str(err)
        assert "'" in message and "Got" in message  # names the field and the value received
        assert len(message) < 5000
    else:
        assert study.runs()
    assert set(os.listdir(tmp_path_factory.getbasetemp())) == before  # parsing writes nothing


@settings(max_examples=60, deadline=None)
@given(st.binary(max_size=400))
def test_random_bytes_give_spec_error(data):
    with contextlib.suppress(SpecError):
        parse_study(data.decode("utf-8", errors="replace"))


def test_huge_grid_refused():
    methods = "\n".join(
        f'[[methods]]\nmethod = "random"\nsparsities = [{", ".join(str(0.01 * i + 0.001 * j) for i in range(1, 50))}]'
        for j in range(1, 11)
    )
    text = f'name = "big"\nseeds = [{", ".join(map(str, range(10)))}]\n{methods}'
    try:
        parse_study(text)
    except SpecError as err:
        assert "at most 2000 runs" in str(err)
    else:  # pragma: no cover
        raise AssertionError("a 4900-run grid was accepted")
