"""A search run on a table in memory: what a run with ``evaluation.method = "table"`` computes, in milliseconds.

``simulate`` drives a search (``search.make_search``) through ask/tell exactly as ``Evolution`` does
with table fitness: evaluation (generation, slot) reads the table seed its evaluation seed draws
(``Table.draw``), the paper's ledger averages re-evaluations (``evolution.identity``; every slot is
evaluated, ``reevaluate = "retrain"``), and each generation is told its individuals' means (NaN for
an individual whose every evaluation failed). So the genomes and fitness equal those of a run folder
made with the same config and seed, without the folder, the database or torch: hundreds of seeds of
N(T+1) evaluations take seconds (``experiments/compare_strategies.py``). No torch here.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from statistics import fmean

import numpy as np

from genetic_cnn.config import EvolutionConfig
from genetic_cnn.cost import NetworkCost
from genetic_cnn.genome import Genome
from genetic_cnn.graph import architecture_key
from genetic_cnn.search import evaluation_seed, make_search
from genetic_cnn.table import Table, draw_position


@dataclass(frozen=True)
class Trace:
    """One simulated run. Per evaluation, in run order (generation by generation, slot by slot):"""

    architectures: np.ndarray
    """(evaluations,) the table index of the evaluated architecture."""
    observed: np.ndarray
    """(evaluations,) the evaluated individual's mean fitness over its evaluations so far (NaN: none succeeded)."""
    populations: tuple[tuple[Genome, ...], ...]
    """Each generation's genomes, as asked."""
    told: np.ndarray
    """(generations, N) the fitness told to the search (NaN: no successful evaluation)."""

    def incumbents(self) -> np.ndarray:
        """(evaluations,) the table index of the best architecture found so far: the one whose observed
        fitness is the highest so far (the earliest among equals; NaN counts as the lowest)."""
        observed = np.where(np.isnan(self.observed), -np.inf, self.observed)
        best = np.maximum.accumulate(observed)
        improved = np.concatenate(([True], observed[1:] > best[:-1]))
        position = np.maximum.accumulate(np.where(improved, np.arange(len(observed)), 0))
        return self.architectures[position]


Scalarize = Callable[[Sequence[Genome], Sequence[float]], list[float]]
"""A generation's genomes and mean accuracies -> the fitness told to a single-objective search."""


@lru_cache(maxsize=64)
def evaluation_seeds(run_seed: int, generations: int, population: int) -> np.ndarray:
    """(generations, population) ``search.evaluation_seed`` of every slot: the same for every strategy
    run with this seed, so it is computed once per seed."""
    return np.array([[evaluation_seed(run_seed, g, slot) for slot in range(population)] for g in range(generations)])


class TableLookup:
    """The table as arrays, and a genome -> architecture index cache shared by every simulated run."""

    def __init__(self, table: Table) -> None:
        self.table = table
        self.nodes = table.nodes
        accuracy = [[m.accuracy if m.status == "ok" else math.nan for m in a.results] for a in table.architectures]
        self.accuracy = np.array(accuracy, dtype=float)  # NaN: that training failed or diverged, it measured nothing
        self.seeds = self.accuracy.shape[1]
        self._index: dict[Genome, int] = {}

    def cost(self, genome: Genome) -> NetworkCost:
        """The parameters and FLOPs the table counted for ``genome``'s architecture."""
        architecture = self.table.architectures[self.index(genome)]
        return NetworkCost(architecture.parameters, architecture.flops)

    def index(self, genome: Genome) -> int:
        found = self._index.get(genome)
        if found is None:
            found = self._index[genome] = self.table.index(architecture_key(genome))
        return found


def simulate(lookup: TableLookup, config: EvolutionConfig, run_seed: int, scalarize: Scalarize | None = None) -> Trace:
    """Run ``config``'s strategy with ``run_seed`` on the table (``lookup``); see the module docstring.
    ``scalarize``: what the search is told instead of each generation's mean accuracies (a weighted
    sum of accuracy and cost, ``genetic_cnn.pareto``'s comparison); ``Trace.told`` keeps the accuracies."""
    if config.reevaluate != "retrain":
        raise ValueError("simulate() evaluates every slot, as evolution.reevaluate = 'retrain' does")
    search = make_search(config, lookup.nodes, run_seed, lookup.cost)
    seeds = evaluation_seeds(run_seed, config.generations + 1, config.population)
    by_string = config.identity == "string"
    evaluations: dict[object, list[float]] = {}
    architectures: list[int] = []
    observed: list[float] = []
    populations: list[tuple[Genome, ...]] = []
    told: list[list[float]] = []
    while not search.done():
        generation, population = search.generation, search.ask()
        identities = []
        for slot, genome in enumerate(population):
            arch = lookup.index(genome)
            identity = genome if by_string else arch  # architecture identity: one index per key
            values = evaluations.setdefault(identity, [])
            value = lookup.accuracy[arch, draw_position(int(seeds[generation, slot]), lookup.seeds)]
            if not math.isnan(value):
                values.append(float(value))
            architectures.append(arch)
            observed.append(fmean(values) if values else math.nan)
            identities.append(identity)
        fitness = [fmean(evaluations[i]) if evaluations[i] else math.nan for i in identities]
        populations.append(tuple(population))
        told.append(fitness)
        search.tell(scalarize(population, fitness) if scalarize is not None else fitness)
    return Trace(np.array(architectures), np.array(observed), tuple(populations), np.array(told))


def simulate_many(table: Table, config: EvolutionConfig, run_seeds: Sequence[int]) -> list[Trace]:
    lookup = TableLookup(table)
    return [simulate(lookup, config, seed) for seed in run_seeds]
