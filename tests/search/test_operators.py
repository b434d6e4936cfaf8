"""Statistical tests of the genetic operators (paper, Algorithm 1), all with fixed seeds.

Rates are checked against a binomial tolerance of 4 standard deviations.
"""

from __future__ import annotations

import math
from collections import Counter

import numpy as np
import pytest

from genetic_cnn.config import EvolutionConfig
from genetic_cnn.search.operators import GenerationLog, crossover, initialize, mutate, next_generation, roulette_select
from genetic_cnn.space.genome import Genome

NODES = (3, 4, 5)  # the CIFAR-10 space: 3 stages, 19 bits


def assert_rate(successes: int, trials: int, p: float, sds: float = 4.0) -> None:
    expected, sd = trials * p, math.sqrt(trials * p * (1 - p))
    assert abs(successes - expected) <= sds * sd + 1e-9, f"{successes}/{trials}, expected {p:.4f}"


# ----------------------------------------------------------------------------- initialize
def test_initialize_zeros() -> None:
    population = initialize(NODES, 7, np.random.default_rng(0), mode="zeros")
    assert population == [Genome.zeros(NODES)] * 7


def test_initialize_random_bits_are_bernoulli_half() -> None:
    population = initialize(NODES, 500, np.random.default_rng(1))
    assert len(population) == 500 and all(g.nodes == NODES for g in population)
    bits = np.array([g.bits for g in population])
    assert_rate(int(bits.sum()), bits.size, 0.5)
    assert len(set(population)) > 400  # distinct individuals


def test_initialize_is_reproducible_and_rejects_unknown_mode() -> None:
    assert initialize(NODES, 5, np.random.default_rng(3)) == initialize(NODES, 5, np.random.default_rng(3))
    with pytest.raises(ValueError, match="zeros"):
        initialize(NODES, 5, np.random.default_rng(0), mode="ones")


# ----------------------------------------------------------------------------- mutate
@pytest.mark.parametrize("q", [0.05, 0.1, 0.5])
def test_mutate_flip_rate(q: float) -> None:
    rng = np.random.default_rng(2)
    genome = Genome.random(NODES, rng)
    flips = sum(sum(a != b for a, b in zip(genome.bits, mutate(genome, q, rng).bits, strict=True)) for _ in range(2000))
    assert_rate(flips, 2000 * len(genome), q)


def test_mutate_extremes_and_purity() -> None:
    rng = np.random.default_rng(3)
    genome = Genome.from_string("1-01|0-01-100|0-11-101-0001")
    assert mutate(genome, 0.0, rng) == genome
    assert mutate(genome, 1.0, rng).bits == tuple(1 - bit for bit in genome.bits)
    assert str(genome) == "1-01|0-01-100|0-11-101-0001"  # the input is untouched


# ----------------------------------------------------------------------------- crossover
def test_crossover_exchanges_whole_stages_only() -> None:
    rng = np.random.default_rng(4)
    for _ in range(300):
        a, b = Genome.random(NODES, rng), Genome.random(NODES, rng)
        c, d = crossover(a, b, 0.5, rng)
        assert c.nodes == d.nodes == NODES
        for s in range(len(NODES)):
            assert c.stages[s] in (a.stages[s], b.stages[s])
            assert Counter([c.stages[s], d.stages[s]]) == Counter([a.stages[s], b.stages[s]])


@pytest.mark.parametrize("q", [0.2, 0.3, 0.7])
def test_crossover_swap_rate(q: float) -> None:
    rng = np.random.default_rng(5)
    a, b = Genome.zeros(NODES), Genome.ones(NODES)  # every stage differs, so swaps are visible
    swaps = 0
    for _ in range(2000):
        c, d = crossover(a, b, q, rng)
        swaps += sum(stage == b.stages[s] for s, stage in enumerate(c.stages))
        assert all(
            (sc == b.stages[s]) == (sd == a.stages[s])
            for s, (sc, sd) in enumerate(zip(c.stages, d.stages, strict=True))
        )
    assert_rate(swaps, 2000 * len(NODES), q)


def test_crossover_extremes_and_mismatch() -> None:
    rng = np.random.default_rng(6)
    a, b = Genome.zeros(NODES), Genome.ones(NODES)
    assert crossover(a, b, 0.0, rng) == (a, b)
    assert crossover(a, b, 1.0, rng) == (b, a)
    with pytest.raises(ValueError, match="nodes"):
        crossover(a, Genome.zeros((3, 5)), 0.5, rng)


# ----------------------------------------------------------------------------- roulette
def selection_counts(fitness: list[float], draws: int, seed: int) -> np.ndarray:
    picks = roulette_select(fitness, draws, np.random.default_rng(seed))
    assert len(picks) == draws and all(isinstance(p, int) for p in picks)
    return np.bincount(picks, minlength=len(fitness))


def assert_frequencies(counts: np.ndarray, probabilities: list[float]) -> None:
    total = int(counts.sum())
    for count, p in zip(counts, probabilities, strict=True):
        assert_rate(int(count), total, p)


def test_roulette_frequencies_proportional_to_fitness_minus_min() -> None:
    fitness = [0.90, 0.95, 0.97, 0.99, 0.93]  # weights 0, .05, .07, .09, .03
    counts = selection_counts(fitness, 40_000, seed=7)
    weights = np.array(fitness) - min(fitness)
    assert counts[0] == 0  # the worst is always eliminated
    assert_frequencies(counts, list(weights / weights.sum()))
    expected = weights[1:] / weights.sum() * counts.sum()
    chi_square = float(((counts[1:] - expected) ** 2 / expected).sum())
    assert chi_square < 16.27  # chi-square, 3 degrees of freedom, p = 0.001


