"""Learned representations: features, aligned UMAP embeddings, similarity, geometry, flips.

Three kinds, each cached on its own so nothing is computed twice:

- ``features``: a run's penultimate features (or any named layer's output) on a
  fixed, seeded test subset, with logits, predictions and per-sample last-layer
  geometry;
- ``umap``: a UMAP embedding (umap-learn, seeded) of one run's features, with
  its trustworthiness (scikit-learn);
- ``representations``: the study-level view of one objective: every run's 2-D
  and 3-D embedding Procrustes-aligned onto the dense seed-0 run's (scipy's
  ``orthogonal_procrustes``: rotation/reflection plus one scale, so side-by-side
  plots share a frame), linear CKA between every pair of runs, k-NN accuracy and
  silhouette on the features, the last-layer geometry per class, flips against
  the dense run of the same seed, and pruning-identified exemplars.

Geometry follows Li et al. 2022 ("Understanding Robustness Lottery"): the class
direction is the class's row of the last (linear) layer; per sample we report
the angle between the feature and its true class direction, the feature's L2
norm, and the logit margin (true-class logit minus the largest other logit).
Pruning-identified exemplars follow Hooker et al. 2019 ("What Do Compressed
Deep Neural Networks Forget?"): test samples whose modal prediction over seeds
differs between the dense and the pruned population.

Devices: features, logits and geometry are computed on the computation's device
(``ctx.device``) and stored as CPU numpy; UMAP (umap-learn), CKA, k-NN and
silhouette (numpy / scikit-learn) work on those CPU arrays.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn

from analysis.api import Analysis, Context, Kind, Study, status_record
from analysis.api import get as get_result
from analysis.data import eval_subset, load
from analysis.device import full_fp32
from analysis.errors import SpecError
from analysis.limits import check_umap
from analysis.representation_metrics import (  # noqa: F401  (re-exported: tests, figures)
    KNN_FOLDS,
    cka_matrix,
    knn_cv_accuracy,
    knn_train_size,
    linear_cka,
    modal,
    per_class,
    procrustes_align,
)
from analysis.specs import SPEC, RunSpec, check_float, check_int, setting_label, spec_key

PENULTIMATE = "penultimate"


@dataclass(**SPEC)
class RepresentationSettings:
    """``[analyses.representations]`` of a study."""

    subset_size: int = 1000
    subset_seed: int = 0
    layer: str = PENULTIMATE
    n_neighbors: int = 15
    min_dist: float = 0.1
    umap_seed: int = 0
    knn_k: int = 10

    def __post_init__(self) -> None:
        check_int("representations", "subset_size", self.subset_size, lo=20, hi=20000)
        check_int("representations", "subset_seed", self.subset_seed, lo=0)
        if not isinstance(self.layer, str) or not self.layer or len(self.layer) > 200:
            raise SpecError(
                "layer", "a module name or 'penultimate'", self.layer, owner="representations"
            )
        check_int("representations", "n_neighbors", self.n_neighbors, lo=2, hi=200)
        check_float("representations", "min_dist", self.min_dist, 0.0, 1.0)
        check_int("representations", "umap_seed", self.umap_seed, lo=0)
        check_int("representations", "knn_k", self.knn_k, lo=1, hi=100)
        # Sizes checked against each other when the study loads, not as a NaN later:
        # 5-fold cross-validation trains on 4/5 of the subset; UMAP needs n_neighbors < N.
        most = knn_train_size(self.subset_size)
        check_int("representations", "knn_k", self.knn_k, lo=1, hi=min(100, most))
        check_int("representations", "n_neighbors", self.n_neighbors, lo=2, hi=self.subset_size - 1)


@dataclass(**SPEC)
class FeaturesSpec:
    """Features of one run on a fixed test subset."""

    kind: ClassVar[str] = "features"
    run: RunSpec = field(default_factory=RunSpec)
    subset_size: int = 1000
    subset_seed: int = 0
    layer: str = PENULTIMATE

    @property
    def label(self) -> str:
        """Human label."""
        return f"features of {self.run.label}"


@dataclass(**SPEC)
class UmapSpec:
    """A UMAP embedding of one run's features."""

    kind: ClassVar[str] = "umap"
    features: FeaturesSpec = field(default_factory=FeaturesSpec)
    n_components: int = 2
    n_neighbors: int = 15
    min_dist: float = 0.1
    seed: int = 0

    def __post_init__(self) -> None:
        check_int("UmapSpec", "n_components", self.n_components, lo=2, hi=3)

    @property
    def label(self) -> str:
        """Human label."""
        return f"UMAP {self.n_components}-D of {self.features.run.label}"


