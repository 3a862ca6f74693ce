"""The Representations page's linked views: one sample ringed in every embedding panel and named
in the URL (``?sample=``), 3-D cameras linked, CKA on the data's range, the numbers per run or
per method (dashboard/figures/representations.py and representation_numbers.py)."""

from __future__ import annotations

import base64
import json

import numpy as np
import plotly.graph_objects as go
import pytest

from dashboard.figures import representation_numbers as rn
from dashboard.figures import representations as fr
from tests.test_export import prefilled

PAGE = "app_pages/representations.py"


@pytest.fixture(scope="module")
def filled(tmp_path_factory):
    """The dashboard tests' small study (one seed, representations computed) and its store."""
    return prefilled(tmp_path_factory)


@pytest.fixture
def app(filled, compute_forbidden, monkeypatch):
    """An AppTest of the dashboard on the pre-filled small study, not yet run."""
    from streamlit.testing.v1 import AppTest

    from tests.test_dashboard_app import APP, TIMEOUT

    monkeypatch.setenv("PRUNESCOPE_STUDY", str(filled[0]))
    monkeypatch.setenv("PRUNESCOPE_CACHE", str(filled[1]))
    return AppTest.from_file(str(APP), default_timeout=TIMEOUT)


def charts(at) -> dict[str, go.Figure]:
    """The plotly figures on the page, by element key (typed arrays decoded)."""
    return {
        c.key: go.Figure(decoded(json.loads(c.proto.spec)), skip_invalid=True)
        for c in at.get("plotly_chart")
    }


def decoded(node):
    """A figure's JSON with plotly's typed arrays (``{"dtype", "bdata", "shape"}``) as numpy."""
    if isinstance(node, dict) and "bdata" in node and "dtype" in node:
        values = np.frombuffer(base64.b64decode(node["bdata"]), dtype=node["dtype"])
        shape = node.get("shape")
        return values.reshape([int(n) for n in str(shape).split(",")]) if shape else values
    if isinstance(node, dict):
        return {k: decoded(v) for k, v in node.items()}
    if isinstance(node, list):
        return [decoded(v) for v in node]
    return node


def rings(figure: go.Figure) -> list:
    """The ring traces (the chosen sample) of an embedding figure."""
    return [t for t in figure.data if t.legendgroup == "sample"]


def point_of(figure: go.Figure, axis: str, index: int) -> tuple[float, float]:
    """(x, y) of the sample with dataset ``index`` among the class traces of one panel."""
    for t in figure.data:
        if t.legendgroup == "sample" or (t.xaxis or "x") != axis:
            continue
        for k, data in enumerate(t.customdata):
            if int(data[1]) == index:
                return t.x[k], t.y[k]
    raise AssertionError(f"sample {index} not in panel {axis}")


def test_a_sample_in_the_url_is_ringed_in_every_panel_and_round_trips(app):
    app.run()
    app.switch_page(PAGE).run()
    assert not app.exception, [e.value for e in app.exception]
    box = app.selectbox(key="select_sample")
    index = box.options[5]
    box.set_value(index).run()
    assert app.query_params.get("sample") == index
    url = dict(app.query_params)

    from streamlit.testing.v1 import AppTest

    from tests.test_dashboard_app import APP, TIMEOUT

    again = AppTest.from_file(str(APP), default_timeout=TIMEOUT)
    again.query_params.update(url)
    again.run()
    again.switch_page(PAGE).run()
    assert not again.exception, [e.value for e in again.exception]
    assert again.selectbox(key="select_sample").value == index
    figure = charts(again)["embedding"]
    ringed = rings(figure)
    panels = sorted({t.xaxis or "x" for t in figure.data})
    assert len(ringed) == len(panels) == 2
    for ring in ringed:
        assert ring.name == f"sample #{index}" and ring.marker.symbol == "circle-open"
        x, y = point_of(figure, ring.xaxis or "x", int(index))
        assert (ring.x[0], ring.y[0]) == pytest.approx((x, y))  # on the sample itself
    notes = [a.text for a in charts(again)["sample_image"].layout.annotations]
    assert any(f"#{index} label" in n for n in notes)


def test_3d_embeddings_turn_together_and_keep_the_ring(app):
    app.query_params = {"dims": "3", "sample": "0"}
    app.run()
    app.switch_page(PAGE).run()
    assert not app.exception, [e.value for e in app.exception]
    assert "embedding" not in charts(app)
    (frame,) = app.get("iframe")
    assert '["scene", "scene2"]' in frame.proto.srcdoc and "plotly_relayout" in frame.proto.srcdoc
    assert "circle-open" in frame.proto.srcdoc


