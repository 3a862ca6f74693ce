"""Every exportable figure of a study, section by section (the export's table of contents).

A section is a function ``catalogue(summary, reader, theme) -> list[FigureItem]``
that turns the JSON summary (docs/summary.md) and a plain :class:`Reader` of
the store into figures, skipping whatever is not computed. Overview,
Representations and Robustness live here; Connectivity and Landscape come from
``catalogue`` in their own figure modules. No streamlit: the export and the
dashboard's Export page both call :func:`study_catalogue`.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable

from analysis.errors import PrunescopeError
from dashboard.figures import representations as frep
from dashboard.figures import robustness as frob
from dashboard.figures.items import FigureItem
from dashboard.figures.runs import (
    accuracy_vs_sparsity,
    cached,
    layer_sparsity_heatmap,
)
from dashboard.figures.theme import NORMAL, Theme
from dashboard.figures.timeline import training_timeline
from dashboard.results import Reader

Catalogue = Callable[[dict, Reader, Theme], list[FigureItem]]

#: Runs per embedding figure: the reference plus three others read well side by side.
EMBEDDING_PANELS = 4


def overview(
    summary: dict, reader: Reader, theme: Theme = NORMAL, *, grouped: bool = False
) -> list[FigureItem]:
    """Accuracy vs sparsity, sparsity per layer and the training curves of the cached runs.

    ``grouped``: the training curves as the mean over seeds per method (95% band).
    """
    runs = summary["runs"]
    done = cached(runs)
    if not done:
        return []
    lineages = {r["key"]: lin for r in done if (lin := reader.lineage(r["key"]))}
    items = [
        FigureItem(
            "Overview",
            "overview-accuracy",
            "Test accuracy vs achieved sparsity",
            "Each marker is a run; lines join a method's mean over seeds (bars: standard "
            "deviation). The dashed line and band are the dense runs' mean and range.",
            accuracy_vs_sparsity(runs, theme),
        ),
        FigureItem(
            "Overview",
            "overview-layers",
            "Sparsity per layer",
            "Fraction of each prunable weight tensor that is masked, per run.",
            layer_sparsity_heatmap(runs, theme),
        ),
    ]
    if lineages:
        items.append(
            FigureItem(
                "Overview",
                "overview-curves",
                "Test accuracy during training",
                "Test accuracy after every epoch of every phase, on one axis of total training: "
                "dense training, then pruning and fine-tuning or each lottery round. Colour is "
                "the method; " + ("bands: 95% interval over seeds." if grouped else "dash: seed."),
                training_timeline(runs, lineages, "acc", theme, grouped=grouped),
            )
        )
    return items


def embedding_groups(rep: dict) -> list[list[int]]:
    """Runs of the first seed in groups of at most ``EMBEDDING_PANELS``, the reference first."""
    runs = rep["summary"]["runs"]
    labels = frep.run_labels(rep)
    ref = labels.index(rep["summary"]["reference"]) if rep["summary"].get("reference") else 0
    first_seed = runs[ref].get("seed", 0)
    others = [i for i, r in enumerate(runs) if i != ref and r.get("seed", 0) == first_seed]
    step = EMBEDDING_PANELS - 1
    return [[ref, *others[i : i + step]] for i in range(0, len(others), step)] or [[ref]]


def representations(summary: dict, reader: Reader, theme: Theme = NORMAL) -> list[FigureItem]:
    """Per objective: aligned UMAP embeddings side by side, CKA between runs, geometry per class."""
    items: list[FigureItem] = []
    records = [r for r in summary.get("representations", []) if r["status"] == "cached"]
    several = len(records) > 1
    for record in records:
        objective, setting = record["objective"], record.get("setting_label", "")
        rep = reader.representations(objective, setting)
        if rep is None:
            continue
        suffix = f" ({', '.join(filter(None, [setting, objective]))})" if several else ""
        slug = "-".join(
            [
                "representations",
                objective,
                *"".join(c if c.isalnum() else " " for c in setting).split(),
            ]
        )
        groups = embedding_groups(rep)
        labels = frep.run_labels(rep)
        for g, chosen in enumerate(groups, 1):
            part = f", part {g} of {len(groups)}" if len(groups) > 1 else ""
            items.append(
                FigureItem(
                    "Representations",
                    f"{slug}-embedding-{g}",
                    f"Aligned UMAP embeddings{suffix}{part}",
                    "Penultimate-layer features of a fixed test subset, embedded in 2-D with UMAP "
                    f"and aligned onto {labels[chosen[0]]} so the panels share a frame; colour "
                    "is the true class.",
                    frep.embedding_scatter(rep, chosen, "class", theme, dims=2),
                )
            )
        items.append(
            FigureItem(
                "Representations",
                f"{slug}-cka",
                f"Linear CKA between runs{suffix}",
                "Similarity of the runs' features on the same samples (1: identical up to a "
                "rotation and scale; Kornblith et al. 2019).",
                frep.cka_heatmap(rep, None, theme),
            )
        )
        first = sorted({i for group in groups for i in group})
        items.append(
            FigureItem(
                "Representations",
                f"{slug}-geometry",
                f"Last-layer geometry per class{suffix}",
                "Per true class: mean angle between a feature and its class's head row, mean "
                "feature norm and mean logit margin (Li et al. 2022).",
                frep.geometry_bars(rep, first, theme),
            )
        )
    return items


def robustness(summary: dict, reader: Reader, theme: Theme = NORMAL) -> list[FigureItem]:
    """Accuracy under each corruption, the runs x corruptions heatmap, mCE and weight noise."""
    runs, records = summary["runs"], summary.get("robustness", [])
    shown = frob.pairs(runs, records)
    if not shown:
        return []
    items = [
        FigureItem(
            "Robustness",
            "robustness-curves",
            "Accuracy under corruption",
            "Accuracy on a fixed test subset at each severity of each corruption "
            "(severity 0: the clean subset).",
            frob.corruption_curves(runs, records, theme),
        ),
        FigureItem(
            "Robustness",
            "robustness-heatmap",
            "Mean accuracy per corruption",
            "Accuracy averaged over the five severities, per run and corruption.",
            frob.corruption_heatmap(runs, records, "accuracy", theme),
        ),
    ]
    if any(i.get("mce") is not None for _, i in shown):
        items.append(
            FigureItem(
                "Robustness",
                "robustness-mce",
                "mCE and relative mCE",
                "Corruption error relative to the dense run of the same seed (= 100): below "
                "100 is more robust than dense (Hendrycks & Dietterich 2019).",
                frob.mce_bars(runs, records, theme),
            )
        )
    if any(i.get("noise") for _, i in shown):
        items.append(
            FigureItem(
                "Robustness",
                "robustness-noise",
                "Accuracy under weight noise",
                "Every weight multiplied by (1 + sigma * N(0, 1)); pruned weights stay zero. "
                "Line: mean over draws, band: one standard deviation.",
                frob.noise_curves(runs, records, theme),
            )
        )
    return items


def _module_catalogue(module: str) -> Catalogue | None:
    """``catalogue`` of ``dashboard.figures.<module>``, None while that module or function
    does not exist yet (any other import error is raised)."""
    name = f"dashboard.figures.{module}"
    try:
        found = importlib.import_module(name)
    except ModuleNotFoundError as err:
        if err.name != name:
            raise
        return None
    return getattr(found, "catalogue", None)


def sections() -> dict[str, Catalogue]:
    """Every section with a catalogue, in report order."""
    out: dict[str, Catalogue] = {
        "Overview": overview,
        "Representations": representations,
        "Robustness": robustness,
    }
    for title, module in (
        ("Connectivity", "connectivity"),
        ("Landscape", "landscape"),
        ("Anatomy", "anatomy"),
    ):
        found = _module_catalogue(module)
        if found is not None:
            out[title] = found
    return out


def study_catalogue(
    summary: dict,
    reader: Reader,
    theme: Theme = NORMAL,
    progress: Callable[[str, float, float], None] | None = None,
) -> list[FigureItem]:
    """Every figure of the study that its cached results can draw, section by section."""
    found = sections()
    items: list[FigureItem] = []
    for i, (title, catalogue) in enumerate(found.items()):
        if progress:
            progress(f"figures: {title}", i, len(found))
        items.extend(catalogue(summary, reader, theme))
    if progress:
        progress("figures", len(found), len(found))
    names = [item.name for item in items]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise PrunescopeError(f"figure names must be unique within a study; repeated: {duplicates}")
    return items
