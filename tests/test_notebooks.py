"""The notebooks run top to bottom, on a tiny run made here, in a kernel of this interpreter."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

nbclient = pytest.importorskip("nbclient")
nbformat = pytest.importorskip("nbformat")
pytest.importorskip("ipykernel")

from conftest import TINY  # noqa: E402

from genetic_cnn.config import load_config  # noqa: E402
from genetic_cnn.evolution import start_run  # noqa: E402

NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"


@pytest.fixture(scope="module")
def environment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A tiny run for GENETIC_CNN_RUN, and a "python3" kernelspec that starts this interpreter.

    JUPYTER_PATH comes first when kernelspecs are looked up, so the notebooks run in this venv
    whatever kernels the user has installed.
    """
    root = tmp_path_factory.mktemp("notebooks")
    run = start_run(
        load_config(None, [*TINY, "run.threads=1"]), out=root / "run", progress=False, echo=lambda line: None
    )
    kernel = root / "jupyter" / "kernels" / "python3"
    kernel.mkdir(parents=True)
    spec = {
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "Python 3 (genetic-cnn tests)",
        "language": "python",
    }
    (kernel / "kernel.json").write_text(json.dumps(spec), encoding="utf-8")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("GENETIC_CNN_RUN", str(run))
        patch.setenv(
            "JUPYTER_PATH", os.pathsep.join(filter(None, [str(root / "jupyter"), os.environ.get("JUPYTER_PATH")]))
        )
        patch.setenv("MPLBACKEND", "Agg")
        yield run


def execute(name: str) -> nbformat.NotebookNode:
    notebook = nbformat.read(NOTEBOOKS / name, as_version=4)
    client = nbclient.NotebookClient(
        notebook, kernel_name="python3", timeout=600, resources={"metadata": {"path": str(NOTEBOOKS)}}
    )
    client.execute()  # raises CellExecutionError on the first failing cell
    return notebook


def outputs(notebook: nbformat.NotebookNode) -> str:
    return "\n".join(
        output.get("text", "") + json.dumps(output.get("data", {}).get("text/plain", ""))
        for cell in notebook.cells if cell.cell_type == "code" for output in cell.get("outputs", [])
    )  # fmt: skip


@pytest.mark.parametrize("name", ["inspect_genomes.ipynb", "analyze_run.ipynb"])
def test_notebook_is_committed_without_outputs(name: str) -> None:
    notebook = nbformat.read(NOTEBOOKS / name, as_version=4)
    nbformat.validate(notebook)
    for cell in notebook.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None, f"{name}: clear the outputs before committing"


@pytest.mark.slow
def test_inspect_genomes_runs(environment: Path) -> None:
    text = outputs(execute("inspect_genomes.ipynb"))
    assert "same architecture: True" in text
    # The notebook's claim about the MNIST space: 2^13 strings, 1,812 networks. tests/space/test_graph.py
    # proves the keys exact by graph isomorphism over every stage: 6 x 302 classes.
    assert "8,192 strings, 1,812 distinct architectures" in text
    assert "1-01|0-01-100|0-11-101-0001" in text


def test_analyze_run_runs_on_the_given_run(environment: Path) -> None:
    notebook = execute("analyze_run.ipynb")
    text = outputs(notebook)
    assert f"run folder: {environment}" in text
    assert "the table agrees with the database" in text
    images = sum("image/png" in output.get("data", {}) for cell in notebook.cells for output in cell.get("outputs", []))
    assert images >= 3
