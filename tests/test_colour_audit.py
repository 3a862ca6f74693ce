"""Colours mean one thing: the method palette is reached only through ``method_color``.

Every figure module asks ``theme.method_color(method)`` for a method's colour and
uses the neutral slate greys (``INK``, ``SLATE``, ``PALE``) for anything else
(right/wrong, gained/lost, a trained network's marker, legend keys of line
styles); alignment is told by line style, never by colour.
"""

from __future__ import annotations

import re
from pathlib import Path

from dashboard.figures import theme

FIGURES = Path(__file__).resolve().parents[1] / "dashboard"


def test_no_figure_takes_a_method_colour_for_something_else():
    method_hexes = {c.upper() for c in theme.METHOD_COLORS.values()} | {
        c.upper() for c in theme.OKABE_ITO.values()
    }
    offenders = []
    for path in FIGURES.rglob("*.py"):
        if path.name == "theme.py":
            continue
        text = path.read_text()
        if re.search(r"OKABE_ITO\[|OKABE_ITO\.items", text):
            offenders.append(f"{path.name}: OKABE_ITO")
        if re.search(r"theme import[^\n]*\bGREY\b", text):
            offenders.append(f"{path.name}: GREY (random's colour)")
        offenders += [f"{path.name}: {h}" for h in re.findall(r"#[0-9A-Fa-f]{6}\b", text)
                      if h.upper() in method_hexes]  # fmt: skip
    assert not offenders, offenders


def test_the_neutral_colours_are_no_methods_and_read_apart_in_greyscale():
    def luma(hex_color: str) -> float:
        r, g, b = (int(hex_color[i : i + 2], 16) for i in (1, 3, 5))
        return 0.299 * r + 0.587 * g + 0.114 * b

    neutral = [theme.INK, theme.SLATE, theme.PALE]
    assert not {c.upper() for c in neutral} & {c.upper() for c in theme.METHOD_COLORS.values()}
    lumas = sorted(luma(c) for c in neutral)
    assert min(b - a for a, b in zip(lumas, lumas[1:], strict=False)) > 40
