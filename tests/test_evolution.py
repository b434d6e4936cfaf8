"""Evolution end to end on synthetic data: history, determinism, re-evaluation modes."""

from pathlib import Path

import pytest
from conftest import TINY
from run_helpers import evolution_history as history

from genetic_cnn.config import load_config
from genetic_cnn.evolution import start_run
from genetic_cnn.history.store import load_run
from genetic_cnn.search.records import OK, REUSED


def tiny_run(folder: Path, *extra: str) -> Path:
    return start_run(load_config(None, TINY + list(extra)), out=folder, progress=False, echo=lambda line: None)


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


class PlantedExecutor:
    """Generation 0 scores (failed, .99, .995, .99); later generations score every genome .9."""

    SCORES = (None, 0.99, 0.995, 0.99)

    def run(self, tasks):
        from genetic_cnn.search.records import FAILED, EvaluationResult
        from genetic_cnn.space.graph import architecture_key

        for task in tasks:
            where = (task.generation, task.slot, task.genome, architecture_key(task.genome), task.seed)
            score = self.SCORES[task.slot] if task.generation == 0 else 0.9
            if score is None:
                yield EvaluationResult(*where, FAILED, error="RuntimeError: planted")
            else:
                yield EvaluationResult(*where, OK, accuracy=score, test_accuracy=score)

    def close(self) -> None:
        pass


def planted_parents(folder: Path, seed: int) -> list[int]:
    from genetic_cnn.evolution import Evolution
    from genetic_cnn.history.store import RunStore

    settings = ["data.dataset=synthetic", "space.preset=digits", "evolution.population=4", "evolution.generations=1"]
    store = RunStore.create(folder, load_config(None, [*settings, f"run.seed={seed}"]), {"genetic_cnn": "test"})
    try:
        Evolution(store, PlantedExecutor(), progress=False, echo=lambda line: None).run()
        record = store.generations()[0]
    finally:
        store.close()
    assert record.fitness == (0.0, 0.99, 0.995, 0.99)  # no fitness shows as 0 in the table
    return record.log["parents"]


def test_a_failure_is_the_worst_without_setting_r_min(tmp_path: Path) -> None:
    """Fitness (failed, .99, .995, .99): r_min is .99 among the individuals that have a fitness, so the
    paper's r - r_min gives every draw to the .995 one. Counted as 0, the failure would set r_min = 0
    and the three others would be drawn about equally (measured here with the same roulette)."""
    import numpy as np

    from genetic_cnn.search.operators import roulette_select

    parents = [p for seed in range(10) for p in planted_parents(tmp_path / f"run{seed}", seed)]
    assert parents == [2] * 40
    as_zero = np.bincount(roulette_select([0.0, 0.99, 0.995, 0.99], 3000, np.random.default_rng(0)), minlength=4)
    assert as_zero[0] == 0 and all(abs(count / 3000 - 1 / 3) < 0.03 for count in as_zero[1:])


def test_an_individual_that_failed_once_keeps_the_mean_of_its_measurements(tmp_path: Path) -> None:
    from genetic_cnn.search.strategies import FitnessLedger
    from genetic_cnn.space.genome import Genome

    ledger = FitnessLedger("string")
    genome = Genome.from_string("1-01|0-01-100-0111")
    ledger.record(genome, 0.98)  # a later failed evaluation is not recorded: it measured nothing
    assert ledger.mean(genome) == 0.98
    from genetic_cnn.evolution import fitness_to_tell

    told = fitness_to_tell([genome, Genome.zeros(genome.nodes)], ledger)
    assert told[0] == 0.98 and told[1] != told[1]  # NaN: never evaluated successfully
