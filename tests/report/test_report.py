"""`genetic-cnn report`: the table agrees with the database, every picture is drawn, runs compare.

The runs are made by the real evolution loop and run database with an executor that trains
nothing (accuracies from a formula of the genome and seed), so a run takes a fraction of a second;
one failed and one diverged evaluation are planted at fixed places.
"""

from __future__ import annotations

import hashlib
import re
import statistics
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import pytest
from conftest import run_cli

from genetic_cnn.config import load_config
from genetic_cnn.errors import UserError
from genetic_cnn.evolution import Evolution
from genetic_cnn.history.store import RunStore, load_run
from genetic_cnn.report.markdown import RunData, generation_summaries, write_report
from genetic_cnn.search.records import DIVERGED, FAILED, OK, REUSED, EvaluationResult, EvaluationTask
from genetic_cnn.space.genome import Genome
from genetic_cnn.space.graph import architecture_key

PICTURES = {
    "fitness.png", "best_so_far.png", "best_genome.png", "top_architectures.png", "diversity.png",
    "bit_frequency.png", "time.png", "noise.png", "learning_curves.png",
}  # fmt: skip


class FormulaExecutor:
    """Validation accuracy from the architecture and the seed; (1, 1) fails and (2, 2) diverges."""

    def run(self, tasks: Sequence[EvaluationTask]) -> Iterator[EvaluationResult]:
        for task in tasks:
            genome = Genome.from_string(task.genome)
            key = architecture_key(genome)
            where = (task.generation, task.slot, task.genome, key, task.seed)
            if (task.generation, task.slot) == (1, 1):
                yield EvaluationResult(*where, FAILED, error="RuntimeError: out of memory | planted", seconds=0.2)
            elif (task.generation, task.slot) == (2, 2):
                yield EvaluationResult(*where, DIVERGED, loss=float("nan"), seconds=0.3)
            else:
                quality = int(hashlib.sha1(key.encode()).hexdigest()[:4], 16) / 65536
                accuracy = 0.9 + 0.03 * sum(genome.bits) / len(genome) + 0.02 * quality + (task.seed % 100) / 10_000
                curve = [[0, 2.0 - accuracy, accuracy - 0.1, 1.5 - accuracy], [1, 1.0 - accuracy / 2, accuracy, 1.0 - accuracy]]
                yield EvaluationResult(
                    *where, OK, accuracy=accuracy, test_accuracy=accuracy - 0.004, epochs=2, seconds=1 + task.seed % 5,
                    extra={"curve": curve},
                )

    def close(self) -> None:
        pass


def formula_run(folder: Path, *overrides: str) -> Path:
    settings = ["data.dataset=synthetic", "space.preset=mnist", "evolution.population=6", "evolution.generations=4"]
    config = load_config(None, settings + list(overrides))
    store = RunStore.create(folder, config, {"genetic_cnn": "test", "torch": "none", "platform": "test"})
    try:
        Evolution(store, FormulaExecutor(), progress=False, echo=lambda line: None).run()
    finally:
        store.close()
    return folder


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("runs")
    return {
        "genetic": formula_run(root / "genetic", "evolution.p_crossover=0.0", "evolution.p_mutation=0.3"),
        "reuse": formula_run(
            root / "random",
            "evolution.strategy=random",
            "evolution.reevaluate=reuse",
            "evolution.identity=architecture",
            "run.seed=3",
            "space.preset=digits",
            "space.nodes=[3, 3]",
        ),  # fmt: skip
    }


@pytest.fixture(scope="module")
def report(runs: dict[str, Path]) -> Path:
    return write_report([runs["genetic"]])


def cells(line: str) -> list[str]:
    """The cells of a Markdown table row; `\\|` inside a cell is not a separator."""
    return [cell.strip().strip("`").replace("\\|", "|") for cell in re.split(r"(?<!\\)\|", line.strip())[1:-1]]


