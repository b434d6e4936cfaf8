"""Regularized (aging) evolution and tournament selection: the algorithms as documented, statistically."""

from __future__ import annotations

import math
from itertools import combinations

import numpy as np
import pytest
from conftest import drive_search, onemax

from genetic_cnn.config import EvolutionConfig
from genetic_cnn.search.operators import next_generation, tournament_select
from genetic_cnn.search.strategies import GeneticSearch, RegularizedSearch, TabulationSearch, make_search
from genetic_cnn.space.enumerate import architectures
from genetic_cnn.space.graph import architecture_key

NODES = (3, 5)


def test_tournament_win_rates_match_the_order_statistics() -> None:
    # n individuals with distinct fitness, tournaments of k with replacement: the i-th worst (1-based)
    # wins with probability (i/n)^k - ((i-1)/n)^k.
    n, k, draws = 6, 3, 60_000
    fitness = [0.3, 0.1, 0.6, 0.5, 0.2, 0.4]
    picks = np.bincount(tournament_select(fitness, draws, k, np.random.default_rng(0)), minlength=n) / draws
    rank = np.argsort(np.argsort(fitness)) + 1  # 1 = the worst
    expected = (rank / n) ** k - ((rank - 1) / n) ** k
    assert np.abs(picks - expected).max() < 0.01


def test_tournament_nan_loses_and_one_contestant_is_uniform() -> None:
    rng = np.random.default_rng(1)
    picks = tournament_select([math.nan, 0.5, math.nan], 5000, 2, rng)
    # index 1 wins every tournament it enters: 1 - (2/3)^2 of them; a NaN wins only against a NaN
    assert abs(picks.count(1) / 5000 - (1 - (2 / 3) ** 2)) < 0.03
    uniform = np.bincount(tournament_select([3.0, 2.0, 1.0, 0.0], 40_000, 1, rng), minlength=4) / 40_000
    assert np.abs(uniform - 0.25).max() < 0.01
    with pytest.raises(ValueError):
        tournament_select([], 3, 2, rng)


def test_genetic_search_with_tournament_selection_selects_and_differs_from_roulette() -> None:
    base = EvolutionConfig(population=20, generations=10, selection="tournament", sample_size=4)
    tournament = drive_search(GeneticSearch(base, NODES, seed=3))
    roulette = drive_search(GeneticSearch(EvolutionConfig(population=20, generations=10), NODES, seed=3))
    assert tournament[0] == roulette[0]  # the same random generation 0
    assert tournament[1:] != roulette[1:]
    assert tournament == drive_search(GeneticSearch(base, NODES, seed=3))  # reproducible
    # selection pressure: onemax climbs
    assert np.mean(onemax(tournament[-1])) > np.mean(onemax(tournament[0])) + 2


def test_next_generation_tournament_parents_are_tournament_winners() -> None:
    config = EvolutionConfig(population=8, selection="tournament", sample_size=3, p_crossover=0, p_mutation=0)
    population = GeneticSearch(config, NODES, seed=0).ask()
    fitness = [float(i) for i in range(8)]
    _, log = next_generation(population, fitness, config, np.random.default_rng(5))
    assert list(log.parents) == tournament_select(fitness, 8, 3, np.random.default_rng(5))


class Aging(RegularizedSearch):
    """Exposes the queue after each tell, to check the aging rule."""

    @property
    def queue(self) -> list:
        return list(self._queue)


def test_regularized_queue_holds_the_last_n_individuals_and_children_come_from_tournaments() -> None:
    config = EvolutionConfig(strategy="regularized", population=6, generations=4, sample_size=2, q_mutation=0.0)
    search = Aging(config, NODES, seed=2)
    told: list[tuple] = []
    while not search.done():
        population = search.ask()
        fitness = onemax(population)
        before = search.queue
        log = search.tell(fitness)
        told.extend(zip(population, fitness))
        if log is not None:
            assert search.queue == told[-6:]  # the oldest left, the children joined in slot order
            members = [genome for genome, _ in search.queue]
            children = search.ask()
            fitness_of = [value for _, value in search.queue]
            for child, parent in zip(children, log.parents):
                assert child == members[parent]  # q_M = 0: the winner's copy, unchanged
            # a tournament of 2 never picks the single worst unless it drew it twice: 1/36 per child
            assert np.mean([fitness_of[p] for p in log.parents]) >= np.mean(fitness_of)
            assert before == [] or len(before) == 6
    assert search.generation == 5


def test_regularized_budget_determinism_and_generation_zero() -> None:
    config = EvolutionConfig(strategy="regularized", population=10, generations=6)
    search = make_search(config, NODES, seed=4)
    assert isinstance(search, RegularizedSearch)
    generations = drive_search(search)
    assert sum(len(g) for g in generations) == 10 * 7  # N(T+1)
    assert generations == drive_search(make_search(config, NODES, seed=4))
    assert generations != drive_search(make_search(config, NODES, seed=5))
    genetic = drive_search(make_search(EvolutionConfig(population=10, generations=6), NODES, seed=4))
    assert generations[0] == genetic[0]


def test_regularized_evolution_climbs_and_its_children_are_mutated_winners() -> None:
    config = EvolutionConfig(strategy="regularized", population=20, generations=30, sample_size=5)
    # Over the last 10 generations: every child is mutated (a copy is drawn again), so even at the top
    # a generation's children step off it; their mean still stays well above random's.
    late = lambda generations: np.mean([onemax(g) for g in generations[-10:]])  # noqa: E731
    climbs = [late(drive_search(make_search(config, NODES, seed))) for seed in range(5)]
    randoms = [late(drive_search(make_search(EvolutionConfig(strategy="random", population=20, generations=30),
                                             NODES, seed))) for seed in range(5)]  # fmt: skip
    assert min(climbs) > max(randoms) + 2  # 13 bits: random averages 6.5 ones


