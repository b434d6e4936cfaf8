"""Failures are states, not crashes: diverged and failed trainings, a full disk."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from conftest import TINY

from genetic_cnn.config import load_config
from genetic_cnn.evaluate import Evaluator
from genetic_cnn.evolution import Evolution, environment, start_run
from genetic_cnn.executors import SerialExecutor
from genetic_cnn.genome import Genome
from genetic_cnn.operators import roulette_select
from genetic_cnn.records import DIVERGED, FAILED, OK, EvaluationTask
from genetic_cnn.store import RunStore, StoreError, load_run


def quiet(line: str) -> None:
    pass


def test_diverging_training_is_recorded_with_fitness_zero_and_the_run_goes_on(tmp_path: Path) -> None:
    # SGD at a learning rate of 1e6 turns the loss into inf/NaN within a few steps.
    config = load_config(None, TINY + ["train.optimizer=sgd", "train.schedule=[[1, 1e6]]", "evolution.generations=1"])
    folder = start_run(config, out=tmp_path / "run", progress=False, echo=quiet)
    with load_run(folder) as run:
        evaluations = run.evaluations()
        generations = run.generations()
        assert run.status == "finished"
    assert len(evaluations) == 8
    assert all(e.status == DIVERGED and e.accuracy == 0.0 and "NaN" in e.error for e in evaluations)
    assert all(f == 0.0 for record in generations for f in record.fitness)


def test_training_that_raises_is_recorded_as_failed_with_its_message() -> None:
    config = load_config(None, TINY)
    evaluator = Evaluator.from_config(config)
    # Five outputs for ten classes: cross-entropy raises on the first batch, as a real bug would.
    broken = replace(evaluator, preset=replace(evaluator.preset, num_classes=5))
    genome = str(Genome.ones(broken.preset.nodes))
    result = broken.evaluate(EvaluationTask(0, 3, genome, seed=11))
    assert result.status == FAILED
    assert result.accuracy == 0.0 and result.fitness_input == 0.0
    assert "out of bounds" in result.error and "\n" not in result.error
    assert (result.generation, result.slot, result.seed) == (0, 3, 11)
    assert evaluator.evaluate(EvaluationTask(0, 3, genome, seed=11)).status == OK  # the evaluator is unharmed


def test_selection_treats_failures_as_the_worst() -> None:
    rng = np.random.default_rng(0)
    fitness = [0.9, 0.0, 0.8, 0.0, 0.85]  # slots 1 and 3 failed
    picks = roulette_select(fitness, 5000, rng)
    assert 1 not in picks and 3 not in picks


def test_a_full_disk_stops_the_run_with_a_clear_message_and_the_database_intact(tmp_path: Path) -> None:
    config = load_config(None, TINY)
    store = RunStore.create(tmp_path / "run", config, environment())
    # SQLite's own limit on the file size gives the real "database or disk is full" error.
    pages = store._db.execute("PRAGMA page_count").fetchone()[0]
    store._db.execute(f"PRAGMA max_page_count = {pages + 1}")
    with pytest.raises(StoreError, match="full.*free disk space.*genetic-cnn resume"):
        Evolution(store, SerialExecutor(config), progress=False, echo=quiet).run()
    store.close()
    with load_run(tmp_path / "run") as run:
        assert run._db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        stored = run.evaluations()
        assert run.config == config
    assert len(stored) < 4 * 3
    # After freeing space (here: lifting the limit), resume completes the run.
    from genetic_cnn.evolution import resume_run

    resume_run(tmp_path / "run", progress=False, echo=quiet)
    with load_run(tmp_path / "run") as run:
        assert len(run.evaluations()) == 12 and run.status == "finished"


