"""The generational loop (ask/tell), random search, evaluation seeds and the fitness ledger."""

from __future__ import annotations

import json
import math
import subprocess
import sys

import numpy as np
import pytest
from conftest import drive_search, onemax

from genetic_cnn.config import EvolutionConfig
from genetic_cnn.search.strategies import (
    FitnessLedger,
    GeneticSearch,
    RandomSearch,
    evaluation_seed,
    make_search,
)
from genetic_cnn.space.genome import Genome
from genetic_cnn.space.graph import architecture_key

NODES = (3, 4, 5)


# ----------------------------------------------------------------------------- GeneticSearch
def test_same_seed_same_run_different_seed_differs() -> None:
    config = EvolutionConfig(population=10, generations=8)
    first, second = GeneticSearch(config, NODES, seed=3), GeneticSearch(config, NODES, seed=3)
    assert drive_search(first) == drive_search(second)
    assert first.rng_state() == second.rng_state()
    other = GeneticSearch(config, NODES, seed=4)
    assert drive_search(other) != drive_search(GeneticSearch(config, NODES, seed=3))


def test_ask_tell_protocol() -> None:
    config = EvolutionConfig(population=6, generations=2)
    search = GeneticSearch(config, NODES, seed=0)
    assert search.generation == 0 and not search.done()
    assert search.ask() == search.ask()  # idempotent until tell()
    with pytest.raises(ValueError, match="5 fitness values given for 6"):
        search.tell([1.0] * 5)
    assert search.generation == 0  # a rejected tell changes nothing
    state = search.rng_state()
    log = search.tell([1.0, 2.0, float("nan"), 3.0, 0.0, 2.0])  # NaN: an individual with no fitness
    assert search.generation == 1 and log is not None and len(log.parents) == 6
    assert 2 not in log.parents and 4 not in log.parents  # no fitness and r_min are never drawn
    assert search.rng_state() != state
    assert len(search.ask()) == 6
    search.tell(np.arange(6.0))  # any sequence of numbers
    search.tell(list(range(6)))  # generation T: told, nothing more bred
    assert search.done() and search.generation == 3
    with pytest.raises(RuntimeError):
        search.ask()
    with pytest.raises(RuntimeError):
        search.tell([1.0] * 6)


def test_evaluated_generations_are_zero_to_t() -> None:
    config = EvolutionConfig(population=4, generations=5)
    assert len(drive_search(GeneticSearch(config, NODES, seed=1))) == 6
    assert len(drive_search(GeneticSearch(EvolutionConfig(population=4, generations=0), NODES, seed=1))) == 1


def test_last_tell_does_not_draw() -> None:
    search = GeneticSearch(EvolutionConfig(population=4, generations=1), NODES, seed=2)
    search.tell(onemax(search.ask()))
    state = search.rng_state()
    search.tell(onemax(search.ask()))
    assert search.rng_state() == state


def test_rng_state_is_json_serialisable() -> None:
    search = GeneticSearch(EvolutionConfig(population=4, generations=3), NODES, seed=5)
    search.tell(onemax(search.ask()))
    state = search.rng_state()
    assert json.loads(json.dumps(state)) == state
    rng = np.random.default_rng()
    rng.bit_generator.state = state  # restorable
    assert rng.bit_generator.state == state


def test_zeros_initialization() -> None:
    search = GeneticSearch(EvolutionConfig(population=5, init="zeros"), NODES, seed=0)
    assert search.ask() == [Genome.zeros(NODES)] * 5


def test_onemax_mean_fitness_rises() -> None:
    """A toy fitness (count the ones): selection pressure must raise the population's mean."""
    config = EvolutionConfig(population=20, generations=30)  # the paper's MNIST operator settings
    means = [float(np.mean(onemax(population))) for population in drive_search(GeneticSearch(config, NODES, seed=0))]
    random_means = [float(np.mean(onemax(p))) for p in drive_search(RandomSearch(config, NODES, seed=0))]
    assert np.mean(means[-5:]) > means[0] + 2.5  # about 10 -> 14 of 19 bits
    assert np.mean(means[-10:]) > np.mean(random_means[-10:]) + 2.5


def test_replay_with_recorded_fitness_reaches_the_same_state() -> None:
    config = EvolutionConfig(population=6, generations=4)
    original = GeneticSearch(config, NODES, seed=9)
    recorded = []
    for _ in range(3):
        population = original.ask()
        recorded.append(onemax(population))
        original.tell(recorded[-1])
    replay = GeneticSearch(config, NODES, seed=9)
    for fitness in recorded:
        replay.ask()
        replay.tell(fitness)
    assert replay.ask() == original.ask() and replay.rng_state() == original.rng_state()


