"""Time to render each dashboard page from a warm store: server side (AppTest) and in Chromium.

Usage::

    uv run prunescope compute assets/studies/demo.toml        # once: fill ./cache
    uv run python benchmarks/bench_pages.py                   # the demo study, ./cache
    uv run python benchmarks/bench_pages.py --no-browser      # AppTest only
    uv run python benchmarks/bench_pages.py --sweep --cache-dir DIR   # the 100-run sweep

Server side: one ``AppTest`` of ``dashboard/app.py`` on the study; every page is
opened once to warm streamlit's caches (the first script run of a process also
pays the imports of torch and plotly), then opened ``--repeats`` times, round
robin over the pages so a noisy neighbour hits every page alike. The baseline,
timed in the same rounds, is a one-line streamlit script: AppTest's own cost of a
script run. Target: every page under 0.5 s (median).

Browser: ``prunescope dashboard`` on a free loopback port and Debian's headless
Chromium through Playwright. For each page a first visit warms the server, then
``--repeats`` new tabs (round robin) time from navigation to the first drawn
plotly chart (``.js-plotly-plot .main-svg``, also inside a component's iframe) and
to the end of the script run, and count the bytes the tab received (HTTP, as
sent, and websocket frames; Chromium's DevTools protocol): tabs of one browser
context, its HTTP cache warm as for someone who has opened the dashboard before,
and (``cold_browser_*``) tabs of a fresh context that must fetch streamlit's and
plotly's JavaScript again. Pages with no chart (Compute, Export) time the title.
The browser's baseline, timed in the same rounds, is a bare streamlit app with a
title and one three-point plotly chart (``x_baseline_first_chart``: a page's first
chart as a multiple of its): what streamlit and plotly.js cost on this machine
before a page of ours does anything.
Targets: first chart under 2 s (median); the Landscape under 0.5 MB per visit
after the first (plotly.js is served once, :mod:`dashboard.plotly_js`). Last, for
the demo study, a second ``prunescope demo`` (everything cached) is started as in
a terminal and timed until it serves and until the Overview's first chart is drawn.

``--sweep``: the 100-run sweep study (``benchmarks/sweep100.toml``: digits, 5 seeds
x 2 widths x 10 methods and sparsities, with 1-D landscapes and sharpness of every
run), its parts computed into ``--cache-dir`` first where missing (a few minutes
on 2 cores).

Writes ``benchmarks/results/pages.json``: one entry per study, with the machine's
load average before and after (the machine is shared: a high load slows everything).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
APP = ROOT / "dashboard" / "app.py"
RESULTS = ROOT / "benchmarks" / "results" / "pages.json"
#: The 100-run sweep study (``--sweep``) and the parts computed for it.
SWEEP = ROOT / "benchmarks" / "sweep100.toml"
SWEEP_PARTS = ("runs", "landscape")
#: Issue 15's targets: medians, warm store, warm browser (the Landscape's bytes: per visit
#: after the first).
TARGETS = {
    "apptest_warm_render_s": 0.5,
    "browser_first_chart_s": 2.0,
    "landscape_sent_mb": 0.5,
}
sys.path.insert(0, str(ROOT))
from tests._browser import (  # noqa: E402
    CHROMIUM,
    CHROMIUM_ARGS,
    free_port,
    start,
    stop,
    wait_until_serving,
)

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
    return sorted(
        p.relative_to(APP.parent).as_posix()
        for p in APP.parent.glob("app_pages/*.py")
        if not p.name.startswith("_")  # the package's __init__.py is no page
    )


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
    charts: dict[str, int] = {}
    for page in pages():  # warm every page's caches
        at.switch_page(page).run()
        errors[page] = [e.value for e in at.exception] + [e.value for e in at.error]
        charts[page] = len(at.get("plotly_chart")) + len(at.get("iframe"))
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
                "charts": charts[page],  # plotly charts and iframes drawn
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
    proc = start(cmd, log, env=env)
    try:
        return proc, wait_until_serving(proc, log, timeout=300)
    except RuntimeError as err:
        stop(proc)
        raise SystemExit(str(err)) from None


class Transfer:
    """Bytes a tab receives, from Chromium's DevTools protocol: HTTP bodies and headers as
    sent (``encodedDataLength``: compressed, nothing for what the HTTP cache answered)
    plus websocket frames (streamlit's deltas: the figures' JSON, the iframe's HTML)."""

    def __init__(self, context, page) -> None:
        self.http = self.ws = 0
        self.urls: dict[str, int] = {}
        self._names: dict[str, str] = {}
        cdp = context.new_cdp_session(page)
        cdp.on("Network.responseReceived", self._response)
        cdp.on("Network.loadingFinished", self._finished)
        cdp.on("Network.webSocketFrameReceived", self._frame)
        cdp.send("Network.enable")

    def _response(self, event: dict) -> None:
        self._names[event["requestId"]] = event["response"]["url"]

    def _finished(self, event: dict) -> None:
        self.http += event["encodedDataLength"]
        url = self._names.get(event["requestId"], "?")
        self.urls[url] = self.urls.get(url, 0) + event["encodedDataLength"]

    def _frame(self, event: dict) -> None:
        frame = event["response"]
        size = len(frame["payloadData"])  # binary frames arrive base64-encoded
        self.ws += size * 3 // 4 if frame["opcode"] == 2 else size

    @property
    def mb(self) -> float:
        """Megabytes received, HTTP and websocket together."""
        return (self.http + self.ws) / 1e6


def visit(browser, url: str, charted: bool, context=None) -> tuple[float, float, float]:
    """Seconds from navigation to the first chart (or title) and to the end of the run,
    and the megabytes the tab received until then.

    A new tab of ``context`` (the browser's HTTP cache warm, as for someone who has
    opened the dashboard before), or of a fresh context (nothing cached) if None.
    """
    fresh = context is None
    context = context or browser.new_context(viewport={"width": 1440, "height": 1000})
    page = context.new_page()
    sent = Transfer(context, page)
    try:
        t = time.perf_counter()
        page.goto(url, wait_until="commit")
        if charted:
            page.wait_for_function(FIRST_CHART, timeout=120_000, polling=20)
        else:
            page.wait_for_selector("h1", timeout=120_000)
        first = time.perf_counter() - t
        page.wait_for_function(RUN_DONE, timeout=120_000)
        done = time.perf_counter() - t
        page.wait_for_timeout(300)  # the iframes' own requests, if any, land
        return first, done, sent.mb
    finally:
        page.close()
        if fresh:
            context.close()


def demo_up(study: str, cache: str, repeats: int = 1) -> dict:
    """A second ``prunescope demo``, ``repeats`` times: median seconds until it prints its
    address (and answers), and until its first chart, with every round's figures."""
    from playwright.sync_api import sync_playwright

    rounds = []
    for _ in range(repeats):
        # The user's browser is already open: it is launched before the clock starts.
        with tempfile.TemporaryDirectory() as tmp, sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
            t = time.perf_counter()
            proc, url = serve(study, cache, Path(tmp) / "demo.log", demo=True)
            serving = time.perf_counter() - t
            try:
                visit(browser, url + "/", True)
                rounds.append((serving, time.perf_counter() - t))
            finally:
                browser.close()
                stop(proc)
    return {
        "serving_s": round(median([r[0] for r in rounds]), 2),
        "first_chart_s": round(median([r[1] for r in rounds]), 2),
        "rounds": [[round(a, 2), round(b, 2)] for a, b in rounds],
        "load_average_after": load_average(),
    }


#: The browser's baseline: a bare streamlit app with a title and one three-point plotly
#: chart, served alike and timed in the same rounds. Its first chart is what streamlit and
#: plotly.js cost on this machine before any page of ours does anything.
BASELINE_APP = """
import plotly.graph_objects as go
import streamlit as st

st.title("Baseline")
st.plotly_chart(go.Figure(go.Scatter(x=[0, 1, 2], y=[0, 1, 0])), theme=None)
"""
BASELINE = "baseline"


def serve_baseline(folder: Path) -> tuple[subprocess.Popen, str]:
    """Start the baseline app with the dashboard's server flags; wait until it answers."""
    from dashboard.server import STREAMLIT_FLAGS

    app = folder / "baseline_app.py"
    app.write_text(BASELINE_APP)
    port = free_port()
    flags = {**STREAMLIT_FLAGS, "server.port": str(port), "server.enableStaticServing": "false"}
    cmd = [sys.executable, "-m", "streamlit", "run", str(app)]
    cmd += [f"--{key}={value}" for key, value in flags.items()]
    log = folder / "baseline.log"
    proc = start(cmd, log)
    try:
        return proc, wait_until_serving(proc, log, timeout=120, url=f"http://127.0.0.1:{port}")
    except RuntimeError as err:
        stop(proc)
        raise SystemExit(str(err)) from None


def in_browser(study: str, cache: str, repeats: int, charted: dict[str, bool]) -> dict:
    """Median time to first chart and megabytes received per page in headless Chromium,
    and each page's first chart as a multiple of the baseline app's (same rounds).

    ``charted``: whether a page draws a chart (else its title is timed), as AppTest saw it.
    """
    from playwright.sync_api import sync_playwright

    keys = ("first", "done", "sent", "cold", "cold_sent")
    got: dict[str, dict[str, list[float]]] = {
        p: {k: [] for k in keys} for p in [BASELINE, *pages()]
    }
    with tempfile.TemporaryDirectory() as tmp:
        proc, url = serve(study, cache, Path(tmp) / "dashboard.log")
        base_proc, base_url = serve_baseline(Path(tmp))
        where = {BASELINE: base_url + "/", **{p: url + url_path(p) for p in pages()}}
        charted = {BASELINE: True, **charted}
        try:
            with sync_playwright() as pw:
                browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
                warm = browser.new_context(viewport={"width": 1440, "height": 1000})
                for page, address in where.items():  # warm the servers' caches and the browser's
                    visit(browser, address, charted[page], warm)
                for _ in range(repeats):
                    for page, address in where.items():
                        a, b, mb = visit(browser, address, charted[page], warm)
                        c, _, cold_mb = visit(browser, address, charted[page])
                        for key, value in zip(keys, (a, b, mb, c, cold_mb), strict=True):
                            got[page][key].append(value)
                browser.close()
        finally:
            stop(proc)
            stop(base_proc)
    base = statistics.median(got[BASELINE]["first"])
    return {
        page: {
            "first_chart_median_s" if charted[page] else "title_median_s": median(t["first"]),
            "x_baseline_first_chart": round(statistics.median(t["first"]) / base, 2),
            "script_done_median_s": median(t["done"]),
            "sent_median_mb": median(t["sent"]),
            "cold_browser_first_median_s": median(t["cold"]),
            "cold_browser_sent_median_mb": median(t["cold_sent"]),
        }
        for page, t in got.items()
    }


def load_average() -> list[float]:
    """The machine's 1, 5 and 15 minute load averages (what else was running)."""
    return [round(v, 2) for v in os.getloadavg()]


def fill_sweep(study: str, cache: str) -> None:
    """Compute the sweep study's runs and landscape into ``cache`` (cached ones are skipped)."""
    exe = Path(sys.executable).with_name("prunescope")
    for part in SWEEP_PARTS:
        cmd = [str(exe), "compute", study, "--only", part, "--cache-dir", cache, "--quiet"]
        print(f"computing the sweep's {part}: {' '.join(cmd[1:])}", flush=True)
        subprocess.run(cmd, check=True)


def read_results() -> dict:
    """The results file: one entry per study (an older single-study file becomes one entry)."""
    if not RESULTS.is_file():
        return {}
    old = json.loads(RESULTS.read_text())
    return {old["study"]: old} if "study" in old else old


def arguments() -> argparse.Namespace:
    """The command line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--study", default=str(ROOT / "assets" / "studies" / "demo.toml"))
    parser.add_argument("--cache-dir", default=os.environ.get("PRUNESCOPE_CACHE", "cache"))
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--no-browser", action="store_true")
    parser.add_argument(
        "--sweep",
        action="store_true",
        help=f"the 100-run sweep ({SWEEP.relative_to(ROOT)}), its runs and landscape "
        "computed into --cache-dir first where missing",
    )
    parser.add_argument(
        "--only-demo",
        action="store_true",
        help="time only the second demo, updating that part of the results file",
    )
    return parser.parse_args()


def main() -> None:
    args = arguments()
    study = str(SWEEP if args.sweep else Path(args.study).resolve())
    cache = str(Path(args.cache_dir).resolve())
    os.environ["PRUNESCOPE_STUDY"], os.environ["PRUNESCOPE_CACHE"] = study, cache

    sys.path.insert(0, str(ROOT))
    from analysis.plan import summarize
    from analysis.store import Store
    from analysis.study import load_study, with_available_data

    loaded, _ = with_available_data(load_study(study))
    results = read_results()
    if args.only_demo:
        result = results.setdefault(loaded.name, {})
        result["second_demo"] = demo_up(study, cache, args.repeats)
        result["second_demo"]["date"] = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
        print(json.dumps(result["second_demo"], indent=1), flush=True)
        RESULTS.write_text(json.dumps(results, indent=2) + "\n")
        return
    if args.sweep:
        fill_sweep(study, cache)
    counts = summarize(loaded, Store(Path(cache)))["counts"]
    if counts["missing"]:
        print(f"warning: {counts['missing']} of {counts['runs']} runs are not computed", flush=True)
    result = {
        # Absolute paths are this machine's: the record keeps their last part only.
        "command": "uv run python benchmarks/bench_pages.py "
        + " ".join(Path(a).name if os.path.isabs(a) else a for a in sys.argv[1:]),
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "study": loaded.name,
        "dataset": loaded.data.name,
        "runs": counts["runs"],
        "repeats": args.repeats,
        "machine": f"{platform.machine()}, {os.cpu_count()} cores (shared, noisy)",
        "targets": TARGETS,
        "load_average_before": load_average(),
        "apptest": server_side(args.repeats),
    }
    result["apptest"]["load_average_after"] = load_average()
    print(json.dumps(result["apptest"], indent=1), flush=True)
    if not args.no_browser:
        charted = {p: r["charts"] > 0 for p, r in result["apptest"]["pages"].items()}
        result["browser"] = in_browser(study, cache, args.repeats, charted)
        result["browser"]["load_average_after"] = load_average()
        print(json.dumps(result["browser"], indent=1), flush=True)
        if not args.sweep:
            result["second_demo"] = demo_up(study, cache, args.repeats)
            print(json.dumps(result["second_demo"], indent=1), flush=True)
    results[loaded.name] = result
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {RESULTS.relative_to(ROOT)} ({loaded.name})")


if __name__ == "__main__":
    main()
