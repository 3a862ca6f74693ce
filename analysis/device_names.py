"""Device names as a user writes them, read without importing torch (3 s on a laptop).

``prunescope demo`` starts the dashboard's server before anything else when the
device asked for is one every machine has (``auto`` or ``cpu``), so the server's
start-up overlaps the check of the store; :mod:`analysis.device` resolves names.
"""

from __future__ import annotations

import os
import re

ENV_VAR = "PRUNESCOPE_DEVICE"
PATTERN = re.compile(r"^(auto|cpu|mps|cuda(:\d+)?)$")
#: Names every machine can run: no check of the hardware is needed.
EVERYWHERE = ("auto", "cpu")


def requested(name: str | None = None) -> str:
    """The device name asked for: ``name``, else ``$PRUNESCOPE_DEVICE``, else ``auto``
    (stripped, lower case; not checked: :func:`analysis.device.resolve` does that)."""
    return (name or os.environ.get(ENV_VAR) or "auto").strip().lower()
