"""Reports, summaries, end-of-run lines and default folder names say how fitness was measured.

A table run's "1,020 evaluations in 3 s" and a one-shot run's "0.0 s per evaluation" mean nothing
without the method; a one-shot run's supernet training is most of its wall time and must show.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from conftest import TINY
from table_helpers import TINY_SPACE, write_synthetic_table

from genetic_cnn.cli.app import _print_outcome
from genetic_cnn.config import load_config
from genetic_cnn.evolution import default_run_folder, start_run
from genetic_cnn.history.rundata import RunData
from genetic_cnn.report.markdown import comparison_markdown, run_markdown

ONE_SHOT = TINY + ["evaluation.method=one-shot", "evaluation.supernet_schedule=[[2, 0.003]]",
                   "evaluation.calibration_images=64", "evaluation.supernet_sampling=balanced"]  # fmt: skip
QUIET = {"progress": False, "echo": lambda line: None}


@pytest.fixture(scope="module")
def table_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("table")
    table = write_synthetic_table(folder / "tiny-synthetic.json.gz", TINY_SPACE)
    config = load_config(None, [*TINY_SPACE, "evaluation.method=table", f"evaluation.table={table}"])
    return start_run(config, out=folder / "run", **QUIET)


@pytest.fixture(scope="module")
def one_shot_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return start_run(load_config(None, ONE_SHOT), out=tmp_path_factory.mktemp("oneshot") / "run", **QUIET)


def report_text(folder: Path) -> str:
    """The report's Markdown (what ``genetic-cnn report`` writes beside its pictures), without drawing them."""
    return run_markdown(RunData.load(folder), "run")


def section(text: str, title: str) -> str:
    return text.split(f"## {title}\n", 1)[1].split("\n## ", 1)[0]


def test_a_table_run_reports_reading_the_table_not_training(table_run: Path) -> None:
    text = report_text(table_run)
    assert "- fitness: table tiny-synthetic: every evaluation reads one stored seed" in text
    assert re.search(r"evaluations: \d+ read from the table \(", text), text
    assert " trained (" not in text
    assert "stored seeds" in section(text, "Fitness noise") and "trained again" not in section(text, "Fitness noise")
    assert "the times below are lookups" in section(text, "Time and cost")
    summary = json.loads((table_run / "summary.json").read_text())
    assert summary["fitness_method"] == {"method": "table", "label": "table tiny-synthetic", "table": "tiny-synthetic"}


def test_a_one_shot_run_reports_its_supernet_and_deterministic_noise(one_shot_run: Path) -> None:
    summary = json.loads((one_shot_run / "summary.json").read_text())
    method = summary["fitness_method"]
    assert method["method"] == "one-shot" and method["supernet_epochs"] == 2 and method["supernet_seconds"] > 0
    logged = [json.loads(line)["seconds"] for line in (one_shot_run / "supernet" / "epochs.jsonl").read_text().splitlines()]
    assert method["supernet_seconds"] == pytest.approx(sum(logged))
    text = report_text(one_shot_run)
    assert "- fitness: one-shot: every evaluation measures its network's path through one weight-sharing supernet" in text
    assert "the supernet was trained once for this run: 2 epochs in" in text
    assert re.search(r"evaluations: \d+ measured on the supernet \(", text), text
    cost = section(text, "Time and cost")
    assert re.search(r"The one-shot supernet's training took [\d.]+ s \(2 epochs, \d+% of the wall time\)", cost), cost
    noise = section(text, "Fitness noise")
    assert "deterministic given the supernet" in noise and "trained again" not in noise
    assert "seed sd 0.00 pp" in noise  # what "deterministic" promises, measured by the run itself


def test_the_end_of_a_run_names_the_method(one_shot_run: Path, table_run: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _print_outcome(one_shot_run)
    assert re.search(r"^best genome \S+: fitness [\d.]+% \(one-shot, supernet trained 2 epochs in [\d.]+ s\)$",
                     capsys.readouterr().out, re.M)  # fmt: skip
    _print_outcome(table_run)
    assert re.search(r"^best genome \S+: fitness [\d.]+% \(table tiny-synthetic: stored seeds read, nothing trained\), "
                     r"test accuracy [\d.]+%$", capsys.readouterr().out, re.M)  # fmt: skip


def test_a_comparison_names_each_runs_method(one_shot_run: Path, table_run: Path) -> None:
    runs = [one_shot_run, table_run]
    text = comparison_markdown([RunData.load(run) for run in runs], [Path(run.parent.name) for run in runs])
    header = next(line for line in text.splitlines() if line.startswith("| run "))
    assert "| fitness |" in header
    rows = [line for line in text.splitlines() if line.startswith("| [")]
    assert "| one-shot |" in rows[0] and "| table tiny-synthetic |" in rows[1]


@pytest.mark.parametrize(
    ("settings", "method"),
    [([], "standalone"), (["evaluation.method=one-shot"], "one-shot"),
     (["evaluation.method=table", "evaluation.table=digits-standalone"], "table-digits-standalone"),
     (["evaluation.method=table", "evaluation.table='tables/my table.json.gz'"], "table-my-table")],
)  # fmt: skip
def test_default_run_folders_name_the_method(settings: list[str], method: str) -> None:
    folder = default_run_folder(load_config(None, settings))
    assert re.fullmatch(rf"digits-genetic-{method}-\d{{8}}-\d{{6}}", folder.name), folder.name
