"""Test accuracy is measured and stored, but never reaches selection: the fitness is validation accuracy."""

from __future__ import annotations

import statistics
from pathlib import Path

import pytest
from conftest import TINY

from genetic_cnn.config import load_config
from genetic_cnn.evolution import start_run
from genetic_cnn.history.store import load_run
from genetic_cnn.search.records import OK

OVERRIDES = TINY + ["evolution.generations=3"]


def run(folder: Path, *extra: str) -> Path:
    return start_run(load_config(None, OVERRIDES + list(extra)), out=folder, progress=False, echo=lambda line: None)


@pytest.fixture(scope="module")
def full_test_set(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return run(tmp_path_factory.mktemp("holdout") / "run")


def test_fitness_is_the_mean_validation_accuracy_not_the_test_accuracy(full_test_set: Path) -> None:
    with load_run(full_test_set) as store:
        evaluations, records = store.evaluations(), store.generations()
    assert all(e.status == OK and e.test_accuracy is not None for e in evaluations)
    differs = 0
    for record in records:
        for genome, fitness in zip(record.genomes, record.fitness):
            mine = [e for e in evaluations if e.genome == genome and e.generation <= record.generation]
            assert fitness == pytest.approx(statistics.fmean(e.accuracy for e in mine), abs=1e-12)
            differs += fitness != pytest.approx(statistics.fmean(e.test_accuracy or 0.0 for e in mine), abs=1e-9)
    assert differs > 0  # the two accuracies do differ, so the check above tells them apart


def test_other_test_images_change_no_choice_of_the_search(full_test_set: Path, tmp_path: Path) -> None:
    """The same run with a quarter of the test images: every generation, fitness, validation
    accuracy and loss is the same; only the test accuracies change."""
    fewer = run(tmp_path / "run", "data.test_subset=50")
    with load_run(full_test_set) as a, load_run(fewer) as b:
        assert [(g.generation, g.genomes, g.fitness, g.rng_state) for g in a.generations()] == [
            (g.generation, g.genomes, g.fitness, g.rng_state) for g in b.generations()
        ]
        first, second = a.evaluations(), b.evaluations()
    assert len(first) == len(second) == 4 * 4
    for x, y in zip(first, second):
        assert (x.generation, x.slot, x.genome, x.seed, x.accuracy, x.loss, x.train_loss) == (
            y.generation, y.slot, y.genome, y.seed, y.accuracy, y.loss, y.train_loss,
        )  # fmt: skip
    assert [x.test_accuracy for x in first] != [y.test_accuracy for y in second]
    assert all(
        round((y.test_accuracy or 0.0) * 50, 6) == round((y.test_accuracy or 0.0) * 50) for y in second
    )  # out of 50
