"""Built figures remembered by their inputs (:mod:`dashboard.memo`) and the theme's template."""

from __future__ import annotations

import threading

import numpy as np
import plotly.graph_objects as go
import plotly.io as pio
import pytest
from plotly.subplots import make_subplots

from dashboard import memo
from dashboard.figures import theme
from dashboard.figures.theme import NORMAL, PRESENTATION


@pytest.fixture(autouse=True)
def fresh():
    memo.clear()
    yield
    memo.clear()


calls: list[tuple] = []


def line(xs: list[float], th: theme.Theme, *, title: str = "t") -> go.Figure:
    """A counted figure builder."""
    calls.append((tuple(xs), th.name, title))
    return theme.apply(go.Figure(go.Scatter(x=xs, y=xs)), th, title=title)


def other(xs: list[float], th: theme.Theme, *, title: str = "t") -> go.Figure:
    """Another builder with the same arguments."""
    return theme.apply(go.Figure(go.Bar(x=xs, y=xs)), th, title=title)


def test_equal_inputs_build_once_and_share_the_figure():
    calls.clear()
    a = memo.figure(line, [1.0, 2.0], NORMAL, title="x")
    b = memo.figure(line, [1.0, 2.0], NORMAL, title="x")
    assert a is b and len(calls) == 1
    assert memo.stats() == {"hits": 1, "misses": 1, "held": 1}


@pytest.mark.parametrize(
    "args, kwargs",
    [
        (([1.0, 3.0], NORMAL), {"title": "x"}),  # another result
        (([1.0, 2.0], PRESENTATION), {"title": "x"}),  # another theme
        (([1.0, 2.0], NORMAL), {"title": "y"}),  # another option
    ],
)
def test_any_changed_input_builds_anew(args, kwargs):
    calls.clear()
    first = memo.figure(line, [1.0, 2.0], NORMAL, title="x")
    again = memo.figure(line, *args, **kwargs)
    assert again is not first and len(calls) == 2
    assert again.to_dict() == line(*args, **kwargs).to_dict()


def test_another_builder_with_the_same_inputs_is_another_figure():
    a = memo.figure(line, [1.0, 2.0], NORMAL)
    b = memo.figure(other, [1.0, 2.0], NORMAL)
    assert a.data[0].type == "scatter" and b.data[0].type == "bar"


def test_arrays_are_keyed_by_their_values():
    def total(x: np.ndarray) -> float:
        return float(x.sum())

    x = np.arange(6.0)
    assert memo.figure(total, x) == 15.0
    x[0] = 100.0  # the same array object, changed in place: a new key
    assert memo.figure(total, x) == 115.0


def test_unpicklable_arguments_build_every_time():
    calls.clear()
    lock = threading.Lock()

    def with_lock(xs, th, guard):
        return line(xs, th)

    assert memo.key(with_lock, ([1.0], NORMAL, lock), {}) is None
    memo.figure(with_lock, [1.0], NORMAL, lock)
    memo.figure(with_lock, [1.0], NORMAL, lock)
    assert len(calls) == 2 and memo.stats()["held"] == 0


def test_a_failing_builder_is_not_remembered():
    state = {"fail": True}

    def flaky(x: int) -> int:
        if state["fail"]:
            raise ValueError("no data")
        return x

    with pytest.raises(ValueError, match="no data"):
        memo.figure(flaky, 1)
    state["fail"] = False
    assert memo.figure(flaky, 1) == 1


def test_the_oldest_figure_goes_first(monkeypatch):
    monkeypatch.setattr(memo, "MOST", 3)

    def ident(i: int) -> list[int]:
        return [i]

    kept = [memo.figure(ident, i) for i in range(3)]
    memo.figure(ident, 0)  # used again: now the newest
    memo.figure(ident, 3)  # pushes out 1, the least recently used
    assert memo.stats()["held"] == 3
    assert memo.figure(ident, 0) is kept[0] and memo.figure(ident, 2) is kept[2]
    assert memo.figure(ident, 1) is not kept[1]


# -- the theme: one template, merged values --------------------------------------------


def test_figures_are_born_with_the_white_template():
    theme.apply(go.Figure(), NORMAL, title="t")
    assert pio.templates.default == theme.TEMPLATE == "plotly_white"
    fig = theme.apply(go.Figure(), NORMAL, title="t")
    assert fig.layout.template == pio.templates["plotly_white"]


@pytest.mark.parametrize("other", ["plotly", "streamlit"])
def test_a_figure_made_under_another_default_still_gets_the_white_template(other, monkeypatch):
    import streamlit  # noqa: F401  (registers its template, and makes it the default)

    monkeypatch.setattr(pio.templates, "default", other)
    fig = go.Figure()
    assert fig.layout.template != pio.templates["plotly_white"]
    theme.apply(fig, NORMAL, title="t")
    assert fig.layout.template == pio.templates["plotly_white"]
    assert pio.templates.default == "plotly_white"  # made the default again
    late = go.Figure()  # born after another default was set back: white at once
    assert late.layout.template == pio.templates["plotly_white"]
    pio.templates.default = other  # born under the other, applied after the default is back
    early = go.Figure()
    theme.apply(go.Figure(), NORMAL, title="t")
    theme.apply(early, NORMAL, title="t")
    assert early.layout.template == pio.templates["plotly_white"]


def test_apply_merges_into_what_the_builder_set_on_every_axis():
    fig = make_subplots(rows=1, cols=3)
    fig.update_xaxes(title_text="sparsity")
    fig.update_layout(legend={"traceorder": "reversed"})
    theme.apply(fig, PRESENTATION, title="Accuracy", height=500)
    layout = fig.to_dict()["layout"]
    for name in ("xaxis", "xaxis2", "xaxis3", "yaxis", "yaxis3"):
        axis = layout[name]
        assert axis["gridcolor"] == PRESENTATION.grid_color and axis["showline"] is True
        assert axis["title"]["font"]["size"] == PRESENTATION.font_size + 1
    assert layout["xaxis2"]["title"]["text"] == "sparsity"  # kept: merged, not replaced
    assert layout["legend"]["traceorder"] == "reversed"
    assert layout["legend"]["orientation"] == "h"
    assert layout["title"]["text"] == "Accuracy" and layout["height"] == 500
    assert layout["font"]["size"] == PRESENTATION.font_size


def test_a_resized_copy_leaves_the_shared_figure_as_it_was():
    from dashboard.figures.items import resized

    shared = line([1.0, 2.0], NORMAL)
    before = shared.layout.height
    copy = memo.figure(resized, shared, 520)
    assert copy.layout.height == 520 and shared.layout.height == before
    assert memo.figure(resized, shared, 520) is copy
