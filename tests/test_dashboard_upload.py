"""Studies uploaded through the dashboard: size-limited, validated, kept inside the store.

``data.save_upload`` is what the sidebar's uploader calls; these tests hand it
bad payloads directly (AppTest cannot drive a file uploader) and drive the app
with the ``?study=<id>`` parameter that an accepted upload puts in the URL.
"""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("streamlit")
from streamlit.testing.v1 import AppTest  # noqa: E402

from analysis.errors import SpecError  # noqa: E402
from analysis.study import MAX_STUDY_BYTES  # noqa: E402
from dashboard import data  # noqa: E402

APP = Path(__file__).resolve().parents[1] / "dashboard" / "app.py"

STUDY = """
name = "{name}"
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
[[methods]]
method = "dense"
"""


def files_under(root: Path) -> set[str]:
    """Every file below ``root``, relative."""
    return {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()}


@pytest.mark.parametrize(
    ("payload", "fragment"),
    [
        (b"x" * (MAX_STUDY_BYTES + 1), "at most 256 KiB"),
        (b"\xff\xfe\x00binary", "UTF-8"),
        (b"name = [unclosed", "valid TOML"),
        (STUDY.format(name="u").replace('"dense"', '"not-a-method"').encode(), "method"),
        (STUDY.format(name="u").replace("epochs = 1", "epochs = -3").encode(), "epochs"),
    ],
    ids=["too-large", "binary", "not-toml", "unknown-method", "negative-epochs"],
)
def test_bad_upload_is_refused_and_nothing_written(tmp_path, payload, fragment):
    before = files_under(tmp_path)
    with pytest.raises(SpecError) as err:
        data.save_upload(payload, tmp_path, name="../../evil.toml")
    assert fragment in str(err.value)
    assert "uploaded study 'evil.toml'" in str(err.value)  # the name is shown, never used as a path
    assert files_under(tmp_path) == before


def test_good_upload_is_kept_in_the_store_under_its_hash(tmp_path):
    payload = STUDY.format(name="colleague").encode()
    upload = data.save_upload(payload, tmp_path / "cache", name="../../x.toml")
    assert files_under(tmp_path) == {f"cache/.uploads/{upload}.toml"}
    assert data.upload_path(tmp_path / "cache", upload).read_bytes() == payload
    assert data.save_upload(payload, tmp_path / "cache") == upload  # same content, same id
    for bad in ("../../etc/passwd", upload.upper(), upload + "0", ""):
        assert data.upload_path(tmp_path / "cache", bad) is None


@pytest.fixture
def app(tmp_path, monkeypatch, compute_forbidden):
    """The app on a default study with an uploaded one beside it; computing fails the test."""
    default = tmp_path / "default.toml"
    default.write_text(STUDY.format(name="the-default"))
    cache = tmp_path / "cache"
    upload = data.save_upload(STUDY.format(name="the-upload").encode(), cache)
    monkeypatch.setenv("PRUNESCOPE_STUDY", str(default))
    monkeypatch.setenv("PRUNESCOPE_CACHE", str(cache))
    at = AppTest.from_file(str(APP), default_timeout=120)
    return at, upload


def sidebar_text(at: AppTest) -> str:
    """The sidebar's markdown, joined."""
    return " ".join(m.value for m in at.sidebar.markdown)


def test_url_reopens_an_uploaded_study(app):
    at, upload = app
    at.query_params = {"study": upload}
    at.run()
    assert not at.exception
    assert "the-upload" in sidebar_text(at)
    assert at.query_params.get("study") == upload
    at.sidebar.button[0].click().run()  # back to the default study
    assert "the-default" in sidebar_text(at)
    assert "study" not in at.query_params


@pytest.mark.parametrize("bad", ["../../etc/passwd", "0123456789abcdef"])
def test_unknown_or_path_like_study_id_is_ignored(app, bad):
    at, _ = app
    at.query_params = {"study": bad}
    at.run()
    assert not at.exception and not at.error
    assert "the-default" in sidebar_text(at)
    assert "study" not in at.query_params
    (said,) = at.sidebar.warning  # not silently: the link's study is not here
    assert "not available here" in said.value and "default study" in said.value


def _breaks(monkeypatch, where: str) -> None:
    """Make the uploaded study fail while loading (``load``) or reading its results (``read``)."""
    from analysis import plan

    real_load, real_summarize = data.with_available_data, plan.summarize

    def load(study, root=None):
        if study.name == "the-upload":
            raise RuntimeError("the loader broke\nTraceback (most recent call last): ...")
        return real_load(study, root)

    def summarize(study, store):
        if study.name == "the-upload":
            raise KeyError("surfaces")
        return real_summarize(study, store)

    if where == "load":
        monkeypatch.setattr(data, "with_available_data", load)
    else:
        monkeypatch.setattr(plan, "summarize", summarize)


PAGES = sorted(
    p.relative_to(APP.parent).as_posix()
    for p in (APP.parent / "app_pages").glob("*.py")
    if not p.name.startswith("_")
)


@pytest.mark.parametrize("page", PAGES)
@pytest.mark.parametrize(("where", "reason"), [("load", "the loader broke"), ("read", "surfaces")])
def test_a_study_that_breaks_can_always_be_left(app, monkeypatch, where, reason, page):
    """Loading or reading raises: one error line, no traceback, and both leave controls work."""
    at, upload = app
    _breaks(monkeypatch, where)
    at.query_params = {"study": upload}
    at.run()
    at.switch_page(page).run()
    assert not at.exception, [e.value for e in at.exception]
    errors = [e.value for e in at.error]
    assert errors and all("\n" not in e for e in errors), errors
    assert any(reason in e for e in errors), errors
    assert "Open another study" in [e.label for e in at.sidebar.expander]
    assert at.get("file_uploader"), "the upload control is drawn"
    at.sidebar.button(key="back_to_default").click().run()
    assert not at.exception and not at.error
    assert "the-default" in sidebar_text(at)
    assert "study" not in at.query_params
