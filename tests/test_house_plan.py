"""The house plan holds: no import circles, small files, every analysis declared once.

The import walk reads every ``import`` statement of ``analysis/`` and
``dashboard/`` from the source (function-level and ``TYPE_CHECKING`` imports
included, which import-linter's graph also sees), so a circle hidden behind a
late import fails here too. ``lint-imports`` (in CI) checks the layer contracts
in ``pyproject.toml``.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from analysis import api, parts

REPO = Path(__file__).resolve().parents[1]
PACKAGES = ("analysis", "dashboard")
MAX_LINES = 520


def module_files() -> dict[str, Path]:
    """Every module of the two packages by dotted name."""
    out = {}
    for package in PACKAGES:
        for path in (REPO / package).rglob("*.py"):
            parts_ = list(path.relative_to(REPO).with_suffix("").parts)
            if parts_[-1] == "__init__":
                parts_ = parts_[:-1]
            out[".".join(parts_)] = path
    return out


def import_graph() -> dict[str, set[str]]:
    """``module -> modules it imports`` (ours only), from every import statement."""
    files = module_files()
    graph: dict[str, set[str]] = {name: set() for name in files}
    for name, path in files.items():
        is_package = path.name == "__init__.py"
        for node in ast.walk(ast.parse(path.read_text())):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    here = name.split(".") if is_package else name.split(".")[:-1]
                    here = here[: len(here) - node.level + 1]
                    base = ".".join(here + ([node.module] if node.module else []))
                # ``from pkg import submodule`` imports the submodule, not the package's names
                subs = [f"{base}.{a.name}" for a in node.names]
                targets = [s for s in subs if s in files] or [base]
            for target in targets:
                if target in files and target != name:
                    graph[name].add(target)
    return graph


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = 0
    for root in graph:
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def test_no_import_circles_in_analysis_or_dashboard():
    assert circles(import_graph()) == []


def test_the_circle_finder_finds_a_circle():
    assert circles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


@pytest.mark.parametrize("package", PACKAGES)
def test_no_file_over_about_500_lines(package):
    long = {
        str(p.relative_to(REPO)): n
        for p in (REPO / package).rglob("*.py")
        if (n := len(p.read_text().splitlines())) > MAX_LINES
    }
    assert long == {}


def test_every_kind_is_declared_once_and_installed():
    declared = [kind for analysis in parts.ANALYSES for kind in analysis.kinds]
    names = [kind.name for kind in declared]
    assert len(names) == len(set(names))
    for kind in declared:
        assert kind.spec.kind == kind.name
        assert api.KINDS[kind.name] is kind
    assert list(parts.PARTS)[0] == "runs"


def test_nothing_is_loaded_by_a_string():
    """No importlib in the backend but the executor's spec rebuild (module named in the payload)."""
    users = {
        str(p.relative_to(REPO))
        for p in (REPO / "analysis").rglob("*.py")
        if "importlib" in p.read_text()
    }
    assert users <= {"analysis/executor/worker.py"}
