"""The generational loop of Genetic CNN (paper, Algorithm 1) behind an ask/tell boundary.

The search proposes genomes (``ask``), someone else trains them, and the fitness comes back
(``tell``), one value per individual in order; an individual without a fitness (every evaluation
failed) comes back as NaN, never as an exception. ``GeneticSearch`` is the paper's algorithm, ``RandomSearch`` the
baseline at the same budget N(T+1), ``RegularizedSearch`` aging evolution (Real et al. 2019) at the
same budget, ``CalibrationSearch`` the same architectures every generation (``genetic-cnn calibrate``),
``TabulationSearch`` every architecture of the space once (``genetic-cnn tabulate``), ``NSGA2Search``
accuracy against FLOPs or parameters (NSGA-II, ``genetic_cnn.search.pareto``). No torch here.

Constraints (``evolution.max_flops``, ``max_params``, ``max_latency_ms``; every strategy that breeds):
a genome above a limit is never asked for, so never trained and never selected. Its cost is counted
from the genome (``genetic_cnn.space.cost``), or for latency measured by the driver and given in ``cost``
(``genetic_cnn.fitness.latency``: the search only reads the number, it stays torch-free). The initial generation draws each random genome again until it is feasible;
a bred child that is not feasible is replaced by a mutated copy of its parent (the individual
selected into its slot), drawn again until feasible, and after ``REPAIR_DRAWS`` draws by the parent
itself (which is feasible). Random search draws each genome again until it is feasible. Without
limits none of this draws anything, so unconstrained runs are those of earlier versions.

Seeds: the search draws from ``default_rng(SeedSequence(seed))``; evaluation (generation, slot)
trains with ``evaluation_seed(seed, generation, slot)``, from ``SeedSequence(seed, spawn_key=
(generation, slot))``: streams independent of the search's and of the order of execution.
A run is replayed (e.g. to resume) by asking and telling the recorded fitness again.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Sequence
from statistics import fmean
from typing import Any

import numpy as np

import genetic_cnn.search.pareto as pareto
from genetic_cnn.config import IDENTITIES, STRATEGIES, EvolutionConfig
from genetic_cnn.errors import UserError
from genetic_cnn.search.operators import GenerationLog, initialize, mutate, next_generation, vary
from genetic_cnn.search.protocol import Search
from genetic_cnn.space.cost import CostOf
from genetic_cnn.space.genome import Genome
from genetic_cnn.space.identity import individual_key

REPAIR_DRAWS = 100
"""Mutated copies of its parent tried for an infeasible child before the parent itself takes its slot."""
RANDOM_DRAWS = 100_000
"""Random genomes drawn for one feasible genome before a limit is declared too tight for random drawing."""


def evaluation_seed(run_seed: int, generation: int, slot: int) -> int:
    """A 31-bit seed for one evaluation, fixed by its place in the run (never by execution order)."""
    sequence = np.random.SeedSequence(run_seed, spawn_key=(generation, slot))
    return int(sequence.generate_state(1, dtype=np.uint32)[0]) & 0x7FFF_FFFF


class _GenerationalSearch:
    """ask/tell bookkeeping shared by every strategy (genetic, random, regularized, calibration, tabulation,
    NSGA-II); subclasses say how a generation is bred."""

    tells_own_evaluation = False
    """False: tell() takes each individual's mean over all its evaluations (the paper's re-evaluation
    rule). True: each slot's own evaluation of this generation (regularized evolution, where a child
    enters the queue with its own evaluation)."""

    def __init__(self, config: EvolutionConfig, nodes: Sequence[int], seed: int, cost: CostOf | None = None) -> None:
        self.config, self.nodes, self.seed = config, tuple(nodes), seed
        self.cost = cost
        self.constrained = bool(config.max_flops or config.max_params or config.max_latency_ms)
        if (self.constrained or len(config.objectives) > 1) and cost is None:
            raise ValueError("a search with evolution.max_flops, max_params, max_latency_ms or cost objectives needs cost=")
        self._rng = np.random.default_rng(np.random.SeedSequence(seed))
        self.generation = 0  # the generation ask() returns; T + 1 once done()
        self._population = self._initial_population()
        if self.constrained:
            self._population = [g if self.feasible(g) else self._random_feasible() for g in self._population]

    def ask(self) -> list[Genome]:
        """The current generation, to evaluate; the same list until ``tell``."""
        if self.done():
            raise RuntimeError(f"the search is done: generations 0..{self.config.generations} were evaluated")
        return list(self._population)

    def tell(self, fitness: Sequence[float]) -> GenerationLog | None:
        """Fitness of each individual of ``ask()``, in order (NaN = no fitness); breeds the next generation.

        Returns what breeding did (``GenerationLog``), or None when nothing was bred by selection:
        after the last generation, and always for random search.
        """
        values = [float(value) for value in fitness]
        if self.done():
            raise RuntimeError("tell() after the last generation; the search is done")
        if len(values) != len(self._population):
            raise ValueError(f"{len(values)} fitness values given for {len(self._population)} individuals")
        log = None
        if self.generation < self.config.generations:
            self._population, log = self._breed(values)
        self.generation += 1
        return log

    def done(self) -> bool:
        """True once generations 0 ... T have all been told (N(T+1) evaluations)."""
        return self.generation > self.config.generations

    def rng_state(self) -> dict[str, Any]:
        """The bit generator's state after the last step (JSON-serialisable), for the run database."""
        return dict(self._rng.bit_generator.state)

    def feasible(self, genome: Genome) -> bool:
        """Within ``evolution.max_flops``, ``max_params`` and ``max_latency_ms`` (always, without limits)."""
        if not self.constrained:
            return True
        assert self.cost is not None
        cost = self.cost(genome)
        return (
            (not self.config.max_flops or cost.flops <= self.config.max_flops)
            and (not self.config.max_params or cost.parameters <= self.config.max_params)
            and (not self.config.max_latency_ms or cost.value("latency") <= self.config.max_latency_ms)
        )

    def costs(self, genome: Genome) -> list[float]:
        """The genome's cost objectives (``evolution.objectives`` after accuracy), to minimise."""
        assert self.cost is not None
        cost = self.cost(genome)
        return [float(cost.value(name)) for name in self.config.objectives[1:]]

    def _random_feasible(self) -> Genome:
        for _ in range(RANDOM_DRAWS):
            genome = initialize(self.nodes, 1, self._rng, mode="random")[0]
            if self.feasible(genome):
                return genome
        raise UserError(
            f"no feasible genome in {RANDOM_DRAWS:,} random draws: evolution.max_flops / max_params / max_latency_ms leave too "
            "few networks for random drawing; raise them, or start from evolution.init = \"zeros\" (genetic, nsga2)"
        )

    def _feasible_child(self, child: Genome, parent: Genome) -> Genome:
        """``child``, or when it breaks a limit a mutated copy of ``parent`` that does not (module docstring)."""
        if self.feasible(child):
            return child
        for _ in range(REPAIR_DRAWS):
            candidate = mutate(parent, self.config.q_mutation, self._rng)
            if self.feasible(candidate):
                return candidate
        return parent

    def _initial_population(self) -> list[Genome]:
        raise NotImplementedError

    def _breed(self, fitness: list[float]) -> tuple[list[Genome], GenerationLog | None]:
        raise NotImplementedError


