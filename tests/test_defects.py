"""Measured defects stay fixed: silent nulls, asymmetric CKA, stale keys (issue-level regressions)."""

from __future__ import annotations

import dataclasses
from typing import ClassVar

import numpy as np
import pytest

from analysis.errors import SpecError
from analysis.representations import (
    RepresentationSettings,
    RepresentationsSpec,
    cka_matrix,
    knn_cv_accuracy,
    linear_cka,
)
from analysis.specs import RunSpec, canonical_json, spec_key
from analysis.study import parse_study


def test_cka_is_float64_symmetric_with_a_unit_diagonal():
    rng = np.random.default_rng(0)
    feats = [rng.normal(size=(500, d)).astype(np.float32) * 1e3 for d in (64, 32, 128)]
    feats[1] = feats[0][:, :32] + 0.1 * feats[1]
    m = cka_matrix(feats)
    assert m.dtype == np.float64
    assert np.array_equal(m, m.T)
    assert np.allclose(np.diag(m), 1.0)
    assert linear_cka(feats[0], feats[0]) == pytest.approx(1.0, abs=1e-12)


def test_knn_larger_than_a_training_fold_is_refused_when_the_study_loads():
    with pytest.raises(SpecError, match=r"analyses\.representations\.knn_k.*\[1, 80\]"):
        parse_study(
            'seeds = [0]\n[[methods]]\nmethod = "dense"\n'
            "[analyses.representations]\nsubset_size = 100\nknn_k = 100\n"
        )
    assert RepresentationSettings(subset_size=100, knn_k=80).knn_k == 80


def test_knn_accuracy_is_a_number_or_an_error_never_nan():
    rng = np.random.default_rng(1)
    feats, labels = rng.normal(size=(100, 5)), np.repeat(np.arange(10), 10)
    assert 0.0 <= knn_cv_accuracy(feats, labels, k=10) <= 1.0
    with pytest.raises(ValueError, match="knn_k"):
        knn_cv_accuracy(feats, labels, k=95)
    with pytest.raises(ValueError, match="2 samples"):
        knn_cv_accuracy(feats[:11], np.r_[labels[:10], 9], k=1)


def test_a_spec_version_rekeys_that_kind_only():
    run = RunSpec()
    assert '"version"' not in canonical_json(run)  # pinned run keys are untouched
    spec = RepresentationsSpec(runs=(run,))
    assert '"versions":{"representations":2}' in canonical_json(spec)

    @dataclasses.dataclass(frozen=True)
    class V1:
        kind: ClassVar[str] = "toy"
        a: int = 1

    @dataclasses.dataclass(frozen=True)
    class V3(V1):
        version: ClassVar[int] = 3

    assert spec_key(V1()) != spec_key(V3())

    @dataclasses.dataclass(frozen=True)
    class Holder:
        kind: ClassVar[str] = "holder"
        inner: V1 = V1()

    assert spec_key(Holder(inner=V1())) != spec_key(Holder(inner=V3()))  # nesting re-keys too