# ----------------------------------------------------------------------------- RandomSearch
def test_random_search_budget_and_uniform_bits() -> None:
    config = EvolutionConfig(strategy="random", population=20, generations=10, init="zeros")
    generations = drive_search(RandomSearch(config, NODES, seed=6))
    genomes = [g for population in generations for g in population]
    assert len(genomes) == 20 * 11  # N(T+1), as the genetic search
    bits = np.array([g.bits for g in genomes])
    n, ones = bits.size, int(bits.sum())
    assert abs(ones - n / 2) <= 4 * math.sqrt(n / 4)  # init="zeros" is ignored
    assert np.all(np.abs(bits.mean(axis=0) - 0.5) <= 4 * math.sqrt(0.25 / len(genomes)))


def test_random_search_ignores_fitness_and_shares_generation_zero() -> None:
    config = EvolutionConfig(population=8, generations=3)
    assert drive_search(RandomSearch(config, NODES, 7)) == drive_search(RandomSearch(config, NODES, 7), lambda p: [0.0] * len(p))
    assert RandomSearch(config, NODES, 7).ask() == GeneticSearch(config, NODES, 7).ask()
    search = RandomSearch(config, NODES, 7)
    search.ask()
    assert search.tell([0.5] * 8) is None  # nothing is bred by selection


def test_make_search_by_strategy() -> None:
    assert type(make_search(EvolutionConfig(), NODES, 0)) is GeneticSearch
    assert type(make_search(EvolutionConfig(strategy="random"), NODES, 0)) is RandomSearch
    with pytest.raises(ValueError, match="strategy"):
        make_search(EvolutionConfig(strategy="annealing"), NODES, 0)


# ----------------------------------------------------------------------------- evaluation seeds
def test_evaluation_seed_is_deterministic_and_distinct() -> None:
    seeds = {(g, s): evaluation_seed(42, g, s) for g in range(51) for s in range(20)}
    assert all(0 <= value < 2**31 and isinstance(value, int) for value in seeds.values())
    assert len(set(seeds.values())) == len(seeds)
    assert evaluation_seed(42, 3, 7) == seeds[(3, 7)] == evaluation_seed(42, 3, 7)
    assert evaluation_seed(43, 3, 7) != seeds[(3, 7)]
    expected = np.random.SeedSequence(42, spawn_key=(3, 7)).generate_state(1)[0] & 0x7FFFFFFF
    assert seeds[(3, 7)] == int(expected)


# ----------------------------------------------------------------------------- FitnessLedger
def test_ledger_mean_over_all_evaluations() -> None:
    ledger = FitnessLedger("string")
    genome = Genome.from_string("1-01|0-01-100|0-11-101-0001")
    assert not ledger.known(genome) and ledger.mean(genome) is None and ledger.count(genome) == 0
    for accuracy in (0.70, 0.74, 0.0):  # 0.0 is a measurement (nothing learned), not a failure
        ledger.record(genome, accuracy)
    assert ledger.known(genome) and ledger.count(genome) == 3 and len(ledger) == 1
    assert ledger.mean(genome) == pytest.approx(0.48)
    assert ledger.evaluations(genome) == (0.70, 0.74, 0.0)
    with pytest.raises(ValueError, match="finite"):
        ledger.record(genome, float("nan"))
    with pytest.raises(ValueError, match="identity"):
        FitnessLedger("bits")


def test_ledger_architecture_identity_merges_equivalent_strings() -> None:
    a, b, c = (Genome.from_string(text) for text in ("1-00", "0-01", "1-01"))
    assert architecture_key(a) == architecture_key(b) != architecture_key(c)  # the premise
    by_string, by_architecture = FitnessLedger("string"), FitnessLedger("architecture")
    for ledger in (by_string, by_architecture):
        ledger.record(a, 0.9)
        ledger.record(b, 0.7)
        ledger.record(c, 0.5)
    assert by_string.mean(a) == 0.9 and by_string.count(b) == 1 and len(by_string) == 3
    assert by_architecture.mean(a) == by_architecture.mean(b) == pytest.approx(0.8)
    assert by_architecture.count(b) == 2 and by_architecture.mean(c) == 0.5 and len(by_architecture) == 2
    assert by_architecture.identity_of(a) == architecture_key(a) and by_string.identity_of(a) == "1-00"


# ----------------------------------------------------------------------------- no torch
def test_search_and_operators_do_not_import_torch() -> None:
    code = ("import sys, genetic_cnn.search.strategies, genetic_cnn.search.operators, genetic_cnn.tables.table, genetic_cnn.fitness.table, "
            "genetic_cnn.tables.simulate; sys.exit('torch' in sys.modules)")
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0
