"""Random search at the genetic algorithm's budget: N(T+1) evaluations, uniform genomes, seeded."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from conftest import TINY, drive_search, onemax

from genetic_cnn.config import EvolutionConfig, load_config
from genetic_cnn.evolution import start_run
from genetic_cnn.history.store import load_run
from genetic_cnn.search.strategies import GeneticSearch, RandomSearch
from genetic_cnn.space.genome import Genome

RANDOM = [*TINY, "evolution.strategy=random"]
NODES = (3, 5)  # the digits preset: 13 bits


@pytest.fixture(scope="module")
def run_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("random") / "run"
    return start_run(load_config(None, RANDOM), out=folder, progress=False, echo=lambda line: None)


def flat(population: list[Genome]) -> list[float]:
    return [0.5] * len(population)


def test_run_makes_exactly_n_times_t_plus_1_evaluations(run_folder: Path) -> None:
    with load_run(run_folder) as run:
        evaluations, generations = run.evaluations(), run.generations()
        assert run.status == "finished"
        assert run.config.evolution.strategy == "random"  # the database records the strategy
        assert run.meta("config")["evolution"]["strategy"] == "random"
    assert len(evaluations) == 4 * (2 + 1) and len(generations) == 3
    assert all(e.trained for e in evaluations)  # retrain mode: every slot is trained, none reused
    for record in generations:  # a random generation carries no breeding log
        assert record.log is None and len(record.genomes) == 4


def test_run_genomes_are_the_seeded_random_search(run_folder: Path) -> None:
    config = load_config(None, RANDOM)
    expected = drive_search(RandomSearch(config.evolution, NODES, seed=config.run.seed), flat)
    with load_run(run_folder) as run:
        recorded = [list(record.genomes) for record in run.generations()]
    assert recorded == [[str(genome) for genome in generation] for generation in expected]


def test_bits_are_uniform_within_a_binomial_tolerance() -> None:
    search = RandomSearch(EvolutionConfig(population=50, generations=99), NODES, seed=7)
    bits = np.array([genome.bits for generation in drive_search(search, flat) for genome in generation])
    draws = bits.shape[0]
    assert draws == 50 * 100 and bits.shape[1] == 13
    # Each bit ~ Binomial(5000, 0.5): standard deviation sqrt(5000 / 4) ~ 35 ones; 5 sigma per bit.
    tolerance = 5 * math.sqrt(draws * 0.25)
    assert np.all(np.abs(bits.sum(axis=0) - draws / 2) < tolerance)
    total = bits.size
    assert abs(bits.sum() - total / 2) < 5 * math.sqrt(total * 0.25)
    # Independent bits: each pair of the first stage's bits is 11 a quarter of the time.
    both = (bits[:, 0] & bits[:, 1]).sum()
    assert abs(both - draws / 4) < 5 * math.sqrt(draws * 0.25 * 0.75)
    # About as many distinct strings as 5000 uniform draws from 8192 give (expected ~3,780).
    expected_distinct = 8192 * (1 - (1 - 1 / 8192) ** draws)
    assert abs(len({tuple(row) for row in bits}) - expected_distinct) < 100


def test_generations_ignore_the_fitness() -> None:
    config = EvolutionConfig(population=6, generations=5)
    assert drive_search(RandomSearch(config, NODES, seed=2), flat) == drive_search(RandomSearch(config, NODES, seed=2), onemax)


def test_same_seed_same_genomes_and_other_seed_others() -> None:
    config = EvolutionConfig(population=8, generations=6)
    first = drive_search(RandomSearch(config, NODES, seed=11), flat)
    assert first == drive_search(RandomSearch(config, NODES, seed=11), flat)
    assert first != drive_search(RandomSearch(config, NODES, seed=12), flat)
    # Same start as the genetic search from random initialization, so the comparison is paired.
    assert first[0] == GeneticSearch(config, NODES, seed=11).ask()
