"""A search run on a table in memory: what a run with ``evaluation.method = "table"`` computes, in milliseconds.

``simulate`` drives a search (``search.make_search``) through ask/tell exactly as ``Evolution`` does
with table fitness: an architecture's k-th evaluation reads the seed ``table.SeedDraws`` gives it
(without replacement; one supernet per run on a one-shot table), the paper's ledger averages
re-evaluations (``evolution.identity``; every slot is evaluated, ``reevaluate = "retrain"``), and
each generation is told its individuals' means (NaN for an individual whose every evaluation
failed), or, for a search that takes each child's own evaluation (regularized evolution), that.
So the genomes and fitness equal those of a run folder made with the same config and seed, without
the folder, the database or torch: hundreds of seeds of N(T+1) evaluations take seconds
(``experiments/compare_strategies.py``).

Judging a search with a truth it did not see: ``TableLookup.without(column)`` is the table less one
seed, which the search never reads; ``held_out_column`` picks that seed from the run seed, the same
for every strategy run with it (paired comparisons). ``simulate(..., noiseless=True)`` is the oracle:
its fitness is each architecture's mean over all the table's seeds, with no noise at all. No torch here.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from statistics import fmean

import numpy as np

from genetic_cnn.config import EvolutionConfig
from genetic_cnn.search.strategies import make_search
from genetic_cnn.space.cost import NetworkCost
from genetic_cnn.space.genome import Genome
from genetic_cnn.space.graph import architecture_key
from genetic_cnn.space.identity import individual_key
from genetic_cnn.tables.table import DRAW_STREAM, SeedDraws, Table

INCUMBENT_RULES = ("observation", "mean")
"""How a search names its best architecture so far: the highest single evaluation it has seen
(``observation``: a lucky training keeps the crown), or the individual whose mean over its
evaluations is highest now (``mean``: re-evaluation can take it away)."""


@dataclass(frozen=True)
class Trace:
    """One simulated run. Per evaluation, in run order (generation by generation, slot by slot):"""

    architectures: np.ndarray
    """(evaluations,) the table index of the evaluated architecture."""
    identities: np.ndarray
    """(evaluations,) the individual evaluated (``evolution.identity``), numbered in order of first evaluation."""
    observations: np.ndarray
    """(evaluations,) this evaluation's accuracy (NaN: the training failed or diverged)."""
    observed: np.ndarray
    """(evaluations,) the evaluated individual's mean fitness over its evaluations so far (NaN: none succeeded)."""
    populations: tuple[tuple[Genome, ...], ...]
    """Each generation's genomes, as asked."""
    told: np.ndarray
    """(generations, N) the fitness told to the search (NaN: no successful evaluation)."""

    def incumbents(self, rule: str = "mean") -> np.ndarray:
        """(evaluations,) the table index of the search's best architecture after each evaluation, by
        ``rule`` (``INCUMBENT_RULES``); the earliest among equals, NaN the lowest."""
        if rule == "observation":
            return self._best_observation()
        if rule == "mean":
            return self._best_current_mean()
        raise ValueError(f"incumbent rule {rule!r} is not one of {', '.join(INCUMBENT_RULES)}")

    def _best_observation(self) -> np.ndarray:
        observed = np.where(np.isnan(self.observations), -np.inf, self.observations)
        best = np.maximum.accumulate(observed)
        improved = np.concatenate(([True], observed[1:] > best[:-1]))
        position = np.maximum.accumulate(np.where(improved, np.arange(len(observed)), 0))
        return self.architectures[position]

    def _best_current_mean(self) -> np.ndarray:
        # A heap of (-mean, first evaluation, identity); entries whose mean has changed since are stale.
        heap: list[tuple[float, int, int]] = []
        current: dict[int, float] = {}
        first: dict[int, int] = {}
        architecture: dict[int, int] = {}
        result = np.empty(len(self.architectures), dtype=self.architectures.dtype)
        for step, (identity, mean) in enumerate(zip(self.identities.tolist(), self.observed.tolist())):
            first.setdefault(identity, step)
            architecture[identity] = int(self.architectures[step])
            value = -math.inf if math.isnan(mean) else mean
            current[identity] = value
            heapq.heappush(heap, (-value, first[identity], identity))
            while current[heap[0][2]] != -heap[0][0]:
                heapq.heappop(heap)
            result[step] = architecture[heap[0][2]]
        return result


Scalarize = Callable[[Sequence[Genome], Sequence[float]], list[float]]
"""A generation's genomes and mean accuracies -> the fitness told to a single-objective search."""


def held_out_column(run_seed: int, seeds: int) -> int:
    """The table seed a run with ``run_seed`` is judged on and never reads (uniform over run seeds)."""
    state = np.random.SeedSequence(run_seed, spawn_key=(DRAW_STREAM, 2)).generate_state(1, dtype=np.uint32)
    return int(state[0]) % seeds