class GeneticSearch(_GenerationalSearch):
    """Algorithm 1. ask() returns the generation to evaluate; tell(fitness) gives one fitness per individual.

    Algorithm 1 (Xie & Yuille 2017)                   here
    1. Initialization: N individuals, Bernoulli(0.5)  ``initialize`` (or all zeros, ``config.init``)
       per bit; evaluate them.                        ask() / train / tell()
    2. for t = 1 ... T:                               each tell() of generations 0 ... T-1
         Selection (roulette, r_n - r_min)            ``operators.roulette_select``
         Crossover (pairs, p_C; stages, q_C)          ``operators.crossover``
         Mutation (not crossed, p_M; bits, q_M)       ``operators.mutate``
         Evaluation (re-evaluated: mean of all)       ask() / train / tell(), ``FitnessLedger``
    """

    def _initial_population(self) -> list[Genome]:
        return initialize(self.nodes, self.config.population, self._rng, mode=self.config.init)

    def _breed(self, fitness: list[float]) -> tuple[list[Genome], GenerationLog | None]:
        offspring, log = next_generation(self._population, fitness, self.config, self._rng)
        if self.constrained:
            offspring = [self._feasible_child(child, self._population[parent]) for child, parent in zip(offspring, log.parents)]
        return offspring, log


class RandomSearch(_GenerationalSearch):
    """Baseline: every generation is N fresh genomes, Bernoulli(0.5) per bit, whatever the fitness.

    Same budget N(T+1) as ``GeneticSearch``; ``config.init`` is ignored. With the same seed its
    generation 0 equals the genetic search's random initial generation.
    """

    def _initial_population(self) -> list[Genome]:
        return initialize(self.nodes, self.config.population, self._rng, mode="random")

    def _breed(self, fitness: list[float]) -> tuple[list[Genome], GenerationLog | None]:
        if self.constrained:  # genome by genome: the same draws as one batch for the feasible ones
            return [self._random_feasible() for _ in range(self.config.population)], None
        return initialize(self.nodes, self.config.population, self._rng, mode="random"), None


