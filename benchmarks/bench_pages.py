"""Time to render each dashboard page from a warm store: server side (AppTest) and in Chromium.

Usage::

    uv run prunescope compute assets/studies/demo.toml        # once: fill ./cache
    uv run python benchmarks/bench_pages.py                   # the demo study, ./cache
    uv run python benchmarks/bench_pages.py --no-browser      # AppTest only

Server side: one ``AppTest`` of ``dashboard/app.py`` on the study; every page is
opened once to warm streamlit's caches (the first script run of a process also
pays the imports of torch and plotly), then opened ``--repeats`` times, round
robin over the pages so a noisy neighbour hits every page alike. The baseline,
timed in the same rounds, is a one-line streamlit script: AppTest's own cost of a
script run. Target: every page under 1 s (median).

Browser: ``prunescope dashboard`` on a free loopback port and Debian's headless
Chromium through Playwright. For each page a first visit warms the server, then
``--repeats`` new tabs (round robin) time from navigation to the first drawn
plotly chart (``.js-plotly-plot .main-svg``, also inside a component's iframe) and
to the end of the script run: tabs of one browser context, its HTTP cache warm as
for someone who has opened the dashboard before, and (``cold_browser_*``) tabs of
a fresh context that must fetch streamlit's and plotly's JavaScript again. Pages with no chart (Compute, Export) time the
title. Target: first chart under 3 s (median). Last, a second ``prunescope demo``
(everything cached) is started as in a terminal and timed until it serves and until
the Overview's first chart is drawn.

Writes ``benchmarks/results/pages.json``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
APP = ROOT / "dashboard" / "app.py"
RESULTS = ROOT / "benchmarks" / "results" / "pages.json"
sys.path.insert(0, str(ROOT))
from tests._browser import CHROMIUM, CHROMIUM_ARGS, free_port  # noqa: E402

#: Drawn plotly chart in the page or in a same-origin component iframe.
FIRST_CHART = """() => {
  const drawn = (doc) => doc && doc.querySelector('.js-plotly-plot .main-svg');
  if (drawn(document)) return true;
  for (const f of document.querySelectorAll('iframe')) {
    try { if (drawn(f.contentDocument)) return true; } catch (e) {}
  }
  return false;
}"""
RUN_DONE = "!document.querySelector('[data-testid=stStatusWidget]')"


def pages() -> list[str]:
    """The page scripts, as ``st.navigation`` knows them (``app_pages/<name>.py``)."""
    return sorted(p.relative_to(APP.parent).as_posix() for p in APP.parent.glob("app_pages/*.py"))


def url_path(page: str) -> str:
    """The URL path streamlit gives a page (the default page is ``/``)."""
    name = Path(page).stem
    return "/" if name == "overview" else f"/{name}"


def median(xs: list[float]) -> float:
    """Median, rounded for the JSON."""
    return round(statistics.median(xs), 4)


def server_side(repeats: int) -> dict:
    """Median seconds of a warm script run per page, and of the one-line baseline."""
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(str(APP), default_timeout=600)
    t = time.perf_counter()
    at.run()
    first = time.perf_counter() - t
    baseline = AppTest.from_string("import streamlit as st\nst.title('baseline')")
    baseline.run()
    times: dict[str, list[float]] = {p: [] for p in pages()}
    times["baseline"] = []
    errors: dict[str, list[str]] = {}
    for page in pages():  # warm every page's caches
        at.switch_page(page).run()
        errors[page] = [e.value for e in at.exception] + [e.value for e in at.error]
    for _ in range(repeats):
        for page in pages():
            t = time.perf_counter()
            at.switch_page(page).run()
            times[page].append(time.perf_counter() - t)
        t = time.perf_counter()
        baseline.run()
        times["baseline"].append(time.perf_counter() - t)
    base = statistics.median(times["baseline"])
    return {
        "first_run_s": round(first, 3),
        "baseline_median_s": round(base, 4),
        "pages": {
            page: {
                "median_s": median(times[page]),
                "max_s": round(max(times[page]), 4),
                "x_baseline": round(statistics.median(times[page]) / base, 1),
                "errors": errors[page],
            }
            for page in pages()
        },
    }


def serve(study: str, cache: str, log: Path, *, demo: bool = False) -> tuple[subprocess.Popen, str]:
    """Start ``prunescope dashboard`` (or ``demo``) and wait until it answers its health check.

    ``demo`` runs ``prunescope demo`` as a user does in a terminal: under ``script``
    (util-linux) for a pseudo-terminal, without ``$CI``, so it opens the dashboard.
    """
    exe = Path(sys.executable).with_name("prunescope")
    port = str(free_port())
    if demo:
        line = f"{exe} demo --study {study} --cache-dir {cache} --port {port}"
        cmd = ["script", "-qfec", line, "/dev/null"]
    else:
        cmd = [str(exe), "dashboard", study, "--cache-dir", cache, "--port", port]
    env = {k: v for k, v in os.environ.items() if k != "CI"}
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            cmd, stdout=out, stderr=subprocess.STDOUT, start_new_session=True, env=env
        )
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"the dashboard exited:\n{log.read_text()}")
        found = re.search(r"at (http://127\.0\.0\.1:\d+)", log.read_text())
        if found:
            try:
                with urllib.request.urlopen(f"{found.group(1)}/_stcore/health", timeout=2) as r:
                    if r.read().decode().strip() == "ok":
                        return proc, found.group(1)
            except OSError:
                pass
        time.sleep(0.5)
    stop(proc)
    raise SystemExit(f"the dashboard did not serve in 300 s:\n{log.read_text()}")


def stop(proc: subprocess.Popen) -> None:
    """Stop the CLI and the streamlit server it started (one process group)."""
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=20)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        os.killpg(proc.pid, signal.SIGKILL)


def visit(browser, url: str, charted: bool, context=None) -> tuple[float, float]:
    """Seconds from navigation to the first chart (or title) and to the end of the run.

    A new tab of ``context`` (the browser's HTTP cache warm, as for someone who has
    opened the dashboard before), or of a fresh context (nothing cached) if None.
    """
    fresh = context is None
    context = context or browser.new_context(viewport={"width": 1440, "height": 1000})
    page = context.new_page()
    try:
        t = time.perf_counter()
        page.goto(url, wait_until="commit")
        if charted:
            page.wait_for_function(FIRST_CHART, timeout=120_000, polling=20)
        else:
            page.wait_for_selector("h1", timeout=120_000)
        first = time.perf_counter() - t
        page.wait_for_function(RUN_DONE, timeout=120_000)
        return first, time.perf_counter() - t
    finally:
        page.close()
        if fresh:
            context.close()


def demo_up(study: str, cache: str) -> dict:
    """A second ``prunescope demo``: seconds until it serves, and until its first chart."""
    from playwright.sync_api import sync_playwright

    # The user's browser is already open: it is launched before the clock starts.
    with tempfile.TemporaryDirectory() as tmp, sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        t = time.perf_counter()
        proc, url = serve(study, cache, Path(tmp) / "demo.log", demo=True)
        serving = time.perf_counter() - t
        try:
            visit(browser, url + "/", True)
            charted = time.perf_counter() - t
        finally:
            browser.close()
            stop(proc)
    return {"serving_s": round(serving, 2), "first_chart_s": round(charted, 2)}


def in_browser(study: str, cache: str, repeats: int) -> dict:
    """Median time to first chart per page in headless Chromium."""
    from playwright.sync_api import sync_playwright

    charted = {p: Path(p).stem not in {"compute", "export"} for p in pages()}
    with tempfile.TemporaryDirectory() as tmp:
        proc, url = serve(study, cache, Path(tmp) / "dashboard.log")
        try:
            with sync_playwright() as pw:
                browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
                warm = browser.new_context(viewport={"width": 1440, "height": 1000})
                for page in pages():  # warm the server's caches and the browser's
                    visit(browser, url + url_path(page), charted[page], warm)
                first: dict[str, list[float]] = {p: [] for p in pages()}
                done: dict[str, list[float]] = {p: [] for p in pages()}
                cold: dict[str, list[float]] = {p: [] for p in pages()}
                for _ in range(repeats):
                    for page in pages():
                        a, b = visit(browser, url + url_path(page), charted[page], warm)
                        first[page].append(a)
                        done[page].append(b)
                        cold[page].append(visit(browser, url + url_path(page), charted[page])[0])
                browser.close()
        finally:
            stop(proc)
    return {
        page: {
            "first_chart_median_s" if charted[page] else "title_median_s": median(first[page]),
            "script_done_median_s": median(done[page]),
            "cold_browser_first_median_s": median(cold[page]),
        }
        for page in pages()
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--study", default=str(ROOT / "assets" / "studies" / "demo.toml"))
    parser.add_argument("--cache-dir", default=os.environ.get("PRUNESCOPE_CACHE", "cache"))
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--no-browser", action="store_true")
    parser.add_argument(
        "--only-demo",
        action="store_true",
        help="time only the second demo, updating that part of the results file",
    )
    args = parser.parse_args()
    study, cache = str(Path(args.study).resolve()), str(Path(args.cache_dir).resolve())
    os.environ["PRUNESCOPE_STUDY"], os.environ["PRUNESCOPE_CACHE"] = study, cache

    sys.path.insert(0, str(ROOT))
    from analysis.plan import summarize
    from analysis.store import Store
    from analysis.study import load_study, with_available_data

    if args.only_demo:
        result = json.loads(RESULTS.read_text())
        result["second_demo"] = demo_up(study, cache)
        result["second_demo"]["date"] = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
        print(json.dumps(result["second_demo"], indent=1), flush=True)
        RESULTS.write_text(json.dumps(result, indent=2) + "\n")
        return
    loaded, _ = with_available_data(load_study(study))
    counts = summarize(loaded, Store(Path(cache)))["counts"]
    if counts["missing"]:
        print(f"warning: {counts['missing']} of {counts['runs']} runs are not computed", flush=True)
    result = {
        "command": "uv run python benchmarks/bench_pages.py " + " ".join(sys.argv[1:]),
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "study": loaded.name,
        "dataset": loaded.data.name,
        "runs": counts["runs"],
        "repeats": args.repeats,
        "machine": f"{platform.machine()}, {os.cpu_count()} cores (shared, noisy)",
        "targets": {"apptest_warm_render_s": 1.0, "browser_first_chart_s": 3.0},
        "apptest": server_side(args.repeats),
    }
    print(json.dumps(result["apptest"], indent=1), flush=True)
    if not args.no_browser:
        result["browser"] = in_browser(study, cache, args.repeats)
        print(json.dumps(result["browser"], indent=1), flush=True)
        result["second_demo"] = demo_up(study, cache)
        print(json.dumps(result["second_demo"], indent=1), flush=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {RESULTS.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
