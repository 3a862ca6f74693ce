"""``python -m dashboard.serve run dashboard/app.py ...``: streamlit, warmed up beside its start.

This is the server process itself; :mod:`dashboard.server` starts it. Streamlit
imports what a page needs on the first script run of the server, so the first
visitor waited for torch and every analysis module (about 6 s on a laptop), then
for the study's summary. Here a thread (:mod:`dashboard.warmup`) does both while
the server starts and answers and the browser loads streamlit's frontend; the
first script run waits for it. The arguments are streamlit's own
(``streamlit run ...``).
"""

from __future__ import annotations

import sys


def warm() -> None:
    """Import the backend and the figures, then read the study's summary into the cache
    (the server log says how long each took)."""
    import logging
    import time

    start = time.perf_counter()
    import analysis.plan  # noqa: F401  (torch and every analysis module)
    import dashboard.figures.catalogue  # noqa: F401  (plotly and every figure module)
    from dashboard import warmup

    imported = time.perf_counter()
    read = warmup.prewarm()
    logging.getLogger("dashboard.warmup").warning(
        "warm-up: imports %.1f s, summary %s", imported - start,
        f"{time.perf_counter() - imported:.1f} s" if read else "not read",
    )  # fmt: skip


def main() -> None:
    """Filter the known warnings, start the warm-up, then run streamlit."""
    from dashboard import known_warnings, warmup
    from dashboard.thirdparty import streamlit_main

    known_warnings.install()
    warmup.start(warm)
    run = streamlit_main()
    sys.argv = ["streamlit", *sys.argv[1:]]
    sys.exit(run())


if __name__ == "__main__":
    main()