def generation_rows_in(markdown: str) -> list[list[str]]:
    section = markdown.split("## Population per generation")[1].split("\n## ")[0]
    return [cells(line) for line in section.splitlines() if re.match(r"\| \d", line)]


def png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", path
    return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")


def assert_drawn(path: Path) -> None:
    """The picture holds more than a blank canvas or axes without their data. Measured: the sparsest
    of this suite's pictures (a few curves) has 7% of its pixels off the background and 0.8% in
    colour; its axes drawn without the data (title, labels, legend) keep 5% but under 0.1% in colour;
    bare axes have 2% and none, a blank figure none."""
    import matplotlib.image

    pixels = matplotlib.image.imread(path)[..., :3].reshape(-1, 3)  # RGB in [0, 1], alpha dropped
    values, counts = np.unique((pixels * 255).round(), axis=0, return_counts=True)
    background = values[counts.argmax()]
    ink = float((np.abs(pixels * 255 - background).max(axis=1) > 8).mean())  # beyond antialiasing noise
    coloured = float((pixels.max(axis=1) - pixels.min(axis=1) > 0.2).mean())  # not white, grey or black
    colours = int((counts > 0.001 * len(pixels)).sum())  # each on at least 0.1% of the picture
    assert ink >= 0.04 and coloured >= 0.003 and colours >= 4, f"{path.name}: {ink=:.3f} {coloured=:.4f} {colours=}"


def best_in_database(folder: Path) -> tuple[str, float, float]:
    """Straight from the run's database: the individual (a string, or an architecture key when the
    run counts architectures) with the highest mean validation accuracy over its successful
    evaluations, that mean, and the mean of their test accuracies."""
    with load_run(folder) as run:
        by_architecture = run.config.evolution.identity == "architecture"
        groups: dict[str, list[EvaluationResult]] = {}
        for e in run.evaluations():
            if e.status == OK:  # trained and measured (reused evaluations have their own status)
                groups.setdefault(e.key if by_architecture else e.genome, []).append(e)
    means = sorted(((statistics.fmean(e.accuracy for e in members), name) for name, members in groups.items()), reverse=True)
    (best, name), (second, _) = means[0], means[1]
    assert best > second  # one best: the report has no tie to break
    return name, best, statistics.fmean(e.test_accuracy for e in groups[name])


def test_generation_rows_agree_with_the_database(runs: dict[str, Path], report: Path) -> None:
    with load_run(runs["genetic"]) as run:
        records, evaluations = run.generations(), run.evaluations()
    summaries = generation_summaries(runs["genetic"])
    rows = generation_rows_in(report.read_text(encoding="utf-8"))
    assert len(records) == len(summaries) == len(rows) == 5
    for record, summary, row in zip(records, summaries, rows):
        fitness = record.fitness
        expected = [
            max(fitness),
            min(fitness),
            statistics.fmean(fitness),
            statistics.median(fitness),
            statistics.pstdev(fitness),
        ]
        got = [summary.maximum, summary.minimum, summary.mean, summary.median, summary.std]
        assert got == pytest.approx(expected)
        assert row[0] == str(record.generation)
        assert row[1:6] == [f"{100 * value:.2f}" for value in expected]
        best = record.genomes[fitness.index(max(fitness))]
        assert summary.best_genome == row[6] == best
        tests = [
            e.test_accuracy for e in evaluations
            if e.genome == best and e.status == OK and e.generation <= record.generation
        ]  # fmt: skip
        assert row[7] == f"{100 * statistics.fmean(tests):.2f}"
        mine = [e for e in evaluations if e.generation == record.generation]
        assert row[8:] == [str(sum(e.status != REUSED for e in mine)), str(sum(e.status == REUSED for e in mine))]


@pytest.mark.slow
def test_every_picture_is_drawn_and_named(report: Path) -> None:
    assert report == report.parent / "report.md" and report.parent.name == "report"
    text = report.read_text(encoding="utf-8")
    named = set(re.findall(r"!\[[^]]*\]\(([^)]+)\)", text))
    assert named == PICTURES
    for name in PICTURES:
        path = report.parent / name
        width, height = png_size(path)
        assert width >= 500 and height >= 300, name
        assert_drawn(path)
    assert "(1 failed, 1 diverged)" in text
    assert "planted" in text  # the failure's error message is listed


