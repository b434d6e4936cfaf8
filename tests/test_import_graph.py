"""The package's layers, read from the source: every import of every module (top level, inside
functions, for type checking) becomes an arrow between subpackages, and the arrows must go one way.

A unit is a subpackage (``genetic_cnn/space/`` ...) or a top-level module (``config``, ``evolution`` ...);
the package's own ``__init__`` is ``genetic_cnn``. Each subpackage's ``__init__`` docstring says what it
may import; the rules below hold it to that."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import networkx as nx
import pytest

import genetic_cnn

PACKAGE = Path(genetic_cnn.__file__).parent
ROOT = "genetic_cnn"


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def unit_of(module: str) -> str:
    """``genetic_cnn.space.graph`` -> ``space``; ``genetic_cnn.config`` -> ``config``; the package -> ``genetic_cnn``."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ROOT


MODULES = {module_name(path): path for path in sorted(PACKAGE.rglob("*.py"))}
TREES = {name: ast.parse(path.read_text(encoding="utf-8")) for name, path in MODULES.items()}


def imports(tree: ast.Module) -> Iterator[tuple[str, ast.stmt]]:
    """Every package module a tree imports, wherever the import statement stands."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            # ``from genetic_cnn.search import pareto`` imports the module genetic_cnn.search.pareto
            names = [node.module, *(f"{node.module}.{alias.name}" for alias in node.names)]
        else:
            continue
        for name in names:
            if name in MODULES:
                yield name, node


def unit_graph() -> nx.DiGraph:
    """Arrows between units; ``edges[a, b]["how"]`` names one import that makes each arrow."""
    graph = nx.DiGraph()
    graph.add_nodes_from(unit_of(name) for name in MODULES)
    for name, tree in TREES.items():
        for target, node in imports(tree):
            source, destination = unit_of(name), unit_of(target)
            if source != destination:
                graph.add_edge(source, destination, how=f"{name} imports {target} (line {node.lineno})")
    return graph


GRAPH = unit_graph()


def importers_of(unit: str) -> set[str]:
    return set(GRAPH.predecessors(unit))


def test_the_graph_is_read_correctly() -> None:
    """Known arrows, one imported at the top of a module and one inside a function: both kinds are seen."""
    assert {"space", "search", "fitness", "nn", "data", "history", "tables", "tools", "report", "cli"} <= set(GRAPH)
    assert GRAPH.has_edge("search", "space")  # strategies.py: from genetic_cnn.space.genome import Genome
    assert GRAPH.has_edge("evolution", "fitness")
    assert GRAPH.has_edge("report", "history")
    assert GRAPH.has_edge("cli", "evolution")  # inside cmd_evolve


def test_no_circle_between_subpackages() -> None:
    # The package's __init__ imports its public names from everywhere (lazily), and evolution reads its
    # __version__: the one arrow back to it, kept out of the circles and ruled on below.
    layers = GRAPH.copy()
    layers.remove_node(ROOT)
    cycles = sorted(nx.simple_cycles(layers), key=len)
    assert not cycles, "circles: " + "; ".join(
        " -> ".join([*cycle, cycle[0]]) + f" ({GRAPH.edges[cycle[-1], cycle[0]]['how']})" for cycle in cycles[:5]
    )


def test_only_evolution_reads_the_package_itself() -> None:
    assert importers_of(ROOT) <= {"evolution"}, [GRAPH.edges[u, ROOT]["how"] for u in importers_of(ROOT)]


def test_no_import_by_name() -> None:
    """Every import is an import statement the graph above can see: no importlib.import_module, no __import__."""
    found = []
    for name, tree in TREES.items():
        for node in ast.walk(tree):
            if isinstance(node, ast.Call):
                called = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
                if called in ("import_module", "__import__"):
                    found.append(f"{name} line {node.lineno}: {called}")
    assert not found, found


ALLOWED = {
    # unit: the units it may import (besides itself)
    "errors": set(),
    "progress": set(),
    "files": {"errors"},
    "space": {"errors"},
    "config": {"errors", "space"},
    "search": {"space", "config", "errors"},
    "data": {"config", "errors", "progress"},
    "history": {"space", "search", "config", "errors", "files"},  # files imports errors only: summary.json is written atomically
    "tables": {"space", "search", "config", "errors"},
    "nn": {"space", "data", "config", "errors", "progress"},
    "fitness": {"space", "search", "nn", "data", "tables", "history", "config", "errors", "progress"},
    "executors": {"space", "search", "fitness", "data", "config", "errors"},
    "report": {"space", "search", "fitness", "history", "config", "errors", "files"},
}


@pytest.mark.parametrize("unit", sorted(ALLOWED))
def test_imports_go_down_only(unit: str) -> None:
    """No arrow back up: the lower layers never import the driver, the tools, the reports or the CLI."""
    wrong = {target: GRAPH.edges[unit, target]["how"] for target in GRAPH.successors(unit) if target not in ALLOWED[unit]}
    assert not wrong, wrong


def test_nothing_but_the_cli_imports_the_cli() -> None:
    assert importers_of("cli") == set(), [GRAPH.edges[u, "cli"]["how"] for u in importers_of("cli")]


def test_the_driver_is_imported_only_from_above() -> None:
    """evolution (start_run, resume_run) is used by the commands, the tools that start runs, and the public API."""
    assert importers_of("evolution") <= {"cli", "tools", ROOT}, [GRAPH.edges[u, "evolution"]["how"] for u in importers_of("evolution")]


NO_TORCH = ("space", "search", "history", "tables", "config", "fitness.methods", "fitness.table", "cli")


def test_torch_free_layers_import_torch_only_inside_functions() -> None:
    """What the subpackages' docstrings promise: these import torch at most inside a function, when it is needed."""
    found = []
    for name, tree in TREES.items():
        if not name.removeprefix(ROOT + ".").startswith(NO_TORCH):
            continue
        for node in tree.body:  # module level only
            modules = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            found += [f"{name} line {node.lineno}" for module in modules if module.split(".")[0] in ("torch", "torchvision")]
    assert not found, found


PURE_TESTS = ("space", "search", "tables")


def test_the_pure_tests_import_no_torch() -> None:
    """The tests of the torch-free layers load neither torch nor matplotlib: ``pytest tests/space`` runs without them."""
    import subprocess
    import sys

    tests = Path(__file__).parent
    modules = [path for unit in PURE_TESTS for path in sorted((tests / unit).glob("test_*.py"))]
    assert len(modules) >= 8  # the folders were found
    paths = [str(tests), *sorted({str(path.parent) for path in modules})]
    code = (
        f"import sys; sys.path[:0] = {paths!r}\n"
        + "".join(f"import {path.stem}\n" for path in modules)
        + "print(sorted(name for name in ('torch', 'matplotlib') if name in sys.modules))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]", result.stdout
