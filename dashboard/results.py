"""Plain readers of a study's cached results: no streamlit, no computing.

The dashboard's pages read through :mod:`dashboard.data`, which wraps these in
``st.cache_data``; the export (``prunescope export``) and tests use them
directly. Every method returns None when the result is not in the store, so a
caller can say what is missing instead of failing.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from analysis import api
from analysis.errors import PrunescopeError
from analysis.specs import spec_key
from analysis.store import Store
from analysis.study import StudySpec


@dataclass(frozen=True)
class Reader:
    """Read-only access to the results of one study in one store."""

    study: StudySpec
    store: Store

    def history(self, key: str) -> list[dict] | None:
        """The per-epoch history of the run with content key ``key``."""
        spec = next((s for s in self.study.runs() if spec_key(s) == key), None)
        if spec is None:
            return None
        try:
            return api.get(spec, store=self.store, compute=False).history
        except PrunescopeError:
            return None

    def histories(self, keys: list[str]) -> dict[str, list[dict]]:
        """Histories of the cached runs among ``keys``."""
        out = {}
        for key in keys:
            h = self.history(key)
            if h is not None:
                out[key] = h
        return out

    def representations(self, objective: str) -> dict | None:
        """The arrays of one objective's ``representations`` entry, summary under ``"summary"``."""
        from analysis.representations import representation_specs

        spec = next(
            (s for s in representation_specs(self.study) if s.runs[0].train.objective == objective),
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
