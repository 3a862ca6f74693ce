"""Group statistics: every scalar metric of a study, over seeds, per setting x method x sparsity.

A group is one setting x method x sparsity x objective of a study; its members
are the group's seeds (runs) or pairs of seeds (connectivity). For every scalar
metric the summary reports (test accuracy and loss, mCE and relative mCE,
accuracy under weight noise at each sigma, barriers by alignment and
definition, top Hessian eigenvalue and trace, CKA to dense and k-NN accuracy,
flips) this gives n, the mean, the sample standard deviation and a 95%
confidence interval of the mean from Student's t distribution (scipy), and the
same for the paired differences against dense: each member minus the dense
group's member of the same seed (or pair of seeds), setting and objective.

It reads the summary's own sections (``analysis.plan.summarize`` calls it
last), so a metric has statistics exactly when its records are cached, and
the sections themselves stay as they were (docs/summary.md, ``groups``).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

from scipy import stats

#: Digits a sparsity is rounded to when runs are grouped (a chain's levels are
#: written to 10 digits, a ladder's to 10 as well).
_SPARSITY_DIGITS = 6

Group = tuple[str, str, float, str]  # setting label, method, sparsity, objective
Member = Any  # a seed (int) or a pair of seeds (tuple)


def interval(values: list[float]) -> dict:
    """n, mean, sample std and the 95% Student-t interval of the mean of ``values``.

    With one value the std and interval are null; with none, the mean is null too.
    """
    n = len(values)
    if n == 0:
        return {"n": 0, "mean": None, "std": None, "ci95": None}
    mean = math.fsum(values) / n
    if n == 1:
        return {"n": 1, "mean": mean, "std": None, "ci95": None}
    std = math.sqrt(math.fsum((v - mean) ** 2 for v in values) / (n - 1))
    half = float(stats.t.ppf(0.975, n - 1)) * std / math.sqrt(n)
    return {"n": n, "mean": mean, "std": std, "ci95": [mean - half, mean + half]}


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _group(ident: dict, sparsity: float) -> Group:
    return (
        ident.get("setting_label", ""),
        ident["method"],
        round(float(sparsity), _SPARSITY_DIGITS),
        ident["objective"],
    )


def _run_observations(doc: dict) -> Iterator[tuple[Group, Member, str, float]]:
    """(group, seed, metric, value) for every cached per-run metric of every section."""
    runs = {r["key"]: r for r in doc.get("runs", [])}
    by_label = {r["label"]: r for r in runs.values()}

    def ident(record: dict) -> dict | None:
        return runs.get(record.get("key", "")) or by_label.get(record.get("label", ""))

    for r in runs.values():
        if r["status"] != "cached":
            continue
        g = _group(r, r["requested_sparsity"])
        for name in ("test_acc", "test_loss", "val_acc", "achieved_sparsity", "test_knn_acc"):
            if _number(r.get(name)):
                yield g, r["seed"], name, float(r[name])
    for item in doc.get("robustness", []):
        r = ident(item)
        if r is None or item.get("status") != "cached":
            continue
        g = _group(r, r["requested_sparsity"])
        for name in ("clean_accuracy", "mean_corruption_accuracy", "mce", "relative_mce"):
            if _number(item.get(name)):
                yield g, r["seed"], name, float(item[name])
        for row in item.get("noise", []):
            yield g, r["seed"], f"noise_acc@{row['sigma']:g}", float(row["accuracy_mean"])
    yield from _representation_observations(doc, ident)
    for item in doc.get("landscape", {}).get("runs", []):
        r = ident(item)
        sharp = item.get("sharpness") or {}
        if r is None or sharp.get("status") != "cached":
            continue
        g = _group(r, r["requested_sparsity"])
        if sharp.get("eigenvalues"):
            yield g, r["seed"], "top_eigenvalue", float(sharp["eigenvalues"][0])
        if _number(sharp.get("trace")):
            yield g, r["seed"], "hessian_trace", float(sharp["trace"])


def _representation_observations(doc: dict, ident: Any) -> Iterator:
    """k-NN accuracy, silhouette, flips and CKA to the same-seed dense run, per run."""
    for section in doc.get("representations", []):
        if section.get("status") != "cached":
            continue
        cka = section.get("cka") or {}
        labels, matrix = cka.get("labels", []), cka.get("matrix", [])
        for run in section.get("runs", []):
            r = ident(run)
            if r is None:
                continue
            g = _group(r, r["requested_sparsity"])
            for name in ("knn_acc", "silhouette", "flips_lost", "flips_gained"):
                if _number(run.get(name)):
                    yield g, r["seed"], name, float(run[name])
            ref = run.get("flips_vs")
            if ref in labels and run["label"] in labels:
                value = matrix[labels.index(run["label"])][labels.index(ref)]
                if _number(value):
                    yield g, r["seed"], "cka_to_dense", float(value)


def _pair_observations(doc: dict) -> Iterator[tuple[Group, Member, str, float]]:
    """(group, (seed a, seed b), "barrier.ALIGNMENT[+repair].SPLIT.NAME", value) per cached pair."""
    for pair in doc.get("connectivity", {}).get("pairs", []):
        if pair.get("status") != "cached" or pair.get("pair") != "seeds":
            continue
        g = _group(pair, pair["sparsity"])
        variant = pair["alignment"] + ("+repair" if pair.get("repair") else "")
        member = tuple(pair.get("seeds", ()))
        for split, barriers in pair.get("barriers", {}).items():
            for name, value in barriers.items():
                if _number(value):
                    yield g, member, f"barrier.{variant}.{split}.{name}", float(value)


def group_statistics(doc: dict) -> list[dict]:
    """The ``groups`` section of the summary, built from its other sections.

    One record per setting x method x sparsity x objective, in the order of
    the runs; see docs/summary.md for the fields.
    """
    table: dict[Group, dict[str, dict[Member, float]]] = {}
    for g, member, name, value in (*_run_observations(doc), *_pair_observations(doc)):
        table.setdefault(g, {}).setdefault(name, {})[member] = value
    order = [_group(r, r["requested_sparsity"]) for r in doc.get("runs", [])]
    settings = {r.get("setting_label", ""): r.get("setting", {}) for r in doc.get("runs", [])}
    seeds: dict[Group, set] = {}
    for r in doc.get("runs", []):
        seeds.setdefault(_group(r, r["requested_sparsity"]), set()).add(r["seed"])
    out = []
    for g in dict.fromkeys(order):
        setting, method, sparsity, objective = g
        dense = table.get((setting, "dense", 0.0, objective), {})
        metrics = {}
        for name, members in sorted(table.get(g, {}).items()):
            record = interval(list(members.values()))
            if method != "dense" and name in dense:
                common = [m for m in members if m in dense[name]]
                diff = interval([members[m] - dense[name][m] for m in common])
                ci = diff["ci95"]
                diff["excludes_zero"] = None if ci is None else bool(ci[0] > 0 or ci[1] < 0)
                record["vs_dense"] = diff
            metrics[name] = record
        out.append(
            {
                "setting": settings.get(setting, {}),
                "setting_label": setting,
                "method": method,
                "sparsity": sparsity,
                "objective": objective,
                "seeds": sorted(seeds.get(g, ())),
                "metrics": metrics,
            }
        )
    return out
