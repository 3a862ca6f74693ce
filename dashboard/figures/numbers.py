"""Numbers for people: ``11.1k`` not ``1.112e+04``, ``87.4%``, ``+0.5 points``, ``—`` for none.

Every table a person reads in a meeting (Compare, Representations, and any page
that wants it) formats its numbers here, so one value reads the same on every
page. Three significant digits by default: what a seed-to-seed spread of a
small study supports, and what fits in a table cell.
"""

from __future__ import annotations

import math

#: What a missing value reads as.
NONE = "—"
#: (from, unit, suffix) of large magnitudes: thousands from 10,000 on (1,234 stays whole).
_LARGE = ((1e12, 1e12, "T"), (1e9, 1e9, "B"), (1e6, 1e6, "M"), (1e4, 1e3, "k"))


def _missing(value: float | None) -> bool:
    """Whether ``value`` is absent or not a finite number."""
    return value is None or not math.isfinite(float(value))


def _digits(size: float, digits: int) -> int:
    """Decimals that give ``digits`` significant digits to a number of magnitude ``size``."""
    if size == 0:
        return 0
    return max(digits - 1 - math.floor(math.log10(size)), 0)


def _trim(text: str) -> str:
    """``0.500`` -> ``0.5``, ``12.0`` -> ``12``, ``-0`` -> ``0`` (a mantissa's zeros too)."""
    mantissa, e, exponent = text.partition("e")
    if "." in mantissa:
        mantissa = mantissa.rstrip("0").rstrip(".")
    mantissa = "0" if mantissa in ("-0", "+0") else mantissa
    return mantissa + e + exponent


def human(value: float | None, *, digits: int = 3, sign: bool = False) -> str:
    """A number as a person writes it: ``11.1k``, ``1.2M``, ``1,234``, ``0.00321``, ``87.4``.

    Args:
        value: any real number; None, NaN and infinities read as ``—``.
        digits: significant digits kept (at least 1); a number of 1,000 to 9,999
            keeps all its integer digits (``1,234``), 10,000 and above take a
            suffix (k, M, B, T) with one decimal below 100 of the unit.
        sign: write ``+`` before a positive number (for differences).
    Returns:
        The text; below 0.001 (and not zero) in scientific form (``3.2e-05``).
    """
    if _missing(value):
        return NONE
    value = float(value)
    plus = "+" if sign and value > 0 else ""
    digits = max(digits, 1)
    if abs(value) and abs(value) < 1e-3:
        return plus + _trim(f"{value:.{digits - 1}e}")
    rounded = float(f"{value:.{_digits(abs(value), digits)}f}")  # 999.96 is 1,000
    size = abs(rounded)
    for start, unit, suffix in _LARGE:
        if size >= start:
            scaled = value / unit
            return plus + _trim(f"{scaled:.{1 if abs(scaled) < 100 else 0}f}") + suffix
    if size >= 1000:
        return f"{plus}{value:,.0f}"
    return plus + _trim(f"{value:.{_digits(size, digits)}f}")


def percent(fraction: float | None, *, digits: int = 3) -> str:
    """A fraction as a percentage: 0.8742 -> ``87.4%`` (``—`` for none)."""
    return NONE if _missing(fraction) else f"{human(100 * float(fraction), digits=digits)}%"


def points(difference: float | None, *, digits: int = 2) -> str:
    """A difference of two percentages, in points: 0.52 -> ``+0.52 points``."""
    if _missing(difference):
        return NONE
    unit = "point" if abs(float(difference)) == 1 else "points"
    return f"{human(difference, digits=digits, sign=True)} {unit}"


def interval(low: float | None, high: float | None, *, digits: int = 3) -> str:
    """A 95% interval as ``0.12 to 0.34`` (``—`` when either end is missing)."""
    if _missing(low) or _missing(high):
        return NONE
    return f"{human(low, digits=digits)} to {human(high, digits=digits)}"
