"""Is B better than A? Verdicts against a margin, in accuracy points or as a relative error.

A difference matters when it is larger than what a person would call the same:
half a point of accuracy, or 5% of a loss. A metric measured in percent (its
name says ``(%``) is judged in points, any other relative to the larger of
``|A|`` and ``|B|``. With a 95% interval of ``B − A`` (several seeds) the
verdict says whether the whole interval lies beyond the margin (better or
worse), inside it (equivalent: the two one-sided tests of Schuirmann 1987, at
the stricter 95% level), or neither (inconclusive). With one seed it judges the
difference itself. No streamlit here: both modes of the Compare page use it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import pandas as pd

from dashboard.figures.numbers import human, points

#: Background colours of a verdict: B better, B worse, a change with no better side.
BETTER, WORSE, NEUTRAL = "#D4EFE6", "#F7D9C4", "#FFF4B8"
#: Margins offered, in accuracy points and as a relative error.
POINTS = {"0.25": "0.25 points", "0.5": "0.5 points", "1": "1 point", "2": "2 points"}
RELATIVE = {"0.01": "1%", "0.05": "5%", "0.1": "10%", "0.25": "25%"}


@dataclass(frozen=True)
class Margin:
    """How large a difference must be to count: ``points`` for percentages, else ``relative``."""

    points: float = 0.5
    relative: float = 0.05

    def of(self, metric: str, a: float | None, b: float | None) -> float:
        """The margin of ``metric`` in its own units (NaN when a relative one has no scale)."""
        if in_percent(metric):
            return self.points
        scale = max(abs(v) for v in (a, b) if _finite(v)) if _finite(a) or _finite(b) else 0.0
        return self.relative * scale if scale else math.nan

    def text(self, metric: str) -> str:
        """``0.5 points`` or ``5%``: the margin of ``metric`` as a person says it."""
        if in_percent(metric):
            return points(self.points).lstrip("+")
        return f"{human(100 * self.relative)}%"


def in_percent(metric: str) -> bool:
    """Whether ``metric`` (a table's metric name) is measured in percent."""
    return "(%" in metric


def _finite(value: float | None) -> bool:
    """Whether ``value`` is a finite number."""
    return value is not None and math.isfinite(float(value))


def judge(
    metric: str,
    better: str,
    a: float | None,
    b: float | None,
    diff: float | None,
    ci: tuple[float, float] | None,
    margin: Margin,
) -> str:
    """The verdict on ``B − A``: ``B better``, ``B worse``, ``equivalent``, ``inconclusive``...

    Args:
        metric: the metric's name (``(%`` in it: judged in points).
        better: ``higher``, ``lower`` or ``""`` (neither side is better: ``changed``).
        a, b: the two values (means); ``diff``: ``B − A`` (mean of the paired
            differences where paired); ``ci``: its 95% interval, or None.
    Returns:
        One short phrase; ``""`` where a side is missing.
    """
    if not _finite(diff):
        return ""
    m = margin.of(metric, a, b)
    if not math.isfinite(m):  # both zero: no scale, and no difference
        return f"within {margin.text(metric)}"
    within = f"within {margin.text(metric)}"
    if ci is None or not all(_finite(v) for v in ci):
        if abs(diff) <= m:
            return within
        return "changed" if not better else _side(diff > 0, better)
    low, high = ci
    if -m <= low and high <= m:
        return f"equivalent ({within})"
    if low > m or high < -m:
        return "changed" if not better else _side(low > m, better)
    return "inconclusive"


def _side(b_higher: bool, better: str) -> str:
    """``B better`` or ``B worse``, from which side is higher and which way is better."""
    return "B better" if b_higher == (better == "higher") else "B worse"


def color(verdict: str) -> str:
    """The background of a verdict cell (``""``: none)."""
    if verdict.startswith("B better"):
        return BETTER
    if verdict.startswith("B worse"):
        return WORSE
    return NEUTRAL if verdict.startswith("changed") else ""


def style(frame: pd.DataFrame, numbers: dict[str, str]):
    """``frame`` as text for people, verdicts coloured (a pandas Styler).

    Every number becomes text here (``87.4``, ``11.1k``, ``+0.52 points``, ``—``):
    a table cell left NaN reads "None" in the browser whatever the Styler says.

    Args:
        frame: a table with ``Metric`` and ``Verdict`` columns.
        numbers: column -> ``value`` (means, spreads: ``87.4``) or ``diff``
            (signed; in points on a percentage's row: ``+0.52 points``).
    """
    shown = frame.copy()
    for column, kind in numbers.items():
        shown[column] = [
            human(v) if kind == "value" else points(v) if in_percent(m) else human(v, sign=True)
            for m, v in zip(frame["Metric"], frame[column], strict=True)
        ]
    return shown.style.apply(
        lambda column: [f"background-color: {color(v)}" if color(v) else "" for v in column],
        subset=["Verdict"],
    )