@dataclass(**SPEC)
class RepresentationsSpec:
    """The aligned, study-level representation analysis of a set of runs."""

    kind: ClassVar[str] = "representations"
    #: 2: CKA in float64 and exactly symmetric; k-NN settings checked against the subset.
    version: ClassVar[int] = 2
    runs: tuple[RunSpec, ...] = ()
    settings: RepresentationSettings = field(default_factory=RepresentationSettings)

    def __post_init__(self) -> None:
        if not self.runs:
            raise SpecError("runs", "at least one run", self.runs, owner="RepresentationsSpec")

    @property
    def label(self) -> str:
        """Human label."""
        return f"representations ({len(self.runs)} runs, {self.runs[0].train.objective})"


# ---------------------------------------------------------------------------
# features


def module_names(model: nn.Module) -> list[str]:
    """Names a user may pick as ``layer`` (plus 'penultimate')."""
    return [PENULTIMATE] + [n for n, _ in model.named_modules() if n]


def check_layer(model: nn.Module, layer: str) -> None:
    """Raise SpecError listing the valid names unless ``layer`` names a module."""
    names = module_names(model)
    if layer not in names:
        shown = ", ".join(map(repr, names[:40]))
        raise SpecError("layer", f"one of {{{shown}}}", layer, owner="representations")


@torch.no_grad()
def layer_output(model: nn.Module, x: torch.Tensor, layer: str, batch: int = 1024) -> torch.Tensor:
    """Output of module ``layer`` (flattened per sample) or the penultimate features. x: (N, C, H, W) -> (N, D)."""
    model.eval()
    if layer == PENULTIMATE:
        return torch.cat([model.features(x[i : i + batch]) for i in range(0, len(x), batch)])
    check_layer(model, layer)
    captured: list[torch.Tensor] = []
    handle = model.get_submodule(layer).register_forward_hook(
        lambda _m, _i, out: captured.append(out.flatten(1))
    )
    try:
        for i in range(0, len(x), batch):
            model(x[i : i + batch])
    finally:
        handle.remove()
    return torch.cat(captured)


def geometry(
    feats: torch.Tensor, logits: torch.Tensor, labels: torch.Tensor, head: nn.Linear
) -> dict[str, np.ndarray]:
    """Per-sample angle (degrees) to the true class direction, feature norm, logit margin.

    feats: (N, D) penultimate features; logits: (N, K); labels: (N,), all on the head's
    device. Returns CPU float32 arrays (N,).
    """
    directions = head.weight.detach()[
        labels
    ]  # (N, D): the class direction of each sample's true class
    cos = torch.nn.functional.cosine_similarity(feats, directions, dim=1, eps=1e-12)
    angle = torch.rad2deg(torch.arccos(cos.clamp(-1.0, 1.0)))
    true = logits.gather(1, labels[:, None])[:, 0]
    other = logits.scatter(1, labels[:, None], float("-inf")).max(1).values
    return {
        "angle": angle.cpu().numpy().astype(np.float32),
        "norm": feats.norm(dim=1).cpu().numpy().astype(np.float32),
        "margin": (true - other).cpu().numpy().astype(np.float32),
    }


