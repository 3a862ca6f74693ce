"""The dashboard, driven by streamlit's AppTest against a tiny pre-filled store.

``analysis.api.get`` is patched so that any request to *compute* fails the test:
proof that pages only read. Every page file in ``dashboard/app_pages/`` is opened,
so a new page is covered with no new test code.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest

pytest.importorskip("streamlit")
from streamlit.testing.v1 import AppTest  # noqa: E402

from analysis import plan  # noqa: E402
from analysis.live import LiveFile  # noqa: E402
from analysis.store import Store  # noqa: E402
from analysis.study import load_study  # noqa: E402

APP = Path(__file__).resolve().parents[1] / "dashboard" / "app.py"
PAGES = sorted(
    p.relative_to(APP.parent).as_posix()
    for p in (APP.parent / "app_pages").glob("*.py")
    if not p.name.startswith("_")  # the package's __init__.py is no page
)
TIMEOUT = 120  # seconds per script run: the first one imports torch on a busy machine

SMALL_STUDY = """
name = "small"
description = "digits, a 16-wide MLP: dense and magnitude 50%, one seed, cheap analyses"
seeds = [0]
[data]
name = "digits"
train_size = 300
[model]
arch = "mlp"
width = 16
depth = 1
[train]
epochs = 2
batch_size = 50
lr = 0.01
snapshot_steps = [4]
[[methods]]
method = "dense"
[[methods]]
method = "magnitude"
sparsities = [0.5]
finetune_epochs = 1
[analyses.representations]
subset_size = 100
[analyses.robustness]
subset_size = 100
sigmas = [0.0, 0.3]
trials = 2
[analyses.connectivity]
alphas = 7
train_subset = 100
test_subset = 200
same_init_pairs = true
rewind_steps = [0, 4]
[analyses.landscape]
grid = 9
subset = 200
plane_grid = 7
sharpness_batch = 200
hutchinson_samples = 8
"""

#: The same study with one more method that is never computed.
WITH_MISSING = SMALL_STUDY + '\n[[methods]]\nmethod = "random"\nsparsities = [0.5]\n'


def prefill(root: Path) -> tuple[Path, Path]:
    """Write the small study and compute it into ``root/cache``; return (study, cache)."""
    study = root / "small.toml"
    study.write_text(SMALL_STUDY)
    cache = root / "cache"
    report = plan.compute_study(load_study(study), Store(cache))
    assert not report.failed, report.failed
    return study, cache


@pytest.fixture(scope="module")
def filled(tmp_path_factory) -> tuple[Path, Path]:
    """The small study, trained once for the whole module."""
    return prefill(tmp_path_factory.mktemp("dashboard"))


@pytest.fixture
def app(filled, compute_forbidden, monkeypatch):
    """An AppTest of the dashboard on the pre-filled study, not yet run."""
    study, cache = filled
    monkeypatch.setenv("PRUNESCOPE_STUDY", str(study))
    monkeypatch.setenv("PRUNESCOPE_CACHE", str(cache))
    return AppTest.from_file(str(APP), default_timeout=TIMEOUT)


def charts(at: AppTest) -> dict[str, dict]:
    """The plotly figures on the page, by element key."""
    return {c.key: json.loads(c.proto.spec) for c in at.get("plotly_chart")}


def trace_names(figure: dict) -> list[str]:
    """The names of a figure's traces."""
    return [t.get("name") for t in figure["data"]]


def test_pages_are_found():
    assert "app_pages/overview.py" in PAGES and "app_pages/compute.py" in PAGES


@pytest.mark.parametrize("page", PAGES)
def test_every_page_renders_read_only(app, page):
    app.run()
    app.switch_page(page).run()
    assert not app.exception, [e.value for e in app.exception]
    assert not app.error, [e.value for e in app.error]
    assert app.title and app.sidebar.toggle(key="present") is not None


def test_overview_shows_table_and_charts(app):
    app.run()
    assert not app.exception
    (table,) = app.dataframe
    frame = table.value
    assert list(frame["Run"]) == ["dense s0", "magnitude 50% s0"]
    assert set(frame["Status"]) == {"cached"}
    assert frame.set_index("Run").loc["magnitude 50% s0", "Achieved sparsity (%)"] == pytest.approx(
        50.0, abs=0.5
    )
    figures = charts(app)
    assert set(figures) == {"accuracy", "curves", "layers"}
    assert "magnitude" in trace_names(figures["accuracy"])
    assert len(figures["curves"]["data"]) == 2
    assert figures["layers"]["data"][0]["y"] == ["dense s0", "magnitude 50% s0"]
    assert not app.warning  # nothing is missing


