"""plotly.js served once per browser session, for the HTML pages drawn in iframes.

The linked 3-D surfaces are a whole HTML page in an ``st.iframe`` (Streamlit's
own charts cannot link cameras). Inlining plotly.js there sent 4.6 MB on every
visit and every widget change. Instead the dashboard serves plotly.js as a static
file, ``app/static/plotly-<version>.min.js`` (Streamlit's
``server.enableStaticServing``, on in ``.streamlit/config.toml`` and in the
flags ``prunescope dashboard`` passes): the browser fetches it once and then
answers from its HTTP cache (the file has an ETag and a Last-Modified date, kept
from the installed package, so it is revalidated with a 304 at most). The
iframe's page names it in a ``<script src>``; nothing comes from the network, so
the dashboard works offline.

The file is copied at run time from the installed ``plotly`` package (the
version it ships, so the figures' JSON and plotly.js always match), into
``dashboard/static/`` beside ``app.py`` (the folder Streamlit serves; ignored
by git). The version in the name busts the browser's cache when plotly is
upgraded. Where the folder cannot be written (a read-only install), or static
serving is off, the page inlines plotly.js as before.
"""

from __future__ import annotations

import os
from pathlib import Path

from plotly.offline import get_plotlyjs_version

#: The folder Streamlit serves as ``app/static/`` (beside the main script, ``app.py``).
STATIC = Path(__file__).resolve().with_name("static")
#: Where Streamlit serves the static folder, under the server's base URL path.
ROUTE = "app/static"


def source() -> Path:
    """The ``plotly.min.js`` file the installed plotly package ships."""
    import plotly

    return Path(plotly.__file__).resolve().parent / "package_data" / "plotly.min.js"


def file_name() -> str:
    """``plotly-<plotly.js version>.min.js``: the served file's name."""
    return f"plotly-{get_plotlyjs_version()}.min.js"


def ensure(static: Path = STATIC) -> Path | None:
    """Copy plotly's ``plotly.min.js`` into ``static`` unless an identical copy is there.

    The copy keeps the package file's modification time (the HTTP Last-Modified
    the browser caches by). Returns the served file, or None when it cannot be
    written (a read-only folder: the page then inlines plotly.js).
    """
    src, target = source(), static / file_name()
    st = src.stat()
    try:
        if target.is_file() and target.stat().st_size == st.st_size:
            return target
        static.mkdir(parents=True, exist_ok=True)
        partial = target.with_name(f".{target.name}.{os.getpid()}.tmp")
        partial.write_bytes(src.read_bytes())
        os.utime(partial, ns=(st.st_atime_ns, st.st_mtime_ns))
        os.replace(partial, target)
    except OSError:
        return None
    return target


def url(base_url_path: str = "") -> str:
    """The served file's absolute URL path, e.g. ``/app/static/plotly-3.1.0.min.js``.

    ``base_url_path``: Streamlit's ``server.baseUrlPath`` ("" when served at the root).
    """
    base = base_url_path.strip("/")
    return "/" + "/".join(p for p in (base, ROUTE, file_name()) if p)