def test_roulette_negative_fitness_and_single_best() -> None:
    assert_frequencies(selection_counts([-3.0, -1.0, 0.0], 20_000, seed=8), [0, 2 / 5, 3 / 5])
    assert set(roulette_select([1.0, 2.0, 1.0], 500, np.random.default_rng(9))) == {1}


def test_roulette_uniform_when_all_equal() -> None:
    assert_frequencies(selection_counts([0.5] * 5, 20_000, seed=10), [0.2] * 5)


def test_roulette_nan_counts_as_worst() -> None:
    nan = float("nan")
    counts = selection_counts([nan, 1.0, 2.0, 3.0, nan], 20_000, seed=11)
    assert counts[0] == counts[4] == counts[1] == 0  # NaN and the worst finite one are never drawn
    assert_frequencies(counts, [0, 0, 1 / 3, 2 / 3, 0])
    equal = selection_counts([nan, 0.7, 0.7, 0.7], 20_000, seed=12)
    assert equal[0] == 0
    assert_frequencies(equal, [0, 1 / 3, 1 / 3, 1 / 3])
    assert_frequencies(selection_counts([nan] * 4, 20_000, seed=13), [0.25] * 4)


def test_roulette_rejects_empty() -> None:
    with pytest.raises(ValueError):
        roulette_select([], 3, np.random.default_rng(0))


# ----------------------------------------------------------------------------- next_generation
def run_steps(config: EvolutionConfig, size: int, steps: int, seed: int):
    rng = np.random.default_rng(seed)
    for _ in range(steps):
        population = initialize(NODES, size, rng)
        fitness = [float(sum(g.bits)) for g in population]
        offspring, log = next_generation(population, fitness, config, rng)
        yield population, offspring, log


def test_next_generation_crossover_and_mutation_rates() -> None:
    config = EvolutionConfig(p_crossover=0.3, q_crossover=0.5, p_mutation=0.6, q_mutation=0.1)
    crossed_pairs = pairs = mutated = candidates = 0
    for population, offspring, log in run_steps(config, size=20, steps=300, seed=14):
        assert len(offspring) == len(log.parents) == 20
        assert all(log.crossed[i] == log.crossed[i + 1] for i in range(0, 20, 2))
        assert not any(c and m for c, m in zip(log.crossed, log.mutated, strict=True))  # mutation only if not crossed
        for i in range(20):
            parent = population[log.parents[i]]
            if not log.crossed[i] and not log.mutated[i]:
                assert offspring[i] == parent
        for i in range(0, 20, 2):
            if log.crossed[i]:
                a, b = population[log.parents[i]], population[log.parents[i + 1]]
                for s in range(len(NODES)):
                    expected = Counter([a.stages[s], b.stages[s]])
                    assert Counter([offspring[i].stages[s], offspring[i + 1].stages[s]]) == expected
        crossed_pairs += sum(log.crossed[0::2])
        pairs += 10
        mutated += sum(log.mutated)
        candidates += sum(not c for c in log.crossed)
    assert_rate(crossed_pairs, pairs, 0.3)
    assert_rate(mutated, candidates, 0.6)


def test_next_generation_odd_population_leaves_last_unpaired() -> None:
    config = EvolutionConfig(p_crossover=1.0, p_mutation=1.0, q_mutation=0.0)
    for _, offspring, log in run_steps(config, size=7, steps=20, seed=15):
        assert len(offspring) == 7
        assert log.crossed == (True,) * 6 + (False,)
        assert log.mutated == (False,) * 6 + (True,)


def test_next_generation_rejects_wrong_fitness_length() -> None:
    population = initialize(NODES, 4, np.random.default_rng(0))
    with pytest.raises(ValueError, match="3 fitness values"):
        next_generation(population, [1.0, 2.0, 3.0], EvolutionConfig(), np.random.default_rng(0))


def test_next_generation_follows_the_documented_draw_order() -> None:
    """Replays the order written in the operators module docstring with raw draws."""
    config = EvolutionConfig(p_crossover=0.5, q_crossover=0.5, p_mutation=0.5, q_mutation=0.2)
    population = initialize(NODES, 9, np.random.default_rng(16))
    fitness = [float(sum(g.bits)) for g in population]
    offspring, log = next_generation(population, fitness, config, np.random.default_rng(17))

    rng = np.random.default_rng(17)
    weights = np.array(fitness) - min(fitness)
    parents = np.searchsorted(np.cumsum(weights), rng.random(9) * weights.sum(), side="right").tolist()
    expected = [population[i] for i in parents]
    crossed = [False] * 9
    for i in range(0, 8, 2):
        if rng.random() < config.p_crossover:
            swap = rng.random(3) < config.q_crossover
            a, b = expected[i], expected[i + 1]
            expected[i] = Genome(NODES, tuple(b.stages[s] if swap[s] else a.stages[s] for s in range(3)))
            expected[i + 1] = Genome(NODES, tuple(a.stages[s] if swap[s] else b.stages[s] for s in range(3)))
            crossed[i] = crossed[i + 1] = True
    for i in range(9):
        if not crossed[i] and rng.random() < config.p_mutation:
            flips = rng.random(19) < config.q_mutation
            expected[i] = Genome.from_bits(
                [bit ^ int(f) for bit, f in zip(expected[i].bits, flips, strict=True)], NODES
            )
    assert log.parents == tuple(parents) and log.crossed == tuple(crossed)
    assert offspring == expected
    assert any(log.crossed) and any(log.mutated)  # both branches were exercised


def test_generation_log_to_dict() -> None:
    log = GenerationLog(parents=(1, 0), crossed=(True, True), mutated=(False, False))
    assert log.to_dict() == {"parents": [1, 0], "crossed": [True, True], "mutated": [False, False]}
