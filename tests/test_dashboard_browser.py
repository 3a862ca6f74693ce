"""The real dashboard in headless Chromium: `prunescope dashboard` serves, every page draws.

Starts the console command on a free loopback port against a pre-filled store,
opens each page, waits for its plotly charts, checks that no error or exception
is shown, and saves a screenshot per page to ``tests/artifacts/screenshots/``.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from tests._browser import CHROMIUM, CHROMIUM_ARGS, free_port, serving, settle
from tests.test_dashboard_app import prefill

PRUNESCOPE = str(Path(sys.executable).with_name("prunescope"))
SHOTS = Path(__file__).resolve().parent / "artifacts" / "screenshots"
#: (screenshot name, URL path, plotly charts the page must draw)
PAGES = [
    ("overview", "/", 3),
    ("compute", "/compute", 0),
    ("representations", "/representations", 5),
    ("representations-3d", "/representations?dims=3&color=flip", 4),  # + the linked 3-D scenes
    ("robustness", "/robustness", 5),
    ("connectivity", "/connectivity", 5),  # + the variance collapse of the REPAIR pairs
    ("connectivity-presentation", "/connectivity?present=1&barrier=accuracy_barrier", 5),
    ("landscape", "/landscape", 3),  # + the linked 3-D surfaces, in an iframe of their own
    ("landscape-contours", "/landscape?view=contour&z=log", 4),
    ("compare", "/compare", 8),
    ("export", "/export", 0),
]

pytestmark = [
    pytest.mark.browser,
    pytest.mark.slow,
    pytest.mark.skipif(
        not CHROMIUM.exists(), reason="needs Debian's chromium at /usr/bin/chromium"
    ),
]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """`prunescope dashboard` on the pre-filled small study; stopped (with its server) after."""
    root = tmp_path_factory.mktemp("browser")
    study, cache = prefill(root)
    cmd = [
        PRUNESCOPE,
        "dashboard",
        str(study),
        "--cache-dir",
        str(cache),
        "--port",
        str(free_port()),
    ]
    with serving(cmd, root / "dashboard.log") as url:
        yield url, study


@pytest.fixture(scope="module")
def browser():
    """Headless Chromium (Debian's, never a downloaded one) with a fresh temporary profile."""
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


def on_loopback(url: str) -> bool:
    """Whether a request stays on this machine (the server, or the page's own data)."""
    parts = urlsplit(url)
    return parts.scheme in ("data", "blob", "about") or parts.hostname in ("127.0.0.1", "localhost")


@pytest.mark.parametrize(("name", "path", "charts"), PAGES)
def test_page_renders_in_chromium(server, browser, name, path, charts):
    url, _ = server
    context = browser.new_context(viewport={"width": 1440, "height": 2000})
    page = context.new_page()
    console_errors: list[str] = []
    page.on("pageerror", lambda err: console_errors.append(str(err)))
    away: list[str] = []  # the dashboard works offline: nothing is fetched from elsewhere
    page.on("request", lambda r: away.append(r.url) if not on_loopback(r.url) else None)
    try:
        page.goto(url + path, wait_until="domcontentloaded")
        settle(page, charts)
        assert page.locator(".js-plotly-plot").count() == charts
        assert not away, away
        assert page.locator("[data-testid=stException]").count() == 0
        assert page.locator("[data-testid=stAlertContentError]").count() == 0
        assert not console_errors, console_errors
        SHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)
    finally:
        context.close()


def test_url_state_survives_a_reload(server, browser):
    """A URL with a selection and presentation mode reopens that view."""
    url, _ = server
    context = browser.new_context(viewport={"width": 1440, "height": 2000})
    page = context.new_page()
    try:
        page.goto(f"{url}/?method=dense&present=1", wait_until="domcontentloaded")
        settle(page, 3)
        assert page.get_by_text("1 of 2 runs shown").count() == 1
        assert page.locator("[data-testid=stSidebar] input[role=switch]").is_checked()
        SHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SHOTS / "overview-presentation.png"), full_page=True)
    finally:
        context.close()


def test_broken_study_is_a_message_not_a_traceback(server, browser):
    """Break the study file under the running server: the page says why, in one line."""
    url, study = server
    good = study.read_text()
    context = browser.new_context(viewport={"width": 1440, "height": 1000})
    page = context.new_page()
    try:
        study.write_text(good.replace("[0.5]", "[1.5]"))
        stamp = time.time() + 5
        os.utime(study, (stamp, stamp))  # a new mtime even on a coarse-grained filesystem
        page.goto(url + "/", wait_until="domcontentloaded")
        settle(page, 0)
        error = page.locator("[data-testid=stMain] [data-testid=stAlertContentError]")
        assert error.count() == 1 and "[0, 1)" in error.inner_text()
        assert page.locator("[data-testid=stException]").count() == 0
        SHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SHOTS / "broken-study.png"))
    finally:
        study.write_text(good)
        os.utime(study, (stamp + 5, stamp + 5))
        context.close()


