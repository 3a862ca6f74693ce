"""REPAIR's figures: the REPAIR filter, the variance-collapse panels, the export item."""

from __future__ import annotations

import pytest

from dashboard.figures import NORMAL, PRESENTATION
from dashboard.figures import connectivity as fc
from dashboard.figures import repair as fr

LAYERS = ["body.relu0", "body.relu1"]


def pair(alignment: str, repair: bool, method: str = "dense") -> dict:
    """A cached seeds pair record; REPAIR variants carry a variance-collapse record."""
    record = {
        "status": "cached",
        "pair": "seeds",
        "run_a": f"{method} s0",
        "run_b": f"{method} s1",
        "method": method,
        "alignment": alignment,
        "repair": repair,
        "barriers": {s: {b: 0.5 - 0.2 * repair for b in fc.BARRIERS} for s in ("train", "test")},
        "curve": {
            "alphas": [0.0, 0.5, 1.0],
            **{f"{s}_loss": [0.3, 0.8, 0.3] for s in ("train", "test")},
            **{f"{s}_acc": [0.9, 0.5, 0.9] for s in ("train", "test")},
            "sparsity": [0.0, 0.0, 0.0],
        },
        "variance": None,
    }
    if repair:
        record["variance"] = {
            "alpha": 0.5,
            "layers": LAYERS,
            "pre": {"before": [0.7, 0.5], "after": [1.0, 1.0]},
            "post": {"before": [0.6, 0.4], "after": [0.95, 0.9]},
        }
    return record


@pytest.fixture
def conn() -> dict:
    """Naive and weight pairs, each with and without REPAIR, of one method."""
    pairs = [pair(a, r) for a in ("naive", "weight") for r in (False, True)]
    return {"settings": {}, "repair": "applied", "notes": [], "pairs": pairs}


RUNS = [{"label": "dense s0", "method": "dense"}, {"label": "dense s1", "method": "dense"}]


def test_the_repair_filter_keeps_one_variant_or_both(conn) -> None:
    assert fr.with_repair(conn, "both") is conn
    assert [p["repair"] for p in fr.with_repair(conn, "on")["pairs"]] == [True, True]
    assert [p["repair"] for p in fr.with_repair(conn, "off")["pairs"]] == [False, False]
    bars = fc.barrier_bars(fr.with_repair(conn, "off"), RUNS).data
    assert len([t for t in bars if t.showlegend is False]) == 2  # drawn; the rest: legend keys


@pytest.mark.parametrize("theme", [NORMAL, PRESENTATION])
@pytest.mark.parametrize("where", ["pre", "post"])
def test_variance_collapse_draws_before_and_after_per_alignment(conn, theme, where) -> None:
    fig = fr.variance_collapse(conn, RUNS, where, theme)
    assert len(fig.data) == 4  # 2 alignments x before/after
    by_name = {t.name: t for t in fig.data}
    after = by_name["weight matching, after REPAIR"]
    assert list(after.y) == conn["pairs"][3]["variance"][where]["after"]
    assert list(after.x) == ["relu0", "relu1"] and after.line.dash == "dash"
    assert by_name["naive (no alignment), before REPAIR"].line.dash is None
    assert fig.layout.title.font.size == theme.title_size


def test_variance_collapse_without_repair_pairs_says_why(conn) -> None:
    plain = fr.with_repair(conn, "off")
    fig = fr.variance_collapse(plain, RUNS)
    assert not fig.data and "No REPAIR pair" in fig.layout.annotations[0].text
    assert fr.catalogue_items(plain, RUNS) == []
    assert fr.variance_collapse(conn, RUNS[:1]).data == ()  # run B hidden: nothing shown


def test_the_export_includes_the_variance_collapse(conn) -> None:
    items = fc.catalogue({"connectivity": conn, "runs": RUNS}, None)
    names = [i.name for i in items]
    assert "connectivity-variance-collapse" in names
