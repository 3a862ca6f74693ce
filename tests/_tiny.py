"""A tiny digits study for the analysis tests (representations, robustness).

Four runs (dense and magnitude 80%, seeds 0 and 1) of a 784-32-10 MLP train in a few
seconds; the analysis tables are appended as TOML so the same text serves
``parse_study`` in-process and the ``prunescope`` CLI from a file.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

TINY = """
name = "tiny-analyses"
seeds = {seeds}
objectives = {objectives}
[data]
name = "digits"
train_size = 400
[model]
arch = "mlp"
width = 32
depth = 1
[train]
epochs = {epochs}
batch_size = 50
lr = 0.01
probe_epochs = 2
[[methods]]
method = "dense"
"""

MAGNITUDE = """
[[methods]]
method = "magnitude"
sparsities = [0.8]
finetune_epochs = 1
"""


def toml_value(value: Any) -> str:
    """A Python value as a TOML value (str, bool, int, float, list of those)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, list | tuple):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    return repr(value)


def tiny_text(
    *,
    seeds: tuple[int, ...] = (0, 1),
    objectives: tuple[str, ...] = ("ce",),
    epochs: int = 3,
    magnitude: bool = True,
    **analyses: dict[str, Any],
) -> str:
    """TOML of the tiny study; ``representations={...}`` etc. add ``[analyses.<name>]`` tables."""
    text = TINY.format(
        seeds=toml_value(list(seeds)), objectives=toml_value(list(objectives)), epochs=epochs
    )
    if magnitude:
        text += MAGNITUDE
    for name, table in analyses.items():
        text += f"\n[analyses.{name}]\n"
        text += "".join(f"{k} = {toml_value(v)}\n" for k, v in table.items())
    return text


def tiny_study(**kwargs: Any):
    """The parsed tiny study (see :func:`tiny_text`)."""
    from analysis.study import parse_study

    return parse_study(tiny_text(**kwargs), source="tiny study")


def compute(study, store, *parts: str) -> None:
    """Compute the given parts of ``study`` into ``store``; fail loudly on any failed job."""
    from analysis.plan import compute_study

    for part in parts:
        report = compute_study(study, store, only=part)
        assert not report.failed, report.failed


def copy_entries(specs, src, dst) -> None:
    """Copy the stored entries of ``specs`` from store ``src`` to store ``dst`` (content-addressed)."""
    for spec in specs:
        source: Path = src.path(spec)
        assert (source / "meta.json").exists(), f"{spec.kind} {spec.label} is not in {src.root}"
        target: Path = dst.path(spec)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copytree(source, target, dirs_exist_ok=True)
