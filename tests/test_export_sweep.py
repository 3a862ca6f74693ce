"""The export of a two-seed, two-width study: a view from a copied link, figures picked by name,
one barrier definition throughout, and (slow, where LibreOffice is installed) the deck rendered
to PDF and looked at page by page."""

from __future__ import annotations

import re
import shutil
import subprocess

import pytest

from analysis import plan
from analysis.store import Store
from analysis.study import load_study
from dashboard import export
from dashboard.figures import connectivity as fconn
from dashboard.figures.sweeps import y_title
from dashboard.figures.theme import NORMAL
from dashboard.results import Reader
from tests.test_dashboard_sweep import SWEEP
from tests.test_export import HAS_BROWSER, run_cli

SOFFICE = shutil.which("soffice") or shutil.which("libreoffice")


@pytest.fixture(scope="module")
def sweep(tmp_path_factory):
    """(study file, store) of dense and magnitude 50% at widths 8 and 32, seeds 0 and 1."""
    root = tmp_path_factory.mktemp("export-sweep")
    study = root / "sweep.toml"
    study.write_text(SWEEP)
    report = plan.compute_study(load_study(study), Store(root / "cache"), only="connectivity")
    assert not report.failed, report.failed
    return study, root / "cache"


@pytest.fixture(scope="module")
def loaded(sweep):
    study, cache = sweep
    spec, store = load_study(study), Store(cache)
    return plan.summarize(spec, store), Reader(spec, store)


def _items(loaded, **choice):
    summary, reader = loaded
    return {
        i.name: i for i in export.chosen_items(summary, reader, NORMAL, export.Choice(**choice))[1]
    }


def test_one_barrier_definition_throughout(loaded):
    summary, _ = loaded
    items = _items(loaded, barrier="error_barrier")
    assert {"sweeps-barrier-width", "ranking-50", "connectivity-barriers-test"} <= set(items)
    bars = items["connectivity-barriers-test"].figure
    drawn = sorted(x for t in bars.data for x in t.x if x is not None)  # not the legend keys
    pairs = [p for p in summary["connectivity"]["pairs"] if p["status"] == "cached"]
    assert drawn == pytest.approx(
        sorted(100 * p["barriers"]["test"]["error_barrier"] for p in pairs)
    )
    sweep = items["sweeps-barrier-width"].figure
    assert "error barrier" in sweep.layout.title.text and "entezari" not in sweep.layout.title.text
    assert y_title("barrier.weight.test.error_barrier") in items["ranking-50"].header
    others = [fconn.BARRIERS[b] for b in fconn.BARRIERS if b != "error_barrier"]
    for item in items.values():
        words = f"{item.title} {item.caption} {item.figure.layout.title.text or ''}"
        assert not any(o in words for o in others), (item.name, words)
    default = _items(loaded)["connectivity-barriers-test"]
    assert "Entezari" in default.title and "max loss above the line" in default.caption


def test_grouped_by_default_and_runs_one_by_one_when_asked(loaded):
    grouped = _items(loaded)["overview-accuracy"].figure
    assert "mean over seeds" in grouped.layout.title.text
    each = _items(loaded, grouped=False)["overview-accuracy"].figure
    assert "mean over seeds" not in (each.layout.title.text or "")


def test_the_ranking_table_is_mean_interval_and_difference(loaded):
    summary, _ = loaded
    table = _items(loaded)["ranking-50"]
    assert table.header[:3] == ("Setting", "Method", "Seeds")
    assert len(table.rows) == 4  # dense and magnitude at two widths
    group = next(
        g
        for g in summary["groups"]
        if g["method"] == "magnitude" and g["setting_label"] == "width 8"
    )
    row = next(r for r in table.rows if r[:2] == ("width 8", "magnitude"))
    accuracy = row[table.header.index("test accuracy (%)")]
    assert accuracy.startswith(f"{100 * group['metrics']['test_acc']['mean']:.4g} [")
    assert "\nvs dense " in accuracy


def test_cli_lists_the_figures_of_a_view(sweep, capsys):
    study, cache = sweep
    status, out, err = run_cli(
        capsys, "export", str(study), "--cache-dir", str(cache), "--list", "--quiet"
    )
    assert status == 0, err
    names = [line.split()[0] for line in out.splitlines()]
    assert {"overview-accuracy", "sweeps-accuracy-width", "sweeps-barrier-width"} <= set(names)
    assert {"ranking-50", "connectivity-paths-test"} <= set(names)
    status, out, _ = run_cli(
        capsys, "export", str(study), "--cache-dir", str(cache), "--list", "--setting", "width 8"
    )
    assert status == 0 and "sweeps-accuracy-width" not in out  # one width: nothing to draw


