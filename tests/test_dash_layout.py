"""The shape of dashboard/: thin pages, streamlit-free figures, no import circles, short files.

Read from the source (``ast``), nothing imported: fast, and a page that starts
importing torch or an analysis module, a figure module that imports streamlit, or
a new import circle fails here with the file and the import named.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DASHBOARD = ROOT / "dashboard"
MAX_LINES = 500
#: Files over MAX_LINES that their owner is splitting (issue #11); remove when done.
BEING_SPLIT: set[str] = set()
#: What a page may import: streamlit, and the dashboard's data, ui, live (the work under way
#: in the store, drawn), memo (built figures remembered) and figures.
PAGE_IMPORTS = (
    "streamlit",
    "dashboard.data",
    "dashboard.exports",
    "dashboard.ui",
    "dashboard.live",
    "dashboard.memo",
    "dashboard.figures",
)


def module_name(path: Path) -> str:
    """dashboard/export/__init__.py -> dashboard.export."""
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path: Path) -> list[str]:
    """Every module ``path`` imports (``from a import b`` gives ``a`` and ``a.b``)."""
    tree = ast.parse(path.read_text())
    package = (
        module_name(path) if path.name == "__init__.py" else module_name(path).rpartition(".")[0]
    )
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([node.module] if node.module else []))
            out.append(base)
            out += [f"{base}.{alias.name}" for alias in node.names]
    return out


def sources(folder: Path) -> list[Path]:
    """The Python files under ``folder``."""
    return sorted(folder.rglob("*.py"))


@pytest.mark.parametrize("page", sources(DASHBOARD / "app_pages"), ids=lambda p: p.name)
def test_pages_import_only_data_ui_figures_and_streamlit(page):
    bad = [
        name
        for name in imports(page)
        if name != "dashboard"  # `from dashboard import data, ui` also yields `dashboard`
        and not any(name == ok or name.startswith(f"{ok}.") for ok in PAGE_IMPORTS)
    ]
    assert not bad, f"{page.name} imports {bad}: move what it needs into data.py or a figure"


@pytest.mark.parametrize("module", sources(DASHBOARD / "figures"), ids=lambda p: p.name)
def test_figures_import_no_streamlit(module):
    assert not [n for n in imports(module) if n.split(".")[0] == "streamlit"], module.name


def test_no_import_circles_in_dashboard():
    modules = {module_name(p): p for p in sources(DASHBOARD)}
    edges = {
        name: {n for n in imports(path) if n in modules and n != name}
        for name, path in modules.items()
    }
    # Tarjan's strongly connected components, iteratively small enough to recurse.
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    circles = []

    def visit(v: str) -> None:
        """Tarjan's step: number ``v``, visit what it imports, pop a component at its root."""
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in edges[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while (w := stack.pop()) != v:
                component.append(w)
            if component:
                circles.append(sorted([v, *component]))

    for name in modules:
        if name not in index:
            visit(name)
    assert not circles, f"import circles: {circles}"


@pytest.mark.parametrize("path", sources(DASHBOARD), ids=lambda p: module_name(p))
def test_no_dashboard_file_is_over_500_lines(path):
    relative = path.relative_to(ROOT).as_posix()
    if relative in BEING_SPLIT:
        pytest.skip(f"{relative} is being split by its owner")
    lines = len(path.read_text().splitlines())
    assert lines <= MAX_LINES, f"{relative} has {lines} lines; split it by concern"