@full_fp32()  # no TF32 on CUDA: the CPU's features to float rounding
def compute_features(spec: FeaturesSpec, ctx: Context) -> tuple[dict, dict]:
    """Features, logits and geometry of a run on its fixed test subset (on ``ctx.device``)."""
    run = ctx.get(spec.run)
    data = load(spec.run.data)
    # subset_size is an upper bound: a small test set (digits: 359) is used whole.
    idx = eval_subset(min(spec.subset_size, len(data.test_x)), len(data.test_x), spec.subset_seed)
    x, y = data.test_x[idx].to(ctx.device), data.test_y[idx].to(ctx.device)
    model = run.model().to(ctx.device)
    check_layer(model, spec.layer)
    with torch.no_grad():
        logits = torch.cat([model(x[i : i + 1024]) for i in range(0, len(x), 1024)])
        penult = layer_output(model, x, PENULTIMATE)
    feats = penult if spec.layer == PENULTIMATE else layer_output(model, x, spec.layer)
    arrays = {
        "features": feats.cpu().numpy().astype(np.float32),
        "logits": logits.cpu().numpy().astype(np.float32),
        "preds": logits.argmax(1).cpu().numpy().astype(np.int64),
        "labels": y.cpu().numpy().astype(np.int64),
        "indices": idx.cpu().numpy().astype(np.int64),
    }
    arrays.update(geometry(penult, logits, y, model.head))
    acc = float((arrays["preds"] == arrays["labels"]).mean())
    return {"features.npz": arrays}, {"subset_acc": acc, "dim": int(feats.shape[1])}


# ---------------------------------------------------------------------------
# UMAP