class TableLookup:
    """The table as arrays (its seeds, or all but a held-out one), and the genome -> architecture index
    and genome -> individual caches shared by every simulated run."""

    def __init__(
        self,
        table: Table,
        columns: Sequence[int] | None = None,
        _index: dict[Genome, int] | None = None,
        _individuals: dict[str, dict[Genome, str]] | None = None,
    ) -> None:
        self.table = table
        self.nodes = table.nodes
        accuracy = [[m.accuracy if m.status == "ok" else math.nan for m in a.results] for a in table.architectures]
        everything = np.array(accuracy, dtype=float)  # NaN: that training failed or diverged, it measured nothing
        self.columns = tuple(range(everything.shape[1])) if columns is None else tuple(columns)
        self.accuracy = everything[:, list(self.columns)]
        self.seeds = self.accuracy.shape[1]
        self.truth = table.mean_validation
        """Each architecture's mean validation accuracy over all the table's seeds (the oracle's fitness)."""
        self._index: dict[Genome, int] = {} if _index is None else _index
        self._individuals: dict[str, dict[Genome, str]] = {} if _individuals is None else _individuals

    def without(self, column: int) -> TableLookup:
        """The table less seed ``column``: what a search judged on that seed may read."""
        if self.table.validation.shape[1] < 2:
            raise ValueError("a held-out seed needs a table of two or more seeds")
        kept = [c for c in range(self.table.validation.shape[1]) if c != column]
        return TableLookup(self.table, kept, self._index, self._individuals)

    def cost(self, genome: Genome) -> NetworkCost:
        """The parameters and FLOPs the table counted for ``genome``'s architecture."""
        architecture = self.table.architectures[self.index(genome)]
        return NetworkCost(architecture.parameters, architecture.flops)

    def individual(self, genome: Genome, identity: str) -> str:
        """``genome``'s ``individual_key`` under ``identity``, worked out once for all runs."""
        known = self._individuals.setdefault(identity, {})
        found = known.get(genome)
        if found is None:
            found = known[genome] = individual_key(genome, identity)
        return found

    def index(self, genome: Genome) -> int:
        found = self._index.get(genome)
        if found is None:
            found = self._index[genome] = self.table.index(architecture_key(genome))
        return found


def simulate(
    lookup: TableLookup,
    config: EvolutionConfig,
    run_seed: int,
    noiseless: bool = False,
    scalarize: Scalarize | None = None,
) -> Trace:
    """Run ``config``'s strategy with ``run_seed`` on the table (``lookup``); see the module docstring.
    ``noiseless``: every evaluation reads the architecture's mean over all seeds (the oracle).
    ``scalarize``: what the search is told instead of each generation's accuracies (a weighted sum of
    accuracy and cost, ``genetic_cnn.search.pareto``'s comparison); ``Trace.told`` keeps the accuracies."""
    if config.reevaluate != "retrain":
        raise ValueError("simulate() evaluates every slot, as evolution.reevaluate = 'retrain' does")
    search = make_search(config, lookup.nodes, run_seed, lookup.cost)
    own = search.tells_own_evaluation
    draws = SeedDraws(run_seed, lookup.seeds, one_shot=lookup.table.one_shot)
    lookups: dict[int, int] = {}
    evaluations: dict[str, list[float]] = {}
    numbers: dict[str, int] = {}
    architectures: list[int] = []
    identities: list[int] = []
    observations: list[float] = []
    observed: list[float] = []
    populations: list[tuple[Genome, ...]] = []
    told: list[list[float]] = []
    while not search.done():
        population = search.ask()
        names, values_now = [], []
        for genome in population:
            arch = lookup.index(genome)
            identity = lookup.individual(genome, config.identity)
            values = evaluations.setdefault(identity, [])
            if noiseless:
                value = float(lookup.truth[arch])
            else:
                k = lookups.get(arch, 0)
                lookups[arch] = k + 1
                value = float(lookup.accuracy[arch, draws.position(arch, k)])
            if not math.isnan(value):
                values.append(value)
            architectures.append(arch)
            identities.append(numbers.setdefault(identity, len(numbers)))
            observations.append(value)
            observed.append(fmean(values) if values else math.nan)
            names.append(identity)
            values_now.append(value)
        fitness = values_now if own else [fmean(evaluations[i]) if evaluations[i] else math.nan for i in names]
        populations.append(tuple(population))
        told.append(fitness)
        search.tell(scalarize(population, fitness) if scalarize is not None else fitness)
    return Trace(np.array(architectures), np.array(identities), np.array(observations), np.array(observed),
                 tuple(populations), np.array(told))  # fmt: skip