def test_regularized_tournament_ignores_failed_individuals() -> None:
    config = EvolutionConfig(strategy="regularized", population=4, generations=1, sample_size=4, q_mutation=0.0)
    search = RegularizedSearch(config, NODES, seed=0)
    population = search.ask()
    log = search.tell([math.nan, 0.2, math.nan, math.nan])
    assert log is not None
    children = search.ask()
    # q_M = 0: a child is its parent; a tournament of 4 (with replacement) misses slot 1 with probability (3/4)^4
    assert all(child == population[1] for child, parent in zip(children, log.parents) if parent == 1)
    assert log.parents.count(1) >= 1


def test_tabulation_search_is_every_architecture_once_in_key_order() -> None:
    keys = sorted(architectures(NODES))
    config = EvolutionConfig(strategy="tabulation", population=len(keys), generations=1)
    generations = drive_search(TabulationSearch(config, NODES, seed=0))
    assert [architecture_key(genome) for genome in generations[0]] == keys
    assert generations[1] == generations[0]
    assert all(a != b for a, b in combinations([architecture_key(g) for g in generations[0][:50]], 2))
    with pytest.raises(ValueError, match="evaluates its 1812 architectures"):
        TabulationSearch(EvolutionConfig(strategy="tabulation", population=20), NODES, seed=0)


def test_regularized_mutation_never_copies_its_parent_unless_nothing_can_flip() -> None:
    config = EvolutionConfig(strategy="regularized", population=20, generations=10, q_mutation=0.1)
    copies, children = 0, 0
    for seed in range(5):
        search = RegularizedSearch(config, NODES, seed)
        while not search.done():
            members = search.ask()
            log = search.tell(onemax(members))
            if log is not None:
                queue = [genome for genome, _ in search._queue]
                copies += sum(child == queue[parent] for child, parent in zip(search.ask(), log.parents))
                children += len(log.parents)
    assert children == 5 * 10 * 20 and copies == 0
    # one draw alone, as before: (1 - q_M)^13 = 25.4% of the children are their parent again
    single = RegularizedSearch(config, NODES, seed=0)
    single.redraw_copies = False
    members = single.ask()
    single.tell(onemax(members))
    rng = np.random.default_rng(0)
    from genetic_cnn.search.operators import mutate

    parent = members[0]
    share = np.mean([mutate(parent, 0.1, rng) == parent for _ in range(20_000)])
    assert abs(share - 0.9**13) < 0.01


def test_a_regularized_child_enters_the_queue_with_its_own_evaluation(tmp_path) -> None:
    """A run with table fitness: the queue holds each child's own evaluation, not the mean over every
    evaluation of its string (Real et al. 2019), while the genetic search is told the paper's means."""
    from genetic_cnn.evolution import fitness_to_tell
    from genetic_cnn.search.records import FAILED, OK, EvaluationResult
    from genetic_cnn.search.strategies import FitnessLedger

    genome = RegularizedSearch(EvolutionConfig(strategy="regularized"), NODES, 0).ask()[0]
    ledger = FitnessLedger()
    for accuracy in (0.9, 0.5):
        ledger.record(genome, accuracy)
    own = [EvaluationResult(1, 0, str(genome), "", 0, OK, accuracy=0.5),
           EvaluationResult(1, 1, str(genome), "", 0, FAILED)]  # fmt: skip
    assert fitness_to_tell([genome, genome], ledger) == [pytest.approx(0.7)] * 2
    told = fitness_to_tell([genome, genome], ledger, own)
    assert told[0] == 0.5 and math.isnan(told[1])
    assert RegularizedSearch.tells_own_evaluation and not GeneticSearch.tells_own_evaluation


def test_regularized_queue_fitness_is_each_childs_own_table_draw() -> None:
    """In the simulation of a table run (as in a run folder), a regularized search is told each slot's
    own evaluation: with a string evaluated twice, told differs from the running mean."""
    from table_helpers import synthetic_table

    from genetic_cnn.config import load_config
    from genetic_cnn.tables.simulate import TableLookup, simulate

    table = synthetic_table(load_config(None, ["space.preset=digits"]), seeds=3, seed=1)
    lookup = TableLookup(table)
    config = EvolutionConfig(strategy="regularized", population=10, generations=8, q_mutation=0.05)
    trace = simulate(lookup, config, run_seed=3)
    told = trace.told.ravel()
    assert np.array_equal(told, trace.observations)  # every slot told its own draw
    repeated = [i for i in range(len(told)) if trace.identities[i] in trace.identities[:i]]
    assert repeated and any(told[i] != trace.observed[i] for i in repeated)  # a mean would differ
    genetic = simulate(lookup, EvolutionConfig(population=10, generations=8, q_mutation=0.05), run_seed=3)
    for g, row in enumerate(genetic.told):  # the paper: the mean over every evaluation up to this generation
        seen = slice(0, 10 * (g + 1))
        for slot, value in enumerate(row):
            same = genetic.identities[seen] == genetic.identities[10 * g + slot]
            assert value == pytest.approx(np.nanmean(genetic.observations[seen][same]))
