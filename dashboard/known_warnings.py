"""Known-harmless third-party warnings, filtered by exact message, category and module.

Only warnings we have traced to their source and judged harmless are listed;
anything else still shows. Installed by the ``prunescope`` command and by the
dashboard's server process (:mod:`dashboard.serve`), and passed to the processes
they start through ``PYTHONWARNINGS`` (process-pool workers do not inherit
filters).

- ``torch.jit.script`` is deprecated: torch >= 2.10 warns whenever
  ``torch.jit.script`` runs, and ``torch.func.jvp`` (the Hessian-vector products of
  the landscape's sharpness, ``analysis/landscape.py``) imports
  ``torch._decomp.decompositions_for_jvp`` on first use, which scripts its
  decompositions. Nothing of ours uses TorchScript; the warning landed in the
  middle of ``prunescope demo``'s progress bars.
"""

from __future__ import annotations

import os
import re
import warnings
from collections.abc import MutableMapping
from dataclasses import dataclass


@dataclass(frozen=True)
class KnownWarning:
    """One warning to ignore: the start of its message, its category, the module that warns."""

    message: str
    category: type[Warning]
    module: str

    def install(self) -> None:
        """Ignore this warning in this process (in front of any other filter)."""
        warnings.filterwarnings(
            "ignore",
            message=re.escape(self.message),
            category=self.category,
            module=re.escape(self.module) + r"\Z",
        )

    def option(self) -> str:
        """This filter as a ``-W`` / ``PYTHONWARNINGS`` entry (message matched literally)."""
        return f"ignore:{self.message}:{self.category.__name__}:{self.module}"


KNOWN = (
    KnownWarning(
        message="`torch.jit.script` is deprecated.",
        category=FutureWarning,
        module="torch.jit._script",
    ),
)


def install(environ: MutableMapping[str, str] | None = os.environ) -> None:
    """Ignore every known warning here, and (``environ``) in the processes started from here."""
    for known in KNOWN:
        known.install()
    if environ is None:
        return
    present = [e for e in environ.get("PYTHONWARNINGS", "").split(",") if e]
    added = [k.option() for k in KNOWN if k.option() not in present]
    if added:
        # Python applies PYTHONWARNINGS entries in order, the last one winning: ours go
        # first, so a user's own setting still has the last word.
        environ["PYTHONWARNINGS"] = ",".join(added + present)