def test_cli_exports_the_view_of_a_copied_link(sweep, compute_forbidden, tmp_path, capsys):
    study, cache = sweep
    link = "http://127.0.0.1:8501/overview?setting=width+32&seed=0&seed=1&seeds=each"
    status, _, err = run_cli(
        capsys, "export", str(study), "--cache-dir", str(cache), "--out", str(tmp_path),
        "--format", "html", "--view", link, "--figures", "ranking,overview-accuracy", "--quiet",
    )  # fmt: skip
    assert status == 0, err
    page = (tmp_path / "report.html").read_text()
    assert re.findall(r"<figure id=\'([^\']+)\'", page) == ["ranking-50", "overview-accuracy"]
    assert "width 32 · dense s0" in page and "width 8 · dense s0" not in page
    assert "Runs: 4 of 8 runs: setting width 32" in page
    assert "mean over seeds" not in page.split("<section", 1)[0]  # ?seeds=each: one by one


def test_cli_names_what_it_does_not_know(sweep, tmp_path, capsys):
    study, cache = sweep
    common = ["export", str(study), "--cache-dir", str(cache), "--out", str(tmp_path / "o")]
    status, _, err = run_cli(capsys, *common, "--method", "lottery")
    assert status == 2 and "'method'" in err and "dense, magnitude" in err
    status, _, err = run_cli(capsys, *common, "--figures", "nope", "--format", "html")
    assert status == 2 and "'figures'" in err and "ranking-50" in err
    status, _, err = run_cli(capsys, *common, "--barrier", "frankle")
    assert status == 2 and "'barrier'" in err and "error_barrier" in err
    assert not (tmp_path / "o").exists()


@pytest.mark.slow
@pytest.mark.skipif(not SOFFICE or not HAS_BROWSER, reason="needs LibreOffice and Chromium")
def test_the_deck_renders_in_libreoffice(sweep, compute_forbidden, tmp_path, capsys):
    """soffice draws every slide (pages == slides) with its title; pages go to PNG for a look."""
    from pptx import Presentation

    study, cache = sweep
    status, _, err = run_cli(
        capsys, "export", str(study), "--cache-dir", str(cache), "--out", str(tmp_path),
        "--format", "pptx", "--quiet",
    )  # fmt: skip
    assert status == 0, err
    deck = Presentation(str(tmp_path / "slides.pptx"))
    subprocess.run(
        [SOFFICE, "--headless", f"-env:UserInstallation=file://{tmp_path}/lo",
         "--convert-to", "pdf", "--outdir", str(tmp_path), str(tmp_path / "slides.pptx")],
        check=True, capture_output=True, timeout=300,
    )  # fmt: skip
    pdf = tmp_path / "slides.pdf"
    info = subprocess.run(["pdfinfo", str(pdf)], capture_output=True, text=True, check=False)
    if info.returncode == 0:
        pages = int(re.search(r"Pages:\s+(\d+)", info.stdout).group(1))
        assert pages == len(deck.slides)
    else:  # no poppler: count the PDF's page objects
        assert len(re.findall(rb"/Type\s*/Page[^s]", pdf.read_bytes())) == len(deck.slides)
    if shutil.which("pdftotext"):
        text = subprocess.run(
            ["pdftotext", "-layout", str(pdf), "-"], capture_output=True, text=True, check=True
        ).stdout
        pages = text.split("\f")
        for k, slide in enumerate(deck.slides):
            assert " ".join(slide.shapes.title.text.split()[:3]) in " ".join(pages[k].split())
    if shutil.which("pdftoppm"):
        subprocess.run(
            ["pdftoppm", "-r", "40", "-png", str(pdf), str(tmp_path / "page")], check=True
        )
        assert len(list(tmp_path.glob("page-*.png"))) == len(deck.slides)


@pytest.mark.slow
def test_each_setting_has_its_own_representations(sweep):
    """A sweep's representations are one entry per setting: each is read, named apart."""
    study, cache = sweep
    spec, store = load_study(study), Store(cache)
    report = plan.compute_study(spec, store, only="representations")
    assert not report.failed, report.failed
    summary, reader = plan.summarize(spec, store), Reader(spec, store)
    settings = [r["setting_label"] for r in summary["representations"]]
    assert settings == ["width 8", "width 32"]
    widths = {s: reader.representations("ce", s)["summary"] for s in settings}
    assert all(run["label"].startswith(s) for s, doc in widths.items() for run in doc["runs"])
    names = list(_items((summary, reader)))
    assert len(names) == len(set(names))
    assert any(n.startswith("representations-ce-width-8-") for n in names)
    assert any(n.startswith("representations-ce-width-32-") for n in names)
