"""The private APIs the executor relies on, each looked up here only, each with a fallback.

- ``concurrent.futures.ProcessPoolExecutor._processes`` (pid -> Process): which
  worker of a broken pool died by itself, so only its job counts an attempt.
  Fallback: every job lost with the pool counts one.
- Ray's ``_node_ip_address`` keyword of ``ray.init`` (read from ``**kwargs`` in
  ``ray/_private/worker.py``): a private Ray's node is 127.0.0.1, not the
  machine's outward address. Fallback: none needed when ``ray.init`` ignores it,
  since :data:`LOCAL_ONLY_ENV` already binds the services to loopback.
- ``ray._private.ray_constants.ENABLE_RAY_CLUSTER``: the constant Ray read
  :data:`LOCAL_ONLY_ENV` into when it was imported before we set it. Fallback:
  set the environment variable only (effective for a Ray imported later).

``tests/test_private_apis.py`` fails when the locked versions lose one of them;
``pyproject.toml`` bounds those versions.
"""

from __future__ import annotations

import sys
from typing import Any

#: Ray's switch for a single-machine Ray (named for macOS and Windows, where it is the
#: default): "0" makes every Ray service bind 127.0.0.1 instead of all interfaces.
LOCAL_ONLY_ENV = "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"
#: The module whose constant Ray reads ``LOCAL_ONLY_ENV`` into at import.
RAY_CONSTANTS = "ray._private.ray_constants"


def pool_processes(pool: Any) -> dict[int, Any]:
    """The worker processes of a ``ProcessPoolExecutor`` by pid ({} when it keeps none)."""
    return dict(getattr(pool, "_processes", None) or {})


def ray_local_only_after_import() -> bool:
    """Tell an already-imported Ray it is a single-machine Ray; False when it was not imported."""
    constants = sys.modules.get(RAY_CONSTANTS)
    if constants is None or not hasattr(constants, "ENABLE_RAY_CLUSTER"):
        return False
    constants.ENABLE_RAY_CLUSTER = False
    return True


def ray_loopback_node() -> dict[str, str]:
    """The private ``ray.init`` keyword that makes this node's address 127.0.0.1."""
    return {"_node_ip_address": "127.0.0.1"}