def test_deselecting_a_method_changes_the_figures_and_the_url(app):
    app.run()
    app.sidebar.multiselect(key="filter_method").unselect("magnitude").run()
    assert not app.exception
    figures = charts(app)
    assert "magnitude" not in trace_names(figures["accuracy"])
    assert len(figures["curves"]["data"]) == 1
    assert list(app.dataframe[0].value["Run"]) == ["dense s0"]
    assert app.query_params.get("method") == "dense"


def test_url_reopens_the_view(app):
    app.query_params = {"method": "magnitude", "present": "1", "curve": "loss"}
    app.run()
    assert not app.exception
    assert app.sidebar.multiselect(key="filter_method").value == ["magnitude"]
    assert app.sidebar.toggle(key="present").value is True
    assert app.radio(key="choice_curve").value == "loss"
    figures = charts(app)
    assert "loss" in figures["curves"]["layout"]["yaxis"]["title"]["text"].lower()
    assert figures["accuracy"]["layout"]["font"]["size"] >= 18  # presentation theme


def test_presentation_mode_enlarges_figures(app):
    app.run()
    small = charts(app)["accuracy"]["layout"]["font"]["size"]
    app.sidebar.toggle(key="present").set_value(True).run()
    assert charts(app)["accuracy"]["layout"]["font"]["size"] > small
    assert app.query_params.get("present") == "1"


def test_missing_results_say_what_and_point_to_compute(
    filled, compute_forbidden, monkeypatch, tmp_path
):
    _, cache = filled
    study = tmp_path / "more.toml"
    study.write_text(WITH_MISSING)
    monkeypatch.setenv("PRUNESCOPE_STUDY", str(study))
    monkeypatch.setenv("PRUNESCOPE_CACHE", str(cache))
    at = AppTest.from_file(str(APP), default_timeout=TIMEOUT).run()
    assert not at.exception
    (warning,) = at.warning
    assert "1 missing" in warning.value and "random 50% s0" in warning.value
    (link,) = at.get("page_link")
    assert "compute" in link.proto.page.lower() and "Compute" in link.value
    assert "random" not in trace_names(charts(at)["accuracy"])  # only computed runs are drawn
    at.switch_page("app_pages/compute.py").run()
    assert not at.exception
    assert list(at.dataframe[0].value["Result"]) == ["random 50% s0"]
    assert at.button(key="start_runs").label.startswith("Compute 1")


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("name = 'bad'\n[train\nepochs = 2\n", "valid TOML"),
        (SMALL_STUDY.replace("[0.5]", "[1.5]"), "[0, 1)"),
        (SMALL_STUDY.replace('method = "magnitude"', 'method = "magnitud"'), "magnitud"),
    ],
)
@pytest.mark.parametrize("page", PAGES)
def test_malformed_study_is_an_error_message(
    compute_forbidden, monkeypatch, tmp_path, text, fragment, page
):
    study = tmp_path / "broken.toml"
    study.write_text(text)
    monkeypatch.setenv("PRUNESCOPE_STUDY", str(study))
    monkeypatch.setenv("PRUNESCOPE_CACHE", str(tmp_path / "cache"))
    at = AppTest.from_file(str(APP), default_timeout=TIMEOUT).run()
    at.switch_page(page).run()
    assert not at.exception, [e.value for e in at.exception]
    messages = [e.value for e in at.error]
    assert any(fragment in m and "\n" not in m for m in messages), messages


def test_compute_button_runs_in_the_background(filled, compute_forbidden, monkeypatch, tmp_path):
    """The button starts a thread; the page returns at once and shows the job's progress."""
    _, cache = filled
    study = tmp_path / "more.toml"
    study.write_text(WITH_MISSING)
    monkeypatch.setenv("PRUNESCOPE_STUDY", str(study))
    monkeypatch.setenv("PRUNESCOPE_CACHE", str(cache))
    release, started = threading.Event(), threading.Event()

    def fake_compute(study, store, *, only=None, progress, log, executor=None):
        with LiveFile(store.root, study=study.name, progress=progress, log=log) as live:
            live("study", 0, 1)
            live("random 50% s0: train", 3, 12)
            live.flush(force=True)  # the page reads the pass's live file
            started.set()
            assert release.wait(60), "the test never released the job"
            live.log("[1/1] run random 50% s0: done")
            live("study", 1, 1)
        return plan.Report(done=1)

    monkeypatch.setattr(plan, "compute_study", fake_compute)
    at = AppTest.from_file(str(APP), default_timeout=TIMEOUT).run()
    at.switch_page("app_pages/compute.py").run()
    at.button(key="start_runs").click().run()  # returns while the job still works
    assert started.wait(30)
    at.run()
    assert not at.exception
    bars = [p.text for p in at.get("progress")]
    assert any("0 of 1 results" in m.value for m in at.markdown)
    assert any(t and t.startswith("random 50% s0: train: 3 of 12") for t in bars), bars
    assert any("from the dashboard" in c.value for c in at.caption)
    assert at.button(key="start_runs").disabled  # one computation of a study at a time
    release.set()
    from dashboard import data

    data.job_board().join(data._job_key(data.load()), timeout=30)
    at.run()
    assert not at.exception
    assert any("1 computed" in s.value for s in at.success)


