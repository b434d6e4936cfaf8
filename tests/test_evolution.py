"""Evolution end to end on synthetic data: history, determinism, re-evaluation modes."""

from pathlib import Path

import pytest
from conftest import TINY

from genetic_cnn.config import load_config
from genetic_cnn.evolution import start_run
from genetic_cnn.records import OK, REUSED
from genetic_cnn.store import load_run


def tiny_run(folder: Path, *extra: str) -> Path:
    return start_run(load_config(None, TINY + list(extra)), out=folder, progress=False, echo=lambda line: None)


def history(folder: Path) -> list[tuple]:
    with load_run(folder) as run:
        return [(e.generation, e.slot, e.genome, e.seed, e.status, e.accuracy, e.test_accuracy) for e in run.evaluations()] + [
            (g.generation, g.genomes, g.fitness) for g in run.generations()
        ]


def test_run_records_every_evaluation_and_generation(tmp_path: Path) -> None:
    folder = tiny_run(tmp_path / "run")
    with load_run(folder) as run:
        evaluations = run.evaluations()
        generations = run.generations()
        assert run.status == "finished"
        assert run.config.evolution.population == 4
    assert len(evaluations) == 4 * 3 and len(generations) == 3
    assert all(e.status == OK and 0 <= e.accuracy <= 1 and e.test_accuracy is not None for e in evaluations)
    assert len({e.seed for e in evaluations}) == 12  # each evaluation has its own seed
    for record in generations:
        assert len(record.genomes) == len(record.fitness) == 4
        mine = [e for e in evaluations if e.generation == record.generation]
        assert [e.genome for e in mine] == list(record.genomes)
    assert (folder / "config.toml").is_file()


def test_fitness_is_the_mean_over_all_evaluations_of_an_individual(tmp_path: Path) -> None:
    folder = tiny_run(tmp_path / "run", "evolution.generations=4", "evolution.p_mutation=0.2", "evolution.p_crossover=0.0")
    with load_run(folder) as run:
        evaluations = run.evaluations()
        for record in run.generations():
            for genome, fitness in zip(record.genomes, record.fitness):
                earlier = [e.accuracy for e in evaluations if e.genome == genome and e.generation <= record.generation]
                assert fitness == pytest.approx(sum(earlier) / len(earlier))
    # With little mutation, survivors are re-evaluated: some string must have been trained more than once.
    counts: dict[str, int] = {}
    for e in evaluations:
        counts[e.genome] = counts.get(e.genome, 0) + 1
    assert max(counts.values()) > 1


def test_same_seed_same_history(tmp_path: Path) -> None:
    assert history(tiny_run(tmp_path / "a")) == history(tiny_run(tmp_path / "b"))
    assert history(tiny_run(tmp_path / "c", "run.seed=1")) != history(tiny_run(tmp_path / "d"))


def test_reuse_mode_trains_each_individual_once(tmp_path: Path) -> None:
    folder = tiny_run(
        tmp_path / "run", "evolution.reevaluate=reuse", "evolution.identity=architecture",
        "evolution.generations=4", "evolution.p_mutation=0.2", "evolution.p_crossover=0.0",
    )  # fmt: skip
    with load_run(folder) as run:
        evaluations = run.evaluations()
    trained_keys = [e.key for e in evaluations if e.status != REUSED]
    assert len(trained_keys) == len(set(trained_keys))
    assert any(e.status == REUSED for e in evaluations)
    first = {}
    for e in evaluations:
        if e.status != REUSED:
            first[e.key] = e.accuracy
    assert all(e.accuracy == first[e.key] for e in evaluations if e.status == REUSED)
