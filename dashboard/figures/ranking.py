"""The ranking table: methods x metrics at one sparsity, each cell a mean, its interval and
the paired difference against dense, marked where that difference's interval excludes zero.

Read from the summary's ``groups`` (``analysis/group_stats.py``); a table a
person sorts by clicking a column, and downloads as CSV.
"""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

from dashboard.figures import numbers
from dashboard.figures.sweeps import bounded, y_title

#: Metrics shown by default, where the study has them.
DEFAULT_METRICS = (
    "test_acc",
    "mce",
    "barrier.weight.test.barrier_entezari",
    "cka_to_dense",
    "top_eigenvalue",
)
#: Metrics where lower is better (the rank goes the other way).
LOWER_IS_BETTER = ("test_loss", "mce", "relative_mce", "barrier", "top_eigenvalue", "trace")


def sparsities(summary: dict) -> list[float]:
    """The pruned sparsities the study's groups have, in order."""
    return sorted({g["sparsity"] for g in summary.get("groups", []) if g["method"] != "dense"})


def default_metrics(available: Sequence[str]) -> list[str]:
    """The default columns that exist, plus noise accuracy at the largest sigma."""
    out = [m for m in DEFAULT_METRICS if m in available]
    noise = sorted(
        (m for m in available if m.startswith("noise_acc@")), key=lambda m: float(m.split("@")[1])
    )
    return out + noise[-1:]


def lower_is_better(metric: str) -> bool:
    """Whether a smaller value of ``metric`` is the better one."""
    return any(word in metric for word in LOWER_IS_BETTER)


def human(value: float | None) -> str:
    """A number for people with 4 significant digits (``dashboard.figures.numbers.human``)."""
    return numbers.human(value, digits=4)


def ranking_table(
    summary: dict, sparsity: float, metrics: Sequence[str], *, setting: str | None = None
) -> pd.DataFrame:
    """One row per method at ``sparsity`` (dense first, as the reference), per metric:
    the mean, its 95% interval, the mean paired difference against dense and ``*``
    where that difference's 95% interval excludes zero. ``setting``: one setting's
    label (default: every setting, named in a column when there are several)."""
    groups = [
        g
        for g in summary.get("groups", [])
        if (g["method"] == "dense" or abs(g["sparsity"] - sparsity) < 1e-9)
        and (setting is None or g["setting_label"] == setting)
    ]
    several = len({g["setting_label"] for g in groups}) > 1
    rows = []
    for g in sorted(groups, key=lambda g: (g["setting_label"], g["method"] != "dense")):
        row: dict = {"Method": g["method"], "Seeds": len(g["seeds"])}
        if several:
            row = {"Setting": g["setting_label"], **row}
        for metric in metrics:
            record = bounded(g["metrics"].get(metric) or {}, metric)
            name = y_title(metric)
            ci = record.get("ci95")
            row[name] = record.get("mean")
            row[f"{name}: 95%"] = f"{human(ci[0])} to {human(ci[1])}" if ci else "—"
            diff = record.get("vs_dense") or {}
            row[f"{name}: vs dense"] = diff.get("mean")
            row[f"{name}: sig."] = "*" if diff.get("excludes_zero") else ""
        rows.append(row)
    return pd.DataFrame(rows)
