"""`genetic-cnn evolve` and `resume` as a user sees them: the printed table, the run folder, summary.json."""

from __future__ import annotations

import json
import re
import statistics
import subprocess
from collections import defaultdict
from pathlib import Path

import pytest
from conftest import TINY, count_trainings, run_cli, set_args

from genetic_cnn.config import load_config
from genetic_cnn.evolution import start_run
from genetic_cnn.history.noise import FitnessNoise, noise_verdict
from genetic_cnn.history.store import load_run
from genetic_cnn.search.records import OK, REUSED

GENERATIONS = 2  # TINY's
POPULATION = 4


def table_of(stdout: str) -> tuple[str, list[str], list[str]]:
    """The header, the generation rows and the lines after them."""
    lines = stdout.splitlines()
    rows = [line for line in lines[1:] if re.match(r"^\s*\d+\s", line)]
    return lines[0], rows, lines[1 + len(rows) :]


def pct(value: float) -> str:
    return f"{100 * value:.2f}"


def check_table(stdout: str, folder: Path) -> None:
    """The header, then one row per generation holding the stored fitness's max/min/mean/median/std
    (in percent) and the genome with the highest fitness."""
    header, rows, _ = table_of(stdout)
    assert header.split() == ["gen", "max", "min", "mean", "median", "std", "best", "genome"]
    with load_run(folder) as run:
        records = run.generations()
    assert len(rows) == len(records) == GENERATIONS + 1
    for row, record in zip(rows, records):
        fields = row.split()
        assert len(fields) == 7, row
        fitness = record.fitness
        best = record.genomes[max(range(len(fitness)), key=lambda i: fitness[i])]
        expected = [
            str(record.generation), pct(max(fitness)), pct(min(fitness)), pct(statistics.fmean(fitness)),
            pct(statistics.median(fitness)), pct(statistics.pstdev(fitness)), best,
        ]  # fmt: skip
        assert fields == expected


def best_by_database(folder: Path) -> tuple[set[str], float, dict[str, list]]:
    """The genomes with the highest mean fitness over their trained evaluations, that fitness, and
    every genome's trained evaluations."""
    with load_run(folder) as run:
        evaluations = run.evaluations()
    trained = [e for e in evaluations if e.status != REUSED]
    assert all(e.status == OK for e in trained)  # a run with no failure: the mean is plain
    by_genome: dict[str, list] = defaultdict(list)
    for e in trained:
        by_genome[e.genome].append(e)
    means = {genome: statistics.fmean(e.accuracy for e in members) for genome, members in by_genome.items()}
    top = max(means.values())
    return {genome for genome, mean in means.items() if mean == pytest.approx(top, abs=1e-12)}, top, by_genome


def check_summary(folder: Path) -> dict:
    summary = json.loads((folder / "summary.json").read_text(encoding="utf-8"))
    best, top, by_genome = best_by_database(folder)
    assert summary["best_genome"] in best
    assert summary["best_fitness"] == pytest.approx(top, abs=1e-12)
    members = by_genome[summary["best_genome"]]
    assert summary["best_evaluations"] == len(members)
    assert summary["best_test_accuracy"] == pytest.approx(statistics.fmean(e.test_accuracy for e in members), abs=1e-12)
    with load_run(folder) as run:
        records = run.generations()
        evaluations = run.evaluations()
    rows = summary["generations"]
    assert (
        [row["generation"] for row in rows] == [record.generation for record in records] == list(range(GENERATIONS + 1))
    )
    for row, record in zip(rows, records):
        fitness = record.fitness
        assert row["maximum"] == max(fitness) and row["minimum"] == min(fitness)
        assert row["mean"] == pytest.approx(statistics.fmean(fitness), abs=1e-12)
        assert row["median"] == pytest.approx(statistics.median(fitness), abs=1e-12)
        assert row["std"] == pytest.approx(statistics.pstdev(fitness), abs=1e-12)
        assert row["best_genome"] == record.genomes[max(range(len(fitness)), key=lambda i: fitness[i])]
        mine = [e for e in evaluations if e.generation == record.generation]
        assert row["trained"] == sum(e.status != REUSED for e in mine)
        assert row["trained"] + row["reused"] == POPULATION
    return summary


