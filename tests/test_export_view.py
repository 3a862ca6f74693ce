"""What the export shows: the sidebar's filters (options or a copied link), figures picked by
name, large figures split on one scale, slide titles in title placeholders. No store here:
summaries, representations and pairs are written out by hand."""

from __future__ import annotations

import io

import numpy as np
import plotly.graph_objects as go
import pytest
from PIL import Image

from analysis.errors import SpecError
from dashboard import export
from dashboard.export import split, view
from dashboard.export.sections import TableItem
from dashboard.figures import connectivity as fconn
from dashboard.figures.items import FigureItem
from dashboard.figures.theme import NORMAL


def _run(method: str, sparsity: float, seed: int, acc: float, setting: str = "") -> dict:
    label = f"{method} {100 * sparsity:g}% s{seed}" if sparsity else f"{method} s{seed}"
    return {
        "label": (f"{setting} · " if setting else "") + label, "key": f"k-{setting}{label}",
        "method": method, "requested_sparsity": sparsity, "seed": seed, "objective": "ce",
        "setting": {}, "setting_label": setting, "status": "cached", "test_acc": acc,
    }  # fmt: skip


@pytest.fixture
def summary() -> dict:
    """Dense and magnitude at 50% and 90%, seeds 0-2: magnitude 90% has accuracy 0.5 + seed/10."""
    runs = [_run("dense", 0.0, s, 0.9) for s in range(3)]
    runs += [_run("magnitude", p, s, 0.5 + s / 10) for p in (0.5, 0.9) for s in range(3)]
    doc = {"runs": runs, "study": {"axes": {}}, "connectivity": {"pairs": []}}
    from analysis.group_stats import group_statistics

    doc["groups"] = group_statistics(doc)
    return doc


def test_a_dashboard_link_reads_as_the_sidebar_wrote_it(summary):
    # As ui._filter writes them: floats by repr, several values repeated, ?name= for none.
    link = "http://127.0.0.1:8501/export?method=magnitude&sparsity=0.9&seed=0&seed=2&seeds=each"
    filters = view.from_query(link)
    assert filters.method == ("magnitude",) and filters.sparsity == (0.9,)
    assert filters.seed == (0, 2) and filters.grouped is False and filters.setting is None
    runs = view.select(summary, filters, strict=False)
    assert [r["label"] for r in runs] == ["magnitude 90% s0", "magnitude 90% s2"]
    assert view.from_query("?seed=").seed == ()  # the empty choice
    assert view.select(summary, view.from_query("?seed="), strict=False) == []
    assert view.from_query("").is_all() and view.from_query("?seeds=each").grouped is False


def test_an_old_link_falls_back_like_the_sidebar_and_options_are_strict(summary):
    old = view.from_query("?method=lottery")  # a method this study does not have
    assert len(view.select(summary, old, strict=False)) == len(summary["runs"])
    with pytest.raises(SpecError, match=r"'method'.*dense, magnitude.*lottery"):
        view.select(summary, old)
    with pytest.raises(SpecError, match=r"'sparsity'.*50%, 90%.*80%"):
        view.select(summary, view.from_options(sparsity=["0.8"]))


def test_command_line_options_take_percentages_and_lists(summary):
    filters = view.from_options(sparsity=["90%"], seed=["0,1"], method=None)
    assert filters.sparsity == (0.9,) and filters.seed == (0, 1) and filters.method is None
    assert len(view.select(summary, filters)) == 2  # dense (sparsity 0) left out, as in the sidebar
    with pytest.raises(SpecError, match="'seed'.*integer"):
        view.from_options(seed=["one"])
    with pytest.raises(SpecError, match="'view'.*--method"):
        view.filters_of("?seed=0", method=["dense"], seed=None)


def test_group_statistics_follow_the_seeds_shown(summary):
    chosen = view.select(summary, view.from_options(seed=["0,1"]))
    narrow = view.narrowed(summary, chosen)
    group = next(g for g in narrow["groups"] if g["method"] == "magnitude" and g["sparsity"] == 0.9)
    assert group["seeds"] == [0, 1] and group["metrics"]["test_acc"]["mean"] == pytest.approx(0.55)
    assert "of 9 runs: seed 0, 1" in view.describe(summary, chosen)
    assert view.narrowed(summary, summary["runs"]) is summary


def test_grouping_defaults_to_several_seeds(summary):
    runs = summary["runs"]
    assert view.grouped(view.Filters(), runs) is True
    assert view.grouped(view.Filters(grouped=False), runs) is False
    assert view.grouped(view.Filters(), runs[:1]) is False  # one seed: nothing to group


# -- picking figures -------------------------------------------------------------------


def _item(section: str, name: str) -> FigureItem:
    return FigureItem(section, name, name.replace("-", " "), "words", go.Figure())


