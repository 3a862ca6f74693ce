"""Static images (PNG, SVG) of plotly figures, rendered by kaleido through the system's Chromium.

kaleido drives a Chrome or Chromium installed on the system; :func:`find_browser`
looks for one (``$BROWSER_PATH`` first, as kaleido's own lookup does). One
browser serves a whole export: it takes seconds to start, a figure then renders in
a fraction of a second.

Nothing here can hang the command that called it. The browser's start is waited
for at most :data:`BROWSER_START_TIMEOUT` seconds (``$PRUNESCOPE_START_TIMEOUT``
overrides it), each figure at most :data:`RENDER_TIMEOUT`, and the browser is
ended with its whole process group however the session ends (finished, failed,
timed out or interrupted with Ctrl+C).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import plotly.graph_objects as go

from analysis.errors import PrunescopeError, SpecError
from dashboard.export.common import Progress, no_progress
from dashboard.external import START_TIMEOUT_ENV, StartTimeout, end_group, start_timeout
from dashboard.figures.items import FigureItem
from dashboard.figures.theme import NORMAL
from dashboard.thirdparty import browser_not_found_errors, browser_process, chromium_search

#: Executable names of Chromium and Chrome, looked up on PATH in this order.
BROWSER_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "chrome")
#: Pixel width of static images: figures set their own height, the width is the page's.
IMAGE_WIDTH = {"normal": 1100, "presentation": 1400}
IMAGE_SCALE = 2  # PNG pixels per CSS pixel: sharp on slides and high-DPI screens
RENDER_TIMEOUT = 120.0  # seconds per figure
BROWSER_START_TIMEOUT = 60.0  # seconds from starting the browser to its first answer
CLOSE_TIMEOUT = 15.0  # seconds for the browser to close politely before it is killed

#: (label, figure, format, width in CSS pixels): one image to render.
Job = tuple[str, go.Figure, str, int]
#: What became of one job: its bytes, or the one-line reason it has none.
Outcome = bytes | PrunescopeError


# -- the browser ---------------------------------------------------------------------


def _is_exe(path: str | os.PathLike) -> bool:
    """True when ``path`` is an executable file."""
    return Path(path).is_file() and os.access(path, os.X_OK)


def find_browser() -> str | None:
    """A Chrome/Chromium executable: ``$BROWSER_PATH`` if set, else PATH, else kaleido's own.

    ``$BROWSER_PATH`` is the override kaleido (through choreographer) honours; when
    it is set but names no executable, no other browser is tried, so the user sees
    their setting is wrong. Otherwise the system Chromium (Debian's ``chromium``)
    is preferred, then Chrome, then the one ``kaleido.get_chrome`` downloads.
    """
    override = os.environ.get("BROWSER_PATH")
    if override is not None:
        return override if _is_exe(override) else None
    for name in BROWSER_NAMES:
        found = shutil.which(name)
        if found and _is_exe(found):
            return found
    search = chromium_search()
    try:
        found = search() if search is not None else None
    except Exception:  # noqa: BLE001 - a best-effort search; no browser is reported below
        return None
    return found if found and _is_exe(found) else None


def no_browser_message() -> str:
    """Why static images cannot be made here, and how to fix it."""
    override = os.environ.get("BROWSER_PATH")
    where = f" ($BROWSER_PATH={override!r} is not an executable)" if override is not None else ""
    return (
        f"static images (PNG, SVG, PPTX) need Chromium or Chrome, and none was found{where}. "
        "Install one (Debian/Ubuntu: `apt-get install chromium`), or let kaleido download "
        "Chrome: `uv run python -c 'import kaleido; kaleido.get_chrome_sync()'`, or set "
        "BROWSER_PATH to a Chrome/Chromium executable. The HTML report needs no browser."
    )


def require_browser() -> str:
    """The browser for static images, or a PrunescopeError saying how to get one."""
    found = find_browser()
    if found is None:
        raise PrunescopeError(no_browser_message())
    return found


# -- one kaleido session -------------------------------------------------------------


def _one_line(err: BaseException) -> str:
    """``Type: first line of the message``."""
    return f"{type(err).__name__}: {(str(err).strip().splitlines() or [''])[0]}".rstrip(": ")


def _opts(fig: go.Figure, fmt: str, width: int) -> dict:
    """kaleido's layout options: the figure's own height, the given width."""
    opts = {"format": fmt, "width": width, "height": fig.layout.height or NORMAL.height}
    if fmt == "png":
        opts["scale"] = IMAGE_SCALE
    return opts


async def _open(k, browser: str, timeout: float) -> None:
    """Start the browser and wait, at most ``timeout`` seconds, for it to answer.

    Raises:
        StartTimeout: it started but did not answer in time.
        PrunescopeError: it could not be started (the reason in one line).
    """
    opening = asyncio.ensure_future(k.open())
    try:
        done, _ = await asyncio.wait({opening}, timeout=timeout)
    finally:  # timed out, or cancelled by Ctrl+C: stop waiting for it either way
        if not opening.done():
            opening.cancel()
            with contextlib.suppress(Exception, asyncio.CancelledError):
                await opening
    if not done:
        raise StartTimeout(
            f"the browser {browser} started but did not answer within {timeout:g} s, so no "
            f"static image was made (it was stopped; {START_TIMEOUT_ENV} sets the wait)"
        )
    if (err := opening.exception()) is not None:
        if isinstance(err, browser_not_found_errors()):
            raise PrunescopeError(no_browser_message()) from err
        raise PrunescopeError(f"the browser {browser} failed to start: {_one_line(err)}") from err


async def _shut(k, *, polite: bool) -> None:
    """End the session's browser: close it (``polite``: first ask it to), then end its group."""
    proc = browser_process(k)
    if proc is not None and not polite:
        # It may not answer a polite close at all; and choreographer's wrapper takes
        # 5 s to give in to SIGTERM, so a short grace, then SIGKILL.
        end_group(proc, grace=0.5)
    with contextlib.suppress(Exception, asyncio.CancelledError):
        await asyncio.wait_for(k.close(), CLOSE_TIMEOUT)  # also removes its temp folders
    if proc is not None:
        end_group(proc)  # whatever outlived the close (renderer processes)


async def _render_one(k, job: Job, browser: str) -> Outcome:
    """One image, or the one-line reason it could not be made."""
    label, fig, fmt, width = job
    proc = browser_process(k)
    if proc is not None and proc.poll() is not None:
        return PrunescopeError(f"the browser exited (status {proc.returncode}) before {label}")
    try:
        # kaleido bounds each figure with RENDER_TIMEOUT itself; this bounds its bookkeeping too.
        render = k.calc_fig(fig, opts=_opts(fig, fmt, width))
        return await asyncio.wait_for(render, RENDER_TIMEOUT + CLOSE_TIMEOUT)
    except TimeoutError:
        return PrunescopeError(f"rendering {fmt} {label} took longer than {RENDER_TIMEOUT:g} s")
    except Exception as err:  # noqa: BLE001 - kaleido/choreographer raise many types
        return PrunescopeError(f"rendering {fmt} {label} with {browser} failed: {_one_line(err)}")


async def _session(
    jobs: Sequence[Job],
    browser: str,
    timeout: float,
    progress: Progress,
    offset: int,
    total: int,
    landed: Callable[[int, Outcome], None],
) -> None:
    """Start one browser, render every job in order (``landed`` hears each), end the browser."""
    import kaleido

    # mathjax=False: kaleido would fetch MathJax from a CDN, and no figure uses LaTeX.
    k = kaleido.Kaleido(n=1, timeout=RENDER_TIMEOUT, mathjax=False, path=browser)
    finished = False
    try:
        await _open(k, browser, timeout)
        for i, job in enumerate(jobs):
            progress(f"{job[2]} {job[0]}", offset + i, total)
            landed(i, await _render_one(k, job, browser))
        finished = True
    finally:
        await _shut(k, polite=finished)


def _run_async(make: Callable[[], object]) -> object:
    """Run the coroutine ``make()`` to completion, also from a thread with a running loop."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(make())
    with ThreadPoolExecutor(max_workers=1) as pool:  # e.g. inside a notebook's event loop
        return pool.submit(lambda: asyncio.run(make())).result()


def render_each(
    jobs: Sequence[Job],
    *,
    browser: str | None = None,
    progress: Progress = no_progress,
    offset: int = 0,
    total: int | None = None,
    landed: Callable[[int, Outcome], None] | None = None,
) -> list[Outcome]:
    """Render (label, figure, format, width) jobs in one kaleido session; outcomes in job order.

    A job that fails (or takes longer than :data:`RENDER_TIMEOUT`) gives its
    one-line error in place of its bytes, and the others are still rendered;
    ``landed(index, outcome)`` is called as each one ends, so its caller can keep
    what is done before the rest.

    Raises:
        PrunescopeError: no browser, or it failed to start (then nothing was rendered).
        StartTimeout: the browser did not answer within its start deadline.
    """
    if not jobs:
        return []
    browser = browser or require_browser()
    timeout = start_timeout(BROWSER_START_TIMEOUT)
    outcomes: list[Outcome] = []

    def keep(index: int, outcome: Outcome) -> None:
        """Remember an outcome and pass it on."""
        outcomes.append(outcome)
        if landed is not None:
            landed(index, outcome)

    total = total if total is not None else len(jobs)
    try:
        _run_async(lambda: _session(jobs, browser, timeout, progress, offset, total, keep))
    except PrunescopeError:
        raise
    except browser_not_found_errors() as err:
        raise PrunescopeError(no_browser_message()) from err
    except Exception as err:  # kaleido/choreographer raise many types; say it in one line
        raise PrunescopeError(
            f"rendering static images with {browser} failed: {_one_line(err)}"
        ) from err
    return outcomes


def render(
    jobs: Sequence[Job],
    *,
    browser: str | None = None,
    progress: Progress = no_progress,
    offset: int = 0,
    total: int | None = None,
) -> list[bytes]:
    """Render jobs in one kaleido session and return their bytes in job order.

    Raises:
        PrunescopeError: the first job that failed, or the browser's failure to start.
    """
    outcomes = render_each(jobs, browser=browser, progress=progress, offset=offset, total=total)
    for outcome in outcomes:
        if isinstance(outcome, PrunescopeError):
            raise outcome
    return outcomes  # type: ignore[return-value]


def static_images(
    items: Sequence[FigureItem],
    fmt: str,
    *,
    width: int = IMAGE_WIDTH["normal"],
    browser: str | None = None,
    progress: Progress = no_progress,
) -> dict[str, bytes]:
    """Every item as ``fmt`` ("png" or "svg") through kaleido, by item name, in one session."""
    if fmt not in ("png", "svg"):
        raise SpecError("fmt", "'png' or 'svg'", fmt, owner="static_images")
    images = render(
        [(item.name, item.figure, fmt, width) for item in items],
        browser=browser,
        progress=progress,
    )
    return {item.name: image for item, image in zip(items, images, strict=True)}
