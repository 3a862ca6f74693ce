"""The export: one offline HTML file, PNG/SVG through kaleido, a PPTX deck, ``prunescope export``.

Everything runs against the dashboard tests' small pre-filled store (trained once
per test session, shared with tests/test_compare.py) with ``api.get`` patched so
that any request to compute fails: the export only reads. Tests that start a
browser are few; the full export of every format is marked slow.
"""

from __future__ import annotations

import io
import re
import zipfile
from pathlib import Path

import pytest
from PIL import Image
from plotly.offline import get_plotlyjs

from analysis import plan
from analysis.errors import PrunescopeError
from analysis.store import Store
from analysis.study import load_study
from dashboard import cli, export
from dashboard.figures.catalogue import (
    EMBEDDING_PANELS,
    _module_catalogue,
    embedding_groups,
    sections,
    study_catalogue,
)
from dashboard.results import Reader
from tests.test_dashboard_app import APP, TIMEOUT, WITH_MISSING, prefill

HAS_BROWSER = export.find_browser() is not None
needs_browser = pytest.mark.skipif(not HAS_BROWSER, reason="needs Chromium or Chrome")


_PREFILLED: dict[int, tuple[Path, Path]] = {}


def prefilled(factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(study file, store root) of the small study, computed once per test session."""
    if id(factory) not in _PREFILLED:  # one factory per session
        _PREFILLED[id(factory)] = prefill(factory.mktemp("export"))
    return _PREFILLED[id(factory)]


@pytest.fixture(scope="module")
def filled(tmp_path_factory) -> tuple[Path, Path]:
    """The small study and its pre-filled store."""
    return prefilled(tmp_path_factory)


@pytest.fixture(scope="module")
def loaded(filled):
    """(summary, reader) of the small study."""
    study_path, cache = filled
    study, store = load_study(study_path), Store(cache)
    return plan.summarize(study, store), Reader(study, store)


@pytest.fixture(scope="module")
def items(loaded):
    """Every figure of the small study."""
    return study_catalogue(*loaded)


def test_catalogue_covers_every_computed_section(items):
    names = [i.name for i in items]
    assert len(set(names)) == len(names)
    assert {"overview-accuracy", "overview-layers", "overview-curves"} <= set(names)
    assert {"representations-ce-cka", "representations-ce-geometry"} <= set(names)
    assert {"robustness-curves", "robustness-heatmap", "robustness-mce", "robustness-noise"} <= set(
        names
    )
    seen = list(dict.fromkeys(i.section for i in items))
    assert seen[:3] == ["Overview", "Representations", "Robustness"]
    assert all(i.title and i.caption and i.figure.data for i in items)


def test_registry_tolerates_only_a_module_that_does_not_exist_yet():
    assert _module_catalogue("no_such_section") is None
    assert list(sections())[:3] == ["Overview", "Representations", "Robustness"]


def test_embeddings_come_in_groups_led_by_the_reference():
    runs = [{"label": f"r{i}", "seed": i % 2} for i in range(10)]  # seeds 0 and 1 alternate
    rep = {"summary": {"runs": runs, "labels_of_runs": [r["label"] for r in runs]}}
    rep["summary"]["reference"] = "r0"
    groups = embedding_groups(rep)
    assert all(g[0] == 0 and len(g) <= EMBEDDING_PANELS for g in groups)
    assert sorted({i for g in groups for i in g}) == [0, 2, 4, 6, 8]  # the first seed only


def test_html_report_is_one_offline_file(loaded, items):
    summary, _ = loaded
    page = export.html_report(items, summary, missing=["runs: 1 of 3 (random 50% s0)"])
    assert page.count(get_plotlyjs()) == 1  # inlined once, in the head
    assert page.index(get_plotlyjs()) < page.index("<body>")
    assert page.count("Plotly.newPlot(") == len(items)  # every figure drawn, none re-inlines
    assert not re.search(r"<script[^>]*\bsrc\s*=", page)  # no script from anywhere
    assert not re.search(r"<link[^>]*href\s*=\s*['\"]https?:", page)
    for item in items:
        assert f"<h3>{item.title}</h3>" in page.replace("&#x27;", "'")
        assert f'id="fig-{item.name}"' in page
    assert "dense s0" in page and "magnitude 50% s0" in page  # the runs table
    assert summary["study"]["name"] in page and "digits" in page
    assert "random 50% s0" in page  # what was left out is said


def fake_png(width: int = 800, height: int = 400) -> bytes:
    """A plain PNG of the given size."""
    out = io.BytesIO()
    Image.new("RGB", (width, height), "white").save(out, format="PNG")
    return out.getvalue()


def test_pptx_deck_has_a_title_slide_and_one_slide_per_figure(loaded, items):
    from pptx import Presentation

    summary, _ = loaded
    images = [fake_png(800, 400 if k % 2 else 1200) for k in range(len(items))]  # wide and tall
    deck = Presentation(io.BytesIO(export.pptx_deck(items, summary, images)))
    assert abs(deck.slide_width / deck.slide_height - 16 / 9) < 0.01
    slides = list(deck.slides)
    assert len(slides) == 1 + len(items)
    assert summary["study"]["name"] in [s.text_frame.text for s in slides[0].shapes]
    for slide, item in zip(slides[1:], items, strict=True):
        texts = [s.text_frame.text for s in slide.shapes if s.has_text_frame]
        assert item.title in texts and item.caption in texts
        (picture,) = [s for s in slide.shapes if s.shape_type == 13]  # MSO_SHAPE_TYPE.PICTURE
        assert picture.left >= 0 and picture.left + picture.width <= deck.slide_width
        assert picture.top + picture.height <= min(s.top for s in slide.shapes if s.top > 3e6)


def test_no_browser_is_a_clear_error(loaded, monkeypatch, tmp_path):
    summary, reader = loaded
    monkeypatch.setenv("BROWSER_PATH", str(tmp_path / "no-chromium-here"))
    assert export.find_browser() is None
    for fmt in ("png", "svg", "pptx"):
        built = export.build_export(summary, reader, [fmt])
        message = built.failed[fmt]
        assert "need Chromium or Chrome" in message and "apt-get install chromium" in message
        assert "kaleido.get_chrome" in message and "no-chromium-here" in message
        assert not built.files
    built = export.build_export(summary, reader, ["html"])  # the HTML report needs no browser
    assert list(built.files) == [export.REPORT] and not built.failed


@needs_browser
def test_static_images_render_in_one_session(items):
    chosen = items[:2]
    calls = []
    images = export.render(
        [(i.name, i.figure, fmt, 600) for fmt in ("png", "svg") for i in chosen],
        progress=lambda task, done, total: calls.append((task, done, total)),
    )
    assert [im[:8] for im in images[:2]] == [b"\x89PNG\r\n\x1a\n"] * 2
    with Image.open(io.BytesIO(images[0])) as png:
        assert png.width == 600 * export.IMAGE_SCALE
    assert all(b"<svg" in im[:200] for im in images[2:])
    assert [c[0] for c in calls] == [f"{f} {i.name}" for f in ("png", "svg") for i in chosen]


def run_cli(capsys, *argv: str) -> tuple[int, str, str]:
    """``prunescope *argv`` in-process: (status, stdout, stderr)."""
    status = cli.main(list(argv))
    out = capsys.readouterr()
    return status, out.out, out.err


def test_cli_exports_html_read_only(filled, compute_forbidden, tmp_path, capsys):
    study, cache = filled
    out = tmp_path / "out"
    status, stdout, stderr = run_cli(
        capsys, "export", str(study), "--out", str(out), "--format", "html",
        "--cache-dir", str(cache),
    )  # fmt: skip
    assert status == 0, stderr
    assert sorted(p.name for p in out.iterdir()) == ["report.html"]  # no temporary leftovers
    assert "[1/1] html report" in stdout and str(out / "report.html") in stdout
    assert "not computed" not in stderr


def test_cli_export_says_what_is_missing(filled, compute_forbidden, tmp_path, capsys):
    _, cache = filled
    study = tmp_path / "more.toml"
    study.write_text(WITH_MISSING)
    status, _, stderr = run_cli(
        capsys, "export", str(study), "--out", str(tmp_path / "o"), "--format", "html",
        "--cache-dir", str(cache), "--quiet",
    )  # fmt: skip
    assert status == 0
    assert "runs: 1 of 3 (random 50% s0)" in stderr
    assert "representations" in stderr and "robustness" in stderr
    assert f"prunescope compute {study}" in stderr
    assert "random 50% s0" in (tmp_path / "o" / "report.html").read_text()


def test_cli_export_of_an_uncomputed_study_points_to_compute(compute_forbidden, tmp_path, capsys):
    study = tmp_path / "more.toml"
    study.write_text(WITH_MISSING)
    status, _, stderr = run_cli(
        capsys, "export", str(study), "--out", str(tmp_path / "o"), "--cache-dir",
        str(tmp_path / "empty"),
    )  # fmt: skip
    assert status == 2
    assert "nothing to export" in stderr and "prunescope compute" in stderr
    assert "Traceback" not in stderr and not (tmp_path / "o").exists()


def test_cli_rejects_an_unknown_format(filled, tmp_path, capsys):
    study, cache = filled
    status, _, stderr = run_cli(
        capsys, "export", str(study), "--out", str(tmp_path / "o"), "--format", "html,gif",
        "--cache-dir", str(cache),
    )  # fmt: skip
    assert status == 2 and "'format'" in stderr and "gif" in stderr and "pptx" in stderr


def test_cli_without_a_browser_writes_the_html_and_fails_the_rest(
    filled, tmp_path, monkeypatch, capsys
):
    study, cache = filled
    monkeypatch.setenv("BROWSER_PATH", str(tmp_path / "nothing"))
    out = tmp_path / "o"
    status, stdout, stderr = run_cli(
        capsys, "export", str(study), "--out", str(out), "--cache-dir", str(cache)
    )
    assert status == 1 and "Traceback" not in stderr
    failed = [line for line in stderr.splitlines() if line.startswith("prunescope: export:")]
    assert [line.split()[2] for line in failed] == ["png", "svg", "pptx"]  # a line per format
    assert all("need Chromium or Chrome" in line for line in failed)
    assert sorted(p.name for p in out.iterdir()) == ["report.html"]
    assert str(out / "report.html") in stdout


def test_a_failed_render_loses_no_other_format(filled, tmp_path, monkeypatch):
    study, cache = filled

    def broken(jobs, **_):
        raise PrunescopeError("the browser /bin/true failed to start: TimeoutError")

    monkeypatch.setattr(export.build, "render_each", broken)
    monkeypatch.setattr(export.build, "require_browser", lambda: "/bin/true")
    report = export.export_study(study, Store(cache), tmp_path / "o", ["html", "png", "svg"])
    assert list(report.failed) == ["png", "svg"] and "failed to start" in report.failed["png"]
    assert [p.name for p in report.written] == ["report.html"]
    assert sorted(p.name for p in (tmp_path / "o").iterdir()) == ["report.html"]


def test_one_figure_that_fails_fails_its_format_only(filled, tmp_path, monkeypatch):
    study, cache = filled

    def half(jobs, *, landed, **_):
        """PNGs render; one SVG does not."""
        for i, (name, _, fmt, _) in enumerate(jobs):
            bad = fmt == "svg" and i == len(jobs) - 1
            landed(i, PrunescopeError(f"rendering svg {name} failed") if bad else b"img")

    monkeypatch.setattr(export.build, "render_each", half)
    monkeypatch.setattr(export.build, "require_browser", lambda: "/bin/true")
    report = export.export_study(study, Store(cache), tmp_path / "o", ["png", "svg"])
    assert list(report.failed) == ["svg"] and "rendering svg" in report.failed["svg"]
    assert {p.suffix for p in report.written} == {".png"} and len(report.written) == report.figures


@pytest.mark.slow
@pytest.mark.browser
@needs_browser
def test_cli_exports_every_format(filled, compute_forbidden, tmp_path, capsys, items):
    from pptx import Presentation

    study, cache = filled
    out = tmp_path / "out"
    status, stdout, stderr = run_cli(
        capsys, "export", str(study), "--out", str(out), "--cache-dir", str(cache)
    )
    assert status == 0, stderr
    for item in items:
        assert (out / "figures" / f"{item.name}.png").read_bytes()[:4] == b"\x89PNG"
        assert b"<svg" in (out / "figures" / f"{item.name}.svg").read_bytes()[:200]
        assert f"png {item.name}" in stdout and f"svg {item.name}" in stdout
    deck = Presentation(str(out / "slides.pptx"))
    figures = {p.stem for p in (out / "figures").glob("*.png")}  # every figure the CLI drew
    assert len(deck.slides) == 1 + len(figures)  # a title slide, then one slide per figure
    assert (out / "report.html").stat().st_size > 1_000_000  # plotly.js is inside
    assert not [p for p in out.rglob("*") if p.name.endswith(".tmp")]


def test_export_page_offers_the_html_download(filled, compute_forbidden, monkeypatch):
    from streamlit.testing.v1 import AppTest

    study, cache = filled
    monkeypatch.setenv("PRUNESCOPE_STUDY", str(study))
    monkeypatch.setenv("PRUNESCOPE_CACHE", str(cache))
    at = AppTest.from_file(str(APP), default_timeout=TIMEOUT).run()
    at.switch_page("app_pages/export.py").run()
    assert not at.exception, [e.value for e in at.exception]
    assert any("camera button" in c.value for c in at.caption)  # single figures: the modebar
    at.multiselect(key="formats").set_value(["html"]).run()
    at.button[0].click().run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    (bar,) = at.get("progress")
    assert bar.proto.value == 100 and bar.proto.text == "done"
    (button,) = at.get("download_button")
    assert button.proto.label == "HTML report"
    assert any("figures ready" in s.value for s in at.success)


def test_export_page_exports_the_sidebar_view_and_the_figures_picked(
    filled, compute_forbidden, monkeypatch
):
    from streamlit.testing.v1 import AppTest

    study, cache = filled
    monkeypatch.setenv("PRUNESCOPE_STUDY", str(study))
    monkeypatch.setenv("PRUNESCOPE_CACHE", str(cache))
    at = AppTest.from_file(str(APP), default_timeout=TIMEOUT)
    at.query_params["method"] = "magnitude"  # a copied link: the sidebar shows magnitude only
    at.run()
    at.switch_page("app_pages/export.py").run()
    assert not at.exception, [e.value for e in at.exception]
    picker = at.multiselect(key="export_figures")
    assert any(o.endswith("(overview-accuracy)") for o in picker.options)
    at.multiselect(key="export_figures").set_value(["overview-accuracy", "overview-layers"]).run()
    at.multiselect(key="formats").set_value(["html"]).run()
    at.button[0].click().run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    built = at.session_state["export_built"][1]
    page = built.report.decode()
    assert re.findall(r"<figure id='([^']+)'", page) == ["overview-accuracy", "overview-layers"]
    assert "Runs: 1 of 2 runs: method magnitude" in page and "dense s0" not in page
    assert "Barrier: Loss barrier (Entezari)" in page


def test_export_page_says_when_there_is_no_browser(
    filled, compute_forbidden, monkeypatch, tmp_path
):
    from streamlit.testing.v1 import AppTest

    study, cache = filled
    monkeypatch.setenv("PRUNESCOPE_STUDY", str(study))
    monkeypatch.setenv("PRUNESCOPE_CACHE", str(cache))
    monkeypatch.setenv("BROWSER_PATH", str(tmp_path / "nothing"))
    at = AppTest.from_file(str(APP), default_timeout=TIMEOUT).run()
    at.switch_page("app_pages/export.py").run()
    assert any("need Chromium or Chrome" in w.value for w in at.warning)
    assert at.multiselect(key="formats").value == ["html"]
    at.multiselect(key="formats").set_value(["html", "pptx"]).run()
    at.button[0].click().run()
    assert not at.exception
    (error,) = at.error  # the deck failed, said once; the report was still made
    assert "PPTX deck not made" in error.value and "need Chromium or Chrome" in error.value
    assert [b.proto.label for b in at.get("download_button")] == ["HTML report"]


def test_zip_holds_the_images():
    built = export.Export(files={"report.html": b"x", "figures/a.png": b"p", "figures/a.svg": b"s"})
    with zipfile.ZipFile(io.BytesIO(built.zip_images())) as archive:
        assert sorted(archive.namelist()) == ["figures/a.png", "figures/a.svg"]


@pytest.mark.slow
@pytest.mark.browser
@needs_browser
def test_html_report_draws_offline_in_chromium(loaded, items, tmp_path):
    """Headless Chromium with every network request sent to a dead proxy draws every figure."""
    import subprocess

    summary, _ = loaded
    page = tmp_path / "report.html"
    page.write_text(export.html_report(items, summary))
    dom = subprocess.run(
        [
            export.find_browser(), "--headless", "--no-sandbox", "--disable-gpu",
            "--disable-background-networking", "--proxy-server=127.0.0.1:9",
            "--virtual-time-budget=20000", "--dump-dom", page.as_uri(),
        ],
        capture_output=True, text=True, timeout=180, check=True,
    ).stdout  # fmt: skip
    drawn = re.findall(r'<div id="fig-([^"]+)" class="plotly-graph-div[^"]*js-plotly-plot', dom)
    assert sorted(drawn) == sorted(i.name for i in items)


@pytest.mark.parametrize(
    ("link", "named"),
    [
        ("?method=nope", "'method'"),  # a value the study does not have
        ("?methd=dense", "'method', not 'methd'"),  # a misspelt filter
        ("garbage", "dashboard link"),  # no link at all
    ],
)
def test_cli_export_of_a_view_it_cannot_read_writes_nothing(filled, tmp_path, capsys, link, named):
    study, cache = filled
    out = tmp_path / "o"
    status, stdout, stderr = run_cli(
        capsys, "export", str(study), "--out", str(out), "--format", "html",
        "--cache-dir", str(cache), "--view", link,
    )  # fmt: skip
    assert status == 2 and named in stderr and "Traceback" not in stderr
    assert not out.exists() and "written" not in stdout


def test_export_help_lists_every_barrier(capsys):
    from dashboard import cli
    from dashboard.figures.connectivity import BARRIERS

    with pytest.raises(SystemExit):
        cli.main(["export", "--help"])
    text = capsys.readouterr().out
    assert all(name in text for name in BARRIERS) and "sparsities" in text