ITEMS = [
    _item("Overview", "overview-accuracy"),
    _item("Ranking", "ranking-50"),
    _item("Ranking", "ranking-90"),
    _item("Representations", "representations-ce-cka-1"),
    _item("Representations", "representations-ce-cka-2"),
]


def test_figures_are_picked_by_name_split_name_section_or_glob():
    assert export.pick(ITEMS, []) == ITEMS
    picked = export.pick(ITEMS, ["ranking", "overview-accuracy"])  # the order asked for
    assert [i.name for i in picked] == ["ranking-50", "ranking-90", "overview-accuracy"]
    assert [i.name for i in export.pick(ITEMS, ["representations-ce-cka"])] == [
        "representations-ce-cka-1", "representations-ce-cka-2",
    ]  # fmt: skip
    assert len(export.pick(ITEMS, ["*-cka-2", "Ranking"])) == 3
    with pytest.raises(SpecError, match=r"'figures'.*overview-accuracy, ranking-50.*nope"):
        export.pick(ITEMS, ["ranking", "nope"])


def test_an_unknown_barrier_lists_the_definitions():
    with pytest.raises(SpecError, match="'barrier'.*barrier_entezari.*error_barrier"):
        export.Choice(barrier="entezari")


# -- splitting -------------------------------------------------------------------------


def _rep(n: int) -> dict:
    """A representations entry of ``n`` runs with a symmetric CKA matrix in [0.3, 1]."""
    rng = np.random.default_rng(0)
    m = rng.uniform(0.3, 0.95, (n, n))
    m = (m + m.T) / 2
    np.fill_diagonal(m, 1.0)
    labels = [f"run {i}" for i in range(n)]
    return {"summary": {"cka": m.tolist(), "labels_of_runs": labels, "runs": [{}] * n}}


def test_an_18_run_cka_matrix_is_split_into_blocks_on_one_colour_scale():
    rep = _rep(18)
    item = FigureItem("Representations", "cka", "Linear CKA", "words", go.Figure())
    parts = split.cka_parts(item, rep, list(range(18)), NORMAL)
    assert len(parts) == 6  # three blocks of six runs: the upper triangle of blocks
    assert [p.name for p in parts] == [f"cka-{k}" for k in range(1, 7)]
    assert all(p.title.endswith(f"({k}/6)") for k, p in enumerate(parts, 1))
    matrix = np.asarray(rep["summary"]["cka"])
    low = matrix[~np.eye(18, dtype=bool)].min()
    seen = set()
    for part in parts:
        (trace,) = part.figure.data
        assert (trace.zmin, trace.zmax) == (pytest.approx(low), 1.0)
        assert len(trace.x) <= split.CKA_RUNS and len(trace.y) <= split.CKA_RUNS
        for r, y in enumerate(trace.y):
            for c, x in enumerate(trace.x):
                i, j = int(y.split()[1]), int(x.split()[1])
                assert trace.z[r][c] == pytest.approx(matrix[i, j])
                seen.add((min(i, j), max(i, j)))
    assert len(seen) == 18 * 19 // 2  # every pair of runs is in some block
    small = split.cka_parts(item, _rep(8), list(range(8)), NORMAL)
    assert [p.name for p in small] == ["cka"]


def _pair(k: int, loss_peak: float) -> list[dict]:
    """The naive and weight-matched pair of group ``k``: loss peaks at ``loss_peak``."""
    out = []
    for alignment in ("naive", "weight"):
        peak = loss_peak if alignment == "naive" else 1.0
        out.append({
            "run_a": f"m{k} 90% s0", "run_b": f"m{k} 90% s1", "pair": "seeds", "method": "magnitude",
            "alignment": alignment, "repair": False, "status": "cached",
            "curve": {"alphas": [0, 0.5, 1], "test_loss": [0.5, peak, 0.5],
                      "test_acc": [0.9, 0.5, 0.9], "sparsity": [0.9, 0.8, 0.9]},
            "barriers": {"test": {b: peak / (1 + i) for i, b in enumerate(fconn.BARRIERS)}},
        })  # fmt: skip
    return out


