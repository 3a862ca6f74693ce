"""``python -m dashboard.serve run dashboard/app.py ...``: streamlit, with our modules imported first.

This is the server process itself; :mod:`dashboard.server` starts it. Streamlit
imports what a page needs on the first script run of the server, so the first
visitor waited for torch and every analysis module (about 7 s on a laptop).
Importing them here, before the server starts, moves that wait to start-up, where
``prunescope demo`` overlaps it with checking the study's cache. The arguments are
streamlit's own (``streamlit run ...``).
"""

from __future__ import annotations

import sys


def main() -> None:
    """Filter the known warnings, import the backend and the figures, then run streamlit."""
    from dashboard import known_warnings
    from dashboard.thirdparty import streamlit_main

    known_warnings.install()
    import analysis.plan  # noqa: F401  (torch and every analysis module)
    import dashboard.figures.catalogue  # noqa: F401  (plotly and every figure module)

    run = streamlit_main()
    sys.argv = ["streamlit", *sys.argv[1:]]
    sys.exit(run())


if __name__ == "__main__":
    main()
