"""The package's shape: no import circles, one training loop. Read from the source, so a change that
breaks either fails here before anyone has to notice it in review."""

from __future__ import annotations

import ast
from pathlib import Path

import networkx as nx

import genetic_cnn

PACKAGE = Path(genetic_cnn.__file__).parent


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_modules(path: Path, known: set[str]) -> set[str]:
    """Every package module ``path`` imports anywhere (top level, inside functions, for type checking)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            # ``from genetic_cnn.report import plots`` imports the module genetic_cnn.report.plots
            names = [f"{node.module}.{alias.name}" for alias in node.names] + [node.module]
        else:
            continue
        for name in names:
            if name in known:
                found.add(name)
    return found


def import_graph() -> nx.DiGraph:
    files = {module_name(path): path for path in PACKAGE.rglob("*.py")}
    graph = nx.DiGraph()
    graph.add_nodes_from(files)
    for name, path in files.items():
        for target in imported_modules(path, set(files)):
            # A module's own packages are imported before it in any case: that edge says nothing.
            if target != name and not name.startswith(target + "."):
                graph.add_edge(name, target)
    return graph


def test_the_import_graph_is_read_correctly() -> None:
    graph = import_graph()
    assert graph.number_of_nodes() > 20
    # Known edges, top level and inside a function: the checker sees both kinds.
    assert graph.has_edge("genetic_cnn.space.graph", "genetic_cnn.space.genome")
    assert graph.has_edge("genetic_cnn.report.markdown", "genetic_cnn.report.plots")  # imported inside a function


def test_no_module_imports_one_that_imports_it_back() -> None:
    cycles = sorted(nx.simple_cycles(import_graph()), key=len)
    assert not cycles, "import circles: " + "; ".join(" -> ".join([*cycle, cycle[0]]) for cycle in cycles[:5])


def test_one_training_loop() -> None:
    """``.backward()`` runs in the trainer and the FLOP counter only: every training goes through ``fit``."""
    places = sorted(
        str(path.relative_to(PACKAGE))
        for path in PACKAGE.rglob("*.py")
        for line in path.read_text(encoding="utf-8").splitlines()
        if ".backward()" in line and not line.lstrip().startswith("#")
    )
    assert places == ["nn/network.py", "nn/train.py"], places
