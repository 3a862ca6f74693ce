"""Numbers beside the embeddings: Procrustes alignment, linear CKA, k-NN accuracy, modal votes.

Pure numpy / scipy / scikit-learn functions of feature arrays, shared by the
``representations`` kind and its tests.
"""

from __future__ import annotations

import numpy as np


def procrustes_align(emb: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """Rotate/reflect and scale ``emb`` (N, k) onto ``reference`` (N, k) about its centroid."""
    from scipy.linalg import orthogonal_procrustes

    a = emb - emb.mean(0)
    b = reference - reference.mean(0)
    rotation, _ = orthogonal_procrustes(a, b)
    aligned = a @ rotation
    scale = np.linalg.norm(b) / max(np.linalg.norm(aligned), 1e-12)
    return (aligned * scale + reference.mean(0)).astype(np.float32)


def linear_cka(x: np.ndarray, y: np.ndarray) -> float:
    """Linear CKA (Kornblith et al. 2019) between features x: (N, D1) and y: (N, D2).

    Computed in float64: in float32 the N x D products lose enough to make the
    matrix asymmetric (by about 2e-7) and CKA(x, x) differ from 1.
    """
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    x = x - x.mean(0)
    y = y - y.mean(0)
    num = np.linalg.norm(y.T @ x, "fro") ** 2
    den = np.linalg.norm(x.T @ x, "fro") * np.linalg.norm(y.T @ y, "fro")
    return float(num / den) if den > 0 else 0.0


def cka_matrix(feats: list[np.ndarray]) -> np.ndarray:
    """Linear CKA between every pair of runs' features (each (N, D_i)): (R, R), symmetric, unit diagonal."""
    n = len(feats)
    out = np.eye(n)
    for i in range(n):
        for j in range(i + 1, n):
            out[i, j] = out[j, i] = linear_cka(feats[i], feats[j])
    return out


#: Folds of the k-NN cross-validation (fewer when a class has fewer samples).
KNN_FOLDS = 5


def knn_train_size(n: int) -> int:
    """Samples in the smallest training fold of a 5-fold split of ``n`` samples."""
    return n - -(-n // KNN_FOLDS)


def knn_cv_accuracy(feats: np.ndarray, labels: np.ndarray, k: int, seed: int = 0) -> float:
    """5-fold cross-validated k-NN accuracy of feats: (N, D) with labels: (N,) (scikit-learn).

    Raises:
        ValueError: ``k`` is larger than a training fold, or a class has fewer
            than 2 samples (no stratified split exists): never a silent NaN.
    """
    from sklearn.model_selection import StratifiedKFold, cross_val_score
    from sklearn.neighbors import KNeighborsClassifier

    folds = min(KNN_FOLDS, int(np.bincount(labels)[np.bincount(labels) > 0].min()))
    if folds < 2:
        raise ValueError("k-NN accuracy needs at least 2 samples of every class in the subset")
    if k > len(labels) - -(-len(labels) // folds):
        raise ValueError(
            f"knn_k = {k} exceeds the {len(labels) - -(-len(labels) // folds)} samples of a "
            f"training fold of {len(labels)}; lower [analyses.representations] knn_k"
        )
    cv = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    model = KNeighborsClassifier(n_neighbors=k)
    return float(cross_val_score(model, feats, labels, cv=cv, error_score="raise").mean())


def modal(preds: np.ndarray) -> np.ndarray:
    """Most frequent label per column of ``preds`` (S, N); ties go to the smallest label."""
    n_classes = int(preds.max()) + 1
    counts = np.stack([(preds == c).sum(0) for c in range(n_classes)])
    return counts.argmax(0)


def per_class(values: np.ndarray, labels: np.ndarray, n_classes: int) -> list[float]:
    """Mean of ``values`` (N,) per class."""
    return [
        float(values[labels == c].mean()) if (labels == c).any() else float("nan")
        for c in range(n_classes)
    ]