def check_outcome(stdout: str, folder: Path, cwd: Path | None = None) -> None:
    """After the table: the best genome with its fitness and test accuracy, then the run folder."""
    summary = json.loads((folder / "summary.json").read_text(encoding="utf-8"))
    _, _, after = table_of(stdout)
    verdict = noise_verdict(FitnessNoise.from_dict(summary["fitness_noise"]))
    assert after[1:-1] == ([verdict] if verdict else []), after  # the noise line only when noise reaches the spread
    best_line, folder_line = after[0], after[-1]
    assert summary["best_genome"] in best_line
    assert f"{pct(summary['best_fitness'])}%" in best_line and f"{pct(summary['best_test_accuracy'])}%" in best_line
    printed = Path(folder_line.removeprefix("results:").strip())
    assert folder_line.startswith("results:")
    assert ((cwd / printed) if cwd else printed).resolve() == folder.resolve()


@pytest.fixture(scope="module")
def evolved_process(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, subprocess.CompletedProcess[str]]:
    folder = tmp_path_factory.mktemp("evolve") / "run"
    result = run_cli("evolve", "--out", str(folder), "--quiet", *set_args(TINY))
    assert result.returncode == 0, result.stderr
    return folder, result


@pytest.fixture(scope="module")
def evolved(evolved_process: tuple[Path, subprocess.CompletedProcess[str]]) -> tuple[Path, str]:
    folder, result = evolved_process
    return folder, result.stdout


@pytest.mark.slow
def test_evolve_prints_one_row_per_generation_from_the_database(evolved: tuple[Path, str]) -> None:
    folder, stdout = evolved
    check_table(stdout, folder)


def test_evolve_ends_with_the_best_genome_and_the_run_folder(evolved: tuple[Path, str]) -> None:
    folder, stdout = evolved
    check_outcome(stdout, folder)


def test_summary_json_agrees_with_the_database(evolved: tuple[Path, str]) -> None:
    folder, _ = evolved
    check_summary(folder)


def test_quiet_keeps_progress_bars_off_both_streams(
    evolved_process: tuple[Path, subprocess.CompletedProcess[str]],
) -> None:
    _, result = evolved_process
    for stream in (result.stdout, result.stderr):
        assert "\r" not in stream and "%|" not in stream and "gen/s" not in stream and "net/s" not in stream


@pytest.mark.slow
def test_resume_after_ctrl_c_prints_the_same_table_and_summary(
    evolved: tuple[Path, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    reference, reference_stdout = evolved
    folder = tmp_path / "run"
    count_trainings(monkeypatch, stop_at=6)  # Ctrl-C in generation 1, slot 2
    with pytest.raises(KeyboardInterrupt):
        start_run(load_config(None, TINY), out=folder, progress=False, echo=lambda line: None)
    monkeypatch.undo()
    result = run_cli("resume", str(folder), "--quiet")
    assert result.returncode == 0, result.stderr
    # The whole table, replayed generations included, exactly as the uninterrupted run printed it.
    assert table_of(result.stdout)[:2] == table_of(reference_stdout)[:2]
    check_table(result.stdout, folder)
    check_outcome(result.stdout, folder)
    assert check_summary(folder) == json.loads((reference / "summary.json").read_text(encoding="utf-8"))


@pytest.mark.slow
def test_without_out_the_run_goes_under_runs_in_the_working_directory(tmp_path: Path) -> None:
    result = run_cli("evolve", "--quiet", *set_args(TINY), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert sorted(path.name for path in tmp_path.iterdir()) == ["runs"]  # nothing else left in the working directory
    (folder,) = (tmp_path / "runs").iterdir()
    assert re.fullmatch(r"synthetic-genetic-standalone-\d{8}-\d{6}", folder.name), folder.name
    assert {"run.db", "config.toml", "summary.json"} <= {path.name for path in folder.iterdir()}
    with load_run(folder) as run:
        assert run.status == "finished" and len(run.evaluations()) == POPULATION * (GENERATIONS + 1)
    check_outcome(result.stdout, folder, cwd=tmp_path)
    # The relative path printed is what `resume` takes, from the same directory.
    printed = result.stdout.splitlines()[-1].removeprefix("results:").strip()
    resumed = run_cli("resume", printed, "--quiet", cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    assert table_of(resumed.stdout)[:2] == table_of(result.stdout)[:2]