def scene_eyes(frame) -> list[list[float]]:
    """The eye of every 3-D scene's live camera (what is drawn, saved or not)."""
    return frame.evaluate(
        """() => {
          const gd = document.querySelector('.js-plotly-plot');
          return Object.keys(gd._fullLayout).filter(k => /^scene\\d*$/.test(k)).sort()
            .map(k => { const e = gd._fullLayout[k]._scene.getCamera().eye; return [e.x, e.y, e.z]; });
        }"""
    )


def test_landscape_cameras_turn_together(server, browser):
    """Dragging one 3-D surface turns the others with it, during the drag and after."""
    url, _ = server
    context = browser.new_context(viewport={"width": 1440, "height": 1400})
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda err: errors.append(str(err)))
    try:
        page.goto(url + "/landscape", wait_until="domcontentloaded")
        settle(page, 3)
        iframe = page.locator("iframe[title='3-D loss surfaces']")
        frame = iframe.element_handle().content_frame()
        frame.wait_for_function("document.querySelectorAll('canvas').length >= 2", timeout=60_000)
        start = scene_eyes(frame)
        assert len(start) == 2 and start[0] == pytest.approx(start[1])
        canvas = frame.locator("canvas").first.bounding_box()  # in page coordinates
        x, y = canvas["x"] + canvas["width"] * 0.3, canvas["y"] + canvas["height"] * 0.5
        page.mouse.move(x, y)
        page.mouse.down()
        for step in range(1, 9):
            page.mouse.move(x + 12 * step, y + 3 * step)
            page.wait_for_timeout(40)
        page.mouse.up()
        page.wait_for_timeout(1500)
        moved = scene_eyes(frame)
        assert moved[0] != pytest.approx(start[0], abs=1e-3)  # the dragged scene turned
        assert moved[1] == pytest.approx(moved[0], abs=1e-4)  # and the other followed
        saved = frame.evaluate(
            "() => { const l = document.querySelector('.js-plotly-plot').layout;"
            " return [l.scene.camera.eye.x, l.scene2.camera.eye.x]; }"
        )
        assert saved[1] == pytest.approx(saved[0], abs=1e-4)  # written into the layout too
        assert not errors, errors
        SHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SHOTS / "landscape-turned.png"))
    finally:
        context.close()


#: Every page with presentation mode on, as a projector shows it.
PROJECTED = [
    "/", "/representations", "/robustness", "/connectivity", "/landscape", "/compare",
    "/sweeps", "/ranking", "/slide", "/export",
]  # fmt: skip

#: Titles below which a chart's plot area starts, and 3-D scenes inside their chart
#: (pixels of slack): the overlap and clipping checks of a projected page.
LAYOUT_PROBLEMS = """() => {
  const out = [];
  for (const plot of document.querySelectorAll('.js-plotly-plot')) {
    const box = plot.getBoundingClientRect();
    const title = plot.querySelector('.gtitle');
    const areas = [...plot.querySelectorAll('.nsewdrag')].map(e => e.getBoundingClientRect());
    if (title && areas.length) {
      const top = Math.min(...areas.map(a => a.top));
      const bottom = title.getBoundingClientRect().bottom;
      if (bottom > top + 2) out.push(`title overlaps the plot: ${title.textContent}`);
    }
    for (const scene of plot.querySelectorAll('.gl-container > div')) {
      const s = scene.getBoundingClientRect();
      if (s.right > box.right + 2 || s.bottom > box.bottom + 2) out.push('3-D scene clipped');
    }
  }
  if (document.documentElement.scrollWidth > window.innerWidth + 2) out.push('page scrolls sideways');
  return out;
}"""


#: Whether the sidebar is folded away (out of view or zero width).
SIDEBAR_FOLDED = """() => {
  const s = document.querySelector('[data-testid=stSidebar]');
  if (!s) return true;
  const r = s.getBoundingClientRect();
  return r.right <= 1 || r.width < 5 || getComputedStyle(s).visibility === 'hidden';
}"""


@pytest.mark.parametrize("size", [(1280, 720), (1920, 1080)], ids=["720p", "1080p"])
def test_every_page_projects(server, browser, size):
    """Presentation mode at projector sizes: sidebar folded, no overlaps, a screenshot each."""
    url, _ = server
    width, height = size
    context = browser.new_context(viewport={"width": width, "height": height})
    page = context.new_page()
    problems: dict[str, list[str]] = {}
    try:
        for path in PROJECTED:
            page.goto(url + path + ("&" if "?" in path else "?") + "present=1")
            settle(page, 0)
            page.wait_for_timeout(1500)
            assert page.evaluate(SIDEBAR_FOLDED), path
            assert page.locator("[data-testid=stException]").count() == 0, path
            if found := page.evaluate(LAYOUT_PROBLEMS):
                problems[path] = found
            name = path.strip("/").split("?")[0] or "overview"
            SHOTS.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(SHOTS / f"projected-{name}-{width}.png"), full_page=True)
    finally:
        context.close()
    assert not problems, problems
