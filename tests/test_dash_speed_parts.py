"""plotly.js served once (not inlined per render) and the landscape's camera in the URL.

The AppTest half drives the real Landscape page on a minimal study (two digits
MLPs, 5 x 5 surfaces: seconds to compute).
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import plotly
import pytest
from plotly.offline import get_plotlyjs_version

pytest.importorskip("streamlit")
from streamlit import config as st_config  # noqa: E402
from streamlit.testing.v1 import AppTest  # noqa: E402

from analysis import plan  # noqa: E402
from analysis.store import Store  # noqa: E402
from analysis.study import load_study  # noqa: E402
from dashboard import plotly_js, server  # noqa: E402
from dashboard.figures import landscape as fl  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
APP = ROOT / "dashboard" / "app.py"

MINI_STUDY = """
name = "mini"
description = "digits, an 8-wide MLP: dense and magnitude 50%, 5 x 5 loss surfaces only"
seeds = [0]
[data]
name = "digits"
train_size = 200
[model]
arch = "mlp"
width = 8
depth = 1
[train]
epochs = 1
batch_size = 50
lr = 0.01
[[methods]]
method = "dense"
[[methods]]
method = "magnitude"
sparsities = [0.5]
[analyses.landscape]
grid = 5
subset = 50
dims = [2]
trajectory = false
sharpness_topk = 0
hutchinson_samples = 0
"""


def prefill_mini(root: Path) -> tuple[Path, Path]:
    """Write the minimal study and compute its runs and 2-D surfaces; return (study, cache)."""
    study = root / "mini.toml"
    study.write_text(MINI_STUDY)
    cache = root / "cache"
    for part in ("runs", "landscape"):
        report = plan.compute_study(load_study(study), Store(cache), only=part)
        assert not report.failed, report.failed
    return study, cache


# -- the served file ----------------------------------------------------------------


def test_the_served_file_is_plotlys_own_copied_once(tmp_path):
    static = tmp_path / "static"
    served = plotly_js.ensure(static)
    assert served == static / f"plotly-{get_plotlyjs_version()}.min.js"
    package = Path(plotly.__file__).parent / "package_data" / "plotly.min.js"
    assert served.read_bytes() == package.read_bytes()
    assert served.stat().st_mtime_ns == package.stat().st_mtime_ns  # Last-Modified as shipped
    inode = served.stat().st_ino
    assert plotly_js.ensure(static) == served and served.stat().st_ino == inode  # not rewritten
    assert [p.name for p in static.iterdir()] == [served.name]  # no temp file left


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_a_folder_that_cannot_be_written_means_inlining(tmp_path):
    tmp_path.chmod(0o500)
    try:
        assert plotly_js.ensure(tmp_path / "static") is None
    finally:
        tmp_path.chmod(0o700)


def test_the_url_is_under_the_servers_base_path():
    name = f"plotly-{get_plotlyjs_version()}.min.js"
    assert plotly_js.url() == f"/app/static/{name}"
    assert plotly_js.url("/lab/") == f"/lab/app/static/{name}"


def test_static_serving_is_on_wherever_the_dashboard_starts():
    assert APP.with_name("static") == plotly_js.STATIC  # streamlit serves app.py's static/
    assert server.STREAMLIT_FLAGS["server.enableStaticServing"] == "true"
    assert "enableStaticServing = true" in (ROOT / ".streamlit" / "config.toml").read_text()


# -- the page -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def mini(tmp_path_factory) -> tuple[Path, Path]:
    """The minimal study, computed once for the module."""
    return prefill_mini(tmp_path_factory.mktemp("mini"))


@pytest.fixture
def landscape(mini, compute_forbidden, monkeypatch):
    """An AppTest of the dashboard on the minimal study with static serving on, not yet run."""
    study, cache = mini
    monkeypatch.setenv("PRUNESCOPE_STUDY", str(study))
    monkeypatch.setenv("PRUNESCOPE_CACHE", str(cache))
    before = st_config.get_option("server.enableStaticServing")
    st_config.set_option("server.enableStaticServing", True)
    try:
        yield AppTest.from_file(str(APP), default_timeout=120)
    finally:
        st_config.set_option("server.enableStaticServing", before)


def srcdoc(at: AppTest) -> str:
    """The HTML of the page's one iframe (the linked 3-D surfaces)."""
    (frame,) = at.get("iframe")
    return frame.proto.srcdoc


def eyes(html: str) -> list[dict]:
    """The starting eye of every scene in an iframe's figure."""
    return [json.loads(m) for m in re.findall(r'"eye":(\{[^}]*\})', html)]


def test_the_landscape_page_references_plotly_js_instead_of_inlining_it(landscape):
    landscape.switch_page("app_pages/landscape.py").run()
    assert not landscape.exception, [e.value for e in landscape.exception]
    html = srcdoc(landscape)
    assert f'src="{plotly_js.url()}"' in html
    assert len(html) < 300_000  # the figure and the scripts, not 4.6 MB of plotly.js
    assert (
        plotly_js.STATIC / plotly_js.file_name()
    ).read_bytes() == plotly_js.source().read_bytes()
    assert "parent.history" in html  # a drag's end writes the camera to the URL
    assert eyes(html) == [fl.CAMERA["eye"]] * 2


def test_a_camera_in_the_url_reopens_that_view(landscape):
    landscape.query_params = {fl.CAMERA_PARAM: "0.5,-2,1.25"}
    landscape.switch_page("app_pages/landscape.py").run()
    assert not landscape.exception
    assert eyes(srcdoc(landscape)) == [{"x": 0.5, "y": -2.0, "z": 1.25}] * 2
    landscape.radio(key="choice_z").set_value("log").run()  # another choice keeps the view
    assert eyes(srcdoc(landscape)) == [{"x": 0.5, "y": -2.0, "z": 1.25}] * 2
    assert landscape.query_params[fl.CAMERA_PARAM] in ("0.5,-2,1.25", ["0.5,-2,1.25"])


def test_a_bad_camera_in_the_url_is_one_warning_and_the_default_view(landscape):
    landscape.query_params = {fl.CAMERA_PARAM: "up,down"}
    landscape.switch_page("app_pages/landscape.py").run()
    assert not landscape.exception
    assert any("camera" in w.value and "default view" in w.value for w in landscape.warning)
    assert eyes(srcdoc(landscape)) == [fl.CAMERA["eye"]] * 2


def test_a_rerun_draws_the_figures_it_built_before(landscape):
    from dashboard import memo

    memo.clear()
    landscape.switch_page("app_pages/landscape.py").run()
    built = memo.stats()
    assert built["misses"] >= 2 and built["hits"] == 0  # the surfaces and their page
    first = srcdoc(landscape)
    landscape.switch_page("app_pages/landscape.py").run()  # a rerun: nothing rebuilt
    again = memo.stats()
    assert again["misses"] == built["misses"] and again["hits"] >= built["misses"]
    assert srcdoc(landscape) == first
    landscape.radio(key="choice_z").set_value("log").run()  # another height: built anew
    assert memo.stats()["misses"] > again["misses"] and srcdoc(landscape) != first