def test_job_board_records_a_failure():
    from dashboard.jobs import JobBoard

    board = JobBoard()

    def boom(progress, log):
        progress("study", 0, 2)
        raise RuntimeError("out of memory\nand more")

    board.start("k", "runs", boom)
    board.join("k", timeout=10)
    job = board.get("k")
    assert job.state == "failed" and job.error == "RuntimeError: out of memory"
    assert not job.running and job.tasks == {"study": (0.0, 2.0)}


def test_dataset_fallback_is_said_plainly(compute_forbidden, monkeypatch, tmp_path):
    from analysis import data as datasets
    from analysis.errors import DataError

    real_load = datasets.load

    def load(spec, root=None):
        if spec.name != "digits":
            raise DataError(f"{spec.name} is not installed here")
        return real_load(spec, root)

    monkeypatch.setattr(datasets, "load", load)
    study = tmp_path / "fallback.toml"
    study.write_text(
        SMALL_STUDY.replace('name = "digits"', 'name = "fashion-mnist"\nfallback = "digits"')
    )
    monkeypatch.setenv("PRUNESCOPE_STUDY", str(study))
    monkeypatch.setenv("PRUNESCOPE_CACHE", str(tmp_path / "cache"))
    at = AppTest.from_file(str(APP), default_timeout=TIMEOUT).run()
    assert not at.exception
    (note,) = at.sidebar.info
    assert "fashion-mnist is not available" in note.value and "digits" in note.value
    assert any("digits" in c.value for c in at.sidebar.caption)


def test_representations_page_draws_the_runs_side_by_side(app):
    app.run()
    app.switch_page("app_pages/representations.py").run()
    assert not app.exception, [e.value for e in app.exception]
    figures = charts(app)
    assert {"embedding", "sample_image", "cka", "geometry"} <= set(figures)
    embedding = figures["embedding"]["layout"]
    assert embedding["xaxis"]["range"] == embedding["xaxis2"]["range"]  # one shared frame
    assert app.multiselect(key="pick_runs").value == ["dense s0", "magnitude 50% s0"]
    app.radio(key="choice_dims").set_value("3").run()
    app.radio(key="choice_color").set_value("flip").run()
    assert not app.exception
    assert app.query_params.get("dims") == "3" and app.query_params.get("color") == "flip"
    (frame,) = app.get("iframe")  # 3-D scenes in an HTML page of their own: cameras linked
    assert '"type":"scatter3d"' in frame.proto.srcdoc.replace(" ", "")


def test_an_emptied_runs_choice_round_trips_as_empty(app):
    """Clearing the Runs multiselect gives ``?runs=``; opening that URL shows no runs again."""
    app.run()
    app.switch_page("app_pages/representations.py").run()
    app.multiselect(key="pick_runs").set_value([]).run()
    assert app.query_params.get("runs") in ("", [""])
    assert any("Pick at least one run" in i.value for i in app.info)
    url = dict(app.query_params)
    again = AppTest.from_file(str(APP), default_timeout=TIMEOUT)
    again.query_params.update(url)
    again.run()
    again.switch_page("app_pages/representations.py").run()
    assert not again.exception, [e.value for e in again.exception]
    assert again.multiselect(key="pick_runs").value == []  # not the default runs
    assert any("Pick at least one run" in i.value for i in again.info)


def test_robustness_page_draws_every_figure(app):
    app.query_params = {"heat": "ce"}
    app.run()
    app.switch_page("app_pages/robustness.py").run()
    assert not app.exception, [e.value for e in app.exception]
    figures = charts(app)
    assert set(figures) == {"curves", "heatmap", "mce", "noise", "examples"}
    assert figures["heatmap"]["data"][0]["y"] == ["dense s0", "magnitude 50% s0"]
    assert "error" in figures["heatmap"]["layout"]["title"]["text"]