def test_cka_colours_span_the_data_and_the_numbers_are_per_run(app):
    app.run()
    app.switch_page(PAGE).run()
    (heatmap,) = charts(app)["cka"].data
    z = np.asarray(heatmap.z, dtype=float)
    assert z.min() < 0.99  # the two runs differ: a 0..1 scale would squeeze them
    assert (heatmap.zmin, heatmap.zmax) == pytest.approx((z.min(), z.max()))
    assert "range" in charts(app)["cka"].layout.title.text
    table = app.dataframe[0].value
    assert list(table["Run"]) == ["dense s0", "magnitude 50% s0"]
    assert table["k-NN accuracy"].str.endswith("%").all()
    assert table.loc[0, "CKA to dense"] == "—"  # the dense run itself


# -- pure functions ----------------------------------------------------------------


def entry() -> dict:
    """A representations entry of four runs: dense and magnitude, seeds 0 and 1."""
    runs = [
        {"label": f"{m} s{s}", "flips_vs": f"dense s{s}", "knn_acc": acc, "silhouette": 0.1,
         "flips_lost": lost, "flips_gained": 1}
        for m, s, acc, lost in (("dense", 0, 0.9, 0), ("dense", 1, 0.8, 0),
                                ("magnitude 90%", 0, 0.7, 3), ("magnitude 90%", 1, 0.6, 5))
    ]  # fmt: skip
    cka = [[1.0, 0.9, 0.6, 0.5], [0.9, 1.0, 0.55, 0.7], [0.6, 0.55, 1.0, 0.8], [0.5, 0.7, 0.8, 1.0]]
    return {"runs": runs, "labels_of_runs": [r["label"] for r in runs], "cka": cka}


def summary_runs() -> list[dict]:
    """The summary records of the entry's runs."""
    return [
        {"label": f"{name} s{s}", "method": m, "requested_sparsity": sp, "objective": "ce",
         "seed": s, "setting_label": ""}
        for name, m, sp in (("dense", "dense", 0.0), ("magnitude 90%", "magnitude", 0.9))
        for s in (0, 1)
    ]  # fmt: skip


def test_numbers_per_method_are_means_with_clipped_intervals():
    groups = rn.group_values(entry(), summary_runs())
    dense, magnitude = groups.values()
    assert magnitude["cka_to_dense"] == [0.6, 0.7] and dense["cka_to_dense"] == []
    table = rn.group_table(groups).set_index("Method")
    assert table.loc["magnitude 90%", "Seeds"] == 2
    assert table.loc["dense", "CKA to dense"] == "—"
    # mean 85%, t interval 85 ± 63.5 points: clipped to [0, 100]
    assert table.loc["dense", "k-NN accuracy"] == "85% (21.5 to 100)"
    assert rn.summary_of("flips_lost", [3, 5])[1] == 0.0  # no negative count
    fig = rn.group_figure(groups)
    assert len(fig.data) == len(table.columns) - 1  # one panel per number (Seeds is no number)
    knn = fig.data[0]
    assert list(knn.y) == pytest.approx([85.0, 65.0])
    assert knn.error_y.array[0] == pytest.approx(15.0)  # up to the 100% bound


def test_run_table_formats_numbers_for_people():
    table = rn.run_table(entry(), ["magnitude 90% s1", "dense s0", "absent"]).set_index("Run")
    assert list(table.index) == ["magnitude 90% s1", "dense s0"]
    assert table.loc["magnitude 90% s1", "k-NN accuracy"] == "60%"
    assert table.loc["magnitude 90% s1", "CKA to dense"] == "0.7"
    assert table.loc["dense s0", "Trustworthiness (2-D)"] == "—"


def test_cka_range_and_clicks():
    assert fr.cka_range(np.array([[1.0, 0.93], [0.93, 1.0]])) == (0.93, 1.0)
    assert fr.cka_range(np.array([[1.0]])) == pytest.approx((0.999, 1.0))
    assert fr.cka_range(np.array([[np.nan]])) == (0.0, 1.0)
    state = {"selection": {"points": [{"customdata": [4, 1234, "3", "5"]}]}}
    assert fr.clicked_index(state) == "1234"
    assert (
        fr.clicked_index({"selection": {"points": []}}) is None and fr.clicked_index(None) is None
    )
    rep = {"indices": np.array([7, 1234, 9])}
    assert fr.sample_position(rep, "1234") == 1 and fr.sample_position(rep, "8") is None
    assert fr.sample_position(rep, "x") is None
