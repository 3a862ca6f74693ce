"""Built figures, remembered by what they were built from: a rerun redraws, not rebuilds.

Building a plotly figure is most of a page's server time (validation of every
property it sets: 10 to 100 ms a figure), and a rerun (a widget moved, another
page opened and this one reopened) builds the same figures from the same results.
:func:`figure` calls a builder from :mod:`dashboard.figures` once per distinct
input and hands back the same figure afterwards.

The key is a hash of the builder's qualified name and the pickled arguments, so
equal inputs (the same runs, results, theme and options) give the same figure and
any change in them (a new result in the store, another filter) gives a new one; a
builder's output depends on its arguments only (figure functions are pure: no
streamlit, no globals). Arguments that do not pickle are never remembered.

Why not ``st.cache_data``: it pickles the result on every hit (a figure's deep
copy costs about what building it does), and it hashes arguments by walking
them in Python. The figures held here are shared by all sessions and must not be
changed by whoever draws them: pages pass them straight to ``st.plotly_chart``
(which copies them to JSON); a page that edits a figure builds its own.
"""

from __future__ import annotations

import hashlib
import pickle
import threading
from collections import OrderedDict
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")

#: Most figures remembered (least recently used first out): about ten pages'
#: worth for a few sessions. A 3-D surface is the largest, at a few MB.
MOST = 96

_figures: OrderedDict[bytes, Any] = OrderedDict()
_lock = threading.Lock()
_counts = {"hits": 0, "misses": 0}


def key(builder: Callable[..., Any], args: tuple, kwargs: dict) -> bytes | None:
    """The memo key of ``builder(*args, **kwargs)``, or None if the arguments do not pickle.

    A blake2b digest of the builder's module and qualified name and of the pickled
    (positional, sorted keyword) arguments: equal bytes mean equal inputs.
    """
    try:
        payload = pickle.dumps((args, sorted(kwargs.items())), protocol=pickle.HIGHEST_PROTOCOL)
    except (pickle.PicklingError, TypeError, AttributeError):
        return None
    h = hashlib.blake2b(digest_size=20)
    h.update(f"{builder.__module__}.{builder.__qualname__}".encode())
    h.update(payload)
    return h.digest()


def figure(builder: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """``builder(*args, **kwargs)``, built once per distinct input (see the module's note).

    The result is shared: draw it, never change it. Exceptions from ``builder``
    propagate and nothing is remembered.
    """
    k = key(builder, args, kwargs)
    if k is None:
        return builder(*args, **kwargs)
    with _lock:
        if k in _figures:
            _figures.move_to_end(k)
            _counts["hits"] += 1
            return _figures[k]
    built = builder(*args, **kwargs)
    with _lock:
        _counts["misses"] += 1
        _figures[k] = built
        _figures.move_to_end(k)
        while len(_figures) > MOST:
            _figures.popitem(last=False)
    return built


def stats() -> dict[str, int]:
    """Hits, misses and figures held (for tests and the page benchmark)."""
    with _lock:
        return {**_counts, "held": len(_figures)}


def clear() -> None:
    """Forget every figure (tests)."""
    with _lock:
        _figures.clear()
        _counts.update(hits=0, misses=0)