def test_connectivity_page_draws_paths_barriers_and_instability(app):
    app.run()
    app.switch_page("app_pages/connectivity.py").run()
    assert not app.exception, [e.value for e in app.exception]
    figures = charts(app)
    assert set(figures) == {"paths", "barriers", "inst", "sparsity", "variance"}
    # one seed: the same-init pair (dense ~ magnitude) with each alignment, with and without
    # REPAIR (every network since issue 17), and the note says why
    names = {"naive (no alignment)", "weight matching", "activation matching"}
    assert {t["name"] for t in figures["barriers"]["data"]} == names | {
        f"{n} + REPAIR" for n in names
    }
    app.radio(key="choice_repair").set_value("off").run()
    assert app.query_params.get("repair") == "off"
    assert {t["name"] for t in charts(app)["barriers"]["data"]} == names
    app.radio(key="choice_repair").set_value("both").run()
    assert any("2 or more seeds" in c.value for c in app.caption)
    assert [t["x"] for t in figures["inst"]["data"]] == [[0, 4]]
    loss_barrier = figures["barriers"]["data"][0]["x"]
    app.radio(key="choice_barrier").set_value("accuracy_barrier").run()
    app.radio(key="choice_split").set_value("train").run()
    assert not app.exception
    assert app.query_params.get("barrier") == "accuracy_barrier"
    assert app.query_params.get("split") == "train"
    figures = charts(app)
    assert "Accuracy barrier" in figures["barriers"]["layout"]["title"]["text"]
    assert figures["barriers"]["data"][0]["x"] != loss_barrier
    assert "(train)" in figures["paths"]["layout"]["title"]["text"]


def test_connectivity_page_without_runs_of_a_pair_says_so(app):
    app.query_params = {"method": "dense"}
    app.run()
    app.switch_page("app_pages/connectivity.py").run()
    assert not app.exception
    assert "paths" not in charts(app) and "inst" in charts(app)
    assert any("seeds" in i.value for i in app.info)


def test_landscape_page_links_3d_cameras_and_switches_to_contours(app):
    app.run()
    app.switch_page("app_pages/landscape.py").run()
    assert not app.exception, [e.value for e in app.exception]
    (frame,) = app.get("iframe")
    assert '["scene", "scene2"]' in frame.proto.srcdoc and "plotly_relayout" in frame.proto.srcdoc
    figures = charts(app)
    assert set(figures) == {"planes", "slices", "sharpness"}
    assert any(t.get("name") == "training path" for t in figures["planes"]["data"])
    assert [t["name"] for t in figures["slices"]["data"]] == ["dense s0", "magnitude 50% s0"]
    app.radio(key="choice_view").set_value("contour").run()
    assert not app.exception and not app.get("iframe")
    contour = [t for t in charts(app)["contours"]["data"] if t["type"] == "contour"]
    assert len(contour) == 2 and {t["coloraxis"] for t in contour} == {"coloraxis"}
    linear = charts(app)["slices"]["data"][0]["y"]
    app.radio(key="choice_z").set_value("log").run()
    assert not app.exception and app.query_params.get("z") == "log"
    assert charts(app)["slices"]["data"][0]["y"] != linear
    app.multiselect(key="pick_runs").unselect("dense s0").run()
    contour = [t for t in charts(app)["contours"]["data"] if t["type"] == "contour"]
    assert len(contour) == 1 and app.query_params.get("runs") in (
        "magnitude 50% s0",
        ["magnitude 50% s0"],
    )


REASON = "OutOfMemoryError: CUDA out of memory"


@pytest.fixture
def with_failures(filled, compute_forbidden, monkeypatch, tmp_path):
    """The study with a 'random' run whose run and analyses failed (in a copy of the store)."""
    import shutil

    _, cache = filled
    shutil.copytree(cache, tmp_path / "cache")
    study = tmp_path / "more.toml"
    study.write_text(WITH_MISSING)
    store = Store(tmp_path / "cache")
    spec = load_study(study)
    for part in ("runs", "representations", "robustness", "connectivity", "landscape"):
        for s in plan.study_specs(spec, only=part):
            if part == "representations" or "random" in getattr(s, "label", ""):
                store.record_failure(s, f"{REASON}\nTraceback (most recent call last): ...")
    monkeypatch.setenv("PRUNESCOPE_STUDY", str(study))
    monkeypatch.setenv("PRUNESCOPE_CACHE", str(tmp_path / "cache"))
    return AppTest.from_file(str(APP), default_timeout=TIMEOUT)


@pytest.mark.parametrize(
    ("page", "expected"),
    [
        ("app_pages/overview.py", ["random 50% s0 failed", "representations · objective ce"]),
        ("app_pages/compute.py", ["random 50% s0 failed", "representations ("]),
        ("app_pages/representations.py", ["objective ce failed"]),
        ("app_pages/robustness.py", ["random 50% s0 failed"]),
        ("app_pages/connectivity.py", ["random 50% s0"]),
        ("app_pages/landscape.py", ["random 50% s0"]),
    ],
)
def test_every_failure_says_why(with_failures, page, expected):
    at = with_failures.run()
    at.switch_page(page).run()
    assert not at.exception, [e.value for e in at.exception]
    errors = [e.value for e in at.error]
    assert all("\n" not in e and e.endswith(f"failed: {REASON}") for e in errors), errors
    for fragment in expected:
        assert any(fragment in e for e in errors), (fragment, errors)
    assert not any("not computed yet" in i.value for i in at.info)  # failed is not "missing"