def compute_umap(spec: UmapSpec, ctx: Context) -> tuple[dict, dict]:
    """A seeded UMAP embedding of one run's features, with its trustworthiness."""
    import umap
    from sklearn.manifold import trustworthiness

    feats = ctx.get(spec.features).read("features.npz")["features"]
    check_umap(spec, *feats.shape)  # refuse before UMAP starts if it cannot fit in memory
    ctx.progress(spec.label, 0, 1)
    reducer = umap.UMAP(
        n_components=spec.n_components,
        n_neighbors=min(spec.n_neighbors, len(feats) - 1),
        min_dist=spec.min_dist,
        random_state=spec.seed,
        n_jobs=1,  # a random_state makes umap run single-threaded anyway; saying so is quiet
    )
    threads = torch.get_num_threads()
    try:
        emb = reducer.fit_transform(feats).astype(np.float32)
    finally:
        # numba's OpenMP threading layer sets the process-wide OpenMP thread count when it
        # starts, silently undoing torch.set_num_threads (torch then runs on every core,
        # several times slower on a shared machine): put torch's setting back.
        torch.set_num_threads(threads)
    trust = float(trustworthiness(feats, emb, n_neighbors=min(10, len(feats) // 2 - 1)))
    ctx.progress(spec.label, 1, 1)
    return {"embedding.npz": {"embedding": emb}}, {"trustworthiness": trust}


def representation_groups(study: Study) -> list[list[RunSpec]]:
    """The runs of each objective x setting, the dense lowest-seed run first (the reference).

    A study without axes has one setting, so one group per objective.
    """
    groups: dict[tuple, list[RunSpec]] = {}
    for r in study.runs():
        groups.setdefault((r.train.objective, r.setting), []).append(r)
    for runs in groups.values():
        runs.sort(key=lambda r: (r.sparsity.method != "dense", r.seed))
    return list(groups.values())


def representation_specs(study: Study) -> list[RepresentationsSpec]:
    """One representations spec per objective x setting (its runs share one network shape)."""
    settings = study.analysis("representations")
    groups = representation_groups(study)
    if settings.layer != PENULTIMATE:  # refuse a bad layer name before anything is computed
        from analysis.data import dataset_info
        from analysis.models import build_for

        for model in dict.fromkeys(runs[0].model for runs in groups):
            with torch.device("meta"):  # names only: a skeleton without storage
                skeleton = build_for(model, dataset_info(study.data.name))
            check_layer(skeleton, settings.layer)
    return [RepresentationsSpec(runs=tuple(runs), settings=settings) for runs in groups]


def run_parts(spec: RepresentationsSpec) -> list[tuple[FeaturesSpec, list[UmapSpec]]]:
    """Per run of ``spec``: its features spec and its 2-D and 3-D UMAP specs.

    The one place these are built: the compute gets them, and the executor runs
    them as jobs of their own first.
    """
    s = spec.settings
    out = []
    for run in spec.runs:
        fspec = FeaturesSpec(
            run=run, subset_size=s.subset_size, subset_seed=s.subset_seed, layer=s.layer
        )
        umaps = [
            UmapSpec(features=fspec, n_components=dims, n_neighbors=s.n_neighbors,
                     min_dist=s.min_dist, seed=s.umap_seed)
            for dims in (2, 3)
        ]  # fmt: skip
        out.append((fspec, umaps))
    return out


def compute_representations(spec: RepresentationsSpec, ctx: Context) -> tuple[dict, dict]:
    """Aligned embeddings and every number beside them, for all runs of one objective."""
    s = spec.settings
    feats, emb2, emb3, trust2, trust3 = [], [], [], [], []
    for i, (fspec, umaps) in enumerate(run_parts(spec)):
        ctx.progress(spec.label, i, len(spec.runs))
        feats.append(ctx.get(fspec).read("features.npz"))
        for uspec, embs, trusts in zip(umaps, (emb2, emb3), (trust2, trust3), strict=True):
            entry = ctx.get(uspec)
            embs.append(entry.read("embedding.npz")["embedding"])
            trusts.append(entry.summary["trustworthiness"])
    ctx.progress(spec.label, len(spec.runs), len(spec.runs))
    labels = feats[0]["labels"]
    n_classes = int(labels.max()) + 1
    aligned2 = np.stack([procrustes_align(e, emb2[0]) for e in emb2])
    aligned3 = np.stack([procrustes_align(e, emb3[0]) for e in emb3])
    preds = np.stack([f["preds"] for f in feats])
    correct = preds == labels[None]
    cka = cka_matrix([f["features"] for f in feats])
    dense_of_seed = {r.seed: i for i, r in enumerate(spec.runs) if r.sparsity.method == "dense"}
    runs_out = []
    for i, (run, f) in enumerate(zip(spec.runs, feats, strict=True)):
        ref = dense_of_seed.get(run.seed, 0)
        lost = correct[ref] & ~correct[i]
        gained = ~correct[ref] & correct[i]
        class_acc = [float(correct[i][labels == c].mean()) for c in range(n_classes)]
        dense_acc = [float(correct[ref][labels == c].mean()) for c in range(n_classes)]
        runs_out.append(
            {
                "label": run.label,
                "key": spec_key(run),
                "method": run.sparsity.method,
                "sparsity": run.sparsity.sparsity,
                "seed": run.seed,
                "objective": run.train.objective,
                "subset_acc": float(correct[i].mean()),
                "trustworthiness_2d": trust2[i],
                "trustworthiness_3d": trust3[i],
                **knn_record(f["features"], labels, s.knn_k),
                "silhouette": _silhouette(f["features"], labels),
                "geometry": {
                    k: per_class(f[k], labels, n_classes) for k in ("angle", "norm", "margin")
                },
                "geometry_mean": {k: float(np.mean(f[k])) for k in ("angle", "norm", "margin")},
                "class_acc": class_acc,
                "class_acc_delta": [a - b for a, b in zip(class_acc, dense_acc, strict=True)],
                "flips_vs": spec.runs[ref].label,
                "flips_lost": int(lost.sum()),
                "flips_gained": int(gained.sum()),
                "flips_lost_per_class": np.bincount(labels[lost], minlength=n_classes).tolist(),
                "flips_gained_per_class": np.bincount(labels[gained], minlength=n_classes).tolist(),
            }
        )
    pies = _pies(spec.runs, preds)
    data = load(spec.runs[0].data)
    images = (
        (data.test_x[torch.as_tensor(feats[0]["indices"])] * 255).round().to(torch.uint8).numpy()
    )
    arrays = {
        "embedding_2d": aligned2,
        "embedding_3d": aligned3,
        "preds": preds,
        "labels": labels,
        "indices": feats[0]["indices"],
        "images": images,
        "angle": np.stack([f["angle"] for f in feats]),
        "norm": np.stack([f["norm"] for f in feats]),
        "margin": np.stack([f["margin"] for f in feats]),
        "cka": cka.astype(np.float32),
    }
    doc = {
        "runs": runs_out,
        "labels_of_runs": [r.label for r in spec.runs],
        "cka": cka.tolist(),
        "pies": {k: v.tolist() for k, v in pies.items()},
        "pie_counts": {k: int(len(v)) for k, v in pies.items()},
        "classes": list(data.info.classes),
        "reference": spec.runs[0].label,
        "settings": {
            "subset_size": s.subset_size,
            "layer": s.layer,
            "n_neighbors": s.n_neighbors,
            "min_dist": s.min_dist,
        },
    }
    return {"embeddings.npz": arrays, "summary.json": doc}, {"runs": len(spec.runs)}


def _silhouette(feats: np.ndarray, labels: np.ndarray) -> float:
    """Silhouette score of the features by class (NaN when undefined)."""
    from sklearn.metrics import silhouette_score

    if len(np.unique(labels)) < 2:
        return float("nan")
    return float(silhouette_score(feats, labels))


def _pies(runs: tuple[RunSpec, ...], preds: np.ndarray) -> dict[str, np.ndarray]:
    """Pruning-identified exemplars per (method, sparsity) with at least 2 seeds (subset positions)."""
    groups: dict[tuple, list[int]] = {}
    for i, r in enumerate(runs):
        groups.setdefault((r.sparsity.method, r.sparsity.sparsity), []).append(i)
    dense = groups.get(("dense", 0.0), [])
    out = {}
    if len(dense) < 2:
        return out
    dense_modal = modal(preds[dense])
    for (method, sparsity), members in groups.items():
        if method == "dense" or len(members) < 2:
            continue
        out[f"{method} {100 * sparsity:g}%"] = np.flatnonzero(modal(preds[members]) != dense_modal)
    return out


def summarize_representations(study: Study, store: Any) -> list[dict]:
    """The ``representations`` section of ``show --json`` (one entry per objective x setting)."""
    out = []
    for spec in representation_specs(study):
        item: dict = {
            "objective": spec.runs[0].train.objective,
            "setting_label": setting_label(spec.runs[0].setting),  # "" without axes
            **status_record(spec, store),
        }
        if item["status"] == "cached":
            doc = get_result(spec, store=store, compute=False).read("summary.json")
            keep = (
                "label",
                "method",
                "sparsity",
                "seed",
                "flips_vs",
                "trustworthiness_2d",
                "trustworthiness_3d",
                "knn_acc",
                "silhouette",
                "geometry_mean",
                "flips_lost",
                "flips_gained",
                "flips_lost_per_class",
                "class_acc_delta",
            )
            item.update(
                runs=[
                    {k: r[k] for k in keep}
                    | ({"knn_acc_reason": r["knn_acc_reason"]} if "knn_acc_reason" in r else {})
                    for r in doc["runs"]
                ],
                cka={"labels": doc["labels_of_runs"], "matrix": doc["cka"]},
                pie_counts=doc["pie_counts"],
                reference=doc["reference"],
            )
        out.append(item)
    return out


def knn_record(feats: np.ndarray, labels: np.ndarray, k: int) -> dict:
    """``{"knn_acc": value}``, or ``None`` with the stated reason when no split exists.

    A subset in which some class has a single sample has no stratified split:
    that is said (``knn_acc_reason``), never a silent NaN. A ``k`` larger than a
    training fold is refused when the study loads.
    """
    try:
        return {"knn_acc": knn_cv_accuracy(feats, labels, k)}
    except ValueError as err:
        if "2 samples" not in str(err):
            raise
        return {"knn_acc": None, "knn_acc_reason": str(err)}


def representation_fetches(spec: RepresentationsSpec) -> list[FeaturesSpec | UmapSpec]:
    """The features and 2-D/3-D UMAP of every run, one job each (they fan out per run)."""
    return [part for fspec, umaps in run_parts(spec) for part in (fspec, *umaps)]


ANALYSIS = Analysis(
    name="representations",
    kinds=(
        Kind("features", FeaturesSpec, compute_features, files={"features.npz": object}),
        Kind("umap", UmapSpec, compute_umap, files={"embedding.npz": object}),
        Kind(
            "representations",
            RepresentationsSpec,
            compute_representations,
            fetches=representation_fetches,
            files={
                "embeddings.npz": object,
                "summary.json": ("runs", "labels_of_runs", "cka", "pie_counts", "reference"),
            },
        ),
    ),
    specs=representation_specs,
    summarize=summarize_representations,
    settings=RepresentationSettings,
)
