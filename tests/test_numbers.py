"""Numbers for people (dashboard/figures/numbers.py) and verdicts against a margin (verdicts.py)."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from dashboard.figures import numbers as nb
from dashboard.figures import verdicts as vd


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (11120.0, "11.1k"),
        (-11120.0, "-11.1k"),
        (1.2e6, "1.2M"),
        (2.5e9, "2.5B"),
        (1234.0, "1,234"),
        (999.96, "1,000"),  # rounds up into the next form
        (123.4, "123"),
        (87.42, "87.4"),
        (0.87312, "0.873"),
        (0.0032, "0.0032"),
        (0.5, "0.5"),
        (12.0, "12"),
        (0.0, "0"),
        (-0.0, "0"),
        (3.2e-5, "3.2e-05"),
        (None, "—"),
        (math.nan, "—"),
        (math.inf, "—"),
    ],
)
def test_human_writes_numbers_as_people_do(value, text):
    assert nb.human(value) == text


def test_signs_percentages_points_and_intervals():
    assert nb.human(0.52, sign=True) == "+0.52" and nb.human(-0.52, sign=True) == "-0.52"
    assert nb.human(0.0, sign=True) == "0"
    assert nb.percent(0.8742) == "87.4%" and nb.percent(None) == "—"
    assert nb.points(0.52) == "+0.52 points" and nb.points(-1.0) == "-1 point"
    assert nb.interval(0.1, 0.25) == "0.1 to 0.25" and nb.interval(None, 1.0) == "—"
    assert nb.human(0.87312, digits=2) == "0.87" and nb.human(0.87312, digits=0) == "0.9"


ACC, LOSS = "Test accuracy (%)", "Test loss"


@pytest.mark.parametrize(
    ("metric", "better", "diff", "ci", "verdict"),
    [
        (ACC, "higher", 2.0, (1.0, 3.0), "B better"),  # the whole interval above +0.5 points
        (ACC, "higher", -2.0, (-3.0, -1.0), "B worse"),
        (ACC, "higher", 0.1, (-0.3, 0.4), "equivalent (within 0.5 points)"),
        (ACC, "higher", 0.4, (0.2, 0.7), "inconclusive"),  # excludes 0, not the margin
        (ACC, "higher", 0.3, None, "within 0.5 points"),  # one run each: the difference itself
        (ACC, "higher", 0.8, None, "B better"),
        (LOSS, "lower", 0.2, (0.15, 0.25), "B worse"),  # 5% of 1.2 = 0.06
        (LOSS, "lower", -0.02, (-0.05, 0.01), "equivalent (within 5%)"),
        ("Nonzero parameters", "", -500.0, None, "changed"),
        (ACC, "higher", None, None, ""),
    ],
)
def test_verdicts_against_the_margin(metric, better, diff, ci, verdict):
    a, b = 1.0, 1.2
    assert vd.judge(metric, better, a, b, diff, ci, vd.Margin(points=0.5, relative=0.05)) == verdict


def test_a_percentage_is_judged_in_points_any_other_metric_relatively():
    margin = vd.Margin(points=1.0, relative=0.1)
    assert margin.of(ACC, 90.0, 80.0) == 1.0 and margin.text(ACC) == "1 point"
    assert margin.of(LOSS, 0.5, -2.0) == pytest.approx(0.2) and margin.text(LOSS) == "10%"
    assert math.isnan(margin.of(LOSS, 0.0, 0.0))
    assert vd.judge(LOSS, "lower", 0.0, 0.0, 0.0, None, margin) == "within 10%"


def test_styled_tables_hold_text_and_colour_verdicts():
    frame = pd.DataFrame(
        {"Metric": [ACC, LOSS], "A": [87.42, 11120.0], "B − A": [0.52, float("nan")],
         "Verdict": ["B better", "B worse (no interval)"]}
    )  # fmt: skip
    shown = vd.style(frame, {"A": "value", "B − A": "diff"})
    assert shown.data["A"].tolist() == ["87.4", "11.1k"]
    assert shown.data["B − A"].tolist() == ["+0.52 points", "—"]
    html = shown.to_html().lower()
    assert vd.BETTER.lower() in html and vd.WORSE.lower() in html