def test_reused_evaluations_are_counted(runs: dict[str, Path], tmp_path: Path) -> None:
    with load_run(runs["reuse"]) as run:
        evaluations = run.evaluations()
    reused = sum(e.status == REUSED for e in evaluations)
    assert reused > 0
    data = RunData.load(runs["reuse"])
    counts, _, best = data.best_so_far()
    assert counts[-1] == len(evaluations) - reused  # reused evaluations cost nothing
    assert best == sorted(best) and best[-1] == max(e.accuracy for e in evaluations if e.status == OK)
    text = write_report([runs["reuse"]], tmp_path / "out").read_text(encoding="utf-8")
    assert f"{len(evaluations) - reused} trained (1 failed, 1 diverged), {reused} reused" in text
    assert sum(int(row[9]) for row in generation_rows_in(text)) == reused


@pytest.mark.slow
def test_comparison_of_several_runs(runs: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    path = write_report([runs["genetic"], runs["reuse"]])
    assert path == Path("report-comparison") / "report.md"
    text = path.read_text(encoding="utf-8")
    rows = [cells(line) for line in text.splitlines() if line.startswith("| [")]
    assert [row[:4] for row in rows] == [
        ["[genetic](genetic/report.md)", "genetic", "standalone", "0"],
        ["[random](random/report.md)", "random", "standalone", "3"],
    ]
    for row, folder in zip(rows, (runs["genetic"], runs["reuse"])):
        with load_run(folder) as run:
            config, evaluations, generations = run.config, run.evaluations(), run.generations()
        statuses = Counter(e.status for e in evaluations)
        assert row[5:9] == [
            f"{len(generations)}/{config.evolution.generations + 1}",
            str(len(evaluations) - statuses[REUSED]), str(statuses[REUSED]), str(statuses[FAILED] + statuses[DIVERGED]),
        ]  # fmt: skip
        name, fitness, test = best_in_database(folder)
        assert (architecture_key(row[9]) if config.evolution.identity == "architecture" else row[9]) == name
        assert row[10:] == [f"{100 * fitness:.2f}", f"{100 * test:.2f}", f"{100 * statistics.fmean(generations[-1].fitness):.2f}"]
    for name in ("best_so_far.png", "mean_fitness.png"):
        assert png_size(path.parent / name)[0] >= 500
        assert_drawn(path.parent / name)
    for name in ("genetic", "random"):
        assert {p.name for p in (path.parent / name).iterdir()} == PICTURES | {"report.md"}


def test_a_run_without_a_finished_generation_is_refused(tmp_path: Path) -> None:
    RunStore.create(tmp_path / "empty", load_config(None, ["data.dataset=synthetic"]), {}).close()
    with pytest.raises(UserError, match="no generation is complete"):
        write_report([tmp_path / "empty"], tmp_path / "out")


def test_cli_writes_a_report_and_refuses_a_folder_that_is_not_a_run(runs: dict[str, Path], tmp_path: Path) -> None:
    result = run_cli("report", str(runs["reuse"]), "--out", str(tmp_path / "cli"))
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"report: {tmp_path / 'cli' / 'report.md'}"
    (tmp_path / "file.txt").write_text("not a run\n")
    for bad in (tmp_path / "not-a-run", tmp_path / "file.txt"):
        result = run_cli("report", str(bad))
        assert result.returncode == 2
        assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.stderr, result.stderr
        assert result.stderr.startswith("genetic-cnn: error:")


def test_importing_the_report_module_is_cheap() -> None:
    code = "import sys, genetic_cnn.report.markdown; print(sorted(m for m in ('matplotlib', 'torch') if m in sys.modules))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.stdout.strip() == "[]", result.stderr