class CalibrationSearch(_GenerationalSearch):
    """N distinct architectures spread over convolution counts (``space.stratified_sample``), the
    same in every generation whatever the fitness: generation g trains each of them once more with
    new seeds, so a run of T + 1 generations measures every architecture with T + 1 seeds. This is
    how ``genetic-cnn calibrate`` asks whether a fidelity can rank architectures; ``config.init``
    is ignored."""

    def _initial_population(self) -> list[Genome]:
        from genetic_cnn.space.enumerate import stratified_sample

        return stratified_sample(self.nodes, self.config.population, self._rng)

    def _breed(self, fitness: list[float]) -> tuple[list[Genome], GenerationLog | None]:
        return list(self._population), None


class RegularizedSearch(_GenerationalSearch):
    """Aging evolution (Real et al. 2019, "Regularized evolution"), mapped onto generations of N.

    The population is a queue of the N most recent individuals, each with its own evaluation (the
    fitness of the training that put it there, not a mean over other evaluations of its string:
    ``tells_own_evaluation``). Generation 0 is N random genomes (``config.init``, as the genetic
    search's: the same with the same seed). Every later generation is N children bred one at a time
    from the queue as it stands: each child is a copy of the fittest of ``config.sample_size``
    individuals drawn uniformly with replacement, mutated: each bit flips with probability q_M, and
    the draw is repeated until at least one bit flips, as Real et al.'s mutation always changes the
    architecture (one draw alone leaves a child equal to its parent with probability (1 - q_M)^L, a
    quarter of the children at the paper's q_M = 0.1 on 13 bits; ``benchmarks/regularized_copies.py``).
    With q_M = 0 nothing can flip and the child is its parent. When the generation's fitness is told,
    each child joins the queue in slot order and pushes out the oldest individual, so after the tell
    the queue is the last N children. This is the paper's algorithm run by N workers in lock-step: a
    child is bred without the fitness of the N - 1 siblings evaluated beside it. Budget N(T+1) as the
    other strategies; p_M, p_C and q_C are not used.

    Draw order per child: one ``rng.integers(0, N, S)`` (the tournament), then ``mutate``'s
    ``rng.random(L)`` as many times as it takes. ``tell`` returns a ``GenerationLog`` whose ``parents``
    index the queue before the tell (the previous generation's slots once T >= 1), ``mutated`` all true.
    """

    tells_own_evaluation = True
    redraw_copies = True
    """Repeat a mutation that flipped nothing (False: one draw, as before; for measuring the copies)."""

    def _initial_population(self) -> list[Genome]:
        self._queue: deque[tuple[Genome, float]] = deque(maxlen=self.config.population)
        return initialize(self.nodes, self.config.population, self._rng, mode=self.config.init)

    def _breed(self, fitness: list[float]) -> tuple[list[Genome], GenerationLog | None]:
        self._queue.extend(zip(self._population, fitness))  # the oldest fall off the front (maxlen N)
        members = [genome for genome, _ in self._queue]
        ranked = np.array([value if math.isfinite(value) else -math.inf for _, value in self._queue])
        redraw = self.redraw_copies and self.config.q_mutation > 0
        children, parents = [], []
        for _ in range(self.config.population):
            contestants = self._rng.integers(0, len(members), size=self.config.sample_size)
            parent = int(contestants[np.argmax(ranked[contestants])])
            parents.append(parent)
            child = mutate(members[parent], self.config.q_mutation, self._rng)
            while redraw and child == members[parent]:
                child = mutate(members[parent], self.config.q_mutation, self._rng)
            children.append(self._feasible_child(child, members[parent]))
        size = len(children)
        return children, GenerationLog(tuple(parents), (False,) * size, (True,) * size)


class TabulationSearch(_GenerationalSearch):
    """Every distinct architecture of the space once, as its ``representative`` genome, in the
    order of their keys, every generation (``genetic-cnn tabulate`` runs one generation per seed).
    ``config.population`` must be the number of architectures; nothing is random."""

    def _initial_population(self) -> list[Genome]:
        from genetic_cnn.space.enumerate import architectures
        from genetic_cnn.space.graph import representative

        keys = sorted(architectures(self.nodes))
        if self.config.population != len(keys):
            raise ValueError(
                f"evolution.population = {self.config.population}: a tabulation of nodes {list(self.nodes)} "
                f"evaluates its {len(keys)} architectures"
            )
        return [representative(key, self.nodes) for key in keys]

    def _breed(self, fitness: list[float]) -> tuple[list[Genome], GenerationLog | None]:
        return list(self._population), None