def test_a_grid_of_many_path_panels_is_split_on_one_loss_range():
    pairs = [p for k in range(16) for p in _pair(k, 2.0 + k)]
    conn = {"pairs": pairs}
    runs = [{"label": f"m{k} 90% s{s}"} for k in range(16) for s in (0, 1)]
    item = FigureItem("Connectivity", "paths", "Paths", "words", go.Figure())
    parts = split.path_parts(item, conn, runs, lambda c, r: fconn.path_curves(c, r, "test"))
    assert len(parts) == 4  # 16 panels, four per slide
    ranges = set()
    for part in parts:
        loss_axes = {t.yaxis for t in part.figure.data if "loss %{y" in (t.hovertemplate or "")}
        assert len(loss_axes) == split.PATH_PANELS  # a panel: loss above accuracy
        for axis in loss_axes:
            ranges.add(tuple(part.figure.layout["yaxis" + axis[1:]].range))
    ((low, high),) = ranges  # one loss range in every part, holding every peak
    assert low < 0.5 and high > 17.0
    bars = split.path_parts(
        item, conn, runs, lambda c, r: fconn.barrier_bars(c, r, "error_barrier"),
        split.BAR_GROUPS, split.same_bar_range,
    )  # fmt: skip
    assert len(bars) == 3 and len({tuple(b.figure.layout.xaxis.range) for b in bars}) == 1


def test_chunks_are_even():
    assert [len(r) for r in split.chunks(18, 8)] == [6, 6, 6]
    assert [len(r) for r in split.chunks(9, 4)] == [3, 3, 3]
    assert [list(r) for r in split.chunks(3, 4)] == [[0, 1, 2]]


# -- slides ----------------------------------------------------------------------------


def _png(width: int, height: int) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height), "white").save(out, format="PNG")
    return out.getvalue()


def test_every_slide_title_is_a_title_placeholder_and_tables_are_tables():
    from pptx import Presentation

    table = TableItem(
        "Ranking", "ranking-90", "Methods at 90% sparsity", "words", go.Figure(),
        header=("Method", "Seeds", "test accuracy"),
        rows=(("dense", "3", "0.91 [0.9 to 0.92]"), ("magnitude", "3", "0.8\nvs dense -0.1 *")),
    )  # fmt: skip
    items = [ITEMS[0], table, ITEMS[1]]
    summary = {"study": {"name": "s", "dataset": "digits", "arch": "mlp"},
               "counts": {"cached": 3, "runs": 4}}  # fmt: skip
    deck = Presentation(
        io.BytesIO(export.pptx_deck(items, summary, [_png(800, 400)] * 2, notes=["Runs: 3"]))
    )
    slides = list(deck.slides)
    assert [s.shapes.title.text for s in slides] == ["s"] + [i.title for i in items]
    assert "Runs: 3" in slides[0].placeholders[1].text
    for slide in slides[1:]:
        title = slide.shapes.title
        assert title.is_placeholder and title.left + title.width <= deck.slide_width
        body = [s for s in slide.shapes if s.has_table or s.shape_type == 13]
        assert len(body) == 1 and body[0].top >= title.top + title.height  # under the title
    (shape,) = [s for s in slides[2].shapes if s.has_table]
    cells = [[c.text for c in row.cells] for row in shape.table.rows]
    assert cells[0] == list(table.header) and cells[2][2] == "0.8\nvs dense -0.1 *"
    assert sum(c.width for c in shape.table.columns) <= deck.slide_width


def test_a_heatmap_of_many_runs_is_split_by_rows_on_one_colour_scale():
    from dashboard.figures.runs import layer_sparsity_heatmap

    runs = [
        {**_run("magnitude", 0.9, s, 0.8), "label": f"r{s}", "layer_sparsity": {"fc": s / 42}}
        for s in range(42)
    ]
    item = FigureItem("Overview", "overview-layers", "Sparsity per layer", "words", go.Figure())
    parts = split.run_parts(item, runs, layer_sparsity_heatmap)
    assert len(parts) == 3 and [p.name for p in parts] == [
        f"overview-layers-{k}" for k in (1, 2, 3)
    ]
    rows = [y for p in parts for y in p.figure.data[0].y]
    assert rows == [r["label"] for r in runs]  # every run once, in order
    assert {(p.figure.data[0].zmin, p.figure.data[0].zmax) for p in parts} == {(0, 100)}
    assert parts[0].caption.startswith("Part 1 of 3: r0 … r13.")


def test_accuracy_against_sparsity_is_not_drawn_twice_when_grouped(summary):
    from dashboard.export import sections

    each = [i.name for i in sections.sweeps(summary, NORMAL, "barrier_entezari", grouped=False)]
    assert each == ["sweeps-accuracy-sparsity"]  # no pair computed: no barrier figure
    assert sections.sweeps(summary, NORMAL, "barrier_entezari", grouped=True) == []


def test_a_link_is_read_strictly_where_it_can_only_be_a_mistake():
    with pytest.raises(SpecError, match="dashboard link"):
        view.from_query("garbage")
    with pytest.raises(SpecError, match="'method', not 'methd'"):
        view.from_query("?methd=lottery")
    with pytest.raises(SpecError, match="'seeds', not 'seed_s'"):
        view.from_query("?seed_s=each")
    # the dashboard's own page parameters pass
    assert view.from_query("?dims=3&color=flip&present=1&method=dense").method == ("dense",)
