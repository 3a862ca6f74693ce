"""Plain readers of a study's cached results: no streamlit, no computing.

The dashboard's pages read through :mod:`dashboard.data`, which wraps these in
``st.cache_data``; the export (``prunescope export``) and tests use them
directly. Every method returns None when the result is not in the store, so a
caller can say what is missing instead of failing.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from analysis import api
from analysis.errors import PrunescopeError
from analysis.sparsity import get_method
from analysis.sparsity.finetune import PruneTrainedDense
from analysis.specs import RunSpec, spec_key
from analysis.store import Store
from analysis.study import StudySpec


@dataclass(frozen=True)
class Reader:
    """Read-only access to the results of one study in one store."""

    study: StudySpec
    store: Store
    _lineages: dict = field(default_factory=dict, init=False, repr=False, compare=False)

    def _run(self, key: str) -> RunSpec | None:
        """The study's run with content key ``key`` (None if the study has none)."""
        return next((s for s in self.study.runs() if spec_key(s) == key), None)

    def history(self, key: str) -> list[dict] | None:
        """The per-epoch history of the run with content key ``key``."""
        spec = self._run(key)
        if spec is None:
            return None
        try:
            return api.get(spec, store=self.store, compute=False).history
        except PrunescopeError:
            return None

    def lineage(self, key: str) -> list[dict] | None:
        """The trainings that made the run ``key``, first to last: dense training, then each phase.

        Follows each run's first prerequisite that is a run of the same seed
        (``Method.prerequisites``: magnitude's is the dense run, lottery round r's
        round r - 1, round 1's the dense run) and stops at a run with none. Each
        entry is the run's identity (``RunSpec.identity``, with ``requested_sparsity``)
        plus ``key``, ``phase`` (a short name: "dense training", "prune + fine-tune",
        "round 2", ...), ``start_step`` (the global optimizer step its training
        resumes from: a lottery round's rewind step, else 0) and ``history`` (its
        per-epoch records, whose ``step`` counts from ``start_step``).

        Returns None when the run is not in the study or not computed; a chain
        whose earlier entry is missing from the store starts after the gap (and is
        not cached). Complete chains are cached per key (entries never change).
        """
        if key in self._lineages:
            return self._lineages[key]
        spec = self._run(key)
        chain: list[dict] = []
        while spec is not None:
            try:
                history = api.get(spec, store=self.store, compute=False).history
            except PrunescopeError:
                break
            chain.insert(0, _entry(spec, history))
            spec = _parent(spec)
        if not chain or chain[-1]["key"] != key:
            return None
        if spec is None:
            self._lineages[key] = chain
        return chain

    def histories(self, keys: list[str]) -> dict[str, list[dict]]:
        """Histories of the cached runs among ``keys``."""
        out = {}
        for key in keys:
            h = self.history(key)
            if h is not None:
                out[key] = h
        return out

    def representations(self, objective: str, setting: str = "") -> dict | None:
        """The arrays of one objective's ``representations`` entry (of the setting labelled
        ``setting`` in a sweep, e.g. ``"width 64"``), its summary under ``"summary"``."""
        from analysis.representations import representation_specs
        from analysis.specs import setting_label

        spec = next(
            (
                s
                for s in representation_specs(self.study)
                if s.runs[0].train.objective == objective
                and setting_label(s.runs[0].setting) == setting
            ),
            None,
        )
        if spec is None:
            return None
        try:
            entry = api.get(spec, store=self.store, compute=False)
        except PrunescopeError:
            return None
        arrays = dict(entry.read("embeddings.npz"))
        return {**arrays, "summary": entry.read("summary.json")}

    def corruption_sample(self, position: int) -> dict | None:
        """One test sample under every corruption x severity: images (K, S, C, H, W), clean, ..."""
        from analysis.robustness import robustness_specs

        specs = robustness_specs(self.study)
        if not specs:
            return None
        spec = specs[0].corrupted
        try:
            arrays = api.get(spec, store=self.store, compute=False).read("corrupted.npz")
        except PrunescopeError:
            return None
        labels = np.asarray(arrays["labels"])
        if not len(labels):
            return None
        position = min(max(int(position), 0), len(labels) - 1)
        return {
            "images": arrays["images"][:, :, position],
            "clean": arrays["clean"][position],
            "label": int(labels[position]),
            "names": list(spec.names),
            "severities": list(spec.severities),
            "count": int(len(labels)),
        }

    def surface(self, key: str) -> dict | None:
        """The arrays (``surface.npz``: x, y, loss, acc, coords) of a landscape or plane entry.

        ``key`` is the content key of a record in the summary's ``landscape`` section.
        """
        from analysis.landscape import LandscapeSpec, PlaneSpec, landscape_specs

        spec = next(
            (
                s
                for s in landscape_specs(self.study)
                if isinstance(s, LandscapeSpec | PlaneSpec) and spec_key(s) == key
            ),
            None,
        )
        if spec is None:
            return None
        try:
            arrays = api.get(spec, store=self.store, compute=False).read("surface.npz")
        except PrunescopeError:
            return None
        return {name: np.asarray(arrays[name]) for name in arrays}


def _parent(spec: RunSpec) -> RunSpec | None:
    """The first prerequisite of ``spec`` that is a run of the same seed (None if none)."""
    before = get_method(spec.sparsity.method).prerequisites(spec)
    return next((p for p in before if isinstance(p, RunSpec) and p.seed == spec.seed), None)


def _phase(spec: RunSpec, root: bool) -> str:
    """The short name of the training that made ``spec`` (``root``: from initialisation)."""
    method = get_method(spec.sparsity.method)
    if method.name == "dense":
        return "dense training"
    if isinstance(method, PruneTrainedDense):
        return "prune + fine-tune"
    if method.name == "lottery":
        return f"round {spec.sparsity.opt('rounds')}"
    return f"{method.name} training" if root else method.name


def _entry(spec: RunSpec, history: list[dict]) -> dict:
    """One link of a lineage (see :meth:`Reader.lineage`)."""
    return {
        **spec.identity(),
        "key": spec_key(spec),
        "requested_sparsity": spec.sparsity.sparsity,
        "phase": _phase(spec, root=_parent(spec) is None),
        "start_step": int(spec.sparsity.opt("rewind_step", 0)),
        "history": history,
    }