class NSGA2Search(_GenerationalSearch):
    """NSGA-II (Deb et al. 2002) on accuracy (maximised) and the costs of ``config.objectives`` (minimised).

    Generation 0 is N random genomes (``config.init``, as the genetic search's). Every ``tell``:
    1. The pool is the survivors of the last tell and the generation just told; an individual in both
       (the same identity, ``config.identity``) keeps its newest fitness, the mean of more evaluations.
    2. Survival (elitist, mu + lambda): non-dominated sorting of the pool, whole fronts while they fit
       in N, the last front cut by crowding distance (``pareto.survivors``).
    3. Selection: N binary tournaments among the survivors on (front, crowding distance)
       (``pareto.binary_tournament``: one ``rng.integers(0, n, (N, 2))``).
    4. Variation: the paper's operators on the winners in slot order (``operators.vary``: pairs crossed
       stage by stage with p_C and q_C, the others mutated with p_M and q_M).
    A failed individual (NaN) ranks with accuracy -1, below every measured one. ``tell`` returns a
    ``GenerationLog`` whose ``parents`` index the survivors (``survivors()`` after the tell).
    """

    def _initial_population(self) -> list[Genome]:
        self._survivors: list[tuple[Genome, float]] = []
        return initialize(self.nodes, self.config.population, self._rng, mode=self.config.init)

    def survivors(self) -> list[tuple[Genome, float]]:
        """The parents of the generation ``ask`` returns, with the fitness they were told."""
        return list(self._survivors)

    def _breed(self, fitness: list[float]) -> tuple[list[Genome], GenerationLog | None]:
        pool: dict[str, tuple[Genome, float]] = {}
        for genome, value in [*self._survivors, *zip(self._population, fitness)]:
            individual = individual_key(genome, self.config.identity)
            pool.pop(individual, None)  # the newest fitness, in the newest place
            pool[individual] = (genome, value)
        members = list(pool.values())
        objectives = pareto.objective_matrix([value for _, value in members], [self.costs(g) for g, _ in members])
        kept = pareto.survivors(objectives, self.config.population)
        self._survivors = [members[index] for index in kept]
        rank, crowding = pareto.rank_and_crowding(objectives[kept])
        parents = pareto.binary_tournament(rank, crowding, self.config.population, self._rng)
        selected = [self._survivors[index][0] for index in parents]
        offspring, crossed, mutated = vary(selected, self.config, self._rng)
        if self.constrained:
            offspring = [self._feasible_child(child, parent) for child, parent in zip(offspring, selected)]
        return offspring, GenerationLog(tuple(parents), tuple(crossed), tuple(mutated))


SEARCHES: dict[str, type[_GenerationalSearch]] = {
    "genetic": GeneticSearch,
    "random": RandomSearch,
    "regularized": RegularizedSearch,
    "calibration": CalibrationSearch,
    "tabulation": TabulationSearch,
    "nsga2": NSGA2Search,
}


def make_search(config: EvolutionConfig, nodes: Sequence[int], seed: int, cost: CostOf | None = None) -> Search:
    """The search named by ``config.strategy`` (``config.STRATEGIES``). ``cost``: what a genome costs
    (``cost.cost_function``), needed by limits (``max_flops``, ``max_params``) and cost objectives."""
    if config.strategy in SEARCHES:
        return SEARCHES[config.strategy](config, nodes, seed, cost)
    raise ValueError(f"evolution.strategy = {config.strategy!r} is not one of {', '.join(STRATEGIES)}")


class FitnessLedger:
    """The paper's re-evaluation rule: an individual's fitness is the mean over all its evaluations.

    ``identity`` says which genomes are the same individual: "string" (the exact bits) or
    "architecture" (strings that decode to the same network, ``graph.architecture_key``).
    Only measurements are recorded: a failed or diverged evaluation measured nothing, so the
    caller leaves it out, and an individual with no measurement has no fitness (``mean`` is None).
    """

    def __init__(self, identity: str = "string") -> None:
        if identity not in IDENTITIES:
            raise ValueError(f"identity {identity!r} is not one of {', '.join(IDENTITIES)}")
        self.identity = identity
        self._evaluations: dict[str, list[float]] = {}

    def identity_of(self, genome: Genome) -> str:
        return individual_key(genome, self.identity)

    def record(self, genome: Genome, accuracy: float) -> None:
        if not math.isfinite(accuracy):
            raise ValueError(f"accuracy {accuracy!r} of {genome} is not finite; leave failed evaluations out")
        self._evaluations.setdefault(self.identity_of(genome), []).append(float(accuracy))

    def evaluations(self, genome: Genome) -> tuple[float, ...]:
        return tuple(self._evaluations.get(self.identity_of(genome), ()))

    def mean(self, genome: Genome) -> float | None:
        """Mean of all evaluations so far; None when never evaluated."""
        values = self._evaluations.get(self.identity_of(genome))
        return fmean(values) if values else None

    def count(self, genome: Genome) -> int:
        return len(self._evaluations.get(self.identity_of(genome), ()))

    def known(self, genome: Genome) -> bool:
        return self.identity_of(genome) in self._evaluations

    def __len__(self) -> int:
        """Number of distinct individuals evaluated."""
        return len(self._evaluations)
